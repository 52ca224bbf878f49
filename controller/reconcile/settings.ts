/**
 * Settings comparison. The declared settings are the whole truth: a value the document does not
 * mention is expected at the plugin config's default, so removing a line from the document reverts
 * it on the host (what users of kubectl and terraform expect).
 */
import type { PluginSettings } from '../api/types.ts';
import type { EffectiveSettings, SettableDefaults } from '../store/store.ts';

/** The result of comparing declared settings with an installed plugin. */
export interface SettingsDiff {
  /** the settings to send with `set`, already in the engine's syntax */
  changes: string[];
  /** human descriptions of what differs, e.g. `env DEBUG "0" -> "1"` */
  differences: string[];
  /** declarations the plugin cannot accept (unknown or not settable): these need a human */
  problems: string[];
}

/**
 * Compares declared settings with the installed effective settings, using the plugin's config for
 * defaults and settability. Pure.
 */
export function diffSettings(
  declared: PluginSettings,
  actual: EffectiveSettings,
  defaults: SettableDefaults,
): SettingsDiff {
  const diff: SettingsDiff = { changes: [], differences: [], problems: [] };

  compareNamed(
    diff,
    'env',
    declared.env,
    actual.env,
    defaults.env,
    (d) => d.value,
    (name, value) => `${name}=${value}`,
  );
  compareNamed(
    diff,
    'mount',
    declared.mounts,
    actual.mounts,
    defaults.mounts,
    (d) => d.source,
    (name, value) => `${name}.source=${value}`,
  );
  compareNamed(
    diff,
    'device',
    declared.devices,
    actual.devices,
    defaults.devices,
    (d) => d.path,
    (name, value) => `${name}.path=${value}`,
  );

  const wantArgs = declared.args ?? defaults.args.value;
  if (!sameList(wantArgs, actual.args)) {
    // The engine splits the args setting on whitespace, so such an argument cannot be expressed.
    const spaced = wantArgs.filter((arg) => /\s/.test(arg) || arg === '');
    if (spaced.length > 0) {
      diff.problems.push(`args ${JSON.stringify(spaced)}: arguments may not be empty or contain whitespace`);
    } else if (defaults.args.name === '') {
      diff.problems.push(`args: the plugin's config declares no args, so none can be set`);
    } else if (!defaults.args.settable) {
      diff.problems.push(
        `args are not settable in this plugin's config (wanted ${JSON.stringify(wantArgs)})`,
      );
    } else {
      diff.changes.push(`${defaults.args.name}=${wantArgs.join(' ')}`);
      diff.differences.push(`args ${JSON.stringify(actual.args)} -> ${JSON.stringify(wantArgs)}`);
    }
  }
  return diff;
}

/**
 * The settings to send right after a fresh pull, when only the declaration is known: every declared
 * value. `argsName` comes from the pulled plugin's config.
 */
export function declaredSettingStrings(declared: PluginSettings, argsName: string): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(declared.env ?? {})) out.push(`${name}=${value}`);
  for (const [name, value] of Object.entries(declared.mounts ?? {})) out.push(`${name}.source=${value}`);
  for (const [name, value] of Object.entries(declared.devices ?? {})) out.push(`${name}.path=${value}`);
  if (declared.args !== undefined) out.push(`${argsName}=${declared.args.join(' ')}`);
  return out;
}

/** True when the declaration sets anything at all. */
export function declaresSettings(declared: PluginSettings): boolean {
  return (
    declared.args !== undefined ||
    Object.keys(declared.env ?? {}).length > 0 ||
    Object.keys(declared.mounts ?? {}).length > 0 ||
    Object.keys(declared.devices ?? {}).length > 0
  );
}

function compareNamed<D extends { settable: boolean }>(
  diff: SettingsDiff,
  kind: string,
  declared: Record<string, string> | undefined,
  actual: Record<string, string>,
  defaults: Record<string, D>,
  defaultValue: (d: D) => string,
  render: (name: string, value: string) => string,
): void {
  for (const name of Object.keys(declared ?? {})) {
    if (!Object.hasOwn(defaults, name)) {
      const known = Object.keys(defaults);
      diff.problems.push(
        `${kind} ${name}: the plugin's config declares no such ${kind}` +
          (known.length > 0 ? ` (it declares: ${known.join(', ')})` : ''),
      );
    }
  }
  for (const [name, def] of Object.entries(defaults)) {
    const want = declared?.[name] ?? defaultValue(def);
    const have = actual[name] ?? defaultValue(def);
    if (want === have) continue;
    if (!def.settable) {
      diff.problems.push(
        `${kind} ${name} is not settable in the plugin's config (wanted ${JSON.stringify(want)})`,
      );
      continue;
    }
    diff.changes.push(render(name, want));
    diff.differences.push(`${kind} ${name} ${JSON.stringify(have)} -> ${JSON.stringify(want)}`);
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

/**
 * Every settable value an installed plugin has now, in the engine's syntax: what a rollback sends
 * to put the old version back exactly as it was.
 */
export function restoreSettingStrings(settings: EffectiveSettings, defaults: SettableDefaults): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(settings.env)) {
    if (defaults.env[name]?.settable === true) out.push(`${name}=${value}`);
  }
  for (const [name, value] of Object.entries(settings.mounts)) {
    if (defaults.mounts[name]?.settable === true) out.push(`${name}.source=${value}`);
  }
  for (const [name, value] of Object.entries(settings.devices)) {
    if (defaults.devices[name]?.settable === true) out.push(`${name}.path=${value}`);
  }
  if (
    defaults.args.settable &&
    defaults.args.name !== '' &&
    settings.args.every((a) => !/\s/.test(a) && a !== '')
  ) {
    out.push(`${defaults.args.name}=${settings.args.join(' ')}`);
  }
  return out;
}
