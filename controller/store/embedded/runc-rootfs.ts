/**
 * Host-side preparation that moby does before it starts a plugin and that runc does not do itself:
 * the "init layer" of mount points in the rootfs (daemon/initlayer.Setup, called by the plugin
 * manager's enable with uid/gid 0).
 */
import { lstat, mkdir, open, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** moby's init layer: path inside the rootfs -> "dir", "file" or a symlink target. */
const INIT_LAYER: readonly (readonly [string, string])[] = [
  ['/dev/pts', 'dir'],
  ['/dev/shm', 'dir'],
  ['/proc', 'dir'],
  ['/sys', 'dir'],
  ['/.dockerenv', 'file'],
  ['/etc/resolv.conf', 'file'],
  ['/etc/hosts', 'file'],
  ['/etc/hostname', 'file'],
  ['/dev/console', 'file'],
  ['/etc/mtab', '/proc/mounts'],
];

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Creates moby's init layer in `rootfs`: mount points for /dev/pts, /dev/shm, /proc, /sys, empty
 * /etc/hosts, /etc/resolv.conf, /etc/hostname, /dev/console and /.dockerenv, and /etc/mtab ->
 * /proc/mounts. As moby, every component of those paths that is not a directory (a file, or a
 * symlink that could point out of the rootfs) is unlinked first, so nothing below is ever created
 * through a symlink. Runs with the plugin stopped; idempotent.
 */
export async function prepareRootfs(rootfs: string): Promise<void> {
  for (const [path, kind] of INIT_LAYER) {
    const parts = path.split('/').slice(1);
    let prefix = rootfs;
    for (const part of parts) {
      prefix = join(prefix, part);
      try {
        const st = await lstat(prefix);
        if (!st.isDirectory()) await unlink(prefix);
      } catch (error) {
        if (errno(error) !== 'ENOENT') throw error;
      }
    }
    const target = join(rootfs, path);
    await mkdir(join(target, '..'), { recursive: true, mode: 0o755 });
    if (kind === 'dir') {
      await mkdir(target, { recursive: true, mode: 0o755 });
    } else if (kind === 'file') {
      const handle = await open(target, 'a', 0o755);
      await handle.close();
    } else {
      await symlink(kind, target);
    }
  }
}
