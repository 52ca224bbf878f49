/**
 * 200 DockerPlugins and 3 real agents (issue 13, "Benchmarks"): a real kube-apiserver
 * (test/env/kube-env.sh) with the CRDs, three real `plugctl run --kube` processes (bin/plugctl.js),
 * each a node of its own, and DockerPlugins applied with kubectl. Every DockerPlugin selects all three
 * nodes, so each agent pulls, installs, enables and health-probes every one of them.
 *
 * All three agents use the embedded store (plugins run by runc), each with its own root and state
 * directory, and each in a mount namespace of its own (`unshare --mount`) where /run/plugctl (runc's
 * state) and /run/docker/plugins (plugin sockets, discovery links) are its own directories: on one
 * machine three agents must not share them, as three nodes would not. dockerd is not used: one dockerd
 * enabling 200 plugins costs minutes here (it sleeps 500 ms per enable and starts a shim for each).
 * The plugin is a tiny fixture: the static plugind of test/env/plugind.c alone in its rootfs (no
 * busybox), answering Plugin.Activate, pulled from a loopback registry where plugctl pushed it.
 *
 * Measured, at `--first` DockerPlugins and then at `--plugins`:
 * - time from `kubectl apply` to every node reporting every plugin Ready (the DockerPluginNodes'
 *   status.ready), and to `kubectl wait --for=condition=Ready dockerplugin --all` returning (the fleet
 *   leader's summaries);
 * - API requests per agent per minute and watch bytes per minute at steady state (the agents'
 *   /metrics: plugctl_kube_requests_total, plugctl_kube_watch_bytes_total), over `--idle-seconds`;
 * - each agent's RSS (VmRSS) at the end of the idle window.
 *
 *   flock /tmp/plugctl-itest.lock node bench/kube-agents.ts [--plugins 200] [--first 50] [--idle-seconds 60]
 *
 * Needs root, runc, gcc, unshare, docker-registry and the kube environment. Everything it starts is
 * stopped by PID; the plugins' runc containers are deleted through each agent's own runc root.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { pino } from 'pino';
import {
  DOCKER_PLUGIN_NODES,
  LEASES,
  NODES,
  collectionPath,
  objectPath,
} from '../controller/kube/resources.ts';
import type { KubeObject } from '../controller/kube/resources.ts';
import { RegistryClient } from '../controller/registry/client.ts';
import { openEmbeddedStore } from '../controller/store/embedded/store.ts';
import { buildPlugind, volConfig } from '../test/conformance/fixtures.ts';
import { idleRuntime } from '../test/idle-runtime.ts';
import { currentKube, installCrds, kubectl, startKube, stopKube } from '../test/kube/harness.ts';
import { startLoopbackRegistry } from '../test/unit/store/embedded/loopback-registry.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE_NAMES = ['bench-a', 'bench-b', 'bench-c'];
const NAMESPACE = 'default';
const REGISTRY_PORT = 5241;

const { values } = parseArgs({
  options: {
    plugins: { type: 'string', default: '200' },
    first: { type: 'string', default: '50' },
    'idle-seconds': { type: 'string', default: '60' },
    'timeout-seconds': { type: 'string', default: '240' },
  },
});
const PLUGINS = Number(values.plugins);
const FIRST = Math.min(Number(values.first), PLUGINS);
const IDLE_MS = Number(values['idle-seconds']) * 1000;
const TIMEOUT_MS = Number(values['timeout-seconds']) * 1000;

interface Agent {
  node: string;
  dir: string;
  child: ChildProcess;
  address: string;
  exited: Promise<void>;
  tail: string[];
}

interface Sample {
  requests: number;
  watchBytes: number;
  rssMB: number;
  at: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A build context of the tiny fixture: config.json and a rootfs holding only the static plugind. */
async function tinyContext(dir: string, plugind: string): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  for (const sub of ['bin', 'run/docker/plugins', 'tmp', 'proc', 'dev', 'sys', 'etc', 'var/lib/plugind'])
    await mkdir(join(rootfs, sub), { recursive: true });
  await copyFile(plugind, join(rootfs, 'bin/plugind'));
  await chmod(join(rootfs, 'bin/plugind'), 0o755);
  await writeFile(join(rootfs, 'etc/hosts'), '');
  await writeFile(join(rootfs, 'etc/resolv.conf'), '');
  await writeFile(join(dir, 'config.json'), JSON.stringify(volConfig('bench')));
  return dir;
}

/** Builds the fixture with plugctl's embedded store and pushes it to the loopback registry. */
async function pushFixture(work: string, remote: string): Promise<void> {
  const plugind = await buildPlugind(join(work, 'plugind'));
  const client = new RegistryClient({ credentials: async () => undefined });
  const builder = await openEmbeddedStore({
    root: join(work, 'builder'),
    runtime: idleRuntime,
    registry: client,
    logger: pino({ level: 'silent' }),
    runDir: join(work, 'builder-run'),
  });
  try {
    await builder.createPlugin(remote, await tinyContext(join(work, 'ctx'), plugind));
    await builder.pushPlugin(remote);
  } finally {
    await builder.close();
    await client.close();
  }
}

