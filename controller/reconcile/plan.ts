/**
 * plan() is the heart of plugctl: a pure function from (declared, installed, owned, remote facts) to
 * the smallest ordered set of actions per plugin that makes the host match the declaration. It does
 * no I/O, so `plugctl diff` prints exactly what `plugctl apply` will execute.
 */
import { PlugctlError, type ErrorCode, type FailureKind } from '../errors.ts';
import { formatReference, parseReference } from '../api/reference.ts';
import type { PluginPrivilege } from '../api/types.ts';
import { SecretValue } from '../api/secrets.ts';
import type { RemoteInfo } from '../registry/inspect.ts';
import type { ContextInfo } from '../store/context.ts';
import type { InstalledPlugin } from '../store/store.ts';
import type { DesiredPlugin, DesiredSettings } from './desired.ts';
import type { Inventory, OwnedPlugin } from './inventory.ts';
import type { OwnershipClaim } from './ledger.ts';
import { RegistryError } from '../registry/errors.ts';
import { formatPrivileges, privilegesEqual } from '../plugin/privileges.ts';
import { declaresSettings, diffSettings, restoreSettingStrings, type SettingString } from './settings.ts';
import { describeUsage, usageCount } from '../store/usage.ts';

/** What to restore when an upgraded plugin fails to start: the content and settings it had before. */
export interface Rollback {
  remote: string;
  privileges: PluginPrivilege[];
  /** every settable value it had, in the engine's syntax (secrets wrapped) */
  settings: SettingString[];
}

/** One step of a plugin's plan. Every action carries the human reason it is needed. */
export type Action =
  /**
   * `remote` is what the store receives (a pin's tag, a platform digest); `digest` the manifest it
   * resolves to; `from` the registry mirror's reference to fetch it from instead, with `source`
   * saying which mirror and what the content was verified against
   */
  | {
      type: 'pull';
      remote: string;
      digest: string;
      privileges: PluginPrivilege[];
      reason: string;
      from?: string;
      source?: string;
    }
  | {
      type: 'upgrade';
      remote: string;
      digest: string;
      privileges: PluginPrivilege[];
      reason: string;
      from?: string;
      source?: string;
      /** present when a failure to enable the new version must roll back to the old one */
      rollback?: Rollback;
    }
  /**
   * `changes` are the engine-syntax settings when known now; when absent (right after a pull or an
   * upgrade, before the new config is known) apply compares `declared` with the fresh plugin.
   */
  | {
      type: 'set';
      changes?: SettingString[];
      /** with `changes`: each setting as before -> after, e.g. `env DEBUG "0" -> "1"` (for diff) */
      differences?: string[];
      declared: DesiredSettings;
      reason: string;
    }
  | { type: 'enable'; timeoutSeconds: number; reason: string }
  /**
   * `forceIfUnused`: the usage lookup found nothing using the plugin, so when the engine still refuses
   * because its (lost) reference count says "in use", apply checks again and repeats with force
   */
  | { type: 'disable'; force: boolean; forceIfUnused?: true; reason: string }
  | { type: 'remove'; force: boolean; forceIfUnused?: true; reason: string }
  /** creates the plugin from a context (spec.build); `digest` is the context's, recorded once built */
  | { type: 'build'; context: string; digest: string; reason: string }
  /** checks that the installed content is the pinned content; a mismatch is removed and reported */
  | { type: 'verify'; diffIds: string[]; pin: string; reason: string }
  | { type: 'adopt'; reason: string }
  | { type: 'noop'; reason: string }
  /**
   * `code` is the stable code the failure is reported with (e.g. PRIVILEGES_MISMATCH);
   * `retryAfterMs` the wait a rate-limited registry asked for, when it did.
   */
  | { type: 'blocked'; kind: FailureKind; code: ErrorCode; reason: string; retryAfterMs?: number };

/**
 * What a plugin's plan amounts to, in the words of a ChangeSet. `skipped`: the document does not
 * select this host (spec.nodeSelector), so nothing is done for it here.
 */
