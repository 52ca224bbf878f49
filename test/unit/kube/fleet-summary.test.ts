// The fleet summary reducer: counts as DaemonSets count them, kstatus conditions (Ready only when every
// selected node runs the current generation; Stalled naming the first nodes and why), transition times
// kept while a condition holds, and the per-plugin index of node reports.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NodePluginStatus, StatusCondition } from '../../../controller/api/status.ts';
import {
  ReportIndex,
  deletionHolders,
  sameStatus,
  summarize,
} from '../../../controller/kube/fleet-summary.ts';
import type { FleetNode, SummaryInput } from '../../../controller/kube/fleet-summary.ts';

const T0 = '2026-12-06T20:00:00Z';
const T1 = '2026-12-06T20:05:00Z';

const nodes = (...names: string[]): FleetNode[] =>
  names.map((name) => ({ name, labels: { pool: name.startsWith('gpu') ? 'gpu' : 'cpu' } }));

function entry(
  generation: number,
  ready: 'True' | 'False',
  extra: { stalled?: [string, string]; conditionGeneration?: number } = {},
): NodePluginStatus {
  const conditions: StatusCondition[] = [
    {
      type: 'Ready',
      status: ready,
      reason: ready === 'True' ? 'Converged' : 'Reconciling',
      lastTransitionTime: T0,
      ...(extra.conditionGeneration !== undefined ? { observedGeneration: extra.conditionGeneration } : {}),
    },
  ];
  if (extra.stalled !== undefined)
    conditions.push({
      type: 'Stalled',
      status: 'True',
      reason: extra.stalled[0],
      message: extra.stalled[1],
      lastTransitionTime: T0,
    });
  return { name: 'p', observedGeneration: generation, enabled: true, conditions };
}

function input(
  over: Partial<Omit<SummaryInput, 'reports'>> & { reports?: Record<string, NodePluginStatus> },
): SummaryInput {
  return {
    plugin: { name: 'p', generation: 2 },
    nodes: nodes('a', 'b', 'c'),
    gone: new Map(),
    now: T1,
    ...over,
    reports: new Map(Object.entries(over.reports ?? {})),
  };
}

const cond = (status: ReturnType<typeof summarize>, type: string) =>
  status.conditions?.find((c) => c.type === type);

test('every selected node ready at the current generation: Ready True, counts 3/3', () => {
  const status = summarize(
    input({ reports: { a: entry(2, 'True'), b: entry(2, 'True'), c: entry(2, 'True') } }),
  );
  assert.equal(status.observedGeneration, 2);
  assert.deepEqual(status.nodes, { selected: 3, ready: 3, updated: 3, unavailable: 0 });
  assert.equal(status.ready, '3/3');
  assert.deepEqual(
    status.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration]),
    [
      ['Ready', 'True', 'Converged', 2],
      ['Reconciling', 'False', 'Converged', 2],
      ['Stalled', 'False', 'NotStalled', 2],
    ],
  );
  assert.equal(cond(status, 'Ready')?.message, '3/3 nodes ready');
  assert.equal(cond(status, 'Ready')?.lastTransitionTime, T1);
});

test('a node still at the old generation: available but not updated, so not Ready', () => {
  const status = summarize(
    input({ reports: { a: entry(2, 'True'), b: entry(1, 'True'), c: entry(2, 'True') } }),
  );
  assert.deepEqual(status.nodes, { selected: 3, ready: 2, updated: 2, unavailable: 0 });
  assert.equal(status.ready, '2/3');
  assert.equal(cond(status, 'Ready')?.status, 'False');
  assert.equal(cond(status, 'Ready')?.reason, 'Progressing');
  assert.equal(cond(status, 'Reconciling')?.status, 'True');
  assert.match(cond(status, 'Reconciling')?.message ?? '', /waiting for 1 node: b$/);
});

test("a Ready condition computed for an older generation does not count, even if the entry's generation is current", () => {
  const status = summarize(
    input({
      reports: { a: entry(2, 'True', { conditionGeneration: 1 }), b: entry(2, 'True'), c: entry(2, 'True') },
    }),
  );
  assert.equal(status.nodes?.ready, 2);
});

