/**
 * apply() executes plans against a Store. Each plugin's actions run in order and stop at its first
 * failure; a failing plugin never stops the others; plugins run concurrently under a bound.
 */
import type { Logger } from 'pino';
import { describeError, PlugctlError, type ErrorCode, type FailureKind } from '../errors.ts';
import { RegistryError } from '../registry/errors.ts';
import type { PluginReader, PluginUsageReader, PluginWriter, PullOptions } from '../store/store.ts';
import { describeUsage, usageCount } from '../store/usage.ts';

/** What applying needs of a store: every change, and inspect to read a plugin back between steps. */
export type ApplyStore = PluginWriter & Pick<PluginReader, 'inspect'>;
import type { InventoryLedger } from './ledger.ts';
import type { Action, Outcome, PluginPlan, Rollback } from './plan.ts';
import { diffSettings, type SettingString } from './settings.ts';
import { revealSetting, SECRET_MASK, SecretValue } from '../api/secrets.ts';

/** What happened to one action. */
export interface StepResult {
  action: Action;
  ok: boolean;
  error?: string;
}

/** What happened to one plugin. `failure` is set when an action failed or the plan was blocked. */
export interface PluginResult {
  key: string;
  name: string;
  outcome: Outcome;
  steps: StepResult[];
  failure?: {
    kind: FailureKind;
    code: ErrorCode;
    message: string;
    /** the wait a rate-limited registry asked for (Retry-After), ms, when it did */
    retryAfterMs?: number;
  };
  /** set by one-shot apply for a plugin it enabled: did it answer Plugin.Activate (ready-check.ts) */
  ready?: ReadyCheck;
}

/** What probing a just-enabled plugin found. */
export interface ReadyCheck {
  answered: boolean;
  attempts: number;
  elapsedMs: number;
  /** the last attempt's error, when it never answered */
  error?: string;
  /** plugctl could not probe from where it runs (PLUGIN_PROBE_UNAVAILABLE): nothing is known */
  unchecked?: boolean;
}

/** Everything apply needs, injected. */
export interface ApplyDeps {
  store: ApplyStore;
  ledger: InventoryLedger;
  logger: Logger;
  /** extra bindings of each plugin's child logger (e.g. a reconcile id) */
  logBindings?: Record<string, unknown>;
  /** how many plugins are worked on at once (default 4) */
  concurrency?: number;
  /**
   * checks what uses a plugin before a disable or remove planned with `forceIfUnused` is repeated
   * with force; without it such an action never forces
   */
  usage?: PluginUsageReader;
}

/** Runs every plan and returns one result per plan, in the plans' order. */
export async function applyPlans(plans: readonly PluginPlan[], deps: ApplyDeps): Promise<PluginResult[]> {
  // The controller's case (one key, one plugin) needs no pool.
  if (plans.length === 1) return [await applyPlugin(plans[0]!, deps)];
  const results: PluginResult[] = new Array(plans.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < plans.length) {
      const index = next++;
      results[index] = await applyPlugin(plans[index]!, deps);
    }
  };
  const width = Math.max(1, Math.min(deps.concurrency ?? 4, plans.length));
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

