// What a node's DockerPluginNode says, composed from the controller's statuses and the cluster's view
// (reconcile/status-node.ts, pure part): entries per plugin, removal reports of deleted DockerPlugins,
// and the declared/ready counts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PluginStatus } from '../../../controller/api/status.ts';
import {
  composeNodeStatus,
  entryOf,
  losesFields,
  REMOVED,
  REMOVING,
} from '../../../controller/reconcile/status-node.ts';
import { conditionsFor } from '../../../controller/reconcile/status.ts';
import type { ClusterPlugin } from '../../../controller/sources/kube.ts';

function status(
  key: string,
  phase: 'ready' | 'reconciling' | 'stalled' | 'skipped',
  generation?: number,
): PluginStatus {
  const reason = phase === 'ready' ? 'Converged' : phase === 'skipped' ? 'NotSelected' : 'PULL_FAILED';
  return {
    key,
    plugin: `${key}:1.0`,
    pluginID: 'a'.repeat(64),
    reference: `127.0.0.1:5000/test/${key}:1.0`,
    digest: `sha256:${'b'.repeat(64)}`,
    enabled: phase === 'ready',
    observedHash: 'h',
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastAction: 'pull, enable',
    lastReconcileTime: '2026-12-06T20:00:00.000Z',
    conditions: conditionsFor(
      { phase, reason, message: phase === 'ready' ? '' : 'why' },
      [],
      '2026-12-06T20:00:00.000Z',
    ),
  };
}

function cluster(plugins: Record<string, ClusterPlugin>) {
  return { plugin: (key: string) => plugins[key], keys: () => Object.keys(plugins) };
}

const SINCE = '2026-12-06T21:00:00.000Z';

test('entryOf: the list-map entry carries ID, reference, digest, enabled, generation, conditions and last action', () => {
  const entry = entryOf(status('vol', 'ready', 3));
  assert.equal(entry.name, 'vol');
  assert.equal(entry.pluginID, 'a'.repeat(64));
  assert.equal(entry.digest, `sha256:${'b'.repeat(64)}`);
  assert.equal(entry.enabled, true);
  assert.equal(entry.observedGeneration, 3);
  assert.equal(entry.lastAction, 'pull, enable');
  assert.deepEqual(
    entry.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration]),
    [
      ['Ready', 'True', 'Converged', 3],
      ['Reconciling', 'False', 'Idle', 3],
      ['Stalled', 'False', 'NotStalled', 3],
    ],
  );
  // an empty message is left out (server-side apply would store null)
  assert.ok(entry.conditions?.every((c) => c.message === undefined));
  assert.ok(!('observedHash' in entry) && !('lastReconcileTime' in entry));
});

test('counts: declared are the selected, live DockerPlugins; ready only at their current generation', () => {
  const statuses = new Map([
    ['a', status('a', 'ready', 2)],
    ['b', status('b', 'ready', 1)], // generation 2 not observed yet
    ['c', status('c', 'reconciling', 1)],
  ]);
  const view = cluster({
    a: { generation: 2, deleting: false, selected: true },
    b: { generation: 2, deleting: false, selected: true },
    c: { generation: 1, deleting: false, selected: true },
    d: { generation: 1, deleting: false, selected: false },
  });
  const result = composeNodeStatus(
    statuses,
    view,
    () => true,
    () => SINCE,
  );
  assert.equal(result.declared, 3);
  assert.equal(result.ready, 1);
  assert.deepEqual(
    result.plugins.map((p) => p.name),
    ['a', 'b', 'c'],
  );
});

test('a DockerPlugin that does not select the node is not listed once nothing of it is owned', () => {
  const statuses = new Map([['a', status('a', 'skipped', 1)]]);
  const view = cluster({ a: { generation: 1, deleting: false, selected: false } });
  assert.deepEqual(
    composeNodeStatus(
      statuses,
      view,
      () => false,
      () => SINCE,
    ).plugins,
    [],
  );
  // still owned (its removal failed or is pending): it stays listed
  assert.deepEqual(
    composeNodeStatus(
      statuses,
      view,
      () => true,
      () => SINCE,
    ).plugins.map((p) => p.name),
    ['a'],
  );
});

