/**
 * Legacy plugin discovery links: `<discoveryDir>/<name>.sock` -> a running plugin's real socket, so
 * that dockerd (or anything else that speaks Docker's plugin protocol) on the host can use a plugin
 * plugctl runs, the way it uses a "v1" plugin that is not managed by it.
 *
 * How dockerd finds such a plugin (moby pkg/plugins/discovery.go): for a driver name N that is not
 * one of its own managed plugins, LocalRegistry.Plugin(N) stats `/run/docker/plugins/N.sock`, then
 * `/run/docker/plugins/N/N.sock` (stat follows symlinks, so a link to a socket counts); and
 * LocalRegistry.Scan, which `docker volume ls` and `GetAllByCap` use to enumerate drivers, only
 * looks at the top level of that directory. A name with `/` in it would be found by Plugin() as a
 * nested path but never enumerated, so links are kept flat.
 *
 * Naming rule (discoveryName): the plugin's local name without a `:latest` tag (users address
 * `vol:latest` as `vol`, as with dockerd's managed plugins), other tags kept, every `/` replaced by
 * `-`. Examples: `vol:latest` -> `vol.sock` (driver `vol`), `vol:1.0` -> `vol:1.0.sock` (driver
 * `vol:1.0`), `vieux/sshfs:latest` -> `vieux-sshfs.sock` (driver `vieux-sshfs`),
 * `127.0.0.1:5000/test/vol:1.0` -> `127.0.0.1:5000-test-vol:1.0.sock`. Give a plugin a short alias to
 * get a short driver name. A consumer calls the driver by the file name without `.sock`.
 */
import { lstat, readdir, readlink, rename, symlink, unlink } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** The driver name under which a plugin called `name` is discoverable (see the module comment). */
export function discoveryName(name: string): string {
  const lastSlash = name.lastIndexOf('/');
  const tagAt = name.indexOf(':', lastSlash + 1);
  const untagged = tagAt >= 0 && name.slice(tagAt + 1) === 'latest' ? name.slice(0, tagAt) : name;
  return untagged.replaceAll('/', '-');
}

/** Path of the discovery link of plugin `name` in `discoveryDir`. */
export function discoveryLinkPath(discoveryDir: string, name: string): string {
  return join(discoveryDir, `${discoveryName(name)}.sock`);
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** What linkDiscovery did. */
export type LinkOutcome = { linked: true; path: string } | { linked: false; path: string; reason: string };

/**
 * Points `<discoveryDir>/<discoveryName(name)>.sock` at `socketPath` with a relative symlink (so the
 * link also resolves where the directory is bind-mounted elsewhere, e.g. into a containerised
 * dockerd). Replaces a link of the same plugin or a dangling link (atomically, via rename); leaves
 * alone and reports anything else there (a real socket of a v1 plugin, or a link to another plugin
 * that is alive), because taking a name another driver answers to would break its users.
 */
export async function linkDiscovery(
  discoveryDir: string,
  name: string,
  socketPath: string,
): Promise<LinkOutcome> {
  const path = discoveryLinkPath(discoveryDir, name);
  const target = relative(dirname(path), socketPath);
  try {
    const st = await lstat(path);
    if (!st.isSymbolicLink()) {
      return {
        linked: false,
        path,
        reason: `${path} exists and is not a link (a plugin not run by plugctl?)`,
      };
    }
    const current = await readlink(path);
    if (current === target) return { linked: true, path };
    const alive = await lstat(resolve(dirname(path), current)).then(
      (s) => s.isSocket(),
      () => false,
    );
    if (alive) {
      return {
        linked: false,
        path,
        reason: `${path} already points to another plugin's socket (${current})`,
      };
    }
  } catch (error) {
    if (errno(error) !== 'ENOENT') throw error;
  }
  const temp = `${path}.${process.pid}.tmp`;
  await unlink(temp).catch(() => undefined);
  await symlink(target, temp);
  await rename(temp, path);
  return { linked: true, path };
}

/**
 * Removes every link directly in `discoveryDir` that points into `socketDir` (found by reading the
 * links, so it also works for a plugin started by an earlier controller process). Links to other
 * plugins are never touched. Returns the removed paths.
 */
export async function unlinkDiscovery(discoveryDir: string, socketDir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(discoveryDir);
  } catch (error) {
    if (errno(error) === 'ENOENT') return [];
    throw error;
  }
  const inside = resolve(socketDir) + sep;
  const removed: string[] = [];
  for (const entry of entries) {
    if (!entry.endsWith('.sock')) continue;
    const path = join(discoveryDir, entry);
    let target: string;
    try {
      target = await readlink(path);
    } catch {
      continue; // not a link
    }
    if (!resolve(discoveryDir, target).startsWith(inside)) continue;
    try {
      await unlink(path);
      removed.push(path);
    } catch (error) {
      if (errno(error) !== 'ENOENT') throw error;
    }
  }
  return removed;
}
