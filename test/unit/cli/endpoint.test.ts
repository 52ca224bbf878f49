// The reconcile endpoint of `plugctl run` (token from the state directory) and `wait --for`, on a
// loopback server with a stand-in for the controller's reconcileNow.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import {
  endpointPath,
  newToken,
  publishEndpoint,
  readEndpoint,
  reconcileRoute,
  requestReconcile,
} from '../../../controller/cli/endpoint.ts';
import { parseWaitFor } from '../../../controller/cli/wait.ts';
import { PlugctlError } from '../../../controller/errors.ts';
import { startHealthServer } from '../../../controller/observe/health.ts';

test('--for takes condition=TYPE[=VALUE] and delete', () => {
  assert.deepEqual(parseWaitFor('condition=Ready'), { kind: 'condition', type: 'Ready', value: 'True' });
  assert.deepEqual(parseWaitFor('condition=stalled=false'), {
    kind: 'condition',
    type: 'Stalled',
    value: 'false',
  });
  assert.deepEqual(parseWaitFor('delete'), { kind: 'delete' });
  for (const bad of ['Ready', 'condition=', 'condition=Ready=', 'jsonpath={.a}'])
    assert.throws(() => parseWaitFor(bad), /expected condition=TYPE/);
});

test('reconcile reaches the run process with the token of its state directory, and only with it', async () => {
  const state = await mkdtemp(join(tmpdir(), 'plugctl-endpoint-'));
  const asked: string[][] = [];
  const token = newToken();
  const server = await startHealthServer('127.0.0.1:0', {
    ready: () => true,
    registry: new Registry(),
    routes: {
      'POST /reconcile': reconcileRoute(
        {
          reconcileNow: async (names) => {
            asked.push([...names]);
            return {
              unknown: names.filter((n) => n === 'nope'),
              results: [
                { key: 'a', result: { type: 'done' } },
                { key: 'b', result: { type: 'failed', kind: 'stalled', error: new Error('bad grants') } },
              ],
            };
          },
        },
        token,
      ),
    },
  });
  try {
    await assert.rejects(
      requestReconcile(state, [], 5000),
      (e) => e instanceof PlugctlError && e.code === 'CONTROLLER_NOT_RUNNING',
    );
    const endpoint = await publishEndpoint(state, server.address, token);
    assert.equal((await stat(endpointPath(state))).mode & 0o777, 0o600);
    assert.equal((await readEndpoint(state)).pid, process.pid);
    const answer = await requestReconcile(state, ['a', 'nope'], 5000);
    assert.deepEqual(asked, [['a', 'nope']]);
    assert.deepEqual(answer, {
      unknown: ['nope'],
      results: [
        { key: 'a', result: 'done' },
        { key: 'b', result: 'failed', kind: 'stalled', error: 'bad grants' },
      ],
    });
    const forged = await fetch(`http://${server.address}/reconcile`, {
      method: 'POST',
      headers: { authorization: `Bearer ${newToken()}` },
      body: '{}',
    });
    assert.equal(forged.status, 401);
    assert.equal(asked.length, 1, 'a wrong token reconciles nothing');
    await endpoint.remove();
    await assert.rejects(readEndpoint(state), /does not exist/);
  } finally {
    await server.close();
    await rm(state, { recursive: true, force: true });
  }
});
