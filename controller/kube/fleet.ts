/**
 * The fleet side of Kubernetes mode, run by every agent beside its controller: the agent renews its
 * node's heartbeat Lease, and campaigns for the fleet Lease; the one elected agent then keeps every
 * DockerPlugin's summary (fleet-summary.ts) and its finalizer.
 *
 * While leading it caches, by list+watch (informer.ts): the DockerPlugins (or shares the agent's
 * cache), every DockerPluginNode, every Node's labels, and the heartbeat Leases. Any change marks the
 * DockerPlugins it can affect; each marked plugin is recomputed and its status written with
 * server-side apply, at most once per `minWriteIntervalMs` per plugin and only when it differs from
 * the stored status. Nothing is written before every cache has completed its first list.
 *
 * Finalizer: the leader adds FINALIZER to every DockerPlugin that lacks it, and removes it from a
 * deleted one once no live node holds it (fleet-summary.ts deletionHolders): an agent reports a
 * deleted DockerPlugin's entry with the Ready reason REMOVED_REASON once nothing plugctl installed for
 * it is left on its node; a node with any other entry, or selected with a running agent but no entry
 * yet, holds it; a node that never had an agent holds nothing. A holder whose agent is gone longer than
 * the grace period (heartbeat.ts) is skipped, and a Warning Event on the DockerPlugin names it. Agents
 * never rely on the summary.
 *
 * The leader also removes the DockerPluginNode of a node whose agent is uninstalled: gone past the
 * grace period and no agent pod on the node (node-reports.ts).
 */
import type { Logger } from 'pino';
import type { DockerPluginStatus, NodePluginStatus, StatusCondition } from '../api/status.ts';
import type { LabelSelector } from '../api/types.ts';
import { describeError } from '../errors.ts';
import { systemClock } from '../runtime/clock.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import { serverSideApply } from './apply.ts';
import type { KubeClient } from './client.ts';
import { hasStatus } from './errors.ts';
import { EventRecorder } from './events.ts';
import { ReportIndex, deletionHolders, sameStatus, selectedNodes, summarize } from './fleet-summary.ts';
import type { FleetNode } from './fleet-summary.ts';
import { HEARTBEAT_LABEL, LivenessTracker, NodeHeartbeat } from './heartbeat.ts';
import { Informer } from './informer.ts';
import { LeaderElector } from './leader.ts';
import type { Lease } from './lease.ts';
import { NodeReportSweeper } from './node-reports.ts';
import type { GoneNode } from './node-reports.ts';
import { DOCKER_PLUGINS, DOCKER_PLUGIN_NODES, LEASES, NODES, apiVersionOf, objectPath } from './resources.ts';
import type { KubeObject } from './resources.ts';

/** The finalizer the leader keeps on every DockerPlugin. */
export const FINALIZER = 'plugctl.dev/cleanup';
/** Field manager of the summary writes. */
export const FLEET_FIELD_MANAGER = 'plugctl-fleet';
/** Default name of the fleet Lease. */
export const FLEET_LEASE = 'plugctl-fleet';

/** A DockerPlugin as the leader reads it. */
export interface DockerPluginObject extends KubeObject {
  spec?: { nodeSelector?: LabelSelector; suspend?: boolean };
  status?: DockerPluginStatus;
}

interface NodeReportObject extends KubeObject {
  status?: { plugins?: NodePluginStatus[] };
}

/** Options of startFleetLeader. */
export interface FleetOptions {
  client: KubeClient;
  /** the agents' namespace: the fleet Lease and the heartbeat Leases live there */
  namespace: string;
  /** this agent: its node name */
  identity: string;
  logger: Logger;
  clock?: Clock;
  /** an agent silent this long no longer holds deletions and counts as unavailable (default 5 min) */
  graceMs?: number;
  /** at most one status write per DockerPlugin per this long (default 1 s) */
  minWriteIntervalMs?: number;
  /** status writes in flight at once (default 4) */
  writeConcurrency?: number;
  /** the fleet Lease's name (default plugctl-fleet) */
  leaseName?: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** renew this node's heartbeat Lease (default true); options of it */
  heartbeat?: boolean | { renewMs?: number; leaseDurationSeconds?: number };
  /** the agent's own DockerPlugin cache, shared instead of a second one (started here if it is not) */
  plugins?: Informer<KubeObject>;
  /** silence watchdog and relist period of the leader's caches (informer.ts defaults) */
  informer?: { silenceMs?: number; relistMs?: number };
  /** Events recorder for the leader (default: one of its own, reportingController plugctl.dev/fleet) */
  events?: EventRecorder;
  /** the wall clock in Unix milliseconds, for heartbeat renewTimes (default Date.now) */
  wallNow?: () => number;
  /**
   * removing the DockerPluginNodes of nodes whose agent is uninstalled (node-reports.ts): the agent
   * pods' label selector, how often a node with an agent pod is asked about again; false: never
   */
  nodeReports?: false | { agentSelector?: string; recheckMs?: number };
}

