/**
 * The Controller assembled in-process from real parts, without spawning `plugctl run`: the embedded
 * store on a temp root (plugins run with runc), the file source on a temp directory, the status file
 * sink, the engine-events and resync triggers, and a loopback registry (Debian's docker-registry)
 * holding a fixture plugin pushed by plugctl itself. Every check reads the world afterwards: what the
 * store has installed and what the status sink published.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { pino } from 'pino';
import { hostLabelsOf } from '../../controller/api/labels.ts';
import { createMetrics } from '../../controller/observe/metrics.ts';
import { Controller } from '../../controller/reconcile/controller.ts';
import { emptyInventory } from '../../controller/reconcile/inventory.ts';
import { InventoryLedger } from '../../controller/reconcile/ledger.ts';
import { FileStatusSink, readStatuses } from '../../controller/reconcile/status-file.ts';
import { phaseOf } from '../../controller/reconcile/status.ts';
import { RegistryClient } from '../../controller/registry/client.ts';
import { createRemoteInspector } from '../../controller/registry/inspect.ts';
import { EngineEventsTrigger } from '../../controller/sources/engine-events.ts';
import { FileSource } from '../../controller/sources/files.ts';
import { ResyncTrigger } from '../../controller/sources/resync.ts';
import { openEmbeddedStore } from '../../controller/store/embedded/store.ts';
import type { EmbeddedStore } from '../../controller/store/embedded/store.ts';
import type { InstalledPlugin } from '../../controller/store/store.ts';
import { openTempEmbeddedStore, type TempEmbeddedStore } from '../conformance/embedded.ts';
import { buildPlugind, makeVolContext } from '../conformance/fixtures.ts';
import { idleRuntime } from '../idle-runtime.ts';
import { startLoopbackRegistry } from '../unit/store/embedded/loopback-registry.ts';
import { describeWith, REGISTRY, RUNC } from '../prerequisites.ts';
import type { LoopbackRegistry } from '../unit/store/embedded/loopback-registry.ts';

const PORT = 5230;
const HOST = hostLabelsOf([{ 'kubernetes.io/hostname': 'test-host' }], {});

/** Polls `read` until `accept` holds or `timeoutMs` passes; returns the last value read. */
async function eventually<T>(
  what: string,
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await read();
  }
  return value;
}

describeWith(
  'Controller assembled in-process from real parts',
  { needs: [...REGISTRY, ...RUNC], concurrency: false },
  () => {
    const logger = pino({ level: process.env['PLUGCTL_TEST_LOG'] ?? 'silent' });
    let work: string;
    let registry: LoopbackRegistry;
    let remote: string;
    let embedded: TempEmbeddedStore;
    let docs: string;
    let state: string;
    let controller: Controller;

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'plugctl-controller-'));
      registry = await startLoopbackRegistry(PORT);
      remote = `${registry.host}/test/vol:1.0`;
      // The fixture is built and pushed by plugctl itself, from a scratch embedded store.
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
        await builder.createPlugin(remote, await makeVolContext(join(work, 'ctx'), plugind, '1.0'));
        await builder.pushPlugin(remote);
      } finally {
        await builder?.close();
        await builderClient.close();
      }

      embedded = await openTempEmbeddedStore('controller');
      docs = join(work, 'docs');
      state = join(work, 'state');
      await mkdir(docs);
      await writeDocument({ GREETING: 'hello' });
      const store = embedded.store;
      controller = new Controller({
        store,
        inspector: createRemoteInspector(embedded.client, {
          acceptsDigests: store.acceptsDigestReferences(),
          description: store.describe(),
        }),
        source: new FileSource({ paths: [docs], logger }),
        status: new FileStatusSink(state, 20),
        ledger: new InventoryLedger(state, emptyInventory()),
        triggers: [new EngineEventsTrigger(store, logger), new ResyncTrigger(600_000)],
        logger,
        metrics: createMetrics(),
        labels: { current: () => HOST },
        set: 'controller-test',
        workers: 2,
      });
      await controller.start();
    });

    after(async () => {
      await controller?.stop(10_000);
      await embedded?.cleanup();
      await registry?.stop();
      if (work !== undefined) await rm(work, { recursive: true, force: true });
    });

    async function writeDocument(env: Record<string, string>): Promise<void> {
      const text = [
        'apiVersion: plugctl.dev/v1alpha1',
        'kind: DockerPlugin',
        'metadata: { name: vol }',
        'spec:',
        `  remote: ${remote}`,
        '  alias: vol',
        '  privileges: [{ name: network, value: [host] }]',
        `  settings: { env: ${JSON.stringify(env)} }`,
        '',
      ].join('\n');
      // Written aside and renamed, as an editor or a checkout does.
      await writeFile(join(docs, '.vol.yaml.tmp'), text);
      await rename(join(docs, '.vol.yaml.tmp'), join(docs, 'vol.yaml'));
    }

    const installed = (): Promise<InstalledPlugin | undefined> => embedded.store.inspect('vol:latest');

    it('installs and enables the declared plugin, and publishes Ready', async () => {
      const plugin = await eventually('vol enabled', installed, (p) => p?.enabled === true);
      assert.equal(plugin?.reference, remote);
      assert.equal(plugin?.settings.env['GREETING'], 'hello');
      assert.equal(controller.ready(), true);
      const statuses = await eventually(
        'a Ready status in status.json',
        () => readStatuses(state),
        (s) => s['vol'] !== undefined && phaseOf(s['vol']) === 'ready',
      );
      assert.equal(statuses['vol']?.pluginID, plugin?.id);
    });

    it('reconfigures the plugin when its document changes', async () => {
      await writeDocument({ GREETING: 'bonjour' });
      const plugin = await eventually(
        'the new setting on an enabled plugin',
        installed,
        (p) => p?.enabled === true && p.settings.env['GREETING'] === 'bonjour',
      );
      assert.equal(plugin?.reference, remote);
    });

    it('enables the plugin again after someone disables it (engine event trigger)', async () => {
      await embedded.store.disable('vol:latest', true);
      await eventually('vol enabled again', installed, (p) => p?.enabled === true);
    });
  },
);
