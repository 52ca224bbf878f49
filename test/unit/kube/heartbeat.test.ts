// Judging from heartbeat Leases which agents are gone: unchanged for the grace period by this process's
// clock, or renewed longer ago than the grace period (plus skew) by the wall clock; no heartbeat at all
// for the grace period; a returning agent is alive again at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { heartbeatLeaseName, LivenessTracker } from '../../../controller/kube/heartbeat.ts';
import { microTime } from '../../../controller/kube/lease.ts';
import type { Lease } from '../../../controller/kube/lease.ts';
import { FakeClock } from '../runtime/fake-clock.ts';

const GRACE = 60_000;
const WALL0 = Date.parse('2026-12-06T20:00:00Z');

function lease(node: string, rv: string, renewedAt: number): Lease {
  return {
    metadata: { name: heartbeatLeaseName(node), namespace: 'plugctl-system', resourceVersion: rv },
    spec: { holderIdentity: node, leaseDurationSeconds: 40, renewTime: microTime(renewedAt) },
  };
}

function setup() {
  const clock = new FakeClock(1_000);
  let wall = WALL0;
  const tracker = new LivenessTracker({ clock, graceMs: GRACE, wallNow: () => wall + (clock.now() - 1_000) });
  return { clock, tracker, setWall: (ms: number) => (wall = ms) };
}

test('a renewing agent is alive; one that stops is gone after the grace period', () => {
  const { clock, tracker } = setup();
  tracker.observe([lease('a', '1', WALL0), lease('b', '1', WALL0)]);
  assert.deepEqual([...tracker.gone(['a', 'b']).keys()], []);
  for (let i = 1; i <= 7; i++) {
    clock.advance(10_000);
    tracker.observe([lease('a', String(i + 1), WALL0 + i * 10_000), lease('b', '1', WALL0)]);
  }
  const gone = tracker.gone(['a', 'b']);
  assert.deepEqual([...gone.keys()], ['b']);
  assert.match(gone.get('b') ?? '', /grace period \(60s\)/);
  // it comes back
  tracker.observe([lease('a', '9', WALL0 + 70_000), lease('b', '2', WALL0 + 70_000)]);
  assert.deepEqual([...tracker.gone(['a', 'b']).keys()], []);
});

test('a heartbeat renewed long ago by the wall clock is gone at once (a new leader does not wait again)', () => {
  const { tracker } = setup();
  tracker.observe([lease('old', '5', WALL0 - 10 * 60_000), lease('fresh', '6', WALL0 - 2_000)]);
  assert.deepEqual([...tracker.gone(['old', 'fresh']).keys()], ['old']);
});

test('clock skew within the allowance does not make an agent gone', () => {
  const { tracker } = setup();
  // renewTime just past the grace period by the wall clock, but within the 5 s skew allowance
  tracker.observe([lease('skewed', '1', WALL0 - GRACE - 3_000)]);
  assert.deepEqual([...tracker.gone(['skewed']).keys()], []);
});

test('a node without a heartbeat is gone once it has had none for the grace period', () => {
  const { clock, tracker } = setup();
  assert.deepEqual([...tracker.gone(['n']).keys()], []);
  clock.advance(GRACE - 1);
  assert.deepEqual([...tracker.gone(['n']).keys()], []);
  clock.advance(1);
  assert.match(tracker.gone(['n']).get('n') ?? '', /no agent heartbeat/);
  // its Lease is deleted and it is asked about again later: the wait starts over
  assert.deepEqual([...tracker.gone([]).keys()], []);
  assert.deepEqual([...tracker.gone(['n']).keys()], []);
});

test('the gone message does not change while the node stays gone (status is written only on change)', () => {
  const { clock, tracker } = setup();
  tracker.observe([lease('b', '1', WALL0)]);
  clock.advance(GRACE);
  const first = tracker.gone(['b']).get('b');
  clock.advance(10 * GRACE);
  assert.equal(tracker.gone(['b']).get('b'), first);
});

test('heartbeat Lease names are DNS subdomains for any node name', () => {
  assert.equal(heartbeatLeaseName('node-a'), 'plugctl-node-node-a');
  const long = heartbeatLeaseName(`${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(70)}`);
  assert.ok(long.length <= 253, `${long.length}`);
  assert.match(long, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  assert.notEqual(heartbeatLeaseName(`${'a'.repeat(250)}x`), heartbeatLeaseName(`${'a'.repeat(250)}y`));
});
