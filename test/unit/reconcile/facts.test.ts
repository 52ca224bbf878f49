/**
 * Which reconciles need facts from outside before planning. A converged key must need none (the
 * controller then skips the lookup entirely on a resync); anything the planner cannot decide from
 * the host alone must need them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needsFacts, remotesToResolve } from '../../../controller/reconcile/facts.ts';
import { desired, installed, REMOTE, REMOTE_V2 } from './fixtures.ts';

test('needsFacts: a plugin installed from its declared remote needs nothing', () => {
  assert.equal(needsFacts([desired()], [installed()]), false);
  assert.deepEqual(remotesToResolve([desired()], [installed()]), []);
});

test('needsFacts: a missing plugin needs its remote looked up', () => {
  assert.equal(needsFacts([desired()], []), true);
  assert.deepEqual(remotesToResolve([desired()], []), [REMOTE]);
});

test('needsFacts: a changed remote, a followed tag and a digest pin need the registry', () => {
  assert.equal(needsFacts([desired({ remote: REMOTE_V2 })], [installed()]), true);
  assert.equal(needsFacts([desired({ upgradePolicy: 'TrackTag' })], [installed()]), true);
  const pinned = `${REMOTE}@sha256:${'c'.repeat(64)}`;
  assert.equal(needsFacts([desired({ remote: pinned })], [installed()]), true);
});

test('needsFacts: upgradePolicy Never looks nothing up for an installed plugin', () => {
  assert.equal(needsFacts([desired({ remote: REMOTE_V2, upgradePolicy: 'Never' })], [installed()]), false);
});

test('needsFacts: a built plugin needs its context read, unless suspended', () => {
  const build = { context: '/srv/gitops/plugins/vol' };
  assert.equal(needsFacts([desired({ build })], [installed()]), true);
  assert.equal(needsFacts([desired({ build, suspend: true })], [installed()]), false);
});

test('needsFacts: nothing declared needs nothing', () => {
  assert.equal(needsFacts([], [installed()]), false);
});
