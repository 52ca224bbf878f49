/**
 * `plugctl reconcile [NAME...]`: asks the `plugctl run` serving the state directory to reconcile now
 * (all its documents when no NAME is given), as `flux reconcile` does, and prints each outcome once
 * the controller has finished. Exit 0 when every plugin ended Ready (or skipped, or suspended), 1 when
 * one failed or a NAME is unknown, 2 when no controller could be asked.
 */
import { phaseOf, PHASE_LABELS } from '../reconcile/status.ts';
import type { CommandContext } from './context.ts';
import { readEndpoint, requestReconcile, type ReconcileReport } from './endpoint.ts';

/** Options of `reconcile`. */
export interface ReconcileOptions {
  /** how long to wait for the controller's answer, ms */
  timeout: number;
}

/** Runs `reconcile`; returns the exit code. */
export async function reconcileCommand(
  names: readonly string[],
  options: ReconcileOptions,
  ctx: CommandContext,
): Promise<number> {
  const keys = names.map((n) => n.replace(/^dockerplugins?\//, ''));
  const endpoint = await readEndpoint(ctx.options.stateDir);
  ctx.io.err(
    `asking plugctl run (pid ${endpoint.pid}) to reconcile ${keys.length === 0 ? 'every plugin' : keys.map((k) => `dockerplugin/${k}`).join(', ')}\n`,
  );
  const answer = await requestReconcile(ctx.options.stateDir, keys, options.timeout);
  for (const name of answer.unknown) {
    ctx.io.err(
      `error: dockerplugin "${name}" is neither declared nor owned by this controller [OBJECT_NOT_FOUND]\n`,
    );
  }
  if (answer.results.length === 0 && answer.unknown.length === 0) {
    ctx.io.err('nothing to reconcile: plugctl run has no documents and owns no plugins\n');
  }
  let failed = answer.unknown.length > 0;
  for (const report of [...answer.results].sort((a, b) => a.key.localeCompare(b.key))) {
    const line = describe(report);
    failed ||= line.failed;
    ctx.io.out(`${line.text}\n`);
  }
  return failed ? 1 : 0;
}

function describe(report: ReconcileReport): { text: string; failed: boolean } {
  const subject = `dockerplugin/${report.key}`;
  const ready = report.status?.conditions.find((c) => c.type === 'Ready');
  if (report.result === 'failed') {
    const code = report.status?.lastError?.code;
    const message = report.status?.lastError?.message ?? report.error ?? '';
    return {
      text: `${subject} failed [${report.kind ?? 'transient'}${code !== undefined ? ` ${code}` : ''}]: ${message}`,
      failed: true,
    };
  }
  if (report.status === undefined) return { text: `${subject} reconciled: removed`, failed: false };
  const phase = phaseOf(report.status);
  const label = PHASE_LABELS[phase];
  const reason = ready?.reason !== undefined ? ` (${ready.reason})` : '';
  const action = report.status.lastAction !== undefined ? `; last action: ${report.status.lastAction}` : '';
  return {
    text: `${subject} reconciled: ${label}${reason}${action}`,
    failed: phase === 'stalled' || phase === 'reconciling',
  };
}
