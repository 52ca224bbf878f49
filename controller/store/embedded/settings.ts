/**
 * `set` with moby's settable rules (plugin/v2/settable.go and Plugin.Set in plugin/v2/plugin.go of
 * dockerd 20.10), applied to the stored types.Plugin JSON:
 *
 * - Syntax `<name>[.<field>][=<value>]`: a leading `=` is invalid; no `=` sets the empty value; the
 *   field is what follows the last `.` when that `.` is not the first character.
 * - The name is looked up in this order: env, mounts, devices, then the args' Name.
 * - The field defaults to the only settable field when exactly one is declared; with several
 *   declared it must be given. It must be both allowed for the kind (env: value, args: value,
 *   mounts: source, devices: path) and declared Settable.
 * - env `NAME=v` replaces or appends `NAME=v` in Settings.Env; args `ARGS=a b` sets Settings.Args
 *   to the value split on single spaces; a mount source or device path is written to the config's
 *   entry and to the matching Settings entry: in dockerd both are one Go pointer (InitEmptySettings
 *   copies the structs, not the strings), so a set rewrites the reported config default too. A
 *   mount without a Source or a device without a Path cannot be set.
 *
 * One deliberate difference: dockerd applies the settings one by one and keeps (in memory) those
 * before a rejected one; here a rejected setting rejects the whole call and nothing changes.
 */
import { EmbeddedStoreError } from './errors.ts';
import type { JsonObject, StoredPlugin } from './layout.ts';

/** One parsed `set` argument (moby's settable struct): `field` is '' when none was given. */
export interface Settable {
  name: string;
  field: string;
  value: string;
}

const ALLOWED = {
  env: ['value'],
  args: ['value'],
  devices: ['path'],
  mounts: ['source'],
} as const;

class SetRejected extends Error {}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objects(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Parses `<name>[.<field>][=<value>]` exactly as moby's newSettable does. */
export function parseSettable(arg: string): Settable {
  const eq = arg.indexOf('=');
  if (eq === 0) throw new SetRejected('invalid format, must be <name>[.<field>][=<value>]');
  let name = eq < 0 ? arg : arg.slice(0, eq);
  const value = eq < 0 ? '' : arg.slice(eq + 1);
  let field = '';
  const dot = name.lastIndexOf('.');
  if (dot > 0) {
    field = name.slice(dot + 1);
    name = name.slice(0, dot);
  }
  return { name, field, value };
}

function prettyName(set: Settable): string {
  return set.field !== '' ? `${set.name}.${set.field}` : set.name;
}

/** moby's isSettable; fills in the default field. */
function isSettable(set: Settable, allowed: readonly string[], declared: string[]): boolean {
  if (set.field === '') {
    if (declared.length === 1) set.field = declared[0] as string;
    else if (declared.length > 1)
      throw new SetRejected('multiple fields are settable, one must be specified');
  }
  return allowed.includes(set.field) && declared.includes(set.field);
}

function notSettable(set: Settable): SetRejected {
  return new SetRejected(`"${prettyName(set)}" is not settable`);
}

/** Writes `value` into the named entry of a Settings list, adding a copy of the config entry if missing. */
function setNamed(
  settingsList: JsonObject[],
  configEntry: JsonObject,
  name: string,
  key: 'Source' | 'Path',
  value: string,
): JsonObject[] {
  let found = false;
  const out = settingsList.map((entry) => {
    if (entry['Name'] !== name) return entry;
    found = true;
    return { ...entry, [key]: value };
  });
  if (!found) out.push({ ...structuredClone(configEntry), [key]: value });
  return out;
}

function applyOne(plugin: JsonObject, set: Settable): void {
  const config = isObject(plugin['Config']) ? plugin['Config'] : {};
  const settings: JsonObject = isObject(plugin['Settings']) ? plugin['Settings'] : {};
  plugin['Settings'] = settings;

  for (const env of objects(config['Env'])) {
    if (env['Name'] !== set.name) continue;
    if (!isSettable(set, ALLOWED.env, stringList(env['Settable']))) throw notSettable(set);
    const entries = stringList(settings['Env']);
    const index = entries.findIndex((entry) => entry.split('=')[0] === set.name);
    const rendered = `${set.name}=${set.value}`;
    if (index >= 0) entries[index] = rendered;
    else entries.push(rendered);
    settings['Env'] = entries;
    return;
  }
  for (const mount of objects(config['Mounts'])) {
    if (mount['Name'] !== set.name) continue;
    if (!isSettable(set, ALLOWED.mounts, stringList(mount['Settable']))) throw notSettable(set);
    if (typeof mount['Source'] !== 'string') throw new SetRejected('Plugin config has no mount source');
    settings['Mounts'] = setNamed(objects(settings['Mounts']), mount, set.name, 'Source', set.value);
    mount['Source'] = set.value;
    return;
  }
  const linux = isObject(config['Linux']) ? config['Linux'] : {};
  for (const device of objects(linux['Devices'])) {
    if (device['Name'] !== set.name) continue;
    if (!isSettable(set, ALLOWED.devices, stringList(device['Settable']))) throw notSettable(set);
    if (typeof device['Path'] !== 'string') throw new SetRejected('Plugin config has no device path');
    settings['Devices'] = setNamed(objects(settings['Devices']), device, set.name, 'Path', set.value);
    device['Path'] = set.value;
    return;
  }
  const args = isObject(config['Args']) ? config['Args'] : {};
  if (args['Name'] === set.name) {
    if (!isSettable(set, ALLOWED.args, stringList(args['Settable']))) throw notSettable(set);
    settings['Args'] = set.value.split(' ');
    return;
  }
  throw new SetRejected(`setting "${set.name}" not found in the plugin configuration`);
}

/**
 * Returns `plugin` with `settings` applied by moby's rules, or throws SETTING_REJECTED (stalled)
 * quoting moby's own message and naming the plugin. Does not check whether the plugin is enabled.
 */
export function applySettings(plugin: StoredPlugin, settings: readonly string[]): StoredPlugin {
  try {
    return plugin.with((json) => {
      const object = json['plugin'] as JsonObject;
      for (const arg of settings) applyOne(object, parseSettable(arg));
    });
  } catch (error) {
    if (!(error instanceof SetRejected)) throw error;
    throw new EmbeddedStoreError(
      'SETTING_REJECTED',
      `cannot set ${settings.map((s) => JSON.stringify(s)).join(', ')} on plugin ${plugin.name}: ${error.message}. ` +
        `Declare only what the plugin's config marks settable (docker plugin inspect shows its Env, Mounts, Linux.Devices and Args)`,
      { cause: error },
    );
  }
}
