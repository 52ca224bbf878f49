// Apply sets, plugin IDs, consent and host selection in plan(): who may prune, adopt or upgrade what.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConverged, isPlanError, plan, type PluginPlan } from '../../../controller/reconcile/plan.ts';
import {
  desired,
  facts,
  installed,
  inventory,
  KEY,
  NAME,
  noFacts,
  opts,
  privs,
  REMOTE_V2,
  SET,
} from './fixtures.ts';

const OTHER_SET = 'files:/srv/other';
const ID = 'a'.repeat(64);
const HAND_ID = 'c'.repeat(64);

function only(plans: readonly PluginPlan[]): PluginPlan {
  assert.equal(
    plans.length,
    1,
    `one plan expected, got ${plans.map((p) => `${p.key}:${p.outcome}`).join(', ')}`,
  );
  return plans[0]!;
}

function blockedCode(p: PluginPlan): string | undefined {
  const block = p.actions.find((a) => a.type === 'blocked');
  return block?.type === 'blocked' ? block.code : undefined;
}

describe('apply sets', () => {
  test('a set prunes only what it owns: another set’s plugin and a migrated entry stay', () => {
    const inv = inventory(['mine:latest', 'theirs:latest', 'old:latest'], {
      'theirs:latest': { set: OTHER_SET },
      'old:latest': { set: undefined },
    });
    const actual = ['mine:latest', 'theirs:latest', 'old:latest'].map((name) => installed({ name }));
    const plans = plan([], actual, inv, noFacts(), opts());
    assert.deepEqual(
      plans.map((p) => [p.name, p.outcome]),
      [['mine:latest', 'delete']],
    );
  });

  test('declaring a plugin another set owns is a conflict naming both sets, and changes nothing', () => {
    const p = only(
      plan(
        [desired()],
        [installed({ enabled: false })],
        inventory([NAME], { [NAME]: { set: OTHER_SET } }),
        noFacts(),
        opts(),
      ),
    );
    assert.equal(p.outcome, 'blocked');
    assert.equal(p.ownership, 'none');
    assert.equal(blockedCode(p), 'OWNERSHIP_CONFLICT');
    const reason = p.actions[0]?.reason ?? '';
    assert.match(reason, new RegExp(OTHER_SET.replaceAll('/', '\\/')));
    assert.match(reason, new RegExp(SET.replaceAll('/', '\\/')));
    assert.match(reason, /--take-ownership/);
    assert.equal(isPlanError(p), true, 'diff reports a conflict as an error');
  });

  test('--take-ownership moves the plugin to this set and converges it', () => {
    const p = only(
      plan(
        [desired()],
        [installed({ enabled: false })],
        inventory([NAME], { [NAME]: { set: OTHER_SET } }),
        noFacts(),
        opts({ takeOwnership: true }),
      ),
    );
    assert.equal(p.ownership, 'keep');
    assert.deepEqual(p.claim, { set: SET, selectedBy: 'labels', id: ID });
    assert.deepEqual(
      p.actions.map((a) => a.type),
      ['enable'],
    );
  });

  test('an entry migrated from before apply sets is claimed by the first set that declares it', () => {
    const p = only(
      plan([desired()], [installed()], inventory([NAME], { [NAME]: { set: undefined } }), noFacts(), opts()),
    );
    assert.equal(p.outcome, 'unchanged');
    assert.equal(p.ownership, 'keep');
    assert.equal(p.claim?.set, SET);
    assert.equal(p.claim?.id, ID, 'the installed ID is recorded with the claim');
  });
});

