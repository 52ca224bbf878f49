/**
 * What the Kubernetes side costs in memory and start-up, for each way of using @kubernetes/client-node
 * (docs/architecture.md, "Kubernetes mode: memory"). Each variant runs in a fresh child process (twice:
 * the second run has a warm compile cache), on the same Node as plugctl, with --expose-gc; the figure
 * is RSS after full GCs.
 *
 * The children are plain JavaScript (.mjs): Node's TypeScript loader, which a .ts entry point would
 * load (~17 MB), is paid only where TypeScript sources are imported (plugctl's own modules, as when it
 * runs from source; `make build` compiles them away).
 *
 * Load-only variants import modules and nothing else. Agent variants connect to a real API server
 * (test/env/kube-env.sh), cache 200 DockerPlugins and the agent's own Node with a list+watch informer,
 * idle, and are measured idle. Needs root and the kube environment; run under the integration lock:
 *
 *   flock /tmp/plugctl-itest.lock node bench/kube-memory.ts [--bundle-esbuild /path/to/esbuild] [--only-agent]
 *     [--agent-root CHECKOUT] [--agent-log FILE] [--agent-log-level LEVEL]
 *
 * --agent-root runs the agent of another checkout (a worktree at an older commit, to find what changed
 * its figure); --agent-log keeps the agent's log. The agent's RSS is also split by kind of mapping.
 *
 * The esbuild variant (client-node's KubeConfig + informer bundled and tree-shaken) runs only when an
 * esbuild binary is given: plugctl does not ship a bundler.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeClient } from '../controller/kube/client.ts';
import { loadClusterConnection } from '../controller/kube/config.ts';
import { DOCKER_PLUGINS, NODES, collectionPath } from '../controller/kube/resources.ts';
import { systemClock } from '../controller/runtime/clock.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const KUBE_ENV = join(ROOT, 'test/env/kube-env.sh');
const PLUGINS = 200;
const NODE_NAME = 'bench-node';

/** Child preamble: compile cache, then the measurement helper. */
const PRELUDE = `
import { enableCompileCache } from 'node:module';
enableCompileCache(process.env.BENCH_CACHE);
const started = performance.now();
async function settle() {
  for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 100)); }
  const m = process.memoryUsage();
  return { rssMB: +(m.rss / 2 ** 20).toFixed(1), heapMB: +(m.heapUsed / 2 ** 20).toFixed(1) };
}
`;

/** plugctl's own base of a long-running process: pino, yaml and undici's Pool + request. */
const BASE = `
await import('pino');
await import('yaml');
await import('undici/lib/dispatcher/pool.js');
await import('undici/lib/api/api-request.js');
`;

const loadOnly = (body: string) => `${PRELUDE}${BASE}${body}
const loadMs = Math.round(performance.now() - started);
console.log(JSON.stringify({ ...(await settle()), loadMs }));
`;

/** plugctl's own stack: kube/config.ts (client-node's config_types), client.ts, informer.ts. */
const OWN_AGENT = `${PRELUDE}${BASE}
const root = ${JSON.stringify(ROOT)};
const { loadClusterConnection } = await import(root + '/controller/kube/config.ts');
const { KubeClient } = await import(root + '/controller/kube/client.ts');
const { Informer } = await import(root + '/controller/kube/informer.ts');
const { DOCKER_PLUGINS, NODES } = await import(root + '/controller/kube/resources.ts');
const { systemClock } = await import(root + '/controller/runtime/clock.ts');
const { pino } = await import('pino');
const loadMs = Math.round(performance.now() - started);
const logger = pino({ level: 'silent' });
const client = await KubeClient.open(await loadClusterConnection({ kubeconfig: process.env.BENCH_KUBECONFIG, env: {}, clock: systemClock }));
const plugins = new Informer({ client, type: DOCKER_PLUGINS, clock: systemClock, logger });
const node = new Informer({ client, type: NODES, fieldSelector: 'metadata.name=${NODE_NAME}', clock: systemClock, logger });
await Promise.all([plugins.start(), node.start()]);
if (plugins.values().length !== ${PLUGINS}) throw new Error('not all plugins cached');
await new Promise((r) => setTimeout(r, 3000));
console.log(JSON.stringify({ ...(await settle()), loadMs, cached: plugins.values().length }));
await plugins.close(); await node.close(); await client.close();
`;