test('disrupted and unreported nodes are unavailable; the selector decides what is selected', () => {
  const status = summarize(
    input({
      plugin: { name: 'p', generation: 2, nodeSelector: { matchLabels: { pool: 'gpu' } } },
      nodes: nodes('gpu-1', 'gpu-2', 'gpu-3', 'cpu-1'),
      reports: { 'gpu-1': entry(2, 'True'), 'gpu-2': entry(2, 'False'), 'cpu-1': entry(2, 'True') },
    }),
  );
  assert.deepEqual(status.nodes, { selected: 3, ready: 1, updated: 2, unavailable: 2 });
  assert.equal(status.ready, '1/3');
  assert.match(cond(status, 'Reconciling')?.message ?? '', /waiting for 2 nodes: gpu-2, gpu-3$/);
});

test('Stalled names the first three nodes with their reasons and counts the rest', () => {
  const names = ['n1', 'n2', 'n3', 'n4', 'n5'];
  const reports: Record<string, NodePluginStatus> = {};
  for (const n of names)
    reports[n] = entry(2, 'False', { stalled: ['PRIVILEGES_MISMATCH', `wants network on ${n}`] });
  const status = summarize(input({ nodes: nodes(...names), reports }));
  const stalled = cond(status, 'Stalled');
  assert.equal(stalled?.status, 'True');
  assert.equal(stalled?.reason, 'PRIVILEGES_MISMATCH');
  assert.equal(
    stalled?.message,
    '5 nodes stalled: n1: PRIVILEGES_MISMATCH: wants network on n1; n2: PRIVILEGES_MISMATCH: wants network on n2; n3: PRIVILEGES_MISMATCH: wants network on n3; and 2 more',
  );
  assert.equal(cond(status, 'Ready')?.reason, 'Stalled');
  assert.equal(cond(status, 'Reconciling')?.status, 'False', 'nothing left that progresses on its own');
});

test('mixed stall reasons are NodesStalled; a gone agent is stalled AgentGone and unavailable even if its report says Ready', () => {
  const status = summarize(
    input({
      reports: {
        a: entry(2, 'False', { stalled: ['PULL_DENIED', 'denied'] }),
        b: entry(2, 'True'),
        c: entry(2, 'True'),
      },
      gone: new Map([['b', 'agent heartbeat not renewed within the grace period (5m)']]),
    }),
  );
  assert.deepEqual(status.nodes, { selected: 3, ready: 1, updated: 3, unavailable: 2 });
  const stalled = cond(status, 'Stalled');
  assert.equal(stalled?.reason, 'NodesStalled');
  assert.match(stalled?.message ?? '', /a: PULL_DENIED: denied; b: AgentGone: agent heartbeat not renewed/);
});

test('a long node message is cut', () => {
  const status = summarize(
    input({
      nodes: nodes('a'),
      reports: { a: entry(2, 'False', { stalled: ['X', 'y'.repeat(5000)] }) },
    }),
  );
  assert.ok((cond(status, 'Stalled')?.message ?? '').length < 300);
});

test('no node selected: Ready True, NoNodesSelected, 0/0', () => {
  const status = summarize(input({ nodes: [] }));
  assert.equal(status.ready, '0/0');
  assert.equal(cond(status, 'Ready')?.status, 'True');
  assert.equal(cond(status, 'Ready')?.reason, 'NoNodesSelected');
});

test('deleting: Ready False Terminating, naming the nodes that still list the plugin', () => {
  const status = summarize(
    input({
      plugin: { name: 'p', generation: 2, deleting: true },
      reports: { a: entry(2, 'True') },
      removing: ['a'],
    }),
  );
  assert.equal(cond(status, 'Ready')?.reason, 'Terminating');
  assert.equal(cond(status, 'Ready')?.status, 'False');
  assert.equal(cond(status, 'Reconciling')?.message, 'deleting: waiting for 1 node to remove the plugin: a');
});

