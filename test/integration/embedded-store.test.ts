/**
 * The embedded store with real parts: a real docker-registry on 127.0.0.1:5210, plugins built with
 * createPlugin from a directory (busybox-static and the static plugind of test/env/plugind.c, as
 * test/env/plugin-env.sh builds its fixtures) and pushed with pushPlugin, real files in temp roots,
 * and — as root with runc installed — the real RuncRuntime for enable, disable and crash restarts.
 * Assertions read the state of the world: what the store lists, what is on disk, what the registry
 * served, what runs.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createReadStream, watch } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import { RegistryClient } from '../../controller/registry/client.ts';
import { RegistryError } from '../../controller/registry/errors.ts';
import {
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_PLUGIN_CONFIG,
  digestOf,
} from '../../controller/registry/manifest.ts';
import { parseReference } from '../../controller/api/reference.ts';
import type { PluginPrivilege } from '../../controller/api/types.ts';
import type { PluginEvent } from '../../controller/store/store.ts';
import { configBlob } from '../../controller/store/embedded/build.ts';
import { parsePluginConfig } from '../../controller/plugin/config.ts';
import type { PluginRuntime } from '../../controller/store/embedded/runtime.ts';
import { openEmbeddedStore } from '../../controller/store/embedded/store.ts';
import { readRemote } from '../../controller/store/embedded/pull.ts';
import type { EmbeddedStore, EmbeddedStoreOptions } from '../../controller/store/embedded/store.ts';
import { startLoopbackRegistry } from '../unit/store/embedded/loopback-registry.ts';
import type { LoopbackRegistry } from '../unit/store/embedded/loopback-registry.ts';
import { tarOf, tree } from '../unit/store/embedded/helpers.ts';
import { rejectsWith } from '../errors.ts';
import { idleRuntime } from '../idle-runtime.ts';
import { makeContext } from '../conformance/fixtures.ts';
import { REGISTRY, RUNC, describeWith } from '../prerequisites.ts';
import type { Prerequisite } from '../prerequisites.ts';
import { waitFor } from '../wait.ts';

const PORT = 5210;
const NETWORK_HOST: PluginPrivilege[] = [{ name: 'network', value: ['host'] }];
const PRIV_GRANTS: PluginPrivilege[] = [
  { name: 'network', value: ['host'] },
  { name: 'mount', value: ['/tmp'] },
  { name: 'device', value: ['/dev/null'] },
  { name: 'capabilities', value: ['CAP_SYS_ADMIN'] },
];
const PLUGIND_SOURCE = new URL('../env/plugind.c', import.meta.url).pathname;

function exec(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      resolve({
        code: error === null ? 0 : typeof error.code === 'number' ? error.code : 127,
        stdout,
        stderr,
      });
    });
  });
}

/** The suite: a real docker-registry, plugind built with gcc, busybox-static in the fixtures. */
const withRegistry = { needs: [...REGISTRY, 'gcc', 'busybox'] as Prerequisite[], concurrency: false };

/** The fixture config (test/env/plugin-env.sh's vol and priv kinds). */
function fixtureConfig(kind: 'vol' | 'priv', label: string): Record<string, unknown> {
  const common = {
    Description: `plugctl embedded-store fixture ${kind} ${label}`,
    Documentation: 'https://example.invalid/plugctl/test',
    Entrypoint: ['/bin/plugind', '/run/docker/plugins/plugind.sock'],
    WorkDir: '/',
    Interface: { Types: ['docker.volumedriver/1.0'], Socket: 'plugind.sock' },
    Network: { Type: 'host' },
  };
  if (kind === 'vol') {
    return {
      ...common,
      Env: [
        { Name: 'GREETING', Description: 'greeting', Settable: ['value'], Value: 'hello' },
        { Name: 'DEBUG', Description: 'debug level', Settable: ['value'], Value: '0' },
        { Name: 'FAIL_AT_START', Description: '1 exits at start', Settable: ['value'], Value: '0' },
      ],
      Args: {
        Name: 'args',
        Description: 'extra arguments',
        Settable: ['value'],
        Value: [`--label=${label}`],
      },
      Linux: { Capabilities: [] },
    };
  }
  return {
    ...common,
    Env: [{ Name: 'DEBUG', Settable: ['value'], Value: '0' }],
    Mounts: [
      {
        Name: 'state',
        Source: '/tmp',
        Destination: '/state',
        Type: 'bind',
        Options: ['rbind', 'rw'],
        Settable: ['source'],
      },
    ],
    Linux: {
      Capabilities: ['CAP_SYS_ADMIN'],
      Devices: [{ Name: 'null', Path: '/dev/null', Settable: ['path'] }],
    },
  };
}

/** A create context of the `vol` or `priv` fixture (see makeContext). */
function makeFixtureContext(
  dir: string,
  plugind: string,
  kind: 'vol' | 'priv',
  label: string,
): Promise<string> {
  return makeContext(dir, plugind, label, fixtureConfig(kind, label));
}

