/**
 * Waiting in tests: for a state, never for a time. A test asserts what the world looks like once
 * something happened, with a deadline generous enough that a busy two-core machine does not fail
 * it (at least MIN_DEADLINE_MS); how fast things happen is measured in bench/.
 */

/** The shortest deadline a test may give: anything shorter is a speed check in disguise. */
export const MIN_DEADLINE_MS = 10_000;

/** The deadline when a test gives none. */
export const DEFAULT_DEADLINE_MS = 20_000;

/** What to wait for and how long. */
export interface WaitOptions {
  /** what is awaited, for the error: `timed out after 20000 ms waiting for <what>` */
  what: string;
  /** the deadline, at least MIN_DEADLINE_MS (default DEFAULT_DEADLINE_MS) */
  timeoutMs?: number;
  /**
   * the longest pause between two checks (default 200 ms); the first pause is 5 ms (or this, if
   * smaller) and doubles up to it, so a state that comes at once is seen at once
   */
  maxIntervalMs?: number;
}

function deadlineOf(options: WaitOptions): number {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DEADLINE_MS;
  if (!(timeoutMs >= MIN_DEADLINE_MS)) {
    throw new RangeError(
      `waiting for ${options.what}: a deadline of ${timeoutMs} ms is a speed check; ` +
        `tests wait at least ${MIN_DEADLINE_MS} ms for a state, and bench/ measures speed`,
    );
  }
  return timeoutMs;
}

/** A failure to reach a state before the deadline. */
export class WaitTimeoutError extends Error {
  constructor(what: string, timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}`);
    this.name = 'WaitTimeoutError';
  }
}

/**
 * Checks `condition` until it returns something other than undefined or false, and returns that.
 * Rejects with a WaitTimeoutError naming `what` once the deadline has passed (the last check is
 * made after it), or with whatever `condition` throws.
 */
export async function waitFor<T>(
  condition: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions,
): Promise<T> {
  const timeoutMs = deadlineOf(options);
  const maxIntervalMs = options.maxIntervalMs ?? 200;
  const deadline = performance.now() + timeoutMs;
  let pause = Math.min(5, maxIntervalMs);
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new WaitTimeoutError(options.what, timeoutMs);
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, maxIntervalMs);
  }
}

/**
 * `promise`, unless it has not settled by the deadline: then rejects with a WaitTimeoutError
 * naming `what` (the promise itself is left to settle on its own).
 */
export async function within<T>(
  promise: Promise<T>,
  options: Omit<WaitOptions, 'maxIntervalMs'>,
): Promise<T> {
  const timeoutMs = deadlineOf(options);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new WaitTimeoutError(options.what, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
