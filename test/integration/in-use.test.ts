/**
 * Real in-use accounting. On the private dockerd of test/env, through the CLI (`diff`, `apply`,
 * `get`): a volume that a container mounts blocks an upgrade under inUse Wait, and diff, apply and
 * get name it; once nothing uses the plugin the upgrade goes through, with the engine's force flag
 * when the engine still counts a user it lost track of. On the embedded store (runc), which runs
 * no volumes, networks or containers, nothing uses a plugin and the same upgrade proceeds.
 * Every check reads the world: the installed plugin's reference and state, the command output.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { pino } from 'pino';
import { emptyInventory } from '../../controller/reconcile/inventory.ts';
import { reconcilePass } from '../../controller/reconcile/once.ts';
import type { DesiredPlugin } from '../../controller/reconcile/desired.ts';
import { RegistryClient } from '../../controller/registry/client.ts';
import { createRemoteInspector } from '../../controller/registry/inspect.ts';
import { connectDockerStore, type DockerStore } from '../../controller/store/docker/store.ts';
import type { EmbeddedStore } from '../../controller/store/embedded/store.ts';
import { openEmbeddedStore } from '../../controller/store/embedded/store.ts';
import { describeUsage } from '../../controller/store/usage.ts';
import { openTempEmbeddedStore, type TempEmbeddedStore } from '../conformance/embedded.ts';
import { buildPlugind, makeVolContext } from '../conformance/fixtures.ts';
import { idleRuntime } from '../idle-runtime.ts';
import { describeWith, REGISTRY, RUNC } from '../prerequisites.ts';
import { startLoopbackRegistry, type LoopbackRegistry } from '../unit/store/embedded/loopback-registry.ts';
import { runPlugctl } from './cli.ts';
import { describeIntegration, docker, envScript, useEnv } from './harness.ts';

const logger = pino({ level: process.env['PLUGCTL_TEST_LOG'] ?? 'silent' });

describeIntegration('in-use accounting: docker store', () => {
  const env = useEnv();
  let work: string;
  let state: string;
  let docs: string;
  let store: DockerStore;

  async function declare(version: string): Promise<void> {
    const text = [
      'apiVersion: plugctl.dev/v1alpha1',
      'kind: DockerPlugin',
      'metadata: { name: vol }',
      'spec:',
      `  remote: ${env().registry}/test/vol:${version}`,
      '  alias: vol',
      '  privileges: [{ name: network, value: [host] }]',
      '  inUse: Wait',
      '',
    ].join('\n');
    await writeFile(join(docs, '.vol.tmp'), text);
    await rename(join(docs, '.vol.tmp'), join(docs, 'vol.yaml'));
  }

  const plugctl = (...args: string[]) => runPlugctl(state, env().dockerHost, args);
  const plugin = () => store.inspect('vol:latest');

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'plugctl-in-use-'));
    state = join(work, 'state');
    docs = join(work, 'docs');
    await mkdir(docs);
    store = await connectDockerStore({ host: env().dockerHost });
    await envScript('busybox-image');
    await declare('1.0');
    const applied = await plugctl('apply', '-f', docs);
    assert.equal(applied.code, 0, applied.out + applied.err);
  });

  after(async () => {
    // the environment's reset (useEnv's after hook) removes the containers and volumes made here
    await store?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('a volume a container mounts blocks the upgrade; diff, apply and get name it', async () => {
    await docker(['volume', 'create', '-d', 'vol:latest', 'data-1']);
    await docker([
      'create',
      '--name',
      'user-1',
      '--network',
      'none',
      '-v',
      'data-1:/data',
      'plugctl-test/busybox:1',
      '/bin/busybox',
      'true',
    ]);
    await declare('2.0');

    const diff = await plugctl('diff', '-f', docs);
    assert.equal(diff.code, 1, diff.out + diff.err);
    assert.match(diff.out, /blocked \[waiting PLUGIN_IN_USE\]: .*in use by 1 volume: data-1/);

    const applied = await plugctl('apply', '-f', docs);
    assert.equal(applied.code, 1, applied.out + applied.err);
    assert.match(applied.out, /PLUGIN_IN_USE.*in use by 1 volume: data-1/);
    const p = await plugin();
    assert.equal(p?.reference, `${env().registry}/test/vol:1.0`, 'not upgraded');
    assert.equal(p?.enabled, true, 'not disrupted');

    const get = await plugctl('get');
    assert.match(get.out, /IN USE BY/);
    assert.match(get.out, /1 volume: data-1/);
  });

  it('the upgrade goes through once nothing uses the plugin, forcing past a lost reference count', async () => {
    await docker(['rm', 'user-1']);
    await docker(['volume', 'rm', 'data-1']);
    await loseReferenceCount();
    const diff = await plugctl('diff', '-f', docs);
    assert.match(diff.out, /disable \(--force if the engine still counts users\)/);
    const applied = await plugctl('apply', '-f', docs);
    assert.equal(applied.code, 0, applied.out + applied.err);
    const p = await plugin();
    assert.equal(p?.reference, `${env().registry}/test/vol:2.0`);
    assert.equal(p?.enabled, true);
  });

  /**
   * Leaves dockerd counting a user of vol:latest that no longer exists, as when a volume is deleted
   * on the storage backend (moby#32609, #39835): the driver forgets a volume dockerd counted, and
   * the plugin restarts (disable --force keeps the engine's count). dockerd lists volumes from the
   * drivers, so no volume is listed, yet its reference count still says "in use".
   */
  async function loseReferenceCount(): Promise<void> {
    await docker(['volume', 'create', '-d', 'vol:latest', 'lost-1']);
    const p = await plugin();
    assert.ok(p !== undefined);
    // plugind keeps its volumes in this file in its rootfs and reads it when it starts
    await writeFile(join(env().dir, 'root', 'plugins', p.id, 'rootfs', 'var/lib/plugind/volumes'), '');
    await docker(['plugin', 'disable', '--force', 'vol:latest']);
    await docker(['plugin', 'enable', 'vol:latest']);
    const listed = await docker(['volume', 'ls', '-q']);
    assert.equal(listed.stdout.trim(), '', 'no volume is left');
    const refused = await docker(['plugin', 'disable', 'vol:latest'], { check: false });
    assert.notEqual(refused.code, 0, 'the engine still counts a user');
    assert.match(refused.stderr, /in use/);
  }
});

