/**
 * Interop between plugctl's embedded store and the real engine (test/env/plugin-env.sh's private
 * dockerd and loopback registry), in both directions and on disk:
 * (a) a plugin built with `docker plugin create` and pushed with `docker plugin push` is pulled and
 *     enabled by the embedded store (real runc) and answers on its socket;
 * (b) a plugin built with the embedded store's createPlugin and pushed with pushPlugin is installed
 *     and enabled by dockerd, which then uses it as a volume driver;
 * (c) a plugins directory written by dockerd is read by `plugctl get --store embedded --root ...`
 *     (a real CLI process) while dockerd is stopped: plugins, state and settings as dockerd left
 *     them, and nothing written or started (the CLI opens the store read-only).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, it } from 'node:test';
import { pino } from 'pino';
import { RegistryClient } from '../../controller/registry/client.ts';
import type { PluginPrivilege } from '../../controller/api/types.ts';
import { RuncRuntime } from '../../controller/store/embedded/runc.ts';
import { openEmbeddedStore } from '../../controller/store/embedded/store.ts';
import type { EffectiveSettings } from '../../controller/store/store.ts';
import { openTempEmbeddedStore } from '../conformance/embedded.ts';
import { readRemote } from '../../controller/store/embedded/pull.ts';
import type { TempEmbeddedStore } from '../conformance/embedded.ts';
import { buildPlugind, exec, makeVolContext } from '../conformance/fixtures.ts';
import { answersActivate, rejectsWith } from '../conformance/scenarios.ts';
import { describeIntegration, docker, envScript, useEnv } from './harness.ts';

const NETWORK_HOST: PluginPrivilege[] = [{ name: 'network', value: ['host'] }];
const CLI = fileURLToPath(new URL('../../bin/plugctl.js', import.meta.url));

/** Every file below `dir` (relative path -> sha256 of its content, or `dir`/`link`), for "nothing changed". */
async function snapshot(dir: string, skip: (relative: string) => boolean): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(relative: string): Promise<void> {
    for (const entry of await readdir(join(dir, relative), { withFileTypes: true })) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (skip(path)) continue;
      if (entry.isDirectory()) {
        out.set(path, 'dir');
        await walk(path);
      } else if (entry.isFile()) {
        out.set(
          path,
          createHash('sha256')
            .update(await readFile(join(dir, path)))
            .digest('hex'),
        );
      } else {
        out.set(path, entry.isSymbolicLink() ? 'link' : 'other');
      }
    }
  }
  await walk('');
  return out;
}

/** The status part of a DockerPlugin object `plugctl get -o json` prints. */
interface GetRow {
  plugin: string;
  pluginID?: string;
  reference?: string;
  enabled?: boolean;
  settings?: EffectiveSettings;
}

