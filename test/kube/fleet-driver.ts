// A stand-alone fleet side (startFleetLeader) in its own process, for tests that kill a leader with
// SIGKILL and for the fleet benchmark. Settings come as one JSON argument:
//   node test/kube/fleet-driver.ts '{"kubeconfig":"...","identity":"node-a","namespace":"plugctl-system",...}'
// Prints one JSON line per leadership change ({"leading":true|false}) and, on SIGUSR2, its stats,
// client request counts and RSS;
// SIGTERM stops it cleanly (the fleet Lease is released).
import { pino } from 'pino';
import { KubeClient } from '../../controller/kube/client.ts';
import { loadClusterConnection } from '../../controller/kube/config.ts';
import { startFleetLeader } from '../../controller/kube/fleet.ts';
import { systemClock } from '../../controller/runtime/clock.ts';

interface DriverSettings {
  kubeconfig: string;
  identity: string;
  namespace: string;
  leaseName?: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  graceMs?: number;
  heartbeatRenewMs?: number;
  logLevel?: string;
}

const settings = JSON.parse(process.argv[2] ?? '{}') as DriverSettings;
const logger = pino({ level: settings.logLevel ?? 'warn' }, pino.destination({ fd: 2, sync: true }));
const connection = await loadClusterConnection({
  kubeconfig: settings.kubeconfig,
  env: {},
  clock: systemClock,
});
const client = await KubeClient.open(connection);
const fleet = startFleetLeader({
  client,
  namespace: settings.namespace,
  identity: settings.identity,
  logger,
  ...(settings.leaseName !== undefined ? { leaseName: settings.leaseName } : {}),
  ...(settings.leaseDurationSeconds !== undefined
    ? { leaseDurationSeconds: settings.leaseDurationSeconds }
    : {}),
  ...(settings.renewDeadlineMs !== undefined ? { renewDeadlineMs: settings.renewDeadlineMs } : {}),
  ...(settings.retryPeriodMs !== undefined ? { retryPeriodMs: settings.retryPeriodMs } : {}),
  ...(settings.graceMs !== undefined ? { graceMs: settings.graceMs } : {}),
  heartbeat: { renewMs: settings.heartbeatRenewMs ?? 10_000 },
});
const say = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ identity: settings.identity, ...line })}\n`);
};
fleet.onLeadingChange((leading) => say({ leading }));
process.on('SIGUSR2', () => {
  // with --expose-gc (benchmarks): RSS after a full collection
  (globalThis as { gc?: () => void }).gc?.();
  say({
    stats: fleet.stats,
    leading: fleet.isLeader(),
    requests: client.stats.requests,
    streamBytes: client.stats.streamBytes,
    rssMB: +(process.memoryUsage().rss / 2 ** 20).toFixed(1),
  });
});
process.on('SIGTERM', () => {
  void fleet
    .stop()
    .then(() => client.close())
    .then(() => process.exit(0));
});
say({ started: true });
// keep running: the fleet's timers are unref'd
setInterval(() => {}, 60_000);
