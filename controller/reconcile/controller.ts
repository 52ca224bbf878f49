/**
 * The long-running controller of `plugctl run`, assembled from the parts it is given: a source of
 * desired state (files today, the cluster next), a status sink (the status file, or the API
 * server), the ownership ledger, and triggers (engine events, build-context changes, the resync
 * timer). Triggers and the source only queue keys on a workqueue; workers reconcile one key at a
 * time with the same planner and executor as `apply`. A reconcile never asks what happened, only
 * what is declared and what is installed.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../observe/metrics.ts';
import type { LoadedDocument } from '../api/load.ts';
import { selectHost, type HostLabels, type HostSelection } from '../api/labels.ts';
import { isStickyStall } from '../error-codes.ts';
import type { DesiredSnapshot, DesiredSource } from '../sources/source.ts';
import type { Trigger, TriggerTarget } from '../sources/trigger.ts';
import { contentHash } from '../sources/hash.ts';
import type { RemoteInspector } from '../registry/inspect.ts';
import type {
  InstalledPlugin,
  PluginEvent,
  PluginProber,
  PluginReader,
  PluginUsageReader,
  PluginWriter,
} from '../store/store.ts';
import { HealthMonitor, type HealthView, type RestartBackoff } from './health.ts';
import { needsUsage, withUsage } from './usage.ts';
import { ActualState } from './actual.ts';
import { applyPlans, type PluginResult } from './apply.ts';
import { systemClock, type Clock } from '../runtime/clock.ts';
import { toDesired, type DesiredPlugin } from './desired.ts';
import { gatherFacts, needsFacts } from './facts.ts';
import { disrupts, mayRelease, type DisruptionGate } from './disruption.ts';
import type { Inventory } from './inventory.ts';
import type { InventoryLedger } from './ledger.ts';
import { plan, type PluginPlan, type SkippedDocument } from './plan.ts';
import type { ReconcileReport } from './report.ts';
import { SecretKeeper, secretHashes } from './secrets.ts';
import { withDeclaredIdentity } from './identity.ts';
import { fileSecretResolver } from '../sources/secret-files.ts';
import { WorkQueue } from '../runtime/queue.ts';
import {
  conditionsFor,
  phaseOf,
  StatusBook,
  type Observation,
  type PluginStatus,
  type StatusSink,
} from './status.ts';
import { startWorkers, type ReconcileResult } from '../runtime/workers.ts';

/** Per-snapshot lookups. */
interface SnapshotIndex {
  /** local plugin name -> key of the document that declares it on this host */
  names: ReadonlyMap<string, string>;
  /** key -> keys whose spec.dependsOn names it */
  dependents: ReadonlyMap<string, readonly string[]>;
  /**
   * absolute path -> keys of the documents selected here that read it: the build contexts they build
   * from and the secret files (valueFrom.file) of their settings
   */
  contexts: ReadonlyMap<string, readonly string[]>;
  /** Secret name -> keys of the documents selected here whose settings read it (secretKeyRef) */
  secrets: ReadonlyMap<string, readonly string[]>;
}

/** The parts a controller is assembled from. It constructs none of them and owns none of their I/O. */
export interface ControllerParts {
  /** the host's plugins: read to plan, changed to apply */
  store: PluginReader & PluginWriter;
  /** reads privileges, content and the reference to install from the registry itself */
  inspector: RemoteInspector;
  /** the desired state: documents by key, with a synced flag and load errors */
  source: DesiredSource;
  /** where each key's status is published */
  status: StatusSink;
  /** the ownership inventory, already read; the controller is its single writer from now on */
  ledger: InventoryLedger;
  /** what makes keys worth another look besides document changes (engine events, contexts, resync) */
  triggers: readonly Trigger[];
  logger: Logger;
  metrics: Metrics;
  /** this host's labels, for spec.nodeSelector; the object changes when a label changed */
  labels: { current(): HostLabels };
  /** the apply set the source's documents belong to: it claims what they declare, prunes only its own */
  set: string;
  /** take plugins owned by another set, or installed by hand under a declared name, into this set */
  takeOwnership?: boolean;
  /** keys reconciled in parallel */
  workers: number;
  /** resolves secret env values on every reconcile; default: file mode's (files on the host) */
  secrets?: SecretKeeper;
  clock?: Clock;
  /**
   * probes enabled plugins (spec.healthCheck): Ready only while they answer, restarted when they
   * stop; without it Ready means enabled
   */
  prober?: PluginProber;
  /** restart backoff of unresponsive plugins; default 10 s doubling to 5 min */
  restartBackoff?: RestartBackoff;
  /** what uses each plugin, for spec.inUse Wait; without it the engine's refusal decides */
  usage?: PluginUsageReader;
  /**
   * told when an unresponsive plugin is restarted, with the last probe error (Kubernetes mode turns
   * it into an Event on the DockerPlugin); it must not throw
   */
  onPluginRestarted?: (key: string, plugin: string, lastError: string) => void;
  /**
   * told, after each reconcile, what it did to each plugin that it changed or failed on (Kubernetes
   * mode turns it into Events on the DockerPlugin, reconcile/report.ts); a held stall is not told
   * again. It must not throw.
   */
  onReconciled?: (report: ReconcileReport) => void;
  /**
   * asked before a working plugin is taken down to change it (spec.rollout.maxUnavailable across the
   * cluster in Kubernetes mode); without it every change proceeds at once
   */
  disruptionGate?: DisruptionGate;
}

