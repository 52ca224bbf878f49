/**
 * Embedded pull of a ~50 MB random-layer plugin from a loopback registry, against a single-pass
 * `curl | tar -xz` of the same layer blob, in one run. The controller is compiled once (tsc, into a
 * temp directory) and each embedded pull runs in its own child process of that build, as the CLI
 * runs from dist/, into a fresh store root, so nothing is cached between rounds. The child reports
 * the pull's own duration and its peak RSS (process.resourceUsage().maxRSS); the parent times the
 * whole child (node start, module loading, store open, pull). The embedded pull runs twice per
 * round: with `reclaim` (a minor GC every 2 MiB, node --expose-gc) and without.
 *
 * Rows are a list of { label, run } so that another comparison (e.g. `docker plugin install
 * --disable` against a private dockerd) is one more entry in `rows` below; ratios are against the
 * curl | tar row.
 *
 * Usage: node bench/embedded-pull.ts [--rounds 5] [--size-mb 50] [--port 5220]
 *        (needs docker-registry, curl and tar; run as root so ownership is applied as in production)
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { RegistryClient } from '../controller/registry/client.ts';
import { parseReference } from '../controller/spec/reference.ts';
import type { PluginRuntime } from '../controller/store/embedded/runtime.ts';
import { openEmbeddedStore } from '../controller/store/embedded/store.ts';
import { startLoopbackRegistry } from '../test/unit/store/embedded/loopback-registry.ts';

const repo = new URL('..', import.meta.url).pathname;

/** A runtime that runs nothing: the benchmark only pulls. */
const noRuntime: PluginRuntime = {
  start: () => Promise.reject(new Error('the benchmark runtime runs nothing')),
  stop: () => Promise.resolve(),
  isRunning: () => Promise.resolve(false),
  onExit: () => undefined,
  socketDir: (id) => `/nonexistent/${id}`,
  close: () => Promise.resolve(),
};

/** The child: plain JavaScript against the compiled controller; prints {pullMs, maxRssKb}. */
const CHILD = `
import { join } from 'node:path';
const [remote, root, reclaim] = process.argv.slice(2);
const { pino } = await import('pino');
const { RegistryClient } = await import('./controller/registry/client.js');
const { openEmbeddedStore } = await import('./controller/store/embedded/store.js');
const noRuntime = {
  start: () => Promise.reject(new Error('runs nothing')), stop: async () => {}, isRunning: async () => false,
  onExit: () => {}, socketDir: (id) => '/nonexistent/' + id, close: async () => {},
};
const registry = new RegistryClient({ credentials: async () => undefined });
const store = await openEmbeddedStore({
  root, runtime: noRuntime, registry, logger: pino({ level: 'warn' }, pino.destination(2)), runDir: join(root, 'run'),
  ...(reclaim === 'reclaim' ? { reclaim: () => globalThis.gc({ type: 'minor' }) } : {}),
});
const start = performance.now();
await store.pull(remote, { remote, privileges: [] });
const pullMs = performance.now() - start;
await store.close();
await registry.close();
process.stdout.write(JSON.stringify({ pullMs, maxRssKb: process.resourceUsage().maxRSS }) + '\\n');
`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 1 << 24 }, (error, stdout, stderr) =>
      error === null
        ? resolve(stdout)
        : reject(new Error(`${command} failed: ${stderr || stdout || error.message}`)),
    );
  });
}

/** Compiles the controller into `work/dist` (with node_modules reachable) and writes the child. */
async function buildChild(work: string): Promise<string> {
  const dist = join(work, 'dist');
  await run(join(repo, 'node_modules/.bin/tsc'), [
    '-p',
    join(repo, 'tsconfig.build.json'),
    '--outDir',
    dist,
    '--sourceMap',
    'false',
  ]);
  await symlink(join(repo, 'node_modules'), join(dist, 'node_modules'));
  await writeFile(join(dist, 'child.mjs'), CHILD);
  return join(dist, 'child.mjs');
}

/** Builds and pushes the benchmark plugin: one gzip layer holding `sizeMb` MB of random bytes. */
async function pushBenchPlugin(
  host: string,
  sizeMb: number,
  work: string,
): Promise<{ remote: string; layer: string }> {
  const ctx = join(work, 'ctx');
  await mkdir(join(ctx, 'rootfs', 'data'), { recursive: true });
  await writeFile(join(ctx, 'rootfs', 'data', 'random.bin'), randomBytes(sizeMb * 1024 * 1024));
  await writeFile(
    join(ctx, 'config.json'),
    JSON.stringify({
      Description: 'plugctl benchmark plugin (random layer)',
      Entrypoint: ['/bin/plugind'],
      Interface: { Socket: 'plugind.sock', Types: ['docker.volumedriver/1.0'] },
      Linux: { Capabilities: [] },
    }),
  );
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const registry = new RegistryClient({ credentials: async () => undefined });
  const store = await openEmbeddedStore({
    root: join(work, 'builder'),
    runtime: noRuntime,
    registry,
    logger,
    runDir: join(work, 'run'),
  });
  const remote = `${host}/bench/random:1.0`;
  try {
    await store.createPlugin(remote, ctx);
    await store.pushPlugin(remote);
    const resolved = await registry.resolve(parseReference(remote));
    const layer = resolved.manifest.layers[0]?.digest;
    if (layer === undefined) throw new Error('benchmark plugin has no layer');
    return { remote, layer };
  } finally {
    await store.close();
    await registry.close();
    await rm(join(work, 'builder'), { recursive: true, force: true });
    await rm(ctx, { recursive: true, force: true });
  }
}

