/**
 * In-process leak check of `plugctl run`'s reconcile path, without dockerd: the real Controller
 * (planner, executor, ledger, status file, file source, health monitor, metrics) over an in-memory
 * store whose plugins answer Plugin.Activate on real unix sockets through store/activate.ts. A
 * plugin is disabled behind the controller's back and its engine event delivered, as bench/soak.ts
 * does with dockerd, until the controller has enabled it again. The heap is read after a forced GC
 * before and after, so garbage not yet collected (which prom-client's nodejs_heap_size_used_bytes
 * includes) does not count: only what the process retains.
 *
 * Usage: node --expose-gc bench/leak-check.ts [--plugins 50] [--disables 3000] [--period 1] [--gap 0]
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createMetrics } from '../controller/observe/metrics.ts';
import type { RemoteInspector } from '../controller/registry/inspect.ts';
import { Controller } from '../controller/reconcile/controller.ts';
import { readInventory } from '../controller/reconcile/inventory.ts';
import { InventoryLedger } from '../controller/reconcile/ledger.ts';
import { FileStatusSink } from '../controller/reconcile/status-file.ts';
import { FileSource } from '../controller/sources/files.ts';
import type { Trigger, TriggerTarget } from '../controller/sources/trigger.ts';
import { activate } from '../controller/store/activate.ts';
import type {
  InstalledPlugin,
  PluginProber,
  PluginReader,
  PluginUsage,
  PluginUsageReader,
  PluginWriter,
  PullOptions,
} from '../controller/store/store.ts';

const { values } = parseArgs({
  options: {
    plugins: { type: 'string', default: '50' },
    disables: { type: 'string', default: '3000' },
    period: { type: 'string', default: '1' },
    gap: { type: 'string', default: '0' },
  },
});
const count = Number(values.plugins);
const disables = Number(values.disables);
const gapMs = Number(values.gap);
const collect = (globalThis as { gc?: () => void }).gc;
if (collect === undefined) throw new Error('run with node --expose-gc');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
function retainedMb(): number {
  collect!();
  collect!();
  return Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 100) / 100;
}

const work = await mkdtemp(join(tmpdir(), 'plugctl-leak-'));
const docs = join(work, 'docs');
const sockets = join(work, 'sockets');
await mkdir(docs);
await mkdir(sockets);
const names = Array.from({ length: count }, (_, i) => `soak-${i}`);
await writeFile(
  join(docs, 'soak.yaml'),
  names
    .map(
      (name) =>
        `apiVersion: plugctl.dev/v1alpha1\nkind: DockerPlugin\nmetadata: { name: ${name} }\nspec:\n` +
        `  remote: docker.io/acme/vol:1.0\n  alias: ${name}\n  privileges: [{ name: network, value: [host] }]\n` +
        `  healthCheck: { periodSeconds: ${values.period} }\n`,
    )
    .join('---\n'),
);

/** The host: plugins by name, and the responder of each enabled one. */
const plugins = new Map<string, InstalledPlugin>();
const responders = new Map<string, Server>();
const socketOf = (name: string): string => join(sockets, `${name.replace(/[:/]/g, '_')}.sock`);
const ANSWER = 'HTTP/1.1 200 OK\r\nContent-Length: 31\r\n\r\n{"Implements":["VolumeDriver"]}';
async function up(name: string): Promise<void> {
  if (responders.has(name)) return;
  await rm(socketOf(name), { force: true });
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('data', () => socket.end(ANSWER));
  });
  responders.set(name, server);
  await new Promise<void>((resolve) => server.listen(socketOf(name), resolve));
}
function down(name: string): void {
  responders.get(name)?.close();
  responders.delete(name);
}
function plugin(name: string): InstalledPlugin {
  const found = plugins.get(name);
  if (found === undefined) throw new Error(`no plugin ${name}`);
  return found;
}

