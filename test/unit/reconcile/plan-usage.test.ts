/**
 * In-use accounting in the planner: with inUse Wait, what the usage lookup found decides whether a
 * disruption is blocked (and the block names the users) or planned with the force fallback for a
 * lost reference count; inUse Force is unchanged; needsUsage asks only for disruptive plans.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plan } from '../../../controller/reconcile/plan.ts';
import { needsUsage, withUsage } from '../../../controller/reconcile/usage.ts';
import type { InstalledPlugin, PluginUsage, PluginUsageReader } from '../../../controller/store/store.ts';
import { describeUsage } from '../../../controller/store/usage.ts';
import { desired, facts, installed, inventory, NAME, opts, privs, REMOTE_V2 } from './fixtures.ts';

const NONE: PluginUsage = { volumes: [], networks: [], logContainers: [], complete: true };
const USED: PluginUsage = {
  volumes: ['a', 'b', 'c'],
  networks: [],
  logContainers: ['web-1'],
  complete: true,
};

function upgradePlan(usage: PluginUsage | undefined, inUse: 'Wait' | 'Force' = 'Wait') {
  const plugin = installed(usage === undefined ? {} : { usage });
  const [p] = plan(
    [desired({ remote: REMOTE_V2, inUse })],
    [plugin],
    inventory([NAME]),
    facts({ [REMOTE_V2]: privs() }),
    opts(),
  );
  assert.ok(p !== undefined);
  return p;
}

describe('plan with usage', () => {
  it('blocks an upgrade while something uses the plugin, naming every user', () => {
    const p = upgradePlan(USED);
    assert.equal(p.outcome, 'blocked');
    const block = p.actions[0];
    assert.ok(block?.type === 'blocked');
    assert.equal(block.code, 'PLUGIN_IN_USE');
    assert.equal(block.kind, 'waiting');
    assert.match(block.reason, /in use by 3 volumes: a, b, c; 1 container's log driver: web-1/);
  });

  it('plans the upgrade with the force fallback when nothing uses the plugin', () => {
    const p = upgradePlan(NONE);
    assert.equal(p.outcome, 'configure');
    const stop = p.actions[0];
    assert.ok(stop?.type === 'disable');
    assert.equal(stop.force, false);
    assert.equal(stop.forceIfUnused, true);
    assert.deepEqual(needsUsage([p]), new Set(), 'a plan made with usage needs no second lookup');
  });

  it('treats an incomplete answer as in use', () => {
    const p = upgradePlan({ ...NONE, complete: false });
    assert.equal(p.outcome, 'blocked');
    assert.match(p.actions[0]?.reason ?? '', /more not checked yet/);
  });

  it('inUse Force disables with force whatever uses it', () => {
    const p = upgradePlan(USED, 'Force');
    const stop = p.actions[0];
    assert.ok(stop?.type === 'disable');
    assert.equal(stop.force, true);
  });

  it('asks for usage only when a plan disrupts an enabled plugin without force', () => {
    assert.deepEqual(needsUsage([upgradePlan(undefined)]), new Set([NAME]));
    assert.deepEqual(needsUsage([upgradePlan(undefined, 'Force')]), new Set());
    const [unchanged] = plan([desired()], [installed()], inventory([NAME]), facts(), opts());
    assert.ok(unchanged !== undefined);
    assert.deepEqual(needsUsage([unchanged]), new Set());
  });

  it('prunes an unused plugin with the fallback, and keeps a used one', () => {
    const prune = (usage: PluginUsage) =>
      plan([], [installed({ usage })], inventory([NAME]), facts(), opts()).find((p) => p.name === NAME);
    const free = prune(NONE);
    assert.deepEqual(
      free?.actions.map((a) => [a.type, 'forceIfUnused' in a ? a.forceIfUnused : undefined]),
      [
        ['disable', true],
        ['remove', true],
      ],
    );
    const used = prune(USED);
    assert.equal(used?.outcome, 'blocked');
    assert.match(used?.actions[0]?.reason ?? '', /in use by 3 volumes/);
  });

  it('withUsage looks up only the named plugins, once', async () => {
    const asked: string[][] = [];
    const reader: PluginUsageReader = {
      async usage(plugins: readonly InstalledPlugin[]) {
        asked.push(plugins.map((p) => p.name));
        return new Map(plugins.map((p) => [p.name, USED]));
      },
      invalidateUsage() {},
    };
    const other = installed({ name: 'other:latest', id: 'c'.repeat(64) });
    const out = await withUsage([installed(), other], new Set([NAME]), reader);
    assert.deepEqual(asked, [[NAME]]);
    assert.deepEqual(out?.find((p) => p.name === NAME)?.usage, USED);
    assert.equal(out?.find((p) => p.name === 'other:latest')?.usage, undefined);
    assert.equal(await withUsage([installed()], new Set(), reader), undefined);
  });

  it('describes usage in one line, capped per kind', () => {
    assert.equal(describeUsage(NONE), 'nothing');
    const many = { ...NONE, networks: Array.from({ length: 12 }, (_, i) => `n${i}`) };
    assert.match(describeUsage(many), /^12 networks: n0, .*n9, and 2 more$/);
  });
});
