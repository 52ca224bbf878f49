// DockerPlugin objects from the API server become the documents files give (api/object.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadObject, objectOrigin } from '../../../controller/api/object.ts';
import { formatLoadError } from '../../../controller/api/load.ts';

const object = (spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) => ({
  apiVersion: 'plugctl.dev/v1alpha1',
  kind: 'DockerPlugin',
  metadata: {
    name: 'vol',
    uid: '0b5a',
    resourceVersion: '42',
    generation: 3,
    creationTimestamp: '2026-12-06T20:00:00Z',
    finalizers: ['plugctl.dev/cleanup'],
    ...metadata,
  },
  spec,
});

test('a valid object loads with its reference and local name, its origin naming the object', () => {
  const result = loadObject(object({ remote: '127.0.0.1:5000/test/vol:1.0' }), 'vol');
  assert.ok('document' in result);
  assert.equal(result.document.localName, '127.0.0.1:5000/test/vol:1.0');
  assert.equal(result.document.reference.domain, '127.0.0.1:5000');
  assert.equal(result.document.doc.metadata.generation, 3);
  assert.deepEqual(result.document.origin, objectOrigin('vol'));
});

test('an alias names the local plugin', () => {
  const result = loadObject(object({ remote: 'vieux/sshfs:1.2', alias: 'sshfs' }), 'vol');
  assert.ok('document' in result);
  assert.equal(result.document.localName, 'sshfs:latest');
  assert.equal(result.document.localNamePath, 'spec.alias');
});

test('an invalid object gives errors naming the object and the field, no document', () => {
  const result = loadObject(object({ remote: 'x', enabled: 'yes' }), 'vol');
  assert.ok('errors' in result);
  assert.ok(result.errors.some((e) => e.path === 'spec.enabled'));
  assert.match(formatLoadError(result.errors[0]!), /^dockerplugin\/vol: spec\.enabled: /);
});

test('a reference docker refuses is INVALID_REFERENCE on spec.remote', () => {
  const result = loadObject(object({ remote: 'Upper/Case:1' }), 'vol');
  assert.ok('errors' in result);
  assert.equal(result.errors[0]?.code, 'INVALID_REFERENCE');
  assert.equal(result.errors[0]?.path, 'spec.remote');
});