const store: PluginReader & PluginWriter & PluginProber & PluginUsageReader = {
  describe: () => 'in-memory',
  acceptsDigestReferences: () => true,
  list: async () => [...plugins.values()].map((p) => ({ ...p })),
  inspect: async (nameOrId) => {
    const found = plugins.get(nameOrId) ?? [...plugins.values()].find((p) => p.id === nameOrId);
    return found === undefined ? undefined : { ...found };
  },
  engineLabels: async () => ({}),
  pull: async (name: string, options: PullOptions) => {
    plugins.set(name, {
      id: createHash('sha256').update(name).digest('hex'),
      name,
      reference: options.remote,
      enabled: false,
      inUse: false,
      capabilities: ['volumedriver'],
      diffIds: [`sha256:${'b'.repeat(64)}`],
      privileges: options.privileges,
      settings: { env: {}, args: [], mounts: {}, devices: {} },
      defaults: { env: {}, args: { name: 'args', value: [], settable: false }, mounts: {}, devices: {} },
      socket: 'p.sock',
    });
  },
  create: async () => undefined,
  upgrade: async () => undefined,
  set: async () => undefined,
  enable: async (name) => {
    plugin(name).enabled = true;
    await up(name);
  },
  disable: async (name) => {
    plugin(name).enabled = false;
    down(name);
  },
  remove: async (name) => {
    down(name);
    plugins.delete(name);
  },
  activate: async (p, timeoutMs) => {
    await activate(socketOf(p.name), timeoutMs);
  },
  usage: async (ps) =>
    new Map<string, PluginUsage>(
      ps.map((p) => [p.name, { volumes: [], networks: [], logContainers: [], complete: true }]),
    ),
  invalidateUsage: () => undefined,
};
const inspector: RemoteInspector = {
  inspect: async (remote) => ({
    remote,
    pullRemote: remote,
    digest: `sha256:${'d'.repeat(64)}`,
    privileges: [{ name: 'network', description: '', value: ['host'] }],
    diffIds: [`sha256:${'b'.repeat(64)}`],
  }),
};
let target: TriggerTarget | undefined;
const events: Trigger = {
  start: (t) => {
    target = t;
  },
  stop: async () => undefined,
};
const state = join(work, 'state');
const logger = pino({ level: 'silent' });
const controller = new Controller({
  store,
  inspector,
  source: new FileSource({ paths: [docs], logger }),
  status: new FileStatusSink(state),
  ledger: new InventoryLedger(state, await readInventory(state)),
  triggers: [events],
  logger,
  metrics: createMetrics(),
  labels: { current: () => ({ effective: {}, persistent: {} }) },
  set: `files:${docs}`,
  workers: 4,
  prober: store,
  usage: store,
});

try {
  await controller.start();
  const enabled = (): number => [...plugins.values()].filter((p) => p.enabled).length;
  while (enabled() < count) await sleep(20);
  await sleep(200);
  const before = retainedMb();
  const started = Date.now();
  for (let i = 0; i < disables; i++) {
    const victim = plugin(`${names[Math.floor(Math.random() * count)]!}:latest`);
    victim.enabled = false;
    down(victim.name);
    target!.pluginChanged({ action: 'disable', id: victim.id, name: victim.name });
    const t0 = Date.now();
    while (!victim.enabled) {
      if (Date.now() - t0 > 10_000) throw new Error(`${victim.name} was not enabled again`);
      await sleep(1);
    }
    if (gapMs > 0) await sleep(gapMs);
    if ((i + 1) % 1000 === 0) console.log(`${i + 1} disables healed: retained heap ${retainedMb()} MB`);
  }
  const after = retainedMb();
  console.log(
    `${disables} disables of ${count} plugins healed in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
      `retained heap ${before} MB -> ${after} MB`,
  );
} finally {
  await controller.stop(1000);
  for (const name of responders.keys()) down(name);
  await rm(work, { recursive: true, force: true });
}
