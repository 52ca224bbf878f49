/**
 * The cost of "Ready means the plugin answers": 200 enabled plugins probed every 10 s.
 *
 *   node bench/health-probe.ts [--plugins 200] [--period 10] [--seconds 30]
 *
 * The plugins are stand-ins: 200 processes of the fixture responder (test/env/plugind.c, built with
 * gcc), each answering Plugin.Activate on its own real unix socket, as enabled plugins would. plugctl's
 * side is the controller's HealthMonitor with the real clock, probing through the same activate()
 * the stores use; its CPU is this process's CPU time over the window (after two warm-up rounds), as a
 * percentage of one core. The peer does the same calls from a shell loop with
 * `curl --unix-socket` (one process per call, what a cron or systemd health check script would
 * do); its CPU is the loop's with its children. Printed: both, and their ratio. V8 runs without
 * TurboFan, as `plugctl run` does (bin/plugctl.js), so the figure is the long-running controller's.
 */
import { setFlagsFromString } from 'node:v8';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HealthMonitor } from '../controller/reconcile/health.ts';
import { systemClock } from '../controller/runtime/clock.ts';
import { activate } from '../controller/store/activate.ts';
import type { InstalledPlugin } from '../controller/store/store.ts';
import { buildPlugind } from '../test/conformance/fixtures.ts';

const { values } = parseArgs({
  options: {
    plugins: { type: 'string', default: '200' },
    period: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '30' },
  },
});
setFlagsFromString('--no-turbofan');
const PLUGINS = Number.parseInt(values.plugins, 10);
const PERIOD_S = Number.parseInt(values.period, 10);
const WINDOW_S = Number.parseInt(values.seconds, 10);

const work = await mkdtemp(join(tmpdir(), 'plugctl-bench-probe-'));
const children: ChildProcess[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function plugin(i: number): InstalledPlugin {
  return {
    id: String(i).padStart(64, '0'),
    name: `bench-${i}:latest`,
    reference: `bench/bench-${i}:latest`,
    enabled: true,
    settings: { env: {}, args: [], mounts: {}, devices: {} },
    defaults: { env: {}, args: { name: '', value: [], settable: false }, mounts: {}, devices: {} },
    capabilities: ['volumedriver'],
    diffIds: [],
    privileges: [],
    socket: `${i}.sock`,
  };
}

try {
  const plugind = await buildPlugind(join(work, 'plugind'));
  const sockets = join(work, 's');
  await mkdir(sockets);
  for (let i = 0; i < PLUGINS; i++) {
    children.push(spawn(plugind, [join(sockets, `${i}.sock`)], { stdio: 'ignore' }));
  }
  for (let i = 0; i < PLUGINS; i++) while (!existsSync(join(sockets, `${i}.sock`))) await sleep(10);
  process.stderr.write(`${PLUGINS} responders up; probing every ${PERIOD_S} s for ${WINDOW_S} s each side\n`);

  // plugctl: the controller's monitor, real clock, probes through the stores' activate().
  let probes = 0;
  let failures = 0;
  const monitor = new HealthMonitor({
    prober: {
      activate: async (p, timeoutMs) => {
        probes++;
        await activate(join(sockets, p.socket ?? ''), timeoutMs);
      },
    },
    clock: systemClock,
    onChange: () => undefined,
    onProbeFailure: () => failures++,
  });
  const settings = { enabled: true, periodSeconds: PERIOD_S, timeoutSeconds: 2, failureThreshold: 3 };
  for (let i = 0; i < PLUGINS; i++) monitor.track(`k${i}`, plugin(i), settings);
  // warm-up: two rounds, so the garbage of starting 200 processes is collected and the code is
  // compiled before the window: the figure is the long-running controller's steady state
  await sleep(2 * PERIOD_S * 1000);
  const before = process.cpuUsage();
  const probesBefore = probes;
  const t0 = performance.now();
  await sleep(WINDOW_S * 1000);
  const cpu = process.cpuUsage(before);
  const wall = performance.now() - t0;
  const ours = ((cpu.user + cpu.system) / 1000 / wall) * 100;
  const oursUser = (cpu.user / 1000 / wall) * 100;
  const ourProbes = probes - probesBefore;
  monitor.stop();

  // peer: a shell loop, one curl per call, same period
  const script = `
    TIMEFORMAT='%U %S'
    time (
      end=$((SECONDS + ${WINDOW_S}))
      while [ $SECONDS -lt $end ]; do
        start=$SECONDS
        for i in $(seq 0 ${PLUGINS - 1}); do
          curl -s -m 2 -X POST -H 'Accept: application/vnd.docker.plugins.v1.2+json' \\
            --unix-socket "${sockets}/$i.sock" http://plugin/Plugin.Activate >/dev/null
        done
        left=$(( ${PERIOD_S} - (SECONDS - start) ))
        [ $left -gt 0 ] && sleep $left
      done
    )`;
  const t1 = performance.now();
  const peer = await new Promise<string>((resolve, reject) => {
    const bash = spawn('bash', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    bash.stderr.on('data', (d: Buffer) => (err += d.toString()));
    bash.on('error', reject);
    bash.on('close', () => resolve(err));
  });
  const peerWall = performance.now() - t1;
  const [user = 0, sys = 0] = peer.trim().split('\n').pop()!.split(' ').map(Number);
  const theirs = (((user + sys) * 1000) / peerWall) * 100;

  const rows = [
    ['', 'probes', 'failed', 'CPU % of a core'],
    ['plugctl HealthMonitor', String(ourProbes), String(failures), ours.toFixed(3)],
    ['curl --unix-socket loop', `~${Math.round((PLUGINS * WINDOW_S) / PERIOD_S)}`, '-', theirs.toFixed(3)],
  ];
  for (const r of rows)
    console.log(`${r[0]!.padEnd(26)}${r[1]!.padStart(8)}${r[2]!.padStart(8)}${r[3]!.padStart(18)}`);
  console.log(
    `\nplugctl: ${oursUser.toFixed(3)} % user + ${(ours - oursUser).toFixed(3)} % system (the kernel's side of the socket calls)`,
  );
  console.log(
    `plugctl / curl CPU ratio: ${(ours / theirs).toFixed(3)}  (limit for plugctl: < 1 % of a core: ${ours < 1 ? 'met' : 'NOT met'})`,
  );
} finally {
  for (const child of children) child.kill('SIGTERM');
  await sleep(200);
  await rm(work, { recursive: true, force: true });
}
