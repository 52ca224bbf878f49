/**
 * Per-plugin status with kstatus semantics: Ready is True only when the host matches the document;
 * Reconciling is True while plugctl is still working on it (including waits and retries); Stalled is
 * True when a human must act. Persisted to `<state>/status.json` so `plugctl get` in another process
 * shows it; writes are coalesced and atomic.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FailureKind } from '../errors.ts';
import { writeFileAtomic } from '../runtime/atomic-file.ts';

/** One kstatus condition. */
export interface Condition {
  type: 'Ready' | 'Reconciling' | 'Stalled';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/** The observed state of one declared (or pruned) plugin. */
export interface PluginStatus {
  key: string;
  /** local plugin name */
  plugin: string;
  pluginID?: string;
  reference?: string;
  enabled?: boolean;
  /** hash of the document's spec this status was computed from */
  observedHash?: string;
  /** the actions of the last reconcile that changed something, e.g. `pull, set, enable` */
  lastAction?: string;
  lastError?: { code: string; kind: FailureKind; message: string };
  lastReconcileTime: string;
  conditions: Condition[];
}

/** The summary phase a status is in, used by metrics and `get`. */
export type Phase = 'ready' | 'reconciling' | 'stalled' | 'suspended';

/** Inputs to the conditions of one reconcile. */
export type Observation =
  | { phase: 'ready'; reason: string; message: string }
  | { phase: 'reconciling'; reason: string; message: string }
  | { phase: 'stalled'; reason: string; message: string }
  | { phase: 'suspended'; reason: string; message: string };

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
  return 'suspended';
}

/** True when two statuses differ at most in lastReconcileTime. */
export function sameExceptTime(a: PluginStatus, b: PluginStatus): boolean {
  return (
    a.plugin === b.plugin &&
    a.pluginID === b.pluginID &&
    a.reference === b.reference &&
    a.enabled === b.enabled &&
    a.observedHash === b.observedHash &&
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

/** Path of the status file inside a state directory. */
export function statusPath(stateDir: string): string {
  return join(stateDir, 'status.json');
}

/** Reads persisted statuses; a missing or unreadable file reads as none (status is derived, never vital). */
export async function readStatuses(stateDir: string): Promise<Record<string, PluginStatus>> {
  try {
    const parsed = JSON.parse(await readFile(statusPath(stateDir), 'utf8')) as {
      plugins?: Record<string, PluginStatus>;
    };
    return parsed.plugins ?? {};
  } catch {
    return {};
  }
}

/** In-memory statuses with coalesced, atomic persistence. */
export class StatusStore {
  readonly #stateDir: string;
  readonly #delayMs: number;
  readonly #statuses = new Map<string, PluginStatus>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  /** `flushDelayMs` bounds how stale the file may be; bursts of updates cost one write. */
  constructor(stateDir: string, flushDelayMs = 200) {
    this.#stateDir = stateDir;
    this.#delayMs = flushDelayMs;
  }

  /** Loads what an earlier process persisted (so transition times survive restarts). */
  async load(): Promise<void> {
    for (const [key, status] of Object.entries(await readStatuses(this.#stateDir)))
      this.#statuses.set(key, status);
  }

  /** The current status of `key`. */
  get(key: string): PluginStatus | undefined {
    return this.#statuses.get(key);
  }

  /** Every status. */
  all(): PluginStatus[] {
    return [...this.#statuses.values()];
  }

  /**
   * Replaces the status of `key` and schedules a write, unless only the reconcile time changed:
   * a no-op resync of many plugins then writes nothing (the time is kept in memory).
   */
  set(status: PluginStatus): void {
    const previous = this.#statuses.get(status.key);
    this.#statuses.set(status.key, status);
    if (previous === undefined || !sameExceptTime(previous, status)) this.#schedule();
  }

  /** Forgets `key` (its plugin was pruned and it is no longer declared). */
  delete(key: string): void {
    if (this.#statuses.delete(key)) this.#schedule();
  }

  /** Writes now and waits for it; called at shutdown. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#write();
    }
    await this.#writing;
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#write();
    }, this.#delayMs);
    this.#timer.unref();
  }

  #write(): void {
    // Code-unit order: stable across hosts, and unlike localeCompare it does not load ICU's collation
    // data, which stays resident (~3 MB) in the long-running controller.
    const plugins = Object.fromEntries(
      [...this.#statuses.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    const text = `${JSON.stringify({ version: 1, plugins }, null, 2)}\n`;
    this.#writing = this.#writing
      .catch(() => undefined)
      .then(() => writeFileAtomic(statusPath(this.#stateDir), text, { mode: 0o644, createDir: true }));
  }
}
