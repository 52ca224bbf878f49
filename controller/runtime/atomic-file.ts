/**
 * The one way plugctl writes a file it owns: nothing is ever written in place. A file appears under
 * its final name only complete, with its final mode and fsynced, and the rename that publishes it is
 * made durable by an fsync of its directory. A crash leaves the old content or the new, never a mix.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** How a file is written. */
export interface AtomicWriteOptions {
  /** the file's exact mode (not filtered by the umask); default 0o600 */
  mode?: number;
  /**
   * create the directory (and its parents) when missing; off by default, so a write into a
   * directory someone just removed fails instead of bringing it back
   */
  createDir?: boolean;
}

/** Prefix and infix of temp files, so recovery code can recognise a write a crash interrupted. */
export const TEMP_INFIX = '.tmp-';

/** The temp-file name for `path`: `.<name>.tmp-<hex>` in the same directory (never across file systems). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_INFIX}${randomBytes(6).toString('hex')}`);
}

/** Fsyncs a directory, making the renames and unlinks inside it durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `data` to `path` atomically: a temp file beside it written, chmod-ed to the exact mode,
 * fsynced and renamed over `path`, then the directory fsynced. The temp file is removed when any
 * step fails. Concurrent writers of one path never share a temp file; the last rename wins.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const mode = options.mode ?? 0o600;
  const dir = dirname(path);
  if (options.createDir === true) await mkdir(dir, { recursive: true });
  const temp = tempPathFor(path);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(data);
      // the mode given to open is filtered by the umask; plugctl's files have exact modes
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDir(dir);
}
