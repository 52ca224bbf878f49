/**
 * `plugctl run` benchmarks, each printed as a table:
 *
 * 1. Reaction latency: a document edit (enabled true <-> false) to the first Docker API request it
 *    causes, seen by a unix-socket proxy in front of the real dockerd. Target p50 <= 100 ms, p99 <= 250 ms.
 *    And drift: a plugin disabled by hand on the engine to plugctl's enable request, which only the
 *    engine's event stream can cause (the resync is minutes away). Target p50 <= 1 s.
 * 2. No-op resync with N = 100, 1000, 10000 converged plugins: list calls per resync and CPU per
 *    resync of the plugctl process. The engine here is a minimal loopback stand-in that answers the
 *    listing (no dockerd can hold 10000 plugins); plugctl's code path is the real one. Targets:
 *    exactly one list per resync; <= 50 ms CPU at 1000; 10000 costs <= 12x 1000.
 * 3. Idle: RSS and CPU over a minute with 20 real plugins converged on the real dockerd.
 *
 * Usage: node bench/controller.ts [--edits 200] [--drifts 20] [--idle-seconds 60] [--only latency,resync,idle]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const envScript = join(root, 'test/env/plugin-env.sh');
const TICK_MS = 1000 / 100; // USER_HZ on Linux
const { values } = parseArgs({
  options: {
    edits: { type: 'string', default: '200' },
    drifts: { type: 'string', default: '20' },
    'idle-seconds': { type: 'string', default: '60' },
    only: { type: 'string', default: 'latency,resync,idle' },
  },
});
const only = new Set(values.only.split(','));

function table(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\n${title}\n`);
  console.log(
    [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'),
  );
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime + stime
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  if (process.env.BENCH_DEBUG) console.error(`[bench] waiting for ${what}`);
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A `plugctl run` child process. */
interface Plugctl {
  child: ChildProcess;
  address: () => string;
  stop: () => Promise<void>;
}

