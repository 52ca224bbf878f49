/**
 * plan() is the heart of plugctl: a pure function from (declared, installed, owned, remote facts) to
 * the smallest ordered set of actions per plugin that makes the host match the declaration. It does
 * no I/O, so `plugctl diff` prints exactly what `plugctl apply` will execute.
 */
import { PlugctlError, type FailureKind } from '../errors.ts';
import { formatReference, parseReference } from '../spec/reference.ts';
import type { PluginPrivilege, PluginSettings } from '../spec/types.ts';
import type { InstalledPlugin } from '../store/store.ts';
import type { DesiredPlugin } from './desired.ts';
import type { Inventory } from './inventory.ts';
import { formatPrivileges, privilegesEqual } from './privileges.ts';
import { declaresSettings, diffSettings } from './settings.ts';

/** One step of a plugin's plan. Every action carries the human reason it is needed. */
export type Action =
  | { type: 'pull'; remote: string; privileges: PluginPrivilege[]; reason: string }
  | { type: 'upgrade'; remote: string; privileges: PluginPrivilege[]; reason: string }
  /**
   * `changes` are the engine-syntax settings when known now; when absent (right after a pull or an
   * upgrade, before the new config is known) apply compares `declared` with the fresh plugin.
   */
  | { type: 'set'; changes?: string[]; declared: PluginSettings; reason: string }
  | { type: 'enable'; timeoutSeconds: number; reason: string }
  | { type: 'disable'; force: boolean; reason: string }
  | { type: 'remove'; force: boolean; reason: string }
  | { type: 'adopt'; reason: string }
  | { type: 'noop'; reason: string }
  /** `code` is the stable code the failure is reported with (e.g. PRIVILEGES_MISMATCH). */
  | { type: 'blocked'; kind: FailureKind; code: string; reason: string };

/** What a plugin's plan amounts to, in the words of a ChangeSet. */
export type Outcome = 'create' | 'configure' | 'unchanged' | 'delete' | 'blocked' | 'suspended';

/** The plan for one plugin: its actions run in order and stop at the first failure. */
export interface PluginPlan {
  /** document key (metadata.name), or the inventory's key for a prune */
  key: string;
  /** local plugin name */
  name: string;
  outcome: Outcome;
  actions: Action[];
  /** how the inventory changes once the actions succeed */
  ownership: 'add' | 'keep' | 'drop' | 'none';
  /** the declaration this plan serves; absent for a prune */
  desired?: DesiredPlugin;
}

/** Facts fetched from the registry or engine before planning. */
export interface RemoteFacts {
  /** required privileges per normalised remote; an Error when they could not be fetched */
  privileges: ReadonlyMap<string, readonly PluginPrivilege[] | Error>;
}

/** Options that change what is allowed, not what is wanted. */
export interface PlanOptions {
  /** false to never remove owned plugins that are no longer declared (e.g. some documents failed to load) */
  prune: boolean;
}

/**
 * Plans every declared and every owned plugin. Declared plugins come first in the given order,
 * then prunes sorted by name, so the output is deterministic.
 */
export function plan(
  desired: readonly DesiredPlugin[],
  actual: readonly InstalledPlugin[],
  inventory: Inventory,
  facts: RemoteFacts,
  options: PlanOptions = { prune: true },
): PluginPlan[] {
  const installed = new Map(actual.map((p) => [p.name, p]));
  const declaredNames = new Set(desired.map((d) => d.name));
  const plans = desired.map((d) =>
    planDeclared(d, installed.get(d.name), Object.hasOwn(inventory.plugins, d.name), facts),
  );

  for (const name of Object.keys(inventory.plugins).sort()) {
    if (declaredNames.has(name)) continue;
    const owned = inventory.plugins[name]!;
    const plugin = installed.get(name);
    if (!options.prune) {
      plans.push(
        prunePlan(owned.key, name, 'keep', 'unchanged', [noop('no longer declared; pruning is off')]),
      );
    } else if (plugin === undefined) {
      plans.push(prunePlan(owned.key, name, 'drop', 'delete', [noop('no longer declared and already gone')]));
    } else {
      plans.push(prunePlan(owned.key, name, 'drop', 'delete', pruneActions(plugin, owned.inUse === 'Force')));
    }
  }
  return plans;
}

/** True when every plan is unchanged (or suspended): nothing to do on the host. */
export function isConverged(plans: readonly PluginPlan[]): boolean {
  return plans.every((p) => p.outcome === 'unchanged' || p.outcome === 'suspended');
}

