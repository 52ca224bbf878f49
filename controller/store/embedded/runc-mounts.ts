/**
 * The few host mount operations the runc runtime needs: making a plugin's propagated-mount directory
 * an rshared mount point (moby's mount.MakeRShared) and detaching whatever is mounted below a
 * directory before it is removed. They shell out to util-linux's mount/umount, which every host
 * that has runc has.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { PlugctlError } from '../../errors.ts';

const run = promisify(execFile);

/** One line of /proc/self/mountinfo, the parts used here. */
export interface MountInfo {
  mountPoint: string;
  /** e.g. ['shared:12'] or [] for a private mount */
  optionalFields: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses /proc/self/mountinfo text (pure, for tests). */
export function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    const mountPoint = fields[4];
    if (dash < 6 || mountPoint === undefined) continue;
    mounts.push({ mountPoint: unescapeMountPath(mountPoint), optionalFields: fields.slice(6, dash) });
  }
  return mounts;
}

async function mountTable(): Promise<MountInfo[]> {
  return parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/** Mount points at or below `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const root = resolve(dir);
  const points = (await mountTable()).map((m) => m.mountPoint).filter((p) => isUnder(p, root));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

async function tool(args: [string, ...string[]], what: string): Promise<void> {
  try {
    await run(args[0], args.slice(1), { timeout: 30_000 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new PlugctlError(
      'PLUGIN_MOUNT_FAILED',
      `${what} failed: ${stderr || (error as Error).message}; check that util-linux's ${args[0]} is installed and plugctl runs as root`,
      { cause: error },
    );
  }
}

/**
 * Makes `dir` a mount point with rshared propagation (bind-mounting it on itself first when it is
 * not one), so mounts a plugin makes below its PropagatedMount appear on the host, as moby does
 * before it starts a plugin with a PropagatedMount. Idempotent.
 */
export async function makeRshared(dir: string): Promise<void> {
  const path = resolve(dir);
  const mine = (await mountTable()).filter((m) => m.mountPoint === path);
  if (mine.length === 0) await tool(['mount', '--bind', path, path], `bind-mounting ${path} on itself`);
  if (!mine.some((m) => m.optionalFields.some((f) => f.startsWith('shared:')))) {
    await tool(['mount', '--make-rshared', path], `making ${path} rshared`);
  }
}

/**
 * Detaches (MNT_DETACH, as moby's mount.Unmount) every mount at or below `dir`, deepest first.
 * Returns the mount points that are still there afterwards (normally none).
 */
export async function unmountUnder(dir: string): Promise<string[]> {
  for (const point of await mountsUnder(dir)) {
    try {
      await run('umount', ['-l', point], { timeout: 30_000 });
    } catch {
      // reported through the re-check below: the caller decides what a leftover mount means
    }
  }
  return mountsUnder(dir);
}