export type Outcome = 'create' | 'configure' | 'unchanged' | 'delete' | 'blocked' | 'suspended' | 'skipped';

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
  /** for `add` and `keep`: the set, selection and (when known now) plugin ID the inventory records */
  claim?: OwnershipClaim;
  /** the declaration this plan serves; absent for a prune */
  desired?: DesiredPlugin;
}

/** Facts fetched from the registry before planning. */
export interface RemoteFacts {
  /**
   * what the registry says about each normalised remote that is to be installed, upgraded or
   * checked for new content; an Error when it could not be read
   */
  remotes: ReadonlyMap<string, RemoteInfo | Error>;
  /** what each build context (by absolute path) holds; an Error when it could not be read */
  builds?: ReadonlyMap<string, ContextInfo | Error>;
  /** keys of the DockerPlugins that are Ready, for spec.dependsOn; absent means "none are" */
  ready?: ReadonlySet<string>;
}

/** A document that does not select this host: reported, and its plugin removed only when safe. */
export interface SkippedDocument {
  /** metadata.name */
  key: string;
  /** the local plugin name it declares */
  name: string;
  /** why it does not select the host, for messages */
  reason: string;
  /**
   * true when the persistent host labels select it and only a `--node-labels` override does not:
   * an override alone never deletes
   */
  byOverride: boolean;
}

/** Options that change what is allowed, not what is wanted. */
export interface PlanOptions {
  /** false to never remove owned plugins that are no longer declared (e.g. some documents failed to load) */
  prune: boolean;
  /**
   * the apply set being applied: it claims what it declares and prunes only what it owns; a plugin
   * another set owns is a conflict
   */
  set: string;
  /**
   * take plugins another set owns, or plugins someone installed by hand under a declared name,
   * into this set (server-side apply's --force-conflicts)
   */
  takeOwnership?: boolean;
  /** documents of this set that do not select this host */
  skipped?: readonly SkippedDocument[];
}

/**
 * Plans every declared plugin, every skipped document and every plugin the set owns. Declared
 * plugins come first in the given order, then skipped documents and prunes sorted by name, so the
 * output is deterministic.
 */
export function plan(
  desired: readonly DesiredPlugin[],
  actual: readonly InstalledPlugin[],
  inventory: Inventory,
  facts: RemoteFacts,
  options: PlanOptions,
): PluginPlan[] {
  const installed = new Map(actual.map((p) => [p.name, p]));
  const plans = desired.map((d) => planOne(d, installed.get(d.name), inventory, facts, options));
  plans.push(...planPrunes(desired, installed, inventory, options));
  return plans;
}

/**
 * The plan of one declared plugin, exactly as plan() makes it: `plugin` is what is installed under
 * its name, `facts` need only hold its own remote or context. Plans of declared plugins do not
 * depend on each other, so a caller may plan (and apply) each as soon as its facts are known.
 */
export function planOne(
  d: DesiredPlugin,
  plugin: InstalledPlugin | undefined,
  inventory: Inventory,
  facts: RemoteFacts,
  options: PlanOptions,
): PluginPlan {
  const owned = Object.hasOwn(inventory.plugins, d.name) ? inventory.plugins[d.name] : undefined;
  return waitForDependencies(planDeclared(d, plugin, owned, facts, options), facts);
}

/**
 * The plans plan() makes besides the declared plugins, sorted by name: the set's owned plugins that
 * are no longer declared (pruned, or kept when that is not safe) and the skipped documents.
 */
export function planPrunes(
  desired: readonly DesiredPlugin[],
  installed: ReadonlyMap<string, InstalledPlugin>,
  inventory: Inventory,
  options: PlanOptions,
): PluginPlan[] {
  const declaredNames = new Set(desired.map((d) => d.name));
  const plans: PluginPlan[] = [];
  const skipped = new Map<string, SkippedDocument>();
  for (const s of options.skipped ?? []) if (!declaredNames.has(s.name)) skipped.set(s.name, s);

  const names = new Set([...Object.keys(inventory.plugins), ...skipped.keys()]);
  for (const name of [...names].sort()) {
    if (declaredNames.has(name)) continue;
    const owned = Object.hasOwn(inventory.plugins, name) ? inventory.plugins[name] : undefined;
    const skip = skipped.get(name);
    // Other sets' plugins, and entries migrated from before apply sets, are never pruned here.
    const ours = owned !== undefined && owned.set === options.set;
    if (!ours) {
      if (skip !== undefined) plans.push(skippedPlan(skip, 'none', 'not selected for this host'));
      continue;
    }
    plans.push(prunePlanFor(name, owned, installed.get(name), skip, options));
  }
  return plans;
}

