/**
 * Fixture plugins of the crash-safety test, built with the embedded store's createPlugin from a
 * directory and pushed with pushPlugin into the test's registry: `crash/vol:1.0` and `:2.0` (a few
 * MB of pseudo-random files in nested directories, so that a kill lands mid-extraction; the two
 * versions have different files), and a small `crash/bystander:1.0`. With a static plugind the
 * rootfs can run under runc (plugind as the entrypoint, the directories runc's spec mounts over).
 *
 * The fingerprint of a rootfs (every entry's type, mode, size and SHA-256) is what "complete" means
 * in the test: an installed plugin's rootfs must equal the fingerprint of the version its
 * config.json names.
 */
import { createHash } from 'node:crypto';
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { RegistryClient } from '../../controller/registry/client.ts';
import { parseReference } from '../../controller/api/reference.ts';
import { openEmbeddedStore } from '../../controller/store/embedded/store.ts';
import { FIXTURE_ARGS_DEFAULT, FIXTURE_ENV_DEFAULTS, idleRuntime } from './crash-common.ts';
import type { Prng } from './crash-common.ts';

/** One pushed version of a fixture plugin: what the registry serves and what its rootfs is. */
export interface FixtureVersion {
  label: string;
  /** normalised remote, e.g. `127.0.0.1:5400/crash/vol:1.0` */
  remote: string;
  configDigest: string;
  manifestDigest: string;
  layerDigests: string[];
  /** fingerprint() of the rootfs */
  fingerprint: string[];
  /** bytes of the rootfs files */
  bytes: number;
  files: number;
}

export interface Fixtures {
  v1: FixtureVersion;
  v2: FixtureVersion;
  bystander: FixtureVersion;
}

/**
 * moby's init layer (runc-rootfs.ts), which the runtime (re)creates in a rootfs at every enable:
 * not part of the content a fingerprint compares.
 */
const INIT_LAYER = new Set([
  '.dockerenv',
  'dev/console',
  'dev/pts',
  'dev/shm',
  'etc/hostname',
  'etc/hosts',
  'etc/mtab',
  'etc/resolv.conf',
]);

/**
 * The tree under `dir` as sorted lines: `d path mode`, `f path mode size sha256`, `l path -> target`,
 * `? path` (anything else); the init layer excluded.
 */
export async function fingerprint(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (INIT_LAYER.has(childRel)) continue;
      const abs = join(dir, childRel);
      const stats = await lstat(abs);
      const mode = (stats.mode & 0o7777).toString(8);
      if (stats.isDirectory()) {
        out.push(`d ${childRel} ${mode}`);
        await walk(childRel);
      } else if (stats.isSymbolicLink()) {
        out.push(`l ${childRel} -> ${await readlink(abs)}`);
      } else if (stats.isFile()) {
        const hash = createHash('sha256')
          .update(await readFile(abs))
          .digest('hex');
        out.push(`f ${childRel} ${mode} ${stats.size} ${hash}`);
      } else {
        out.push(`? ${childRel}`);
      }
    }
  };
  await walk('');
  return out;
}

function pluginConfig(label: string): Record<string, unknown> {
  return {
    Description: `plugctl crash-safety fixture ${label}`,
    Documentation: 'https://example.invalid/plugctl/crash',
    Entrypoint: ['/bin/plugind', '/run/docker/plugins/plugind.sock'],
    WorkDir: '/',
    Interface: { Types: ['docker.volumedriver/1.0'], Socket: 'plugind.sock' },
    Network: { Type: 'host' },
    Env: Object.entries(FIXTURE_ENV_DEFAULTS).map(([Name, Value]) => ({
      Name,
      Description: `${Name} setting`,
      Settable: ['value'],
      Value,
    })),
    Args: {
      Name: 'args',
      Description: 'extra arguments',
      Settable: ['value'],
      Value: [...FIXTURE_ARGS_DEFAULT],
    },
    Linux: { Capabilities: [] },
  };
}

/**
 * Writes a create context (config.json + rootfs/) under `dir`: the runc skeleton, optional
 * binaries, /VERSION, and `files` pseudo-random files totalling about `bytes` in nested
 * directories named after `label` (so that versions differ in their file sets too).
 */