test('suspended: reason Suspended, nothing reconciling', () => {
  const status = summarize(
    input({ plugin: { name: 'p', generation: 2, suspend: true }, reports: { a: entry(2, 'True') } }),
  );
  assert.equal(cond(status, 'Ready')?.reason, 'Suspended');
  assert.equal(cond(status, 'Ready')?.status, 'False');
  assert.equal(cond(status, 'Reconciling')?.status, 'False');
});

test('transition times are kept while a status holds and move when it changes; unchanged input gives the same status', () => {
  const reports = { a: entry(2, 'True'), b: entry(2, 'True'), c: entry(2, 'False') };
  const first = summarize(input({ reports, now: T0 }));
  const again = summarize(
    input({ reports, now: T1, plugin: { name: 'p', generation: 2, previous: first.conditions } }),
  );
  assert.ok(sameStatus(first, again), 'same input, same status: nothing to write');
  const converged = summarize(
    input({
      reports: { ...reports, c: entry(2, 'True') },
      now: T1,
      plugin: { name: 'p', generation: 2, previous: first.conditions },
    }),
  );
  assert.equal(cond(converged, 'Ready')?.lastTransitionTime, T1);
  assert.equal(cond(converged, 'Stalled')?.lastTransitionTime, T0, 'Stalled stayed False');
});

test('sameStatus ignores key order, condition order and null messages', () => {
  const status = summarize(input({ reports: { a: entry(2, 'True') } }));
  const shuffled = JSON.parse(JSON.stringify(status)) as typeof status;
  shuffled.conditions = [...(shuffled.conditions ?? [])].reverse().map((c) => ({
    ...c,
    message: c.message ?? (null as unknown as undefined),
  }));
  assert.ok(sameStatus(status, shuffled));
  assert.ok(!sameStatus(status, { ...status, ready: '9/9' }));
  assert.ok(!sameStatus(status, undefined));
});

test('ReportIndex: per-plugin reports, holders, and which plugins an update changed', () => {
  const index = new ReportIndex();
  const e = (name: string, generation: number): NodePluginStatus => ({
    name,
    observedGeneration: generation,
  });
  assert.deepEqual([...index.update('n1', [e('x', 1), e('y', 1)])].sort(), ['x', 'y']);
  assert.deepEqual([...index.update('n2', [e('x', 1)])], ['x']);
  assert.deepEqual(index.holders('x'), ['n1', 'n2']);
  assert.deepEqual([...index.update('n1', [e('x', 1), e('y', 1)])], [], 'same entries: nothing changed');
  assert.deepEqual([...index.update('n1', [e('x', 2)])].sort(), ['x', 'y'], 'x changed, y dropped');
  assert.equal(index.reports('x').get('n1')?.observedGeneration, 2);
  assert.deepEqual(index.holders('y'), []);
  assert.deepEqual([...index.update('n2', undefined)], ['x'], 'the DockerPluginNode is gone');
  assert.deepEqual(index.holders('x'), ['n1']);
  assert.deepEqual(index.nodes(), ['n1']);
});

test('deletionHolders: who holds a deleted plugin, and which holders are gone', () => {
  const removal = (reason: string): NodePluginStatus => ({
    name: 'p',
    conditions: [{ type: 'Ready', status: 'False', reason, lastTransitionTime: T0 }],
  });
  const holders = deletionHolders({
    selected: ['removed', 'removing', 'silent', 'no-agent', 'dead'],
    reports: new Map([
      ['removed', removal('Removed')],
      ['removing', removal('Removing')],
      ['dead', entry(2, 'True')],
      ['unselected', entry(2, 'True')], // relabelled out, still has it
    ]),
    gone: new Map([['dead', 'agent heartbeat not renewed within the grace period (5m)']]),
    hasAgent: (node) => node !== 'no-agent',
  });
  // silent: its agent runs but has not reported the deletion yet; no-agent: nothing could be installed
  assert.deepEqual(holders, { live: ['removing', 'silent', 'unselected'], gone: ['dead'] });
  assert.deepEqual(
    deletionHolders({
      selected: ['a'],
      reports: new Map([['a', removal('Removed')]]),
      gone: new Map(),
      hasAgent: () => true,
    }),
    { live: [], gone: [] },
  );
});