/** client-node as its README uses it: KubeConfig, the generated API for lists, makeInformer. */
const clientNodeAgent = (specifier: string) => `${PRELUDE}${BASE}
const k8s = await import(${JSON.stringify(specifier)});
const loadMs = Math.round(performance.now() - started);
const kc = new k8s.KubeConfig();
kc.loadFromFile(process.env.BENCH_KUBECONFIG);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const core = kc.makeApiClient(k8s.CoreV1Api);
const plugins = k8s.makeInformer(kc, '/apis/plugctl.dev/v1alpha1/dockerplugins',
  () => custom.listClusterCustomObject({ group: 'plugctl.dev', version: 'v1alpha1', plural: 'dockerplugins' }));
const node = k8s.makeInformer(kc, '/api/v1/nodes', () => core.listNode({ fieldSelector: 'metadata.name=${NODE_NAME}' }));
await plugins.start(); await node.start();
for (let i = 0; plugins.list().length !== ${PLUGINS} && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
if (plugins.list().length !== ${PLUGINS}) throw new Error('not all plugins cached');
await new Promise((r) => setTimeout(r, 3000));
console.log(JSON.stringify({ ...(await settle()), loadMs, cached: plugins.list().length }));
await plugins.stop(); await node.stop();
process.exit(0);
`;

interface Result {
  rssMB: number;
  heapMB: number;
  loadMs: number;
  /** the agent's resident memory by kind of mapping, at the median sample */
  breakdown?: RssBreakdown;
}

/** Resident memory of a process by kind of mapping, MB: where an agent's RSS goes. */
interface RssBreakdown {
  /** the node binary's pages (V8, the builtins, ICU): code and read-only data */
  node: number;
  /** anonymous mappings: V8's heap spaces, code space, and malloc's mmapped arenas */
  anonymous: number;
  /** the brk heap: malloc's main arena (libuv, OpenSSL, V8's own C++ objects) */
  brk: number;
  /** everything else: shared libraries, stacks */
  other: number;
}

/** How /proc/PID/smaps splits a process's resident memory (RssBreakdown). */
async function breakdownOf(pid: number): Promise<RssBreakdown> {
  const { readFile } = await import('node:fs/promises');
  const result: RssBreakdown = { node: 0, anonymous: 0, brk: 0, other: 0 };
  let kind: keyof RssBreakdown = 'other';
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping !== null) {
      const name = mapping[1] ?? '';
      kind =
        name === '' ? 'anonymous' : name === '[heap]' ? 'brk' : name.endsWith('/bin/node') ? 'node' : 'other';
    } else if (line.startsWith('Rss:')) {
      result[kind] += Number(line.split(/\s+/)[1]) / 1024;
    }
  }
  for (const key of Object.keys(result) as (keyof RssBreakdown)[]) result[key] = +result[key].toFixed(1);
  return result;
}

/** VmRSS of a process, in MB. */
async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const line = (await readFile(`/proc/${pid}/status`, 'utf8'))
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}

/**
 * The real agent: `plugctl run --kube` through bin/plugctl.js (the launcher's long-running set-up),
 * the embedded store on a temp root, the DockerPlugins and the Node of the benchmark. Measured as the
 * process's VmRSS once it has reconciled every key and gone quiet (its idle trim has run): nothing can
 * force a GC from outside, so this is what a node would see. Started twice, the second time with a warm
 * compile cache; the median of 5 samples a second apart. `agentRoot` is the checkout whose
 * bin/plugctl.js runs (another commit's worktree, to find what changed its figure); its stderr is
 * copied to `logFile` when given.
 */
