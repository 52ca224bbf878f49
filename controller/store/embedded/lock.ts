/**
 * One store process per root: `<root>/plugctl.lock` names the process that holds the root. It is
 * created with link(2) from a complete temp file, so it appears atomically with its content. A
 * lock whose holder is gone (no such PID, a zombie, or a PID reused by a process that started
 * later than the holder did) is stale and taken over. Node has no flock(2); the takeover removes
 * the stale file only while it still holds the content that was judged stale, which leaves a
 * window of microseconds for two processes taking over the same stale lock at the same instant.
 * The temp files of processes killed while taking the lock are deleted by the next holder.
 */
import { link, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { EmbeddedStoreError } from './errors.ts';
import { isNotFound, randomHex } from './fsutil.ts';

/** Who holds a lock, as written in the lock file. */
export interface LockHolder {
  pid: number;
  /** the holder's start time in clock ticks since boot (/proc/PID/stat field 22), when known */
  start?: string;
  token: string;
}

/** A held lock; release it with release(). */
export interface StoreLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Deletes the lock file if this process still holds it. Never throws. */
  release(): Promise<void>;
}

/** The start time of a process (field 22 of /proc/PID/stat) and whether it is a zombie. */
async function processStat(pid: number): Promise<{ start: string; zombie: boolean } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may contain spaces and ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); field 22 is fields[19]
    return { start: fields[19] ?? '', zombie: fields[0] === 'Z' };
  } catch {
    return undefined;
  }
}

/** Whether the holder of a lock file is still running. */
export async function holderAlive(holder: LockHolder): Promise<boolean> {
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = await processStat(holder.pid);
  if (stat === undefined) return process.platform !== 'linux';
  if (stat.zombie) return false;
  return holder.start === undefined || holder.start === stat.start;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const json = JSON.parse(text) as Partial<LockHolder>;
    if (typeof json.pid !== 'number' || typeof json.token !== 'string') return undefined;
    return {
      pid: json.pid,
      token: json.token,
      ...(typeof json.start === 'string' ? { start: json.start } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * Deletes the temp files (`<lock>.<32 hex>`) that processes killed while taking the lock left
 * beside it: those of a dead holder, and empty or unreadable ones (a process killed between
 * creating and writing it). A live process's temp file is left to it. Runs with the lock held, so
 * a process in the middle of taking it would fail anyway; at worst it fails with ENOENT instead
 * of STORE_LOCKED.
 */
async function removeStaleTemps(path: string, ownToken: string): Promise<void> {
  const prefix = `${basename(path)}.`;
  const dir = dirname(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !/^[0-9a-f]{32}$/.test(name.slice(prefix.length))) continue;
    if (name.slice(prefix.length) === ownToken) continue;
    const temp = join(dir, name);
    try {
      const holder = parseHolder(await readFile(temp, 'utf8'));
      if (holder !== undefined && (await holderAlive(holder))) continue;
      await rm(temp, { force: true });
    } catch {
      // gone meanwhile, or not ours to judge: the next start tries again
    }
  }
}

/**
 * Takes the lock at `path` for this process. Throws STORE_LOCKED naming the holder's PID when a
 * live process holds it; takes over a stale one.
 */
export async function acquireStoreLock(path: string): Promise<StoreLock> {
  const token = randomHex(16);
  const start = (await processStat(process.pid))?.start;
  const holder: LockHolder = { pid: process.pid, ...(start !== undefined ? { start } : {}), token };
  const content = `${JSON.stringify(holder)}\n`;
  const temp = `${path}.${token}`;
  await writeFile(temp, content, { mode: 0o644, flag: 'wx' });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(temp, path);
        await removeStaleTemps(path, token);
        return {
          path,
          holder,
          async release() {
            try {
              const current = parseHolder(await readFile(path, 'utf8'));
              if (current?.token === token) await unlink(path);
            } catch {
              // already gone
            }
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if (isNotFound(error)) continue;
        throw error;
      }
      const existing = parseHolder(text);
      if (existing !== undefined && (await holderAlive(existing))) {
        throw new EmbeddedStoreError(
          'STORE_LOCKED',
          `the plugin store at ${path.replace(/\/plugctl\.lock$/, '')} is in use by process ${existing.pid}` +
            `${existing.pid === process.pid ? ' (this process)' : ''}; only one plugctl may manage a store root. ` +
            `When it is plugctl run, ask it to converge now with \`plugctl reconcile\` (and watch with plugctl get -w); ` +
            `otherwise stop the other process, or use another --root`,
        );
      }
      // stale: remove it only if it still is the file judged stale
      try {
        if ((await readFile(path, 'utf8')) === text) await unlink(path);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    throw new EmbeddedStoreError(
      'STORE_LOCKED',
      `could not take the lock ${path}: other processes keep taking it; retry`,
    );
  } finally {
    await rm(temp, { force: true });
  }
}
