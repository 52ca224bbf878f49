/**
 * Docker's plugin JSON (types.Plugin, as GET /plugins answers and as moby stores it in
 * `<root>/<id>/config.json`) mapped to InstalledPlugin. Shared by both stores: the embedded store
 * keeps moby's on-disk shape, so one mapping serves the engine's answers and the files alike.
 * The input is untrusted JSON, so every field is narrowed; a field of the wrong type counts as absent.
 */
import { EngineError } from '../errors.ts';
import { parsePluginConfig } from '../plugin/config.ts';
import { computePrivileges } from '../plugin/privileges.ts';
import type { PluginPrivilege } from '../plugin/privileges.ts';
import type { EffectiveSettings, InstalledPlugin, SettableDefaults } from './store.ts';

/** A JSON object. */
export type Json = Record<string, unknown>;

/** Narrowing helper for untrusted JSON. */
export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Narrowing helper for untrusted JSON. */
export function record(value: unknown): Json {
  return isRecord(value) ? value : {};
}

/** Narrowing helper for untrusted JSON. */
export function array(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Narrowing helper for untrusted JSON. */
export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Narrowing helper for untrusted JSON. */
export function strings(value: unknown): string[] {
  return array(value).filter((item): item is string => typeof item === 'string');
}

function settable(value: unknown, field: string): boolean {
  return strings(value).includes(field);
}

/** `docker.volumedriver/1.0` -> `volumedriver`; also accepts the {Prefix, Capability, Version} form. */
export function capabilityOf(type: unknown): string | undefined {
  if (typeof type === 'string') {
    const withoutVersion = type.split('/')[0] ?? '';
    const dot = withoutVersion.indexOf('.');
    return dot === -1 ? withoutVersion : withoutVersion.slice(dot + 1);
  }
  if (isRecord(type)) return str(type['Capability']);
  return undefined;
}

/** Splits `K=V` entries into a map; an entry without `=` maps to ''. */
function envMap(entries: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of strings(entries)) {
    const eq = entry.indexOf('=');
    if (eq === -1) out[entry] = '';
    else out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

/** Named mounts or devices -> name -> value of `field`, leaving out unnamed ones and null values. */
function namedValues(entries: unknown, field: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of array(entries)) {
    const item = record(entry);
    const name = str(item['Name']);
    const value = str(item[field]);
    if (name !== undefined && name !== '' && value !== undefined) out[name] = value;
  }
  return out;
}

/**
 * Maps one plugin as the Engine API returns it (GET /plugins, /plugins/{name}/json) to an
 * InstalledPlugin. Throws when the object has no Id or Name, which no engine omits.
 */
export function toInstalledPlugin(raw: unknown): InstalledPlugin {
  const plugin = record(raw);
  const id = str(plugin['Id']);
  const name = str(plugin['Name']);
  if (id === undefined || name === undefined) {
    throw new EngineError('BAD_RESPONSE', 'the engine returned a plugin without Id or Name');
  }
  const config = record(plugin['Config']);
  let privileges: PluginPrivilege[] | undefined;
  const settingsRaw = record(plugin['Settings']);
  const linux = record(config['Linux']);
  const configArgs = record(config['Args']);

  const settings: EffectiveSettings = {
    env: envMap(settingsRaw['Env']),
    args: strings(settingsRaw['Args']),
    mounts: namedValues(settingsRaw['Mounts'], 'Source'),
    devices: namedValues(settingsRaw['Devices'], 'Path'),
  };

  const defaults: SettableDefaults = {
    env: {},
    args: {
      name: str(configArgs['Name']) ?? '',
      value: strings(configArgs['Value']),
      settable: settable(configArgs['Settable'], 'value'),
    },
    mounts: {},
    devices: {},
  };
  for (const entry of array(config['Env'])) {
    const env = record(entry);
    const envName = str(env['Name']);
    if (envName === undefined || envName === '') continue;
    defaults.env[envName] = { value: str(env['Value']) ?? '', settable: settable(env['Settable'], 'value') };
  }
  for (const entry of array(config['Mounts'])) {
    const mount = record(entry);
    const mountName = str(mount['Name']);
    if (mountName === undefined || mountName === '') continue;
    defaults.mounts[mountName] = {
      source: str(mount['Source']) ?? '',
      settable: settable(mount['Settable'], 'source'),
    };
  }
  for (const entry of array(linux['Devices'])) {
    const device = record(entry);
    const deviceName = str(device['Name']);
    if (deviceName === undefined || deviceName === '') continue;
    defaults.devices[deviceName] = {
      path: str(device['Path']) ?? '',
      settable: settable(device['Settable'], 'path'),
    };
  }

  const capabilities = array(record(config['Interface'])['Types'])
    .map(capabilityOf)
    .filter((capability): capability is string => capability !== undefined && capability !== '');

  const socket = str(record(config['Interface'])['Socket']);
  return {
    id,
    name,
    ...(socket !== undefined && socket !== '' ? { socket } : {}),
    reference: str(plugin['PluginReference']) ?? name,
    enabled: plugin['Enabled'] === true,
    settings,
    defaults,
    capabilities,
    diffIds: strings(record(config['rootfs'])['diff_ids']),
    // Computed on first use only: a listing of many plugins should not pay for rules few callers read.
    get privileges(): PluginPrivilege[] {
      return (privileges ??= installedPrivileges(config, name));
    },
  };
}

/** The privileges an installed config requires; a config the rules cannot read requires none known. */
function installedPrivileges(config: Json, name: string): PluginPrivilege[] {
  try {
    return computePrivileges(parsePluginConfig(config, name));
  } catch {
    return [];
  }
}
