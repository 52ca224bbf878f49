/**
 * The fleet summary of one DockerPlugin, computed from what every node's agent reported in its
 * DockerPluginNode. Pure: the elected leader (fleet.ts) feeds it its caches and writes the result.
 *
 * Counts follow DaemonSet status: `selected` nodes are the Node objects whose labels the plugin's
 * nodeSelector matches; a node is `available` when its agent is alive and reports the plugin Ready
 * (at any generation: an old version that works is available), `updated` when its entry was computed
 * for the current generation, `ready` when both; `unavailable` is selected minus available (no report
 * yet, disrupted for a change, failing, or the agent gone).
 *
 * Conditions follow kstatus: Ready is True only when every selected node is ready at the current
 * generation (so `kubectl wait --for=condition=Ready` means the fleet converged); Stalled lists the
 * first few nodes that need a human and why; Reconciling says work is still going on. Transition times
 * are carried over from the previous status while a condition's status stays the same, so an unchanged
 * fleet produces an identical status (and the writer then writes nothing).
 */
import { matchesSelector } from '../api/selector.ts';
import { REMOVED_REASON } from '../api/status.ts';
import type { DockerPluginStatus, NodePluginStatus, StatusCondition } from '../api/status.ts';
import type { LabelSelector } from '../api/types.ts';

/** What the summary needs of a DockerPlugin. */
export interface FleetPlugin {
  name: string;
  generation: number;
  nodeSelector?: LabelSelector;
  suspend?: boolean;
  /** metadata.deletionTimestamp is set */
  deleting?: boolean;
  /** the conditions currently stored, for their transition times */
  previous?: readonly StatusCondition[];
}

