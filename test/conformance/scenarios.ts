/**
 * The store conformance suite: the same scenarios, registered once per Store implementation, so
 * that the docker store (real dockerd) and the embedded store (real runc) are held to one contract.
 * A difference between the two is a bug in one of them. Every assertion reads the state of the
 * world through the Store API (list, list, inspect, watch) — never the calls a store made —
 * plus, where the suite can reach it, the plugin's own socket (a plugin that is enabled answers).
 *
 * The fixtures are test/env/plugin-env.sh's: `<registry>/test/vol:1.0` and `:2.0` (a volume driver
 * asking for network=host, env GREETING/DEBUG/FAIL_AT_START and args settable), `test/priv:1.0`
 * (four privileges) and `test/bad:1.0` (none). Scenarios run in order and build on each other
 * (install, set, enable, ..., remove); the suite's after() removes whatever is left.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PluginPrivilege } from '../../controller/api/types.ts';
import type {
  InstalledPlugin,
  ListFilters,
  PluginEvent,
  PullProgress,
  Store,
} from '../../controller/store/store.ts';
import { rejectsWith } from '../errors.ts';
import { buildPlugind, exec, makeVolContext } from './fixtures.ts';
import { waitFor } from '../wait.ts';
export { rejectsWith };

/** What a suite's `open` hands the scenarios. */
export interface OpenedStore {
  store: Store;
  /** `host:port` of the registry holding the fixtures */
  registry: string;
  /**
   * The host directory holding a plugin's sockets (its /run/docker/plugins), when the suite can
   * reach it; the scenarios then check that an enabled plugin answers Plugin.Activate there.
   */
  socketDir?: (id: string) => string;
  /** Closes what `open` made (the scenarios have removed their plugins before). */
  cleanup(): Promise<void>;
}

const NETWORK_HOST: PluginPrivilege[] = [{ name: 'network', value: ['host'] }];
const PRIV_GRANTS: PluginPrivilege[] = [
  { name: 'network', value: ['host'] },
  { name: 'mount', value: ['/tmp'] },
  { name: 'device', value: ['/dev/null'] },
  { name: 'capabilities', value: ['CAP_SYS_ADMIN'] },
];
/** the fixtures' Interface.Socket */
const SOCKET = 'plugind.sock';
const ENABLE_TIMEOUT_S = 20;

/**
 * True when something on the unix socket `path` answers Plugin.Activate as a volume driver (what
 * dockerd asks first of every plugin it enables).
 */
