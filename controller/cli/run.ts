/**
 * `plugctl run -f DIR...`: the long-running controller. Watches the documents and the engine,
 * keeps the host converged, serves /healthz, /readyz and /metrics, and shuts down gracefully on
 * SIGTERM or SIGINT (no new work; reconciles in flight finish within the shutdown timeout).
 */
import { Controller } from '../reconcile/controller.ts';
import { readInventory } from '../reconcile/inventory.ts';
import { InventoryLedger } from '../reconcile/ledger.ts';
import { FileStatusSink } from '../reconcile/status-file.ts';
import { createMetrics, recordDockerRequest } from '../observe/metrics.ts';
import { startHealthServer } from '../observe/health.ts';
import { hostLabels } from '../api/selector.ts';
import { BuildContextTrigger } from '../sources/contexts.ts';
import { EngineEventsTrigger } from '../sources/engine-events.ts';
import { FileSource } from '../sources/files.ts';
import { ResyncTrigger } from '../sources/resync.ts';
import type { CommandContext } from './context.ts';

/** Options of `run`. */
export interface RunOptions {
  filename: string[];
  resync: number;
  listen: string;
  workers: number;
  shutdownTimeout: number;
}

/** Runs the controller until a signal arrives; returns the exit code. */
export async function runCommand(options: RunOptions, ctx: CommandContext): Promise<number> {
  const log = ctx.logger;
  const metrics = createMetrics();
  const store = await ctx.openStore({
    onRequest: (method, path, outcome) => recordDockerRequest(metrics, method, path, outcome),
  });
  const stateDir = ctx.options.stateDir;
  const controller = new Controller({
    store,
    inspector: await ctx.openInspector(),
    source: new FileSource({ paths: options.filename, logger: log.child({ source: 'files' }) }),
    status: new FileStatusSink(stateDir),
    ledger: new InventoryLedger(stateDir, await readInventory(stateDir)),
    triggers: [
      new EngineEventsTrigger(store, log),
      new BuildContextTrigger(log),
      new ResyncTrigger(options.resync),
    ],
    logger: log,
    metrics,
    nodeLabels: hostLabels(ctx.options.nodeLabels),
    workers: options.workers,
  });
  const server = await startHealthServer(options.listen, {
    ready: () => controller.ready(),
    registry: metrics.registry,
  });
  log.info(
    { listen: server.address, store: store.describe(), paths: options.filename },
    'plugctl run starting',
  );

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
    await controller.stop(options.shutdownTimeout);
    await server.close();
  }
  return 0;
}