/** The plan for a plugin the set owns that no selected document declares any more. */
function prunePlanFor(
  name: string,
  owned: OwnedPlugin,
  plugin: InstalledPlugin | undefined,
  skip: SkippedDocument | undefined,
  options: PlanOptions,
): PluginPlan {
  const why = skip === undefined ? 'no longer declared' : `no longer selected for this host (${skip.reason})`;
  if (skip !== undefined && (skip.byOverride || owned.selectedBy === 'override')) {
    const kept = skip.byOverride
      ? 'a --node-labels override deselects it, and an override alone never deletes'
      : 'it was installed for a --node-labels override, and a lost override never deletes';
    return skippedPlan(skip, 'keep', `${why}; kept: ${kept}. Remove it with plugctl prune or a labels file`);
  }
  if (!options.prune) {
    return prunePlan(owned.key, name, 'keep', 'unchanged', [noop(`${why}; pruning is off`)]);
  }
  if (plugin === undefined) {
    return prunePlan(owned.key, name, 'drop', 'delete', [noop(`${why} and already gone`)]);
  }
  if (owned.id !== undefined && plugin.id !== owned.id) {
    // Someone removed plugctl's plugin and installed their own under the name: theirs stays.
    return prunePlan(owned.key, name, 'drop', 'unchanged', [
      noop(
        `${why}; the plugin now named ${name} (ID ${shortId(plugin.id)}) is not the one plugctl installed ` +
          `(ID ${shortId(owned.id)}), so it is left alone and forgotten`,
      ),
    ]);
  }
  return prunePlan(owned.key, name, 'drop', 'delete', pruneActions(plugin, owned.inUse === 'Force', why));
}

function skippedPlan(skip: SkippedDocument, ownership: PluginPlan['ownership'], reason: string): PluginPlan {
  return { key: skip.key, name: skip.name, outcome: 'skipped', ownership, actions: [noop(reason)] };
}

/** True when every plan is unchanged, suspended or skipped: nothing to do on the host. */
export function isConverged(plans: readonly PluginPlan[]): boolean {
  return plans.every(
    (p) => p.outcome === 'unchanged' || p.outcome === 'suspended' || p.outcome === 'skipped',
  );
}

/** Codes of blocked plans that are errors of the input or the environment, not pending changes. */
const ERROR_CODES_OF_DIFF: ReadonlySet<string> = new Set(['NAME_CONFLICT', 'OWNERSHIP_CONFLICT']);

/**
 * True when a plan could not be computed for reasons `diff` reports as errors (kubectl's exit 2):
 * a conflict over who owns a plugin, or a registry, engine or context that could not be read.
 * A plugin that would merely be blocked (privileges, settings, in use, dependencies) is a difference.
 */
export function isPlanError(p: PluginPlan): boolean {
  return p.actions.some(
    (a) => a.type === 'blocked' && (ERROR_CODES_OF_DIFF.has(a.code) || a.kind === 'transient'),
  );
}

/**
 * spec.dependsOn: a plugin may be installed and configured before its dependencies are Ready, but
 * it is not enabled until they are. An enabled plugin is never disabled because of a dependency.
 */
function waitForDependencies(p: PluginPlan, facts: RemoteFacts): PluginPlan {
  const unmet = (p.desired?.dependsOn ?? []).filter((key) => !(facts.ready?.has(key) ?? false));
  const at = p.actions.findIndex((a) => a.type === 'enable');
  if (unmet.length === 0 || at < 0) return p;
  const wait = blocked(
    'waiting',
    'DEPENDENCY_NOT_READY',
    `waiting for ${unmet.join(', ')} to be Ready (spec.dependsOn)`,
  );
  return { ...p, outcome: at === 0 ? 'blocked' : p.outcome, actions: [...p.actions.slice(0, at), wait] };
}