/** One row of the table: one measurement per call, in ms. */
interface Row {
  label: string;
  run(): Promise<number>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      'size-mb': { type: 'string', default: '50' },
      port: { type: 'string', default: '5220' },
    },
  });
  const rounds = Number(values.rounds);
  const sizeMb = Number(values['size-mb']);
  const work = await mkdtemp(join(tmpdir(), 'plugctl-bench-pull-'));
  const registry = await startLoopbackRegistry(Number(values.port));
  try {
    const { remote, layer } = await pushBenchPlugin(registry.host, sizeMb, work);
    const blobUrl = `http://${registry.host}/v2/bench/random/blobs/${layer}`;
    const childScript = await buildChild(work);
    let round = 0;

    const inProcess = new Map<string, number[]>();
    const rss = new Map<string, number[]>();
    const embedded = (label: string, reclaim: boolean): Row => ({
      label,
      async run() {
        const root = join(work, `root-${round++}`);
        const start = performance.now();
        const output = await new Promise<string>((resolve, reject) => {
          const proc = spawn(
            process.execPath,
            [...(reclaim ? ['--expose-gc'] : []), childScript, remote, root, reclaim ? 'reclaim' : 'none'],
            {
              stdio: ['ignore', 'pipe', 'inherit'],
              env: { ...process.env, NODE_COMPILE_CACHE: join(work, 'compile-cache') },
            },
          );
          let out = '';
          proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
          proc.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}`))));
        });
        const elapsed = performance.now() - start;
        const result = JSON.parse(output.trim().split('\n').pop() ?? '{}') as {
          pullMs: number;
          maxRssKb: number;
        };
        inProcess.set(label, [...(inProcess.get(label) ?? []), result.pullMs]);
        rss.set(label, [...(rss.get(label) ?? []), result.maxRssKb / 1024]);
        await rm(root, { recursive: true, force: true });
        return elapsed;
      },
    });
    const curlTar: Row = {
      label: 'curl | tar -xz (single pass)',
      async run() {
        const dir = join(work, `curl-${round++}`);
        await mkdir(dir);
        const start = performance.now();
        await run('bash', ['-c', `set -o pipefail; curl -fsS ${blobUrl} | tar -xz -C ${dir}`]);
        const elapsed = performance.now() - start;
        await rm(dir, { recursive: true, force: true });
        return elapsed;
      },
    };
    const rows: Row[] = [
      embedded('embedded pull (reclaim), whole child process', true),
      embedded('embedded pull (no reclaim), whole child process', false),
      curlTar,
      // a third comparison goes here, e.g. { label: 'docker plugin install --disable', run() { ... } }
    ];

    const times = new Map<string, number[]>(rows.map((row) => [row.label, []]));
    // warm-up (page cache, registry, compile cache), then interleaved rounds so drift hits every row alike
    for (const row of rows) await row.run();
    inProcess.clear();
    rss.clear();
    for (let i = 0; i < rounds; i++) {
      for (const row of rows) times.get(row.label)?.push(await row.run());
    }

    const floor = median(times.get(curlTar.label) ?? [0]);
    const lines: [string, number][] = [];
    for (const row of rows) {
      lines.push([row.label, median(times.get(row.label) ?? [])]);
      const pulls = inProcess.get(row.label);
      if (pulls !== undefined) lines.push(['  of which store.pull() alone', median(pulls)]);
    }
    const width = Math.max(...lines.map(([label]) => label.length));
    console.log(`plugin ${remote}: one ${sizeMb} MB random layer, ${rounds} rounds (medians)`);
    console.log(`${'what'.padEnd(width)}  ${'median ms'.padStart(9)}  vs curl|tar`);
    for (const [label, ms] of lines) {
      console.log(`${label.padEnd(width)}  ${ms.toFixed(0).padStart(9)}  ${(ms / floor).toFixed(2)}x`);
    }
    for (const [label, values] of rss) {
      const what = label.replace(/, whole child process$/, '');
      console.log(
        `peak RSS, ${what}: median ${median(values).toFixed(0)} MB, max ${Math.max(...values).toFixed(0)} MB`,
      );
    }
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