/** What the summary needs of a Node. */
export interface FleetNode {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** Inputs of summarize(). */
export interface SummaryInput {
  plugin: FleetPlugin;
  /** every Node of the cluster */
  nodes: Iterable<FleetNode>;
  /** this plugin's entry in each node's DockerPluginNode, by node name */
  reports: ReadonlyMap<string, NodePluginStatus>;
  /** nodes whose agent is gone, with why (e.g. "no heartbeat for 6m") */
  gone: ReadonlyMap<string, string>;
  /** while deleting: live nodes that still list the plugin (the finalizer waits for them) */
  removing?: readonly string[];
  /** RFC 3339 time for new transitions */
  now: string;
}

/** How many nodes a message names before it says "and N more". */
export const MESSAGE_NODES = 3;
const MESSAGE_DETAIL_CHARS = 200;

interface NodeProblem {
  node: string;
  reason: string;
  message: string;
}

function condition(
  conditions: readonly StatusCondition[] | undefined,
  type: string,
): StatusCondition | undefined {
  return conditions?.find((c) => c.type === type);
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** "a, b, c and 4 more" */
function nodeList(names: readonly string[]): string {
  const shown = names.slice(0, MESSAGE_NODES).join(', ');
  return names.length > MESSAGE_NODES ? `${shown} and ${names.length - MESSAGE_NODES} more` : shown;
}

function problemList(problems: readonly NodeProblem[]): string {
  const shown = problems
    .slice(0, MESSAGE_NODES)
    .map((p) =>
      cut(`${p.node}: ${p.reason}${p.message === '' ? '' : `: ${p.message}`}`, MESSAGE_DETAIL_CHARS),
    )
    .join('; ');
  return problems.length > MESSAGE_NODES ? `${shown}; and ${problems.length - MESSAGE_NODES} more` : shown;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The names of the nodes whose labels `selector` matches, sorted. */
export function selectedNodes(selector: LabelSelector | undefined, nodes: Iterable<FleetNode>): string[] {
  return [...nodes]
    .filter((node) => matchesSelector(selector, node.labels))
    .map((node) => node.name)
    .sort();
}

/** Inputs of deletionHolders(). */
export interface HoldersInput {
  /** nodes the DockerPlugin selects */
  selected: readonly string[];
  /** its entry in each node's DockerPluginNode */
  reports: ReadonlyMap<string, NodePluginStatus>;
  /** nodes whose agent is gone */
  gone: ReadonlyMap<string, string>;
  /** whether a node has (or had) an agent: a heartbeat Lease exists for it */
  hasAgent: (node: string) => boolean;
}

/**
 * Which nodes hold a deleted DockerPlugin's finalizer: a node whose entry for it does not say
 * REMOVED_REASON (its agent still has something of it, or has not reported yet), and a selected node
 * with an agent but no entry at all (its agent has not reported the deletion yet). A node that never
 * had an agent holds nothing. `live` are those whose agent is alive (the finalizer waits for them);
 * `gone` those past the grace period (they are skipped).
 */
export function deletionHolders(input: HoldersInput): { live: string[]; gone: string[] } {
  const candidates = new Set<string>([...input.reports.keys(), ...input.selected]);
  const selected = new Set(input.selected);
  const live: string[] = [];
  const gone: string[] = [];
  for (const node of [...candidates].sort()) {
    const entry = input.reports.get(node);
    const holds =
      entry !== undefined
        ? condition(entry.conditions, 'Ready')?.reason !== REMOVED_REASON
        : selected.has(node) && input.hasAgent(node);
    if (!holds) continue;
    (input.gone.has(node) ? gone : live).push(node);
  }
  return { live, gone };
}

/** Computes the status of `input.plugin` (see the module comment for what each field means). */
export function summarize(input: SummaryInput): DockerPluginStatus {
  const { plugin, reports, gone } = input;
  const generation = plugin.generation;
  const selected = selectedNodes(plugin.nodeSelector, input.nodes);
  let ready = 0;
  let updated = 0;
  let available = 0;
  const stalled: NodeProblem[] = [];
  const pending: string[] = [];
  for (const node of selected) {
    const entry = reports.get(node);
    const goneWhy = gone.get(node);
    const isUpdated = entry?.observedGeneration === generation;
    const readyCondition = condition(entry?.conditions, 'Ready');
    const isAvailable = goneWhy === undefined && readyCondition?.status === 'True';
    const isReady =
      isAvailable &&
      isUpdated &&
      (readyCondition.observedGeneration === undefined || readyCondition.observedGeneration === generation);
    if (isUpdated) updated++;
    if (isAvailable) available++;
    if (isReady) {
      ready++;
      continue;
    }
    const stalledCondition = condition(entry?.conditions, 'Stalled');
    if (goneWhy !== undefined) stalled.push({ node, reason: 'AgentGone', message: goneWhy });
    else if (stalledCondition?.status === 'True')
      stalled.push({ node, reason: stalledCondition.reason, message: stalledCondition.message ?? '' });
    else pending.push(node);
  }

  const total = selected.length;
  const counts = `${ready}/${total} nodes ready, ${updated} up to date`;
  const wanted: Omit<StatusCondition, 'lastTransitionTime' | 'observedGeneration'>[] = [];
  const stalledCondition = (): Omit<StatusCondition, 'lastTransitionTime' | 'observedGeneration'> => {
    if (stalled.length === 0) return { type: 'Stalled', status: 'False', reason: 'NotStalled' };
    const reasons = new Set(stalled.map((p) => p.reason));
    return {
      type: 'Stalled',
      status: 'True',
      reason: reasons.size === 1 ? (stalled[0]?.reason ?? 'NodesStalled') : 'NodesStalled',
      message: `${plural(stalled.length, 'node')} stalled: ${problemList(stalled)}`,
    };
  };

  if (plugin.deleting === true) {
    const removing = input.removing ?? [];
    const message =
      removing.length === 0
        ? 'deleting: no node lists the plugin any more'
        : `deleting: waiting for ${plural(removing.length, 'node')} to remove the plugin: ${nodeList(removing)}`;
    wanted.push(
      { type: 'Ready', status: 'False', reason: 'Terminating', message },
      { type: 'Reconciling', status: 'True', reason: 'Terminating', message },
      stalledCondition(),
    );
  } else if (plugin.suspend === true) {
    const message = `suspended: ${counts}`;
    wanted.push(
      { type: 'Ready', status: ready === total ? 'True' : 'False', reason: 'Suspended', message },
      { type: 'Reconciling', status: 'False', reason: 'Suspended', message },
      stalledCondition(),
    );
  } else if (ready === total) {
    const message = total === 0 ? 'no node is selected' : `${ready}/${total} nodes ready`;
    wanted.push(
      { type: 'Ready', status: 'True', reason: total === 0 ? 'NoNodesSelected' : 'Converged', message },
      { type: 'Reconciling', status: 'False', reason: 'Converged' },
      stalledCondition(),
    );
  } else {
    wanted.push(
      {
        type: 'Ready',
        status: 'False',
        reason: pending.length === 0 ? 'Stalled' : 'Progressing',
        message: counts,
      },
      pending.length === 0
        ? { type: 'Reconciling', status: 'False', reason: 'Stalled' }
        : {
            type: 'Reconciling',
            status: 'True',
            reason: 'Progressing',
            message: `waiting for ${plural(pending.length, 'node')}: ${nodeList(pending)}`,
          },
      stalledCondition(),
    );
  }

  const conditions = wanted.map((c): StatusCondition => {
    const before = condition(plugin.previous, c.type);
    return {
      ...c,
      lastTransitionTime:
        before !== undefined && before.status === c.status ? before.lastTransitionTime : input.now,
      observedGeneration: generation,
    };
  });
  return {
    observedGeneration: generation,
    nodes: { selected: total, ready, updated, unavailable: total - available },
    ready: `${ready}/${total}`,
    conditions,
  };
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const field = (value as Record<string, unknown>)[key];
      // the server stores an absent message as absent or null: both mean "nothing to say"
      if (field === undefined || field === null) continue;
      out[key] = canonical(field);
    }
    return out;
  }
  return value;
}

/**
 * Whether two statuses say the same (field order, absent versus null, and condition order do not
 * matter): the writer writes only when they differ.
 */
export function sameStatus(a: DockerPluginStatus | undefined, b: DockerPluginStatus | undefined): boolean {
  const normal = (s: DockerPluginStatus | undefined) =>
    JSON.stringify(
      canonical({
        ...s,
        conditions: [...(s?.conditions ?? [])].sort((x, y) => x.type.localeCompare(y.type)),
      }),
    );
  return normal(a) === normal(b);
}

/**
 * Every node's entries, indexed by plugin: what summarize() needs as `reports`. Updated one
 * DockerPluginNode at a time; each update says which plugins' entries changed, so the leader
 * recomputes only those.
 */
export class ReportIndex {
  readonly #byPlugin = new Map<string, Map<string, NodePluginStatus>>();
  readonly #byNode = new Map<string, Map<string, string>>(); // node -> plugin -> entry JSON

