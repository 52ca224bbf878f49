/**
 * Kubernetes mode's status sink: one cluster-scoped DockerPluginNode named after the node, written
 * only by this node's agent with server-side apply under its own field manager, and owned by the
 * Node object (the cluster deletes it with the node). Its status lists, per DockerPlugin selecting the
 * node (a list-map keyed by name), what the controller observed: plugin ID, reference, digest, enabled,
 * the generation it was computed for, the kstatus conditions and the last action.
 *
 * Besides the controller's statuses the sink reports what only the cluster knows: a DockerPlugin
 * being deleted whose plugin this node has removed (its entry says Removed until the object is gone,
 * so whoever releases the finalizer can tell "removed" from "not reported yet"), and the node's
 * declared/ready counts. Writes are coalesced (one per `delayMs` at most), skipped when the body is
 * unchanged, and retried with backoff; a failed write never blocks the controller.
 */
import type { Logger } from 'pino';
import type {
  Condition,
  NodePluginStatus,
  PluginStatus,
  StatusCondition,
  StatusSink,
} from '../api/status.ts';
import { describeError } from '../errors.ts';
import { serverSideApply } from '../kube/apply.ts';
import type { KubeClient } from '../kube/client.ts';
import { hasStatus } from '../kube/errors.ts';
import { DOCKER_PLUGIN_NODES, objectPath } from '../kube/resources.ts';
import type { KubeObject } from '../kube/resources.ts';
import { Backoff } from '../runtime/backoff.ts';
import type { BackoffPolicy } from '../runtime/backoff.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { ClusterPlugin, NodeIdentity } from '../sources/kube.ts';
import { phaseOf } from './status.ts';
import { REMOVED_REASON } from '../api/status.ts';

/**
 * Ready reason of a deleted DockerPlugin whose plugin this node no longer has: the reason the fleet
 * leader waits for before it releases the finalizer (api/status.ts, shared with kube/fleet.ts).
 */
export const REMOVED = REMOVED_REASON;
/** Ready reason of a deleted DockerPlugin whose plugin this node still has to remove. */
export const REMOVING = 'Removing';

/** What the sink reads of the cluster (the KubeSource). */
export interface NodeStatusView {
  node(): NodeIdentity | undefined;
  plugin(key: string): ClusterPlugin | undefined;
  keys(): Iterable<string>;
  onChange(listener: (keys: ReadonlySet<string>) => void): () => void;
}

/** Options of a NodeStatusSink. */
export interface NodeStatusSinkOptions {
  client: KubeClient;
  nodeName: string;
  cluster: NodeStatusView;
  /** whether plugctl still owns a plugin for DockerPlugin `key` on this node (the ledger) */
  owns(key: string): boolean;
  clock: Clock;
  logger: Logger;
  /** at most one write per this many ms (default 500) */
  delayMs?: number;
  /** retry delays of failed writes (default 1 s doubling to 60 s) */
  backoff?: BackoffPolicy;
  /** default `plugctl-agent/<node>` */
  fieldManager?: string;
}

const MAX_MESSAGE = 32_768;

