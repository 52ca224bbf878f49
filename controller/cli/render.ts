/**
 * Human renderings of plans and results. `diff` and `apply --dry-run` print plans; `apply` prints
 * one line per plugin in kubectl's style (`dockerplugin/vol created`).
 */
import type { PluginResult } from '../reconcile/apply.ts';
import type { Action, Outcome, PluginPlan } from '../reconcile/plan.ts';
import { declaredSettingStrings } from '../reconcile/settings.ts';
import { painter, type Painter } from './color.ts';

const SIGN: Record<Outcome, string> = {
  create: '+',
  configure: '~',
  delete: '-',
  unchanged: '=',
  blocked: '!',
  suspended: '=',
  skipped: ' ',
};

const PAST: Record<Outcome, string> = {
  create: 'created',
  configure: 'configured',
  delete: 'deleted',
  unchanged: 'unchanged',
  blocked: 'blocked',
  suspended: 'suspended',
  skipped: 'skipped',
};

/** One line describing an action: its verb, its argument and its reason. */
export function describeAction(action: Action): string {
  switch (action.type) {
    case 'pull':
    case 'upgrade':
      return `${action.type} ${action.remote}${
        action.from !== undefined ? ` from ${action.from} [${action.source ?? 'mirror'}]` : ''
      }  (${action.reason})`;
    case 'build':
      return `build ${action.context}  (${action.reason})`;
    case 'set':
      return `set ${(action.changes ?? declaredSettingStrings(action.declared, 'args')).join(' ')}  (${action.reason})`;
    case 'enable':
      return `enable --timeout ${action.timeoutSeconds}s  (${action.reason})`;
    case 'disable':
    case 'remove':
      return `${action.type}${action.force ? ' --force' : ''}${action.forceIfUnused === true ? ' (--force if the engine still counts users)' : ''}  (${action.reason})`;
    case 'verify':
      return `verify the content is ${action.pin}  (${action.reason})`;
    case 'adopt':
    case 'noop':
      return `${action.type}  (${action.reason})`;
    case 'blocked':
      return `blocked [${action.kind} ${action.code}]: ${action.reason}`;
  }
}

/** What a summary line counts besides the plans: documents that failed to load. */
export interface RenderOptions {
  /** invalid documents (their errors were printed above) */
  invalid?: number;
  /**
   * colour, for a terminal (see color.ts): created plugins green, deleted ones red, configured ones
   * yellow, and each changed setting on its own line as before (red) -> after (green)
   */
  color?: boolean;
}

const OUTCOME_STYLE: Partial<Record<Outcome, 'green' | 'yellow' | 'red'>> = {
  create: 'green',
  configure: 'yellow',
  delete: 'red',
  blocked: 'red',
};

