/**
 * `plugctl run -f DIR...`: the long-running controller. Watches the documents and the engine,
 * keeps the host converged, serves /healthz, /readyz and /metrics, takes `plugctl reconcile`
 * requests (POST /reconcile with the token of `<state-dir>/controller.json`), and shuts down
 * gracefully on SIGTERM or SIGINT (no new work; reconciles in flight finish within the shutdown timeout).
 */
import { STDIN_PATH } from '../api/load.ts';
import { Controller } from '../reconcile/controller.ts';
import { readInventory } from '../reconcile/inventory.ts';
import { InventoryLedger } from '../reconcile/ledger.ts';
import { FileStatusSink } from '../reconcile/status-file.ts';
import { createMetrics, recordDockerRequest } from '../observe/metrics.ts';
import { startHealthServer } from '../observe/health.ts';
import { BuildContextTrigger } from '../sources/contexts.ts';
import { EngineEventsTrigger } from '../sources/engine-events.ts';
import { FileSource } from '../sources/files.ts';
import { HostLabelsWatcher } from '../sources/host-labels.ts';
import { ResyncTrigger } from '../sources/resync.ts';
import { applySetName } from './apply-set.ts';
import { newToken, publishEndpoint, reconcileRoute } from './endpoint.ts';
import type { CommandContext } from './context.ts';
import { MUST_SPECIFY_F, missingFilename } from './one-shot.ts';
import { packageVersion } from './package-version.ts';

/** How often the persistent host labels (engine, labels file) are read again. */
const LABELS_REFRESH_MS = 60_000;

/** Options of `run`. */
export interface RunOptions {
  filename?: string[];
  set?: string;
  takeOwnership: boolean;
  resync: number;
  listen: string;
  workers: number;
  shutdownTimeout: number;
}

/** Runs the controller until a signal arrives; returns the exit code. */
export async function runCommand(options: RunOptions, ctx: CommandContext): Promise<number> {
  if (missingFilename(options)) {
    ctx.io.err(MUST_SPECIFY_F);
    return 2;
  }
  const paths = options.filename!;
  if (paths.includes(STDIN_PATH)) {
    ctx.io.err('error: plugctl run watches files and directories; standard input (-f -) cannot be watched\n');
    return 2;
  }
  const set = await applySetName(options.set, paths);
  const log = ctx.logger;
  const version = packageVersion();
  const metrics = createMetrics({ version });
  const store = await ctx.openStore({
    onRequest: (method, path, outcome) => recordDockerRequest(metrics, method, path, outcome),
  });
  const stateDir = ctx.options.stateDir;
  const labelSources = ctx.labelSources(store);
  const labels = new HostLabelsWatcher(
    labelSources,
    await ctx.hostLabels(store),
    LABELS_REFRESH_MS,
    log.child({ source: 'labels' }),
  );
  const controller = new Controller({
    store,
    inspector: await ctx.openInspector(),
    secrets: ctx.secrets(),
    source: new FileSource({ paths, logger: log.child({ source: 'files' }) }),
    status: new FileStatusSink(stateDir),
    ledger: new InventoryLedger(stateDir, await readInventory(stateDir)),
    triggers: [
      new EngineEventsTrigger(store, log),
      new BuildContextTrigger(log),
      new ResyncTrigger(options.resync),
      labels,
    ],
    logger: log,
    metrics,
    labels,
    set,
    takeOwnership: options.takeOwnership,
    workers: options.workers,
    prober: store,
    usage: store,
  });
  const token = newToken();
  const server = await startHealthServer(options.listen, {
    ready: () => controller.ready(),
    registry: metrics.registry,
    routes: { 'POST /reconcile': reconcileRoute(controller, token) },
  });
  const endpoint = await publishEndpoint(stateDir, server.address, token);
  log.info({ version, listen: server.address, store: store.describe(), paths, set }, 'plugctl run starting');

  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  try {
    await controller.start();
    log.info('watching');
    const signal = await stopped;
    log.info({ signal }, 'shutting down');
  } finally {
    await endpoint.remove();
    await controller.stop(options.shutdownTimeout);
    await server.close();
  }
  return 0;
}