function planDeclared(
  d: DesiredPlugin,
  plugin: InstalledPlugin | undefined,
  owned: boolean,
  facts: RemoteFacts,
): PluginPlan {
  const base = { key: d.key, name: d.name, desired: d };
  if (d.suspend) {
    return {
      ...base,
      outcome: 'suspended',
      ownership: owned ? 'keep' : 'none',
      actions: [noop('spec.suspend is true')],
    };
  }
  if (plugin === undefined) return { ...base, ownership: 'add', ...planInstall(d, facts) };

  const adopt: Action[] = [];
  if (!owned) {
    if (!sameRemote(plugin.reference, d.remote)) {
      return {
        ...base,
        ownership: 'none',
        outcome: 'blocked',
        actions: [
          blocked(
            'stalled',
            'NAME_CONFLICT',
            `a plugin named ${d.name} from ${plugin.reference} is installed but not managed by plugctl; ` +
              `remove it or set spec.alias to another name`,
          ),
        ],
      };
    }
    adopt.push({ type: 'adopt', reason: `installed from the declared remote; plugctl takes ownership` });
  }
  const rest = sameRemote(plugin.reference, d.remote)
    ? planInPlace(d, plugin)
    : planUpgrade(d, plugin, facts);
  const actions = [...adopt, ...rest.actions];
  const outcome = rest.outcome === 'unchanged' && adopt.length > 0 ? 'configure' : rest.outcome;
  return { ...base, ownership: owned ? 'keep' : 'add', outcome, actions };
}

function planInstall(d: DesiredPlugin, facts: RemoteFacts): { outcome: Outcome; actions: Action[] } {
  const grants = checkGrants(d, facts);
  if ('blocked' in grants) return { outcome: 'blocked', actions: [grants.blocked] };
  const actions: Action[] = [
    { type: 'pull', remote: d.remote, privileges: grants.privileges, reason: 'not installed' },
  ];
  if (declaresSettings(d.settings)) {
    actions.push({ type: 'set', declared: d.settings, reason: 'apply the declared settings' });
  }
  if (d.enabled) actions.push(enable(d, 'spec.enabled is true'));
  return { outcome: 'create', actions };
}

function planUpgrade(
  d: DesiredPlugin,
  plugin: InstalledPlugin,
  facts: RemoteFacts,
): { outcome: Outcome; actions: Action[] } {
  if (d.upgradePolicy === 'Never') {
    const inPlace = planInPlace(d, plugin);
    const keep = noop(`installed from ${plugin.reference}, declared ${d.remote}; upgrade.policy is Never`);
    return {
      outcome: inPlace.outcome,
      actions: inPlace.outcome === 'unchanged' ? [keep] : [keep, ...inPlace.actions],
    };
  }
  const grants = checkGrants(d, facts);
  if ('blocked' in grants) return { outcome: 'blocked', actions: [grants.blocked] };
  const actions: Action[] = [];
  if (plugin.enabled) {
    const stop = disable(d, plugin, `upgrade needs the plugin disabled`);
    if (stop.type === 'blocked') return { outcome: 'blocked', actions: [stop] };
    actions.push(stop);
  }
  actions.push({
    type: 'upgrade',
    remote: d.remote,
    privileges: grants.privileges,
    reason: `installed from ${plugin.reference}, declared ${d.remote}`,
  });
  // The engine keeps the old settings across an upgrade; re-apply the declaration against the new config.
  actions.push({
    type: 'set',
    declared: d.settings,
    reason: 'apply the declared settings to the new version',
  });
  if (d.enabled) actions.push(enable(d, 'spec.enabled is true'));
  return { outcome: 'configure', actions };
}