async function agentProcess(
  dir: string,
  kubeconfig: string,
  agentRoot: string,
  logFile: string | undefined,
  logLevel = 'info',
): Promise<Result> {
  const { spawn } = await import('node:child_process');
  let last: Result | undefined;
  for (let i = 0; i < 2; i++) {
    const root = await mkdtemp(join(dir, 'agent-'));
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [
        join(agentRoot, 'bin/plugctl.js'),
        '--store',
        'embedded',
        '--root',
        join(root, 'plugins'),
        '--state-dir',
        join(root, 'state'),
        '--log-level',
        logLevel,
        'run',
        '--kube',
        '--kubeconfig',
        kubeconfig,
        '--node-name',
        NODE_NAME,
        '--namespace',
        'default',
        '--listen',
        '127.0.0.1:0',
      ],
      {
        cwd: agentRoot,
        env: { ...process.env, NODE_COMPILE_CACHE: join(dir, 'cache') },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let log = '';
    try {
      const synced = new Promise<number>((resolve, reject) => {
        child.stderr.on('data', (chunk: Buffer) => {
          log += chunk.toString();
          if (log.includes('first full sync complete')) resolve(performance.now() - started);
        });
        child.once('exit', (code) =>
          reject(new Error(`plugctl run --kube exited ${code}: ${log.slice(-2000)}`)),
        );
      });
      const syncMs = await synced;
      await new Promise((r) => setTimeout(r, 10_000));
      const samples: { rss: number; breakdown: RssBreakdown }[] = [];
      for (let s = 0; s < 5; s++) {
        samples.push({ rss: await rssOf(child.pid!), breakdown: await breakdownOf(child.pid!) });
        await new Promise((r) => setTimeout(r, 1000));
      }
      samples.sort((a, b) => a.rss - b.rss);
      const median = samples[2]!;
      last = {
        rssMB: +median.rss.toFixed(1),
        heapMB: NaN,
        loadMs: Math.round(syncMs),
        breakdown: median.breakdown,
      };
    } finally {
      if (logFile !== undefined) await writeFile(logFile, log);
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await rm(root, { recursive: true, force: true });
    }
  }
  return last!;
}

async function child(
  dir: string,
  name: string,
  source: string,
  env: Record<string, string>,
): Promise<Result> {
  const file = join(ROOT, `.bench-kube-${name}.mjs`);
  await writeFile(file, source);
  try {
    let last: Result | undefined;
    for (let i = 0; i < 2; i++) {
      const { stdout } = await run(process.execPath, ['--expose-gc', file], {
        cwd: ROOT,
        env: { ...process.env, ...env, BENCH_CACHE: join(dir, 'cache') },
        maxBuffer: 16 << 20,
      });
      last = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Result;
    }
    return last!;
  } finally {
    await rm(file, { force: true });
  }
}

async function bundle(esbuild: string, dir: string): Promise<string> {
  const entry = join(ROOT, '.bench-kube-entry.mjs');
  await writeFile(
    entry,
    "export { KubeConfig, CustomObjectsApi, CoreV1Api, makeInformer } from '@kubernetes/client-node';\n",
  );
  const out = join(dir, 'client-node.bundle.mjs');
  try {
    await run(esbuild, [
      entry,
      '--bundle',
      '--platform=node',
      '--format=esm',
      '--minify',
      '--tree-shaking=true',
      `--outfile=${out}`,
      "--banner:js=import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      '--log-level=error',
    ]);
  } finally {
    await rm(entry, { force: true });
  }
  return out;
}

async function main(args: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'plugctl-bench-kube-'));
  const esbuildAt = args.indexOf('--bundle-esbuild');
  const esbuild = esbuildAt === -1 ? undefined : args[esbuildAt + 1];
  const onlyAgent = args.includes('--only-agent');
  const option = (name: string): string | undefined =>
    args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
  const agentRoot = option('--agent-root') ?? ROOT;
  const agentLog = option('--agent-log');
  const rows: [string, Result][] = [];
  const { stdout } = await run('bash', [KUBE_ENV, 'up']);
  const started = /KE_STARTED=1/.test(stdout);
  const kubeconfig = /export KUBECONFIG=(\S+)/.exec(stdout)?.[1] ?? '';
  const client = await KubeClient.open(
    await loadClusterConnection({ kubeconfig, env: {}, clock: systemClock }),
  );
  try {
    await run(join('/var/cache/kube-env/bin/kubectl'), [
      '--kubeconfig',
      kubeconfig,
      'apply',
      '-f',
      join(ROOT, 'crds'),
    ]);
    await run('/var/cache/kube-env/bin/kubectl', [
      '--kubeconfig',
      kubeconfig,
      'wait',
      '--for=condition=Established',
      'crd/dockerplugins.plugctl.dev',
    ]);
    await client.request({ method: 'DELETE', path: collectionPath(DOCKER_PLUGINS) });
    for (let i = 0; i < PLUGINS; i++) {
      await client.request({
        method: 'POST',
        path: collectionPath(DOCKER_PLUGINS),
        body: {
          apiVersion: 'plugctl.dev/v1alpha1',
          kind: 'DockerPlugin',
          metadata: { name: `bench-${i}`, labels: { bench: 'kube-memory' } },
          spec: {
            remote: `registry.example.com/team/plugin-${i}:1.0`,
            privileges: [{ name: 'network', value: ['host'] }],
            settings: { env: { DEBUG: '0', LEVEL: 'info' }, mounts: { state: `/var/lib/plugin-${i}` } },
            nodeSelector: { matchLabels: { role: 'storage' } },
          },
        },
      });
    }
    await client
      .request({
        method: 'POST',
        path: collectionPath(NODES),
        body: { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE_NAME } },
      })
      .catch(() => undefined);
    const env = { BENCH_KUBECONFIG: kubeconfig };
    if (!onlyAgent) {
      rows.push([
        'bare node',
        await child(
          dir,
          'bare',
          `${PRELUDE}console.log(JSON.stringify({ ...(await settle()), loadMs: 0 }));`,
          env,
        ),
      ]);
      rows.push([
        'plugctl base (pino, yaml, undici Pool+request)',
        await child(dir, 'base', loadOnly(''), env),
      ]);
      rows.push([
        'base + client-node index, as installed',
        await child(dir, 'index', loadOnly("await import('@kubernetes/client-node');"), env),
      ]);
      rows.push([
        'base + client-node config.js (KubeConfig) + watch.js',
        await child(
          dir,
          'config',
          loadOnly(
            "await import('@kubernetes/client-node/dist/config.js'); await import('@kubernetes/client-node/dist/watch.js');",
          ),
          env,
        ),
      ]);
      rows.push([
        'base + plugctl kube/ (client-node config_types + exec_auth)',
        await child(
          dir,
          'own',
          loadOnly(
            ['config', 'client', 'informer', 'apply', 'leader', 'slots', 'events']
              .map((m) => `await import(${JSON.stringify(`${ROOT}/controller/kube/${m}.ts`)});`)
              .join('\n') + "\nawait import('@kubernetes/client-node/dist/exec_auth.js');",
          ),
          env,
        ),
      ]);
      rows.push([
        `agent, client-node KubeConfig + makeInformer, as installed (${PLUGINS} cached)`,
        await child(dir, 'cn-agent', clientNodeAgent('@kubernetes/client-node'), env),
      ]);
      if (esbuild !== undefined) {
        const bundled = await bundle(esbuild, dir);
        rows.push([
          `agent, client-node KubeConfig + makeInformer, esbuild bundle (${PLUGINS} cached)`,
          await child(dir, 'cn-bundle', clientNodeAgent(bundled), env),
        ]);
      }
      rows.push([
        `agent, plugctl kube/ over undici (${PLUGINS} cached)`,
        await child(dir, 'own-agent', OWN_AGENT, env),
      ]);
    }
    rows.push([
      `plugctl run --kube (embedded store), ${PLUGINS} DockerPlugins cached, idle (VmRSS; load ms = until first sync)`,
      await agentProcess(dir, kubeconfig, agentRoot, agentLog, option('--agent-log-level')),
    ]);
  } finally {
    await client.request({ method: 'DELETE', path: collectionPath(DOCKER_PLUGINS) }).catch(() => undefined);
    await client.close();
    if (started) await run('bash', [KUBE_ENV, 'down']);
    await rm(dir, { recursive: true, force: true });
  }
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`${'variant'.padEnd(width)}  RSS MB  heap MB  load ms`);
  for (const [name, r] of rows) {
    console.log(
      `${name.padEnd(width)}  ${String(r.rssMB).padStart(6)}  ${String(r.heapMB).padStart(7)}  ${String(r.loadMs).padStart(7)}`,
    );
  }
  for (const [name, r] of rows) {
    if (r.breakdown === undefined) continue;
    const b = r.breakdown;
    console.log(
      `${name}: node binary ${b.node} MB, anonymous (V8 heap, mmapped malloc) ${b.anonymous} MB, brk heap ${b.brk} MB, other ${b.other} MB`,
    );
  }
  if (agentRoot !== ROOT) console.log(`agent run from ${agentRoot}`);
}

await main(process.argv.slice(2));