describeWith(
  'in-use accounting: embedded store (runc)',
  { needs: [...REGISTRY, ...RUNC], concurrency: false },
  () => {
    const PORT = 5232;
    let work: string;
    let registry: LoopbackRegistry;
    let embedded: TempEmbeddedStore;
    let remote: (version: string) => string;

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'plugctl-in-use-embedded-'));
      registry = await startLoopbackRegistry(PORT);
      remote = (version) => `${registry.host}/test/vol:${version}`;
      const plugind = await buildPlugind(join(work, 'plugind'));
      const builderClient = new RegistryClient({ credentials: async () => undefined });
      let builder: EmbeddedStore | undefined;
      try {
        builder = await openEmbeddedStore({
          root: join(work, 'builder'),
          runtime: idleRuntime,
          registry: builderClient,
          logger,
          runDir: join(work, 'builder-run'),
        });
        for (const version of ['1.0', '2.0']) {
          await builder.createPlugin(
            remote(version),
            await makeVolContext(join(work, `ctx-${version}`), plugind, version),
          );
          await builder.pushPlugin(remote(version));
        }
      } finally {
        await builder?.close();
        await builderClient.close();
      }
      embedded = await openTempEmbeddedStore('in-use');
    });

    after(async () => {
      await embedded?.cleanup();
      await registry?.stop();
      if (work !== undefined) await rm(work, { recursive: true, force: true });
    });

    function desired(version: string): DesiredPlugin {
      return {
        key: 'vol',
        name: 'vol:latest',
        remote: remote(version),
        enabled: true,
        privileges: [{ name: 'network', value: ['host'] }],
        settings: {},
        upgradePolicy: 'OnSpecChange',
        inUse: 'Wait',
        enableTimeoutSeconds: 30,
        suspend: false,
        dependsOn: [],
      };
    }

    async function pass(version: string) {
      const store = embedded.store;
      return reconcilePass(
        { desired: [desired(version)], prune: false, set: 'in-use-test', dryRun: false },
        {
          store,
          usage: store,
          inspector: createRemoteInspector(embedded.client, {
            acceptsDigests: store.acceptsDigestReferences(),
            description: store.describe(),
          }),
          stateDir: join(work, 'state'),
          logger,
        },
      );
    }

    it('knows nothing uses an enabled plugin, and upgrades it under inUse Wait', async () => {
      assert.ok(emptyInventory());
      const first = await pass('1.0');
      assert.equal(first.results?.[0]?.failure, undefined);
      const p = await embedded.store.inspect('vol:latest');
      assert.ok(p?.enabled);
      const usage = (await embedded.store.usage([p])).get(p.name);
      assert.ok(usage !== undefined);
      assert.equal(describeUsage(usage), 'nothing');
      const second = await pass('2.0');
      assert.equal(second.results?.[0]?.failure, undefined, JSON.stringify(second.results));
      const upgraded = await embedded.store.inspect('vol:latest');
      assert.equal(upgraded?.reference, remote('2.0'));
      assert.equal(upgraded?.enabled, true);
    });
  },
);
