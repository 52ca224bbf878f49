/**
 * The controller's Prometheus metrics, in a registry of their own (no global state), so a test can
 * build a controller and read exactly its numbers. prom-client's public API only: its metric classes,
 * and its default metrics under their conventional names (process_*, nodejs_*), which dashboards and
 * alerts written for any Node.js service already understand.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * How often prom-client's event-loop monitor samples, ms. Its default, 10 ms, is a timer waking an
 * idle controller 100 times a second; once a second still catches a blocked loop, and keeps the
 * idle process below the quiet threshold of observe/memory.ts.
 */
const EVENT_LOOP_SAMPLE_MS = 1000;

/** What plugctl_build_info reports. */
export interface BuildInfo {
  /** plugctl's version (package.json) */
  version: string;
}

/** Every metric plugctl exports. */
export interface Metrics {
  registry: Registry;
  /** reconciles by result: done, requeue, stalled, waiting, transient */
  reconciles: Counter<'result'>;
  reconcileDuration: Histogram;
  queueDepth: Gauge;
  /** declared plugins by state: ready, reconciling, stalled, suspended, skipped (not selected here) */
  plugins: Gauge<'state'>;
  /** Docker Engine API requests by method, path and outcome (status or error code) */
  dockerRequests: Counter<'method' | 'path' | 'outcome'>;
  /** Docker Engine API requests that failed (error status or transport error), by code */
  dockerErrors: Counter<'code'>;
  /** failed Plugin.Activate probes, by document key */
  probeFailures: Counter<'plugin'>;
  /** restarts of unresponsive plugins, by document key */
  restarts: Counter<'plugin'>;
}

/**
 * Builds the metrics in a fresh registry: plugctl's own, plugctl_build_info, and prom-client's
 * default metrics (CPU, memory, fds, heap, GC, event loop lag, nodejs_version_info).
 */
export function createMetrics(build: BuildInfo = { version: 'unknown' }): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  new Gauge({
    name: 'plugctl_build_info',
    help: 'plugctl build information: always 1, labelled with the version and the Node.js it runs on',
    labelNames: ['version', 'node'],
    registers,
  }).set({ version: build.version, node: process.versions.node }, 1);
  return {
    registry,
    reconciles: new Counter({
      name: 'plugctl_reconciles_total',
      help: 'Reconciles by result',
      labelNames: ['result'],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'plugctl_reconcile_duration_seconds',
      help: 'Time taken by one reconcile of one key',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'plugctl_queue_depth',
      help: 'Keys waiting to be reconciled',
      registers,
    }),
    plugins: new Gauge({
      name: 'plugctl_plugins',
      help: 'Declared plugins by state',
      labelNames: ['state'],
      registers,
    }),
    dockerRequests: new Counter({
      name: 'plugctl_docker_api_requests_total',
      help: 'Docker Engine API requests by method, path and outcome',
      labelNames: ['method', 'path', 'outcome'],
      registers,
    }),
    dockerErrors: new Counter({
      name: 'plugctl_docker_api_errors_total',
      help: 'Docker Engine API requests that failed, by code or HTTP status',
      labelNames: ['code'],
      registers,
    }),
    probeFailures: new Counter({
      name: 'plugctl_health_probe_failures_total',
      help: 'Plugin.Activate probes of enabled plugins that failed, by DockerPlugin',
      labelNames: ['plugin'],
      registers,
    }),
    restarts: new Counter({
      name: 'plugctl_plugin_restarts_total',
      help: 'Restarts (disable, enable) of plugins that stopped answering, by DockerPlugin',
      labelNames: ['plugin'],
      registers,
    }),
  };
}

/**
 * Records one engine request. Plugin names in paths are replaced by `{name}`, and container IDs
 * (the in-use lookup's inspects) by `{id}`, so the label set stays bounded however many plugins and
 * containers come and go.
 */
export function recordDockerRequest(
  metrics: Metrics,
  method: string,
  path: string,
  outcome: number | string,
): void {
  const template = path
    .replace(/^\/plugins\/(?!privileges$|pull$|create$)[^/]+(?:\/[^/]+)*?(\/[a-z]+)?$/, '/plugins/{name}$1')
    .replace(/^\/containers\/(?!json$)[^/]+\/json$/, '/containers/{id}/json');
  metrics.dockerRequests.inc({ method, path: template, outcome: String(outcome) });
  if (typeof outcome === 'string' || outcome >= 400) metrics.dockerErrors.inc({ code: String(outcome) });
}

/**
 * Drops the per-DockerPlugin series (probe failures, restarts) of `key`, whose document is gone, so a
 * long-running controller keeps series only for what is declared however many documents come and go.
 */
export function forgetPluginSeries(metrics: Metrics, key: string): void {
  metrics.probeFailures.remove({ plugin: key });
  metrics.restarts.remove({ plugin: key });
}

/** What an API server client has counted (kube/client.ts ClientStats), read at each scrape. */
export interface ApiClientCounts {
  requests: number;
  streams: number;
  streamBytes: number;
}

/**
 * Adds the Kubernetes API client's own counters to `registry`, read from `counts()` at each scrape:
 * `plugctl_kube_requests_total` (requests sent, watch streams included),
 * `plugctl_kube_watch_streams_total` and `plugctl_kube_watch_bytes_total` (bytes received on watch
 * streams). They show that an idle agent's traffic is watches, not polling (bench/kube-agents.ts).
 */
export function registerApiClientMetrics(registry: Registry, counts: () => ApiClientCounts): void {
  const counter = (name: string, help: string, read: (c: ApiClientCounts) => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        // the client keeps the running total: the counter only mirrors it
        this.reset();
        this.inc(read(counts()));
      },
    });
  };
  counter('plugctl_kube_requests_total', 'Requests sent to the Kubernetes API server', (c) => c.requests);
  counter(
    'plugctl_kube_watch_streams_total',
    'Watch streams opened on the Kubernetes API server',
    (c) => c.streams,
  );
  counter(
    'plugctl_kube_watch_bytes_total',
    'Bytes received on Kubernetes watch streams',
    (c) => c.streamBytes,
  );
}
