/**
 * Follows the store's plugin events for as long as the controller runs, reconnecting with
 * exponential backoff when the stream drops (dockerd restarted). After every (re)connection
 * `onConnected` runs, so the controller re-reads the host and covers whatever it missed.
 */
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import type { PluginEvent, PluginEventSource } from '../store/store.ts';
import type { Trigger, TriggerTarget } from './trigger.ts';

/** Backoff between reconnection attempts. */
export interface ReconnectPolicy {
  initialMs: number;
  maxMs: number;
}

/** Runs until `signal` aborts. Never throws. */
export async function followEngineEvents(options: {
  store: PluginEventSource;
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

/**
 * The engine-events trigger: every plugin event is a hint that the plugin it names (by ID) may have
 * drifted, and every (re)connection a hint that anything may have, since events were missed.
 */
export class EngineEventsTrigger implements Trigger {
  readonly #events: PluginEventSource;
  readonly #logger: Logger;
  readonly #policy: ReconnectPolicy | undefined;
  readonly #abort = new AbortController();
  #following: Promise<void> | undefined;

  /** Follows `events` from start() until stop(). */
  constructor(events: PluginEventSource, logger: Logger, policy?: ReconnectPolicy) {
    this.#events = events;
    this.#logger = logger;
    this.#policy = policy;
  }

  start(target: TriggerTarget): void {
    this.#following = followEngineEvents({
      store: this.#events,
      logger: this.#logger,
      signal: this.#abort.signal,
      onEvent: (event) => target.pluginChanged(event),
      onConnected: () => target.resync('engine events (re)connected'),
      ...(this.#policy !== undefined ? { policy: this.#policy } : {}),
    });
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#following;
  }
}