function planDeclared(
  d: DesiredPlugin,
  plugin: InstalledPlugin | undefined,
  ownedEntry: OwnedPlugin | undefined,
  facts: RemoteFacts,
  options: PlanOptions,
): PluginPlan {
  const claim: OwnershipClaim = {
    set: options.set,
    selectedBy: d.selectedBy ?? 'labels',
    ...(plugin !== undefined ? { id: plugin.id } : {}),
  };
  const base = { key: d.key, name: d.name, desired: d, claim };
  const conflict = ownershipConflict(d, plugin, ownedEntry, options);
  if (conflict !== undefined) return { ...base, ownership: 'none', outcome: 'blocked', actions: [conflict] };
  // Past the checks, an entry is this set's (or taken over): a replaced plugin counts as unowned.
  const replaced = ownedEntry?.id !== undefined && plugin !== undefined && plugin.id !== ownedEntry.id;
  const entry = replaced ? undefined : ownedEntry;
  const owned = entry !== undefined;
  if (d.suspend) {
    return {
      ...base,
      outcome: 'suspended',
      ownership: owned ? 'keep' : 'none',
      actions: [noop('spec.suspend is true')],
    };
  }
  const secrets = secretsProblem(d);
  if (secrets !== undefined) {
    return { ...base, ownership: owned ? 'keep' : 'none', outcome: 'blocked', actions: [secrets] };
  }
  if (d.build !== undefined) {
    return {
      ...base,
      ...planBuilt(d, d.build.context, plugin, entry, facts.builds?.get(d.build.context), options),
    };
  }
  const info = facts.remotes.get(d.remote);
  if (plugin === undefined) return { ...base, ownership: owned ? 'keep' : 'add', ...planInstall(d, info) };

  const fromDeclared = installedFromDeclared(plugin, d, info);
  const adopt: Action[] = [];
  if (!owned) {
    if (!fromDeclared && options.takeOwnership !== true) {
      return { ...base, ownership: 'none', outcome: 'blocked', actions: [nameConflict(d, plugin)] };
    }
    adopt.push({
      type: 'adopt',
      reason: fromDeclared
        ? 'installed from the declared remote; plugctl takes ownership'
        : `installed from ${plugin.reference}; --take-ownership: plugctl takes it over`,
    });
  }
  const moved = fromDeclared ? contentMoved(d, plugin, info) : undefined;
  const rest =
    fromDeclared && moved === undefined
      ? planInPlace(d, plugin, info)
      : planUpgrade(d, plugin, info, moved ?? `installed from ${plugin.reference}, declared ${d.remote}`);
  const actions = [...adopt, ...rest.actions];
  const outcome = rest.outcome === 'unchanged' && adopt.length > 0 ? 'configure' : rest.outcome;
  return { ...base, ownership: owned ? 'keep' : 'add', outcome, actions };
}

/**
 * Nothing is installed or changed while a declared secret is not resolved: a plugin configured
 * without it, or with an empty value, would be wrong and might not even say so.
 */
function secretsProblem(d: DesiredPlugin): Action | undefined {
  if (d.secretError !== undefined) {
    const stalled =
      d.secretError.code === 'SECRET_SOURCE_UNSUPPORTED' || d.secretError.code === 'SECRET_PATH_FORBIDDEN';
    const kind = stalled ? 'stalled' : 'transient';
    return blocked(kind, d.secretError.code, d.secretError.message);
  }
  const unresolved = Object.keys(d.secrets ?? {}).filter(
    (name) => !(d.settings.env?.[name] instanceof SecretValue),
  );
  if (unresolved.length === 0) return undefined;
  return blocked(
    'transient',
    'SECRET_UNAVAILABLE',
    `the secret${unresolved.length > 1 ? 's' : ''} of spec.settings.env ${unresolved.join(', ')} ha${
      unresolved.length > 1 ? 've' : 's'
    } not been read yet`,
  );
}

function nameConflict(d: DesiredPlugin, plugin: InstalledPlugin): Action {
  return blocked(
    'stalled',
    'NAME_CONFLICT',
    `a plugin named ${d.name} from ${plugin.reference} is installed but not managed by plugctl; ` +
      `remove it, set spec.alias to another name, or apply with --take-ownership to manage it`,
  );
}