/** What one reconcile asked for with reconcileNow concluded, and the status it left. */
export interface RequestedReconcile {
  key: string;
  result: ReconcileResult;
  status?: PluginStatus;
}

/** A running controller. */
export class Controller {
  readonly #options: ControllerParts;
  readonly #clock: Clock;
  readonly #queue: WorkQueue;
  readonly #actual: ActualState;
  readonly #secrets: SecretKeeper;
  readonly #status: StatusBook;
  readonly #ledger: InventoryLedger;
  readonly #health: HealthMonitor | undefined;
  #stopping = false;
  #workers: { stopped: Promise<void> } | undefined;
  /** keys of the first full sync still to be reconciled once; empty = ready */
  #initial: Set<string> | undefined;
  #hadErrors = false;
  /** an empty declaration at start-up must not prune the host: pruning waits for a first document */
  #seenDocument = false;
  #unsubscribe: (() => void) | undefined;
  #reconcileCount = 0;
  /** keys whose status is Ready, kept in step with the status store (spec.dependsOn reads it per key) */
  readonly #ready = new Set<string>();
  readonly #desiredCache = new WeakMap<LoadedDocument, DesiredPlugin>();
  readonly #hashCache = new WeakMap<LoadedDocument, string>();
  #indexed: { snapshot: DesiredSnapshot; labels: HostLabels; index: SnapshotIndex } | undefined;
  /** reconcileNow callers per key, answered by the next reconcile of the key that starts */
  readonly #waiters = new Map<string, ((result: ReconcileResult) => void)[]>();
  /** keys asked for by reconcileNow: their next reconcile runs even when a stall is held */
  readonly #forced = new Set<string>();
  /** what triggers may signal; a separate object so that the controller's own API stays small */
  readonly #target: TriggerTarget = {
    resync: (why) => this.#resync(why),
    pluginChanged: (event) => this.#onEngineEvent(event),
    contextChanged: (context) => this.#onContextChanged(context),
    buildContexts: () => new Set(this.#index().contexts.keys()),
    secretChanged: (name) => {
      for (const key of this.#index().secrets.get(name) ?? []) this.#queue.add(key);
    },
  };

  /** Assembles a controller from its parts; nothing runs (and no I/O happens) until start(). */
  constructor(parts: ControllerParts) {
    this.#options = parts;
    this.#clock = parts.clock ?? systemClock;
    this.#queue = new WorkQueue({ clock: this.#clock });
    this.#actual = new ActualState(parts.store);
    this.#secrets = parts.secrets ?? new SecretKeeper(parts.ledger.stateDir, fileSecretResolver());
    this.#status = new StatusBook(parts.status);
    this.#ledger = parts.ledger;
    this.#health =
      parts.prober === undefined
        ? undefined
        : new HealthMonitor({
            prober: parts.prober,
            clock: this.#clock,
            onChange: (key) => this.#queue.add(key),
            onProbeFailure: (key) => parts.metrics.probeFailures.inc({ plugin: key }),
            ...(parts.restartBackoff !== undefined ? { backoff: parts.restartBackoff } : {}),
          });
  }

  /** True once every key of the first full sync has been reconciled once. */
  ready(): boolean {
    return this.#initial !== undefined && this.#initial.size === 0;
  }

  /**
   * Loads the published statuses, waits for the source's initial listing, then starts the workers
   * and the triggers.
   */
  async start(): Promise<void> {
    const inventory = this.#ledger.view();
    await this.#status.load();
    for (const status of this.#status.all()) this.#options.metrics.plugins.inc({ state: phaseOf(status) });
    this.#unsubscribe = this.#options.source.onChange((keys) => this.#onDocumentsChanged(keys));
    await this.#options.source.start();
    const initial = this.#options.source.snapshot();
    this.#hadErrors = initial.errors.length > 0;
    this.#seenDocument = initial.documents.size > 0;
    const owned = Object.keys(inventory.plugins).length;
    if (!this.#seenDocument && owned > 0) {
      this.#options.logger.warn(
        `no documents found at start-up: the ${owned} plugin(s) plugctl owns are kept until a first document appears`,
      );
    }
    const keys = this.#allKeys();
    this.#initial = new Set(keys);
    for (const key of keys) this.#queue.add(key);
    this.#workers = startWorkers({
      queue: this.#queue,
      count: this.#options.workers,
      clock: this.#clock,
      reconcile: (key) => this.#reconcileAnswering(key),
      onResult: (key, result, durationMs) => this.#onResult(key, result, durationMs),
    });
    for (const trigger of this.#options.triggers) trigger.start(this.#target);
  }