async function startPlugctl(
  dockerHost: string,
  docs: string,
  state: string,
  extra: string[],
): Promise<Plugctl> {
  const child = spawn(
    process.execPath,
    [
      join(root, 'bin/plugctl.js'),
      '--state-dir',
      state,
      '--log-level',
      'info',
      'run',
      '-f',
      docs,
      '--listen',
      '127.0.0.1:0',
      ...extra,
    ],
    { env: { ...process.env, DOCKER_HOST: dockerHost }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let address = '';
  let ready = false;
  child.stderr!.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    address ||= /"listen":"([^"]+)"/.exec(text)?.[1] ?? '';
    if (text.includes('"msg":"watching"')) ready = true;
  });
  await until('plugctl run to start', () => ready || child.exitCode !== null);
  if (child.exitCode !== null) throw new Error(`plugctl run exited ${child.exitCode}`);
  return {
    child,
    address: () => address,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

async function readyz(p: Plugctl): Promise<boolean> {
  try {
    return (await fetch(`http://${p.address()}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

function doc(name: string, remote: string, enabled = true): string {
  return `apiVersion: plugctl.dev/v1alpha1\nkind: DockerPlugin\nmetadata:\n  name: ${name}\nspec:\n  remote: ${remote}\n  alias: ${name}\n  enabled: ${enabled}\n  grantAllPrivileges: true\n`;
}

// ---------------------------------------------------------------------------------------------

/** A unix-socket proxy that notes when each request line passes through. */
async function startProxy(
  socket: string,
  upstream: string,
): Promise<{ server: Server; requests: { at: number; line: string }[] }> {
  const requests: { at: number; line: string }[] = [];
  const server = createServer((client) => {
    const target = connect(upstream);
    client.on('data', (chunk: Buffer) => {
      const at = performance.now();
      for (const match of chunk
        .toString('latin1')
        .matchAll(/(?:^|\r\n)(GET|POST|DELETE|PUT|HEAD) (\S+) HTTP\/1\.1/g)) {
        requests.push({ at, line: `${match[1]} ${match[2]}` });
      }
      target.write(chunk);
    });
    target.pipe(client);
    client.on('error', () => target.destroy());
    target.on('error', () => client.destroy());
    client.on('close', () => target.destroy());
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { server, requests };
}

/** The engine's own view of a plugin's enabled state, asked directly (not through the proxy). */
async function enabledOnEngine(socket: string, name: string): Promise<boolean | undefined> {
  const { stdout } = await run('curl', [
    '-fsS',
    '--unix-socket',
    socket,
    `http://localhost/plugins/${name}/json`,
  ]).catch(() => ({
    stdout: '',
  }));
  return stdout === '' ? undefined : (JSON.parse(stdout) as { Enabled: boolean }).Enabled;
}

/** Disables a plugin on the engine directly (as someone at the host would); resolves when the engine answered. */
function disableOnEngine(socket: string, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method: 'POST', path: `/plugins/${name}/disable` }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`disable answered ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

async function benchLatency(dockerSocket: string): Promise<void> {
  const edits = Number(values.edits);
  const work = await mkdtemp(join(tmpdir(), 'plugctl-bench-latency-'));
  const proxySocket = join(work, 'proxy.sock');
  const proxy = await startProxy(proxySocket, dockerSocket);
  const docs = join(work, 'docs');
  await run('mkdir', ['-p', docs]);
  const file = join(docs, 'p.yaml');
  await writeFile(file, doc('lat', '127.0.0.1:5000/test/bench-1:1.0'));
  const p = await startPlugctl(`unix://${proxySocket}`, docs, join(work, 'state'), []);
  const latencies: number[] = [];
  const drifts: number[] = [];
  try {
    await until('first plugin enabled', () => proxy.requests.some((r) => /\/enable/.test(r.line)));
    await until('ready', () => readyz(p));
    await sleep(300);
    let enabled = true;
    for (let i = 0; i < edits; i++) {
      enabled = !enabled;
      const verb = enabled ? '/enable' : '/disable';
      const seen = proxy.requests.length;
      const start = performance.now();
      await writeFile(file, doc('lat', '127.0.0.1:5000/test/bench-1:1.0', enabled));
      await until(
        `${verb} after edit ${i}`,
        () => proxy.requests.slice(seen).some((r) => r.line.includes(verb)),
        10_000,
      );
      const first = proxy.requests.slice(seen).find((r) => r.line.includes('/plugins'))!;
      latencies.push(first.at - start);
      // Measure each edit from a quiet controller: wait until the engine reports the new state
      // (the previous action finished), then for the echo of its own engine events to pass.
      await until(
        `engine reports enabled=${enabled}`,
        async () => (await enabledOnEngine(dockerSocket, 'lat:latest')) === enabled,
      );
      await sleep(150);
    }
    // drift: the document says enabled; someone disables the plugin on the engine itself
    if (!enabled) {
      await writeFile(file, doc('lat', '127.0.0.1:5000/test/bench-1:1.0', true));
      await until(
        'engine reports enabled',
        async () => (await enabledOnEngine(dockerSocket, 'lat:latest')) === true,
      );
      await sleep(150);
    }
    for (let i = 0; i < Number(values.drifts); i++) {
      const seen = proxy.requests.length;
      await disableOnEngine(dockerSocket, 'lat:latest');
      const disabledAt = performance.now();
      await until(`/enable after drift ${i}`, () =>
        proxy.requests.slice(seen).some((r) => r.line.includes('/enable')),
      );
      drifts.push(proxy.requests.slice(seen).find((r) => r.line.includes('/enable'))!.at - disabledAt);
      await until(
        'engine reports enabled',
        async () => (await enabledOnEngine(dockerSocket, 'lat:latest')) === true,
      );
      await sleep(150);
    }
  } finally {
    await p.stop();
    proxy.server.close();
    await rm(work, { recursive: true, force: true });
  }
  table(
    `reaction latency: file write -> first Docker API request (${latencies.length} edits, real dockerd)`,
    ['p50', 'p90', 'p99', 'max', 'target'],
    [
      [50, 90, 99, 100]
        .map((q) => `${percentile(latencies, q).toFixed(1)} ms`)
        .concat('p50 <= 100 ms, p99 <= 250 ms'),
    ].map((r) => r),
  );
  if (drifts.length > 0) {
    table(
      `drift: disabled by hand on the engine -> plugctl's enable request (${drifts.length} times, engine events only)`,
      ['p50', 'p90', 'max', 'target'],
      [[50, 90, 100].map((q) => `${percentile(drifts, q).toFixed(1)} ms`).concat('p50 <= 1000 ms')],
    );
  }
}

// ---------------------------------------------------------------------------------------------

/** A stand-in engine answering what a converged `plugctl run` asks: ping, version, list, events. */
async function startStandInEngine(
  socket: string,
  n: number,
): Promise<{ close: () => void; lists: number[] }> {
  const plugins = Array.from({ length: n }, (_, i) => ({
    Id: (i + 1).toString(16).padStart(64, '0'),
    Name: `p${i}:latest`,
    PluginReference: `127.0.0.1:5000/test/p${i}:1.0`,
    Enabled: true,
    Settings: { Env: ['GREETING=hello'], Args: [], Mounts: [], Devices: [] },
    Config: {
      Env: [{ Name: 'GREETING', Value: 'hello', Settable: ['value'] }],
      Args: { Name: '', Value: [], Settable: [] },
      Interface: { Types: ['docker.volumedriver/1.0'], Socket: 'x.sock' },
      Network: { Type: 'host' },
      Linux: { Capabilities: [], Devices: [] },
      Mounts: [],
      rootfs: { type: 'layers', diff_ids: [`sha256:${(i + 1).toString(16).padStart(64, '0')}`] },
    },
  }));
  const listing = JSON.stringify(plugins);
  const lists: number[] = [];
  const server = createHttpServer((request, response) => {
    const url = request.url ?? '';
    if (url.startsWith('/_ping')) return void response.writeHead(200, { 'api-version': '1.41' }).end('OK');
    if (url === '/version')
      return void response.writeHead(200).end(JSON.stringify({ Version: '20.10.24', ApiVersion: '1.41' }));
    if (/^\/v[\d.]+\/plugins(\?|$)/.test(url)) {
      lists.push(performance.now());
      return void response.writeHead(200, { 'content-type': 'application/json' }).end(listing);
    }
    if (/^\/v[\d.]+\/events/.test(url)) return void response.writeHead(200).flushHeaders();
    if (/^\/v[\d.]+\/info/.test(url)) return void response.writeHead(200).end('{"Labels":[]}');
    response.writeHead(404).end('{"message":"not in the stand-in"}');
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { close: () => server.close(), lists };
}

async function benchResync(): Promise<void> {
  const rows: string[][] = [];
  const perResync = new Map<number, number>();
  for (const n of [100, 1000, 10000]) {
    const work = await mkdtemp(join(tmpdir(), 'plugctl-bench-resync-'));
    const engine = await startStandInEngine(join(work, 'engine.sock'), n);
    const docs = join(work, 'docs');
    await run('mkdir', ['-p', docs]);
    const perFile = 100;
    for (let f = 0; f < n / perFile; f++) {
      const texts = Array.from({ length: perFile }, (_, j) => {
        const i = f * perFile + j;
        return doc(`p${i}`, `127.0.0.1:5000/test/p${i}:1.0`) + `  settings: { env: { GREETING: hello } }\n`;
      });
      await writeFile(join(docs, `f${f}.yaml`), texts.join('---\n'));
    }
    const resyncMs = n >= 10000 ? 6000 : 2000;
    const p = await startPlugctl(`unix://${join(work, 'engine.sock')}`, docs, join(work, 'state'), [
      '--resync',
      `${resyncMs}ms`,
    ]);
    try {
      await until('first full sync', () => readyz(p), 300_000);
      const rounds = 5;
      const firstList = engine.lists.length;
      await until('a resync', () => engine.lists.length > firstList, resyncMs * 3);
      const cpu: number[] = [];
      let lists = engine.lists.length;
      let before = cpuMs(p.child.pid!);
      for (let r = 0; r < rounds; r++) {
        await until('the next resync', () => engine.lists.length > lists, resyncMs * 3);
        const after = cpuMs(p.child.pid!);
        cpu.push(after - before);
        before = after;
        lists = engine.lists.length;
      }
      const listsPerResync = (engine.lists.length - firstList - 1) / rounds;
      const mean = cpu.reduce((a, b) => a + b, 0) / cpu.length;
      perResync.set(n, mean);
      rows.push([
        String(n),
        listsPerResync.toFixed(2),
        `${mean.toFixed(1)} ms`,
        `${Math.max(...cpu).toFixed(0)} ms`,
      ]);
    } finally {
      await p.stop();
      engine.close();
      await rm(work, { recursive: true, force: true });
    }
  }
  table(
    'no-op resync (CPU of the plugctl process between two resyncs, 10 ms tick resolution, mean of 5)',
    ['declared plugins', 'list calls per resync', 'CPU per resync', 'worst'],
    rows,
  );
  const ratio = (perResync.get(10000) ?? 0) / Math.max(perResync.get(1000) ?? 1, TICK_MS);
  console.log(`\nN=10000 / N=1000: ${ratio.toFixed(1)}x (target <= 12x); N=1000 target <= 50 ms`);
}

// ---------------------------------------------------------------------------------------------

async function benchIdle(dockerHost: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'plugctl-bench-idle-'));
  const docs = join(work, 'docs');
  await run('mkdir', ['-p', docs]);
  const texts = Array.from({ length: 20 }, (_, i) =>
    doc(`idle-${i + 1}`, `127.0.0.1:5000/test/bench-${i + 1}:1.0`),
  );
  await writeFile(join(docs, 'idle.yaml'), texts.join('---\n'));
  const p = await startPlugctl(dockerHost, docs, join(work, 'state'), []);
  const seconds = Number(values['idle-seconds']);
  try {
    await until('20 plugins converged', () => readyz(p), 300_000);
    await sleep(3000); // let the echo of its own actions settle
    const cpu0 = cpuMs(p.child.pid!);
    const samples: number[] = [];
    for (let s = 0; s < seconds; s++) {
      await sleep(1000);
      samples.push(rssMb(p.child.pid!));
    }
    const cpu = cpuMs(p.child.pid!) - cpu0;
    table(
      `idle with 20 plugins converged on the real dockerd, over ${seconds} s`,
      ['RSS (max)', 'RSS (last)', 'CPU', 'CPU %', 'target'],
      [
        [
          `${Math.max(...samples).toFixed(1)} MB`,
          `${samples.at(-1)!.toFixed(1)} MB`,
          `${cpu.toFixed(0)} ms`,
          `${((cpu / (seconds * 1000)) * 100).toFixed(3)} %`,
          'RSS <= 70 MB, ~0 % CPU',
        ],
      ],
    );
  } finally {
    await p.stop();
    await rm(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (only.has('resync')) await benchResync();
  if (!only.has('latency') && !only.has('idle')) return;
  await run('bash', [envScript, 'up'], { maxBuffer: 1 << 24 });
  await run('bash', [envScript, 'build-bench'], { maxBuffer: 1 << 24 });
  const dir = process.env.PE_DIR ?? '/tmp/plugctl-env';
  const socket = join(dir, 'docker.sock');
  if (!existsSync(socket)) throw new Error(`no dockerd socket at ${socket}`);
  try {
    if (only.has('latency')) await benchLatency(socket);
    await run('bash', [envScript, 'reset']);
    if (only.has('idle')) await benchIdle(`unix://${socket}`);
  } finally {
    await run('bash', [envScript, 'down']);
  }
}

await main();