/** What the fleet side has done, across leaderships. */
export interface FleetStats {
  /** DockerPlugins recomputed */
  recomputes: number;
  statusWrites: number;
  finalizersAdded: number;
  finalizersRemoved: number;
  /** gone nodes skipped when a finalizer was released */
  nodesSkipped: number;
  failures: number;
  /** times this agent became leader */
  leaderships: number;
  /** DockerPluginNodes removed because their node's agent was uninstalled */
  nodeReportsRemoved: number;
}

/** A running fleet side. */
export interface FleetHandle {
  isLeader(): boolean;
  /** the agent that holds the fleet Lease, as last seen */
  leader(): string | undefined;
  readonly stats: FleetStats;
  /** Calls `listener` when this agent starts or stops leading. */
  onLeadingChange(listener: (leading: boolean) => void): () => void;
  /** Stops leading (releasing the Lease so another agent takes over at once) and the heartbeat. */
  stop(): Promise<void>;
}

/**
 * Starts the fleet side of an agent: its node heartbeat and the campaign for the fleet Lease; while
 * this agent leads, it keeps the summaries and finalizers (see the module comment). Never throws after
 * it returns; failures are logged and retried.
 */
export function startFleetLeader(options: FleetOptions): FleetHandle {
  const clock = options.clock ?? systemClock;
  const stats: FleetStats = {
    recomputes: 0,
    statusWrites: 0,
    finalizersAdded: 0,
    finalizersRemoved: 0,
    nodesSkipped: 0,
    failures: 0,
    leaderships: 0,
    nodeReportsRemoved: 0,
  };
  const stopping = new AbortController();
  const elector = new LeaderElector({
    client: options.client,
    namespace: options.namespace,
    name: options.leaseName ?? FLEET_LEASE,
    identity: options.identity,
    clock,
    logger: options.logger,
    ...(options.leaseDurationSeconds !== undefined
      ? { leaseDurationSeconds: options.leaseDurationSeconds }
      : {}),
    ...(options.renewDeadlineMs !== undefined ? { renewDeadlineMs: options.renewDeadlineMs } : {}),
    ...(options.retryPeriodMs !== undefined ? { retryPeriodMs: options.retryPeriodMs } : {}),
  });
  let current: FleetLeader | undefined;
  let transition: Promise<void> = Promise.resolve();
  elector.onChange((leading) => {
    // start and stop in order: a quick loss and regain must not run two leaders' loops at once
    transition = transition.then(async () => {
      await current?.stop();
      current = undefined;
      if (leading && elector.isLeader() && !stopping.signal.aborted) {
        stats.leaderships++;
        current = new FleetLeader({ ...options, clock }, stats);
        current.start();
      }
    });
  });
  const runs: Promise<void>[] = [elector.run(stopping.signal)];
  if (options.heartbeat !== false) {
    const settings = typeof options.heartbeat === 'object' ? options.heartbeat : {};
    const heartbeat = new NodeHeartbeat({
      client: options.client,
      namespace: options.namespace,
      node: options.identity,
      clock,
      logger: options.logger,
      ...settings,
    });
    runs.push(heartbeat.run(stopping.signal));
  }
  return {
    isLeader: () => elector.isLeader(),
    leader: () => elector.leader(),
    stats,
    onLeadingChange: (listener) => elector.onChange(listener),
    async stop() {
      stopping.abort();
      await Promise.all(runs);
      await transition;
      await current?.stop();
      current = undefined;
    },
  };
}

/** A FleetLeader's options, with the clock resolved. */
type LeaderLoopOptions = FleetOptions & { clock: Clock };