function conditionOut(c: Condition, generation: number | undefined): StatusCondition {
  return {
    type: c.type,
    status: c.status,
    reason: c.reason === '' ? 'Unknown' : c.reason,
    // server-side apply turns an empty string into null: leave the message out instead
    ...(c.message !== '' ? { message: c.message.slice(0, MAX_MESSAGE) } : {}),
    lastTransitionTime: c.lastTransitionTime,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}

/** The DockerPluginNode entry of one controller status. */
export function entryOf(status: PluginStatus): NodePluginStatus {
  return {
    name: status.key,
    ...(status.pluginID !== undefined ? { pluginID: status.pluginID } : {}),
    ...(status.reference !== undefined ? { reference: status.reference } : {}),
    ...(status.digest !== undefined ? { digest: status.digest } : {}),
    ...(status.enabled !== undefined ? { enabled: status.enabled } : {}),
    ...(status.observedGeneration !== undefined ? { observedGeneration: status.observedGeneration } : {}),
    conditions: status.conditions.map((c) => conditionOut(c, status.observedGeneration)),
    ...(status.lastAction !== undefined ? { lastAction: status.lastAction } : {}),
  };
}

/** The entry of a DockerPlugin being deleted that the controller no longer reports. */
function removalEntry(key: string, plugin: ClusterPlugin, owned: boolean, since: string): NodePluginStatus {
  const generation = plugin.generation;
  const condition = (
    type: Condition['type'],
    on: boolean,
    reason: string,
    message: string,
  ): StatusCondition => ({
    type,
    status: on ? 'True' : 'False',
    reason,
    ...(message !== '' ? { message } : {}),
    lastTransitionTime: since,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  });
  const message = owned
    ? 'the DockerPlugin is being deleted: its plugin is still to be removed from this node'
    : 'the DockerPlugin is being deleted: nothing plugctl installed for it is left on this node';
  return {
    name: key,
    enabled: false,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    conditions: [
      condition('Ready', false, owned ? REMOVING : REMOVED, message),
      condition('Reconciling', owned, owned ? REMOVING : 'Idle', ''),
      condition('Stalled', false, 'NotStalled', ''),
    ],
    lastAction: 'remove',
  };
}

/**
 * The status of the node's DockerPluginNode: an entry per controller status that concerns this node
 * (not merely "not selected", nor about an object that is gone, unless plugctl still owns its plugin),
 * and a removal entry per selected DockerPlugin being deleted that has none. Pure, for tests.
 */
export function composeNodeStatus(
  statuses: ReadonlyMap<string, PluginStatus>,
  cluster: Pick<NodeStatusView, 'plugin' | 'keys'>,
  owns: (key: string) => boolean,
  removalSince: (key: string) => string,
): { declared: number; ready: number; plugins: NodePluginStatus[] } {
  const plugins: NodePluginStatus[] = [];
  const reported = new Set<string>();
  for (const [key, status] of statuses) {
    const plugin = cluster.plugin(key);
    const owned = owns(key);
    if (!owned && (plugin === undefined || phaseOf(status) === 'skipped')) continue;
    // deleted, and nothing of it is left to remove: the removal entry below says so
    if (plugin?.deleting === true && !owned) continue;
    plugins.push(entryOf(status));
    reported.add(key);
  }
  let declared = 0;
  let ready = 0;
  for (const key of cluster.keys()) {
    const plugin = cluster.plugin(key);
    if (plugin === undefined || !plugin.selected) continue;
    if (plugin.deleting) {
      if (!reported.has(key)) plugins.push(removalEntry(key, plugin, owns(key), removalSince(key)));
      continue;
    }
    declared++;
    const status = statuses.get(key);
    if (
      status !== undefined &&
      phaseOf(status) === 'ready' &&
      (plugin.generation === undefined || status.observedGeneration === plugin.generation)
    )
      ready++;
  }
  plugins.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { declared, ready, plugins };
}

/**
 * Whether `after` lacks something `before` has: a key of an object, or an item of a list (items are
 * matched by `name`, else `type`, as the list-maps of the status are keyed).
 */
export function losesFields(before: unknown, after: unknown): boolean {
  if (Array.isArray(before)) {
    if (!Array.isArray(after)) return true;
    const keyOf = (item: unknown): unknown =>
      typeof item === 'object' && item !== null
        ? ((item as { name?: unknown }).name ?? (item as { type?: unknown }).type)
        : item;
    const byKey = new Map(after.map((item: unknown) => [keyOf(item), item]));
    return before.some(
      (item: unknown) => !byKey.has(keyOf(item)) || losesFields(item, byKey.get(keyOf(item))),
    );
  }
  if (typeof before === 'object' && before !== null) {
    if (typeof after !== 'object' || after === null) return true;
    return Object.entries(before).some(
      ([key, value]) =>
        !Object.hasOwn(after, key) || losesFields(value, (after as Record<string, unknown>)[key]),
    );
  }
  return false;
}

/** Reads back what an earlier run published, so transition times survive a restart. */
function statusOf(entry: NodePluginStatus, now: string): PluginStatus | undefined {
  const ready = entry.conditions?.find((c) => c.type === 'Ready');
  if (ready?.reason === REMOVED || ready?.reason === REMOVING) return undefined;
  const conditions: Condition[] = [];
  for (const c of entry.conditions ?? []) {
    if (c.type !== 'Ready' && c.type !== 'Reconciling' && c.type !== 'Stalled') continue;
    conditions.push({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message ?? '',
      lastTransitionTime: c.lastTransitionTime,
    });
  }
  return {
    key: entry.name,
    plugin: '',
    ...(entry.pluginID !== undefined ? { pluginID: entry.pluginID } : {}),
    ...(entry.reference !== undefined ? { reference: entry.reference } : {}),
    ...(entry.digest !== undefined ? { digest: entry.digest } : {}),
    ...(entry.enabled !== undefined ? { enabled: entry.enabled } : {}),
    ...(entry.observedGeneration !== undefined ? { observedGeneration: entry.observedGeneration } : {}),
    ...(entry.lastAction !== undefined ? { lastAction: entry.lastAction } : {}),
    lastReconcileTime: now,
    conditions,
  };
}

/** Publishes statuses to the node's DockerPluginNode. */
export class NodeStatusSink implements StatusSink {
  readonly #o: NodeStatusSinkOptions;
  readonly #fieldManager: string;
  readonly #backoff: Backoff;
  #statuses: ReadonlyMap<string, PluginStatus> = new Map();
  readonly #removalSince = new Map<string, string>();
  #timer: TimerHandle | undefined;
  #writing: Promise<void> = Promise.resolve();
  #dirty = false;
  #lastBody: string | undefined;
  /** what the last successful write said, to tell whether the next one removes anything */
  #lastStatus: ReturnType<typeof composeNodeStatus> | undefined;
  #created = false;
  #unsubscribe: (() => void) | undefined;
  /** writes done, for tests and benchmarks */
  writes = 0;

  /** Nothing is sent before load() or publish(). */
  constructor(options: NodeStatusSinkOptions) {
    this.#o = options;
    this.#fieldManager = (options.fieldManager ?? `plugctl-agent/${options.nodeName}`).slice(0, 128);
    this.#backoff = new Backoff(options.backoff ?? { initialMs: 1000, maxMs: 60_000 });
  }

  async load(): Promise<PluginStatus[]> {
    // The cluster's view changes what is reported (deletions, selection), not only the controller.
    this.#unsubscribe ??= this.#o.cluster.onChange(() => this.#schedule());
    let object: KubeObject & { status?: { plugins?: NodePluginStatus[] } };
    try {
      object = await this.#o.client.request({
        method: 'GET',
        path: objectPath(DOCKER_PLUGIN_NODES, this.#o.nodeName),
      });
    } catch (error) {
      if (!hasStatus(error, 404))
        this.#o.logger.warn(`cannot read the node's earlier status: ${describeError(error)}`);
      return [];
    }
    this.#created = true;
    const now = new Date(this.#o.clock.now()).toISOString();
    return (object.status?.plugins ?? []).flatMap((entry) => statusOf(entry, now) ?? []);
  }

  publish(statuses: ReadonlyMap<string, PluginStatus>): void {
    this.#statuses = statuses;
    this.#schedule();
  }

  async flush(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#timer !== undefined) {
      this.#o.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#dirty = true;
    }
    await this.#writing;
    if (this.#dirty) await this.#write().catch(() => undefined);
  }

  #schedule(delayMs = this.#o.delayMs ?? 500): void {
    this.#dirty = true;
    if (this.#timer !== undefined) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#writing = this.#writing.then(() =>
        this.#write().then(
          () => this.#backoff.reset(),
          (error: unknown) => {
            const retryMs = this.#backoff.next();
            this.#o.logger.warn(
              { retryInMs: retryMs },
              `cannot write the DockerPluginNode ${this.#o.nodeName}: ${describeError(error)}`,
            );
            this.#schedule(retryMs);
          },
        ),
      );
    }, delayMs);
  }

  #since(key: string): string {
    let since = this.#removalSince.get(key);
    if (since === undefined) {
      since = new Date(this.#o.clock.now()).toISOString();
      this.#removalSince.set(key, since);
    }
    return since;
  }

  async #write(): Promise<void> {
    this.#dirty = false;
    const status = composeNodeStatus(this.#statuses, this.#o.cluster, this.#o.owns, (key) =>
      this.#since(key),
    );
    for (const key of this.#removalSince.keys())
      if (!status.plugins.some((p) => p.name === key)) this.#removalSince.delete(key);
    const body = JSON.stringify(status);
    if (body === this.#lastBody) return;
    try {
      if (!this.#created) await this.#create();
      await this.#applyStatus(status);
    } catch (error) {
      if (!hasStatus(error, 404)) throw error;
      // deleted under us (or the Node's garbage collector took it): create it again
      await this.#create();
      await this.#applyStatus(status);
    }
    this.#lastBody = body;
    this.writes++;
    this.#o.logger.debug(
      { declared: status.declared, ready: status.ready, plugins: status.plugins.length },
      'DockerPluginNode status written',
    );
  }

  async #create(): Promise<void> {
    const node = this.#o.cluster.node();
    await serverSideApply(
      this.#o.client,
      DOCKER_PLUGIN_NODES,
      {
        metadata: {
          name: this.#o.nodeName,
          labels: { 'app.kubernetes.io/managed-by': 'plugctl' },
          ...(node !== undefined
            ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node.name, uid: node.uid }] }
            : {}),
        },
      },
      { fieldManager: this.#fieldManager, force: true },
    );
    this.#created = true;
  }

  async #applyStatus(status: ReturnType<typeof composeNodeStatus>): Promise<void> {
    const name = this.#o.nodeName;
    const before = this.#lastStatus;
    if (before === undefined || status.plugins.length === 0 || losesFields(before, status)) {
      // Server-side apply on 1.20 leaves an emptied list as null (which the schema refuses) and keeps
      // fields an entry no longer has (a removed plugin's ID, a cleared message). This agent is the
      // object's only writer, so a merge patch replaces the whole list instead: on the first write of
      // a run (whatever an earlier run left) and whenever something must disappear.
      await this.#o.client.request({
        method: 'PATCH',
        path: objectPath(DOCKER_PLUGIN_NODES, name, undefined, 'status'),
        query: { fieldManager: this.#fieldManager },
        contentType: 'application/merge-patch+json',
        body: {
          status: {
            declared: status.declared,
            ready: status.ready,
            plugins: status.plugins.length > 0 ? status.plugins : null,
          },
        },
      });
    } else {
      await serverSideApply(
        this.#o.client,
        DOCKER_PLUGIN_NODES,
        { metadata: { name }, status },
        { fieldManager: this.#fieldManager, force: true, subresource: 'status' },
      );
    }
    this.#lastStatus = status;
  }
}
