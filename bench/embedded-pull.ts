/**
 * Embedded pull of a ~50 MB random-layer plugin from a loopback registry, against
 * `docker plugin install --disable --grant-all-permissions` of the same plugin on the private
 * dockerd of test/env/plugin-env.sh and a single-pass `curl | tar -xz` of the same layer blob, in
 * one run. Targets: embedded <= 0.5x dockerd, <= 1.5x curl | tar, peak RSS <= 100 MB.
 *
 * The controller is compiled once (tsc, into a temp directory) and each embedded pull runs in its
 * own child process of that build, as the CLI runs from dist/, into a fresh store root, so nothing
 * is cached between rounds except, as for the CLI (bin/plugctl.js), V8's compile cache of the
 * modules. The child reports the pull's own duration and its peak RSS
 * (process.resourceUsage().maxRSS); the parent times the whole child (node start, module loading,
 * store open, pull). The embedded pull runs twice per round: once through the CLI's own
 * openStore() (cli/open-store.ts: the runc runtime and the CLI's `reclaim` hook, a minor GC every
 * 2 MiB), which is the row the targets apply to, and once without `reclaim`, for comparison.
 * For the CLI-path row it also prints where the child's time went, phase by phase (start-up,
 * module loading, registry round trips, the streamed layer, commit), from marks the child takes
 * and the pull's own stage events (pull.ts PULL_STAGES_CHANNEL).
 *
 * The plugin is built and pushed by the embedded store (Docker schema 2 manifest, config media type
 * application/vnd.docker.plugin.v1+json, gzip layer), which dockerd 20.10 installs. Each dockerd
 * round installs under a fresh alias and removes it afterwards (`plugin rm` garbage-collects the
 * blobs, so every round downloads again). Only one dockerd may run per machine: when one is running
 * (another engineer's integration tests), the benchmark waits up to 10 minutes for it to go before
 * starting its own with `plugin-env.sh up`, and stops it with `down` (then `clean`) at the end. Its
 * environment has its own PE_DIR and registry port, so an integration run that starts meanwhile is
 * refused by plugin-env.sh ("another dockerd is running") instead of adopting the benchmark's
 * daemon and losing it at `down`.
 *
 * Usage: node bench/embedded-pull.ts [--rounds 5] [--size-mb 50] [--port 5220] [--no-dockerd]
 *        (needs docker-registry, curl, tar and docker.io; root, so ownership is applied as in production)
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { RegistryClient } from '../controller/registry/client.ts';
import { parseReference } from '../controller/api/reference.ts';
import { openEmbeddedStore } from '../controller/store/embedded/store.ts';
import { idleRuntime } from '../test/idle-runtime.ts';
import { startLoopbackRegistry } from '../test/unit/store/embedded/loopback-registry.ts';

const repo = new URL('..', import.meta.url).pathname;

/**
 * The child: plain JavaScript against the compiled controller; prints {pullMs, maxRssKb, marks}.
 * Mode `cli` opens the store exactly as the CLI does (cli/open-store.ts, with its reclaim hook);
 * mode `none` opens it directly without reclaim. `marks` are performance.now() values (ms since
 * the child's process started) at the end of each phase, the pull's own stages from its
 * diagnostics channel (pull.ts PULL_STAGES_CHANNEL) included.
 */
const CHILD = `
import { enableCompileCache } from 'node:module';
import { join } from 'node:path';
// As bin/plugctl.js does for every command: after the first round, modules load from V8's code cache.
enableCompileCache();
import { subscribe } from 'node:diagnostics_channel';
const marks = { boot: performance.now() };
subscribe('plugctl:embedded-pull', (event) => { marks[event.stage] = event.at; });
const [remote, root, mode] = process.argv.slice(2);
const { pino } = await import('pino');
const { RegistryClient } = await import('./controller/registry/client.js');
const logger = pino({ level: 'warn' }, pino.destination(2));
const registry = new RegistryClient({ credentials: async () => undefined });
marks.loaded = performance.now();
let store;
if (mode === 'cli') {
  const { openStore } = await import('./controller/cli/open-store.js');
  store = await openStore({ kind: 'embedded', root, env: process.env, logger, registry: async () => registry });
} else {
  const { openEmbeddedStore } = await import('./controller/store/embedded/store.js');
  const noRuntime = {
    start: () => Promise.reject(new Error('runs nothing')), stop: async () => {}, isRunning: async () => false,
    onExit: () => {}, socketDir: (id) => '/nonexistent/' + id, close: async () => {},
  };
  store = await openEmbeddedStore({ root, runtime: noRuntime, registry, logger, runDir: join(root, 'run') });
}
const start = performance.now();
marks.opened = start;
await store.pull(remote, { remote, privileges: [] });
const pullMs = performance.now() - start;
marks.pulled = performance.now();
await store.close();
await registry.close();
process.stdout.write(JSON.stringify({ pullMs, maxRssKb: process.resourceUsage().maxRSS, marks }) + '\\n');
`;

