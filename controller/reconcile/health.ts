/**
 * The health monitor: Ready means the plugin answers. For every key whose plugin is enabled (and
 * whose spec.healthCheck is not disabled), it calls Plugin.Activate on the plugin's socket every
 * periodSeconds through the store (PluginProber), counts failures in a row, and tells the
 * controller when the answer to "is it Ready, is a restart due?" changes, so the key is reconciled
 * then and only then: a healthy plugin costs one probe per period and no reconcile.
 *
 * Plugins with the same period are probed together, in one round per period: measured with 200
 * plugins (bench/health-probe.ts), waking once per round costs a fraction of waking once per plugin,
 * and a round of small requests to different sockets is no burden on the plugins.
 *
 * Restarts are not done here: the controller does them inside the key's reconcile, so a restart
 * never runs beside another change of the same plugin. The monitor only keeps the restart backoff
 * (10 s doubling to 5 min, forgotten after the plugin has answered for 5 min).
 */
import type { HealthCheckSpec } from '../api/types.ts';
import { describeError } from '../errors.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { InstalledPlugin, PluginProber } from '../store/store.ts';

/** spec.healthCheck with its defaults applied. */
export type HealthSettings = Required<HealthCheckSpec>;

/** What the monitor knows of one key's plugin. */
export interface HealthView {
  /** true once a probe passed since the plugin was (re)started and fewer than failureThreshold failed since */
  ready: boolean;
  /** failureThreshold probes in a row failed: the plugin should be restarted */
  restartDue: boolean;
  /** true when no probe has completed since tracking or the last restart */
  unknown: boolean;
  /** failed probes in a row */
  failures: number;
  /** the last failure's message */
  lastError?: string;
  /** restarts within the current backoff window */
  restarts: number;
}

/** Restart backoff. */
export interface RestartBackoff {
  initialMs: number;
  maxMs: number;
  /** answering this long forgets earlier restarts */
  resetAfterMs: number;
}

/** The default restart backoff: 10 s doubling to 5 min, forgotten after 5 min of answers. */
export const DEFAULT_RESTART_BACKOFF: RestartBackoff = {
  initialMs: 10_000,
  maxMs: 300_000,
  resetAfterMs: 300_000,
};

/** What the monitor is given. */
export interface HealthMonitorOptions {
  prober: PluginProber;
  clock: Clock;
  /** called when a key's `ready` or `restartDue` changed (the controller queues the key) */
  onChange: (key: string) => void;
  /** called for every failed probe (metrics) */
  onProbeFailure?: (key: string) => void;
  backoff?: RestartBackoff;
}

/** Probes of one round in flight at once, so a round never holds more than this many sockets. */
const ROUND_CONCURRENCY = 64;

interface Entry {
  key: string;
  plugin: InstalledPlugin;
  settings: HealthSettings;
  failures: number;
  passed: boolean;
  completed: boolean;
  lastError?: string;
  lastPassAt?: number;
  /** bumped by a restart: results of probes started before it are dropped */
  generation: number;
  inflight?: Promise<void>;
}

/** The keys probed every `periodMs`, and the timer of their next round. */
interface Round {
  entries: Set<Entry>;
  timer?: TimerHandle;
}

interface RestartHistory {
  count: number;
  lastAt: number;
}

/** Probes tracked plugins on a timer and keeps each key's health and restart backoff. */
export class HealthMonitor {
  readonly #options: HealthMonitorOptions;
  readonly #backoff: RestartBackoff;
  readonly #entries = new Map<string, Entry>();
  /** period in ms -> its round */
  readonly #rounds = new Map<number, Round>();
  readonly #restarts = new Map<string, RestartHistory>();
  #stopped = false;

  /** Nothing is probed until track(). */
  constructor(options: HealthMonitorOptions) {
    this.#options = options;
    this.#backoff = options.backoff ?? DEFAULT_RESTART_BACKOFF;
  }

  /**
   * Probes `plugin` for `key` from now on (every `settings.periodSeconds`). Tracking the same plugin
   * (same ID) with the same settings again only refreshes its description; another ID starts over.
   */
  track(key: string, plugin: InstalledPlugin, settings: HealthSettings): void {
    if (this.#stopped) return;
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry.plugin.id === plugin.id && sameSettings(entry.settings, settings)) {
      entry.plugin = plugin;
      return;
    }
    if (entry !== undefined) this.#leave(entry);
    const fresh: Entry = {
      key,
      plugin,
      settings,
      failures: 0,
      passed: false,
      completed: false,
      generation: (entry?.generation ?? 0) + 1,
    };
    this.#entries.set(key, fresh);
    this.#join(fresh);
  }

  /** Stops probing `key` (its plugin is disabled, gone or not declared) and forgets its restarts. */
  untrack(key: string): void {
    const entry = this.#entries.get(key);
    if (entry !== undefined) this.#leave(entry);
    this.#entries.delete(key);
    this.#restarts.delete(key);
  }

  /** Keys tracked now. */
  tracked(): number {
    return this.#entries.size;
  }

