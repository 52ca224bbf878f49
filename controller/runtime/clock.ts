/**
 * Time as an injected dependency: the workqueue and the workers read the time and arm timers only
 * through a Clock, so their semantics (backoff, delayed adds, durations) are tested with a manual
 * clock instead of sleeping.
 */

declare const timerHandleBrand: unique symbol;

/** An armed timer, only meaningful to the Clock that returned it (pass it back to its clearTimeout). */
export type TimerHandle = { readonly [timerHandleBrand]: true };

/**
 * A source of time and timers. `now()` is in milliseconds on a monotonic scale: only differences are
 * meaningful (it never jumps when the wall clock is set), so use it for delays and durations, not for
 * timestamps shown to humans. `setTimeout` runs `fn` once, no earlier than `ms` from now;
 * `clearTimeout` cancels a timer that has not fired (clearing a fired or cleared one is a no-op).
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

// Node turns longer delays into 1 ms (with a warning); capping makes a long timer fire early instead,
// which every user here tolerates because it re-checks the time when woken.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The real clock: `performance.now()` anchored at `performance.timeOrigin` (so values look like Unix
 * milliseconds yet stay monotonic) and Node timers. Timers are `unref`'d: a pending retry must never
 * be the only thing keeping the process alive — the running controller is kept alive by its server,
 * watchers and event stream, and a process that has nothing else left to do should be free to exit.
 * Delays above 2^31-1 ms are capped (the timer fires early rather than after 1 ms).
 */
export const systemClock: Clock = Object.freeze({
  now(): number {
    return performance.timeOrigin + performance.now();
  },
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const delay = Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_TIMER_MS) : ms > 0 ? MAX_TIMER_MS : 0;
    const timer = setTimeout(fn, delay);
    timer.unref();
    return timer as unknown as TimerHandle;
  },
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  },
});
