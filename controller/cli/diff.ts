/**
 * `plugctl diff -f PATH...`: print what apply would do. Exit codes follow kubectl diff:
 * 0 no changes, 1 changes (including blocked plugins), 2 an error (a document failed to load).
 */
import { isConverged } from '../reconcile/plan.ts';
import { reconcilePass } from '../reconcile/once.ts';
import type { CommandContext } from './context.ts';
import { loadDesired } from './documents.ts';
import { renderPlans } from './render.ts';

/** Options of `diff`. */
export interface DiffOptions {
  filename: string[];
  prune: boolean;
}

/** Runs `diff`; returns the exit code. */
export async function diffCommand(options: DiffOptions, ctx: CommandContext): Promise<number> {
  const { desired, errorCount } = await loadDesired(options.filename, ctx.options.nodeLabels, ctx.io);
  const store = await ctx.openStore({ readOnly: true });
  const pass = await reconcilePass(
    { desired, prune: options.prune && errorCount === 0, dryRun: true },
    { store, inspector: await ctx.openInspector(), stateDir: ctx.options.stateDir, logger: ctx.logger },
  );
  ctx.io.out(renderPlans(pass.plans, { showUnchanged: false }));
  if (errorCount > 0) return 2;
  return isConverged(pass.plans) ? 0 : 1;
}
