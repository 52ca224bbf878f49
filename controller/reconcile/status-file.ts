/**
 * File mode's status sink: `<state-dir>/status.json`, so that `plugctl get` in another process shows
 * what a running controller observed. Writes are coalesced (a burst of changes costs one write) and
 * atomic; a missing or unreadable file reads as no statuses, because status is derived, never vital.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PluginStatus, StatusSink } from '../api/status.ts';
import { writeFileAtomic } from '../runtime/atomic-file.ts';

/** Path of the status file inside a state directory. */
export function statusPath(stateDir: string): string {
  return join(stateDir, 'status.json');
}

/** Reads persisted statuses by key; a missing or unreadable file reads as none. */
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

/** Publishes statuses to the status file, at most one write per `flushDelayMs`. */
export class FileStatusSink implements StatusSink {
  readonly #stateDir: string;
  readonly #delayMs: number;
  #pending: ReadonlyMap<string, PluginStatus> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  /** `flushDelayMs` bounds how stale the file may be; bursts of updates cost one write. */
  constructor(stateDir: string, flushDelayMs = 200) {
    this.#stateDir = stateDir;
    this.#delayMs = flushDelayMs;
  }

  async load(): Promise<PluginStatus[]> {
    return Object.values(await readStatuses(this.#stateDir));
  }

  publish(statuses: ReadonlyMap<string, PluginStatus>): void {
    this.#pending = statuses;
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#write();
    }, this.#delayMs);
    this.#timer.unref();
  }

  async flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#write();
    }
    await this.#writing;
  }

  #write(): void {
    const statuses = this.#pending;
    if (statuses === undefined) return;
    this.#pending = undefined;
    // Code-unit order: stable across hosts, and unlike localeCompare it does not load ICU's collation
    // data, which stays resident (~3 MB) in the long-running controller.
    const plugins = Object.fromEntries(
      [...statuses.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    const text = `${JSON.stringify({ version: 1, plugins }, null, 2)}\n`;
    this.#writing = this.#writing
      .catch(() => undefined)
      .then(() => writeFileAtomic(statusPath(this.#stateDir), text, { mode: 0o644, createDir: true }));
  }
}
