/**
 * Follows the store's plugin events for as long as the controller runs, reconnecting with
 * exponential backoff when the stream drops (dockerd restarted). After every (re)connection
 * `onConnected` runs, so the controller re-reads the host and covers whatever it missed.
 */
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import type { PluginEvent, Store } from '../store/store.ts';

/** Backoff between reconnection attempts. */
export interface ReconnectPolicy {
  initialMs: number;
  maxMs: number;
}

/** Runs until `signal` aborts. Never throws. */
export async function followEngineEvents(options: {
  store: Store;
  logger: Logger;
  signal: AbortSignal;
  onEvent: (event: PluginEvent) => void;
  onConnected: () => void;
  policy?: ReconnectPolicy;
}): Promise<void> {
  const policy = options.policy ?? { initialMs: 100, maxMs: 10_000 };
  let delay = policy.initialMs;
  while (!options.signal.aborted) {
    let connectedAt: number | undefined;
    try {
      await options.store.watch(options.onEvent, options.signal, () => {
        connectedAt = Date.now();
        options.logger.debug('following engine plugin events');
        options.onConnected();
      });
    } catch (error) {
      options.logger.warn(
        { code: (error as { code?: string }).code },
        `engine event stream lost: ${describeError(error)}`,
      );
    }
    if (options.signal.aborted) return;
    // A connection that stayed up a while resets the backoff; a flapping one keeps growing it.
    if (connectedAt !== undefined && Date.now() - connectedAt > policy.maxMs) delay = policy.initialMs;
    await sleep(delay, options.signal);
    delay = Math.min(delay * 2, policy.maxMs);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