export function answersActivate(path: string, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      {
        socketPath: path,
        path: '/Plugin.Activate',
        method: 'POST',
        agent: false,
        timeout: timeoutMs,
        headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': 0 },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('error', () => resolve(false));
        res.on('end', () => {
          try {
            const json = JSON.parse(body) as { Implements?: unknown };
            resolve(Array.isArray(json.Implements) && json.Implements.includes('VolumeDriver'));
          } catch {
            resolve(false);
          }
        });
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** Name and values only: stores may or may not carry descriptions. */
function bare(privileges: readonly PluginPrivilege[]): { name: string; value: string[] }[] {
  return privileges.map(({ name, value }) => ({ name, value: [...value] }));
}

/** The manifest digest the registry serves for `repository:tag` (a Docker schema 2 manifest). */
async function manifestDigest(registry: string, repository: string, tag: string): Promise<string> {
  const response = await fetch(`http://${registry}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  const digest = response.headers.get('docker-content-digest');
  assert.ok(response.ok && digest !== null, `HEAD ${repository}:${tag} answered ${response.status}`);
  return digest;
}

/**
 * Registers the conformance scenarios for one store under `store conformance: <name>`. `open` runs
 * once, before the first scenario, on a store holding none of the fixture plugins.
 */
export function defineStoreConformance(name: string, open: () => Promise<OpenedStore>): void {
  describe(`store conformance: ${name}`, { concurrency: false }, () => {
    let opened: OpenedStore;
    let store: Store;
    let vol1: string;
    let vol2: string;
    let priv: string;
    let bad: string;
    let alias: string;
    let wrongGrant: string;
    let pinned: string;
    const events: PluginEvent[] = [];
    const watching = new AbortController();
    let watchDone: Promise<void> = Promise.resolve();

    /** Asserts whether the plugin answers on its socket, when the suite can reach its sockets. */
    async function assertAnswers(plugin: InstalledPlugin, expected: boolean, message: string): Promise<void> {
      const dir = opened.socketDir?.(plugin.id);
      if (dir !== undefined) assert.equal(await answersActivate(join(dir, SOCKET)), expected, message);
    }

    async function mustInspect(nameOrId: string): Promise<InstalledPlugin> {
      const plugin = await store.inspect(nameOrId);
      assert.ok(plugin !== undefined, `${nameOrId} is installed`);
      return plugin;
    }

    async function names(filters?: ListFilters): Promise<string[]> {
      const listed = filters === undefined ? await store.list() : await store.list(filters);
      return listed.map((plugin) => plugin.name).sort();
    }

    before(async () => {
      opened = await open();
      store = opened.store;
      const reg = opened.registry;
      [vol1, vol2, priv, bad] = [
        `${reg}/test/vol:1.0`,
        `${reg}/test/vol:2.0`,
        `${reg}/test/priv:1.0`,
        `${reg}/test/bad:1.0`,
      ];
      alias = 'conformance-alias';
      wrongGrant = 'conformance/wrong-grant:1.0';
      pinned = 'conformance/pinned:1.0';
      assert.deepEqual(await store.list(), [], `the ${name} store starts empty`);
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      watchDone = store.watch((event) => events.push(event), watching.signal, ready);
      // a watch that fails before it is ready must fail the suite, not hang it
      await Promise.race([isReady, watchDone]);
    });

    after(async () => {
      watching.abort();
      await watchDone.catch(() => undefined);
      if (store !== undefined) {
        for (const plugin of await store.list().catch(() => [])) {
          await store.remove(plugin.id, true).catch(() => undefined);
        }
      }
      await opened?.cleanup();
    });

    it('installs with the exact grants: disabled, with the config defaults as settings', async () => {
      const progress: PullProgress[] = [];
      await store.pull(vol1, { remote: vol1, privileges: NETWORK_HOST, onProgress: (e) => progress.push(e) });
      assert.ok(
        progress.some((e) => e.layer !== undefined && e.status !== ''),
        `the pull reports its layers: ${JSON.stringify(progress)}`,
      );
      const plugin = await mustInspect(vol1);
      assert.match(plugin.id, /^[0-9a-f]{64}$/);
      assert.equal(plugin.name, vol1);
      assert.equal(plugin.reference, vol1);
      assert.equal(plugin.enabled, false);
      assert.deepEqual(plugin.settings, {
        env: { GREETING: 'hello', DEBUG: '0', FAIL_AT_START: '0' },
        args: ['--label=1.0'],
        mounts: {},
        devices: {},
      });
      // the settings are exactly the config's defaults
      assert.deepEqual(
        plugin.settings.env,
        Object.fromEntries(Object.entries(plugin.defaults.env).map(([key, env]) => [key, env.value])),
      );
      assert.deepEqual(plugin.settings.args, plugin.defaults.args.value);
      assert.deepEqual(plugin.defaults.env['GREETING'], { value: 'hello', settable: true });
      assert.deepEqual(plugin.defaults.args, { name: 'args', value: ['--label=1.0'], settable: true });
      assert.deepEqual(plugin.capabilities, ['volumedriver']);
      assert.equal(plugin.diffIds.length, 1);
      assert.match(plugin.diffIds[0] ?? '', /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual(bare(plugin.privileges), NETWORK_HOST);
      assert.deepEqual(await store.list(), [plugin], 'list() shows the same plugin as inspect()');
    });

    it('refuses a second install under a taken name, leaving the first as it was', async () => {
      const before = await mustInspect(vol1);
      await rejectsWith(
        store.pull(vol1, { remote: vol2, privileges: NETWORK_HOST }),
        'PLUGIN_EXISTS',
        'transient',
      );
      assert.deepEqual(await store.list(), [before]);
    });

    it('inspects by name, by full ID and by unique ID prefix; an absent plugin is undefined', async () => {
      const plugin = await mustInspect(vol1);
      assert.deepEqual(await store.inspect(plugin.id), plugin);
      assert.deepEqual(await store.inspect(plugin.id.slice(0, 12)), plugin);
      assert.equal(await store.inspect(`${opened.registry}/test/absent:1.0`), undefined);
      // a name without a tag means :latest, which is not installed
      assert.equal(await store.inspect(`${opened.registry}/test/vol`), undefined);
    });

    it('shows its own record of a plugin (docker plugin inspect) and says where its output goes', async () => {
      const plugin = await mustInspect(vol1);
      const raw = await store.inspectRaw(plugin.id.slice(0, 12));
      assert.equal(raw?.['Id'], plugin.id);
      assert.equal(raw?.['Name'], vol1);
      assert.equal(raw?.['Enabled'], false);
      assert.equal(raw?.['PluginReference'], vol1);
      assert.equal(await store.inspectRaw(`${opened.registry}/test/absent:1.0`), undefined);
      const logs = await store.logSource(vol1);
      assert.ok(logs !== undefined);
      if ('file' in logs) assert.ok(logs.file.endsWith(`/${plugin.id}/plugin.log`), logs.file);
      else assert.ok(logs.elsewhere.includes(plugin.id), logs.elsewhere);
      assert.equal(await store.logSource(`${opened.registry}/test/absent:1.0`), undefined);
    });

    it('changes env and args while disabled; refuses a setting the config does not declare', async () => {
      await store.set(vol1, ['GREETING=bonjour', 'args=--one --two']);
      const plugin = await mustInspect(vol1);
      assert.deepEqual(plugin.settings.env, { GREETING: 'bonjour', DEBUG: '0', FAIL_AT_START: '0' });
      assert.deepEqual(plugin.settings.args, ['--one', '--two']);
      assert.deepEqual(plugin.defaults.env['GREETING'], { value: 'hello', settable: true }, 'defaults stay');
      assert.deepEqual(plugin.defaults.args.value, ['--label=1.0']);

      await rejectsWith(store.set(vol1, ['NOPE=1']), 'SETTING_REJECTED', 'stalled');
      assert.deepEqual((await mustInspect(vol1)).settings, plugin.settings, 'nothing changed');
    });

    it('enables: the plugin runs and answers on its socket; enabling again changes nothing', async () => {
      await store.enable(vol1, ENABLE_TIMEOUT_S);
      const plugin = await mustInspect(vol1);
      assert.equal(plugin.enabled, true);
      await assertAnswers(plugin, true, 'the enabled plugin answers Plugin.Activate');
      await store.enable(vol1, ENABLE_TIMEOUT_S);
      assert.equal((await mustInspect(vol1)).enabled, true);
    });

    it('refuses set, upgrade and remove without force of an enabled plugin with PLUGIN_ENABLED', async () => {
      const before = await mustInspect(vol1);
      await rejectsWith(store.set(vol1, ['DEBUG=2']), 'PLUGIN_ENABLED', 'waiting');
      await rejectsWith(
        store.upgrade(vol1, { remote: vol2, privileges: NETWORK_HOST }),
        'PLUGIN_ENABLED',
        'waiting',
      );
      await rejectsWith(store.remove(vol1, false), 'PLUGIN_ENABLED', 'waiting');
      assert.deepEqual(await mustInspect(vol1), before, 'the plugin is unchanged and still enabled');
    });

    it('disables; disabling again changes nothing', async () => {
      await store.disable(vol1, false);
      const plugin = await mustInspect(vol1);
      assert.equal(plugin.enabled, false);
      await assertAnswers(plugin, false, 'a disabled plugin no longer answers');
      await store.disable(vol1, false);
      assert.equal((await mustInspect(vol1)).enabled, false);
    });

    it('reports enable and disable through watch()', async () => {
      const { id } = await mustInspect(vol1);
      const actions = (): string[] =>
        events
          .filter((event) => event.id === id && (event.action === 'enable' || event.action === 'disable'))
          .map((event) => event.action);
      await waitFor(() => actions().length >= 2, { what: 'the enable and disable events' });
      assert.deepEqual(actions(), ['enable', 'disable']);
    });

    it('filters the list by enabled state and capability', async () => {
      assert.deepEqual(await names({}), [vol1]);
      assert.deepEqual(await names({ enabled: false }), [vol1]);
      assert.deepEqual(await names({ enabled: true }), []);
      assert.deepEqual(await names({ capability: 'volumedriver' }), [vol1]);
      assert.deepEqual(await names({ capability: 'VolumeDriver' }), [vol1], 'case-insensitive');
      assert.deepEqual(await names({ capability: 'authz' }), []);
      assert.deepEqual(await names({ capability: 'volume' }), [], 'a capability matches exactly');
      await store.enable(vol1, ENABLE_TIMEOUT_S);
      try {
        assert.deepEqual(await names({ enabled: true }), [vol1]);
        assert.deepEqual(await names({ enabled: false }), []);
        assert.deepEqual(await names({ enabled: true, capability: 'volumedriver' }), [vol1]);
        assert.deepEqual(await names({ enabled: true, capability: 'authz' }), []);
      } finally {
        await store.disable(vol1, false);
      }
    });

    it('upgrades 1.0 to 2.0 keeping ID, name and settings; the new content runs', async () => {
      const before = await mustInspect(vol1);
      await store.upgrade(vol1, { remote: vol2, privileges: NETWORK_HOST });
      const upgraded = await mustInspect(vol1);
      assert.equal(upgraded.id, before.id);
      assert.equal(upgraded.name, vol1);
      assert.equal(upgraded.reference, vol2);
      assert.equal(upgraded.enabled, false);
      assert.equal(upgraded.diffIds.length, 1);
      assert.notDeepEqual(upgraded.diffIds, before.diffIds);
      assert.deepEqual(upgraded.settings, before.settings, 'effective settings are kept');
      assert.deepEqual(upgraded.defaults.args.value, ['--label=2.0'], "the config is 2.0's");
      await store.enable(vol1, ENABLE_TIMEOUT_S);
      await assertAnswers(await mustInspect(vol1), true, 'the upgraded plugin answers');
      await store.disable(vol1, false);
    });

    it('refuses grants that differ from what the plugin asks for, installing or changing nothing', async () => {
      const before = await store.list();
      // fewer grants than asked for
      await rejectsWith(
        store.pull(priv, { remote: priv, privileges: NETWORK_HOST }),
        'PRIVILEGES_MISMATCH',
        'stalled',
      );
      // as many grants as asked for, but a different one (dockerd before 29.3.1 alone accepts this)
      await rejectsWith(
        store.pull(wrongGrant, { remote: vol1, privileges: [{ name: 'network', value: ['none'] }] }),
        'PRIVILEGES_MISMATCH',
        'stalled',
      );
      // grants for a plugin that asks for none
      await rejectsWith(
        store.pull(bad, { remote: bad, privileges: NETWORK_HOST }),
        'PRIVILEGES_MISMATCH',
        'stalled',
      );
      // an upgrade without the grants the new content asks for
      await rejectsWith(
        store.upgrade(vol1, { remote: vol1, privileges: [] }),
        'PRIVILEGES_MISMATCH',
        'stalled',
      );
      assert.deepEqual(await store.list(), before, 'nothing installed, nothing changed');
      for (const absent of [priv, wrongGrant, bad]) assert.equal(await store.inspect(absent), undefined);
    });

    it('installs with every grant asked for, in any order, and reports the privileges it holds', async () => {
      await store.pull(priv, { remote: priv, privileges: [...PRIV_GRANTS].reverse() });
      const plugin = await mustInspect(priv);
      assert.deepEqual(
        bare(plugin.privileges),
        PRIV_GRANTS,
        "computed from the installed config, moby's order",
      );
      await store.remove(priv, false);
    });

    it('installs under an alias, tagged latest when the alias has no tag', async () => {
      await store.pull(alias, { remote: vol1, privileges: NETWORK_HOST });
      const plugin = await mustInspect(alias);
      assert.equal(plugin.name, `${alias}:latest`);
      assert.equal(plugin.reference, vol1);
      assert.deepEqual(await mustInspect(`${alias}:latest`), plugin);
      assert.deepEqual(await names(), [`${alias}:latest`, vol1].sort());
      await store.remove(alias, false);
      assert.equal(await store.inspect(alias), undefined);
    });

    it('removes: an enabled plugin only with force; absent afterwards; removing it again succeeds', async () => {
      await store.enable(vol1, ENABLE_TIMEOUT_S);
      const { id } = await mustInspect(vol1);
      await rejectsWith(store.remove(vol1, false), 'PLUGIN_ENABLED', 'waiting');
      assert.equal((await mustInspect(vol1)).enabled, true);
      await store.remove(vol1, true);
      assert.equal(await store.inspect(vol1), undefined);
      assert.equal(await store.inspect(id), undefined);
      assert.deepEqual(await store.list(), []);
      assert.deepEqual(await store.list({ capability: 'volumedriver' }), []);
      await store.remove(vol1, false);
    });

    it('accepts a digest reference exactly when acceptsDigestReferences() says so', async () => {
      const digest = await manifestDigest(opened.registry, 'test/vol', '1.0');
      const remote = `${opened.registry}/test/vol@${digest}`;
      if (store.acceptsDigestReferences()) {
        await store.pull(pinned, { remote, privileges: NETWORK_HOST });
        const plugin = await mustInspect(pinned);
        assert.equal(plugin.reference, remote);
        assert.equal(plugin.enabled, false);
        await store.remove(pinned, false);
      } else {
        await rejectsWith(
          store.pull(pinned, { remote, privileges: NETWORK_HOST }),
          'DIGEST_UNSUPPORTED_BY_ENGINE',
          'stalled',
        );
      }
      assert.equal(await store.inspect(pinned), undefined);
      assert.deepEqual(await store.list(), []);
    });

    it('creates from a context directory and from a gzip tar of one; refuses a taken name and a bad context', async () => {
      const work = await mkdtemp(join(tmpdir(), 'plugctl-conformance-ctx-'));
      try {
        const plugind = await buildPlugind(join(work, 'plugind'));
        const dir = await makeVolContext(join(work, 'ctx'), plugind, 'built');
        const tarball = join(work, 'ctx.tar.gz');
        const tarred = await exec('tar', ['-czf', tarball, '-C', dir, 'config.json', 'rootfs']);
        assert.equal(tarred.code, 0, tarred.stderr);

        await store.create('conformance/built', dir);
        const plugin = await mustInspect('conformance/built:latest');
        assert.equal(plugin.enabled, false);
        assert.deepEqual(plugin.capabilities, ['volumedriver']);
        assert.deepEqual(plugin.settings.env, { GREETING: 'hello', DEBUG: '0', FAIL_AT_START: '0' });
        assert.deepEqual(plugin.settings.args, ['--label=built']);
        assert.deepEqual(bare(plugin.privileges), NETWORK_HOST);
        await store.set('conformance/built:latest', ['DEBUG=2']);
        await store.enable('conformance/built:latest', ENABLE_TIMEOUT_S);
        await assertAnswers(await mustInspect('conformance/built:latest'), true, 'a built plugin runs');
        await rejectsWith(store.create('conformance/built', dir), 'PLUGIN_EXISTS');
        assert.equal((await mustInspect('conformance/built:latest')).id, plugin.id, 'the first is untouched');

        await store.create('conformance/from-tar:1', tarball);
        const fromTar = await mustInspect('conformance/from-tar:1');
        assert.deepEqual(fromTar.settings.args, ['--label=built']);

        const empty = join(work, 'empty');
        await mkdir(empty);
        await rejectsWith(store.create('conformance/empty:1', empty), 'CONTEXT_INVALID', 'stalled');
        assert.equal(await store.inspect('conformance/empty:1'), undefined);

        await store.remove('conformance/built:latest', true);
        await store.remove('conformance/from-tar:1', false);
        assert.deepEqual(await store.list(), []);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    });
  });
}
