/**
 * `plugctl diff -f PATH...`: print what apply would do. Exit codes follow kubectl diff: 0 no
 * differences; 1 differences, including plugins that would be blocked (the output says so); 2 errors:
 * invalid documents, a registry, engine or build context that cannot be read, ownership conflicts.
 */
import { isConverged, isPlanError } from '../reconcile/plan.ts';
import { reconcilePass } from '../reconcile/once.ts';
import type { CommandContext } from './context.ts';
import { MUST_SPECIFY_F, missingFilename, prepareOneShot, type OneShotOptions } from './one-shot.ts';
import { colorEnabled } from './color.ts';
import { renderPlans } from './render.ts';

/** Options of `diff`. */
export interface DiffOptions extends OneShotOptions {
  prune: boolean;
  takeOwnership: boolean;
}

/** Runs `diff`; returns the exit code. */
export async function diffCommand(options: DiffOptions, ctx: CommandContext): Promise<number> {
  if (missingFilename(options)) {
    ctx.io.err(MUST_SPECIFY_F);
    return 2;
  }
  const shot = await prepareOneShot({ ...options, filename: options.filename! }, ctx, true);
  const { documents } = shot;
  if (shot.prune.warning !== undefined) ctx.io.err(`warning: ${shot.prune.warning}\n`);
  const pass = await reconcilePass(
    {
      desired: documents.desired,
      skipped: documents.skipped,
      prune: shot.prune.prune,
      set: shot.set,
      takeOwnership: options.takeOwnership,
      dryRun: true,
    },
    {
      store: shot.store,
      usage: shot.store,
      inspector: shot.inspector,
      stateDir: ctx.options.stateDir,
      secrets: ctx.secrets(),
      logger: ctx.logger,
    },
  );
  ctx.io.out(
    renderPlans(pass.plans, {
      showUnchanged: false,
      invalid: documents.errorCount,
      color: colorEnabled(ctx.env, process.stdout),
    }),
  );
  if (documents.errorCount > 0 || pass.plans.some(isPlanError)) return 2;
  return isConverged(pass.plans) ? 0 : 1;
}
