// Which plans take a working plugin down (and so need a rollout slot in Kubernetes mode), and when a
// held slot may be given back. Plans are made by the real planner from the shared fixtures.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { disrupts, mayRelease } from '../../../controller/reconcile/disruption.ts';
import { plan } from '../../../controller/reconcile/plan.ts';
import type { DesiredPlugin } from '../../../controller/reconcile/desired.ts';
import type { Inventory } from '../../../controller/reconcile/inventory.ts';
import type { InstalledPlugin } from '../../../controller/store/store.ts';
import { NAME, REMOTE, REMOTE_V2, desired, facts, installed, inventory, opts, privs } from './fixtures.ts';

/** Whether the plan of the one declared (or pruned) plugin disrupts what is installed. */
function disruptive(
  declared: DesiredPlugin[],
  plugin: InstalledPlugin | undefined,
  owned: Inventory = inventory([NAME]),
): boolean {
  const plans = plan(
    declared,
    plugin === undefined ? [] : [plugin],
    owned,
    facts({ [REMOTE]: privs(), [REMOTE_V2]: privs() }),
    opts(),
  );
  assert.equal(plans.length, 1);
  return disrupts(plans[0]!, plugin);
}

test('a settings change of an enabled plugin disrupts it (disable, set, enable)', () => {
  assert.equal(disruptive([desired({ settings: { env: { DEBUG: '1' } } })], installed()), true);
});

test('an upgrade of an enabled plugin disrupts it', () => {
  assert.equal(disruptive([desired({ remote: REMOTE_V2 })], installed()), true);
});

test('a first install disrupts nothing', () => {
  assert.equal(disruptive([desired()], undefined, inventory()), false);
});

test('an unchanged plugin is not disrupted', () => {
  assert.equal(disruptive([desired()], installed()), false);
});

test('a disabled plugin changed and enabled is not a disruption: nothing running is taken away', () => {
  assert.equal(
    disruptive([desired({ settings: { env: { DEBUG: '1' } } })], installed({ enabled: false })),
    false,
  );
  assert.equal(disruptive([desired()], installed({ enabled: false })), false);
});

test('a disable the document asks for (enabled: false) is what was declared, not a disruption', () => {
  assert.equal(disruptive([desired({ enabled: false })], installed()), false);
});

test('removing a plugin that is no longer declared is not a rollout disruption', () => {
  assert.equal(disruptive([], installed()), false);
});

test('a suspended plugin is never disrupted', () => {
  assert.equal(disruptive([desired({ suspend: true, remote: REMOTE_V2 })], installed()), false);
});

test('a held slot is given back once Ready, failed or not acted on; kept while on its way back', () => {
  assert.equal(mayRelease('ready', false), true);
  assert.equal(mayRelease('stalled', true), true);
  assert.equal(mayRelease('reconciling', true), true, 'a failed action gives it back');
  assert.equal(mayRelease('suspended', false), true);
  assert.equal(mayRelease('skipped', false), true);
  assert.equal(mayRelease(undefined, false), true, 'no longer declared here');
  assert.equal(mayRelease('reconciling', false), false, 'enabled but not answering yet');
});
