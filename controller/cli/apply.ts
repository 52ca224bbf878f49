/**
 * `plugctl apply -f PATH... [--dry-run]`: converge the host to one apply set's documents once. Exit 0
 * when every plugin converged (a plugin it enabled answers Plugin.Activate, unless its healthCheck is
 * off); 1 when any document failed to load or any plugin failed, is blocked or is Unresponsive; 2 for
 * a usage error.
 */
import { reconcilePass } from '../reconcile/once.ts';
import type { CommandContext } from './context.ts';
import { MUST_SPECIFY_F, missingFilename, prepareOneShot, type OneShotOptions } from './one-shot.ts';
import { createProgress, type ProgressMode } from './progress.ts';
import { renderPlans, renderResults } from './render.ts';

/** Options of `apply`. */
export interface ApplyOptions extends OneShotOptions {
  dryRun: boolean;
  prune: boolean;
  takeOwnership: boolean;
  concurrency: number;
  /** `--progress` */
  progress: ProgressMode;
  /** `-q`: only the results */
  quiet: boolean;
}

/** Runs `apply`; returns the exit code. */
export async function applyCommand(options: ApplyOptions, ctx: CommandContext): Promise<number> {
  if (missingFilename(options)) {
    ctx.io.err(MUST_SPECIFY_F);
    return 2;
  }
  const shot = await prepareOneShot({ ...options, filename: options.filename! }, ctx, false);
  const { documents } = shot;
  if (shot.prune.warning !== undefined) ctx.io.err(`warning: ${shot.prune.warning}\n`);
  const progress = await createProgress(options.quiet || options.dryRun ? 'quiet' : options.progress, {
    stream: process.stderr,
    line: ctx.io.err,
    env: ctx.env,
  });
  let pass: Awaited<ReturnType<typeof reconcilePass>>;
  try {
    pass = await reconcilePass(
      {
        desired: documents.desired,
        skipped: documents.skipped,
        prune: shot.prune.prune,
        set: shot.set,
        takeOwnership: options.takeOwnership,
        dryRun: options.dryRun,
      },
      {
        store: progress.wrap(shot.store),
        usage: shot.store,
        prober: shot.store,
        inspector: shot.inspector,
        stateDir: ctx.options.stateDir,
        secrets: ctx.secrets(),
        logger: ctx.logger,
        concurrency: options.concurrency,
      },
    );
  } finally {
    progress.close();
  }
  if (pass.results === undefined) {
    ctx.io.out(
      renderPlans(pass.plans, { showUnchanged: false, invalid: documents.errorCount }).replace(
        /^Plan:/m,
        'Plan (dry run):',
      ),
    );
    return documents.errorCount > 0 ? 1 : 0;
  }
  ctx.io.out(renderResults(pass.results, { invalid: documents.errorCount }));
  return documents.errorCount > 0 || pass.results.some((r) => r.failure !== undefined) ? 1 : 0;
}
