// maxUnavailable resolves as DaemonSets resolve it: counts as they are, percentages of the selected
// nodes rounded down, never below one slot.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveMaxUnavailable, slotName } from '../../../controller/kube/slots.ts';

test('resolveMaxUnavailable: counts, percentages rounded down, at least 1', () => {
  assert.equal(resolveMaxUnavailable(1, 10), 1);
  assert.equal(resolveMaxUnavailable(3, 2), 3);
  assert.equal(resolveMaxUnavailable('25%', 10), 2);
  assert.equal(resolveMaxUnavailable('25%', 3), 1);
  assert.equal(resolveMaxUnavailable('100%', 7), 7);
  assert.equal(resolveMaxUnavailable('1%', 0), 1);
  // what the rollout integration test relies on: a fourth, unselected node would make 2 slots
  assert.equal(resolveMaxUnavailable('50%', 3), 1);
  assert.equal(resolveMaxUnavailable('50%', 4), 2);
});

test('slot Lease names are DNS subdomains for any DockerPlugin name', () => {
  const name = slotName('a'.repeat(63), 999);
  assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  assert.ok(name.length <= 253);
});
