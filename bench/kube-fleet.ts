/**
 * The fleet leader at scale, by simulation against the one real API server (test/env/kube-env.sh):
 * N simulated nodes (Node objects, heartbeat Leases renewed every 10 s as agents renew them, and a
 * DockerPluginNode each, written with server-side apply as agents write them) and P DockerPlugins
 * selecting all of them; the leader (`startFleetLeader`) runs in its own process
 * (test/kube/fleet-driver.ts) so its requests, watch bytes and RSS are its own.
 *
 * Per fleet size it measures: the time from the leader's start to every summary at N/N; the leader's
 * requests and watch bytes per minute at steady state (heartbeats only); a rollout (every plugin's
 * generation bumped, then every node reports it): the time from the last report to every summary Ready,
 * the leader's status writes and their rate per plugin; the simulated agents' status writes per node
 * per change; the leader's RSS. It prints how each grows from the smallest fleet to the largest.
 *
 *   flock /tmp/plugctl-itest.lock node bench/kube-fleet.ts [--nodes 100,500] [--plugins 10] [--idle-seconds 30]
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { serverSideApply } from '../controller/kube/apply.ts';
import type { KubeClient } from '../controller/kube/client.ts';
import { hasStatus } from '../controller/kube/errors.ts';
import { NodeHeartbeat, heartbeatLeaseName } from '../controller/kube/heartbeat.ts';
import {
  DOCKER_PLUGINS,
  DOCKER_PLUGIN_NODES,
  LEASES,
  NODES,
  collectionPath,
  objectPath,
} from '../controller/kube/resources.ts';
import type { KubeList, KubeObject } from '../controller/kube/resources.ts';
import { systemClock } from '../controller/runtime/clock.ts';
import { installCrds, openClient, startKube, stopKube, testLogger } from '../test/kube/harness.ts';

const DRIVER = fileURLToPath(new URL('../test/kube/fleet-driver.ts', import.meta.url));
const NS = 'plugctl-system';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100,500' },
    plugins: { type: 'string', default: '10' },
    'idle-seconds': { type: 'string', default: '30' },
  },
});
const SIZES = (values.nodes ?? '100,500').split(',').map(Number);
const PLUGINS = Number(values.plugins);
const IDLE_MS = Number(values['idle-seconds']) * 1000;

interface DriverStats {
  stats: { statusWrites: number; recomputes: number; failures: number };
  requests: number;
  streamBytes: number;
  rssMB: number;
}

interface Row {
  nodes: number;
  startupMs: number;
  idleRequestsPerMin: number;
  idleWatchKBPerMin: number;
  rolloutSettleMs: number;
  rolloutWrites: number;
  writesPerPluginPerSec: number;
  agentWritesPerNodePerChange: number;
  leaderRssMB: number;
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function entries(names: string[], generation: number) {
  return names.map((name) => ({
    name,
    observedGeneration: generation,
    enabled: true,
    conditions: [{ type: 'Ready', status: 'True', reason: 'Converged', lastTransitionTime: now() }],
  }));
}

async function writeReport(
  client: KubeClient,
  node: string,
  plugins: string[],
  generation: number,
): Promise<void> {
  await serverSideApply(
    client,
    DOCKER_PLUGIN_NODES,
    {
      metadata: { name: node },
      status: { declared: plugins.length, ready: plugins.length, plugins: entries(plugins, generation) },
    },
    { fieldManager: `plugctl-agent/${node}`, subresource: 'status', force: true },
  );
}

async function allReady(
  client: KubeClient,
  plugins: string[],
  nodes: number,
  generation: number,
): Promise<boolean> {
  const list = await client.request<
    KubeList<KubeObject & { status?: { ready?: string; observedGeneration?: number } }>
  >({
    method: 'GET',
    path: collectionPath(DOCKER_PLUGINS),
  });
  const wanted = new Set(plugins);
  const ready = list.items.filter(
    (p) =>
      wanted.has(p.metadata.name) &&
      p.status?.ready === `${nodes}/${nodes}` &&
      p.status.observedGeneration === generation,
  );
  return ready.length === plugins.length;
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function statsOf(child: ChildProcess, lines: AsyncIterator<string>): Promise<DriverStats> {
  child.kill('SIGUSR2');
  return (async () => {
    for (;;) {
      const next = await lines.next();
      if (next.done === true) throw new Error('the leader exited');
      const message = JSON.parse(next.value) as Partial<DriverStats>;
      if (message.stats !== undefined) return message as DriverStats;
    }
  })();
}

async function simulate(client: KubeClient, kubeconfig: string, n: number): Promise<Row> {
  const tag = `f${n}`;
  const nodes = Array.from({ length: n }, (_, i) => `${tag}-node-${i}`);
  const plugins = Array.from({ length: PLUGINS }, (_, i) => `${tag}-plugin-${i}`);
  for (const name of plugins)
    await client.request({
      method: 'POST',
      path: collectionPath(DOCKER_PLUGINS),
      body: {
        apiVersion: 'plugctl.dev/v1alpha1',
        kind: 'DockerPlugin',
        metadata: { name },
        spec: { remote: 'vieux/sshfs:1.2', nodeSelector: { matchLabels: { fleet: tag } } },
      },
    });
  await pool(nodes, 8, async (node) => {
    await client.request({
      method: 'POST',
      path: collectionPath(NODES),
      body: { apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { fleet: tag } } },
    });
    await serverSideApply(
      client,
      DOCKER_PLUGIN_NODES,
      { metadata: { name: node } },
      { fieldManager: `plugctl-agent/${node}` },
    );
    await writeReport(client, node, plugins, 1);
  });
  // the agents' heartbeats, as every agent renews its own
  const beating = new AbortController();
  const beats = nodes.map((node) =>
    new NodeHeartbeat({ client, namespace: NS, node, clock: systemClock, logger: testLogger() }).run(
      beating.signal,
    ),
  );

  const started = Date.now();
  const leader = spawn(
    process.execPath,
    [
      '--expose-gc',
      DRIVER,
      JSON.stringify({
        kubeconfig,
        identity: `${tag}-leader`,
        namespace: NS,
        leaseName: `fleet-${tag}`,
        retryPeriodMs: 500,
      }),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: leader.stdout! })[Symbol.asyncIterator]();
  try {
    await until(() => allReady(client, plugins, n, 1), 300_000, `${n}/${n} at generation 1`);
    const startupMs = Date.now() - started;

    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const idleFrom = await statsOf(leader, lines);
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const idleTo = await statsOf(leader, lines);
    const perMin = 60_000 / IDLE_MS;

    // a rollout: every plugin's generation moves to 2, then every node reports it
    for (const name of plugins)
      await client.request({
        method: 'PATCH',
        path: objectPath(DOCKER_PLUGINS, name),
        contentType: 'application/merge-patch+json',
        body: { spec: { enabled: false } },
      });
    const rolloutStart = Date.now();
    let agentWrites = 0;
    await pool(nodes, 8, async (node) => {
      await writeReport(client, node, plugins, 2);
      agentWrites++;
    });
    const lastReport = Date.now();
    await until(() => allReady(client, plugins, n, 2), 300_000, `${n}/${n} at generation 2`);
    const settled = Date.now();
    const after = await statsOf(leader, lines);
    const rolloutWrites = after.stats.statusWrites - idleTo.stats.statusWrites;
    const rolloutSeconds = Math.max(1, (settled - rolloutStart) / 1000);
    return {
      nodes: n,
      startupMs,
      idleRequestsPerMin: Math.round((idleTo.requests - idleFrom.requests) * perMin),
      idleWatchKBPerMin: Math.round(((idleTo.streamBytes - idleFrom.streamBytes) * perMin) / 1024),
      rolloutSettleMs: settled - lastReport,
      rolloutWrites,
      writesPerPluginPerSec: +(rolloutWrites / PLUGINS / rolloutSeconds).toFixed(2),
      agentWritesPerNodePerChange: agentWrites / n,
      leaderRssMB: after.rssMB,
    };
  } finally {
    leader.kill('SIGTERM');
    await new Promise((resolve) => leader.once('exit', resolve));
    beating.abort();
    await Promise.all(beats);
    for (const name of plugins)
      await client
        .request({ method: 'DELETE', path: objectPath(DOCKER_PLUGINS, name) })
        .catch(() => undefined);
    // the next fleet size starts from a clean cluster: no Nodes, reports or heartbeats of this one
    await pool(nodes, 8, async (node) => {
      for (const path of [
        objectPath(NODES, node),
        objectPath(DOCKER_PLUGIN_NODES, node),
        objectPath(LEASES, heartbeatLeaseName(node), NS),
      ])
        await client.request({ method: 'DELETE', path }).catch(() => undefined);
    });
    // the DockerPlugins carry the leader's finalizer; drop it so they go
    for (const name of plugins)
      await client
        .request({
          method: 'PATCH',
          path: objectPath(DOCKER_PLUGINS, name),
          contentType: 'application/merge-patch+json',
          body: { metadata: { finalizers: null } },
        })
        .catch((error: unknown) => {
          if (!hasStatus(error, 404)) throw error;
        });
  }
}

const env = await startKube();
try {
  await installCrds();
  const client = await openClient();
  await client
    .request({
      method: 'POST',
      path: '/api/v1/namespaces',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
    })
    .catch((error: unknown) => {
      if (!hasStatus(error, 409)) throw error;
    });
  const rows: Row[] = [];
  for (const n of SIZES) {
    const row = await simulate(client, env.kubeconfig, n);
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  await client.close();
  console.log(`\nfleet leader, ${PLUGINS} DockerPlugins, simulated nodes (heartbeat every 10 s):`);
  console.table(rows);
  const [first, last] = [rows[0], rows[rows.length - 1]];
  if (first !== undefined && last !== undefined && last !== first) {
    const growth = (key: keyof Row) =>
      `${((last[key] as number) / Math.max(1e-9, first[key] as number)).toFixed(2)}x`;
    console.log(
      `growth from ${first.nodes} to ${last.nodes} nodes (${(last.nodes / first.nodes).toFixed(1)}x):`,
    );
    for (const key of [
      'startupMs',
      'idleRequestsPerMin',
      'idleWatchKBPerMin',
      'rolloutSettleMs',
      'rolloutWrites',
      'writesPerPluginPerSec',
      'agentWritesPerNodePerChange',
      'leaderRssMB',
    ] as const)
      console.log(`  ${key}: ${growth(key)}`);
  }
} finally {
  await stopKube();
}