/**
 * Why this set may not act on the declared plugin, if it may not: another set owns it, or the
 * plugin under its name is not the one plugctl installed (someone replaced it by hand). Either is
 * overridden by --take-ownership.
 */
function ownershipConflict(
  d: DesiredPlugin,
  plugin: InstalledPlugin | undefined,
  owned: OwnedPlugin | undefined,
  options: PlanOptions,
): Action | undefined {
  if (owned === undefined || options.takeOwnership === true) return undefined;
  if (owned.set !== undefined && owned.set !== options.set) {
    return blocked(
      'stalled',
      'OWNERSHIP_CONFLICT',
      `plugin ${d.name} is managed by apply set ${owned.set} (dockerplugin/${owned.key} there), not by ` +
        `${options.set}; remove the document from one of the sets, or apply with --take-ownership to move it to ${options.set}`,
    );
  }
  if (owned.id !== undefined && plugin !== undefined && plugin.id !== owned.id) {
    return blocked(
      'stalled',
      'NAME_CONFLICT',
      `the plugin named ${d.name} (ID ${shortId(plugin.id)}, from ${plugin.reference}) is not the one plugctl ` +
        `installed (ID ${shortId(owned.id)}): it was replaced by hand, and plugctl leaves it alone. Remove it, ` +
        `set spec.alias to another name, or apply with --take-ownership to manage it`,
    );
  }
  return undefined;
}

function shortId(id: string): string {
  return id.slice(0, 12);
}

/**
 * A plugin built from a context (spec.build). Its content is known by the context's digest, which
 * plugctl records when it builds: a different digest means the context changed, and the plugin is
 * rebuilt (engines cannot create over an existing plugin, so it is removed first and gets a new ID).
 * The grants are checked against the context's config on every pass, because creating a plugin
 * grants whatever its config asks for without asking.
 */
function planBuilt(
  d: DesiredPlugin,
  context: string,
  plugin: InstalledPlugin | undefined,
  owned: OwnedPlugin | undefined,
  info: ContextInfo | Error | undefined,
  options: PlanOptions,
): Pick<PluginPlan, 'ownership' | 'outcome' | 'actions'> {
  // Built plugins record no remote to recognise them by, so only the inventory says they are ours.
  if (plugin !== undefined && owned === undefined && options.takeOwnership !== true) {
    return { ownership: 'none', outcome: 'blocked', actions: [nameConflict(d, plugin)] };
  }
  const ownership = owned === undefined ? 'add' : 'keep';
  const stop = (action: Action): Pick<PluginPlan, 'ownership' | 'outcome' | 'actions'> => ({
    ownership,
    outcome: 'blocked',
    actions: [action],
  });
  if (info === undefined) {
    return stop(blocked('transient', 'FACTS_MISSING', `the build context ${context} has not been read yet`));
  }
  if (info instanceof Error) {
    const kind = info instanceof PlugctlError ? info.kind : 'transient';
    return stop(blocked(kind, info instanceof PlugctlError ? info.code : 'CONTEXT_INVALID', info.message));
  }
  const grants = compareGrants(d, info.privileges, `the context ${context}`);
  if (!Array.isArray(grants)) return stop(grants);
  const build: Action = { type: 'build', context, digest: info.digest, reason: 'not installed' };
  const actions: Action[] = [];
  if (plugin === undefined) {
    actions.push(build);
    if (declaresSettings(d.settings)) {
      actions.push({ type: 'set', declared: d.settings, reason: 'apply the declared settings' });
    }
    if (d.enabled) actions.push(enable(d, 'spec.enabled is true'));
    return { ownership, outcome: 'create', actions };
  }
  if (owned?.digest === info.digest) return { ownership, ...planInPlace(d, plugin, undefined) };
  const why =
    owned?.digest === undefined
      ? `the context it was built from is not recorded; rebuild from ${context}`
      : `the context changed (${shortDigest(owned.digest)} -> ${shortDigest(info.digest)})`;
  if (plugin.enabled) {
    const disabling = disable(d, plugin, 'a rebuild needs the plugin disabled');
    if (disabling.type === 'blocked') return stop(disabling);
    actions.push(disabling);
  }
  actions.push({ type: 'remove', force: false, reason: `${why}; engines create only under a free name` });
  actions.push({ ...build, reason: why });
  actions.push({
    type: 'set',
    declared: d.settings,
    reason: 'apply the declared settings to the rebuilt plugin',
  });
  if (d.enabled) actions.push(enable(d, 'spec.enabled is true'));
  return { ownership, outcome: 'configure', actions };
}