/** An action line in colour: additions green, removals red, settings one per line as before -> after. */
function paintAction(action: Action, paint: Painter): string[] {
  const line = `    ${describeAction(action)}`;
  switch (action.type) {
    case 'pull':
    case 'build':
    case 'enable':
      return [paint('green', line)];
    case 'remove':
    case 'disable':
    case 'blocked':
      return [paint('red', line)];
    case 'set':
      return [
        line,
        ...(action.differences ?? []).map((difference) => {
          const match = /^(\S+(?: [^\s"[]+)?) (.*?) -> (.*)$/.exec(difference);
          if (match === null) return `        ${difference}`;
          return `        ${match[1]}: ${paint('red', match[2]!)} -> ${paint('green', match[3]!)}`;
        }),
      ];
    default:
      return [line];
  }
}

/**
 * Renders plans as a diff: changed plugins with their actions, skipped documents with the reason,
 * then a summary line.
 */
export function renderPlans(
  plans: readonly PluginPlan[],
  options: RenderOptions & { showUnchanged: boolean },
): string {
  const lines: string[] = [];
  const paint = painter(options.color === true);
  for (const p of plans) {
    const quiet = p.outcome === 'unchanged' || p.outcome === 'suspended';
    if (quiet && !options.showUnchanged) continue;
    if (p.outcome === 'skipped') {
      lines.push(`  dockerplugin/${p.key} (${p.name}): skipped: ${p.actions[0]?.reason ?? ''}`);
      continue;
    }
    const header = `${SIGN[p.outcome]} dockerplugin/${p.key} (${p.name}): ${p.outcome}`;
    const style = OUTCOME_STYLE[p.outcome];
    lines.push(style === undefined ? header : paint([style, 'bold'], header));
    if (quiet) continue;
    for (const action of p.actions) {
      if (options.color === true) lines.push(...paintAction(action, paint));
      else lines.push(`    ${describeAction(action)}`);
    }
  }
  lines.push(
    summary(
      plans.map((p) => p.outcome),
      options.invalid ?? 0,
    ),
  );
  return `${lines.join('\n')}\n`;
}

/**
 * Renders apply results, one line per plugin, failures with their reason, then a summary line. A
 * plugin the apply enabled and probed says `, Ready` when it answered Plugin.Activate, `, not Ready`
 * with the Unresponsive failure when it did not (counted as failed), `(Ready not checked: why)`
 * when plugctl could not probe from where it runs.
 */
export function renderResults(results: readonly PluginResult[], options: RenderOptions = {}): string {
  const lines = results.map((r) => {
    // a plugin this apply enabled and probed: Ready when it answered, else the Unresponsive failure
    if (r.ready !== undefined) {
      if (r.ready.answered) return `dockerplugin/${r.key} ${PAST[r.outcome]}, Ready`;
      if (r.ready.unchecked === true)
        return `dockerplugin/${r.key} ${PAST[r.outcome]} (Ready not checked: ${r.ready.error ?? ''})`;
      if (r.failure !== undefined)
        return `dockerplugin/${r.key} ${PAST[r.outcome]}, not Ready [${r.failure.kind} ${r.failure.code}]: ${r.failure.message}`;
    }
    if (r.failure === undefined) {
      if (r.outcome === 'skipped') return `dockerplugin/${r.key} skipped: ${r.steps[0]?.action.reason ?? ''}`;
      return `dockerplugin/${r.key} ${PAST[r.outcome]}`;
    }
    const done = r.steps.filter((s) => s.ok).map((s) => s.action.type);
    const progress = done.length > 0 ? ` after ${done.join(', ')}` : '';
    return `dockerplugin/${r.key} failed${progress} [${r.failure.kind} ${r.failure.code}]: ${r.failure.message}`;
  });
  const failed = results.filter((r) => r.failure !== undefined).length;
  const ok = results.filter((r) => r.failure === undefined).map((r) => r.outcome);
  const count = (o: Outcome): number => ok.filter((x) => x === o).length;
  const invalid = options.invalid ?? 0;
  lines.push(
    `Applied: ${count('create')} created, ${count('configure')} configured, ${count('delete')} deleted, ` +
      `${count('unchanged') + count('suspended')} unchanged, ${count('skipped')} skipped, ${failed} failed, ` +
      `${invalid} invalid ${invalid === 1 ? 'document' : 'documents'}.`,
  );
  return `${lines.join('\n')}\n`;
}

function summary(outcomes: readonly Outcome[], invalid: number): string {
  const count = (o: Outcome): number => outcomes.filter((x) => x === o).length;
  const blocked = count('blocked');
  const note = blocked > 0 ? ' Blocked plugins would not be changed; their reasons are above.' : '';
  return (
    `Plan: ${count('create')} to create, ${count('configure')} to configure, ${count('delete')} to delete, ` +
    `${count('unchanged') + count('suspended')} unchanged, ${blocked} blocked, ${count('skipped')} skipped, ` +
    `${invalid} invalid ${invalid === 1 ? 'document' : 'documents'}.${note}`
  );
}