function planInPlace(d: DesiredPlugin, plugin: InstalledPlugin): { outcome: Outcome; actions: Action[] } {
  const diff = diffSettings(d.settings, plugin.settings, plugin.defaults);
  if (diff.problems.length > 0) {
    return {
      outcome: 'blocked',
      actions: [
        blocked(
          'stalled',
          'SETTINGS_INVALID',
          `spec.settings cannot be applied: ${diff.problems.join('; ')}`,
        ),
      ],
    };
  }
  const actions: Action[] = [];
  if (diff.changes.length > 0) {
    const reason = `settings differ: ${diff.differences.join(', ')}`;
    if (plugin.enabled) {
      const stop = disable(d, plugin, 'settings can only be changed while disabled');
      if (stop.type === 'blocked') return { outcome: 'blocked', actions: [stop] };
      actions.push(stop);
    }
    actions.push({ type: 'set', changes: diff.changes, declared: d.settings, reason });
    if (d.enabled)
      actions.push(enable(d, plugin.enabled ? 'was enabled before the change' : 'spec.enabled is true'));
  } else if (d.enabled && !plugin.enabled) {
    actions.push(enable(d, 'spec.enabled is true but the plugin is disabled'));
  } else if (!d.enabled && plugin.enabled) {
    const stop = disable(d, plugin, 'spec.enabled is false but the plugin is enabled');
    if (stop.type === 'blocked') return { outcome: 'blocked', actions: [stop] };
    actions.push(stop);
  }
  if (actions.length === 0) return { outcome: 'unchanged', actions: [noop('up to date')] };
  return { outcome: 'configure', actions };
}

function checkGrants(
  d: DesiredPlugin,
  facts: RemoteFacts,
): { privileges: PluginPrivilege[] } | { blocked: Action } {
  const required = facts.privileges.get(d.remote);
  if (required === undefined) {
    return {
      blocked: blocked(
        'transient',
        'FACTS_MISSING',
        `the privileges of ${d.remote} have not been fetched yet`,
      ),
    };
  }
  if (required instanceof Error) {
    // A refusal that needs a human (e.g. a digest the engine cannot take) stays stalled.
    const kind = required instanceof PlugctlError ? required.kind : 'transient';
    const code = required instanceof PlugctlError ? required.code : 'PRIVILEGES_UNAVAILABLE';
    return { blocked: blocked(kind, code, required.message) };
  }
  if (d.privileges === 'all') return { privileges: [...required] };
  if (privilegesEqual(d.privileges, required)) return { privileges: [...required] };
  const hint =
    required.length === 0
      ? ' (the engine reports no privileges, which it also does when it cannot reach the registry)'
      : '';
  return {
    blocked: blocked(
      'stalled',
      'PRIVILEGES_MISMATCH',
      `privileges do not match: ${d.remote} asks for ${formatPrivileges(required)}${hint}; ` +
        `spec.privileges grants ${formatPrivileges(d.privileges)}. ` +
        `Declare exactly what it asks for, or set grantAllPrivileges: true`,
    ),
  };
}

function enable(d: DesiredPlugin, reason: string): Action {
  return { type: 'enable', timeoutSeconds: d.enableTimeoutSeconds, reason };
}

/** A disable, or a blocked action when the plugin is known to be in use and the policy is Wait. */
function disable(d: DesiredPlugin, plugin: InstalledPlugin, why: string): Action {
  if (plugin.inUse === true && d.inUse === 'Wait') {
    return blocked(
      'waiting',
      'PLUGIN_IN_USE',
      `${why}, but it is in use and spec.inUse is Wait; set inUse: Force to disrupt it`,
    );
  }
  return { type: 'disable', force: d.inUse === 'Force', reason: why };
}

function pruneActions(plugin: InstalledPlugin, force: boolean): Action[] {
  const reason = 'no longer declared';
  if (plugin.enabled && plugin.inUse === true && !force) {
    return [
      blocked('waiting', 'PLUGIN_IN_USE', `${reason}, but it is in use; it is removed once nothing uses it`),
    ];
  }
  const actions: Action[] = [];
  if (plugin.enabled) actions.push({ type: 'disable', force, reason });
  actions.push({ type: 'remove', force: false, reason });
  return actions;
}

function prunePlan(
  key: string,
  name: string,
  ownership: PluginPlan['ownership'],
  outcome: Outcome,
  actions: Action[],
): PluginPlan {
  const isBlocked = actions.some((a) => a.type === 'blocked');
  return {
    key,
    name,
    ownership: isBlocked ? 'keep' : ownership,
    outcome: isBlocked ? 'blocked' : outcome,
    actions,
  };
}

function noop(reason: string): Action {
  return { type: 'noop', reason };
}

function blocked(kind: FailureKind, code: string, reason: string): Action {
  return { type: 'blocked', kind, code, reason };
}

/** Compares two references after normalisation; unparsable ones compare as plain strings. */
export function sameRemote(a: string, b: string): boolean {
  return normalise(a) === normalise(b);
}

function normalise(reference: string): string {
  try {
    return formatReference(parseReference(reference));
  } catch {
    return reference;
  }
}
