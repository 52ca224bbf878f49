/**
 * Crash supervision of enabled plugins. dockerd restarts a plugin that exits at once and forever;
 * plugctl restarts it with exponential backoff instead (1 s doubling to 60 s by default), so a
 * plugin that crashes at start does not spin. A plugin that stayed up for a stable period (60 s)
 * before crashing starts again from the initial delay.
 */
import type { Clock, TimerHandle } from '../../runtime/clock.ts';

/** Restart delays. */
export interface RestartPolicy {
  initialMs: number;
  maxMs: number;
  /** uptime after which a crash counts as the first one again */
  stableMs: number;
}

/** The default policy: 1 s, doubling, at most 60 s; reset after a stable minute. */
export const DEFAULT_RESTART_POLICY: Readonly<RestartPolicy> = Object.freeze({
  initialMs: 1000,
  maxMs: 60_000,
  stableMs: 60_000,
});

interface Tracked {
  startedAt: number | undefined;
  /** crashes since the last stable period */
  failures: number;
  timer: TimerHandle | undefined;
}

/**
 * Schedules restarts. `restart(id)` is the store's: it decides whether the plugin should still run
 * and starts it; it resolves `true` when the plugin runs again, `false` when it should not run
 * (disabled or removed meanwhile), and rejects when the start failed (then the next attempt is
 * scheduled with a longer delay).
 */
export class RestartSupervisor {
  readonly #clock: Clock;
  readonly #policy: RestartPolicy;
  readonly #restart: (id: string, attempt: number) => Promise<boolean>;
  readonly #tracked = new Map<string, Tracked>();
  #closed = false;

  constructor(
    clock: Clock,
    policy: RestartPolicy,
    restart: (id: string, attempt: number) => Promise<boolean>,
  ) {
    this.#clock = clock;
    this.#policy = policy;
    this.#restart = restart;
  }

  /** Records that `id` is running (started, restarted or adopted). */
  started(id: string): void {
    const tracked = this.#tracked.get(id);
    if (tracked === undefined) {
      this.#tracked.set(id, { startedAt: this.#clock.now(), failures: 0, timer: undefined });
      return;
    }
    if (tracked.timer !== undefined) this.#clock.clearTimeout(tracked.timer);
    tracked.timer = undefined;
    tracked.startedAt = this.#clock.now();
  }

  /** Schedules a restart of `id` after a crash; returns the delay chosen (ms). */
  crashed(id: string): number {
    let tracked = this.#tracked.get(id);
    if (tracked === undefined) {
      tracked = { startedAt: undefined, failures: 0, timer: undefined };
      this.#tracked.set(id, tracked);
    }
    const now = this.#clock.now();
    if (tracked.startedAt !== undefined && now - tracked.startedAt >= this.#policy.stableMs)
      tracked.failures = 0;
    tracked.startedAt = undefined;
    const delay = Math.min(this.#policy.initialMs * 2 ** tracked.failures, this.#policy.maxMs);
    tracked.failures++;
    if (tracked.timer !== undefined) this.#clock.clearTimeout(tracked.timer);
    if (this.#closed) return delay;
    const attempt = tracked.failures;
    const entry = tracked;
    entry.timer = this.#clock.setTimeout(() => {
      entry.timer = undefined;
      if (this.#closed || this.#tracked.get(id) !== entry) return;
      this.#restart(id, attempt).then(
        (running) => {
          if (this.#tracked.get(id) !== entry) return;
          if (running) this.started(id);
          else this.forget(id);
        },
        () => {
          if (this.#tracked.get(id) === entry && !this.#closed) this.crashed(id);
        },
      );
    }, delay);
    return delay;
  }

  /** True while a restart of `id` is scheduled. */
  pending(id: string): boolean {
    return this.#tracked.get(id)?.timer !== undefined;
  }

  /** Stops supervising `id` (disabled or removed): cancels a scheduled restart. */
  forget(id: string): void {
    const tracked = this.#tracked.get(id);
    if (tracked?.timer !== undefined) this.#clock.clearTimeout(tracked.timer);
    this.#tracked.delete(id);
  }

  /** Cancels every scheduled restart. */
  close(): void {
    this.#closed = true;
    for (const tracked of this.#tracked.values()) {
      if (tracked.timer !== undefined) this.#clock.clearTimeout(tracked.timer);
    }
    this.#tracked.clear();
  }
}