/** The phases of one child, from its marks (ms); `whole` is the parent's measurement of it. */
function phasesOf(marks: Record<string, number>, whole: number): [string, number][] {
  const at = (name: string): number => marks[name] ?? Number.NaN;
  const applied = Math.max(at('layer-applied'), at('blob-synced'));
  return [
    ['node start-up (to the first line of the child)', at('boot')],
    ['module loading (pino, registry client)', at('loaded') - at('boot')],
    ['openStore (imports store + runc, lock, reload)', at('opened') - at('loaded')],
    ['registry: ping, manifest HEAD + GET, config', at('remote-read') - at('remote-start')],
    ['staging, ingest, blob GET until its headers', at('blob-opened') - at('remote-read')],
    ['download + verify; inflate, untar, ingest overlapped', at('blob-verified') - at('blob-opened')],
    ['inflate/untar/fsync after the last byte', applied - at('blob-verified')],
    ['commit blobs, config.json, publish (fsyncs)', at('pulled') - applied],
    ['close, exit, spawn', whole - at('pulled')],
  ];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 1 << 24, env: env ?? process.env }, (error, stdout, stderr) =>
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
    // emit only: type errors are `make lint`'s business, and a tree others are editing must not
    // stop a measurement of code that runs
    '--noCheck',
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
    runtime: idleRuntime,
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

/** PIDs of live (not zombie) processes named dockerd. */
async function dockerdPids(): Promise<number[]> {
  const out = await run('pgrep', ['-x', 'dockerd']).catch(() => ''); // exit 1: none
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(Number)
    .filter((pid) => {
      try {
        return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
      } catch {
        return false; // gone meanwhile
      }
    });
}

/** Waits (polling every 5 s, up to `timeoutMs`) until no dockerd runs on this machine. */
async function waitForNoDockerd(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pids = await dockerdPids();
  if (pids.length > 0) {
    console.error(`a dockerd is running (pid ${pids.join(', ')}): waiting for it to stop`);
  }
  while (pids.length > 0) {
    if (Date.now() > deadline) {
      throw new Error(
        `dockerd (pid ${pids.join(', ')}) still runs after ${timeoutMs / 60000} min; run again later or pass --no-dockerd`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5000));
    pids = await dockerdPids();
  }
}

/** The private dockerd of test/env/plugin-env.sh, started by `up`; `down` stops it. */
interface PrivateDockerd {
  docker(args: string[]): Promise<string>;
  down(): Promise<void>;
}

