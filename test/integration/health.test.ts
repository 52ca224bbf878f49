/**
 * Ready means the plugin answers, on both stores, with the Controller assembled in-process from real
 * parts: the docker store against the private dockerd of test/env (fixture plugins from its
 * registry), and the embedded store running the plugin under runc. The fixture's plugind stops
 * answering while the file /var/lib/plugind/hang exists in its rootfs (it removes the file when it
 * starts), which is how a test wedges a plugin. Every check reads the world: the status the sink
 * published, the plugin the store reports, the controller's metrics, the hang file.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { pino } from 'pino';
import { hostLabelsOf } from '../../controller/api/labels.ts';
import { createMetrics, type Metrics } from '../../controller/observe/metrics.ts';
import { Controller } from '../../controller/reconcile/controller.ts';
import { emptyInventory } from '../../controller/reconcile/inventory.ts';
import { InventoryLedger } from '../../controller/reconcile/ledger.ts';
import { FileStatusSink, readStatuses } from '../../controller/reconcile/status-file.ts';
import { phaseOf, type PluginStatus } from '../../controller/reconcile/status.ts';
import { RegistryClient } from '../../controller/registry/client.ts';
import { createRemoteInspector } from '../../controller/registry/inspect.ts';
import { EngineEventsTrigger } from '../../controller/sources/engine-events.ts';
import { FileSource } from '../../controller/sources/files.ts';
import { ResyncTrigger } from '../../controller/sources/resync.ts';
import { connectDockerStore, type DockerStore } from '../../controller/store/docker/store.ts';
import type { EmbeddedStore } from '../../controller/store/embedded/store.ts';
import { openEmbeddedStore } from '../../controller/store/embedded/store.ts';
import type { InstalledPlugin, Store } from '../../controller/store/store.ts';
import { openTempEmbeddedStore, type TempEmbeddedStore } from '../conformance/embedded.ts';
import { buildPlugind, makeVolContext } from '../conformance/fixtures.ts';
import { idleRuntime } from '../idle-runtime.ts';
import { describeWith, REGISTRY, RUNC } from '../prerequisites.ts';
import { startLoopbackRegistry, type LoopbackRegistry } from '../unit/store/embedded/loopback-registry.ts';
import { waitFor, type WaitOptions } from '../wait.ts';
import { describeIntegration, envScript, useEnv } from './harness.ts';

const HOST = hostLabelsOf([{ 'kubernetes.io/hostname': 'test-host' }], {});
const logger = pino({ level: process.env['PLUGCTL_TEST_LOG'] ?? 'silent' });
/** the first restart is immediate; the next waits a minute, so a test can see Unresponsive held */
const BACKOFF = { initialMs: 60_000, maxMs: 60_000, resetAfterMs: 600_000 };

/** A running controller over `store` for one document `vol`, and what a test reads of it. */
interface Harness {
  controller: Controller;
  metrics: Metrics;
  state: string;
  work: string;
  status(): Promise<PluginStatus | undefined>;
}

async function startController(store: Store, client: RegistryClient, remote: string): Promise<Harness> {
  const work = await mkdtemp(join(tmpdir(), 'plugctl-health-'));
  const docs = join(work, 'docs');
  const state = join(work, 'state');
  await mkdir(docs);
  const text = [
    'apiVersion: plugctl.dev/v1alpha1',
    'kind: DockerPlugin',
    'metadata: { name: vol }',
    'spec:',
    `  remote: ${remote}`,
    '  alias: vol',
    '  privileges: [{ name: network, value: [host] }]',
    '  healthCheck: { periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 2 }',
    '',
  ].join('\n');
  await writeFile(join(docs, '.vol.tmp'), text);
  await rename(join(docs, '.vol.tmp'), join(docs, 'vol.yaml'));
  const metrics = createMetrics();
  const controller = new Controller({
    store,
    inspector: createRemoteInspector(client, {
      acceptsDigests: store.acceptsDigestReferences(),
      description: store.describe(),
    }),
    source: new FileSource({ paths: [docs], logger }),
    status: new FileStatusSink(state, 20),
    ledger: new InventoryLedger(state, emptyInventory()),
    triggers: [new EngineEventsTrigger(store, logger), new ResyncTrigger(600_000)],
    logger,
    metrics,
    labels: { current: () => HOST },
    set: 'health-test',
    workers: 2,
    prober: store,
    usage: store,
    restartBackoff: BACKOFF,
  });
  await controller.start();
  return {
    controller,
    metrics,
    state,
    work,
    status: async () => (await readStatuses(state))['vol'],
  };
}

async function counter(metric: Metrics['restarts']): Promise<number> {
  return (await metric.get()).values.find((v) => v.labels['plugin'] === 'vol')?.value ?? 0;
}

/** Waits until `accept` holds for what `read` returns, and returns that value. */
async function until<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  options: WaitOptions,
): Promise<T> {
  const found = await waitFor(async () => {
    const value = await read();
    return accept(value) ? { value } : undefined;
  }, options);
  return found.value;
}

const ready = (s: PluginStatus | undefined): boolean => s !== undefined && phaseOf(s) === 'ready';

/**
 * The checks both stores must pass. `plugin()` reads the plugin from the store; `rootfs(id)` is
 * the host path of its rootfs, where the hang file goes.
 */
