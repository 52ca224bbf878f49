/**
 * Ready means the plugin answers, for one-shot `apply`: a plugin the apply enabled is probed once
 * with Plugin.Activate (the same probe `run`'s health monitor makes), so `apply` does not report a
 * wedged plugin as converged. `run` keeps probing and restarts; `apply` only reports.
 *
 * The probe is cheap on purpose: only plugins this apply enabled (an unchanged plugin is not
 * probed), all of them at once, one attempt each unless it fails fast. A plugin that was just
 * started may not listen yet (no socket, connection refused), so a fast failure is tried again
 * after a short pause, until spec.healthCheck.timeoutSeconds have passed since the first attempt;
 * a plugin that accepts and says nothing (wedged) uses the whole budget in one attempt.
 */
import { PlugctlError } from '../errors.ts';
import type { PluginProber, PluginReader } from '../store/store.ts';
import type { PluginResult, ReadyCheck } from './apply.ts';
import type { DesiredPlugin } from './desired.ts';

/** What the check needs: the store (to read the enabled plugin back and probe it) and time. */
export interface ReadyCheckDeps {
  store: Pick<PluginReader, 'inspect'> & PluginProber;
  /** milliseconds on a monotonic scale; default performance.now */
  now?: () => number;
  /** default: a timer */
  sleep?: (ms: number) => Promise<void>;
}

/** The first pause after a fast failure; it doubles up to MAX_PAUSE_MS. */
const FIRST_PAUSE_MS = 100;
const MAX_PAUSE_MS = 800;

/**
 * Probes every plugin that `results` show enabled by this apply (an ok `enable` step, no failure)
 * whose document keeps the health check on, all at once, and returns the results with `ready` set;
 * one that never answered also gets the failure PLUGIN_UNRESPONSIVE (kind waiting), so the apply
 * exits non-zero. One plugctl could not probe from where it runs (PLUGIN_PROBE_UNAVAILABLE: not
 * allowed to reach the engine's socket directory) is `unchecked`, not failed: nothing is known of
 * it. Results of other plugins are returned as they are.
 */
export async function checkEnabledAnswer(
  results: readonly PluginResult[],
  desired: readonly DesiredPlugin[],
  deps: ReadyCheckDeps,
): Promise<PluginResult[]> {
  const byKey = new Map(desired.map((d) => [d.key, d]));
  return Promise.all(
    results.map(async (result): Promise<PluginResult> => {
      const d = byKey.get(result.key);
      const enabled = result.steps.some((s) => s.ok && s.action.type === 'enable');
      const settings = d?.healthCheck;
      if (d === undefined || !enabled || result.failure !== undefined || settings?.enabled !== true)
        return result;
      const ready = await probeUntil(result.name, settings.timeoutSeconds * 1000, deps);
      if (ready.answered || ready.unchecked === true) return { ...result, ready };
      return {
        ...result,
        ready,
        failure: {
          kind: 'waiting',
          code: 'PLUGIN_UNRESPONSIVE',
          message:
            `Unresponsive: ${result.name} was enabled but does not answer Plugin.Activate: ${ready.error ?? 'no answer'} ` +
            `(${ready.attempts} attempt(s) in ${(ready.elapsedMs / 1000).toFixed(1)} s, healthCheck.timeoutSeconds ` +
            `${settings.timeoutSeconds}); it is left enabled — \`plugctl run\` restarts a plugin that keeps failing`,
        },
      };
    }),
  );
}

/**
 * Probes the plugin named `name` until it answers or `budgetMs` have passed since the first
 * attempt. Each attempt is allowed what is left of the budget; a failed attempt is repeated after
 * a pause (100 ms doubling to 800 ms) while some budget is left.
 */
export async function probeUntil(name: string, budgetMs: number, deps: ReadyCheckDeps): Promise<ReadyCheck> {
  const now = deps.now ?? (() => performance.now());
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = now();
  let attempts = 0;
  let pause = FIRST_PAUSE_MS;
  let lastError: string;
  for (;;) {
    attempts++;
    try {
      const plugin = await deps.store.inspect(name);
      if (plugin === undefined) throw new PlugctlError('PLUGIN_UNRESPONSIVE', `plugin ${name} is gone`);
      await deps.store.activate(plugin, Math.max(1, Math.round(budgetMs - (now() - started))));
      return { answered: true, attempts, elapsedMs: Math.round(now() - started) };
    } catch (error) {
      // the code is the failure's own (PLUGIN_UNRESPONSIVE): only the words of the cause are kept
      lastError = error instanceof Error ? error.message : String(error);
      // trying again cannot help when plugctl may not reach the socket at all
      if (error instanceof PlugctlError && error.code === 'PLUGIN_PROBE_UNAVAILABLE') {
        const elapsedMs = Math.round(now() - started);
        return { answered: false, attempts, elapsedMs, error: lastError, unchecked: true };
      }
    }
    const left = budgetMs - (now() - started);
    if (left <= pause)
      return { answered: false, attempts, elapsedMs: Math.round(now() - started), error: lastError };
    await sleep(pause);
    pause = Math.min(pause * 2, MAX_PAUSE_MS);
  }
}
