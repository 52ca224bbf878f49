/**
 * The docker Store against a real dockerd, registry and fixture plugins (test/env/plugin-env.sh).
 * Assertions are about the resulting state of the engine, read back through the store or the CLI.
 * The first suite holds the store's pure pieces (version guard, JSON mapping) and runs anywhere.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { inspect } from 'node:util';
import { after, afterEach, before, describe, it } from 'node:test';
import { Credentials } from '../../controller/registry/credentials.ts';
import type { PluginPrivilege } from '../../controller/api/types.ts';
import {
  codeForStatus,
  compareApiVersions,
  connectEngine,
  negotiateApiVersion,
  parseDockerHost,
} from '../../controller/store/docker/client.ts';
import {
  compareEngineVersions,
  parseEngineVersion,
  supportsDigestReferences,
} from '../../controller/store/docker/engine-version.ts';
import {
  capabilityOf,
  connectDockerStore,
  pullFailureKind,
  streamError,
  toInstalledPlugin,
  toPrivileges,
} from '../../controller/store/docker/store.ts';
import type { DockerStore } from '../../controller/store/docker/store.ts';
import { describeIntegration, docker, envScript, resetEnv, useEnv } from './harness.ts';
import { within } from '../wait.ts';
import { rejectsWith } from '../errors.ts';

const NETWORK_HOST: PluginPrivilege[] = [{ name: 'network', value: ['host'] }];
const PRIV_GRANTS: PluginPrivilege[] = [
  { name: 'network', value: ['host'] },
  { name: 'mount', value: ['/tmp'] },
  { name: 'device', value: ['/dev/null'] },
  { name: 'capabilities', value: ['CAP_SYS_ADMIN'] },
];
const A_DIGEST = `sha256:${'a'.repeat(64)}`;

describe('docker store: pure parts', () => {
  it('orders engine versions, with pre-releases before their release and unknown versions oldest', () => {
    assert.ok(compareEngineVersions('20.10.24+dfsg1', '25.0.4') < 0);
    assert.ok(compareEngineVersions('25.0.3', '25.0.4') < 0);
    assert.equal(compareEngineVersions('25.0.4', '25.0.4+build7'), 0);
    assert.ok(compareEngineVersions('25.0.4-rc.1', '25.0.4') < 0);
    assert.ok(compareEngineVersions('25.1.0', '25.0.4') > 0);
    assert.ok(compareEngineVersions('28.2.2', '25.0.4') > 0);
    assert.ok(compareEngineVersions('17.06.2-ce', '17.06.2') === 0);
    assert.ok(compareEngineVersions('dev', '1.0.0') < 0);
    assert.equal(compareEngineVersions('dev', 'master'), 0);
    assert.deepEqual(parseEngineVersion('20.10.24+dfsg1'), {
      major: 20,
      minor: 10,
      patch: 24,
      prerelease: false,
    });
    assert.equal(parseEngineVersion('master-dockerproject-2024-01-01'), undefined);
  });

  it('allows digest references from engine 25.0.4 on only', () => {
    assert.equal(supportsDigestReferences('20.10.24+dfsg1'), false);
    assert.equal(supportsDigestReferences('24.0.9'), false);
    assert.equal(supportsDigestReferences('25.0.3'), false);
    assert.equal(supportsDigestReferences('25.0.4-rc.2'), false);
    assert.equal(supportsDigestReferences('25.0.4'), true);
    assert.equal(supportsDigestReferences('26.1.3'), true);
    assert.equal(supportsDigestReferences('unknown'), false);
  });

  it('negotiates the lower API version and parses docker hosts', () => {
    assert.equal(negotiateApiVersion('1.47'), '1.41');
    assert.equal(negotiateApiVersion('1.40'), '1.40');
    assert.ok(compareApiVersions('1.9', '1.25') < 0);
    assert.deepEqual(parseDockerHost('unix:///run/x.sock'), {
      address: 'unix:///run/x.sock',
      socketPath: '/run/x.sock',
      origin: 'http://localhost',
    });
    assert.equal(parseDockerHost('tcp://127.0.0.1:2375').origin, 'http://127.0.0.1:2375');
    assert.throws(() => parseDockerHost('ssh://host'), /not supported/);
    assert.deepEqual(codeForStatus(404), { code: 'NOT_FOUND', kind: 'stalled' });
    assert.deepEqual(codeForStatus(409), { code: 'CONFLICT', kind: 'waiting' });
    assert.equal(codeForStatus(502).kind, 'transient');
  });

  it('maps the engine plugin JSON to InstalledPlugin', () => {
    const plugin = toInstalledPlugin({
      Id: 'abc',
      Name: '127.0.0.1:5000/test/priv:1.0',
      Enabled: false,
      PluginReference: '127.0.0.1:5000/test/priv:1.0',
      Settings: {
        Env: ['DEBUG=0', 'EMPTY'],
        Args: [],
        Mounts: [
          { Name: 'state', Source: '/tmp' },
          { Name: '', Source: '/x' },
        ],
        Devices: [
          { Name: 'null', Path: '/dev/null' },
          { Name: 'unset', Path: null },
        ],
      },
      Config: {
        Env: [
          { Name: 'DEBUG', Settable: ['value'], Value: '0' },
          { Name: 'FIXED', Value: 'x' },
        ],
        Args: { Name: 'args', Settable: ['value'], Value: ['--a'] },
        Mounts: [{ Name: 'state', Source: '/tmp', Settable: ['source'] }],
        Linux: { Devices: [{ Name: 'null', Path: '/dev/null', Settable: ['path'] }] },
        Interface: {
          Types: ['docker.volumedriver/1.0', { Prefix: 'docker', Capability: 'authz', Version: '1.0' }],
        },
        rootfs: { type: 'layers', diff_ids: ['sha256:1'] },
      },
    });
    assert.deepEqual(plugin.settings, {
      env: { DEBUG: '0', EMPTY: '' },
      args: [],
      mounts: { state: '/tmp' },
      devices: { null: '/dev/null' },
    });
    assert.deepEqual(plugin.defaults, {
      env: { DEBUG: { value: '0', settable: true }, FIXED: { value: 'x', settable: false } },
      args: { name: 'args', value: ['--a'], settable: true },
      mounts: { state: { source: '/tmp', settable: true } },
      devices: { null: { path: '/dev/null', settable: true } },
    });
    assert.deepEqual(plugin.capabilities, ['volumedriver', 'authz']);
    assert.deepEqual(plugin.diffIds, ['sha256:1']);
    assert.equal(plugin.enabled, false);
    assert.equal(capabilityOf('docker.logdriver/1.0'), 'logdriver');
  });

  it('maps privileges, including the engine null for none', () => {
    assert.deepEqual(toPrivileges(null), []);
    assert.deepEqual(toPrivileges([{ Name: 'network', Description: 'net', Value: ['host'] }]), [
      { name: 'network', description: 'net', value: ['host'] },
    ]);
  });

  it('finds errors in progress streams and classifies pull failures', () => {
    assert.equal(streamError({ status: 'Downloading' }), undefined);
    assert.equal(
      streamError({ errorDetail: { message: 'incorrect privileges' }, error: 'x' }),
      'incorrect privileges',
    );
    assert.equal(streamError({ error: 'boom' }), 'boom');
    assert.equal(pullFailureKind('incorrect privileges'), 'stalled');
    assert.equal(pullFailureKind('manifest unknown'), 'stalled');
    assert.equal(pullFailureKind('unauthorized: authentication required'), 'stalled');
    assert.equal(pullFailureKind('dial tcp 127.0.0.1:5000: connect: connection refused'), 'transient');
  });

  it('reports an unreachable engine with what to do', async () => {
    const error = await rejectsWith(
      connectDockerStore({ host: 'unix:///nonexistent/docker.sock', connectTimeoutMs: 2000 }),
      'ENGINE_UNREACHABLE',
      'transient',
    );
    assert.match(error.message, /unix:\/\/\/nonexistent\/docker\.sock/);
    assert.match(error.message, /DOCKER_HOST/);
  });
});

describeIntegration('docker store against a real dockerd', () => {
  const env = useEnv();
  let store: DockerStore;
  let vol1: string;
  let vol2: string;
  let priv: string;
  let bad: string;

  before(async () => {
    store = await connectDockerStore({ host: env().dockerHost, env: { HOME: '/nonexistent' } });
    const reg = env().registry;
    [vol1, vol2, priv, bad] = [
      `${reg}/test/vol:1.0`,
      `${reg}/test/vol:2.0`,
      `${reg}/test/priv:1.0`,
      `${reg}/test/bad:1.0`,
    ];
  });
  after(async () => {
    await store.close();
  });
  afterEach(async () => {
    await envScript('start-registry');
    await resetEnv();
  });

  /** GET /plugins/privileges straight from the engine: what it claims a remote asks for. */
  async function enginePrivileges(remote: string): Promise<PluginPrivilege[]> {
    const engine = await connectEngine({ host: env().dockerHost });
    try {
      return toPrivileges(await engine.json('GET', '/plugins/privileges', { query: { remote } }));
    } finally {
      await engine.close();
    }
  }

  it('connects, negotiates API 1.41 and describes the engine', () => {
    assert.equal(store.engineVersion, env().engineVersion);
    assert.equal(store.apiVersion, '1.41');
    assert.equal(store.describe(), `docker ${env().engineVersion} (API 1.41)`);
  });

  it("reads the engine's privileges of the fixtures, as the store's double check of grants does", async () => {
    assert.deepEqual(
      (await enginePrivileges(vol1)).map(({ name, value }) => ({ name, value })),
      NETWORK_HOST,
    );
    assert.deepEqual(
      (await enginePrivileges(priv)).map(({ name, value }) => ({ name, value })),
      PRIV_GRANTS,
    );
    // the engine answers `null` for a plugin that asks for nothing
    assert.deepEqual(await enginePrivileges(bad), []);
  });

  it('gets [] for the privileges of a remote that does not exist (the engine swallows the fetch error)', async () => {
    // dockerd answers 200 `[]` here (moby's Privileges returns an empty list when the fetch fails),
    // exactly as for a real plugin without privileges; only the later pull reports the problem.
    assert.deepEqual(await enginePrivileges(`${env().registry}/test/nonexistent:1.0`), []);
    assert.deepEqual(await enginePrivileges(`${env().registry}/test/vol:9.9`), []);
  });

  it('pulls, lists and inspects a plugin', async () => {
    await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
    const plugin = await store.inspect(vol1);
    assert.ok(plugin);
    assert.equal(plugin.name, vol1);
    assert.equal(plugin.reference, vol1);
    assert.equal(plugin.enabled, false);
    assert.deepEqual(plugin.settings, {
      env: { GREETING: 'hello', DEBUG: '0', FAIL_AT_START: '0' },
      args: ['--label=1.0'],
      mounts: {},
      devices: {},
    });
    assert.deepEqual(plugin.defaults.env['GREETING'], { value: 'hello', settable: true });
    assert.deepEqual(plugin.defaults.args, { name: 'args', value: ['--label=1.0'], settable: true });
    assert.deepEqual(plugin.capabilities, ['volumedriver']);
    assert.equal(plugin.diffIds.length, 1);
    assert.match(plugin.diffIds[0] ?? '', /^sha256:[0-9a-f]{64}$/);

    const listed = await store.list();
    assert.deepEqual(
      listed.map((p) => p.name),
      [vol1],
    );
    assert.deepEqual(listed[0], plugin);
    assert.equal((await store.inspect(plugin.id))?.name, vol1, 'inspect by ID');
    assert.equal(await store.inspect('127.0.0.1:5000/test/absent:1.0'), undefined);
  });

  it('pulls under an alias', async () => {
    await store.pull('vol-alias:stable', { remote: vol1, privileges: NETWORK_HOST });
    const plugin = await store.inspect('vol-alias:stable');
    assert.equal(plugin?.reference, vol1);
    const { stdout } = await docker(['plugin', 'ls', '--format', '{{.Name}}']);
    assert.equal(stdout.trim(), 'vol-alias:stable');
  });

  it('refuses a second pull under a taken name', async () => {
    await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
    await rejectsWith(
      store.pull(vol1, { remote: vol2, privileges: NETWORK_HOST }),
      'PLUGIN_EXISTS',
      'transient',
    );
  });

  it('sets, enables and disables; the plugin process sees the settings', async () => {
    await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
    await store.set(vol1, ['GREETING=bonjour', 'DEBUG=1', 'args=--one --two']);
    let plugin = await store.inspect(vol1);
    assert.deepEqual(plugin?.settings.env, { GREETING: 'bonjour', DEBUG: '1', FAIL_AT_START: '0' });
    assert.deepEqual(plugin?.settings.args, ['--one', '--two']);

    await store.enable(vol1, 10);
    plugin = await store.inspect(vol1);
    assert.equal(plugin?.enabled, true);
    const log = await readFile(`${env().dir}/dockerd.log`, 'utf8');
    const mine = log.split('\n').filter((line) => line.includes(`plugin=${plugin?.id ?? '?'}`));
    assert.ok(
      mine.some((line) => line.includes('plugind: env GREETING=bonjour')),
      'env reached the process',
    );
    assert.ok(
      mine.some((line) => line.includes('--one --two')),
      'args reached the process',
    );

    await store.enable(vol1, 10); // already enabled: nothing to do
    await rejectsWith(store.set(vol1, ['DEBUG=2']), 'PLUGIN_ENABLED', 'waiting');

    await store.disable(vol1, false);
    assert.equal((await store.inspect(vol1))?.enabled, false);
    await store.disable(vol1, false); // already disabled: nothing to do
  });

  it('rejects settings the plugin does not declare', async () => {
    await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
    const error = await rejectsWith(store.set(vol1, ['NOPE=1']), 'SETTING_REJECTED', 'stalled');
    assert.match(error.message, /NOPE/);
  });

  it('installs and enables the privileged fixture with its mount and device settings', async () => {
    await store.pull(priv, { remote: priv, privileges: PRIV_GRANTS });
    await store.set(priv, ['state.source=/var/tmp', 'null.path=/dev/zero']);
    const plugin = await store.inspect(priv);
    assert.deepEqual(plugin?.settings.mounts, { state: '/var/tmp' });
    assert.deepEqual(plugin?.settings.devices, { null: '/dev/zero' });
    // dockerd shares the Source/Path pointers between Config and Settings, so a set also rewrites
    // the reported config default: defaults of mounts and devices follow the last set
    assert.deepEqual(plugin?.defaults.mounts, { state: { source: '/var/tmp', settable: true } });
    assert.deepEqual(plugin?.defaults.devices, { null: { path: '/dev/zero', settable: true } });
    await store.enable(priv, 10);
    assert.equal((await store.inspect(priv))?.enabled, true);
    await store.disable(priv, false);
    await store.remove(priv, false);
    assert.equal(await store.inspect(priv), undefined);
  });

  it('refuses a pull with wrong grants before the engine pulls, installing nothing', async () => {
    // the store compares every grant itself (the engine skips the first one, CVE-2026-33997) and
    // reports PRIVILEGES_MISMATCH, as the embedded store does (test/conformance/scenarios.ts)
    const error = await rejectsWith(
      store.pull(priv, { remote: priv, privileges: NETWORK_HOST }),
      'PRIVILEGES_MISMATCH',
      'stalled',
    );
    assert.match(error.message, /asks for network=\[host\], mount=\[\/tmp\]/);
    assert.equal(await store.inspect(priv), undefined);
  });

  it('fails a pull of a tag that does not exist with the engine message', async () => {
    const remote = `${env().registry}/test/vol:9.9`;
    // dockerd 20.10 answers 500 before streaming: "error resolving plugin reference: ... Head
    // https://127.0.0.1:5000/v2/test/vol/manifests/9.9: http: server gave HTTP response to HTTPS
    // client" (it reports its first, HTTPS, attempt rather than the plain-HTTP 404)
    const error = await rejectsWith(store.pull(remote, { remote, privileges: NETWORK_HOST }), 'PULL_FAILED');
    assert.match(error.message, /test\/vol/);
    assert.match(error.message, /9\.9/);
    assert.equal(await store.inspect(remote), undefined);
  });

  it('fails a pull while the registry is down as transient, and privileges read as []', async () => {
    await envScript('stop-registry');
    assert.deepEqual(await enginePrivileges(vol1), []);
    const error = await rejectsWith(
      store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST }),
      'PULL_FAILED',
      'transient',
    );
    assert.match(error.message, /connection refused/);
  });

  it('upgrades 1.0 to 2.0 in place, keeping ID and settings', async () => {
    await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
    await store.set(vol1, ['GREETING=kept']);
    const before = await store.inspect(vol1);
    assert.ok(before);

    await store.enable(vol1, 10);
    await rejectsWith(
      store.upgrade(vol1, { remote: vol2, privileges: NETWORK_HOST }),
      'PLUGIN_ENABLED',
      'waiting',
    );
    await store.disable(vol1, false);

    await store.upgrade(vol1, { remote: vol2, privileges: NETWORK_HOST });
    const after = await store.inspect(vol1);
    assert.ok(after);
    assert.equal(after.id, before.id);
    assert.equal(after.name, vol1);
    assert.equal(after.reference, vol2);
    assert.notDeepEqual(after.diffIds, before.diffIds);
    assert.equal(after.settings.env['GREETING'], 'kept');
    // the config is 2.0's, but the engine keeps the old effective args (they are settings too)
    assert.deepEqual(after.defaults.args.value, ['--label=2.0']);
    assert.deepEqual(after.settings.args, ['--label=1.0']);
    await store.enable(vol1, 10);
    assert.equal((await store.inspect(vol1))?.enabled, true);
  });

  it('refuses to upgrade a plugin that is not installed', async () => {
    await rejectsWith(
      store.upgrade('absent:1', { remote: vol2, privileges: NETWORK_HOST }),
      'NOT_FOUND',
      'stalled',
    );
  });

  it('refuses to disable or remove a plugin in use, and forces when asked', async () => {
    // A fresh volume name: dockerd remembers a volume name whose driver went away while the volume
    // still existed, and a later `volume create` of that name takes no reference on the new plugin.
    const volume = `inuse-${process.pid}-${Date.now()}`;
    await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
    await store.enable(vol1, 10);
    await docker(['volume', 'create', '-d', vol1, volume]);

    const error = await rejectsWith(store.disable(vol1, false), 'PLUGIN_IN_USE', 'waiting');
    assert.match(error.message, /in use/);
    assert.equal((await store.inspect(vol1))?.enabled, true);
    await rejectsWith(store.remove(vol1, false), 'PLUGIN_IN_USE', 'waiting');

    await store.disable(vol1, true);
    assert.equal((await store.inspect(vol1))?.enabled, false);

    // a volume is only listed, and removable, while its driver runs: clean up through the plugin
    await store.enable(vol1, 10);
    await docker(['volume', 'rm', volume]);
    await store.disable(vol1, false);
  });

  it('removes: absent is fine, enabled needs force', async () => {
    await store.remove('127.0.0.1:5000/test/never:1.0', false);
    await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
    await store.enable(vol1, 10);
    await rejectsWith(store.remove(vol1, false), 'PLUGIN_ENABLED', 'waiting');
    await store.remove(vol1, true);
    assert.equal(await store.inspect(vol1), undefined);
    assert.deepEqual(await store.list(), []);
  });

  it('fails to enable a plugin that exits at start, and leaves it disabled', async () => {
    await store.pull(bad, { remote: bad, privileges: [] });
    const error = await within(rejectsWith(store.enable(bad, 5), 'ENABLE_FAILED', 'transient'), {
      what: 'the enable to fail (its timeout is 5 s)',
      timeoutMs: 40_000,
    });
    assert.match(error.message, /did not start/);
    assert.match(error.message, /dockerd log/);
    assert.equal((await store.inspect(bad))?.enabled, false);
  });

  it('never sends a digest reference to an engine that would crash, and the engine stays up', async (t) => {
    if (supportsDigestReferences(store.engineVersion)) {
      t.skip(`engine ${store.engineVersion} handles digest references`);
      return;
    }
    const remote = `${env().registry}/test/vol@${A_DIGEST}`;
    for (const attempt of [
      store.pull(vol1, { remote, privileges: NETWORK_HOST }),
      store.upgrade(vol1, { remote, privileges: NETWORK_HOST }),
    ]) {
      const error = await rejectsWith(attempt, 'DIGEST_UNSUPPORTED_BY_ENGINE', 'stalled');
      assert.ok(error.message.includes(store.engineVersion), error.message);
      assert.match(error.message, /25\.0\.4/);
      assert.match(error.message, /by tag/);
    }
    // the daemon is alive: a fresh connection pings it
    const again = await connectDockerStore({ host: env().dockerHost });
    try {
      assert.equal(again.engineVersion, store.engineVersion);
    } finally {
      await again.close();
    }
  });

  it('sends registry credentials without ever showing them', async () => {
    const password = 'sekrit-Pa55word';
    const asked: string[] = [];
    const withAuth = await connectDockerStore({
      host: env().dockerHost,
      credentials: async (host) => {
        asked.push(host);
        return new Credentials({ serverAddress: host, username: 'tester', password });
      },
    });
    try {
      await withAuth.pull(vol1, { remote: vol1, privileges: NETWORK_HOST });
      assert.deepEqual(asked, [env().registry]);
      const missing = `${env().registry}/test/vol:9.9`;
      const error = await rejectsWith(
        withAuth.pull(missing, { remote: missing, privileges: NETWORK_HOST }),
        'PULL_FAILED',
      );
      const shown = `${error.message} ${JSON.stringify(error)} ${inspect(error, { depth: 10 })}`;
      assert.ok(!shown.includes(password), 'the password is not in the error');
      assert.ok(!shown.includes(Buffer.from(password).toString('base64').slice(0, 12)), 'nor its base64');
    } finally {
      await withAuth.close();
    }
  });
});
