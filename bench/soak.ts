/**
 * Soak: `plugctl run` keeping 50 declared plugins converged on the real dockerd for a long time while
 * the world misbehaves:
 * - the registry sits behind a loopback proxy that answers every other request with 503 (plugctl's
 *   own registry reads and the engine's pulls both go through it);
 * - a helper disables a random plugin every second, by one of the names people type (short name,
 *   full name, full ID, ID prefix), as `docker plugin disable` does it.
 * It prints the reconciles done, how long drift took to heal (p50, p99, max), the controller's RSS
 * at the start and the end (target: within 10 %), and whether anything went unhandled (target: no
 * unhandled rejection, the process still running).
 *
 * Usage: node bench/soak.ts [--minutes 10] [--plugins 50]
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const envScript = join(root, 'test/env/plugin-env.sh');
const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '10' }, plugins: { type: 'string', default: '50' } },
});
const minutes = Number(values.minutes);
const count = Number(values.plugins);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) / 1024;
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
    { env: { ...process.env, DOCKER_HOST: `unix://${socket}` }, stdio: ['ignore', 'ignore', 'pipe'] },
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
  const enabledCount = async (): Promise<number> => {
    const plugins = (await engineJson(socket, '/plugins')) as { Name: string; Enabled: boolean }[];
    return plugins.filter((p) => p.Enabled && p.Name.startsWith('soak-')).length;
  };

  try {
    const startedAt = Date.now();
    while ((await enabledCount().catch(() => 0)) < count) {
      if (child.exitCode !== null)
        throw new Error(`plugctl run exited ${child.exitCode}:\n${stderr.join('\n')}`);
      if (Date.now() - startedAt > 600_000) throw new Error('the plugins never converged');
      await sleep(500);
    }
    const convergeMs = Date.now() - startedAt;
    await sleep(5000);
    const rssStart = rssMb(child.pid!);
    const heapStart = (await metric('nodejs_heap_size_used_bytes')) / 2 ** 20;
    const reconcilesStart = await metric('plugctl_reconciles_total');

    const heal: number[] = [];
    let unhealed = 0;
    const until = Date.now() + minutes * 60_000;
    let round = 0;
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
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
    const rssEnd = rssMb(child.pid!);
    const heapEnd = (await metric('nodejs_heap_size_used_bytes')) / 2 ** 20;
    const reconciles = (await metric('plugctl_reconciles_total')) - reconcilesStart;
    const unhandled = stderr.filter((l) => /unhandled/i.test(l));
    const drift = ((rssEnd - rssStart) / rssStart) * 100;
    const rows = [
      ['plugins', String(count)],
      ['first convergence (every other registry request failing)', `${(convergeMs / 1000).toFixed(1)} s`],
      ['soak duration', `${minutes} min`],
      ['registry requests failed by the proxy', String(registry.failed())],
      ['disables by hand', String(heal.length + unhealed)],
      ['healed / not healed within 30 s', `${heal.length} / ${unhealed}`],
      [
        'time to heal p50 / p99 / max',
        `${percentile(heal, 50)} / ${percentile(heal, 99)} / ${Math.max(...heal)} ms`,
      ],
      ['reconciles during the soak', String(reconciles)],
      [
        'RSS start / end',
        `${rssStart.toFixed(1)} / ${rssEnd.toFixed(1)} MB (${drift >= 0 ? '+' : ''}${drift.toFixed(1)} %)`,
      ],
      ['V8 heap used start / end (a leak grows it)', `${heapStart.toFixed(1)} / ${heapEnd.toFixed(1)} MB`],
      [
        'unhandled rejections, process alive',
        `${unhandled.length}, ${child.exitCode === null ? 'yes' : 'no'}`,
      ],
      ['targets', 'heal p99 < 1 s, RSS within 10 %, 0 unhandled, alive'],
    ];
    const width = Math.max(...rows.map((r) => r[0]!.length));
    console.log('\nsoak: plugctl run under a flaky registry and hand-made drift\n');
    for (const [k, v] of rows) console.log(`| ${k!.padEnd(width)} | ${v} |`);
    for (const line of unhandled.slice(0, 5)) console.log(`unhandled: ${line}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    registry.server.close();
    await run('bash', [envScript, 'reset']);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