test('a status left by an earlier run for a DockerPlugin that is gone is dropped unless still owned', () => {
  const statuses = new Map([['gone', status('gone', 'ready', 1)]]);
  assert.deepEqual(
    composeNodeStatus(
      statuses,
      cluster({}),
      () => false,
      () => SINCE,
    ).plugins,
    [],
  );
  assert.equal(
    composeNodeStatus(
      statuses,
      cluster({}),
      () => true,
      () => SINCE,
    ).plugins.length,
    1,
  );
});

test('deletion: Removing while the node still owns the plugin, Removed once it does not', () => {
  const view = cluster({ a: { generation: 4, deleting: true, selected: true } });
  // the controller removed it and forgot its status; the ledger still lists it (a prune held back)
  const removing = composeNodeStatus(
    new Map(),
    view,
    () => true,
    () => SINCE,
  );
  assert.equal(removing.declared, 0);
  const [entry] = removing.plugins;
  assert.equal(entry?.conditions?.find((c) => c.type === 'Ready')?.reason, REMOVING);
  assert.equal(entry?.conditions?.find((c) => c.type === 'Reconciling')?.status, 'True');
  const removed = composeNodeStatus(
    new Map(),
    view,
    () => false,
    () => SINCE,
  ).plugins[0];
  assert.equal(removed?.name, 'a');
  assert.equal(removed?.enabled, false);
  assert.equal(removed?.pluginID, undefined);
  assert.equal(removed?.observedGeneration, 4);
  assert.deepEqual(
    removed?.conditions?.map((c) => [c.type, c.status, c.reason, c.lastTransitionTime]),
    [
      ['Ready', 'False', REMOVED, SINCE],
      ['Reconciling', 'False', 'Idle', SINCE],
      ['Stalled', 'False', 'NotStalled', SINCE],
    ],
  );
  // an old Ready status of a deleted, no longer owned plugin is replaced by the removal report
  const stale = composeNodeStatus(
    new Map([['a', status('a', 'ready', 3)]]),
    view,
    () => false,
    () => SINCE,
  );
  assert.equal(stale.plugins.length, 1);
  assert.equal(stale.plugins[0]?.conditions?.[0]?.reason, REMOVED);
});

test('deletion on a node the DockerPlugin does not select reports nothing', () => {
  const view = cluster({ a: { generation: 4, deleting: true, selected: false } });
  assert.deepEqual(
    composeNodeStatus(
      new Map(),
      view,
      () => false,
      () => SINCE,
    ).plugins,
    [],
  );
});

test('losesFields: a removed key, list item or nested field counts; additions and changes do not', () => {
  const before = {
    declared: 1,
    plugins: [{ name: 'a', pluginID: 'x', conditions: [{ type: 'Ready', message: 'm' }] }],
  };
  assert.equal(losesFields(before, structuredClone(before)), false);
  assert.equal(
    losesFields(before, {
      declared: 2,
      plugins: [{ name: 'a', pluginID: 'y', conditions: [{ type: 'Ready', message: 'n' }] }, { name: 'b' }],
    }),
    false,
  );
  assert.equal(losesFields(before, { declared: 1, plugins: [] }), true);
  assert.equal(
    losesFields(before, {
      declared: 1,
      plugins: [{ name: 'a', conditions: [{ type: 'Ready', message: 'm' }] }],
    }),
    true,
  );
  assert.equal(
    losesFields(before, {
      declared: 1,
      plugins: [{ name: 'a', pluginID: 'x', conditions: [{ type: 'Ready' }] }],
    }),
    true,
  );
});
