/**
 * The controller's Prometheus metrics, in a registry of their own (no global state), so a test can
 * build a controller and read exactly its numbers.
 *
 * Memory matters here because `plugctl run` idles for weeks: prom-client's index loads every part of
 * the library (Summary with tdigest, Pushgateway with http/https/zlib, the cluster aggregator) and its
 * default collectors load @opentelemetry/api and keep timers and observers running: ~21 MB resident in a
 * bare process against ~3 MB for the four classes used (~1.5 MB less in an idle controller, where part
 * of it is shared with other modules), for a handful of series. So only those classes are loaded, from
 * prom-client's own modules, and the few process metrics worth having are computed when scraped,
 * with prom-client's names, by processMetrics() below.
 */
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';

// prom-client's modules by path: each exports its class as module.exports (typed by the package's
// index.d.ts). The package has no "exports" map, so these paths are part of what it ships.
const requireModule = createRequire(import.meta.url);
const RegistryClass = requireModule('prom-client/lib/registry.js') as typeof Registry;
const CounterClass = requireModule('prom-client/lib/counter.js') as typeof Counter;
const GaugeClass = requireModule('prom-client/lib/gauge.js') as typeof Gauge;
const HistogramClass = requireModule('prom-client/lib/histogram.js') as typeof Histogram;

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

/** Builds the metrics in a fresh registry; process metrics (CPU, memory, fds, event loop lag) are included. */
export function createMetrics(): Metrics {
  const registry = new RegistryClass();
  const registers = [registry];
  processMetrics(registers);
  return {
    registry,
    reconciles: new CounterClass({
      name: 'plugctl_reconciles_total',
      help: 'Reconciles by result',
      labelNames: ['result'],
      registers,
    }),
    reconcileDuration: new HistogramClass({
      name: 'plugctl_reconcile_duration_seconds',
      help: 'Time taken by one reconcile of one key',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    queueDepth: new GaugeClass({
      name: 'plugctl_queue_depth',
      help: 'Keys waiting to be reconciled',
      registers,
    }),
    plugins: new GaugeClass({
      name: 'plugctl_plugins',
      help: 'Declared plugins by state',
      labelNames: ['state'],
      registers,
    }),
    dockerRequests: new CounterClass({
      name: 'plugctl_docker_api_requests_total',
      help: 'Docker Engine API requests by method, path and outcome',
      labelNames: ['method', 'path', 'outcome'],
      registers,
    }),
    dockerErrors: new CounterClass({
      name: 'plugctl_docker_api_errors_total',
      help: 'Docker Engine API requests that failed, by code or HTTP status',
      labelNames: ['code'],
      registers,
    }),
    probeFailures: new CounterClass({
      name: 'plugctl_health_probe_failures_total',
      help: 'Plugin.Activate probes of enabled plugins that failed, by DockerPlugin',
      labelNames: ['plugin'],
      registers,
    }),
    restarts: new CounterClass({
      name: 'plugctl_plugin_restarts_total',
      help: 'Restarts (disable, enable) of plugins that stopped answering, by DockerPlugin',
      labelNames: ['plugin'],
      registers,
    }),
  };
}

/**
 * The process metrics of prom-client's collectDefaultMetrics that tell whether the controller is
 * healthy, under the same names (prefixed `plugctl_`). Every value is read when /metrics is scraped:
 * nothing runs between scrapes, so an idle controller stays idle (no event-loop monitor timer, no GC
 * observer).
 */
function processMetrics(registers: Registry[]): void {
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  new GaugeClass({
    name: 'plugctl_process_start_time_seconds',
    help: 'Start time of the process since unix epoch in seconds.',
    registers,
    collect() {
      this.set(startSeconds);
    },
  });

  // Counters only go up: each scrape adds the CPU time used since the previous one (since the process
  // started, at the first). The user counter is registered first, so that its collect sets all three
  // before any of them is read.
  let last: NodeJS.CpuUsage = { user: 0, system: 0 };
  new CounterClass({
    name: 'plugctl_process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      const now = process.cpuUsage();
      const user = now.user - last.user;
      const system = now.system - last.system;
      last = now;
      this.inc(user / 1e6);
      cpuSystem.inc(system / 1e6);
      cpuTotal.inc((user + system) / 1e6);
    },
  });
  const cpuSystem = new CounterClass({
    name: 'plugctl_process_cpu_system_seconds_total',
    help: 'Total system CPU time spent in seconds.',
    registers,
  });
  const cpuTotal = new CounterClass({
    name: 'plugctl_process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
  });

  new GaugeClass({
    name: 'plugctl_process_resident_memory_bytes',
    help: 'Resident memory size in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  // As for CPU: the gauge whose collect sets all three is registered first.
  new GaugeClass({
    name: 'plugctl_nodejs_heap_size_total_bytes',
    help: 'Process heap size from Node.js in bytes.',
    registers,
    collect() {
      const usage = process.memoryUsage();
      this.set(usage.heapTotal);
      heapUsed.set(usage.heapUsed);
      external.set(usage.external);
    },
  });
  const heapUsed = new GaugeClass({
    name: 'plugctl_nodejs_heap_size_used_bytes',
    help: 'Process heap size used from Node.js in bytes.',
    registers,
  });
  const external = new GaugeClass({
    name: 'plugctl_nodejs_external_memory_bytes',
    help: 'Node.js external memory size in bytes.',
    registers,
  });

  new GaugeClass({
    name: 'plugctl_process_open_fds',
    help: 'Number of open file descriptors.',
    registers,
    collect() {
      try {
        this.set(readdirSync('/proc/self/fd').length - 1); // minus the one readdir itself held open
      } catch {
        // not Linux: the gauge stays absent rather than wrong
      }
    },
  });

  new GaugeClass({
    name: 'plugctl_nodejs_eventloop_lag_seconds',
    help: 'Lag of event loop in seconds.',
    registers,
    // measured by the scrape itself: how long a callback queued now waits for its turn
    async collect() {
      const start = performance.now();
      await new Promise((resolve) => setImmediate(resolve));
      this.set((performance.now() - start) / 1000);
    },
  });
}

/**
 * Records one engine request. Plugin names in paths are replaced by `{name}` so the label set stays
 * bounded however many plugins there are.
 */
export function recordDockerRequest(
  metrics: Metrics,
  method: string,
  path: string,
  outcome: number | string,
): void {
  const template = path.replace(
    /^\/plugins\/(?!privileges$|pull$|create$)[^/]+(?:\/[^/]+)*?(\/[a-z]+)?$/,
    '/plugins/{name}$1',
  );
  metrics.dockerRequests.inc({ method, path: template, outcome: String(outcome) });
  if (typeof outcome === 'string' || outcome >= 400) metrics.dockerErrors.inc({ code: String(outcome) });
}