describeIntegration('interop with the real engine', () => {
  const env = useEnv();
  let work: string;
  let plugind: string;
  let embedded: TempEmbeddedStore;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'plugctl-interop-'));
    plugind = await buildPlugind(join(work, 'plugind'));
    embedded = await openTempEmbeddedStore('interop');
  });

  after(async () => {
    await embedded?.cleanup();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('(a) the embedded store pulls and enables a plugin that dockerd created and pushed', async () => {
    const remote = `${env().registry}/interop/from-docker:1.0`;
    const ctx = await makeVolContext(join(work, 'ctx-from-docker'), plugind, 'from-docker');
    await docker(['plugin', 'create', remote, ctx]);
    await docker(['plugin', 'push', remote]);
    await docker(['plugin', 'rm', remote]);

    const { store, client } = embedded;
    assert.deepEqual(
      (await readRemote(client, remote)).privileges.map(({ name, value }) => ({ name, value })),
      NETWORK_HOST,
    );
    await store.pull(remote, { remote, privileges: NETWORK_HOST });
    const pulled = await store.inspect(remote);
    assert.ok(pulled !== undefined);
    assert.equal(pulled.reference, remote);
    assert.deepEqual(pulled.capabilities, ['volumedriver']);
    assert.deepEqual(pulled.settings.args, ['--label=from-docker']);
    assert.equal(await readFile(join(store.layout.rootfs(pulled.id), 'VERSION'), 'utf8'), 'from-docker');

    await store.set(remote, ['GREETING=from-plugctl']);
    await store.enable(remote, 20);
    assert.equal((await store.inspect(remote))?.enabled, true);
    assert.equal(await answersActivate(join(embedded.socketDir(pulled.id), 'plugind.sock')), true);
    // and where Docker-API consumers discover plugins, under its flat driver name
    const link = join(embedded.discoveryDir, '127.0.0.1:5000-interop-from-docker:1.0.sock');
    assert.equal(await answersActivate(link), true, `${link} answers`);

    await store.remove(remote, true);
    assert.equal(await store.inspect(remote), undefined);
    assert.equal(existsSync(link), false, 'the discovery link goes with the plugin');
  });

  it('(b) dockerd installs, enables and uses a plugin that the embedded store created and pushed', async () => {
    const remote = `${env().registry}/interop/from-plugctl:1.0`;
    const { store } = embedded;
    const ctx = await makeVolContext(join(work, 'ctx-from-plugctl'), plugind, 'from-plugctl');
    await store.createPlugin(remote, ctx);
    const pushed = await store.pushPlugin(remote);
    assert.equal(pushed.remote, remote);
    await store.remove(remote, false);

    await docker(['plugin', 'install', '--grant-all-permissions', remote]);
    const volume = `interop-${process.pid}-${Date.now()}`;
    try {
      const inspected = JSON.parse((await docker(['plugin', 'inspect', remote])).stdout) as {
        Enabled: boolean;
        PluginReference: string;
        Settings: { Env: string[]; Args: string[] };
      }[];
      assert.equal(inspected[0]?.Enabled, true);
      assert.equal(inspected[0]?.PluginReference, remote);
      assert.ok(inspected[0]?.Settings.Env.includes('GREETING=hello'));
      assert.deepEqual(inspected[0]?.Settings.Args, ['--label=from-plugctl']);

      await docker(['volume', 'create', '-d', remote, volume]);
      const driver = (await docker(['volume', 'inspect', '--format', '{{.Driver}}', volume])).stdout.trim();
      assert.equal(driver, remote);
      // the driver answers for the volume (dockerd asks the plugin: VolumeDriver.Get)
      const listed = (await docker(['volume', 'ls', '--format', '{{.Name}} {{.Driver}}'])).stdout;
      assert.ok(listed.split('\n').includes(`${volume} ${remote}`), listed);
    } finally {
      await docker(['volume', 'rm', '-f', volume], { check: false });
      await docker(['plugin', 'rm', '-f', remote], { check: false });
    }
  });

  it('(c) `plugctl get --store embedded` reads the plugins directory of a stopped dockerd without writing or starting anything', async (t) => {
    t.diagnostic(`dockerd ${env().engineVersion}`);
    const reg = env().registry;
    const enabledName = 'dockerd/enabled:1.0';
    const disabledName = 'dockerd/disabled:1.0';
    await docker([
      'plugin',
      'install',
      '--grant-all-permissions',
      '--disable',
      '--alias',
      enabledName,
      `${reg}/test/vol:1.0`,
    ]);
    await docker(['plugin', 'set', enabledName, 'GREETING=from-dockerd', 'args=--x --y']);
    await docker(['plugin', 'enable', enabledName]);
    await docker([
      'plugin',
      'install',
      '--grant-all-permissions',
      '--disable',
      '--alias',
      disabledName,
      `${reg}/test/vol:2.0`,
    ]);
    await docker(['plugin', 'set', disabledName, 'DEBUG=7']);
    const idOf = async (name: string): Promise<string> =>
      (await docker(['plugin', 'inspect', '--format', '{{.Id}}', name])).stdout.trim();
    const enabledId = await idOf(enabledName);
    const disabledId = await idOf(disabledName);

    const pluginsDir = join(env().dir, 'root', 'plugins');
    const stateDir = await mkdtemp(join(work, 'state-'));
    const defaultRuncRoot = '/run/plugctl/runc';
    const runcRootExisted = existsSync(defaultRuncRoot);
    await envScript('stop-dockerd');
    try {
      // rootfs contents are not ours to hash (and large); everything else must stay byte for byte
      const skip = (path: string): boolean => /^[0-9a-f]{64}\/rootfs\//.test(path);
      const before = await snapshot(pluginsDir, skip);
      assert.ok(before.has(`${enabledId}/config.json`), 'dockerd wrote the enabled plugin');
      assert.ok(before.has(`${disabledId}/config.json`), 'dockerd wrote the disabled plugin');

      const started = Date.now();
      const result = await exec(
        process.execPath,
        [CLI, '--store', 'embedded', '--root', pluginsDir, '--state-dir', stateDir, 'get', '-o', 'json'],
        { env: { ...process.env, DOCKER_HOST: '' } },
      );
      t.diagnostic(`plugctl get took ${Date.now() - started} ms`);
      assert.equal(result.code, 0, result.stderr);
      const rows = (JSON.parse(result.stdout) as { items: { status: GetRow }[] }).items.map((o) => o.status);
      const byName = new Map(rows.map((row) => [row.plugin, row]));
      assert.deepEqual([...byName.keys()].sort(), [disabledName, enabledName]);

      const enabled = byName.get(enabledName);
      assert.equal(enabled?.pluginID, enabledId);
      assert.equal(enabled?.enabled, true);
      assert.equal(enabled?.reference, `${reg}/test/vol:1.0`);
      assert.deepEqual(enabled?.settings, {
        env: { GREETING: 'from-dockerd', DEBUG: '0', FAIL_AT_START: '0' },
        args: ['--x', '--y'],
        mounts: {},
        devices: {},
      });
      const disabled = byName.get(disabledName);
      assert.equal(disabled?.pluginID, disabledId);
      assert.equal(disabled?.enabled, false);
      assert.equal(disabled?.reference, `${reg}/test/vol:2.0`);
      assert.deepEqual(disabled?.settings, {
        env: { GREETING: 'hello', DEBUG: '7', FAIL_AT_START: '0' },
        args: ['--label=2.0'],
        mounts: {},
        devices: {},
      });

      // read-only: nothing written (no lock, no tmp cleanup), nothing started with runc
      assert.deepEqual(await snapshot(pluginsDir, skip), before);
      if (!runcRootExisted) assert.equal(existsSync(defaultRuncRoot), false, 'runc never ran');
      else assert.equal(existsSync(join(defaultRuncRoot, enabledId)), false, 'the plugin was not started');

      // the same directory through the API: read-only refuses every change
      const logger = pino({ level: 'silent' });
      const client = new RegistryClient({ credentials: async () => undefined });
      const runtime = new RuncRuntime({ logger, runcRoot: join(work, 'runc'), discoveryDir: null });
      const readOnly = await openEmbeddedStore({
        root: pluginsDir,
        runtime,
        registry: client,
        logger,
        runDir: join(work, 'run'),
        readOnly: true,
      });
      try {
        assert.deepEqual(readOnly.reloadReport?.started, []);
        assert.equal((await readOnly.inspect(enabledName))?.enabled, true);
        await rejectsWith(readOnly.enable(disabledName, 5), 'STORE_READ_ONLY', 'stalled');
        await rejectsWith(readOnly.set(disabledName, ['DEBUG=1']), 'STORE_READ_ONLY', 'stalled');
        await rejectsWith(readOnly.remove(disabledName, true), 'STORE_READ_ONLY', 'stalled');
      } finally {
        await readOnly.close();
        await runtime.close();
        await client.close();
      }
      assert.deepEqual(await snapshot(pluginsDir, skip), before);
    } finally {
      // should a regression have started dockerd's plugin under plugctl, stop it before dockerd runs
      if (existsSync(join(defaultRuncRoot, enabledId))) {
        await exec('runc', ['--root', defaultRuncRoot, 'delete', '--force', enabledId]);
        await rm(join('/run/plugctl/plugins', enabledId), { recursive: true, force: true });
        await rm('/run/docker/plugins/dockerd-enabled:1.0.sock', { force: true });
      }
      await envScript('start-dockerd');
    }

    // dockerd finds its plugins again as it left them: the enabled one restored and running
    const restored = JSON.parse((await docker(['plugin', 'inspect', enabledName])).stdout) as {
      Enabled: boolean;
      Settings: { Env: string[] };
    }[];
    assert.equal(restored[0]?.Enabled, true);
    assert.ok(restored[0]?.Settings.Env.includes('GREETING=from-dockerd'));
    assert.ok((await stat(join(pluginsDir, enabledId, 'config.json'))).isFile());
    await docker(['plugin', 'rm', '-f', enabledName, disabledName]);
  });
});
