// Documents are compared by content: the hash must not depend on key order or on undefined fields.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentHash, stableJson } from '../../../controller/sources/hash.ts';

test('stableJson sorts keys at every depth and keeps array order', () => {
  assert.equal(stableJson({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}');
});

test('equal content hashes equally whatever the key order; different content does not', () => {
  const a = { spec: { remote: 'x', settings: { env: { A: '1', B: '2' } } }, metadata: { name: 'n' } };
  const b = { metadata: { name: 'n' }, spec: { settings: { env: { B: '2', A: '1' } }, remote: 'x' } };
  assert.equal(contentHash(a), contentHash(b));
  assert.notEqual(contentHash(a), contentHash({ ...b, metadata: { name: 'm' } }));
  assert.match(contentHash(a), /^[0-9a-f]{64}$/);
});

test('undefined fields are ignored, as JSON.stringify ignores them', () => {
  assert.equal(contentHash({ a: 1, b: undefined }), contentHash({ a: 1 }));
});