/** One agent: `plugctl run --kube` on the embedded store, in a mount namespace of its own. */
async function startAgent(node: string, work: string, kubeconfig: string): Promise<Agent> {
  const dir = await mkdtemp(join(work, `agent-${node}-`));
  for (const sub of ['run-plugctl', 'plugins']) await mkdir(join(dir, sub));
  // the mount points must exist on the host; inside the namespace they are the agent's directories
  for (const point of ['/run/plugctl', '/run/docker/plugins']) await mkdir(point, { recursive: true });
  const script =
    'mount --bind "$1" /run/plugctl && mount --bind "$2" /run/docker/plugins && shift 2 && exec "$@"';
  const child = spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      script,
      'sh',
      join(dir, 'run-plugctl'),
      join(dir, 'plugins'),
      process.execPath,
      join(ROOT, 'bin/plugctl.js'),
      '--store',
      'embedded',
      '--root',
      join(dir, 'root'),
      '--state-dir',
      join(dir, 'state'),
      '--log-level',
      'info',
      'run',
      '--kube',
      '--kubeconfig',
      kubeconfig,
      '--node-name',
      node,
      '--namespace',
      NAMESPACE,
      '--listen',
      '127.0.0.1:0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const agent: Agent = {
    node,
    dir,
    child,
    address: '',
    tail: [],
    exited: new Promise((resolve) => child.once('exit', () => resolve())),
  };
  let buffer = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      const listen = /"listen":"([^"]+)"/.exec(line);
      if (listen) agent.address = listen[1]!;
      if (/"level":(40|50|60)/.test(line)) agent.tail = [...agent.tail.slice(-9), line];
    }
  });
  return agent;
}

async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 250,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

async function sample(agent: Agent): Promise<Sample> {
  const text = await (await fetch(`http://${agent.address}/metrics`)).text();
  const metric = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const status = await readFile(`/proc/${agent.child.pid}/status`, 'utf8');
  const rssKB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  return {
    requests: metric('plugctl_kube_requests_total'),
    watchBytes: metric('plugctl_kube_watch_bytes_total'),
    rssMB: rssKB / 1024,
    at: performance.now(),
  };
}

function documents(count: number, remote: string): string {
  const docs = [];
  for (let i = 0; i < count; i++) {
    const name = `bench-${String(i).padStart(3, '0')}`;
    docs.push(
      JSON.stringify({
        apiVersion: 'plugctl.dev/v1alpha1',
        kind: 'DockerPlugin',
        metadata: { name },
        spec: {
          remote,
          alias: name,
          privileges: [{ name: 'network', value: ['host'] }],
          nodeSelector: { matchLabels: { bench: 'agents' } },
        },
      }),
    );
  }
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs.map((d) => JSON.parse(d) as unknown) });
}

interface ApplyTimes {
  plugins: number;
  nodesReadyS: number;
  fleetReadyS: number;
}

/** kubectl apply of `count` DockerPlugins; seconds until every node reports them Ready, and the fleet. */
async function applyAndWait(
  count: number,
  remote: string,
  work: string,
  readyCount: () => Promise<number[]>,
): Promise<ApplyTimes> {
  const file = join(work, `plugins-${count}.json`);
  await writeFile(file, documents(count, remote));
  const started = performance.now();
  await kubectl(['apply', '-f', file]);
  // not the harness's kubectl(): it allows a command 60 s
  const kube = currentKube();
  const fleet = run(
    kube.kubectl,
    ['wait', '--for=condition=Ready', 'dockerplugin', '--all', `--timeout=${TIMEOUT_MS / 1000}s`],
    { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: kube.home, KUBECONFIG: kube.kubeconfig } },
  ).then(() => performance.now());
  let last = '';
  await until(
    `${count} plugins Ready on every node`,
    async () => {
      const counts = await readyCount();
      const now = counts.join('/');
      if (now !== last) {
        last = now;
        process.stderr.write(`  ${((performance.now() - started) / 1000).toFixed(1)} s: ready ${now}\n`);
      }
      return counts.every((c) => c >= count);
    },
    TIMEOUT_MS,
    500,
  );
  const nodesAt = performance.now();
  const fleetAt = await fleet;
  return {
    plugins: count,
    nodesReadyS: (nodesAt - started) / 1000,
    fleetReadyS: (fleetAt - started) / 1000,
  };
}

interface IdleRow {
  plugins: number;
  node: string;
  leader: boolean;
  requestsPerMin: number;
  watchKBPerMin: number;
  rssMB: number;
}

async function idle(
  agents: Agent[],
  plugins: number,
  leader: () => Promise<string | undefined>,
): Promise<IdleRow[]> {
  await sleep(10_000); // let the last status writes and summaries settle
  const before = await Promise.all(agents.map(sample));
  await sleep(IDLE_MS);
  const after = await Promise.all(agents.map(sample));
  const holder = await leader();
  return agents.map((agent, i) => {
    const a = before[i]!;
    const b = after[i]!;
    const minutes = (b.at - a.at) / 60_000;
    return {
      plugins,
      node: agent.node,
      leader: agent.node === holder,
      requestsPerMin: Math.round((b.requests - a.requests) / minutes),
      watchKBPerMin: Math.round((b.watchBytes - a.watchBytes) / 1024 / minutes),
      rssMB: Math.round(b.rssMB),
    };
  });
}

