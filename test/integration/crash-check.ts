/**
 * The invariants the crash-safety test holds the embedded store to after every restart, read from
 * the disk and from the reopened store (the state of the world, not the calls made):
 *
 * - reload skipped nothing (no plugin directory it could not read);
 * - the root holds only `tmp/`, `storage/`, the lock file and `<64-hex>` plugin directories: no
 *   `-removing` leftover, no stray file; `tmp/` is empty;
 * - every plugin directory holds exactly `config.json` (0600, parseable, naming its own ID) and
 *   `rootfs/`; the store lists exactly those plugins;
 * - every plugin's config.json names one of the fixture versions (config, layers, manifest and
 *   reference all of the same version) and its rootfs is that version, file for file;
 * - every blob a plugin references is in the content store, and every blob in the store hashes to
 *   its name (nothing half-written is visible).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PLUGIN_ID_RE } from '../../controller/store/embedded/layout.ts';
import type { EmbeddedStore } from '../../controller/store/embedded/store.ts';
import { fingerprint } from './crash-fixture.ts';
import type { FixtureVersion } from './crash-fixture.ts';

/** What a consistent store holds for one plugin. */
export interface ObservedPlugin {
  id: string;
  name: string;
  version: FixtureVersion;
  enabled: boolean;
  env: Record<string, string>;
  args: string[];
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * Blobs already verified, by digest, inode, size and change time: a committed blob is read-only
 * and never rewritten, so one whose inode and ctime are unchanged (a rename changes the ctime)
 * need not be hashed again.
 */
export type VerifiedBlobs = Set<string>;

/**
 * Checks every invariant of the module comment (assertion errors name what is wrong) and returns
 * the plugins by name. `versions` are the fixture versions a plugin may be at.
 */
export async function checkConsistent(
  store: EmbeddedStore,
  versions: readonly FixtureVersion[],
  verified: VerifiedBlobs = new Set(),
): Promise<Map<string, ObservedPlugin>> {
  const { layout } = store;
  const report = store.reloadReport;
  assert.ok(report !== undefined, 'the store has a reload report');
  assert.deepEqual(report.skipped, [], 'reload skipped no plugin directory');

  const entries = (await readdir(layout.root)).sort();
  const stray = entries.filter(
    (entry) => !['tmp', 'storage', 'plugctl.lock'].includes(entry) && !PLUGIN_ID_RE.test(entry),
  );
  assert.deepEqual(
    stray,
    [],
    `nothing but tmp/, storage/, the lock and plugin directories in ${layout.root}`,
  );
  assert.deepEqual(await readdir(layout.tmp), [], 'tmp/ is empty after reload');

  const listed = await store.list();
  const ids = entries.filter((entry) => PLUGIN_ID_RE.test(entry));
  assert.deepEqual(
    listed.map((plugin) => plugin.id).sort(),
    ids,
    'the store lists exactly the plugin directories on disk',
  );

  const referenced = new Set<string>();
  const out = new Map<string, ObservedPlugin>();
  for (const plugin of listed) {
    const dir = layout.pluginDir(plugin.id);
    assert.deepEqual((await readdir(dir)).sort(), ['config.json', 'rootfs'], `contents of ${dir}`);
    const file = layout.configFile(plugin.id);
    assert.equal((await stat(file)).mode & 0o777, 0o600, `${file} is 0600`);
    const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const object = json['plugin'] as Record<string, unknown>;
    assert.equal(object['Id'], plugin.id, `${file} names its own ID`);
    const version = versions.find((candidate) => candidate.configDigest === json['Config']);
    assert.ok(
      version !== undefined,
      `${file}: Config ${String(json['Config'])} is a fixture version's config`,
    );
    assert.equal(json['Manifest'], version.manifestDigest, `${file}: Manifest of ${version.remote}`);
    assert.deepEqual(json['Blobsums'], version.layerDigests, `${file}: Blobsums of ${version.remote}`);
    assert.equal(object['PluginReference'], version.remote, `${file}: PluginReference`);
    const rootfs = layout.rootfs(plugin.id);
    const print = await fingerprint(rootfs);
    if (JSON.stringify(print) !== JSON.stringify(version.fingerprint)) {
      const missing = version.fingerprint.filter((line) => !print.includes(line));
      const extra = print.filter((line) => !version.fingerprint.includes(line));
      assert.fail(
        `${rootfs} is not ${version.remote}: ${missing.length} entries missing or different ` +
          `(${missing.slice(0, 3).join('; ')}), ${extra.length} unexpected (${extra.slice(0, 3).join('; ')})`,
      );
    }
    for (const digest of [version.configDigest, version.manifestDigest, ...version.layerDigests])
      referenced.add(digest);
    out.set(plugin.name, {
      id: plugin.id,
      name: plugin.name,
      version,
      enabled: plugin.enabled,
      env: plugin.settings.env,
      args: plugin.settings.args,
    });
  }

  const blobs = new Set(await store.content.digests());
  const algorithms = await readdir(layout.blobs).catch(() => []);
  for (const algorithm of algorithms) {
    for (const name of await readdir(join(layout.blobs, algorithm))) {
      const digest = `${algorithm}:${name}`;
      assert.ok(blobs.has(digest), `${join(layout.blobs, algorithm, name)} is named like a digest`);
    }
  }
  for (const digest of referenced)
    assert.ok(blobs.has(digest), `referenced blob ${digest} is in the content store`);
  for (const digest of blobs) {
    const path = store.content.path(digest);
    const stats = await stat(path, { bigint: true });
    const key = `${digest} ${stats.ino} ${stats.size} ${stats.ctimeNs}`;
    if (verified.has(key)) continue;
    assert.equal(await sha256File(path), digest, `blob ${digest} holds its own content`);
    verified.add(key);
  }
  return out;
}

/**
 * Whether a restart of the store at `root` has something to recover: staging or ingests in `tmp/`,
 * a `-removing` leftover, or anything in a plugin directory beside config.json and rootfs/ (an
 * interrupted upgrade or config.json write), or a stray file in the root.
 */
export async function recoveryPending(root: string): Promise<boolean> {
  if ((await readdir(join(root, 'tmp')).catch(() => [])).length > 0) return true;
  for (const entry of await readdir(root)) {
    if (['tmp', 'storage', 'plugctl.lock'].includes(entry)) continue;
    if (!PLUGIN_ID_RE.test(entry)) return true;
    const inside = await readdir(join(root, entry)).catch(() => []);
    if (inside.some((name) => name !== 'config.json' && name !== 'rootfs')) return true;
  }
  return false;
}
