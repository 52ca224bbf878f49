// What the agent's DockerPlugin cache keeps: run --kube shares it with the fleet leader, which needs
// the status it wrote (to keep lastTransitionTime and skip unchanged summaries); the document the
// agent reconciles is loaded without that status.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadObject } from '../../../controller/api/object.ts';
import { cachedPlugin, documentPart } from '../../../controller/sources/kube.ts';

const status = {
  observedGeneration: 1,
  ready: '0/0',
  conditions: [
    { type: 'Ready', status: 'True', reason: 'NoNodesSelected', lastTransitionTime: '2026-12-07T00:19:05Z' },
  ],
};
const object = {
  apiVersion: 'plugctl.dev/v1alpha1',
  kind: 'DockerPlugin',
  metadata: {
    name: 'p',
    uid: 'u',
    resourceVersion: '7',
    generation: 1,
    managedFields: [{ manager: 'plugctl-fleet', operation: 'Apply', fieldsV1: { 'f:status': {} } }],
  },
  spec: { remote: 'registry.example.com/team/plugin:1.0' },
  status,
};

test('the cache keeps a DockerPlugin status for the fleet leader, and drops managedFields', () => {
  const cached = cachedPlugin(object);
  assert.deepEqual(cached.status, status);
  assert.equal('managedFields' in cached.metadata, false);
  assert.equal(cached.metadata.resourceVersion, '7');
  assert.deepEqual(cached['spec'], object.spec);
});

test('the document loaded from a cached DockerPlugin leaves its status out', () => {
  const part = documentPart(cachedPlugin(object));
  assert.equal('status' in part, false);
  const loaded = loadObject(part, 'p');
  assert.ok('document' in loaded, JSON.stringify(loaded));
});