/** Deletes the runc containers an agent left running (agents leave plugins running when they stop). */
async function cleanupContainers(agent: Agent): Promise<number> {
  const rootDir = join(agent.dir, 'run-plugctl', 'runc');
  const listed = await run('runc', ['--root', rootDir, 'list', '-q']).catch(() => ({ stdout: '' }));
  const ids = listed.stdout.split('\n').filter(Boolean);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        await run('runc', ['--root', rootDir, 'delete', '--force', id]).catch(() => undefined);
      }
    }),
  );
  return ids.length;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'plugctl-kube-agents-'));
  const agents: Agent[] = [];
  let registry: Awaited<ReturnType<typeof startLoopbackRegistry>> | undefined;
  let kubeStarted = false;
  try {
    const kube = await startKube();
    kubeStarted = true;
    await installCrds();
    registry = await startLoopbackRegistry(REGISTRY_PORT);
    const remote = `${registry.host}/bench/tiny:1.0`;
    await pushFixture(work, remote);
    for (const node of NODE_NAMES)
      await kube.client.request({
        method: 'POST',
        path: collectionPath(NODES),
        body: { apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { bench: 'agents' } } },
      });
    for (const node of NODE_NAMES) agents.push(await startAgent(node, work, kube.kubeconfig));
    await until(
      'every agent ready',
      async () => {
        for (const agent of agents) {
          if (agent.address === '') return false;
          const response = await fetch(`http://${agent.address}/readyz`);
          await response.arrayBuffer();
          if (response.status !== 200) return false;
        }
        return true;
      },
      60_000,
    );

    const readyCount = async (): Promise<number[]> =>
      Promise.all(
        NODE_NAMES.map(async (node) => {
          const object = await kube.client
            .request<KubeObject & { status?: { ready?: number } }>({
              method: 'GET',
              path: objectPath(DOCKER_PLUGIN_NODES, node),
            })
            .catch(() => undefined);
          return object?.status?.ready ?? 0;
        }),
      );
    const leader = async (): Promise<string | undefined> => {
      const lease = await kube.client
        .request<KubeObject & { spec?: { holderIdentity?: string } }>({
          method: 'GET',
          path: objectPath(LEASES, 'plugctl-fleet', NAMESPACE),
        })
        .catch(() => undefined);
      return lease?.spec?.holderIdentity;
    };

    const applies: ApplyTimes[] = [];
    const idles: IdleRow[] = [];
    for (const count of FIRST < PLUGINS ? [FIRST, PLUGINS] : [PLUGINS]) {
      process.stderr.write(`applying ${count} DockerPlugins (3 nodes each)\n`);
      applies.push(await applyAndWait(count, remote, work, readyCount));
      process.stderr.write(`idle at ${count} for ${IDLE_MS / 1000} s\n`);
      idles.push(...(await idle(agents, count, leader)));
    }

    console.log(
      `\n3 agents (plugctl run --kube, embedded store, runc), every DockerPlugin selecting all 3 nodes`,
    );
    console.log('\nkubectl apply -> Ready');
    console.log(
      '| DockerPlugins applied | plugins started (x3 nodes) | every node reports all Ready | kubectl wait --all returns |',
    );
    console.log('| ---: | ---: | ---: | ---: |');
    let previous = 0;
    for (const a of applies) {
      console.log(
        `| ${previous === 0 ? a.plugins : `${a.plugins} (+${a.plugins - previous})`} | ${(a.plugins - previous) * 3} | ${a.nodesReadyS.toFixed(1)} s | ${a.fleetReadyS.toFixed(1)} s |`,
      );
      previous = a.plugins;
    }
    console.log(`\nsteady state (over ${IDLE_MS / 1000} s, after 10 s to settle)`);
    console.log('| DockerPlugins | agent | API requests / min | watch KB / min | RSS MB |');
    console.log('| ---: | --- | ---: | ---: | ---: |');
    for (const r of idles)
      console.log(
        `| ${r.plugins} | ${r.node}${r.leader ? ' (leader)' : ''} | ${r.requestsPerMin} | ${r.watchKBPerMin} | ${r.rssMB} |`,
      );
  } catch (error) {
    for (const agent of agents)
      if (agent.tail.length > 0) console.error(`${agent.node}:\n${agent.tail.join('\n')}`);
    throw error;
  } finally {
    for (const agent of agents) if (agent.child.exitCode === null) agent.child.kill('SIGTERM');
    await Promise.race([Promise.all(agents.map((a) => a.exited)), sleep(60_000)]);
    for (const agent of agents) if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
    let containers = 0;
    for (const agent of agents) containers += await cleanupContainers(agent);
    process.stderr.write(`deleted ${containers} runc containers the agents left running\n`);
    await registry?.stop();
    if (kubeStarted) await stopKube();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