async function applyPlugin(plan: PluginPlan, deps: ApplyDeps): Promise<PluginResult> {
  // Made on first use: most reconciles on a converged host log nothing, and a child logger costs.
  let child: Logger | undefined;
  const log = (): Logger =>
    (child ??= deps.logger.child({ ...deps.logBindings, key: plan.key, plugin: plan.name }));
  const result: PluginResult = { key: plan.key, name: plan.name, outcome: plan.outcome, steps: [] };
  try {
    const acts = plan.outcome !== 'blocked' && plan.outcome !== 'suspended';
    const claims = plan.ownership === 'add' || plan.ownership === 'keep';
    if (acts && claims && plan.desired !== undefined && plan.claim !== undefined) {
      // Recorded before the first change, so an interrupted install is still known to be ours;
      // a kept entry is refreshed when its set, remote, inUse policy or ID changed.
      await deps.ledger.own(plan.name, plan.desired, plan.claim);
    }
    let upgraded: Extract<Action, { type: 'upgrade' }> | undefined;
    for (const action of plan.actions) {
      if (action.type === 'blocked') {
        throw new PlugctlError(action.code, action.reason, { kind: action.kind });
      }
      if (action.type !== 'noop') log().info({ action: action.type, reason: action.reason }, 'action');
      try {
        if (action.type !== 'noop') await execute(plan, action, deps, log);
      } catch (error) {
        // A new version that cannot be configured or started is replaced by the old one, as it was.
        if (upgraded?.rollback !== undefined) {
          result.steps.push({ action, ok: false, error: describeError(error) });
          await rollBack(plan, upgraded.rollback, deps, error);
        }
        throw error;
      }
      result.steps.push({ action, ok: true });
      if (action.type === 'upgrade') upgraded = action;
      if (action.type === 'pull' || action.type === 'upgrade' || action.type === 'build')
        await deps.ledger.setDigest(plan.name, action.digest);
      // the docker store keeps the mirror's reference: remembered, it stands for the declared remote
      if (action.type === 'pull' || action.type === 'upgrade')
        await deps.ledger.setMirrorReference(plan.name, action.from);
      // A new plugin's ID is what later tells it apart from one someone installs under its name.
      if (action.type === 'pull' || action.type === 'build') await recordId(plan.name, deps);
    }
    if (plan.ownership === 'drop') await deps.ledger.disown(plan.name);
  } catch (error) {
    const failed = plan.actions[result.steps.length];
    const message = describeError(error);
    const recorded = result.steps.some((step) => !step.ok);
    if (failed !== undefined && failed.type !== 'blocked' && !recorded) {
      result.steps.push({ action: failed, ok: false, error: message });
    }
    const retryAfterMs =
      error instanceof RegistryError
        ? error.retryAfterMs
        : failed?.type === 'blocked'
          ? failed.retryAfterMs
          : undefined;
    result.failure = {
      kind: error instanceof PlugctlError ? error.kind : 'transient',
      code: error instanceof PlugctlError ? error.code : 'UNEXPECTED',
      message: error instanceof PlugctlError ? error.message : message,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
    log().warn({ err: error, code: result.failure.code }, 'reconcile failed');
  }
  return result;
}

function pullOptions(action: Extract<Action, { type: 'pull' | 'upgrade' }>): PullOptions {
  return {
    remote: action.remote,
    privileges: action.privileges,
    ...(action.from !== undefined ? { from: action.from } : {}),
  };
}

async function recordId(name: string, deps: ApplyDeps): Promise<void> {
  const plugin = await deps.store.inspect(name);
  if (plugin !== undefined) await deps.ledger.setId(name, plugin.id);
}

async function execute(plan: PluginPlan, action: Action, deps: ApplyDeps, log: () => Logger): Promise<void> {
  const store = deps.store;
  switch (action.type) {
    case 'pull':
      return store.pull(plan.name, pullOptions(action));
    case 'upgrade':
      return store.upgrade(plan.name, pullOptions(action));
    case 'build':
      return store.create(plan.name, action.context);
    case 'set':
      return applySettings(plan.name, action, store);
    case 'enable':
      return store.enable(plan.name, action.timeoutSeconds);
    case 'disable':
    case 'remove':
      return disrupt(plan.name, action, deps, log);
    case 'verify':
      return verifyPin(plan.name, action, store);
    case 'adopt':
    case 'noop':
    case 'blocked':
      return;
  }
}

/**
 * Disables or removes. When the planner found nothing using the plugin (`forceIfUnused`) and the
 * engine still refuses with "in use" — its reference count was lost across a restart (moby#32609) —
 * usage is looked up again, bypassing the cache, and only if nothing uses the plugin now is the
 * action repeated with the engine's force flag.
 */
async function disrupt(
  name: string,
  action: Extract<Action, { type: 'disable' | 'remove' }>,
  deps: ApplyDeps,
  log: () => Logger,
): Promise<void> {
  const run = (force: boolean): Promise<void> =>
    action.type === 'disable' ? deps.store.disable(name, force) : deps.store.remove(name, force);
  try {
    await run(action.force);
    return;
  } catch (error) {
    const refused = error instanceof PlugctlError && error.code === 'PLUGIN_IN_USE';
    if (!refused || action.forceIfUnused !== true || deps.usage === undefined) throw error;
    const plugin = await deps.store.inspect(name);
    if (plugin === undefined) return;
    const usage = (await deps.usage.usage([plugin], { fresh: true })).get(plugin.name);
    if (usage === undefined || usageCount(usage) > 0 || !usage.complete) {
      const users = usage === undefined ? 'something' : describeUsage(usage);
      throw new PlugctlError(
        'PLUGIN_IN_USE',
        `plugin ${name} is in use by ${users}, so it was not ${action.type}d; it proceeds once nothing uses it, or set inUse: Force`,
        { kind: 'waiting', cause: error },
      );
    }
    log().warn(
      { action: action.type },
      'the engine says the plugin is in use but no volume, network or container uses it (its reference count was lost, moby#32609): repeating with force',
    );
    await run(true);
  }
}

/**
 * Sends settings. After a pull or upgrade the new config is only known now, so the declaration is
 * compared with the fresh plugin here, with the same rules the planner uses.
 */
async function applySettings(
  name: string,
  action: Extract<Action, { type: 'set' }>,
  store: ApplyStore,
): Promise<void> {
  let changes = action.changes;
  if (changes === undefined) {
    const plugin = await store.inspect(name);
    if (plugin === undefined) {
      throw new PlugctlError(
        'PLUGIN_VANISHED',
        `plugin ${name} disappeared before its settings could be applied`,
      );
    }
    const diff = diffSettings(action.declared, plugin.settings, plugin.defaults);
    if (diff.problems.length > 0) {
      throw new PlugctlError(
        'SETTINGS_INVALID',
        `spec.settings cannot be applied: ${diff.problems.join('; ')}`,
        {
          kind: 'stalled',
        },
      );
    }
    changes = diff.changes;
  }
  if (changes.length > 0) await setRedacted(store, name, changes);
}

/**
 * `store.set` with secrets revealed only for the call. An engine may quote a value it refuses, so an
 * error that contains a secret's text is replaced by one with the text masked and no cause.
 */
async function setRedacted(
  store: ApplyStore,
  name: string,
  settings: readonly SettingString[],
): Promise<void> {
  try {
    await store.set(name, settings.map(revealSetting));
  } catch (error) {
    const secrets = settings.filter((s): s is SecretValue => s instanceof SecretValue).map(plainOfSetting);
    if (secrets.length === 0) throw error;
    const text = `${describeError(error)}`;
    if (!secrets.some((secret) => secret !== '' && text.includes(secret))) throw error;
    let masked = text;
    for (const secret of secrets) if (secret !== '') masked = masked.split(secret).join(SECRET_MASK);
    throw new PlugctlError(error instanceof PlugctlError ? error.code : 'UNEXPECTED', masked, {
      kind: error instanceof PlugctlError ? error.kind : 'transient',
    });
  }
}

/** The value part of `NAME=value` (what an engine might quote back). */
function plainOfSetting(setting: SecretValue): string {
  const text = setting.reveal();
  return text.slice(text.indexOf('=') + 1);
}

/**
 * A digest pin installed by tag (engines that crash on digests): the content the tag delivered must
 * be the pinned content. If the tag moved between the check and the pull, the wrong content is
 * removed rather than left running under a pin that says otherwise.
 */
async function verifyPin(
  name: string,
  action: Extract<Action, { type: 'verify' }>,
  store: ApplyStore,
): Promise<void> {
  const plugin = await store.inspect(name);
  if (plugin === undefined) {
    throw new PlugctlError(
      'PLUGIN_VANISHED',
      `plugin ${name} disappeared before its content could be verified`,
    );
  }
  const same =
    plugin.diffIds.length === action.diffIds.length &&
    plugin.diffIds.every((id, i) => id === action.diffIds[i]);
  if (same) return;
  await store.remove(name, true);
  throw new PlugctlError(
    'PIN_CONTENT_MISMATCH',
    `${name} was installed by tag but its layers are not those of the pin ${action.pin}; it was removed. ` +
      `The tag moved while it was being pulled: update the pin or re-tag the pinned content`,
    { kind: 'stalled' },
  );
}

/**
 * Puts the previous version back: upgrade to its reference, restore its settings, enable it. The
 * plugin then runs as before and is reported Stalled, so the failed version is not retried until
 * the document changes.
 */
async function rollBack(
  plan: PluginPlan,
  rollback: Rollback,
  deps: ApplyDeps,
  cause: unknown,
): Promise<never> {
  const store = deps.store;
  const timeout = plan.desired?.enableTimeoutSeconds ?? 30;
  deps.logger.warn(
    { key: plan.key, plugin: plan.name, to: rollback.remote },
    'rolling back a failed upgrade',
  );
  try {
    await store.disable(plan.name, true);
    await store.upgrade(plan.name, { remote: rollback.remote, privileges: rollback.privileges });
    if (rollback.settings.length > 0) await setRedacted(store, plan.name, rollback.settings);
    await store.enable(plan.name, timeout);
  } catch (failure) {
    throw new PlugctlError(
      'ROLLBACK_FAILED',
      `the new version of ${plan.name} failed (${describeError(cause)}) and rolling back to ${rollback.remote} ` +
        `failed too (${describeError(failure)}); the plugin is left disabled. Fix the document or the plugin and apply again`,
      { kind: 'stalled', cause },
    );
  }
  throw new PlugctlError(
    'UPGRADE_ROLLED_BACK',
    `the new version of ${plan.name} failed (${describeError(cause)}); rolled back to ${rollback.remote}, ` +
      `which is enabled again with its previous settings. Fix the new version or the document to retry`,
    { kind: 'stalled', cause },
  );
}