async function startPrivateDockerd(): Promise<PrivateDockerd> {
  await waitForNoDockerd(10 * 60_000);
  const envScript = join(repo, 'test/env/plugin-env.sh');
  const peEnv = { ...process.env, PE_DIR: join(tmpdir(), 'plugctl-bench-pull-env'), PE_REG_PORT: '5221' };
  const down = async (): Promise<void> => {
    await run('bash', [envScript, 'down'], peEnv);
    await run('bash', [envScript, 'clean'], peEnv);
  };
  let exports: string;
  try {
    exports = await run('bash', [envScript, 'up'], peEnv);
  } catch (error) {
    await down().catch(() => undefined);
    throw error;
  }
  const vars = new Map(
    [...exports.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1] as string, m[2] as string]),
  );
  const docker = vars.get('PE_DOCKER') ?? 'docker';
  const env = {
    ...process.env,
    DOCKER_HOST: vars.get('DOCKER_HOST'),
    DOCKER_CONFIG: vars.get('PE_DOCKER_CONFIG'),
  };
  console.error(`private dockerd ${vars.get('PE_ENGINE_VERSION') ?? '?'} on ${env.DOCKER_HOST}`);
  return { docker: (args) => run(docker, args, env), down };
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
      dockerd: { type: 'boolean', default: true },
    },
    allowNegative: true,
  });
  const rounds = Number(values.rounds);
  const sizeMb = Number(values['size-mb']);
  // first, so that waiting for someone else's dockerd happens before anything else is set up
  const dockerd = values.dockerd ? await startPrivateDockerd() : undefined;
  const work = await mkdtemp(join(tmpdir(), 'plugctl-bench-pull-'));
  const registry = await startLoopbackRegistry(Number(values.port)).catch(async (error: unknown) => {
    await dockerd?.down();
    throw error;
  });
  try {
    const { remote, layer } = await pushBenchPlugin(registry.host, sizeMb, work);
    const blobUrl = `http://${registry.host}/v2/bench/random/blobs/${layer}`;
    const childScript = await buildChild(work);
    let round = 0;

    const inProcess = new Map<string, number[]>();
    const phases = new Map<string, [string, number][][]>();
    const rss = new Map<string, number[]>();
    const embedded = (label: string, mode: 'cli' | 'none'): Row => ({
      label,
      async run() {
        const root = join(work, `root-${round++}`);
        const start = performance.now();
        const output = await new Promise<string>((resolve, reject) => {
          const proc = spawn(process.execPath, [childScript, remote, root, mode], {
            stdio: ['ignore', 'pipe', 'inherit'],
            env: { ...process.env, NODE_COMPILE_CACHE: join(work, 'compile-cache') },
          });
          let out = '';
          proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
          proc.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}`))));
        });
        const elapsed = performance.now() - start;
        const result = JSON.parse(output.trim().split('\n').pop() ?? '{}') as {
          pullMs: number;
          maxRssKb: number;
          marks: Record<string, number>;
        };
        phases.set(label, [...(phases.get(label) ?? []), phasesOf(result.marks, elapsed)]);
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
    const dockerInstall: Row | undefined =
      dockerd === undefined
        ? undefined
        : {
            label: 'docker plugin install --disable, private dockerd',
            async run() {
              const alias = `bench-random-${round++}:1.0`;
              const start = performance.now();
              await dockerd.docker([
                'plugin',
                'install',
                '--disable',
                '--grant-all-permissions',
                '--alias',
                alias,
                remote,
              ]);
              const elapsed = performance.now() - start;
              await dockerd.docker(['plugin', 'rm', '-f', alias]);
              return elapsed;
            },
          };
    const cliPath = embedded('embedded pull, CLI openStore (reclaim), whole child process', 'cli');
    const rows: Row[] = [
      cliPath,
      embedded('embedded pull (no reclaim), whole child process', 'none'),
      ...(dockerInstall !== undefined ? [dockerInstall] : []),
      curlTar,
    ];

    const times = new Map<string, number[]>(rows.map((row) => [row.label, []]));
    // warm-up (page cache, registry, compile cache), then interleaved rounds so drift hits every row alike
    for (const row of rows) await row.run();
    inProcess.clear();
    rss.clear();
    phases.clear();
    for (let i = 0; i < rounds; i++) {
      for (const row of rows) times.get(row.label)?.push(await row.run());
    }

    const floor = median(times.get(curlTar.label) ?? [0]);
    const engine = dockerInstall === undefined ? undefined : median(times.get(dockerInstall.label) ?? []);
    const lines: [string, number][] = [];
    for (const row of rows) {
      lines.push([row.label, median(times.get(row.label) ?? [])]);
      const pulls = inProcess.get(row.label);
      if (pulls !== undefined) lines.push(['  of which store.pull() alone', median(pulls)]);
    }
    const width = Math.max(...lines.map(([label]) => label.length));
    const ratio = (ms: number, base: number | undefined): string =>
      (base === undefined ? '-' : `${(ms / base).toFixed(2)}x`).padStart(10);
    console.log(`plugin ${remote}: one ${sizeMb} MB random layer, ${rounds} rounds (medians)`);
    console.log(
      `${'what'.padEnd(width)}  ${'median ms'.padStart(9)}  ${'vs dockerd'.padStart(10)}  vs curl|tar`,
    );
    for (const [label, ms] of lines) {
      console.log(
        `${label.padEnd(width)}  ${ms.toFixed(0).padStart(9)}  ${ratio(ms, engine)}  ${ratio(ms, floor)}`,
      );
    }
    for (const [label, values] of rss) {
      const what = label.replace(/, whole child process$/, '');
      console.log(
        `peak RSS, ${what}: median ${median(values).toFixed(0)} MB, max ${Math.max(...values).toFixed(0)} MB`,
      );
    }
    const cliMs = median(times.get(cliPath.label) ?? []);
    const cliRss = Math.max(...(rss.get(cliPath.label) ?? [0]));
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
    console.log(
      `targets (CLI path): ${engine === undefined ? 'vs dockerd not measured' : `${(cliMs / engine).toFixed(2)}x dockerd <= 0.5x ${verdict(cliMs <= 0.5 * engine)}`}; ` +
        `${(cliMs / floor).toFixed(2)}x curl|tar <= 1.5x ${verdict(cliMs <= 1.5 * floor)}; ` +
        `peak RSS ${cliRss.toFixed(0)} MB <= 100 MB ${verdict(cliRss <= 100)}`,
    );
    const cliPhases = phases.get(cliPath.label) ?? [];
    const names = (cliPhases[0] ?? []).map(([name]) => name);
    if (names.length > 0) {
      console.log(`stages of the CLI-path child, medians of ${cliPhases.length} rounds:`);
      const phaseWidth = Math.max(...names.map((name) => name.length));
      names.forEach((name, index) => {
        const ms = median(cliPhases.map((round) => round[index]?.[1] ?? Number.NaN));
        console.log(`  ${name.padEnd(phaseWidth)}  ${ms.toFixed(0).padStart(5)} ms`);
      });
    }
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
    await dockerd?.down();
  }
}

await main();