  /** Replaces what `node` reports (undefined: its DockerPluginNode is gone); returns the plugins whose entry changed. */
  update(node: string, entries: readonly NodePluginStatus[] | undefined): Set<string> {
    const changed = new Set<string>();
    const before = this.#byNode.get(node) ?? new Map<string, string>();
    const after = new Map<string, string>();
    for (const entry of entries ?? []) {
      const json = JSON.stringify(canonical(entry));
      after.set(entry.name, json);
      if (before.get(entry.name) !== json) {
        changed.add(entry.name);
        let nodes = this.#byPlugin.get(entry.name);
        if (nodes === undefined) this.#byPlugin.set(entry.name, (nodes = new Map()));
        nodes.set(node, entry);
      }
    }
    for (const plugin of before.keys()) {
      if (after.has(plugin)) continue;
      changed.add(plugin);
      const nodes = this.#byPlugin.get(plugin);
      nodes?.delete(node);
      if (nodes?.size === 0) this.#byPlugin.delete(plugin);
    }
    if (after.size === 0) this.#byNode.delete(node);
    else this.#byNode.set(node, after);
    return changed;
  }

  /** `plugin`'s entry on each node that lists it. */
  reports(plugin: string): ReadonlyMap<string, NodePluginStatus> {
    return this.#byPlugin.get(plugin) ?? new Map();
  }

  /** Nodes whose DockerPluginNode still lists `plugin`, sorted. */
  holders(plugin: string): string[] {
    return [...(this.#byPlugin.get(plugin)?.keys() ?? [])].sort();
  }

  /** Every node that reports anything. */
  nodes(): string[] {
    return [...this.#byNode.keys()];
  }
}