function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/**
 * True when the plugin was installed from the declared remote: the same reference, or the
 * reference plugctl hands the store for it (a pin's tag on an old engine, a platform digest).
 */
function installedFromDeclared(
  plugin: InstalledPlugin,
  d: DesiredPlugin,
  info: RemoteInfo | Error | undefined,
): boolean {
  if (sameRemote(plugin.reference, d.remote)) return true;
  return info !== undefined && !(info instanceof Error) && sameRemote(plugin.reference, info.pullRemote);
}

/**
 * The reason to replace content installed from the declared remote: with TrackTag, the tag now
 * points at other layers; with a digest pin, the installed layers are not the pinned ones.
 */
function contentMoved(
  d: DesiredPlugin,
  plugin: InstalledPlugin,
  info: RemoteInfo | Error | undefined,
): string | undefined {
  const pinned = d.remote.includes('@');
  if (d.upgradePolicy === 'Never' || (d.upgradePolicy !== 'TrackTag' && !pinned)) return undefined;
  if (info === undefined || info instanceof Error) return undefined;
  if (info.diffIds.length === 0 || sameList(info.diffIds, plugin.diffIds)) return undefined;
  return pinned
    ? `the installed content is not the pinned ${info.digest}`
    : `the tag moved: ${d.remote} now points at ${info.digest} with other layers (upgrade.policy TrackTag)`;
}

function planInstall(
  d: DesiredPlugin,
  info: RemoteInfo | Error | undefined,
): { outcome: Outcome; actions: Action[] } {
  const grants = checkGrants(d, info);
  if ('blocked' in grants) return { outcome: 'blocked', actions: [grants.blocked] };
  const actions: Action[] = [
    {
      type: 'pull',
      remote: grants.info.pullRemote,
      digest: grants.info.digest,
      privileges: grants.privileges,
      reason: 'not installed',
      ...mirrorFields(grants.info),
    },
  ];
  actions.push(...verifyPin(d, grants.info));
  if (declaresSettings(d.settings)) {
    actions.push({ type: 'set', declared: d.settings, reason: 'apply the declared settings' });
  }
  if (d.enabled) actions.push(enable(d, 'spec.enabled is true'));
  return { outcome: 'create', actions };
}

function planUpgrade(
  d: DesiredPlugin,
  plugin: InstalledPlugin,
  info: RemoteInfo | Error | undefined,
  why: string,
): { outcome: Outcome; actions: Action[] } {
  if (d.upgradePolicy === 'Never') {
    const inPlace = planInPlace(d, plugin, info);
    const keep = noop(`installed from ${plugin.reference}, declared ${d.remote}; upgrade.policy is Never`);
    return {
      outcome: inPlace.outcome,
      actions: inPlace.outcome === 'unchanged' ? [keep] : [keep, ...inPlace.actions],
    };
  }
  const grants = checkGrants(d, info);
  if ('blocked' in grants) return { outcome: 'blocked', actions: [grants.blocked] };
  const actions: Action[] = [];
  if (plugin.enabled) {
    const stop = disable(d, plugin, `upgrade needs the plugin disabled`);
    if (stop.type === 'blocked') return { outcome: 'blocked', actions: [stop] };
    actions.push(stop);
  }
  actions.push({
    type: 'upgrade',
    remote: grants.info.pullRemote,
    digest: grants.info.digest,
    privileges: grants.privileges,
    reason: why,
    ...mirrorFields(grants.info),
    ...(d.enabled
      ? {
          rollback: {
            remote: plugin.reference,
            privileges: plugin.privileges,
            settings: restoreSettingStrings(plugin.settings, plugin.defaults, d.settings.env),
          },
        }
      : {}),
  });
  actions.push(...verifyPin(d, grants.info));
  // The engine keeps the old settings across an upgrade; re-apply the declaration against the new config.
  actions.push({
    type: 'set',
    declared: d.settings,
    reason: 'apply the declared settings to the new version',
  });
  if (d.enabled) actions.push(enable(d, 'spec.enabled is true'));
  return { outcome: 'configure', actions };
}

