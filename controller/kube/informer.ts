/**
 * A list+watch cache of one resource that does not trust its watch. The JavaScript client's informers
 * are known to stall silently (kubernetes-client/javascript #364, #958, #2127), so this one:
 * - lists (in pages) before it watches, and is `synced` only once a complete list has been read;
 * - watches with bookmarks from the list's resourceVersion, with a server-side timeout, and restarts
 *   the watch at once when nothing at all (not even a bookmark) has arrived for `silenceMs`;
 * - relists on 410 Gone (an expired resourceVersion) and every `relistMs`, so a lost event is repaired;
 * - reconnects after failures with jittered exponential backoff, keeping the cache meanwhile: a cache
 *   is never emptied because the server went away (nothing must be pruned by mistake).
 * Listeners get the keys whose object appeared, changed or disappeared, never the event types: the
 * controller reads the cache, level-based.
 */
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import { Backoff, jittered, sleep } from '../runtime/backoff.ts';
import type { BackoffPolicy } from '../runtime/backoff.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { KubeClient } from './client.ts';
import { KUBE_CODES, KubeError, hasStatus } from './errors.ts';
import { collectionPath, objectKey } from './resources.ts';
import type { KubeList, KubeObject, ResourceType } from './resources.ts';

/** Options of an Informer. */
export interface InformerOptions<T extends KubeObject> {
  client: KubeClient;
  type: ResourceType;
  /** for a namespaced type: the namespace to cache (all namespaces when undefined) */
  namespace?: string;
  labelSelector?: string;
  /** e.g. `metadata.name=node-a`: an agent caches only its own Node */
  fieldSelector?: string;
  clock: Clock;
  logger: Logger;
  /** restart the watch when nothing has arrived for this long (default 90 s) */
  silenceMs?: number;
  /** the server ends each watch after this long (default: between 1/2 and 3/4 of silenceMs) */
  watchTimeoutSeconds?: number;
  /** relist everything this often, minus up to 10% jitter (default 30 min) */
  relistMs?: number;
  /** reconnection backoff (default 250 ms doubling to 30 s) */
  backoff?: BackoffPolicy;
  /** list page size (default 500) */
  pageSize?: number;
  /** trims an object before it is cached (default: drops metadata.managedFields, the bulk of most objects) */
  transform?: (object: KubeObject) => T;
  random?: () => number;
}

/** What the informer has done, for tests, metrics and benchmarks. */
export interface InformerStats {
  /** complete lists */
  lists: number;
  /** watch requests that were answered */
  watches: number;
  /** watches restarted because nothing arrived for silenceMs */
  silenceRestarts: number;
  /** relists forced by 410 Gone */
  goneRelists: number;
  /** failed list or watch attempts (each followed by a backoff) */
  failures: number;
  /** ADDED, MODIFIED and DELETED events applied */
  events: number;
}

/** A watch that lasts less than this before the server ends it counts as a failure (backoff). */
const MIN_HEALTHY_WATCH_MS = 1_000;

type StopReason = 'closed' | 'silence' | 'gone' | 'relist';

class Stop extends Error {
  readonly reason: StopReason;
  constructor(reason: StopReason) {
    super(`watch stopped: ${reason}`);
    this.reason = reason;
  }
}

interface WatchEvent {
  type?: string;
  object?: KubeObject & { code?: number; message?: string; reason?: string };
}

function dropManagedFields(object: KubeObject): KubeObject {
  if (object.metadata.managedFields === undefined) return object;
  const { managedFields: _dropped, ...metadata } = object.metadata;
  return { ...object, metadata };
}

