// A manual Clock for unit tests: time only moves when the test calls advance(), so backoff, delayed
// adds and durations are asserted exactly and without sleeping.
import type { Clock, TimerHandle } from '../../../controller/runtime/clock.ts';

interface FakeTimer {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

/** A Clock whose time starts at `start` and moves only through `advance`. */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, FakeTimer>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as unknown as number);
  }

  /** Timers armed and not yet fired or cleared. */
  pending(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way in deadline order (ties
   * in the order they were set), with `now()` equal to each timer's deadline while it runs. Timers set
   * by a callback fire in the same call when they fall due within the window.
   */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const timer of this.#timers.values()) {
        if (timer.at <= end && (next === undefined || timer.at < next.at)) next = timer;
      }
      if (next === undefined) break;
      this.#timers.delete(next.id);
      this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }
}

/**
 * Lets every pending promise continuation run: resolves on the next macrotask, after the microtask
 * queue is empty. Not a sleep — no time passes on any clock the code under test sees.
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