/** Where the store fetches from when a registry mirror serves the content. */
function mirrorFields(info: RemoteInfo): { from?: string; source?: string } {
  return info.mirror === undefined ? {} : { from: info.mirror.reference, source: info.mirror.description };
}

/**
 * For a digest pin installed by tag, a check that the tag delivered the pinned content; the same for
 * content fetched from a mirror by tag (the mirror's tag may move between the lookup and the pull).
 */
function verifyPin(d: DesiredPlugin, info: RemoteInfo): Action[] {
  if (info.mirror !== undefined && !info.mirror.reference.includes('@')) {
    return [
      {
        type: 'verify',
        diffIds: info.diffIds,
        pin: `${d.remote} (${info.digest})`,
        reason: `fetched by tag from ${info.mirror.reference}: check it is the content looked up`,
      },
    ];
  }
  if (!d.remote.includes('@') || sameRemote(info.pullRemote, d.remote)) return [];
  return [
    {
      type: 'verify',
      diffIds: info.diffIds,
      pin: d.remote,
      reason: `installed by tag ${info.pullRemote}: check it is the pinned content`,
    },
  ];
}

function planInPlace(
  d: DesiredPlugin,
  plugin: InstalledPlugin,
  info: RemoteInfo | Error | undefined,
): { outcome: Outcome; actions: Action[] } {
  // Consent is checked on every pass, not only at install: grants narrowed in the document must not
  // leave the plugin holding what the operator no longer consents to. Nothing is removed for it.
  if (d.privileges !== 'all' && !privilegesEqual(d.privileges, plugin.privileges)) {
    return {
      outcome: 'blocked',
      actions: [
        blocked(
          'stalled',
          'PRIVILEGES_MISMATCH',
          `the installed plugin holds privileges the document does not grant: it holds ` +
            `${formatPrivileges(plugin.privileges)}; spec.privileges grants ${formatPrivileges(d.privileges)}. ` +
            `Nothing is removed: restore the grants (or set grantAllPrivileges: true), or remove the document to remove the plugin`,
        ),
      ],
    };
  }
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
    actions.push({
      type: 'set',
      changes: diff.changes,
      differences: diff.differences,
      declared: d.settings,
      reason,
    });
    if (d.enabled)
      actions.push(enable(d, plugin.enabled ? 'was enabled before the change' : 'spec.enabled is true'));
  } else if (d.enabled && !plugin.enabled) {
    actions.push(enable(d, 'spec.enabled is true but the plugin is disabled'));
  } else if (!d.enabled && plugin.enabled) {
    const stop = disable(d, plugin, 'spec.enabled is false but the plugin is enabled');
    if (stop.type === 'blocked') return { outcome: 'blocked', actions: [stop] };
    actions.push(stop);
  }
  if (actions.length === 0) {
    // A tag that could not be checked is not a reason to touch a working plugin, but it is said.
    const unchecked =
      info instanceof Error ? `; could not check the remote for new content: ${info.message}` : '';
    return { outcome: 'unchanged', actions: [noop(`up to date${unchecked}`)] };
  }
  return { outcome: 'configure', actions };
}

function checkGrants(
  d: DesiredPlugin,
  info: RemoteInfo | Error | undefined,
): { privileges: PluginPrivilege[]; info: RemoteInfo } | { blocked: Action } {
  if (info === undefined) {
    return {
      blocked: blocked(
        'transient',
        'FACTS_MISSING',
        `${d.remote} has not been looked up at its registry yet`,
      ),
    };
  }
  if (info instanceof Error) {
    // A refusal that needs a human (e.g. a digest the engine cannot take) stays stalled.
    const kind = info instanceof PlugctlError ? info.kind : 'transient';
    const code = info instanceof PlugctlError ? info.code : 'REGISTRY_ERROR';
    const retryAfterMs = info instanceof RegistryError ? info.retryAfterMs : undefined;
    return {
      blocked: {
        type: 'blocked',
        kind,
        code,
        reason: info.message,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      },
    };
  }
  const privileges = compareGrants(d, info.privileges, d.remote);
  return Array.isArray(privileges) ? { privileges, info } : { blocked: privileges };
}

