// Shared helpers for FileSource tests: real temp directories, DockerPlugin texts, and waits that poll
// the source's snapshot until a state holds (test/wait.ts) instead of sleeping a fixed time.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { FileSource } from '../../../controller/sources/files.ts';
import type { FileSourceOptions, FileSourceSnapshot } from '../../../controller/sources/files.ts';
import { waitFor } from '../../wait.ts';

/** A logger that drops everything. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** A DockerPlugin document named `name`; `version` goes into an env setting so content can change. */
export function pluginYaml(name: string, version = '1', remote = `example/${name}:1.0`): string {
  return [
    'apiVersion: plugctl.dev/v1alpha1',
    'kind: DockerPlugin',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    `  remote: ${remote}`,
    '  settings:',
    `    env: { VERSION: "${version}" }`,
    '',
  ].join('\n');
}

/** The env VERSION of a document in the snapshot, or undefined when the key is absent. */
export function versionOf(snapshot: FileSourceSnapshot, key: string): string | undefined {
  const value = snapshot.documents.get(key)?.doc.spec.settings?.env?.VERSION;
  return typeof value === 'string' ? value : undefined;
}

/** A fresh temp directory and its removal. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'plugctl-files-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Resolves after `ms`; only for quiet periods where the absence of an event is the point. */
export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** Waits until `check` returns true; rejects naming `what` after the deadline (test/wait.ts). */
export async function until(check: () => boolean, what: string, timeoutMs?: number): Promise<void> {
  await waitFor(check, { what, maxIntervalMs: 5, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
}

/** One change notification and what the snapshot held when it arrived. */
export interface Notification {
  keys: string[];
  present: Set<string>;
  generation: number;
}

/** A started FileSource that records every notification. */
export interface Watched {
  source: FileSource;
  notifications: Notification[];
  /** resolves once `check(snapshot)` holds */
  waitFor(check: (s: FileSourceSnapshot) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** every key ever reported missing by a notification (a prune trigger) */
  disappeared(): Set<string>;
}

/** Builds, subscribes and starts a FileSource over `paths`; close it with `source.close()`. */
export async function startSource(
  paths: string[],
  options: Partial<FileSourceOptions> = {},
): Promise<Watched> {
  const source = new FileSource({ paths, logger: silentLogger, ...options });
  const notifications: Notification[] = [];
  source.onChange((keys) => {
    const snapshot = source.snapshot();
    notifications.push({
      keys: [...keys].sort(),
      present: new Set(snapshot.documents.keys()),
      generation: snapshot.generation,
    });
  });
  await source.start();
  return {
    source,
    notifications,
    waitFor: (check, what, timeoutMs) => until(() => check(source.snapshot()), what, timeoutMs),
    disappeared: () => {
      const gone = new Set<string>();
      for (const n of notifications) for (const k of n.keys) if (!n.present.has(k)) gone.add(k);
      return gone;
    },
  };
}