  /** What is known of `key`; undefined when it is not tracked. */
  view(key: string): HealthView | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const threshold = entry.settings.failureThreshold;
    return {
      ready: entry.passed && entry.failures < threshold,
      restartDue: entry.failures >= threshold,
      unknown: !entry.completed,
      failures: entry.failures,
      ...(entry.lastError !== undefined ? { lastError: entry.lastError } : {}),
      restarts: this.#history(key)?.count ?? 0,
    };
  }

  /** Probes `key` now (joining a probe in flight) and returns what is known afterwards. */
  async probeNow(key: string): Promise<HealthView | undefined> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    await this.#probe(entry, false);
    return this.view(key);
  }

  /** Milliseconds until the backoff allows restarting `key` again; 0 when it may restart now. */
  restartDelay(key: string): number {
    const history = this.#history(key);
    if (history === undefined || history.count === 0) return 0;
    const wait = Math.min(this.#backoff.initialMs * 2 ** (history.count - 1), this.#backoff.maxMs);
    return Math.max(0, history.lastAt + wait - this.#options.clock.now());
  }

  /**
   * Records that `key`'s plugin is being restarted: the backoff grows, failures are forgotten and
   * probes already in flight no longer count. The caller probes again once the plugin is back.
   */
  restarting(key: string): void {
    const history = this.#history(key) ?? { count: 0, lastAt: 0 };
    this.#restarts.set(key, { count: history.count + 1, lastAt: this.#options.clock.now() });
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    entry.generation++;
    entry.failures = 0;
    entry.passed = false;
    entry.completed = false;
    delete entry.lastError;
  }

  /** Stops every timer; probes in flight finish and are dropped. */
  stop(): void {
    this.#stopped = true;
    for (const round of this.#rounds.values()) {
      if (round.timer !== undefined) this.#options.clock.clearTimeout(round.timer);
    }
    this.#rounds.clear();
    this.#entries.clear();
  }

  #history(key: string): RestartHistory | undefined {
    const history = this.#restarts.get(key);
    const entry = this.#entries.get(key);
    // Answering long enough after the last restart forgets the restarts: the backoff starts over.
    if (
      history !== undefined &&
      entry?.lastPassAt !== undefined &&
      entry.failures === 0 &&
      entry.lastPassAt - history.lastAt >= this.#backoff.resetAfterMs
    ) {
      this.#restarts.delete(key);
      return undefined;
    }
    return history;
  }

  #join(entry: Entry): void {
    const periodMs = entry.settings.periodSeconds * 1000;
    let round = this.#rounds.get(periodMs);
    if (round === undefined) this.#rounds.set(periodMs, (round = { entries: new Set() }));
    round.entries.add(entry);
    if (round.timer === undefined) this.#arm(periodMs, round);
  }

  #leave(entry: Entry): void {
    const periodMs = entry.settings.periodSeconds * 1000;
    const round = this.#rounds.get(periodMs);
    if (round === undefined) return;
    round.entries.delete(entry);
    if (round.entries.size > 0) return;
    if (round.timer !== undefined) this.#options.clock.clearTimeout(round.timer);
    this.#rounds.delete(periodMs);
  }

  #arm(periodMs: number, round: Round): void {
    if (this.#stopped) return;
    round.timer = this.#options.clock.setTimeout(() => {
      delete round.timer;
      void this.#runRound([...round.entries]).then(() => {
        if (this.#rounds.get(periodMs) === round && round.timer === undefined) this.#arm(periodMs, round);
      });
    }, periodMs);
  }

  async #runRound(entries: readonly Entry[]): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < entries.length) {
        const entry = entries[next++]!;
        if (this.#entries.get(entry.key) === entry) await this.#probe(entry, true);
      }
    };
    await Promise.all(Array.from({ length: Math.min(ROUND_CONCURRENCY, entries.length) }, worker));
  }

  /** `notify`: tell onChange about a change (the controller's own probes need not be told back). */
  #probe(entry: Entry, notify: boolean): Promise<void> {
    if (entry.inflight !== undefined) return entry.inflight;
    const generation = entry.generation;
    const before = this.view(entry.key);
    const run = this.#options.prober
      .activate(entry.plugin, entry.settings.timeoutSeconds * 1000)
      .then(
        () => {
          if (generation !== entry.generation) return;
          entry.failures = 0;
          entry.passed = true;
          entry.completed = true;
          entry.lastPassAt = this.#options.clock.now();
          delete entry.lastError;
        },
        (error: unknown) => {
          if (generation !== entry.generation) return;
          entry.failures++;
          entry.completed = true;
          entry.lastError = describeError(error);
          this.#options.onProbeFailure?.(entry.key);
        },
      )
      .finally(() => {
        delete entry.inflight;
        if (!notify) return;
        const after = this.view(entry.key);
        if (this.#entries.get(entry.key) !== entry || after === undefined) return;
        if (before?.ready !== after.ready || before.restartDue !== after.restartDue)
          this.#options.onChange(entry.key);
      });
    entry.inflight = run;
    return run;
  }
}

function sameSettings(a: HealthSettings, b: HealthSettings): boolean {
  return (
    a.enabled === b.enabled &&
    a.periodSeconds === b.periodSeconds &&
    a.timeoutSeconds === b.timeoutSeconds &&
    a.failureThreshold === b.failureThreshold
  );
}