function trimNode(object: KubeObject): KubeObject {
  const { name, resourceVersion, labels } = object.metadata;
  return {
    metadata: {
      name,
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
      labels: labels ?? {},
    },
  };
}

function trimReport(object: KubeObject): KubeObject {
  const { name, resourceVersion } = object.metadata;
  const status = (object as NodeReportObject).status;
  return {
    metadata: { name, ...(resourceVersion !== undefined ? { resourceVersion } : {}) },
    status: { plugins: status?.plugins ?? [] },
  };
}

function trimLease(object: KubeObject): KubeObject {
  const { name, namespace, resourceVersion } = object.metadata;
  return { metadata: { name, namespace, resourceVersion }, spec: (object as Lease).spec };
}

/** The work of the elected agent, from becoming leader until losing it. */
class FleetLeader {
  readonly #o: LeaderLoopOptions;
  readonly #stats: FleetStats;
  readonly #plugins: Informer<DockerPluginObject>;
  readonly #ownPlugins: boolean;
  readonly #reports: Informer;
  readonly #nodes: Informer;
  readonly #heartbeats: Informer<Lease>;
  readonly #index = new ReportIndex();
  readonly #liveness: LivenessTracker;
  readonly #sweeper: NodeReportSweeper | undefined;
  readonly #events: EventRecorder;
  readonly #ownEvents: boolean;
  readonly #interval: number;
  readonly #concurrency: number;
  /** how often liveness is re-judged: staleness comes with time, not with an event */
  readonly #tickMs: number;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #dirty = new Set<string>();
  readonly #busy = new Set<string>();
  /** key -> when it may be written next (monotonic) */
  readonly #notBefore = new Map<string, number>();
  readonly #failures = new Map<string, number>();
  /** key -> the status last written and the cached resourceVersion it was decided on */
  readonly #written = new Map<string, { status: DockerPluginStatus; decidedAt: string }>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #labels = new Map<string, string>();
  #gone = new Map<string, string>();
  #synced = false;
  #stopped = false;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #tick: TimerHandle | undefined;
  #startup: Promise<void> | undefined;