  /**
   * Stops taking work and waits (at most `timeoutMs`) for reconciles in flight to finish, so no
   * plugin is left between a disable and its enable. Persists status.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    this.#health?.stop();
    this.#unsubscribe?.();
    const triggers = Promise.all(this.#options.triggers.map((t) => t.stop()));
    this.#queue.shutDown();
    const drained = this.#queue.drained();
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const finished = Promise.all([drained, this.#workers?.stopped]).then(() => 'drained' as const);
    const how = await Promise.race([finished, bounded]);
    clearTimeout(timer);
    if (how === 'timeout')
      this.#options.logger.warn(`shutdown: reconciles still running after ${timeoutMs} ms`);
    await triggers;
    // callers of reconcileNow whose keys will not run any more are answered, not left hanging
    for (const [key, waiters] of this.#waiters) {
      this.#waiters.delete(key);
      const result: ReconcileResult = {
        type: 'failed',
        kind: 'transient',
        error: new Error('shutting down'),
      };
      for (const answer of waiters) answer(result);
    }
    await this.#options.source.close();
    await this.#status.flush();
  }

  /** Reconciles one key: plan what is declared for it against the host, apply, record status. */
  async reconcile(key: string): Promise<ReconcileResult> {
    const ledger = this.#ledger;
    const reconcileId = ++this.#reconcileCount;
    const snapshot = this.#options.source.snapshot();
    const declaredDoc = snapshot.documents.get(key);
    const selection = declaredDoc === undefined ? undefined : this.#selection(declaredDoc);
    const doc = selection?.selected === true ? declaredDoc : undefined;
    const forced = this.#forced.delete(key);
    const held = doc === undefined || forced ? undefined : this.#heldStall(key, doc);
    if (held !== undefined) return held;
    const desired =
      doc === undefined || selection?.selected !== true
        ? []
        : [await this.#secrets.resolve(this.#desiredOf(doc, selection.by))];
    const skipped: SkippedDocument[] =
      declaredDoc !== undefined && selection?.selected === false
        ? [
            {
              key,
              name: declaredDoc.localName,
              reason: 'its nodeSelector does not match this host',
              byOverride: selection.byOverride,
            },
          ]
        : [];
    const declaredNames = this.#index().names;
    const candidates = [
      ...ledger.namesOwnedBy(key),
      ...desired.map((d) => d.name),
      ...skipped.map((s) => s.name),
    ];
    const inventory = inventoryFor(key, desired[0], ledger.view(), declaredNames, candidates);
    // Only the plugins this key can touch: the planner's work per key does not grow with the host.
    const actual = withDeclaredIdentity(
      this.#actual.someCached(candidates) ?? (await this.#actual.some(candidates)),
      ledger.view(),
    );
    const facts = needsFacts(desired, actual)
      ? await gatherFacts(this.#options.inspector, desired, actual)
      : { remotes: new Map(), builds: new Map() };
    this.#seenDocument ||= snapshot.documents.size > 0;
    const prune = snapshot.synced && snapshot.errors.length === 0 && this.#seenDocument;
    const planFor = (plugins: readonly InstalledPlugin[]): PluginPlan[] =>
      plan(
        desired,
        plugins,
        inventory,
        { ...facts, ready: this.#ready },
        {
          prune,
          set: this.#options.set,
          ...(this.#options.takeOwnership === true ? { takeOwnership: true } : {}),
          skipped,
        },
      );
    let plans = planFor(actual);
    // Only a plan that would disrupt a plugin needs to know what uses it.
    const withUsers = await withUsage(actual, needsUsage(plans), this.#options.usage);
    if (withUsers !== undefined) plans = planFor(withUsers);
    const gate = this.#options.disruptionGate;
    const wait =
      gate === undefined || doc === undefined ? undefined : await this.#askGate(gate, doc, plans, actual);
    if (wait !== undefined) plans = plans.map((p) => (p.key === key ? waitForPermission(p, wait) : p));

    const results = await applyPlans(plans, {
      store: this.#options.store,
      ledger,
      logger: this.#options.logger,
      logBindings: { reconcile: reconcileId },
      concurrency: 1,
      ...(this.#options.usage !== undefined ? { usage: this.#options.usage } : {}),
    });
    const touched = results.filter((r) =>
      r.steps.some((s) => s.action.type !== 'noop' && s.action.type !== 'adopt'),
    );
    if (touched.length > 0) await this.#refresh(touched);
    this.#report(results);
    const health = await this.#checkHealth(key, desired[0], results);
    const result = this.#record(key, desired[0], doc ?? declaredDoc, plans, results, health);
    if (gate !== undefined) {
      const status = this.#status.get(key);
      const failed = results.some((r) => r.failure !== undefined);
      if (mayRelease(status === undefined ? undefined : phaseOf(status), failed)) await gate.release(key);
    }
    // Waiting for a rollout slot is not a failure: it is asked again soon, without growing backoff.
    return wait !== undefined ? { type: 'requeueAfter', ms: wait.retryMs } : result;
  }

  /**
   * When a plan of `key` would take its working plugin down, asks the gate; returns what to wait for
   * when the gate says not now, undefined when the plans may proceed.
   */
  async #askGate(
    gate: DisruptionGate,
    doc: LoadedDocument,
    plans: readonly PluginPlan[],
    actual: readonly InstalledPlugin[],
  ): Promise<{ message: string; retryMs: number } | undefined> {
    const key = doc.doc.metadata.name;
    const installed = new Map(actual.map((p) => [p.name, p]));
    if (!plans.some((p) => p.key === key && disrupts(p, installed.get(p.name)))) return undefined;
    const decision = await gate.acquire(key, doc.doc.spec);
    return decision.granted ? undefined : { message: decision.message, retryMs: decision.retryMs };
  }

  /**
   * Ready means the plugin answers: for an enabled plugin whose document keeps the health check on,
   * the monitor probes it on its own timer; here it is probed at once after an enable (or when
   * nothing is known yet), and restarted (disable with force, enable) when failureThreshold probes
   * in a row failed and its backoff allows. An unresponsive plugin serves nobody, so the restart
   * forces even when the engine counts users: leaving it would keep them broken.
   */
  async #checkHealth(
    key: string,
    desired: DesiredPlugin | undefined,
    results: readonly PluginResult[],
  ): Promise<HealthView | undefined> {
    const monitor = this.#health;
    if (monitor === undefined) return undefined;
    const settings = desired?.healthCheck;
    const plugin =
      desired === undefined
        ? undefined
        : (this.#actual.peek(desired.name) ?? (await this.#actual.some([desired.name]))[0]);
    if (
      desired === undefined ||
      settings?.enabled !== true ||
      !desired.enabled ||
      desired.suspend ||
      plugin === undefined ||
      !plugin.enabled
    ) {
      monitor.untrack(key);
      return undefined;
    }
    if (results.some((r) => r.failure !== undefined)) return undefined;
    monitor.track(key, plugin, settings);
    const enabledNow = results.some((r) => r.steps.some((s) => s.ok && s.action.type === 'enable'));
    let view = monitor.view(key);
    if (view === undefined) return undefined;
    if (enabledNow || view.unknown) view = (await monitor.probeNow(key)) ?? view;
    if (!view.restartDue || monitor.restartDelay(key) > 0) return view;

    const log = this.#options.logger.child({ key, plugin: desired.name });
    log.warn(
      { failures: view.failures, error: view.lastError },
      'the plugin does not answer Plugin.Activate: restarting it',
    );
    monitor.restarting(key);
    this.#options.metrics.restarts.inc({ plugin: key });
    this.#options.onPluginRestarted?.(key, desired.name, view.lastError ?? 'no answer');
    try {
      await this.#options.store.disable(desired.name, true);
      await this.#options.store.enable(desired.name, desired.enableTimeoutSeconds);
    } catch (error) {
      // Left disabled, the next reconcile enables it like any disabled plugin.
      log.warn({ err: error }, 'restarting the plugin failed');
    }
    await this.#actual.refresh(desired.name).catch(() => this.#actual.invalidate());
    const after = (await this.#actual.some([desired.name]))[0];
    if (after?.enabled !== true) return { ...view, ready: false, restartDue: false, unknown: false };
    monitor.track(key, after, settings);
    return (await monitor.probeNow(key)) ?? view;
  }

  /**
   * Reconciles `names` (document names or local plugin names; every key when empty) now, as `plugctl
   * reconcile` asks: each key is queued at once, a held stall is tried again, and the promise resolves
   * once a reconcile of every key that started after this call has finished. Names that match no key
   * are returned in `unknown` and not queued. Rejects when the controller is not running.
   */
  async reconcileNow(
    names: readonly string[],
  ): Promise<{ unknown: string[]; results: RequestedReconcile[] }> {
    if (this.#workers === undefined || this.#stopping) throw new Error('the controller is not running');
    const all = new Set(this.#allKeys());
    const byName = this.#index().names;
    const unknown: string[] = [];
    const keys = new Set<string>();
    for (const name of names) {
      const key = all.has(name)
        ? name
        : (byName.get(name) ?? byName.get(`${name}:latest`) ?? this.#ledger.view().plugins[name]?.key);
      if (key === undefined) unknown.push(name);
      else keys.add(key);
    }
    if (names.length === 0) for (const key of all) keys.add(key);
    const results = await Promise.all(
      [...keys].map(
        (key) =>
          new Promise<RequestedReconcile>((resolve) => {
            const answer = (result: ReconcileResult): void => {
              const status = this.#status.get(key);
              resolve({ key, result, ...(status !== undefined ? { status } : {}) });
            };
            this.#waiters.set(key, [...(this.#waiters.get(key) ?? []), answer]);
            this.#forced.add(key);
            this.#queue.add(key);
          }),
      ),
    );
    return { unknown, results };
  }

  /** A worker's reconcile: answers the reconcileNow callers waiting when it started. */
  async #reconcileAnswering(key: string): Promise<ReconcileResult> {
    const waiters = this.#waiters.get(key);
    this.#waiters.delete(key);
    let result: ReconcileResult;
    try {
      result = await this.reconcile(key);
    } catch (error) {
      result = { type: 'failed', kind: 'transient', error };
    }
    for (const answer of waiters ?? []) answer(result);
    return result;
  }

  /**
   * A failed upgrade that was rolled back (or a pin whose content did not match) is not tried again
   * for the same document: the plugin runs its previous version and the host event the rollback
   * caused must not start the same failing upgrade over. A changed document tries again.
   */
  #heldStall(key: string, doc: LoadedDocument): ReconcileResult | undefined {
    const status = this.#status.get(key);
    const code = status?.lastError?.code;
    if (status === undefined || code === undefined || !isStickyStall(code)) return undefined;
    if (phaseOf(status) !== 'stalled' || status.observedHash !== this.#hashOf(doc)) return undefined;
    return { type: 'failed', kind: 'stalled', error: new Error(status.lastError?.message) };
  }

  /**
   * Documents are immutable, so their planner view and hash are computed once each (per way the
   * host was selected: by its labels, or only thanks to an override).
   */
  #desiredOf(doc: LoadedDocument, selectedBy: 'labels' | 'override' = 'labels'): DesiredPlugin {
    let desired = this.#desiredCache.get(doc);
    if (desired?.selectedBy !== selectedBy) {
      desired = { ...toDesired(doc), selectedBy };
      this.#desiredCache.set(doc, desired);
    }
    return desired;
  }

  #hashOf(doc: LoadedDocument): string {
    let hash = this.#hashCache.get(doc);
    if (hash === undefined) this.#hashCache.set(doc, (hash = hashSpec(doc)));
    return hash;
  }

  #selection(doc: LoadedDocument): HostSelection {
    return selectHost(doc.doc.spec.nodeSelector, this.#options.labels.current());
  }

  /**
   * Lookups over the current snapshot (local name -> key of the document declaring it here,
   * key -> keys that depend on it, build context -> keys), built once per snapshot: snapshots are
   * immutable.
   */
  #index(): SnapshotIndex {
    const snapshot = this.#options.source.snapshot();
    const labels = this.#options.labels.current();
    if (this.#indexed?.snapshot === snapshot && this.#indexed.labels === labels) return this.#indexed.index;
    const names = new Map<string, string>();
    const dependents = new Map<string, string[]>();
    const contexts = new Map<string, string[]>();
    const secrets = new Map<string, string[]>();
    for (const [key, doc] of snapshot.documents) {
      const selection = this.#selection(doc);
      if (selection.selected) {
        names.set(doc.localName, key);
        const desired = this.#desiredOf(doc, selection.by);
        // secret files are watched like build contexts: a changed file reconfigures at once
        const watched = [
          ...(desired.build !== undefined ? [desired.build.context] : []),
          ...Object.values(desired.secrets ?? {}).flatMap((source) =>
            source.file !== undefined ? [source.file] : [],
          ),
        ];
        for (const path of watched) contexts.set(path, [...(contexts.get(path) ?? []), key]);
        const secretNames = new Set(
          Object.values(desired.secrets ?? {}).flatMap((source) =>
            source.secretKeyRef !== undefined ? [source.secretKeyRef.name] : [],
          ),
        );
        for (const name of secretNames) secrets.set(name, [...(secrets.get(name) ?? []), key]);
      }
      for (const dependency of doc.doc.spec.dependsOn ?? []) {
        dependents.set(dependency, [...(dependents.get(dependency) ?? []), key]);
      }
    }
    const index = { names, dependents, contexts, secrets };
    this.#indexed = { snapshot, labels, index };
    return index;
  }

  /** Re-reads the plugins this reconcile changed, so the next key plans against the host as it is. */
  async #refresh(touched: readonly PluginResult[]): Promise<void> {
    await Promise.all(
      touched.map((r) => this.#actual.refresh(r.name).catch(() => this.#actual.invalidate())),
    );
  }

  #record(
    key: string,
    desired: DesiredPlugin | undefined,
    doc: LoadedDocument | undefined,
    plans: readonly PluginPlan[],
    results: readonly PluginResult[],
    health?: HealthView,
  ): ReconcileResult {
    const failure = results.find((r) => r.failure !== undefined)?.failure;
    const skipped = plans.some((p) => p.key === key && p.outcome === 'skipped');
    if (desired === undefined && !skipped) {
      // Not declared here: the key's plugins were pruned (or never existed).
      if (failure === undefined) {
        this.#forgetStatus(key);
        return { type: 'done' };
      }
    }
    const now = new Date(this.#clock.now()).toISOString();
    const previous = this.#status.get(key);
    const name = desired?.name ?? plans[0]?.name ?? key;
    const peeked = this.#actual.peek(name);
    const plugin = peeked === undefined ? undefined : withDeclaredIdentity([peeked], this.#ledger.view())[0];
    const owned = this.#ledger.view().plugins;
    const digest = plugin !== undefined && Object.hasOwn(owned, name) ? owned[name]?.digest : undefined;
    const done: string[] = [];
    for (const r of results)
      for (const s of r.steps) if (s.ok && s.action.type !== 'noop') done.push(s.action.type);
    let observation = observe(plans, failure);
    let unresponsive: { message: string; retryMs: number } | undefined;
    if (health !== undefined && !health.ready && observation.phase === 'ready' && desired !== undefined) {
      unresponsive = this.#unresponsive(key, desired, health);
      observation = { phase: 'reconciling', reason: 'Unresponsive', message: unresponsive.message };
    }
    const secrets = secretHashes(desired);
    // which mirror the content came from is said until content is fetched again
    const fetched = results
      .flatMap((r) => r.steps)
      .filter((step) => step.ok && (step.action.type === 'pull' || step.action.type === 'upgrade'))
      .at(-1)?.action;
    const source =
      fetched !== undefined && (fetched.type === 'pull' || fetched.type === 'upgrade')
        ? fetched.source
        : previous?.source;
    const status: PluginStatus = {
      key,
      plugin: name,
      ...(plugin !== undefined
        ? { pluginID: plugin.id, reference: plugin.reference, enabled: plugin.enabled }
        : {}),
      ...(doc !== undefined ? { observedHash: this.#hashOf(doc) } : {}),
      ...(doc?.doc.metadata.labels !== undefined ? { labels: doc.doc.metadata.labels } : {}),
      ...(secrets !== undefined ? { secrets } : {}),
      ...(source !== undefined && plugin !== undefined ? { source } : {}),
      ...(doc?.doc.metadata.generation !== undefined
        ? { observedGeneration: doc.doc.metadata.generation }
        : {}),
      ...(digest !== undefined ? { digest } : {}),
      ...(done.length > 0
        ? { lastAction: done.join(', ') }
        : previous?.lastAction !== undefined
          ? { lastAction: previous.lastAction }
          : {}),
      ...(failure !== undefined
        ? { lastError: { code: failure.code, kind: failure.kind, message: failure.message } }
        : unresponsive !== undefined
          ? { lastError: { code: 'PLUGIN_UNRESPONSIVE', kind: 'waiting', message: unresponsive.message } }
          : {}),
      lastReconcileTime: now,
      conditions: conditionsFor(observation, previous?.conditions ?? [], now),
    };
    // Ready as seen by this process: a status loaded from an earlier run does not count until checked.
    const becameReady = observation.phase === 'ready' && !this.#ready.has(key);
    this.#setStatus(status);
    if (becameReady) this.#enqueueDependents(key);
    if (unresponsive !== undefined) return { type: 'requeueAfter', ms: unresponsive.retryMs };
    if (failure === undefined) return { type: 'done' };
    // Waiting failures are re-checked after a growing delay by the workers (5 s, x1.5, at most 60 s).
    return {
      type: 'failed',
      kind: failure.kind,
      error: new Error(failure.message),
      ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
    };
  }

  /** The Unresponsive message of a plugin that does not answer, and when to look again. */
  #unresponsive(
    key: string,
    desired: DesiredPlugin,
    health: HealthView,
  ): { message: string; retryMs: number } {
    const settings = desired.healthCheck;
    const threshold = settings?.failureThreshold ?? 1;
    const periodMs = (settings?.periodSeconds ?? 10) * 1000;
    const delay = this.#health?.restartDelay(key) ?? 0;
    const parts = [
      `${desired.name} does not answer Plugin.Activate: ${health.lastError ?? 'no answer yet'}`,
      `${health.failures} failed check(s) in a row (failureThreshold ${threshold})`,
    ];
    if (health.restarts > 0) parts.push(`restarted ${health.restarts} time(s)`);
    if (health.restartDue && delay > 0) parts.push(`next restart in ${Math.ceil(delay / 1000)} s`);
    return { message: parts.join('; '), retryMs: health.restartDue ? Math.max(delay, 1000) : periodMs };
  }

  /** Tells onReconciled what this reconcile changed or failed on, plugin by plugin. */
  #report(results: readonly PluginResult[]): void {
    const listener = this.#options.onReconciled;
    if (listener === undefined) return;
    for (const r of results) {
      const acted = r.steps.some((s) => s.action.type !== 'noop');
      if (!acted && r.failure === undefined) continue;
      try {
        listener({
          key: r.key,
          plugin: r.name,
          steps: r.steps,
          ...(r.failure !== undefined
            ? { failure: { kind: r.failure.kind, code: r.failure.code, message: r.failure.message } }
            : {}),
        });
      } catch (error) {
        this.#options.logger.warn({ err: error, key: r.key }, 'onReconciled failed');
      }
    }
  }

  /** Every status change goes through here, so the Ready set and the per-state gauge stay exact. */
  #setStatus(status: PluginStatus): void {
    const previous = this.#status.get(status.key);
    const before = previous === undefined ? undefined : phaseOf(previous);
    const phase = phaseOf(status);
    // Replaced in place, not deleted first: the store writes nothing when only the time changed.
    this.#status.set(status);
    if (phase === 'ready') this.#ready.add(status.key);
    else this.#ready.delete(status.key);
    // The gauge moves only on a change of phase: a no-op resync of N keys touches no metric label.
    if (before === phase) return;
    if (before !== undefined) this.#options.metrics.plugins.dec({ state: before });
    this.#options.metrics.plugins.inc({ state: phase });
  }

  #forgetStatus(key: string): void {
    this.#health?.untrack(key);
    this.#ready.delete(key);
    const previous = this.#status.get(key);
    if (previous === undefined) return;
    this.#options.metrics.plugins.dec({ state: phaseOf(previous) });
    this.#status.delete(key);
  }

  #enqueueDependents(key: string): void {
    for (const other of this.#index().dependents.get(key) ?? []) this.#queue.add(other);
  }

  #onResult(key: string, result: ReconcileResult, durationMs: number): void {
    const metrics = this.#options.metrics;
    const label =
      result.type === 'failed' ? result.kind : result.type === 'requeueAfter' ? 'requeue' : 'done';
    metrics.reconciles.inc({ result: label });
    metrics.reconcileDuration.observe(durationMs / 1000);
    metrics.queueDepth.set(this.#queue.len());
    if (this.#initial?.delete(key) && this.#initial.size === 0) {
      this.#options.logger.info('first full sync complete');
    }
  }

  #onDocumentsChanged(keys: ReadonlySet<string>): void {
    for (const key of keys) this.#queue.add(key);
    const snapshot = this.#options.source.snapshot();
    const hasErrors = snapshot.errors.length > 0;
    const firstDocument = !this.#seenDocument && snapshot.documents.size > 0;
    // Pruning was held back (broken documents, or none yet): now that it may run, look at every owned key.
    if ((this.#hadErrors && !hasErrors) || firstDocument)
      for (const key of this.#allKeys()) this.#queue.add(key);
    this.#hadErrors = hasErrors;
    this.#seenDocument ||= firstDocument;
    for (const trigger of this.#options.triggers) trigger.desiredChanged?.();
  }

  #onContextChanged(context: string): void {
    for (const key of this.#index().contexts.get(context) ?? []) this.#queue.add(key);
  }

  #onEngineEvent(event: PluginEvent): void {
    // Something changed on the host; plugctl's own actions echo here too, which costs a no-op reconcile.
    // The plugin is found by its ID: the event's name is whatever the user typed (`w`, an ID prefix).
    this.#actual.invalidate();
    this.#options.usage?.invalidateUsage();
    const byId = PLUGIN_ID.test(event.id);
    const name = byId
      ? (this.#actual.nameOfId(event.id) ?? this.#ledger.nameOfId(event.id))
      : // A pull's event carries the remote where the ID belongs, and the normalised local name.
        event.name;
    if (name !== undefined) {
      this.#enqueueName(name);
      return;
    }
    if (!byId) return;
    // A plugin plugctl has not seen yet (installed by someone else): its name decides which key cares.
    this.#options.store.inspect(event.id).then(
      (plugin) => {
        if (plugin !== undefined) this.#enqueueName(plugin.name);
      },
      (error: unknown) => this.#options.logger.debug({ err: error, id: event.id }, 'cannot inspect an event'),
    );
  }

  #enqueueName(name: string): void {
    const key = this.#index().names.get(name) ?? this.#ledger.view().plugins[name]?.key;
    if (key !== undefined) this.#queue.add(key);
  }

  /** Re-reads the host once and re-queues every key, except stalled keys whose document is unchanged. */
  #resync(why: string): void {
    if (this.#stopping) return;
    this.#actual.invalidate();
    const documents = this.#options.source.snapshot().documents;
    let queued = 0;
    for (const key of this.#allKeys()) {
      const status = this.#status.get(key);
      const doc = documents.get(key);
      const stalled = status !== undefined && phaseOf(status) === 'stalled';
      // A built plugin's input is also its context, which can be fixed without touching the document.
      const builds = doc?.doc.spec.build !== undefined;
      if (stalled && !builds && doc !== undefined && status.observedHash === this.#hashOf(doc)) continue;
      this.#queue.add(key);
      queued++;
    }
    this.#options.logger.debug({ queued }, `resync: ${why}`);
  }

  #allKeys(): string[] {
    const keys = new Set(this.#options.source.snapshot().documents.keys());
    for (const owned of Object.values(this.#ledger.view().plugins)) keys.add(owned.key);
    return [...keys];
  }
}

/**
 * The plan of a declared plugin that may not be disrupted yet: nothing is done and its status says it
 * waits for a rollout slot. Prunes of the same key are left as they are.
 */
function waitForPermission(p: PluginPlan, wait: { message: string }): PluginPlan {
  if (p.desired === undefined) return p;
  return {
    ...p,
    outcome: 'blocked',
    actions: [{ type: 'blocked', kind: 'waiting', code: 'ROLLOUT_WAITING', reason: wait.message }],
  };
}

/** A plugin's full ID, as engine events carry it in Actor.ID (except for pulls). */
const PLUGIN_ID = /^[0-9a-f]{64}$/;

/**
 * The slice of the inventory that belongs to `key`: what it owns (unless another document now
 * declares that plugin) plus the entry for the plugin it declares, whoever owned it before.
 * `candidates` narrows the names looked at (the controller passes the few the key can concern).
 */
export function inventoryFor(
  key: string,
  desired: DesiredPlugin | undefined,
  inventory: Readonly<Inventory>,
  declaredNames: ReadonlyMap<string, string>,
  candidates: Iterable<string> = Object.keys(inventory.plugins),
): Inventory {
  const slice: Inventory = { version: 2, plugins: {} };
  for (const name of candidates) {
    if (!Object.hasOwn(inventory.plugins, name)) continue;
    const owned = inventory.plugins[name]!;
    const declaredBy = declaredNames.get(name);
    if (name === desired?.name || (owned.key === key && (declaredBy === undefined || declaredBy === key))) {
      slice.plugins[name] = owned;
    }
  }
  return slice;
}

function observe(plans: readonly PluginPlan[], failure: PluginResult['failure']): Observation {
  const skipped = plans.find((p) => p.outcome === 'skipped');
  if (skipped !== undefined && failure === undefined) {
    return { phase: 'skipped', reason: 'NotSelected', message: skipped.actions[0]?.reason ?? '' };
  }
  if (plans.some((p) => p.outcome === 'suspended')) {
    return {
      phase: 'suspended',
      reason: 'Suspended',
      message: 'spec.suspend is true; nothing is reconciled',
    };
  }
  if (failure === undefined) {
    const changed = plans.some((p) => p.outcome !== 'unchanged');
    return {
      phase: 'ready',
      reason: changed ? 'Applied' : 'Converged',
      message: 'the host matches the document',
    };
  }
  if (failure.kind === 'stalled') return { phase: 'stalled', reason: failure.code, message: failure.message };
  if (failure.kind === 'waiting')
    return { phase: 'reconciling', reason: failure.code, message: failure.message };
  return {
    phase: 'reconciling',
    reason: 'RetryingAfterError',
    message: `${failure.code}: ${failure.message}`,
  };
}

/** A stable hash of a document's spec: the "observed document hash" of status. */
export function hashSpec(doc: LoadedDocument): string {
  return contentHash(doc.doc.spec).slice(0, 16);
}
