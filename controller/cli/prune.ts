/**
 * `plugctl prune --set NAME [--dry-run]`: removes every plugin an apply set owns, after printing the
 * plan — the way to retire a set whose documents no longer exist, since an empty or missing source
 * never removes anything by itself. Plugins of other sets, and plugins plugctl does not own, are
 * never touched. Exit 0 when done (or nothing to do), 1 when a plugin could not be removed.
 */
import { readInventory } from '../reconcile/inventory.ts';
import { reconcilePass } from '../reconcile/once.ts';
import { SpecError } from '../errors.ts';
import { setNameProblem } from './apply-set.ts';
import type { CommandContext } from './context.ts';
import { renderPlans, renderResults } from './render.ts';

/** Options of `prune`. */
export interface PruneOptions {
  set: string;
  dryRun: boolean;
}

/** Runs `prune`; returns the exit code. */
export async function pruneCommand(options: PruneOptions, ctx: CommandContext): Promise<number> {
  const problem = setNameProblem(options.set);
  if (problem !== undefined) throw new SpecError('INVALID_SET_NAME', `--set: ${problem}`);
  const inventory = await readInventory(ctx.options.stateDir);
  const owned = Object.values(inventory.plugins).filter((p) => p.set === options.set).length;
  if (owned === 0) {
    ctx.io.out(`apply set ${options.set} owns no plugins; nothing to prune.\n`);
    return 0;
  }
  const store = await ctx.openStore(options.dryRun ? { readOnly: true } : {});
  const input = { desired: [], prune: true, set: options.set };
  const deps = {
    store,
    usage: store,
    inspector: await ctx.openInspector(),
    stateDir: ctx.options.stateDir,
    logger: ctx.logger,
  };
  const plans = (await reconcilePass({ ...input, dryRun: true }, deps)).plans;
  ctx.io.out(
    renderPlans(plans, { showUnchanged: false }).replace(
      /^Plan:/m,
      options.dryRun ? 'Plan (dry run):' : 'Plan:',
    ),
  );
  if (options.dryRun) return 0;
  const pass = await reconcilePass({ ...input, dryRun: false }, deps);
  ctx.io.out(renderResults(pass.results ?? []));
  return (pass.results ?? []).some((r) => r.failure !== undefined) ? 1 : 0;
}