  constructor(options: LeaderLoopOptions, stats: FleetStats) {
    this.#o = options;
    this.#stats = stats;
    const graceMs = options.graceMs ?? 5 * 60_000;
    this.#interval = options.minWriteIntervalMs ?? 1_000;
    this.#concurrency = options.writeConcurrency ?? 4;
    const common = {
      client: options.client,
      clock: options.clock,
      logger: options.logger,
      ...(options.informer?.silenceMs !== undefined ? { silenceMs: options.informer.silenceMs } : {}),
      ...(options.informer?.relistMs !== undefined ? { relistMs: options.informer.relistMs } : {}),
    };
    this.#ownPlugins = options.plugins === undefined;
    this.#plugins = (options.plugins ??
      new Informer({
        ...common,
        type: DOCKER_PLUGINS,
      })) as Informer<KubeObject> as Informer<DockerPluginObject>;
    this.#reports = new Informer({ ...common, type: DOCKER_PLUGIN_NODES, transform: trimReport });
    this.#nodes = new Informer({ ...common, type: NODES, transform: trimNode });
    this.#heartbeats = new Informer<Lease>({
      ...common,
      type: LEASES,
      namespace: options.namespace,
      labelSelector: HEARTBEAT_LABEL,
      transform: trimLease as (object: KubeObject) => Lease,
    });
    this.#liveness = new LivenessTracker({
      clock: options.clock,
      graceMs,
      ...(options.wallNow !== undefined ? { wallNow: options.wallNow } : {}),
    });
    const sweep = options.nodeReports;
    this.#sweeper =
      sweep === false
        ? undefined
        : new NodeReportSweeper({
            client: options.client,
            namespace: options.namespace,
            clock: options.clock,
            logger: options.logger,
            ...(sweep?.agentSelector !== undefined ? { agentSelector: sweep.agentSelector } : {}),
            ...(sweep?.recheckMs !== undefined ? { recheckMs: sweep.recheckMs } : {}),
            onRemoved: () => this.#stats.nodeReportsRemoved++,
          });
    this.#ownEvents = options.events === undefined;
    this.#events =
      options.events ??
      new EventRecorder({
        client: options.client,
        reportingController: 'plugctl.dev/fleet',
        reportingInstance: options.identity,
        clock: options.clock,
        logger: options.logger,
      });
    this.#tickMs = Math.min(5_000, Math.max(100, Math.floor(graceMs / 4)));
  }

  /** Starts the caches; work begins once all of them have listed. */
  start(): void {
    this.#unsubscribe.push(
      this.#plugins.onChange((keys) => this.#mark(keys)),
      this.#reports.onChange((keys) => this.#onReports(keys)),
      this.#nodes.onChange((keys) => this.#onNodes(keys)),
      this.#heartbeats.onChange((keys) => this.#onHeartbeats(keys)),
    );
    this.#startup = Promise.all([
      this.#plugins.start(),
      this.#reports.start(),
      this.#nodes.start(),
      this.#heartbeats.start(),
    ]).then(
      () => {
        if (this.#stopped) return;
        this.#synced = true;
        for (const report of this.#reports.values()) this.#indexReport(report.metadata.name);
        for (const key of this.#nodes.keys()) this.#labelsChanged(key);
        this.#evaluateLiveness();
        this.#mark(this.#plugins.keys());
        this.#scheduleTick();
        this.#o.logger.info(
          { plugins: this.#plugins.keys().length, nodes: this.#nodes.keys().length },
          'fleet leader: caches synced',
        );
      },
      (error: unknown) => {
        if (!this.#stopped) this.#o.logger.warn(`fleet leader: ${describeError(error)}`);
      },
    );
  }

  /** Stops: no new work; waits for writes in flight; closes the caches it owns. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    if (this.#tick !== undefined) this.#o.clock.clearTimeout(this.#tick);
    const closing = [this.#reports.close(), this.#nodes.close(), this.#heartbeats.close()];
    if (this.#ownPlugins) closing.push(this.#plugins.close());
    await Promise.allSettled(closing);
    await this.#startup;
    await Promise.allSettled([...this.#inflight]);
    await this.#sweeper?.idle();
    if (this.#ownEvents) await this.#events.close();
  }

  #mark(keys: Iterable<string>): void {
    if (this.#stopped) return;
    for (const key of keys) this.#dirty.add(key);
    if (this.#synced) this.#pump();
  }

  #markAll(): void {
    this.#mark(this.#plugins.keys());
  }

  #indexReport(node: string): Set<string> {
    const report = this.#reports.get(node) as NodeReportObject | undefined;
    return this.#index.update(node, report?.status?.plugins);
  }

  #onReports(keys: ReadonlySet<string>): void {
    if (!this.#synced) return; // indexed in full once synced
    const changed = new Set<string>();
    for (const node of keys) for (const plugin of this.#indexReport(node)) changed.add(plugin);
    this.#mark(changed);
  }

  /** Records `node`'s labels; true when they differ from what was recorded. */
  #labelsChanged(node: string): boolean {
    const object = this.#nodes.get(node);
    const before = this.#labels.get(node);
    if (object === undefined) {
      this.#labels.delete(node);
      return before !== undefined;
    }
    const after = JSON.stringify(Object.entries(object.metadata.labels ?? {}).sort());
    this.#labels.set(node, after);
    return before !== after;
  }

  #onNodes(keys: ReadonlySet<string>): void {
    if (!this.#synced) return;
    let changed = false;
    for (const node of keys) if (this.#labelsChanged(node)) changed = true;
    // a Node's status changes often; only its labels (or its coming and going) change selections
    if (changed) {
      this.#evaluateLiveness();
      this.#markAll();
    }
  }

  #onHeartbeats(keys: ReadonlySet<string>): void {
    if (!this.#synced || this.#gone.size === 0) return;
    // a gone agent that is back counts at once; new staleness is found by the tick
    for (const key of keys) {
      const holder = this.#heartbeats.get(key)?.spec?.holderIdentity;
      if (holder !== undefined && this.#gone.has(holder)) {
        this.#evaluateLiveness();
        return;
      }
    }
  }

  /** Re-judges which agents are gone; marks every plugin when that changed. */
  #evaluateLiveness(): void {
    this.#liveness.observe(this.#heartbeats.values());
    // every report too, so the report of a node that has none of its plugins left can be judged
    const nodes = new Set([...this.#nodes.keys(), ...this.#index.nodes(), ...this.#reports.keys()]);
    const gone = this.#liveness.gone(nodes);
    this.#sweepReports(gone);
    const same =
      gone.size === this.#gone.size && [...gone].every(([node, why]) => this.#gone.get(node) === why);
    this.#gone = gone;
    if (!same) {
      this.#o.logger.info({ gone: [...gone.keys()] }, 'fleet leader: agents gone changed');
      this.#markAll();
    }
  }

  /** Hands the reports of gone nodes to the sweeper, which removes those whose agent is uninstalled. */
  #sweepReports(gone: ReadonlyMap<string, string>): void {
    if (this.#sweeper === undefined || this.#stopped) return;
    const candidates: GoneNode[] = [];
    for (const node of gone.keys()) {
      const report = this.#reports.get(node);
      if (report !== undefined) candidates.push({ node, report });
    }
    this.#sweeper.sweep(candidates);
  }

  #scheduleTick(): void {
    this.#tick = this.#o.clock.setTimeout(() => {
      if (this.#stopped) return;
      this.#evaluateLiveness();
      this.#scheduleTick();
    }, this.#tickMs);
  }

  /** Starts what may run now, and arms the timer for the earliest key that must wait. */
  #pump(): void {
    if (this.#stopped) return;
    const now = this.#o.clock.now();
    let next = Infinity;
    for (const key of this.#dirty) {
      if (this.#busy.has(key)) continue; // marked again while running: picked up when it finishes
      const at = this.#notBefore.get(key) ?? 0;
      if (at > now) {
        next = Math.min(next, at);
        continue;
      }
      if (this.#busy.size >= this.#concurrency) break;
      this.#dirty.delete(key);
      this.#busy.add(key);
      const run = this.#process(key)
        .catch((error: unknown) => this.#failed(key, error))
        .finally(() => {
          this.#busy.delete(key);
          this.#inflight.delete(run);
          this.#pump();
        });
      this.#inflight.add(run);
    }
    if (next !== Infinity && next < this.#timerAt) {
      if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
      this.#timerAt = next;
      this.#timer = this.#o.clock.setTimeout(
        () => {
          this.#timer = undefined;
          this.#timerAt = Infinity;
          this.#pump();
        },
        Math.max(0, next - now),
      );
    }
  }

  #failed(key: string, error: unknown): void {
    if (this.#stopped) return;
    this.#stats.failures++;
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = Math.min(60_000, this.#interval * 2 ** Math.min(failures, 10));
    this.#notBefore.set(key, this.#o.clock.now() + delay);
    this.#dirty.add(key);
    this.#o.logger.warn(
      { plugin: key, retryInMs: delay },
      `fleet leader: updating the DockerPlugin failed: ${describeError(error)}`,
    );
  }

  async #process(key: string): Promise<void> {
    const plugin = this.#plugins.get(key);
    if (plugin === undefined) {
      this.#notBefore.delete(key);
      this.#failures.delete(key);
      this.#written.delete(key);
      return;
    }
    this.#stats.recomputes++;
    const meta = plugin.metadata;
    const deleting = meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null;
    const finalizers = meta.finalizers ?? [];
    const nodes = this.#fleetNodes();
    const reports = this.#index.reports(key);
    const { live, gone } = deleting
      ? deletionHolders({
          selected: selectedNodes(plugin.spec?.nodeSelector, nodes),
          reports,
          gone: this.#gone,
          hasAgent: (node) => this.#liveness.known(node),
        })
      : { live: [], gone: [] };
    if (!deleting && !finalizers.includes(FINALIZER)) {
      await this.#patchFinalizers(plugin, [...finalizers, FINALIZER]);
      this.#stats.finalizersAdded++;
    }
    if (deleting)
      this.#o.logger.debug({ plugin: key, live, gone, finalizers }, 'fleet leader: deleted plugin');
    if (deleting && finalizers.includes(FINALIZER) && live.length === 0) {
      await this.#release(plugin, gone);
      return;
    }
    // The cache carries status (the agent's shared one keeps it too, sources/kube.ts); should a
    // cache lack it, the status this leader wrote last stands for the stored one (its transition
    // times, and whether to write), or every write's own watch event would cause the next write. A
    // new leader then reads it once per plugin.
    const written =
      this.#written.get(key) ?? (plugin.status === undefined ? await this.#readStatus(key) : undefined);
    const stored = plugin.status ?? written?.status;
    const status = summarize({
      plugin: {
        name: key,
        generation: meta.generation ?? 0,
        ...(plugin.spec?.nodeSelector !== undefined ? { nodeSelector: plugin.spec.nodeSelector } : {}),
        suspend: plugin.spec?.suspend === true,
        deleting,
        ...(stored?.conditions !== undefined ? { previous: stored.conditions as StatusCondition[] } : {}),
      },
      nodes,
      reports,
      gone: this.#gone,
      removing: live,
      now: new Date(this.#o.wallNow?.() ?? Date.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    });
    const rv = meta.resourceVersion ?? '';
    if (sameStatus(status, stored)) {
      this.#failures.delete(key);
      return;
    }
    // written a moment ago and the cache has not seen the write yet: not again
    if (written !== undefined && written.decidedAt === rv && sameStatus(status, written.status)) return;
    await serverSideApply(
      this.#o.client,
      DOCKER_PLUGINS,
      { metadata: { name: key }, status },
      { fieldManager: FLEET_FIELD_MANAGER, subresource: 'status', force: true },
    ).catch((error: unknown) => {
      if (!hasStatus(error, 404)) throw error; // deleted meanwhile: nothing to summarise
    });
    this.#stats.statusWrites++;
    this.#written.set(key, { status, decidedAt: rv });
    this.#notBefore.set(key, this.#o.clock.now() + this.#interval);
    this.#failures.delete(key);
  }

  /** The stored status of `key`, read from the server (for a cache without status), remembered as written. */
  async #readStatus(key: string): Promise<{ status: DockerPluginStatus; decidedAt: string } | undefined> {
    const object = await this.#o.client
      .request<DockerPluginObject>({ method: 'GET', path: objectPath(DOCKER_PLUGINS, key) })
      .catch((error: unknown) => {
        if (hasStatus(error, 404)) return undefined;
        throw error;
      });
    if (object?.status === undefined) return undefined;
    const read = { status: object.status, decidedAt: '' };
    this.#written.set(key, read);
    return read;
  }

  #fleetNodes(): FleetNode[] {
    return this.#nodes
      .values()
      .map((node) => ({ name: node.metadata.name, labels: node.metadata.labels ?? {} }));
  }

  /**
   * Sets the finalizers with a merge patch that carries the resourceVersion read: if the object
   * changed meanwhile the server refuses (409) and the plugin is recomputed from the newer version.
   * Returns false when the object is already gone (404), so nothing was changed by this call.
   */
  async #patchFinalizers(plugin: DockerPluginObject, finalizers: string[]): Promise<boolean> {
    try {
      await this.#o.client.request({
        method: 'PATCH',
        path: objectPath(DOCKER_PLUGINS, plugin.metadata.name),
        contentType: 'application/merge-patch+json',
        body: { metadata: { resourceVersion: plugin.metadata.resourceVersion, finalizers } },
      });
      return true;
    } catch (error) {
      if (hasStatus(error, 404)) return false;
      throw error;
    }
  }

  /** Removes the finalizer; `skipped` are the gone nodes that still held it. */
  async #release(plugin: DockerPluginObject, skipped: readonly string[]): Promise<void> {
    const name = plugin.metadata.name;
    const regarding = {
      apiVersion: apiVersionOf(DOCKER_PLUGINS),
      kind: DOCKER_PLUGINS.kind,
      name,
      ...(plugin.metadata.uid !== undefined ? { uid: plugin.metadata.uid } : {}),
    };
    const released = await this.#patchFinalizers(
      plugin,
      (plugin.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
    );
    // Gone already: an earlier release took the object away while the cache still held it (a node
    // report changed meanwhile and marked it again); counting or announcing it twice would be wrong.
    if (!released) return;
    this.#stats.finalizersRemoved++;
    for (const node of skipped) {
      this.#stats.nodesSkipped++;
      const why = this.#gone.get(node) ?? 'agent gone';
      this.#o.logger.warn({ plugin: name, node }, `finalizer released without node ${node}: ${why}`);
      this.#events.record({
        regarding,
        type: 'Warning',
        reason: 'NodeSkipped',
        action: 'ReleaseFinalizer',
        note: `node ${node} was skipped when the finalizer was released: ${why}; the plugin may still be installed there`,
      });
    }
    if (skipped.length === 0) {
      this.#events.record({
        regarding,
        type: 'Normal',
        reason: 'Removed',
        action: 'ReleaseFinalizer',
        note: 'every node has removed the plugin: finalizer released',
      });
    }
  }
}
