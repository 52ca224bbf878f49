/**
 * Status bookkeeping for the controller: the kstatus conditions of one reconcile, the phase a status
 * is in, and the in-memory book of every key's status, which publishes to a StatusSink only when a
 * status changed in more than its reconcile time (a no-op resync of many plugins publishes nothing).
 */
import type { Condition, PluginStatus, StatusSink } from '../api/status.ts';

export type { Condition, PluginStatus, StatusSink };

/**
 * The summary phase a status is in, used by metrics and `get`. `skipped`: the document does not
 * select this host, so nothing is reconciled for it here.
 */
export type Phase = 'ready' | 'reconciling' | 'stalled' | 'suspended' | 'skipped';

/** How commands name each phase to a person (`get`'s STATUS column, `reconcile`'s answer). */
export const PHASE_LABELS: Readonly<Record<Phase, string>> = {
  ready: 'Ready',
  reconciling: 'Reconciling',
  stalled: 'Stalled',
  suspended: 'Suspended',
  skipped: 'Skipped',
};

/** The Ready reason of a document that does not select this host. */
export const NOT_SELECTED = 'NotSelected';

/** Inputs to the conditions of one reconcile. */
export interface Observation {
  phase: Phase;
  reason: string;
  message: string;
}

/** Builds the three conditions for an observation, keeping transition times of unchanged ones. */
export function conditionsFor(
  observation: Observation,
  previous: readonly Condition[],
  now: string,
): Condition[] {
  const want: [Condition['type'], boolean][] = [
    ['Ready', observation.phase === 'ready'],
    ['Reconciling', observation.phase === 'reconciling'],
    ['Stalled', observation.phase === 'stalled'],
  ];
  return want.map(([type, on]) => {
    const status = on ? 'True' : 'False';
    const before = previous.find((c) => c.type === type);
    const reason =
      on || type === 'Ready' ? observation.reason : type === 'Reconciling' ? 'Idle' : 'NotStalled';
    const message = on || type === 'Ready' ? observation.message : '';
    return {
      type,
      status,
      reason,
      message,
      lastTransitionTime: before !== undefined && before.status === status ? before.lastTransitionTime : now,
    };
  });
}

/** The phase of a status, read back from its conditions. */
export function phaseOf(status: PluginStatus): Phase {
  const on = (type: Condition['type']): boolean =>
    status.conditions.some((c) => c.type === type && c.status === 'True');
  if (on('Ready')) return 'ready';
  if (on('Stalled')) return 'stalled';
  if (on('Reconciling')) return 'reconciling';
  return status.conditions.some((c) => c.type === 'Ready' && c.reason === NOT_SELECTED)
    ? 'skipped'
    : 'suspended';
}

/** True when two statuses differ at most in lastReconcileTime. */
export function sameExceptTime(a: PluginStatus, b: PluginStatus): boolean {
  return (
    a.plugin === b.plugin &&
    a.pluginID === b.pluginID &&
    a.reference === b.reference &&
    a.enabled === b.enabled &&
    a.observedHash === b.observedHash &&
    JSON.stringify(a.labels) === JSON.stringify(b.labels) &&
    JSON.stringify(a.secrets) === JSON.stringify(b.secrets) &&
    a.source === b.source &&
    a.observedGeneration === b.observedGeneration &&
    a.digest === b.digest &&
    a.lastAction === b.lastAction &&
    a.lastError?.code === b.lastError?.code &&
    a.lastError?.message === b.lastError?.message &&
    a.conditions.length === b.conditions.length &&
    a.conditions.every((c, i) => {
      const d = b.conditions[i]!;
      return c.type === d.type && c.status === d.status && c.reason === d.reason && c.message === d.message;
    })
  );
}

/** Every key's current status, published to a sink when something other than the time changed. */
export class StatusBook {
  readonly #sink: StatusSink;
  readonly #statuses = new Map<string, PluginStatus>();

  /** Publishes to `sink`; nothing is read until load(). */
  constructor(sink: StatusSink) {
    this.#sink = sink;
  }

  /** Takes over what the sink holds from an earlier run. */
  async load(): Promise<void> {
    for (const status of await this.#sink.load()) this.#statuses.set(status.key, status);
  }

  /** The current status of `key`. */
  get(key: string): PluginStatus | undefined {
    return this.#statuses.get(key);
  }

  /** Every status. */
  all(): IterableIterator<PluginStatus> {
    return this.#statuses.values();
  }

  /** Replaces the status of `key`; publishes unless only the reconcile time changed. */
  set(status: PluginStatus): void {
    const previous = this.#statuses.get(status.key);
    this.#statuses.set(status.key, status);
    if (previous === undefined || !sameExceptTime(previous, status)) this.#sink.publish(this.#statuses);
  }

  /** Forgets `key` (its plugin was pruned and it is no longer declared). */
  delete(key: string): void {
    if (this.#statuses.delete(key)) this.#sink.publish(this.#statuses);
  }

  /** Waits for the sink to write what is pending. */
  flush(): Promise<void> {
    return this.#sink.flush();
  }
}
