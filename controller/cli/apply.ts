/**
 * `plugctl apply -f PATH... [--dry-run]`: converge the host to the documents once. Exit 0 when
 * every plugin converged, 1 when any document failed to load or any plugin failed or is blocked.
 */
import { reconcilePass } from '../reconcile/once.ts';
import type { CommandContext } from './context.ts';
import { loadDesired } from './documents.ts';
import { renderPlans, renderResults } from './render.ts';

/** Options of `apply`. */
export interface ApplyOptions {
  filename: string[];
  dryRun: boolean;
  prune: boolean;
  concurrency: number;
}

/** Runs `apply`; returns the exit code. */
export async function applyCommand(options: ApplyOptions, ctx: CommandContext): Promise<number> {
  const { desired, errorCount } = await loadDesired(options.filename, ctx.options.nodeLabels, ctx.io);
  if (errorCount > 0 && options.prune) {
    ctx.io.err(
      `warning: ${errorCount} document error(s): pruning is skipped so their plugins are left alone\n`,
    );
  }
  const store = await ctx.openStore();
  const pass = await reconcilePass(
    { desired, prune: options.prune && errorCount === 0, dryRun: options.dryRun },
    {
      store,
      inspector: await ctx.openInspector(),
      stateDir: ctx.options.stateDir,
      logger: ctx.logger,
      concurrency: options.concurrency,
    },
  );
  if (pass.results === undefined) {
    ctx.io.out(renderPlans(pass.plans, { showUnchanged: false }).replace(/^Plan:/m, 'Plan (dry run):'));
    return errorCount > 0 ? 1 : 0;
  }
  ctx.io.out(renderResults(pass.results));
  return errorCount > 0 || pass.results.some((r) => r.failure !== undefined) ? 1 : 0;
}