/** A dispatcher that records `METHOD path` of every request. */
function countingDispatcher(): { dispatcher: Dispatcher; requests: string[]; close(): Promise<void> } {
  const requests: string[] = [];
  const agent = new Agent();
  const dispatcher = agent.compose((dispatch) => (options, handler) => {
    requests.push(`${options.method} ${options.path}`);
    return dispatch(options, handler);
  });
  return { dispatcher, requests, close: () => agent.close() };
}

/** Pushes a plugin made of raw blobs (hostile or multi-layer content) with the registry client. */
async function pushRaw(
  client: RegistryClient,
  host: string,
  path: string,
  config: Record<string, unknown>,
  layers: Buffer[],
  diffIds: string[],
): Promise<{ layerDigests: string[]; configDigest: string }> {
  const repo = { domain: host, path };
  const configBytes = configBlob(parsePluginConfig(config, `${host}/${path}`), diffIds);
  const configDigest = digestOf(configBytes);
  const layerDigests = layers.map((layer) => digestOf(layer));
  for (const [i, layer] of layers.entries())
    await client.pushBlob(repo, layer, layerDigests[i] as string, layer.byteLength);
  await client.pushBlob(repo, configBytes, configDigest, configBytes.byteLength);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
      config: { mediaType: MEDIA_TYPE_PLUGIN_CONFIG, digest: configDigest, size: configBytes.byteLength },
      layers: layers.map((layer, i) => ({
        mediaType: MEDIA_TYPE_DOCKER_LAYER_GZIP,
        digest: layerDigests[i],
        size: layer.byteLength,
      })),
    }),
  );
  await client.pushManifest(repo, '1.0', MEDIA_TYPE_DOCKER_MANIFEST, manifest);
  return { layerDigests, configDigest };
}

/**
 * A loopback proxy in front of the registry that holds the body of one blob halfway until
 * `release()`: a pull paused mid-stream.
 */