/**
 * The grants to send when the declaration consents to exactly what `source` asks for (or to all),
 * in the order the plugin asks for them; otherwise a stalled PRIVILEGES_MISMATCH.
 */
function compareGrants(
  d: DesiredPlugin,
  required: readonly PluginPrivilege[],
  source: string,
): PluginPrivilege[] | Action {
  if (d.privileges === 'all' || privilegesEqual(d.privileges, required)) return [...required];
  return blocked(
    'stalled',
    'PRIVILEGES_MISMATCH',
    `privileges do not match: ${source} asks for ${formatPrivileges(required)}; ` +
      `spec.privileges grants ${formatPrivileges(d.privileges)}. ` +
      `Declare exactly what it asks for, or set grantAllPrivileges: true`,
  );
}

function enable(d: DesiredPlugin, reason: string): Action {
  return { type: 'enable', timeoutSeconds: d.enableTimeoutSeconds, reason };
}

/**
 * A disable, or a blocked action when the plugin is in use and the policy is Wait. What uses it is
 * the usage lookup's answer when there is one (the engine's own "in use" comes from a reference
 * count it loses across restarts); without one, the store's inUse flag, and otherwise the engine's
 * refusal decides.
 */
function disable(d: DesiredPlugin, plugin: InstalledPlugin, why: string): Action {
  if (d.inUse === 'Force') return { type: 'disable', force: true, reason: why };
  const usage = plugin.usage;
  if (usage !== undefined) {
    if (usageCount(usage) > 0 || !usage.complete) {
      return blocked(
        'waiting',
        'PLUGIN_IN_USE',
        `${why}, but it is in use by ${describeUsage(usage)} and spec.inUse is Wait; ` +
          `it proceeds once nothing uses it, or set inUse: Force to disrupt them`,
      );
    }
    return { type: 'disable', force: false, forceIfUnused: true, reason: `${why}; nothing uses it` };
  }
  if (plugin.inUse === true) {
    return blocked(
      'waiting',
      'PLUGIN_IN_USE',
      `${why}, but it is in use and spec.inUse is Wait; set inUse: Force to disrupt it`,
    );
  }
  return { type: 'disable', force: false, reason: why };
}

function pruneActions(plugin: InstalledPlugin, force: boolean, reason: string): Action[] {
  const usage = plugin.usage;
  if (!force && usage !== undefined && (usageCount(usage) > 0 || !usage.complete)) {
    return [
      blocked(
        'waiting',
        'PLUGIN_IN_USE',
        `${reason}, but it is in use by ${describeUsage(usage)}; it is removed once nothing uses it`,
      ),
    ];
  }
  if (plugin.enabled && plugin.inUse === true && !force && usage === undefined) {
    return [
      blocked('waiting', 'PLUGIN_IN_USE', `${reason}, but it is in use; it is removed once nothing uses it`),
    ];
  }
  const unused = !force && usage !== undefined ? ({ forceIfUnused: true } as const) : {};
  const actions: Action[] = [];
  if (plugin.enabled) actions.push({ type: 'disable', force, ...unused, reason });
  actions.push({ type: 'remove', force: false, ...unused, reason });
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

function blocked(kind: FailureKind, code: ErrorCode, reason: string): Action {
  return { type: 'blocked', kind, code, reason };
}

/** Compares two references after normalisation; unparsable ones compare as plain strings. */
export function sameRemote(a: string, b: string): boolean {
  // Engines report references already normalised, so equal strings are the common, cheap case.
  return a === b || normalise(a) === normalise(b);
}

function normalise(reference: string): string {
  try {
    return formatReference(parseReference(reference));
  } catch {
    return reference;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