/** A cache of one resource type, kept by list+watch. start() it, read it, close() it. */
export class Informer<T extends KubeObject = KubeObject> {
  readonly stats: InformerStats = {
    lists: 0,
    watches: 0,
    silenceRestarts: 0,
    goneRelists: 0,
    failures: 0,
    events: 0,
  };
  readonly #o: Required<
    Omit<InformerOptions<T>, 'namespace' | 'labelSelector' | 'fieldSelector' | 'watchTimeoutSeconds'>
  > &
    InformerOptions<T>;
  readonly #cache = new Map<string, T>();
  readonly #listeners = new Set<(keys: ReadonlySet<string>) => void>();
  readonly #backoff: Backoff;
  readonly #closing = new AbortController();
  #pending = new Set<string>();
  #flushQueued = false;
  #resourceVersion = '';
  #synced = false;
  #loop: Promise<void> | undefined;
  #syncWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(options: InformerOptions<T>) {
    this.#o = {
      silenceMs: 90_000,
      relistMs: 30 * 60_000,
      backoff: { initialMs: 250, maxMs: 30_000 },
      pageSize: 500,
      transform: dropManagedFields as (object: KubeObject) => T,
      random: Math.random,
      ...options,
    };
    this.#backoff = new Backoff(this.#o.backoff, this.#o.random);
  }

  /** True once a complete list has been read; stays true (with the last known objects) through outages. */
  get synced(): boolean {
    return this.#synced;
  }

  /** The resourceVersion the cache is at. */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** The cached object under `key` (`name`, or `namespace/name`). */
  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  /** Every cached object. */
  values(): T[] {
    return [...this.#cache.values()];
  }

  /** Every cached key. */
  keys(): string[] {
    return [...this.#cache.keys()];
  }

  /** Calls `listener` with the keys that appeared, changed or disappeared; returns the unsubscribe. */
  onChange(listener: (keys: ReadonlySet<string>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Starts listing and watching; resolves once synced (rejects if closed first). Idempotent. */
  start(): Promise<void> {
    const synced = this.#synced
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => this.#syncWaiters.push({ resolve, reject }));
    this.#loop ??= this.#run();
    return synced;
  }

  /** Stops the watch and the loop. The cache stays readable. */
  async close(): Promise<void> {
    this.#closing.abort(new Stop('closed'));
    for (const waiter of this.#syncWaiters.splice(0))
      waiter.reject(new Error(`${this.#what()}: closed before it synced`));
    await this.#loop;
  }

  #what(): string {
    const selectors = [this.#o.labelSelector, this.#o.fieldSelector]
      .filter((s) => s !== undefined)
      .join(', ');
    return `${this.#o.type.plural}${selectors === '' ? '' : ` (${selectors})`}`;
  }

  #path(): string {
    return collectionPath(this.#o.type, this.#o.type.namespaced ? this.#o.namespace : undefined);
  }

  async #run(): Promise<void> {
    let needList = true;
    let relistAt = 0;
    const closing = this.#closing.signal;
    while (!closing.aborted) {
      try {
        if (needList) {
          await this.#list();
          needList = false;
          relistAt = this.#o.clock.now() + jittered(this.#o.relistMs, 0.1, this.#o.random);
        }
        const watchedAt = this.#o.clock.now();
        const stopped = await this.#watch(relistAt);
        if (stopped === 'ended' && this.#o.clock.now() - watchedAt < MIN_HEALTHY_WATCH_MS) {
          // A server that ends every watch at once must not be asked again in a tight loop.
          await sleep(this.#o.clock, this.#backoff.next(), closing);
          continue;
        }
        this.#backoff.reset();
        if (stopped === 'gone') {
          this.stats.goneRelists++;
          this.#o.logger.info({ resource: this.#what() }, 'watch expired (410 Gone): relisting');
          needList = true;
        } else if (stopped === 'relist') {
          needList = true;
        } else if (stopped === 'silence') {
          this.stats.silenceRestarts++;
          this.#o.logger.warn(
            { resource: this.#what(), silenceMs: this.#o.silenceMs },
            'watch silent for too long (not even a bookmark): restarting it',
          );
        }
      } catch (error) {
        if (closing.aborted) break;
        if (hasStatus(error, 410)) {
          this.stats.goneRelists++;
          needList = true;
          continue;
        }
        this.stats.failures++;
        const delay = Math.max(this.#backoff.next(), (error as KubeError).retryAfterMs ?? 0);
        this.#o.logger.warn(
          { resource: this.#what(), code: (error as KubeError).code, retryInMs: delay },
          `list/watch failed: ${describeError(error)}`,
        );
        await sleep(this.#o.clock, delay, closing);
      }
    }
  }

  async #list(): Promise<void> {
    const items = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.#o.client.request<KubeList>({
        method: 'GET',
        path: this.#path(),
        query: {
          limit: this.#o.pageSize,
          continue: continueToken,
          labelSelector: this.#o.labelSelector,
          fieldSelector: this.#o.fieldSelector,
        },
        signal: this.#closing.signal,
      });
      for (const item of page.items) {
        const object = this.#o.transform(item);
        items.set(objectKey(object), object);
      }
      resourceVersion = page.metadata.resourceVersion ?? resourceVersion;
      continueToken = page.metadata.continue || undefined;
    } while (continueToken !== undefined);
    // Replace the cache in one step, announcing only what differs from it.
    for (const [key, old] of this.#cache) {
      if (!items.has(key)) {
        this.#cache.delete(key);
        this.#changed(key);
      } else if (items.get(key)?.metadata.resourceVersion !== old.metadata.resourceVersion)
        this.#changed(key);
    }
    for (const [key, object] of items) {
      if (!this.#cache.has(key)) this.#changed(key);
      this.#cache.set(key, object);
    }
    this.#resourceVersion = resourceVersion;
    this.stats.lists++;
    if (!this.#synced) {
      this.#synced = true;
      for (const waiter of this.#syncWaiters.splice(0)) waiter.resolve();
    }
    this.#o.logger.debug({ resource: this.#what(), objects: items.size, resourceVersion }, 'listed');
  }

  /** One watch, until the server ends it or it is stopped; returns why it stopped. */
  async #watch(relistAt: number): Promise<StopReason | 'ended'> {
    const clock = this.#o.clock;
    const controller = new AbortController();
    const stop = (reason: StopReason): void => controller.abort(new Stop(reason));
    const onClosing = (): void => stop('closed');
    this.#closing.signal.addEventListener('abort', onClosing, { once: true });
    let lastData = clock.now();
    let silenceTimer: TimerHandle | undefined;
    const armSilence = (): void => {
      const idle = clock.now() - lastData;
      if (idle >= this.#o.silenceMs) stop('silence');
      else silenceTimer = clock.setTimeout(armSilence, this.#o.silenceMs - idle);
    };
    armSilence();
    const relistTimer = clock.setTimeout(() => stop('relist'), Math.max(0, relistAt - clock.now()));
    const timeoutSeconds =
      this.#o.watchTimeoutSeconds ??
      Math.max(1, Math.round((this.#o.silenceMs / 1000) * (0.5 + 0.25 * this.#o.random())));
    try {
      await this.#o.client.stream(
        {
          method: 'GET',
          path: this.#path(),
          query: {
            watch: 1,
            allowWatchBookmarks: true,
            resourceVersion: this.#resourceVersion,
            timeoutSeconds,
            labelSelector: this.#o.labelSelector,
            fieldSelector: this.#o.fieldSelector,
          },
          signal: controller.signal,
          timeoutMs: this.#o.silenceMs,
        },
        (line) => this.#apply(line, stop),
        () => {
          lastData = clock.now();
        },
      );
      this.stats.watches++;
      return 'ended';
    } catch (error) {
      const reason = controller.signal.reason;
      if (controller.signal.aborted && reason instanceof Stop) {
        this.stats.watches++;
        return reason.reason;
      }
      throw error;
    } finally {
      if (silenceTimer !== undefined) clock.clearTimeout(silenceTimer);
      clock.clearTimeout(relistTimer);
      this.#closing.signal.removeEventListener('abort', onClosing);
      if (!controller.signal.aborted) controller.abort(new Stop('closed'));
    }
  }

  #apply(line: string, stop: (reason: StopReason) => void): void {
    let event: WatchEvent;
    try {
      event = JSON.parse(line) as WatchEvent;
    } catch {
      throw new KubeError(KUBE_CODES.badResponse, `${this.#what()}: a watch event is not JSON`, {
        kind: 'transient',
      });
    }
    const object = event.object;
    if (object === undefined) return;
    switch (event.type) {
      case 'ADDED':
      case 'MODIFIED': {
        const cached = this.#o.transform(object);
        const key = objectKey(cached);
        const old = this.#cache.get(key);
        this.#cache.set(key, cached);
        this.#advance(object);
        this.stats.events++;
        if (old?.metadata.resourceVersion !== cached.metadata.resourceVersion) this.#changed(key);
        return;
      }
      case 'DELETED': {
        const key = objectKey(object);
        this.#advance(object);
        this.stats.events++;
        if (this.#cache.delete(key)) this.#changed(key);
        return;
      }
      case 'BOOKMARK':
        this.#advance(object);
        return;
      case 'ERROR':
        if (object.code === 410) {
          stop('gone');
          return;
        }
        throw new KubeError(
          KUBE_CODES.serverError,
          `${this.#what()}: the watch reported an error: ${object.message ?? 'no message'}`,
          { kind: 'transient', ...(object.code !== undefined ? { status: object.code } : {}) },
        );
      default:
        return;
    }
  }

  #advance(object: KubeObject): void {
    const rv = object.metadata?.resourceVersion;
    if (rv !== undefined && rv !== '') this.#resourceVersion = rv;
  }

  #changed(key: string): void {
    this.#pending.add(key);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // Keys of one chunk (or one list) reach listeners together.
    queueMicrotask(() => {
      this.#flushQueued = false;
      const keys = this.#pending;
      this.#pending = new Set();
      for (const listener of this.#listeners) listener(keys);
    });
  }
}
