/**
 * The reconcile loop: a fixed pool of workers takes keys from a WorkQueue, reconciles each, and turns
 * the result into the key's next turn (forget, retry later, back off, or leave it alone). Reconcile
 * receives only a key, never an event, and reports one of three outcomes, like controller-runtime.
 */
import type { FailureKind } from '../errors.ts';
import { type Clock, systemClock } from './clock.ts';
import type { WorkQueue } from './queue.ts';

/**
 * What one reconcile of a key concluded:
 * - `done`: converged (or nothing to do); the key's failures are forgotten and it is not requeued.
 * - `requeueAfter`: look again after `ms` (polling something with a known horizon); not a failure, so
 *   it neither grows nor keeps the key's backoff.
 * - `failed`: classified by `kind` (see controller/errors.ts) — `transient` backs off exponentially,
 *   `waiting` is polled on a mild schedule without touching the backoff, `stalled` is not retried.
 */
export type ReconcileResult =
  | { type: 'done' }
  | { type: 'requeueAfter'; ms: number }
  | { type: 'failed'; kind: FailureKind; error: unknown; retryAfterMs?: number };

/** Options of startWorkers. */
export interface WorkersOptions {
  /** The queue to drain; the workers stop once it is shut down. */
  queue: WorkQueue;
  /** Number of concurrent workers (a positive integer); one key is never reconciled by two at once. */
  count: number;
  /**
   * Converges one key. Should classify its own failures; anything it throws (or rejects with) is
   * treated as `{ type: 'failed', kind: 'transient' }`.
   */
  reconcile: (key: string) => Promise<ReconcileResult>;
  /**
   * Observer for logs and metrics, called after each reconcile (and after its result was applied to
   * the queue) with the duration measured on `clock`. It must not throw; if it does, the error is
   * emitted as a process warning and the worker carries on, since a broken observer must not stop
   * the host from converging.
   */
  onResult?: (key: string, result: ReconcileResult, durationMs: number) => void;
  /** Time source for durations; default the real clock. */
  clock?: Clock;
  /** First delay of a `waiting` failure; default 5000 ms. */
  waitingDelayMs?: number;
  /** Cap of the delay of repeated `waiting` failures; default 60000 ms. */
  waitingMaxDelayMs?: number;
}

/** What startWorkers returns. */
export interface Workers {
  /** Resolves once every worker has stopped: after `queue.shutDown()` and their in-flight reconciles. */
  stopped: Promise<void>;
}

const DEFAULT_WAITING_DELAY_MS = 5_000;
const DEFAULT_WAITING_MAX_DELAY_MS = 60_000;
// Waiting is polling for a condition plugctl cannot watch (a plugin in use, a dependency becoming
// Ready): it is not the registry being down, so it grows by half, not double, per consecutive wait.
const WAITING_GROWTH = 1.5;

/**
 * Starts `count` workers on `queue`. Each loops: get a key, reconcile it, apply the result, `done`:
 * - `done` -> forget the key's failures.
 * - `requeueAfter` -> forget, then `addAfter(key, ms)`.
 * - `failed` transient (or a throw) -> `addRateLimited(key)`: per-key exponential backoff under the
 *   queue's global rate limit; a `retryAfterMs` (a registry's Retry-After) lengthens the delay up to
 *   the queue's backoff maximum.
 * - `failed` waiting -> `addAfter(key, d)` with d = `waitingDelayMs * 1.5^(consecutive waits)` capped
 *   at `waitingMaxDelayMs` (5 s, 7.5 s, 11.3 s, ... 60 s by default). The transient backoff is left
 *   as it is: waiting says nothing about whether the last transient error has cleared. A reconciler
 *   that knows its own horizon should return `requeueAfter` instead.
 * - `failed` stalled -> forget, and do not requeue: only a human can fix it. The key comes back when
 *   something adds it again — a document change, or the resync. The resync re-adds every key it is
 *   given, so the controller decides whether stalled keys are part of it (reconciling a stalled key
 *   whose document has not changed is harmless but repeats the same error once per resync interval).
 *
 * `done(key)` is always called, even when reconcile throws, and a key added while it was reconciled
 * runs once more afterwards (queue semantics), whatever the result said.
 */
export function startWorkers(options: WorkersOptions): Workers {
  const { queue, count, reconcile, onResult } = options;
  const clock = options.clock ?? systemClock;
  const waitingDelayMs = options.waitingDelayMs ?? DEFAULT_WAITING_DELAY_MS;
  const waitingMaxDelayMs = options.waitingMaxDelayMs ?? DEFAULT_WAITING_MAX_DELAY_MS;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`count must be a positive integer, got ${count}`);
  }
  if (!(waitingDelayMs > 0) || !(waitingMaxDelayMs > 0)) {
    throw new RangeError('waitingDelayMs and waitingMaxDelayMs must be positive numbers');
  }

  // Consecutive `waiting` failures per key; cleared by any other result. Lives as long as the pool.
  const waits = new Map<string, number>();

  function apply(key: string, result: ReconcileResult): void {
    if (result.type === 'failed' && result.kind === 'waiting') {
      const n = waits.get(key) ?? 0;
      waits.set(key, n + 1);
      queue.addAfter(key, Math.min(waitingDelayMs * WAITING_GROWTH ** n, waitingMaxDelayMs));
      return;
    }
    waits.delete(key);
    switch (result.type) {
      case 'done':
        queue.forget(key);
        return;
      case 'requeueAfter':
        queue.forget(key);
        queue.addAfter(key, result.ms);
        return;
      case 'failed':
        if (result.kind === 'stalled') {
          queue.forget(key);
        } else {
          queue.addRateLimited(key, result.retryAfterMs);
        }
        return;
      default:
        // Not reachable from typed code; a malformed result is retried like a transient failure
        // rather than silently dropped.
        queue.addRateLimited(key);
    }
  }

  async function worker(): Promise<void> {
    for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
      const started = clock.now();
      let result: ReconcileResult;
      try {
        result = await reconcile(key);
      } catch (error) {
        result = { type: 'failed', kind: 'transient', error };
      }
      const durationMs = clock.now() - started;
      try {
        apply(key, result);
      } finally {
        queue.done(key);
      }
      if (onResult !== undefined) {
        try {
          onResult(key, result, durationMs);
        } catch (error) {
          process.emitWarning(error instanceof Error ? error : new Error(String(error)));
        }
      }
    }
  }

  const stopped = Promise.all(Array.from({ length: count }, () => worker())).then(() => undefined);
  return { stopped };
}