async function makeContext(
  dir: string,
  prng: Prng,
  label: string,
  options: { files: number; bytes: number; plugind?: string },
): Promise<void> {
  const rootfs = join(dir, 'rootfs');
  for (const sub of ['bin', 'run/docker/plugins', 'tmp', 'proc', 'dev', 'sys', 'etc', 'var/lib/plugind']) {
    await mkdir(join(rootfs, sub), { recursive: true, mode: 0o755 });
  }
  if (options.plugind !== undefined) {
    await copyFile(options.plugind, join(rootfs, 'bin/plugind'));
    await chmod(join(rootfs, 'bin/plugind'), 0o755);
  }
  await writeFile(join(rootfs, 'etc/hosts'), '');
  await writeFile(join(rootfs, 'etc/resolv.conf'), '');
  await writeFile(join(rootfs, 'VERSION'), label);
  const safe = label.replace(/[^a-z0-9]/gi, '_');
  // sizes: a geometric-ish spread, scaled to the budget
  const weights = Array.from({ length: options.files }, () => 0.2 + prng.next() ** 3 * 5);
  const total = weights.reduce((a, b) => a + b, 0);
  for (const [i, weight] of weights.entries()) {
    const sub = join('data', `${safe}-${i % 7}`, `d${i % 3}`);
    await mkdir(join(rootfs, sub), { recursive: true, mode: 0o755 });
    const size = Math.max(1, Math.round((weight / total) * options.bytes));
    const path = join(rootfs, sub, `f${i}.bin`);
    await writeFile(path, prng.bytes(size));
    await chmod(path, i % 5 === 0 ? 0o755 : 0o644);
  }
  await symlink(`${safe}-0`, join(rootfs, 'data', `link-${safe}`));
  await writeFile(join(dir, 'config.json'), JSON.stringify(pluginConfig(label)));
}

/**
 * Builds the fixtures in `work` and pushes them to `registryHost`. `plugind` (a static binary)
 * makes them runnable; without it they can be pulled, set, upgraded and removed but not enabled.
 */
export async function buildFixtures(options: {
  work: string;
  registryHost: string;
  prng: Prng;
  plugind?: string;
  /** bytes of random files per crash/vol version; default 3 MiB */
  bytes?: number;
  /** files per crash/vol version; default 120 */
  files?: number;
}): Promise<Fixtures> {
  const logger = pino({ level: 'silent' });
  const client = new RegistryClient({ credentials: async () => undefined });
  const builder = await openEmbeddedStore({
    root: join(options.work, 'builder'),
    runtime: idleRuntime,
    registry: client,
    logger,
    runDir: join(options.work, 'builder-run'),
  });
  try {
    const make = async (
      repo: string,
      label: string,
      files: number,
      bytes: number,
    ): Promise<FixtureVersion> => {
      const remote = `${options.registryHost}/${repo}:${label}`;
      const ctx = join(options.work, `ctx-${repo.replace(/\//g, '-')}-${label}`);
      await makeContext(ctx, options.prng, `${repo}:${label}`, {
        files,
        bytes,
        ...(options.plugind !== undefined ? { plugind: options.plugind } : {}),
      });
      await builder.createPlugin(remote, ctx);
      const pushed = await builder.pushPlugin(remote);
      const resolved = await client.resolve(parseReference(remote));
      if (resolved.digest !== pushed.digest)
        throw new Error(`${remote}: pushed ${pushed.digest}, resolved ${resolved.digest}`);
      const print = await fingerprint(join(ctx, 'rootfs'));
      let size = 0;
      let count = 0;
      for (const line of print) {
        if (!line.startsWith('f ')) continue;
        size += Number(line.split(' ')[3]);
        count++;
      }
      return {
        label,
        remote,
        configDigest: resolved.config.digest,
        manifestDigest: resolved.digest,
        layerDigests: resolved.manifest.layers.map((layer) => layer.digest),
        fingerprint: print,
        bytes: size,
        files: count,
      };
    };
    const bytes = options.bytes ?? 3 * 1024 * 1024;
    const files = options.files ?? 120;
    return {
      v1: await make('crash/vol', '1.0', files, bytes),
      v2: await make('crash/vol', '2.0', files, bytes),
      bystander: await make('crash/bystander', '1.0', 8, 64 * 1024),
    };
  } finally {
    await builder.close();
    await client.close();
  }
}
