/**
 * Backoff for restarting a crashed plugin. moby restarts a crashed plugin at once and forever
 * (HandleExitEvent -> enable); a plugin that crashes at start-up then spins. Here a crash waits
 * first, 1 s doubling to 60 s, and a plugin that stayed up long enough starts over at 1 s.
 */

/** Settings of a RestartPolicy; all in milliseconds. */
export interface RestartPolicyOptions {
  /** delay after the first crash; default 1000 */
  initialMs?: number;
  /** upper bound of the delay; default 60000 */
  maxMs?: number;
  /** a plugin that ran at least this long before crashing counts as healthy again; default 60000 */
  resetAfterMs?: number;
  /** monotonic milliseconds; injected by tests; default performance.now */
  now?: () => number;
}

/**
 * The restart delay of one plugin. Call `started()` when it came up and `exited()` when it
 * crashed; `exited()` returns how long to wait before starting it again: `initialMs` after the
 * first crash, doubling with each crash that follows a short run, capped at `maxMs`. A crash after
 * a run of at least `resetAfterMs` is a first crash again. Pure bookkeeping: it sleeps and starts
 * nothing itself.
 */
export class RestartPolicy {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #resetAfterMs: number;
  readonly #now: () => number;
  #crashes = 0;
  #startedAt: number | undefined;

  constructor(options: RestartPolicyOptions = {}) {
    this.#initialMs = Math.max(0, options.initialMs ?? 1000);
    this.#maxMs = Math.max(this.#initialMs, options.maxMs ?? 60_000);
    this.#resetAfterMs = options.resetAfterMs ?? 60_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Consecutive crashes counted so far (0 after a healthy run or before any). */
  get crashes(): number {
    return this.#crashes;
  }

  /** Records that the plugin is up (its socket answered). */
  started(): void {
    this.#startedAt = this.#now();
  }

  /** Records a crash and returns the delay before the next start, in milliseconds. */
  exited(): number {
    const ranFor = this.#startedAt === undefined ? 0 : this.#now() - this.#startedAt;
    this.#startedAt = undefined;
    if (ranFor >= this.#resetAfterMs) this.#crashes = 0;
    this.#crashes += 1;
    // 2 ** n overflows to Infinity long after the cap applies, and Math.min handles Infinity
    return Math.min(this.#maxMs, this.#initialMs * 2 ** (this.#crashes - 1));
  }

  /** Forgets every crash (the plugin was disabled on purpose, or enabled again by a human). */
  reset(): void {
    this.#crashes = 0;
    this.#startedAt = undefined;
  }
}
