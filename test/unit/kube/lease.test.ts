// Lease expiry as agents judge it: by how long a lease has gone unchanged on their own clock, and
// (for slots) also by its renewTime with a skew allowance. Pure logic on a manual clock.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LeaseObserver, microTime } from '../../../controller/kube/lease.ts';
import type { Lease } from '../../../controller/kube/lease.ts';
import { FakeClock } from '../runtime/fake-clock.ts';

const lease = (rv: string, spec: Lease['spec']): Lease => ({
  metadata: { name: 'l', namespace: 'ns', resourceVersion: rv },
  spec,
});

describe('LeaseObserver', () => {
  test('a lease without a holder is free', () => {
    const observer = new LeaseObserver(new FakeClock());
    assert.equal(observer.expired(lease('1', { leaseDurationSeconds: 15 })), true);
    assert.equal(observer.expired(lease('1', { holderIdentity: '', leaseDurationSeconds: 15 })), true);
  });

  test('a held lease expires only after going unchanged for its duration on this clock', () => {
    const clock = new FakeClock(1_000_000);
    const observer = new LeaseObserver(clock);
    // renewTime far in the past: without a skew allowance, other clocks are not trusted
    const held = lease('7', { holderIdentity: 'a', leaseDurationSeconds: 10, renewTime: microTime(0) });
    assert.equal(observer.expired(held), false);
    clock.advance(9_999);
    assert.equal(observer.expired(held), false);
    clock.advance(1);
    assert.equal(observer.expired(held), true);
    // renewed (new resourceVersion): valid again for a full duration
    const renewed = lease('8', { holderIdentity: 'a', leaseDurationSeconds: 10 });
    assert.equal(observer.expired(renewed), false);
    clock.advance(9_000);
    assert.equal(observer.expired(renewed), false);
  });

  test('with a skew allowance, an old renewTime by this wall clock frees the lease at once', () => {
    const clock = new FakeClock(1_000_000);
    const observer = new LeaseObserver(clock, 2_000);
    const stale = lease('3', {
      holderIdentity: 'a',
      leaseDurationSeconds: 10,
      renewTime: microTime(1_000_000 - 12_001),
    });
    assert.equal(observer.expired(stale), true);
    const fresh = lease('4', {
      holderIdentity: 'a',
      leaseDurationSeconds: 10,
      renewTime: microTime(1_000_000 - 11_999),
    });
    assert.equal(observer.expired(fresh), false);
  });

  test('microTime writes six fractional digits, as the API server parses MicroTime', () => {
    assert.equal(microTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '2026-01-02T03:04:05.678000Z');
  });
});
