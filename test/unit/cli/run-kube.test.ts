// The node agent's name (cli/run-kube.ts): --node-name, else $NODE_NAME, else the hostname as
// Kubernetes names Nodes (lower case).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveNodeName } from '../../../controller/cli/run-kube.ts';

test('--node-name wins over NODE_NAME and the hostname', () => {
  assert.equal(resolveNodeName('node-a', { NODE_NAME: 'node-b' }, 'host-c'), 'node-a');
});

test('NODE_NAME (the downward API) when no flag is given', () => {
  assert.equal(resolveNodeName(undefined, { NODE_NAME: 'node-b' }, 'host-c'), 'node-b');
  assert.equal(resolveNodeName('', { NODE_NAME: 'node-b' }, 'host-c'), 'node-b');
});

test('else the hostname, lower-cased as the kubelet names the Node', () => {
  assert.equal(resolveNodeName(undefined, {}, 'Worker-1'), 'worker-1');
  assert.equal(resolveNodeName(undefined, { NODE_NAME: '' }, 'worker-1'), 'worker-1');
});
