/**
 * Kubernetes Events (events.k8s.io/v1) for what an agent does to a DockerPlugin: pulls, upgrades,
 * enables, removals, stalls. Each agent records with its node as reportingInstance, so `kubectl
 * describe` tells which node did what. An event repeated within the series window does not create a new
 * object: it counts into the first one's `series`, written at most every `seriesFlushMs`. A token bucket
 * per recorder (one recorder per node) bounds the writes, so a flapping plugin cannot flood the API
 * server; what the bucket refuses is dropped and counted.
 */
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { KubeClient } from './client.ts';
import { EVENTS, apiVersionOf, collectionPath, objectPath } from './resources.ts';
import { microTime } from './lease.ts';

/** The object an event is about. */
export interface EventRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
  namespace?: string;
}

/** One thing that happened. */
export interface EventInput {
  regarding: EventRef;
  type: 'Normal' | 'Warning';
  /** CamelCase why, e.g. Pulled, Upgraded, PrivilegeMismatch */
  reason: string;
  /** CamelCase what the agent did or failed to do, e.g. Pull, Enable, Remove */
  action: string;
  /** for people; cut to 1 KiB */
  note: string;
  related?: EventRef;
}

/** Options of an EventRecorder. */
export interface EventRecorderOptions {
  client: KubeClient;
  /**
   * where events about cluster-scoped objects go (default kube-system: an events.k8s.io/v1 Event about a
   * cluster-scoped object must be there on 1.20, and may be on every later version; `kubectl describe`
   * of a cluster-scoped object searches all namespaces)
   */
  namespace?: string;
  /** e.g. `plugctl.dev/agent` */
  reportingController: string;
  /** this agent, e.g. its node name */
  reportingInstance: string;
  clock: Clock;
  logger: Logger;
  /** writes allowed at once (default 25) */
  burst?: number;
  /** writes allowed per minute once the burst is spent (default 12) */
  perMinute?: number;
  /** the same event within this long counts into a series (default 6 min) */
  seriesWindowMs?: number;
  /** how often a growing series' count is written (default 30 s) */
  seriesFlushMs?: number;
}

/** What the recorder did. */
export interface EventStats {
  created: number;
  seriesUpdates: number;
  dropped: number;
  failed: number;
}

interface Series {
  name: string;
  namespace: string;
  count: number;
  written: number;
  lastObserved: number;
  /** the create is still in flight */
  creating: Promise<boolean>;
}

const MAX_SERIES = 1000;

/** Records events; call close() to write the pending series counts. */
export class EventRecorder {
  readonly stats: EventStats = { created: 0, seriesUpdates: 0, dropped: 0, failed: 0 };
  readonly #o: Required<EventRecorderOptions>;
  readonly #series = new Map<string, Series>();
  readonly #inflight = new Set<Promise<unknown>>();
  #tokens: number;
  #tokensAt: number;
  #flushTimer: TimerHandle | undefined;
  #sequence = 0;

  constructor(options: EventRecorderOptions) {
    this.#o = {
      namespace: 'kube-system',
      burst: 25,
      perMinute: 12,
      seriesWindowMs: 6 * 60_000,
      seriesFlushMs: 30_000,
      ...options,
    };
    this.#tokens = this.#o.burst;
    this.#tokensAt = this.#o.clock.now();
  }

  #take(): boolean {
    const now = this.#o.clock.now();
    this.#tokens = Math.min(
      this.#o.burst,
      this.#tokens + ((now - this.#tokensAt) * this.#o.perMinute) / 60_000,
    );
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#inflight.add(promise);
    void promise.finally(() => this.#inflight.delete(promise));
    return promise;
  }

  /** Records `event` (never throws; failures are logged and counted). */
  record(event: EventInput): void {
    const now = this.#o.clock.now();
    const note = event.note.length > 1024 ? `${event.note.slice(0, 1021)}...` : event.note;
    const key = JSON.stringify([
      event.regarding.kind,
      event.regarding.namespace,
      event.regarding.name,
      event.regarding.uid,
      event.type,
      event.reason,
      event.action,
      note,
    ]);
    const series = this.#series.get(key);
    if (series !== undefined && now - series.lastObserved < this.#o.seriesWindowMs) {
      series.count++;
      series.lastObserved = now;
      this.#scheduleFlush();
      return;
    }
    if (!this.#take()) {
      this.stats.dropped++;
      this.#o.logger.debug(
        { reason: event.reason, regarding: event.regarding.name },
        'event dropped by the rate limit',
      );
      return;
    }
    const namespace = event.regarding.namespace ?? this.#o.namespace;
    // client-go's naming: the object's name and a unique suffix (here: time and a sequence number)
    const name = `${event.regarding.name}.${Math.floor(now).toString(16)}${(this.#sequence++).toString(16)}`;
    const created: Series = {
      name,
      namespace,
      count: 1,
      written: 1,
      lastObserved: now,
      creating: Promise.resolve(false),
    };
    created.creating = this.#track(this.#create(name, namespace, event, note, now));
    this.#series.delete(key);
    this.#series.set(key, created);
    if (this.#series.size > MAX_SERIES) {
      const oldest = this.#series.keys().next().value;
      if (oldest !== undefined) this.#series.delete(oldest);
    }
  }

  async #create(
    name: string,
    namespace: string,
    event: EventInput,
    note: string,
    now: number,
  ): Promise<boolean> {
    try {
      await this.#o.client.request({
        method: 'POST',
        path: collectionPath(EVENTS, namespace),
        body: {
          apiVersion: apiVersionOf(EVENTS),
          kind: EVENTS.kind,
          metadata: { name, namespace },
          eventTime: microTime(now),
          reportingController: this.#o.reportingController,
          reportingInstance: this.#o.reportingInstance,
          action: event.action,
          reason: event.reason,
          type: event.type,
          note,
          regarding: event.regarding,
          ...(event.related !== undefined ? { related: event.related } : {}),
        },
      });
      this.stats.created++;
      return true;
    } catch (error) {
      this.stats.failed++;
      this.#o.logger.warn({ reason: event.reason }, `recording an event failed: ${describeError(error)}`);
      return false;
    }
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = this.#o.clock.setTimeout(() => {
      this.#flushTimer = undefined;
      void this.#track(this.flush());
    }, this.#o.seriesFlushMs);
  }

  /** Writes the count of every series that grew since it was last written. */
  async flush(): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const series of this.#series.values()) {
      if (series.count === series.written) continue;
      writes.push(this.#writeSeries(series));
    }
    await Promise.all(writes);
  }

  async #writeSeries(series: Series): Promise<void> {
    if (!(await series.creating)) return; // the event itself was never written
    if (!this.#take()) {
      this.#scheduleFlush(); // try again at the next flush
      return;
    }
    const count = series.count;
    try {
      await this.#o.client.request({
        method: 'PATCH',
        path: objectPath(EVENTS, series.name, series.namespace),
        contentType: 'application/merge-patch+json',
        body: { series: { count, lastObservedTime: microTime(series.lastObserved) } },
      });
      series.written = count;
      this.stats.seriesUpdates++;
    } catch (error) {
      this.stats.failed++;
      this.#o.logger.warn({ event: series.name }, `updating an event series failed: ${describeError(error)}`);
    }
  }

  /** Writes pending series counts and waits for every write in flight. */
  async close(): Promise<void> {
    if (this.#flushTimer !== undefined) {
      this.#o.clock.clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    await Promise.all([...this.#inflight]);
    await this.flush();
  }
}
