/**
 * Retry delays and waits on the injected Clock: exponential backoff with jitter (so many agents that
 * lost the same API server do not come back in step), and a sleep that an AbortSignal ends early.
 */
import type { Clock } from './clock.ts';

/** Bounds of an exponential backoff. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

/**
 * Delays that double from `initialMs` up to `maxMs`, each drawn uniformly from [d/2, d] ("equal
 * jitter"): never zero, never more than the cap. reset() after a success starts again from the bottom.
 */
export class Backoff {
  readonly #policy: BackoffPolicy;
  readonly #random: () => number;
  #attempt = 0;

  constructor(policy: BackoffPolicy, random: () => number = Math.random) {
    this.#policy = policy;
    this.#random = random;
  }

  /** The delay before the next attempt; each call doubles the next one, up to the cap. */
  next(): number {
    const cap = Math.min(this.#policy.maxMs, this.#policy.initialMs * 2 ** this.#attempt);
    if (cap < this.#policy.maxMs) this.#attempt++;
    return Math.round(cap / 2 + (this.#random() * cap) / 2);
  }

  /** Starts again from initialMs. */
  reset(): void {
    this.#attempt = 0;
  }
}

/** `ms` scaled by a uniform factor in [1 - spread, 1]: spreads periodic work of many processes. */
export function jittered(ms: number, spread: number, random: () => number = Math.random): number {
  return Math.round(ms * (1 - spread * random()));
}

/** Resolves after `ms` on `clock`, or as soon as `signal` aborts (never rejects). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
