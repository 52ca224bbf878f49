/**
 * Size-bounded plugin logs. A plugin writes its stdout and stderr straight into `plugin.log` through
 * a file descriptor it inherited (opened O_APPEND), so the plugin keeps running, and keeps logging,
 * across controller restarts. That descriptor cannot be re-pointed from outside, so a log that grows
 * past its cap is rotated the way logrotate's copytruncate does it: copied to `plugin.log.1` (which
 * replaces the previous one), then truncated in place; O_APPEND makes the plugin's next write land at
 * the new end of the file. Lines written between the copy and the truncation are lost, which a cap
 * on disk use is worth.
 */
import { copyFile, rename, stat, truncate } from 'node:fs/promises';

/** Default cap of one plugin's log, in bytes (the rotated copy may hold as much again). */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;

/**
 * Rotates `path` when it is larger than `maxBytes`; resolves true when it did. A missing log is not
 * an error (the plugin has not written yet, or was removed meanwhile).
 */
export async function rotateLogIfLarge(path: string, maxBytes: number): Promise<boolean> {
  const size = await stat(path).then(
    (s) => s.size,
    () => 0,
  );
  if (size <= maxBytes) return false;
  // Copied under a temp name and renamed, so plugin.log.1 is always a whole copy.
  const temp = `${path}.1.tmp`;
  await copyFile(path, temp);
  await rename(temp, `${path}.1`);
  await truncate(path, 0);
  return true;
}
