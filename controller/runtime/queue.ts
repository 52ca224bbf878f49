/**
 * The workqueue of the continuous controller: it holds keys (DockerPlugin names), never events, and
 * follows client-go's util/workqueue semantics. It is stingy — a key added many times while it waits
 * is handed out once — and a key is never handed out while a worker still holds it: adding it then
 * marks it dirty, and `done` puts it back at the tail. On top of that it schedules delayed adds and
 * rate-limited retries (per-key exponential backoff under a global token bucket).
 *
 * Single-threaded JavaScript makes every method atomic, so unlike client-go there are no locks; the
 * only asynchrony is `get()` waiting for a key and `drained()` waiting for workers.
 */
import { type Clock, type TimerHandle, systemClock } from './clock.ts';

/** Tuning of a WorkQueue; every field is optional and the defaults are client-go's controller defaults. */
export interface WorkQueueOptions {
  /** Time and timers; default the real clock. */
  clock?: Clock;
  /** Delay of a key's first rate-limited retry, doubled on each further failure; default 5 ms. */
  baseDelayMs?: number;
  /** Cap of the per-key backoff; default 1 000 000 ms (1000 s, about 17 minutes). */
  maxDelayMs?: number;
  /** Sustained rate of rate-limited retries across all keys, per second; default 10. Infinity disables. */
  qps?: number;
  /** Retries allowed at once before `qps` applies; default 100. */
  burst?: number;
}

const DEFAULT_BASE_DELAY_MS = 5;
const DEFAULT_MAX_DELAY_MS = 1_000_000;
const DEFAULT_QPS = 10;
const DEFAULT_BURST = 100;
// Node timers cannot be longer; a later deadline is simply re-armed when the timer fires.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One pending delayed add; `seq` keeps keys with equal deadlines in the order they were asked for. */
interface Delayed {
  readonly key: string;
  readonly at: number;
  readonly seq: number;
}

function before(a: Delayed, b: Delayed): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * A binary min-heap of delayed adds ordered by deadline. Superseded entries are left in place and
 * skipped when they surface (the owner knows which entry is current), which keeps "an earlier
 * deadline wins" O(log n) without a decrease-key operation.
 */
class DelayHeap {
  readonly #items: Delayed[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Delayed | undefined {
    return this.#items[0];
  }

  push(entry: Delayed): void {
    const items = this.#items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as Delayed;
      if (!before(entry, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = entry;
  }

  pop(): Delayed | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const l = items[left] as Delayed;
      const r = items[right];
      const child = r !== undefined && before(r, l) ? right : left;
      const c = child === left ? l : (r as Delayed);
      if (!before(c, last)) break;
      items[i] = c;
      i = child;
    }
    items[i] = last;
    return top;
  }

  clear(): void {
    this.#items.length = 0;
  }
}

/**
 * A deduplicating, rate-limited queue of keys for a pool of workers.
 *
 * Contract (client-go util/workqueue, except where noted):
 * - `add(key)`: a key waiting many times is handed out once; waiting keys are handed out FIFO. A key
 *   being processed is only marked dirty and goes back to the tail when `done(key)` is called, so it
 *   is never processed concurrently with itself and runs exactly once more however often it was added.
 * - `addAfter(key, ms)`: adds the key once `ms` have passed (at once when `ms <= 0`). A key already
 *   scheduled keeps the earlier of the two deadlines. A scheduled add is independent of the key
 *   being waiting or processing: it still fires, and then behaves like `add`.
 * - `addRateLimited(key)`: `addAfter` with max(per-key backoff `baseDelayMs * 2^failures` capped at
 *   `maxDelayMs`, the global token bucket's delay), counting one more failure for the key.
 * - `forget(key)` clears the key's failures (call it on success); `failures(key)` reads them.
 * - `get()` hands out the next waiting key and marks it processing; it waits while none is waiting.
 *   The caller must call `done(key)` exactly once per key it got.
 * - `shutDown()`: from then on adds are ignored, scheduled adds and waiting keys are dropped, and
 *   `get()` resolves `undefined` (pending calls at once). Unlike client-go, waiting keys are not
 *   drained: shutting down means "no new work", only keys already handed out finish.
 * - `drained()` resolves once no key is processing, so shutdown can wait for in-flight work (the
 *   caller bounds that wait).
 */
