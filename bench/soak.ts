/**
 * Soak: `plugctl run` keeping 50 declared plugins converged on the real dockerd for a long time while
 * the world misbehaves:
 * - the registry sits behind a loopback proxy that answers every other request with 503 (plugctl's
 *   own registry reads and the engine's pulls both go through it);
 * - a helper disables a random plugin every second, by one of the names people type (short name,
 *   full name, full ID, ID prefix), as `docker plugin disable` does it.
 * It prints the reconciles done, how long drift took to heal (p50, p99, max), the controller's memory
 * at the start and the end (target: RSS within 10 %), and whether anything went unhandled (target: no
 * unhandled rejection, the process still running).
 *
 * "Start" is the steady state: after the first convergence and a warm-up of `--warmup` seconds of the
 * same disabling, so that what the first minutes fill once (V8's heap growing to its working size,
 * code compiled, connection pools opened) is not counted as growth. Memory is read from outside
 * (bench/memory-probe.ts): the controller runs with `--inspect` on loopback in NODE_OPTIONS (the
 * benchmark's only change to it), RSS comes from /proc before anything else, then a forced GC, then
 * the heap the process retains, its external memory and its libuv handles. With `--snapshots DIR` a
 * heap snapshot is written at start and end and the two are compared by constructor.
 *
 * Usage: node bench/soak.ts [--minutes 10] [--plugins 50] [--warmup 60] [--window 30] [--sample 30]
 *                           [--snapshots DIR] [--no-inspect]
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import {
  diffSummaries,
  InspectorSession,
  diffSmaps,
  readRss,
  readSmaps,
  summarizeSnapshot,
  type Mapping,
  type MemoryReading,
  type Rss,
} from './memory-probe.ts';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const envScript = join(root, 'test/env/plugin-env.sh');
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    plugins: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '60' },
    sample: { type: 'string', default: '30' },
    window: { type: 'string', default: '30' },
    snapshots: { type: 'string' },
    'no-inspect': { type: 'boolean', default: false },
  },
});
const minutes = Number(values.minutes);
const count = Number(values.plugins);
const warmupSeconds = Number(values.warmup);
const sampleSeconds = Number(values.sample);
const windowSeconds = Number(values.window);
const inspect = !values['no-inspect'];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** User + system CPU time of a process, ms (USER_HZ is 100 on Linux). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A loopback TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A proxy in front of the registry that fails every other request with 503. */
async function flakyRegistry(
  upstream: string,
): Promise<{ server: Server; host: string; failed: () => number }> {
  let n = 0;
  let failed = 0;
  const [upHost, upPort] = upstream.split(':') as [string, string];
  const server = createServer((req, res) => {
    if (n++ % 2 === 0) {
      failed++;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('soak: every other request fails\n');
      return;
    }
    const forward = httpRequest(
      { host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { server, host: `127.0.0.1:${address.port}`, failed: () => failed };
}

async function engineJson(socket: string, path: string): Promise<unknown> {
  const { stdout } = await run('curl', ['-fsS', '--unix-socket', socket, `http://localhost${path}`]);
  return JSON.parse(stdout) as unknown;
}

async function main(): Promise<void> {
  const { stdout } = await run('bash', [envScript, 'up'], { maxBuffer: 1 << 24 });
  const exported = Object.fromEntries(
    [...stdout.matchAll(/^export ([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]),
  );
  const socket = exported['PE_SOCK']!;
  const docker = [exported['PE_DOCKER']!];
  const registry = await flakyRegistry(exported['PE_REG']!);
  const work = await mkdtemp(join(tmpdir(), 'plugctl-soak-'));
  const docs = join(work, 'docs');
  await mkdir(docs);
  const names = Array.from({ length: count }, (_, i) => `soak-${i + 1}`);
  await writeFile(
    join(docs, 'soak.yaml'),
    names
      .map(
        (name) =>
          `apiVersion: plugctl.dev/v1alpha1\nkind: DockerPlugin\nmetadata: { name: ${name} }\nspec:\n` +
          `  remote: ${registry.host}/test/vol:1.0\n  alias: ${name}\n` +
          `  privileges: [{ name: network, value: [host] }]\n`,
      )
      .join('---\n'),
  );
  // A port chosen here: at --log-level warn the controller does not log the address it listens on.
  const address = `127.0.0.1:${await freePort()}`;
  const inspectPort = await freePort();
  const nodeOptions = [
    process.env['NODE_OPTIONS'],
    inspect ? `--inspect=127.0.0.1:${inspectPort}` : undefined,
  ]
    .filter((o) => o !== undefined && o !== '')
    .join(' ');
  const child = spawn(
    process.execPath,
    [
      join(root, 'bin/plugctl.js'),
      '--state-dir',
      join(work, 'state'),
      '--log-level',
      'warn',
      '--insecure-registry',
      registry.host,
      'run',
      '-f',
      docs,
      '--listen',
      address,
    ],
    {
      env: { ...process.env, DOCKER_HOST: `unix://${socket}`, NODE_OPTIONS: nodeOptions },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const stderr: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line !== '') stderr.push(line);
  });
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`http://${address}/metrics`)).text();
    let sum = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
    return sum;
  };
  const series = async (): Promise<number> =>
    (await (await fetch(`http://${address}/metrics`)).text()).split('\n').filter((l) => /^[a-z]/.test(l))
      .length;
  const enabledCount = async (): Promise<number> => {
    const plugins = (await engineJson(socket, '/plugins')) as { Name: string; Enabled: boolean }[];
    return plugins.filter((p) => p.Enabled && p.Name.startsWith('soak-')).length;
  };

  let session: InspectorSession | undefined;
  try {
    const startedAt = Date.now();
    while ((await enabledCount().catch(() => 0)) < count) {
      if (child.exitCode !== null)
        throw new Error(`plugctl run exited ${child.exitCode}:\n${stderr.join('\n')}`);
      if (Date.now() - startedAt > 600_000) throw new Error('the plugins never converged');
      await sleep(500);
    }
    const convergeMs = Date.now() - startedAt;
    // after convergence: `plugctl run` restarts node once at start-up (bin/launch.js), inspector included
    if (inspect) session = await InspectorSession.connect(inspectPort);
    // One forced-GC reading, thrown away, before the warm-up: what the inspector session, the report
    // and a first forced GC allocate once is then part of the baseline, and the heap has the whole
    // warm-up to grow back to its working size.
    await session?.read(child.pid!);

    let round = 0;
    /** Disables a random plugin every second until `until`; the time each took to heal goes to `heal`. */
    const disableUntil = async (
      until: number,
      heal: number[],
      onSecond?: () => Promise<void>,
    ): Promise<number> => {
      let unhealed = 0;
      while (Date.now() < until) {
        const name = `${names[Math.floor(Math.random() * names.length)]!}:latest`;
        const id = ((await engineJson(socket, `/plugins/${name}/json`)) as { Id: string }).Id;
        const typed = [name.replace(/:latest$/, ''), name, id, id.slice(0, 12)][round++ % 4]!;
        const started = Date.now();
        await run(docker[0]!, ['plugin', 'disable', typed], {
          env: { ...process.env, DOCKER_HOST: `unix://${socket}` },
        }).catch(() => undefined);
        // the drift exists once the engine has disabled the plugin: the docker CLI's own start-up and
        // the engine's stop of the plugin are not plugctl's time to heal
        const t0 = Date.now();
        let healed = false;
        while (Date.now() - t0 < 30_000) {
          const plugin = (await engineJson(socket, `/plugins/${name}/json`).catch(() => undefined)) as
            { Enabled: boolean } | undefined;
          if (plugin?.Enabled === true) {
            heal.push(Date.now() - t0);
            healed = true;
            break;
          }
          await sleep(10);
        }
        if (!healed) unhealed++;
        await onSecond?.();
        await sleep(Math.max(0, 1000 - (Date.now() - started)));
      }
      return unhealed;
    };
    const alive = (): void => {
      if (child.exitCode !== null)
        throw new Error(`plugctl run exited ${child.exitCode}:\n${stderr.join('\n')}`);
    };

    // Warm-up: the same load, not measured, so that "start" is the steady state.
    const warmHeal: number[] = [];
    const warmUnhealed = await disableUntil(Date.now() + warmupSeconds * 1000, warmHeal);
    alive();
    const readAt = async (label: string): Promise<MemoryReading | undefined> => {
      if (session === undefined) return undefined;
      const reading = await session.read(child.pid!);
      if (values.snapshots !== undefined) {
        await mkdir(values.snapshots, { recursive: true });
        await session.heapSnapshot(join(values.snapshots, `${label}.heapsnapshot`));
      }
      return reading;
    };
    const failedStart = registry.failed();
    const reconcilesStart = await metric('plugctl_reconciles_total');
    const seriesStart = await series();
    const cpuStart = cpuMs(child.pid!);

    // The measured window. RSS is sampled every second; "start" and "end" are the means of the first
    // and the last `window` seconds, as a single reading lands anywhere on the sawtooth of V8's young
    // generation and old space. The forced-GC readings come right after the start window and right
    // after the end. Every `sample` seconds /metrics is scraped (as Prometheus would) and a line
    // printed, so a trend is visible and not only two points.
    const heal: number[] = [];
    const measuredFrom = Date.now();
    const measuredUntil = measuredFrom + minutes * 60_000;
    const windowMs = windowSeconds * 1000;
    const rssSamples: { at: number; rss: Rss }[] = [];
    let smapsStart: Mapping[] | undefined;
    let start: MemoryReading | undefined;
    let nextSample = measuredFrom + sampleSeconds * 1000;
    const unhealed = await disableUntil(measuredUntil, heal, async () => {
      rssSamples.push({ at: Date.now(), rss: readRss(child.pid!) });
      if (smapsStart === undefined && Date.now() >= measuredFrom + windowMs) {
        smapsStart = readSmaps(child.pid!);
        start = await readAt('start');
      }
      if (Date.now() < nextSample) return;
      nextSample += sampleSeconds * 1000;
      alive();
      const reconciles = (await metric('plugctl_reconciles_total')) - reconcilesStart;
      const rss = readRss(child.pid!);
      const heapUsed =
        session === undefined
          ? NaN
          : (await session.evaluate<number>('process.memoryUsage().heapUsed')) / 2 ** 20;
      console.log(
        `${Math.round((Date.now() - measuredFrom) / 1000)} s: RSS ${rss.rss.toFixed(1)} MB ` +
          `(anon ${rss.anon.toFixed(1)}, file ${rss.file.toFixed(1)}), heap used ${heapUsed.toFixed(1)} MB, ` +
          `${reconciles} reconciles, ${heal.length} healed`,
      );
    });
    alive();
    const smapsEnd = readSmaps(child.pid!);
    const end = await readAt('end');
    const smapsEndAfterGc = session === undefined ? undefined : readSmaps(child.pid!);
    const within = (from: number, to: number): Rss[] =>
      rssSamples.filter((s) => s.at >= from && s.at < to).map((s) => s.rss);
    const meanOf = (rss: Rss[]): number => rss.reduce((sum, r) => sum + r.rss, 0) / rss.length;
    const startWindow = within(measuredFrom, measuredFrom + windowMs);
    const endWindow = within(measuredUntil - windowMs, Infinity);
    const rssStart = meanOf(startWindow);
    const rssEnd = meanOf(endWindow);
    const reconciles = (await metric('plugctl_reconciles_total')) - reconcilesStart;
    const cpu = cpuMs(child.pid!) - cpuStart;
    const seriesEnd = await series();
    const unhandled = stderr.filter((l) => /unhandled/i.test(l));
    const pct = (a: number, b: number): string => {
      const d = ((b - a) / a) * 100;
      return `${d >= 0 ? '+' : ''}${d.toFixed(1)} %`;
    };
    const mb = (a: number, b: number): string => `${a.toFixed(1)} / ${b.toFixed(1)} MB (${pct(a, b)})`;
    const rows = [
      ['plugins', String(count)],
      ['first convergence (every other registry request failing)', `${(convergeMs / 1000).toFixed(1)} s`],
      [
        'warm-up before "start" (same load, not measured)',
        `${warmupSeconds} s, ${warmHeal.length} healed / ${warmUnhealed} not`,
      ],
      ['soak duration (measured)', `${minutes} min`],
      [
        'registry requests failed by the proxy, all / during the soak',
        `${registry.failed()} / ${registry.failed() - failedStart}`,
      ],
      ['disables by hand', String(heal.length + unhealed)],
      ['healed / not healed within 30 s', `${heal.length} / ${unhealed}`],
      [
        'time to heal p50 / p99 / max',
        `${percentile(heal, 50)} / ${percentile(heal, 99)} / ${Math.max(...heal)} ms`,
      ],
      ['reconciles during the soak', String(reconciles)],
      [
        'CPU of plugctl during the soak',
        `${(cpu / 1000).toFixed(1)} s (${((cpu / (minutes * 60_000)) * 100).toFixed(1)} %)`,
      ],
      ['metric series (lines of /metrics) start / end', `${seriesStart} / ${seriesEnd}`],
      [`RSS start / end (mean of the first / last ${windowSeconds} s)`, mb(rssStart, rssEnd)],
      [
        'RSS start / end (min-max of those windows)',
        `${Math.min(...startWindow.map((r) => r.rss)).toFixed(1)}-${Math.max(...startWindow.map((r) => r.rss)).toFixed(1)} / ` +
          `${Math.min(...endWindow.map((r) => r.rss)).toFixed(1)}-${Math.max(...endWindow.map((r) => r.rss)).toFixed(1)} MB`,
      ],
      ...(start !== undefined && end !== undefined
        ? [
            ['RSS after a forced GC start / end', mb(start.afterGc.rss, end.afterGc.rss)],
            [
              '  anonymous / file-backed at end (after GC)',
              `${end.afterGc.anon.toFixed(1)} / ${end.afterGc.file.toFixed(1)} MB`,
            ],
            ['V8 heap used before GC start / end', mb(start.heapUsedBeforeGc, end.heapUsedBeforeGc)],
            ['V8 heap used after GC start / end (retained)', mb(start.heapUsed, end.heapUsed)],
            ['V8 heap committed before GC start / end', mb(start.heapTotalBeforeGc, end.heapTotalBeforeGc)],
            ['V8 heap committed after GC start / end', mb(start.heapTotal, end.heapTotal)],
            ['V8 malloced (outside heap pages) start / end', mb(start.v8Malloced, end.v8Malloced)],
            ['V8 spaces before GC at start (committed / used MB)', JSON.stringify(start.spaces.before)],
            ['V8 spaces before GC at end', JSON.stringify(end.spaces.before)],
            ['V8 spaces after GC at end', JSON.stringify(end.spaces.after)],
            [
              'external / arrayBuffers start',
              `${start.external.toFixed(1)} / ${start.arrayBuffers.toFixed(1)} MB`,
            ],
            ['external / arrayBuffers end', `${end.external.toFixed(1)} / ${end.arrayBuffers.toFixed(1)} MB`],
            ['libuv handles start', JSON.stringify(start.handles)],
            ['libuv handles end', JSON.stringify(end.handles)],
          ]
        : []),
      [
        'unhandled rejections, process alive',
        `${unhandled.length}, ${child.exitCode === null ? 'yes' : 'no'}`,
      ],
      ['targets', 'heal p99 < 1 s, RSS within 10 %, 0 unhandled, alive'],
      ...(values.snapshots !== undefined
        ? [['note', 'with --snapshots the end RSS includes the start snapshot (~75 MB of C heap kept)']]
        : []),
    ];
    const width = Math.max(...rows.map((r) => r[0]!.length));
    console.log('\nsoak: plugctl run under a flaky registry and hand-made drift\n');
    for (const [k, v] of rows) console.log(`| ${k!.padEnd(width)} | ${v} |`);
    for (const line of unhandled.slice(0, 5)) console.log(`unhandled: ${line}`);
    // Where the resident memory went, mapping by mapping (read before the forced GCs).
    const where = diffSmaps(smapsStart!, smapsEnd);
    console.log('\nRSS growth start -> end by kind of mapping (kB):', JSON.stringify(where.byKind));
    for (const m of where.grown)
      console.log(`  +${m.deltaKb} kB  ${m.range} ${m.perms} size ${m.sizeKb} kB ${m.name}`);
    if (smapsEndAfterGc !== undefined)
      console.log(
        'RSS growth start -> end after the forced GC, by kind (kB):',
        JSON.stringify(diffSmaps(smapsStart!, smapsEndAfterGc).byKind),
      );
    if (values.snapshots !== undefined && session !== undefined) {
      const before = await summarizeSnapshot(join(values.snapshots, 'start.heapsnapshot'));
      const after = await summarizeSnapshot(join(values.snapshots, 'end.heapsnapshot'));
      console.log('\nheap snapshot end - start, by constructor (largest change in size first):\n');
      for (const r of diffSummaries(before, after))
        console.log(
          `${r.key.padEnd(70)} ${String(r.count).padStart(8)} (${r.countDelta >= 0 ? '+' : ''}${r.countDelta})  ` +
            `${(r.size / 1024).toFixed(0).padStart(8)} KiB (${r.sizeDelta >= 0 ? '+' : ''}${(r.sizeDelta / 1024).toFixed(1)})`,
        );
    }
  } finally {
    session?.close();
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    registry.server.close();
    await run('bash', [envScript, 'reset']);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
