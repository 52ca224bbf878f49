/**
 * Settings comparison. The declared settings are the whole truth: a value the document does not
 * mention is expected at the plugin config's default, so removing a line from the document reverts
 * it on the host (what users of kubectl and terraform expect).
 */
import { SECRET_MASK, SecretValue } from '../api/secrets.ts';
import type { EffectiveSettings, SettableDefaults } from '../store/store.ts';
import type { DesiredSettings } from './desired.ts';

/**
 * One setting in the engine's syntax (`KEY=value`): plain text, or a SecretValue for a secret env
 * value, which prints as `KEY=<secret>` and is revealed only when handed to the store.
 */
export type SettingString = string | SecretValue;

/** The result of comparing declared settings with an installed plugin. */
export interface SettingsDiff {
  /** the settings to send with `set`, already in the engine's syntax */
  changes: SettingString[];
  /** human descriptions of what differs, e.g. `env DEBUG "0" -> "1"`, `env TOKEN <secret, changed>` */
  differences: string[];
  /** declarations the plugin cannot accept (unknown or not settable): these need a human */
  problems: string[];
}

/**
 * Compares declared settings with the installed effective settings, using the plugin's config for
 * defaults and settability. Pure.
 */
export function diffSettings(
  declared: DesiredSettings,
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
export function declaredSettingStrings(declared: DesiredSettings, argsName: string): SettingString[] {
  const out: SettingString[] = [];
  for (const [name, value] of Object.entries(declared.env ?? {})) out.push(envSetting(name, value));
  for (const [name, value] of Object.entries(declared.mounts ?? {})) out.push(`${name}.source=${value}`);
  for (const [name, value] of Object.entries(declared.devices ?? {})) out.push(`${name}.path=${value}`);
  if (declared.args !== undefined) out.push(`${argsName}=${declared.args.join(' ')}`);
  return out;
}

/** True when the declaration sets anything at all. */
export function declaresSettings(declared: DesiredSettings): boolean {
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
  declared: Record<string, string | SecretValue> | undefined,
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
    // A secret is compared by its salted hash; neither side's text goes into a message.
    if (want instanceof SecretValue ? want.matches(have) : want === have) continue;
    const shown = want instanceof SecretValue ? SECRET_MASK : JSON.stringify(want);
    if (!def.settable) {
      diff.problems.push(`${kind} ${name} is not settable in the plugin's config (wanted ${shown})`);
      continue;
    }
    if (want instanceof SecretValue) {
      diff.changes.push(want.derive((plain) => render(name, plain), render(name, SECRET_MASK)));
      diff.differences.push(`${kind} ${name} <secret, changed>`);
      continue;
    }
    diff.changes.push(render(name, want));
    diff.differences.push(`${kind} ${name} ${JSON.stringify(have)} -> ${shown}`);
  }
}

/** `NAME=value` for the engine, a SecretValue showing `NAME=<secret>` for a secret. */
function envSetting(name: string, value: string | SecretValue): SettingString {
  return value instanceof SecretValue
    ? value.derive((plain) => `${name}=${plain}`, `${name}=${SECRET_MASK}`)
    : `${name}=${value}`;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

/**
 * Every settable value an installed plugin has now, in the engine's syntax: what a rollback sends
 * to put the old version back exactly as it was. Env values named in `secrets` (the declared
 * secrets) are wrapped, so the old secret is sent but never shown.
 */
export function restoreSettingStrings(
  settings: EffectiveSettings,
  defaults: SettableDefaults,
  secrets: DesiredSettings['env'] = {},
): SettingString[] {
  const out: SettingString[] = [];
  for (const [name, value] of Object.entries(settings.env)) {
    if (defaults.env[name]?.settable !== true) continue;
    const secret = Object.hasOwn(secrets, name) ? secrets[name] : undefined;
    out.push(
      secret instanceof SecretValue
        ? secret.derive(() => `${name}=${value}`, `${name}=${SECRET_MASK}`)
        : `${name}=${value}`,
    );
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