describe('ownership by plugin ID', () => {
  const replaced = (): ReturnType<typeof inventory> => inventory([NAME], { [NAME]: { id: ID } });

  test('a plugin installed by hand under an owned name, from another remote, is not upgraded over', () => {
    const hand = installed({ id: HAND_ID, reference: REMOTE_V2 });
    const p = only(plan([desired()], [hand], replaced(), facts(), opts()));
    assert.equal(p.outcome, 'blocked');
    assert.equal(p.ownership, 'none');
    assert.equal(blockedCode(p), 'NAME_CONFLICT');
    assert.match(p.actions[0]?.reason ?? '', /not the one plugctl installed/);
  });

  test('even from the declared remote, a replaced plugin is not adopted silently', () => {
    const p = only(plan([desired()], [installed({ id: HAND_ID })], replaced(), facts(), opts()));
    assert.equal(blockedCode(p), 'NAME_CONFLICT');
  });

  test('a replaced plugin is never pruned: plugctl forgets its own and leaves theirs', () => {
    const hand = installed({ id: HAND_ID, reference: REMOTE_V2 });
    const p = only(plan([], [hand], replaced(), noFacts(), opts()));
    assert.equal(p.ownership, 'drop');
    assert.equal(p.outcome, 'unchanged');
    assert.deepEqual(
      p.actions.map((a) => a.type),
      ['noop'],
    );
    assert.match(p.actions[0]?.reason ?? '', /left alone/);
  });

  test('--take-ownership adopts the replaced plugin and upgrades it to the declaration', () => {
    const hand = installed({ id: HAND_ID, reference: REMOTE_V2 });
    const p = only(plan([desired()], [hand], replaced(), facts(), opts({ takeOwnership: true })));
    assert.equal(p.claim?.id, HAND_ID);
    assert.deepEqual(
      p.actions.map((a) => a.type),
      ['adopt', 'disable', 'upgrade', 'set', 'enable'],
    );
  });

  test('the same ID is ours: converged', () => {
    const p = only(plan([desired()], [installed()], replaced(), noFacts(), opts()));
    assert.equal(p.outcome, 'unchanged');
  });
});

describe('consent is re-checked on every pass', () => {
  test('grants narrowed in the document stall the installed plugin with both lists, removing nothing', () => {
    const narrowed = desired({ privileges: [{ name: 'network', value: ['host'] }] });
    const p = only(plan([narrowed], [installed()], inventory([NAME]), noFacts(), opts()));
    assert.equal(p.outcome, 'blocked');
    assert.equal(blockedCode(p), 'PRIVILEGES_MISMATCH');
    assert.equal(p.actions.length, 1, 'nothing but the report');
    const reason = p.actions[0]?.reason ?? '';
    assert.match(reason, /holds network=\[host\], mount=\[\/var\/lib\/vol, \/etc\/vol\]/);
    assert.match(reason, /grants network=\[host\]\./);
    assert.equal(isPlanError(p), false, 'diff reports a would-be-blocked plugin as a difference');
    assert.equal(isConverged([p]), false);
  });

  test('grantAllPrivileges consents to whatever the installed plugin holds', () => {
    const p = only(
      plan([desired({ privileges: 'all' })], [installed()], inventory([NAME]), noFacts(), opts()),
    );
    assert.equal(p.outcome, 'unchanged');
  });

  test('the same grants in another order are consent', () => {
    const p = only(
      plan(
        [desired({ privileges: [...privs()].reverse() })],
        [installed()],
        inventory([NAME]),
        noFacts(),
        opts(),
      ),
    );
    assert.equal(p.outcome, 'unchanged');
  });
});

describe('documents that do not select this host', () => {
  const skip = (byOverride: boolean) => ({
    key: KEY,
    name: NAME,
    reason: 'its nodeSelector role=storage does not match this host',
    byOverride,
  });

  test('an owned plugin deselected by the persistent labels is removed, with the reason', () => {
    const p = only(plan([], [installed()], inventory([NAME]), noFacts(), opts({ skipped: [skip(false)] })));
    assert.equal(p.outcome, 'delete');
    assert.deepEqual(
      p.actions.map((a) => a.type),
      ['disable', 'remove'],
    );
    assert.match(p.actions[0]?.reason ?? '', /no longer selected for this host/);
  });

  test('an override alone never deletes: deselected by --node-labels, the plugin is kept and reported', () => {
    const p = only(plan([], [installed()], inventory([NAME]), noFacts(), opts({ skipped: [skip(true)] })));
    assert.equal(p.outcome, 'skipped');
    assert.equal(p.ownership, 'keep');
    assert.match(p.actions[0]?.reason ?? '', /override alone never deletes/);
    assert.equal(isConverged([p]), true);
  });

  test('a plugin installed for an override is kept when the override is forgotten', () => {
    const inv = inventory([NAME], { [NAME]: { selectedBy: 'override' } });
    const p = only(plan([], [installed()], inv, noFacts(), opts({ skipped: [skip(false)] })));
    assert.equal(p.outcome, 'skipped');
    assert.match(p.actions[0]?.reason ?? '', /lost override never deletes/);
  });

  test('a document not selected here and not installed is reported as skipped, never silently absent', () => {
    const p = only(plan([], [], inventory(), noFacts(), opts({ skipped: [skip(false)] })));
    assert.equal(p.outcome, 'skipped');
    assert.equal(p.ownership, 'none');
  });

  test('a selected document records how it selected the host', () => {
    const p = only(plan([desired({ selectedBy: 'override' })], [], inventory(), facts(), opts()));
    assert.equal(p.claim?.selectedBy, 'override');
  });
});