export class WorkQueue {
  readonly #clock: Clock;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #qps: number;
  readonly #burst: number;

  // Waiting keys in FIFO order: an array consumed from #head (compacted now and then) plus a set for
  // membership, so add, get and len stay O(1) with tens of thousands of keys.
  #order: string[] = [];
  #head = 0;
  readonly #waiting = new Set<string>();
  readonly #processing = new Set<string>();
  // Keys added while processing: re-queued by done().
  readonly #dirty = new Set<string>();

  readonly #delayed = new Map<string, Delayed>();
  readonly #heap = new DelayHeap();
  #seq = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;

  readonly #failures = new Map<string, number>();
  #tokens: number;
  #refilledAt: number | undefined;

  readonly #getters: Array<(key: string | undefined) => void> = [];
  readonly #drainers: Array<() => void> = [];
  #shutDown = false;

  /** Builds an empty queue; arms no timer until a delayed add is made. */
  constructor(options: WorkQueueOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#baseDelayMs = positive('baseDelayMs', options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS);
    this.#maxDelayMs = positive('maxDelayMs', options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
    this.#qps = positive('qps', options.qps ?? DEFAULT_QPS);
    this.#burst = positive('burst', options.burst ?? DEFAULT_BURST);
    if (!Number.isInteger(this.#burst)) throw new RangeError(`burst must be an integer, got ${this.#burst}`);
    this.#tokens = this.#burst;
  }

  /** Queues `key` (see the class contract); ignored after shutDown. */
  add(key: string): void {
    if (this.#shutDown || this.#waiting.has(key)) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    this.#enqueue(key);
  }

  /** Queues `key` after `ms` milliseconds, keeping an earlier pending deadline; ignored after shutDown. */
  addAfter(key: string, ms: number): void {
    if (this.#shutDown) return;
    // `!(ms > 0)` also sends NaN to the immediate path rather than scheduling it nowhere.
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const at = this.#clock.now() + ms;
    const current = this.#delayed.get(key);
    if (current !== undefined && current.at <= at) return;
    const entry: Delayed = { key, at, seq: this.#seq++ };
    this.#delayed.set(key, entry);
    this.#heap.push(entry);
    this.#arm();
  }

  /**
   * Schedules a retry of `key` after its backoff or the global rate limit, whichever is longer, and
   * counts one more failure for it. `atLeastMs` (what a rate-limited registry asked for) lengthens
   * the delay, but never beyond `maxDelayMs`: a Retry-After of a day is capped at the backoff
   * maximum. Returns the delay chosen in ms (0 and no effect after shutDown).
   */
  addRateLimited(key: string, atLeastMs = 0): number {
    if (this.#shutDown) return 0;
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const asked = Math.min(Math.max(0, atLeastMs), this.#maxDelayMs);
    const delay = Math.max(this.#backoff(failures), this.#reserveToken(), asked);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the failures of `key`: its next rate-limited retry starts again from `baseDelayMs`. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** How many rate-limited retries `key` has had since it was last forgotten. */
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /**
   * The next waiting key, now marked processing; waits while none is waiting. Resolves `undefined`
   * once the queue is shut down, which is the workers' signal to stop.
   */
  get(): Promise<string | undefined> {
    if (this.#shutDown) return Promise.resolve(undefined);
    const key = this.#take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.#getters.push(resolve));
  }

  /** Marks `key` as no longer processing and re-queues it if it was added meanwhile. */
  done(key: string): void {
    if (!this.#processing.delete(key)) return;
    if (this.#dirty.delete(key) && !this.#shutDown) this.#enqueue(key);
    if (this.#processing.size === 0) this.#settleDrainers();
  }

  /** Number of keys waiting to be handed out (not counting scheduled or processing ones). */
  len(): number {
    return this.#order.length - this.#head;
  }

  /** Number of keys handed out and not yet done. */
  processing(): number {
    return this.#processing.size;
  }

  /** Stops accepting work (see the class contract). Idempotent. */
  shutDown(): void {
    if (this.#shutDown) return;
    this.#shutDown = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#delayed.clear();
    this.#heap.clear();
    this.#order = [];
    this.#head = 0;
    this.#waiting.clear();
    this.#dirty.clear();
    for (const resolve of this.#getters.splice(0)) resolve(undefined);
    if (this.#processing.size === 0) this.#settleDrainers();
  }

  /** Resolves once no key is processing (at once if none is). */
  drained(): Promise<void> {
    if (this.#processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainers.push(resolve));
  }

  #enqueue(key: string): void {
    // A worker already waiting gets the key directly; it is marked processing here, synchronously,
    // so an add() before that worker resumes marks it dirty instead of queueing a second copy.
    const getter = this.#getters.shift();
    if (getter !== undefined) {
      this.#processing.add(key);
      getter(key);
      return;
    }
    this.#waiting.add(key);
    this.#order.push(key);
  }

  #take(): string | undefined {
    if (this.#head >= this.#order.length) return undefined;
    const key = this.#order[this.#head] as string;
    this.#head++;
    if (this.#head >= 1024 && this.#head * 2 >= this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
    this.#waiting.delete(key);
    this.#processing.add(key);
    return key;
  }

  #settleDrainers(): void {
    for (const resolve of this.#drainers.splice(0)) resolve();
  }

  #backoff(failures: number): number {
    // 2 ** failures overflows to Infinity long before it matters; min() caps it either way.
    return Math.min(this.#baseDelayMs * 2 ** failures, this.#maxDelayMs);
  }

  /**
   * Takes one token from the global bucket and returns how long the caller must wait for it, like
   * golang.org/x/time/rate's Reserve().Delay(): the bucket holds up to `burst` tokens, refills
   * continuously at `qps`, and may go negative — each reservation past the burst waits 1/qps longer
   * than the previous one, so a storm of failures is spread out instead of retried at once.
   */
  #reserveToken(): number {
    if (this.#qps === Infinity) return 0;
    const now = this.#clock.now();
    if (this.#refilledAt !== undefined) {
      const elapsed = Math.max(0, now - this.#refilledAt);
      this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#qps) / 1000);
    }
    this.#refilledAt = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.#qps;
  }

  /** Makes sure a timer is armed for the earliest current deadline (and none when nothing is due). */
  #arm(): void {
    const next = this.#peekDelayed();
    if (next === undefined) {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
      return;
    }
    if (this.#timer !== undefined && this.#timerAt <= next.at) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    const wait = Math.min(Math.max(0, next.at - this.#clock.now()), MAX_TIMER_MS);
    this.#timerAt = next.at;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), wait);
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    for (let next = this.#peekDelayed(); next !== undefined && next.at <= now; next = this.#peekDelayed()) {
      this.#heap.pop();
      this.#delayed.delete(next.key);
      this.add(next.key);
    }
    this.#arm();
  }

  /** The earliest current delayed add, discarding superseded heap entries on the way. */
  #peekDelayed(): Delayed | undefined {
    for (let top = this.#heap.peek(); top !== undefined; top = this.#heap.peek()) {
      if (this.#delayed.get(top.key) === top) return top;
      this.#heap.pop();
    }
    return undefined;
  }
}

function positive(name: string, value: number): number {
  if (!(value > 0)) throw new RangeError(`${name} must be a positive number, got ${value}`);
  return value;
}