async function pausingProxy(
  upstream: string,
  pauseOn: (path: string) => boolean,
): Promise<{ host: string; paused: Promise<void>; release: () => void; close: () => Promise<void> }> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let reached!: () => void;
  const paused = new Promise<void>((resolve) => (reached = resolve));
  const server: Server = createServer((req, res) => {
    void (async () => {
      const response = await fetch(`http://${upstream}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers: { accept: String(req.headers.accept ?? '*/*') },
      });
      const headers: Record<string, string> = {};
      response.headers.forEach((value, key) => {
        headers[key] = value;
      });
      res.writeHead(response.status, headers);
      const body = Buffer.from(await response.arrayBuffer());
      if (req.method === 'HEAD') return res.end();
      if (!pauseOn(req.url ?? '')) return res.end(body);
      res.write(body.subarray(0, body.byteLength >> 1));
      reached();
      await gate;
      res.end(body.subarray(body.byteLength >> 1));
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    host: `127.0.0.1:${address.port}`,
    paused,
    release,
    async close() {
      release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describeWith('embedded store with a real registry', withRegistry, () => {
  let work: string;
  let registry: LoopbackRegistry;
  let builderClient: RegistryClient;
  let builder: EmbeddedStore;
  let vol1: string;
  let vol2: string;
  let priv: string;
  let plugind: string;
  const logger = pino({ level: 'silent' });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'plugctl-embedded-it-'));
    registry = await startLoopbackRegistry(PORT);
    plugind = join(work, 'plugind');
    const built = await exec('gcc', ['-static', '-Os', '-s', '-Wall', '-o', plugind, PLUGIND_SOURCE]);
    assert.equal(built.code, 0, built.stderr);
    vol1 = `${registry.host}/test/vol:1.0`;
    vol2 = `${registry.host}/test/vol:2.0`;
    priv = `${registry.host}/test/priv:1.0`;
    builderClient = new RegistryClient({ credentials: async () => undefined });
    builder = await openEmbeddedStore({
      root: join(work, 'builder'),
      runtime: idleRuntime,
      registry: builderClient,
      logger,
      runDir: join(work, 'builder-run'),
    });
    for (const [name, kind, label] of [
      [vol1, 'vol', '1.0'],
      [vol2, 'vol', '2.0'],
      [priv, 'priv', '1.0'],
    ] as const) {
      const ctx = await makeFixtureContext(join(work, `ctx-${kind}-${label}`), plugind, kind, label);
      await builder.createPlugin(name, ctx);
      await builder.pushPlugin(name);
    }
  });

  after(async () => {
    await builder?.close();
    await builderClient?.close();
    await registry?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  describe('create and push', () => {
    it('creates plugins from a directory, installs them disabled, and pushes what the registry then serves', async () => {
      const created = await builder.inspect(vol1);
      assert.ok(created !== undefined);
      assert.equal(created.enabled, false);
      assert.equal(created.reference, vol1, 'a created plugin refers to its own name, as in moby');
      assert.deepEqual(created.capabilities, ['volumedriver']);
      assert.equal(await readFile(join(builder.layout.rootfs(created.id), 'VERSION'), 'utf8'), '1.0');
      const resolved = await builderClient.resolve(parseReference(vol1));
      assert.equal(resolved.manifest.mediaType, MEDIA_TYPE_DOCKER_MANIFEST);
      assert.equal(resolved.config.mediaType, MEDIA_TYPE_PLUGIN_CONFIG);
      assert.deepEqual(
        resolved.manifest.layers.map((l) => l.mediaType),
        [MEDIA_TYPE_DOCKER_LAYER_GZIP],
      );
      const record = JSON.parse(await readFile(builder.layout.configFile(created.id), 'utf8')) as Record<
        string,
        unknown
      >;
      assert.equal(record['Manifest'], resolved.digest, 'the pushed manifest is the stored one');
      // pushing again uploads nothing new and yields the same digest
      const again = await builder.pushPlugin(vol1);
      assert.equal(again.digest, resolved.digest);
    });

    it('creates from a tar file and from a gzip tar stream', async () => {
      const ctx = join(work, 'ctx-vol-1.0');
      const tarPath = join(work, 'ctx.tar');
      const tarred = await exec('tar', ['-C', ctx, '-cf', tarPath, '.']);
      assert.equal(tarred.code, 0, tarred.stderr);
      const fromFile = await builder.createPlugin('local/fromtar:1', tarPath);
      const gz = gzipSync(await readFile(tarPath));
      await writeFile(join(work, 'ctx.tgz'), gz);
      const fromStream = await builder.createPlugin(
        'local/fromstream:1',
        createReadStream(join(work, 'ctx.tgz')),
      );
      for (const report of [fromFile, fromStream]) {
        const rootfs = builder.layout.rootfs(report.id);
        assert.equal(await readFile(join(rootfs, 'VERSION'), 'utf8'), '1.0');
        assert.ok(((await stat(join(rootfs, 'bin/plugind'))).mode & 0o111) !== 0, 'plugind stays executable');
        assert.equal((await builder.inspect(report.name))?.settings.env['GREETING'], 'hello');
      }
      await rejectsWith(builder.createPlugin('local/fromtar:1', tarPath), 'PLUGIN_EXISTS');
      await builder.remove('local/fromtar:1', false);
      await builder.remove('local/fromstream:1', false);
    });

    it('refuses a context without config.json or rootfs/', async () => {
      const empty = await mkdtemp(join(work, 'empty-ctx-'));
      const error = await rejectsWith(
        builder.createPlugin('local/empty:1', empty),
        'CONTEXT_INVALID',
        'stalled',
      );
      assert.match(error.message, /config\.json/);
      assert.deepEqual(await readdir(builder.layout.tmp), [], 'nothing left in tmp/');
      assert.equal(await builder.inspect('local/empty:1'), undefined);
    });
  });

  describe('pull, set, upgrade, remove (no runtime needed)', () => {
    let root: string;
    let client: RegistryClient;
    let counter: ReturnType<typeof countingDispatcher>;
    let store: EmbeddedStore;
    const events: PluginEvent[] = [];
    const watching = new AbortController();
    let watchDone: Promise<void>;

    const open = (extra: Partial<EmbeddedStoreOptions> = {}): Promise<EmbeddedStore> =>
      openEmbeddedStore({
        root,
        runtime: idleRuntime,
        registry: client,
        logger,
        runDir: join(work, 'main-run'),
        ...extra,
      });

    before(async () => {
      root = join(work, 'main');
      counter = countingDispatcher();
      client = new RegistryClient({ credentials: async () => undefined, dispatcher: counter.dispatcher });
      store = await open();
      let ready!: () => void;
      const readyPromise = new Promise<void>((resolve) => (ready = resolve));
      watchDone = store.watch((event) => events.push(event), watching.signal, ready);
      await readyPromise;
    });

    after(async () => {
      watching.abort();
      await watchDone;
      await store?.close();
      await client?.close();
      await counter?.close();
    });

    it('pulls a plugin into moby layout and reports it by name, ID and ID prefix', async () => {
      const report = await store.pullWithReport(vol1, { remote: vol1, privileges: NETWORK_HOST });
      const byName = await store.inspect(vol1);
      assert.ok(byName !== undefined);
      assert.equal(byName.id, report.id);
      assert.equal(byName.reference, vol1);
      assert.equal(byName.enabled, false);
      assert.deepEqual(byName.settings, {
        env: { GREETING: 'hello', DEBUG: '0', FAIL_AT_START: '0' },
        args: ['--label=1.0'],
        mounts: {},
        devices: {},
      });
      assert.deepEqual(
        byName.privileges.map((p) => p.name),
        ['network'],
      );
      assert.deepEqual(await store.inspect(report.id), byName);
      assert.deepEqual(await store.inspect(report.id.slice(0, 12)), byName);
      assert.deepEqual(
        (await store.list()).map((p) => p.name),
        [vol1],
      );

      const configFile = store.layout.configFile(report.id);
      assert.equal((await stat(configFile)).mode & 0o777, 0o600);
      const record = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(record), [
        'plugin',
        'Rootfs',
        'Config',
        'Blobsums',
        'Manifest',
        'SwarmServiceID',
      ]);
      const resolved = await client.resolve(parseReference(vol1));
      assert.equal(record['Manifest'], resolved.digest);
      assert.equal(record['Config'], resolved.config.digest);
      assert.deepEqual(record['Blobsums'], [resolved.manifest.layers[0]?.digest]);
      // config, layer and manifest are all in the blob store, under their digests
      for (const digest of [
        resolved.digest,
        resolved.config.digest,
        resolved.manifest.layers[0]?.digest ?? '',
      ]) {
        const bytes = await readFile(store.layout.blobPath(digest));
        assert.equal(digestOf(bytes), digest);
      }
      const rootfs = store.layout.rootfs(report.id);
      assert.equal(await readFile(join(rootfs, 'VERSION'), 'utf8'), '1.0');
      assert.ok(((await stat(join(rootfs, 'bin/plugind'))).mode & 0o111) !== 0);
      assert.deepEqual(await readdir(store.layout.tmp), []);
      assert.deepEqual(
        events.map((e) => `${e.action} ${e.name}`),
        [`pull ${vol1}`],
      );
      await rejectsWith(store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST }), 'PLUGIN_EXISTS');
    });

    it('lists with filters; the pull reads privileges from the registry itself', async () => {
      assert.deepEqual((await store.list({ enabled: false })).length, 1);
      assert.deepEqual((await store.list({ enabled: true })).length, 0);
      assert.deepEqual((await store.list({ capability: 'volumedriver' })).length, 1);
      assert.deepEqual((await store.list({ capability: 'networkdriver' })).length, 0);
      assert.deepEqual(
        (await readRemote(client, priv)).privileges.map((p) => `${p.name}=${p.value.join(',')}`),
        ['network=host', 'mount=/tmp', 'device=/dev/null', 'capabilities=CAP_SYS_ADMIN'],
      );
      await assert.rejects(
        readRemote(client, `${registry.host}/test/vol:nope`),
        (error: unknown) => error instanceof RegistryError && error.code === 'MANIFEST_NOT_FOUND',
      );
    });

    it('refuses a privilege mismatch before downloading anything but the config', async () => {
      const resolved = await client.resolve(parseReference(priv));
      const layer = resolved.manifest.layers[0]?.digest ?? '';
      counter.requests.length = 0;
      const blobsBefore = await tree(store.layout.storage);
      const error = await rejectsWith(
        store.pull(priv, { remote: priv, privileges: NETWORK_HOST }),
        'PRIVILEGES_MISMATCH',
        'stalled',
      );
      assert.match(error.message, /mount=\[\/tmp\]/);
      // the grants must match every element in any order: a reordered full set is accepted later
      assert.ok(!counter.requests.some((request) => request.includes(layer)), counter.requests.join('\n'));
      assert.equal(await store.inspect(priv), undefined);
      assert.deepEqual(await tree(store.layout.storage), blobsBefore, 'nothing stored');
      assert.deepEqual(await readdir(store.layout.tmp), []);
      // dropping the first element is not accepted either (CVE-2026-33997 in older engines)
      await rejectsWith(
        store.pull(priv, { remote: priv, privileges: PRIV_GRANTS.slice(1) }),
        'PRIVILEGES_MISMATCH',
      );
    });

    it('pulls with the grants in another order and sets mounts and devices with moby rules', async () => {
      await store.pull(priv, { remote: priv, privileges: [...PRIV_GRANTS].reverse() });
      await store.set(priv, ['state.source=/var/tmp', 'null.path=/dev/zero']);
      const plugin = await store.inspect(priv);
      assert.deepEqual(plugin?.settings.mounts, { state: '/var/tmp' });
      assert.deepEqual(plugin?.settings.devices, { null: '/dev/zero' });
      assert.deepEqual(plugin?.defaults.mounts, { state: { source: '/var/tmp', settable: true } });
      const error = await rejectsWith(store.set(priv, ['DEBUG=1', 'NOPE=1']), 'SETTING_REJECTED', 'stalled');
      assert.match(error.message, /setting "NOPE" not found in the plugin configuration/);
      assert.equal(
        (await store.inspect(priv))?.settings.env['DEBUG'],
        '0',
        'a rejected call changes nothing',
      );
      await store.remove(priv, false);
    });

    it('sets env and args, persisted in config.json', async () => {
      await store.set(vol1, ['DEBUG=1', 'args=--one --two']);
      const plugin = await store.inspect(vol1);
      assert.equal(plugin?.settings.env['DEBUG'], '1');
      assert.deepEqual(plugin?.settings.args, ['--one', '--two']);
      const record = JSON.parse(await readFile(store.layout.configFile(plugin?.id ?? ''), 'utf8')) as {
        plugin: { Settings: { Env: string[]; Args: string[] } };
      };
      assert.ok(record.plugin.Settings.Env.includes('DEBUG=1'));
      assert.deepEqual(record.plugin.Settings.Args, ['--one', '--two']);
    });

    it('upgrades in place: same ID, new rootfs and config, settings kept', async () => {
      const before = await store.inspect(vol1);
      assert.ok(before !== undefined);
      await rejectsWith(
        store.upgrade(vol1, { remote: priv, privileges: NETWORK_HOST }),
        'PRIVILEGES_MISMATCH',
      );
      await store.upgrade(vol1, { remote: vol2, privileges: NETWORK_HOST });
      const after = await store.inspect(vol1);
      assert.ok(after !== undefined);
      assert.equal(after.id, before.id);
      assert.equal(after.name, vol1);
      assert.equal(after.reference, vol2);
      assert.equal(after.settings.env['DEBUG'], '1', 'settings kept');
      assert.deepEqual(after.settings.args, ['--one', '--two']);
      assert.deepEqual(after.defaults.args.value, ['--label=2.0'], 'the config is the new one');
      assert.notDeepEqual(after.diffIds, before.diffIds);
      assert.equal(await readFile(join(store.layout.rootfs(after.id), 'VERSION'), 'utf8'), '2.0');
      assert.deepEqual((await readdir(store.layout.pluginDir(after.id))).sort(), ['config.json', 'rootfs']);
      assert.deepEqual(await readdir(store.layout.tmp), []);
      await rejectsWith(
        store.upgrade('nope:1', { remote: vol2, privileges: NETWORK_HOST }),
        'NOT_FOUND',
        'stalled',
      );
    });

    it('removes through an <id>-removing rename, leaving blobs for gc()', async () => {
      const plugin = await store.inspect(vol1);
      assert.ok(plugin !== undefined);
      const seen: string[] = [];
      const watcher = watch(root, (_event, name) => {
        if (name !== null) seen.push(String(name));
      });
      await store.remove(vol1, false);
      await waitFor(() => seen.includes(`${plugin.id}-removing`), {
        what: `the rename to ${plugin.id}-removing`,
      }).finally(() => watcher.close());
      assert.equal(await exists(store.layout.pluginDir(plugin.id)), false);
      assert.equal(await exists(store.layout.removing(plugin.id)), false);
      assert.equal(await store.inspect(vol1), undefined);
      await store.remove(vol1, false); // absent: nothing to do
      const blobs = await store.content.list();
      assert.ok(blobs.length > 0, 'blobs stay until gc');
      const gc = await store.gc();
      assert.equal(gc.removed, blobs.length, 'nothing references them any more');
      assert.deepEqual(await store.content.list(), []);
      assert.deepEqual(
        events.map((e) => e.action),
        ['pull', 'pull', 'remove', 'pull', 'remove'],
      );
    });

    it('refuses a hostile layer with the entry name and keeps nothing', async () => {
      const hostile = `${registry.host}/test/hostile:1.0`;
      const tar = await tarOf([
        { name: 'bin/ok', content: 'fine' },
        { name: '../../../etc/evil', content: 'escaped' },
      ]);
      const layer = gzipSync(tar);
      await pushRaw(
        builderClient,
        registry.host,
        'test/hostile',
        fixtureConfig('vol', 'hostile'),
        [layer],
        [digestOf(tar)],
      );
      const dirsBefore = (await readdir(root)).sort();
      const blobsBefore = await store.content.list();
      const error = await rejectsWith(
        store.pull(hostile, { remote: hostile, privileges: NETWORK_HOST }),
        'LAYER_UNSAFE',
        'stalled',
      );
      assert.match(error.message, /"\.\.\/\.\.\/\.\.\/etc\/evil"/);
      assert.equal(await store.inspect(hostile), undefined);
      assert.deepEqual((await readdir(root)).sort(), dirsBefore, 'no plugin directory');
      assert.deepEqual(await readdir(store.layout.tmp), [], 'staging removed');
      assert.deepEqual(await store.content.list(), blobsBefore, 'the layer was not committed');
      assert.equal(await exists(join(work, 'etc', 'evil')), false);
    });

    it('never lets gc delete a blob a pull in progress needs', async () => {
      // a two-layer plugin whose first layer is already in the store (unreferenced, from vol 1.0)
      // and whose second layer is held halfway by a proxy while gc runs
      await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
      const vol1Resolved = await client.resolve(parseReference(vol1));
      const shared = vol1Resolved.manifest.layers[0]?.digest ?? '';
      await store.remove(vol1, false);
      const l1 = await readFile(store.layout.blobPath(shared));
      const secondTar = await tarOf([{ name: 'second/file', content: 'x'.repeat(300_000) }]);
      const l2 = gzipSync(secondTar, { level: 0 });
      const firstTar = await exec('sh', ['-c', `gzip -dc ${store.layout.blobPath(shared)} | sha256sum`]);
      await pushRaw(
        builderClient,
        registry.host,
        'test/two',
        fixtureConfig('vol', 'two'),
        [l1, l2],
        [`sha256:${firstTar.stdout.split(' ')[0] ?? ''}`, digestOf(secondTar)],
      );
      const l2Digest = digestOf(l2);
      const proxy = await pausingProxy(registry.host, (path) => path.includes(l2Digest));
      try {
        const two = `${proxy.host}/test/two:1.0`;
        const pulling = store.pullWithReport(two, { remote: two, privileges: NETWORK_HOST });
        await proxy.paused;
        let gcDone = false;
        const collecting = store.gc().then((result) => {
          gcDone = true;
          return result;
        });
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(gcDone, false, 'gc waits for the pull in progress');
        proxy.release();
        const report = await pulling;
        const result = await collecting;
        const record = JSON.parse(await readFile(store.layout.configFile(report.id), 'utf8')) as {
          Config: string;
          Blobsums: string[];
          Manifest: string;
        };
        assert.deepEqual(record.Blobsums, [shared, l2Digest]);
        for (const digest of [record.Config, ...record.Blobsums, record.Manifest]) {
          assert.ok(!result.digests.includes(digest), `gc deleted ${digest}`);
          assert.ok(await exists(store.layout.blobPath(digest)), `${digest} is in the store`);
        }
        // what only the removed vol 1.0 referenced is gone
        assert.deepEqual(result.digests, [vol1Resolved.digest, vol1Resolved.config.digest].sort());
        assert.deepEqual(await tree(join(store.layout.rootfs(report.id), 'second')), ['f file']);
        await store.remove(two, false);
      } finally {
        await proxy.close();
      }
    });

    it('recovers at start: -removing leftovers, tmp junk, interrupted upgrades; a corrupt config is skipped and reported', async () => {
      await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
      const kept = (await store.inspect(vol1))?.id ?? '';
      await store.pull(vol2, { remote: vol2, privileges: NETWORK_HOST });
      const upgrading = (await store.inspect(vol2))?.id ?? '';
      watching.abort();
      await watchDone;
      await store.close();

      const leftover = join(root, `${'1'.repeat(63)}a-removing`);
      await mkdir(join(leftover, 'rootfs/deep'), { recursive: true });
      await writeFile(join(leftover, 'rootfs/deep/file'), 'x');
      await mkdir(join(root, 'tmp/.pull-crashed/rootfs'), { recursive: true });
      await writeFile(join(root, 'tmp/ingest-crashed'), 'partial blob');
      const corrupt = 'c'.repeat(64);
      await mkdir(join(root, corrupt, 'rootfs'), { recursive: true });
      await writeFile(join(root, corrupt, 'config.json'), '{"plugin": {"Id": "trunc');
      // an upgrade that crashed after moving the old rootfs aside, before the new one was in place
      const rootfs = store.layout.rootfs(upgrading);
      await rename(rootfs, store.layout.oldRootfs(upgrading));
      await writeFile(store.layout.upgradeFile(upgrading), '{"half": "written"}');

      const reopened = await open();
      store = reopened;
      const report = reopened.reloadReport;
      assert.ok(report !== undefined);
      assert.deepEqual(report.removedLeftovers, [leftover]);
      assert.equal(report.cleanedTmp, 2);
      assert.deepEqual(
        report.skipped.map((s) => s.id),
        [corrupt],
      );
      assert.match(report.skipped[0]?.reason ?? '', /config\.json cannot be read/);
      assert.deepEqual(report.recoveredUpgrades, [{ id: upgrading, action: 'rolled back' }]);
      assert.deepEqual(report.loaded.sort(), [kept, upgrading].sort());
      assert.equal(await exists(leftover), false);
      assert.deepEqual(await readdir(join(root, 'tmp')), []);
      assert.equal(
        await exists(join(root, corrupt, 'config.json')),
        true,
        'a corrupt plugin is left for a human',
      );
      assert.equal(await readFile(join(rootfs, 'VERSION'), 'utf8'), '2.0', 'the old rootfs is back');
      assert.deepEqual((await readdir(store.layout.pluginDir(upgrading))).sort(), ['config.json', 'rootfs']);
      assert.deepEqual((await reopened.list()).map((p) => p.name).sort(), [vol1, vol2].sort());
      await rm(join(root, corrupt), { recursive: true });
    });

    it('completes an upgrade that crashed after its new rootfs was in place', async () => {
      const plugin = await store.inspect(vol2);
      assert.ok(plugin !== undefined);
      await store.close();
      const record = JSON.parse(await readFile(store.layout.configFile(plugin.id), 'utf8')) as {
        plugin: { Settings: { Env: string[] } };
      };
      record.plugin.Settings.Env.push('MARK=upgraded');
      await cp(store.layout.rootfs(plugin.id), store.layout.oldRootfs(plugin.id), {
        recursive: true,
        verbatimSymlinks: true,
      });
      await writeFile(store.layout.upgradeFile(plugin.id), JSON.stringify(record));
      store = await open();
      assert.deepEqual(store.reloadReport?.recoveredUpgrades, [{ id: plugin.id, action: 'completed' }]);
      assert.equal((await store.inspect(vol2))?.settings.env['MARK'], 'upgraded');
      assert.deepEqual((await readdir(store.layout.pluginDir(plugin.id))).sort(), ['config.json', 'rootfs']);
    });

    it('pushes a pulled plugin whose manifest blob is gone by rebuilding it, as dockerd does', async () => {
      const plugin = await store.inspect(vol2);
      assert.ok(plugin !== undefined);
      const record = JSON.parse(await readFile(store.layout.configFile(plugin.id), 'utf8')) as {
        Manifest: string;
        Blobsums: string[];
      };
      await rm(store.layout.blobPath(record.Manifest), { force: true });
      const target = `${registry.host}/test/repushed:1.0`;
      const pushed = await store.pushPlugin(vol2, target);
      const resolved = await client.resolve(parseReference(target));
      assert.equal(resolved.digest, pushed.digest);
      assert.deepEqual(
        resolved.manifest.layers.map((layer) => layer.digest),
        record.Blobsums,
      );
      const after = JSON.parse(await readFile(store.layout.configFile(plugin.id), 'utf8')) as {
        Manifest: string;
      };
      assert.equal(after.Manifest, pushed.digest, 'the rebuilt manifest is recorded');
      assert.ok(await exists(store.layout.blobPath(pushed.digest)));
      // without layers in the store (a plugin dockerd pulled and garbage-collected) there is nothing to push
      await store.close();
      const bare = JSON.parse(await readFile(store.layout.configFile(plugin.id), 'utf8')) as Record<
        string,
        unknown
      >;
      await writeFile(
        store.layout.configFile(plugin.id),
        JSON.stringify({ ...bare, Blobsums: null, Manifest: '' }),
      );
      store = await open();
      await rejectsWith(store.pushPlugin(vol2, target), 'BLOB_MISSING', 'stalled');
      await store.close();
      await writeFile(store.layout.configFile(plugin.id), JSON.stringify(bare));
      store = await open();
    });

    it('allows one store per root: STORE_LOCKED in-process and from another process; a dead holder is taken over', async () => {
      const error = await rejectsWith(open(), 'STORE_LOCKED', 'stalled');
      assert.match(error.message, new RegExp(`process ${process.pid}`));
      const lockModule = new URL('../../controller/store/embedded/lock.ts', import.meta.url).pathname;
      const other = await exec(process.execPath, [
        '--input-type=module',
        '-e',
        `import { acquireStoreLock } from ${JSON.stringify(lockModule)};
         try { await acquireStoreLock(${JSON.stringify(store.layout.lockFile)}); console.log('acquired'); }
         catch (e) { console.log(e.code, e.message); }`,
      ]);
      assert.match(other.stdout, new RegExp(`^STORE_LOCKED .*process ${process.pid}`));
      await store.close();

      // a holder killed with SIGKILL leaves its lock file behind; the next store takes it over
      const holder = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { acquireStoreLock } from ${JSON.stringify(lockModule)};
           await acquireStoreLock(${JSON.stringify(store.layout.lockFile)}); console.log('held'); setInterval(() => {}, 1000);`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      await rejectsWith(open(), 'STORE_LOCKED');
      holder.kill('SIGKILL');
      await new Promise((resolve) => holder.once('exit', resolve));
      assert.ok(await exists(store.layout.lockFile), 'the killed holder left its lock');
      store = await open();
      assert.equal((await store.list()).length, 2);
      await store.remove(vol1, false);
      await store.remove(vol2, false);
    });

    it('runs concurrent pulls of one layer under two names, and gc alongside them', async () => {
      await store.gc();
      const copy = 'local/vol-copy:1.0';
      const [a, b, collected] = await Promise.all([
        store.pullWithReport(vol1, { remote: vol1, privileges: NETWORK_HOST }),
        store.pullWithReport(copy, { remote: vol1, privileges: NETWORK_HOST }),
        store.gc(),
      ]);
      assert.notEqual(a.id, b.id);
      assert.equal(collected.removed, 0);
      const resolved = await client.resolve(parseReference(vol1));
      assert.deepEqual(
        (await store.content.digests()).sort(),
        [resolved.digest, resolved.config.digest, resolved.manifest.layers[0]?.digest ?? ''].sort(),
        'one copy of each blob',
      );
      assert.deepEqual(await readdir(store.layout.tmp), []);
      assert.equal(await readFile(join(store.layout.rootfs(b.id), 'VERSION'), 'utf8'), '1.0');
      await store.remove(vol1, false);
      assert.equal((await store.gc()).removed, 0, 'the copy still references every blob');
      await store.remove(copy, false);
      assert.equal((await store.gc()).removed, 3);
    });
  });

  describeWith('enable and disable with runc', { needs: RUNC }, () => {
    let short: string;
    let client: RegistryClient;
    let runtime: PluginRuntime;
    let store: EmbeddedStore;
    const events: PluginEvent[] = [];
    const watching = new AbortController();
    let watchDone: Promise<void>;

    before(async () => {
      // short paths: unix socket paths are limited to 107 bytes
      short = await mkdtemp('/run/pct-');
      const { RuncRuntime } = await import('../../controller/store/embedded/runc.ts');
      runtime = new RuncRuntime({
        logger,
        runcRoot: join(short, 'runc'),
        socketsRoot: join(short, 's'),
        discoveryDir: null,
        pollMs: 50,
      });
      client = new RegistryClient({ credentials: async () => undefined });
      store = await openEmbeddedStore({
        root: join(work, 'runc-root'),
        runtime,
        registry: client,
        logger,
        runDir: join(short, 'r'),
        restartPolicy: { initialMs: 100, maxMs: 1000, stableMs: 60_000 },
        stopGraceMs: 2000,
      });
      watchDone = store.watch((event) => events.push(event), watching.signal);
    });

    after(async () => {
      watching.abort();
      await watchDone;
      for (const plugin of (await store?.list()) ?? []) await store.remove(plugin.id, true);
      await store?.close();
      await runtime?.close();
      await client?.close();
      if (short !== undefined) await rm(short, { recursive: true, force: true });
    });

    it('enables with the settings, refuses changes while enabled, and disables', async () => {
      await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
      await store.set(vol1, ['GREETING=bonjour', 'args=--one --two']);
      const id = (await store.inspect(vol1))?.id ?? '';
      await store.enable(vol1, 10);
      assert.equal((await store.inspect(vol1))?.enabled, true);
      assert.equal(await runtime.isRunning(id), true);
      const record = JSON.parse(await readFile(store.layout.configFile(id), 'utf8')) as {
        plugin: { Enabled: boolean };
        Rootfs: string;
      };
      assert.equal(record.plugin.Enabled, true);
      assert.equal(record.Rootfs, store.layout.rootfs(id));
      const log = await readFile(join(short, 'r', id, 'plugin.log'), 'utf8');
      assert.match(log, /GREETING=bonjour/);
      assert.match(log, /--one --two/);

      await store.enable(vol1, 10); // already enabled
      await rejectsWith(store.set(vol1, ['DEBUG=2']), 'PLUGIN_ENABLED', 'waiting');
      await rejectsWith(
        store.upgrade(vol1, { remote: vol2, privileges: NETWORK_HOST }),
        'PLUGIN_ENABLED',
        'waiting',
      );
      await rejectsWith(store.remove(vol1, false), 'PLUGIN_ENABLED', 'waiting');
      assert.equal((await store.list({ enabled: true })).length, 1);

      await store.disable(vol1, false);
      assert.equal((await store.inspect(vol1))?.enabled, false);
      assert.equal(await runtime.isRunning(id), false);
      await store.disable(vol1, false); // already disabled
    });

    it('fails an enable whose plugin exits at start, leaving it disabled', async () => {
      await store.set(vol1, ['FAIL_AT_START=1']);
      const error = await rejectsWith(store.enable(vol1, 5), 'ENABLE_FAILED');
      assert.match(error.message, new RegExp(vol1.replace(/[.:/]/g, '\\$&')));
      assert.equal((await store.inspect(vol1))?.enabled, false);
      await store.set(vol1, ['FAIL_AT_START=0']);
    });

    it('restarts a crashed plugin with backoff and reports it', async () => {
      await store.enable(vol1, 10);
      const id = (await store.inspect(vol1))?.id ?? '';
      const pid = Number((await readFile(join(short, 'r', id, 'plugin.pid'), 'utf8')).trim());
      assert.ok(pid > 0);
      const before = events.length;
      process.kill(pid, 'SIGKILL');
      await waitFor(() => events.slice(before).some((e) => e.action === 'restart'), {
        what: 'the restart event',
      });
      assert.deepEqual(
        events.slice(before).map((e) => e.action),
        ['die', 'restart'],
      );
      assert.equal(await runtime.isRunning(id), true);
      const newPid = Number((await readFile(join(short, 'r', id, 'plugin.pid'), 'utf8')).trim());
      assert.notEqual(newPid, pid);
    });

    it('adopts a running plugin after a controller restart instead of starting it twice', async () => {
      const id = (await store.inspect(vol1))?.id ?? '';
      const pid = (await readFile(join(short, 'r', id, 'plugin.pid'), 'utf8')).trim();
      watching.abort();
      await watchDone;
      await store.close();
      store = await openEmbeddedStore({
        root: join(work, 'runc-root'),
        runtime,
        registry: client,
        logger,
        runDir: join(short, 'r'),
        stopGraceMs: 2000,
      });
      assert.deepEqual(store.reloadReport?.adopted, [id]);
      assert.equal((await readFile(join(short, 'r', id, 'plugin.pid'), 'utf8')).trim(), pid);
    });

    it('starts an enabled plugin that is not running when the store opens', async () => {
      const id = (await store.inspect(vol1))?.id ?? '';
      await store.close();
      await runtime.stop(id, 2000); // as after a reboot: enabled on disk, nothing running
      assert.equal(await runtime.isRunning(id), false);
      store = await openEmbeddedStore({
        root: join(work, 'runc-root'),
        runtime,
        registry: client,
        logger,
        runDir: join(short, 'r'),
        stopGraceMs: 2000,
      });
      assert.deepEqual(store.reloadReport?.started, [id]);
      assert.deepEqual(store.reloadReport?.failedToStart, []);
      assert.equal(await runtime.isRunning(id), true);
      assert.equal((await store.inspect(vol1))?.enabled, true);
    });

    it('removes an enabled plugin with force, stopping it first', async () => {
      const id = (await store.inspect(vol1))?.id ?? '';
      await store.remove(vol1, true);
      assert.equal(await runtime.isRunning(id), false);
      assert.equal(await store.inspect(vol1), undefined);
      assert.equal(await exists(store.layout.pluginDir(id)), false);
      assert.equal(await exists(join(short, 'r', id)), false, 'its runtime state is gone too');
    });
  });
});