function healthChecks(
  get: () => Harness,
  plugin: () => Promise<InstalledPlugin | undefined>,
  rootfs: (id: string) => string,
): void {
  const hangFile = async (): Promise<string> => {
    const p = await plugin();
    assert.ok(p !== undefined);
    return join(rootfs(p.id), 'var/lib/plugind/hang');
  };

  it('is Ready once the enabled plugin answers Plugin.Activate', async () => {
    const h = get();
    await until(h.status, ready, { what: 'vol Ready', timeoutMs: 60_000 });
    const p = await plugin();
    assert.equal(p?.enabled, true);
    assert.equal(await counter(h.metrics.probeFailures), 0);
  });

  it('restarts a plugin that stops answering, and it is Ready again', async () => {
    const h = get();
    const hang = await hangFile();
    await writeFile(hang, '');
    // plugind removes the hang file when it starts: gone means the plugin was restarted
    await until(
      async () => existsSync(hang),
      (present) => !present,
      {
        what: 'the unresponsive plugin restarted',
        timeoutMs: 30_000,
      },
    );
    assert.equal(await counter(h.metrics.restarts), 1);
    assert.ok((await counter(h.metrics.probeFailures)) >= 2, 'failureThreshold probes failed first');
    await until(plugin, (p) => p?.enabled === true, { what: 'vol enabled again after the restart' });
    await until(h.status, ready, { what: 'vol Ready again after the restart' });
  });

  it('says Unresponsive with the last error while the backoff holds the next restart', async () => {
    const h = get();
    const hang = await hangFile();
    await writeFile(hang, '');
    // wait for the state after failureThreshold failed checks, when the backoff holds the restart
    // (a check failing right after the previous restart already says Unresponsive, without it)
    const status = await until(
      h.status,
      (s) =>
        s?.conditions.some((c) => c.reason === 'Unresponsive' && /next restart in/.test(c.message)) === true,
      { what: 'an Unresponsive condition with the restart held back', timeoutMs: 30_000 },
    );
    const readyCondition = status?.conditions.find((c) => c.type === 'Ready');
    assert.equal(readyCondition?.status, 'False');
    assert.match(
      readyCondition?.message ?? '',
      /does not answer Plugin\.Activate: .*no answer within 1000 ms/,
    );
    assert.match(readyCondition?.message ?? '', /next restart in \d+ s/);
    assert.equal(status?.lastError?.code, 'PLUGIN_UNRESPONSIVE');
    assert.equal(await counter(h.metrics.restarts), 1, 'the backoff held the second restart');
    await rm(hang, { force: true });
    await until(h.status, ready, { what: 'vol Ready once it answers again' });
  });
}

describeIntegration('health probe: docker store', () => {
  const env = useEnv();
  let store: DockerStore;
  let client: RegistryClient;
  let h: Harness | undefined;

  before(async () => {
    store = await connectDockerStore({ host: env().dockerHost });
    client = new RegistryClient({ credentials: async () => undefined });
    h = await startController(store, client, `${env().registry}/test/vol:1.0`);
  });

  after(async () => {
    await h?.controller.stop(10_000);
    await store?.close();
    await client?.close();
    if (h !== undefined) await rm(h.work, { recursive: true, force: true });
  });

  const plugin = () => store.inspect('vol:latest');
  healthChecks(
    () => h!,
    plugin,
    (id) => join(env().dir, 'root', 'plugins', id, 'rootfs'),
  );

  it('probes the socket dockerd made under /run/docker/plugins/<id>/', async () => {
    const p = await plugin();
    assert.ok(p !== undefined);
    assert.ok(existsSync(join('/run/docker/plugins', p.id, 'plugind.sock')));
  });

  it('enables again a plugin the engine left disabled after a daemon restart', async () => {
    const p = await plugin();
    assert.ok(p !== undefined);
    await envScript('stop-dockerd');
    // What dockerd records when a plugin failed to come back at start-up (moby#36639).
    const file = join(env().dir, 'root', 'plugins', p.id, 'config.json');
    const json = JSON.parse(await readFile(file, 'utf8')) as { Enabled?: boolean };
    json.Enabled = false;
    await writeFile(file, JSON.stringify(json));
    await envScript('start-dockerd');
    await until(plugin, (q) => q?.enabled === true, {
      what: 'the plugin enabled again by the controller',
      timeoutMs: 60_000,
    });
    await until(h!.status, ready, { what: 'vol Ready after the daemon restart', timeoutMs: 30_000 });
  });
});

describeWith(
  'health probe: embedded store (runc)',
  { needs: [...REGISTRY, ...RUNC], concurrency: false },
  () => {
    const PORT = 5231;
    let work: string;
    let registry: LoopbackRegistry;
    let embedded: TempEmbeddedStore;
    let h: Harness | undefined;

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'plugctl-health-embedded-'));
      registry = await startLoopbackRegistry(PORT);
      const remote = `${registry.host}/test/vol:1.0`;
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
      embedded = await openTempEmbeddedStore('health');
      h = await startController(embedded.store, embedded.client, remote);
    });

    after(async () => {
      await h?.controller.stop(10_000);
      await embedded?.cleanup();
      await registry?.stop();
      if (h !== undefined) await rm(h.work, { recursive: true, force: true });
      if (work !== undefined) await rm(work, { recursive: true, force: true });
    });

    healthChecks(
      () => h!,
      () => embedded.store.inspect('vol:latest'),
      (id) => join(embedded.root, id, 'rootfs'),
    );
  },
);
