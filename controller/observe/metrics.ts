/**
 * The controller's Prometheus metrics, in a registry of their own (no global state), so a test can
 * build a controller and read exactly its numbers.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric plugctl exports. */
export interface Metrics {
  registry: Registry;
  /** reconciles by result: done, requeue, stalled, waiting, transient */
  reconciles: Counter<'result'>;
  reconcileDuration: Histogram;
  queueDepth: Gauge;
  /** declared plugins by state: ready, reconciling, stalled, suspended */
  plugins: Gauge<'state'>;
  /** Docker Engine API requests by method, path and outcome (status or error code) */
  dockerRequests: Counter<'method' | 'path' | 'outcome'>;
  /** Docker Engine API requests that failed (error status or transport error), by code */
  dockerErrors: Counter<'code'>;
}

/** Builds the metrics in a fresh registry; process metrics (RSS, CPU, event loop) are included. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  // The event-loop monitor samples on a timer; at prom-client's default 10 ms it alone keeps an idle
  // controller waking 100 times a second. One sample a second is plenty for a lag gauge.
  collectDefaultMetrics({ register: registry, prefix: 'plugctl_', eventLoopMonitoringPrecision: 1000 });
  const registers = [registry];
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
    queueDepth: new Gauge({ name: 'plugctl_queue_depth', help: 'Keys waiting to be reconciled', registers }),
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
  };
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
