/**
 * Maps moby's types.Plugin JSON (the `plugin` object of config.json, which is also what the Engine
 * API returns) to an InstalledPlugin, with exactly the semantics of the docker store's
 * toInstalledPlugin (controller/store/docker/store.ts); a unit test holds the two equal on the
 * same inputs. It is a separate copy only because importing the docker store loads all of undici
 * through its engine client (+~95 ms and +20 MB at start-up, shared/notes/performance-facts.md),
 * which the embedded store never needs. Once the docker store keeps its mapping in a module
 * without the client, this file should re-export it instead.
 */
import { computePrivileges, parsePluginConfig } from '../../registry/privileges.ts';
import type { PluginPrivilege } from '../../spec/types.ts';
import type { EffectiveSettings, InstalledPlugin, SettableDefaults } from '../store.ts';

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
function record(value: unknown): Json {
  return isRecord(value) ? value : {};
}
function array(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
function strings(value: unknown): string[] {
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

function envMap(entries: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of strings(entries)) {
    const eq = entry.indexOf('=');
    if (eq === -1) out[entry] = '';
    else out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

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

function installedPrivileges(config: Json, name: string): PluginPrivilege[] {
  try {
    return computePrivileges(parsePluginConfig(config, { registry: 'engine', repository: name }));
  } catch {
    return [];
  }
}

/**
 * The InstalledPlugin of a types.Plugin object that has passed parseStoredPlugin (so it has an Id
 * and a Name); `inUse` is left unknown, the embedded store does not track users of plugins.
 */
export function installedPlugin(plugin: Json): InstalledPlugin {
  const id = str(plugin['Id']) ?? '';
  const name = str(plugin['Name']) ?? '';
  const config = record(plugin['Config']);
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
  return {
    id,
    name,
    reference: str(plugin['PluginReference']) ?? name,
    enabled: plugin['Enabled'] === true,
    settings,
    defaults,
    capabilities,
    diffIds: strings(record(config['rootfs'])['diff_ids']),
    privileges: installedPrivileges(config, name),
  };
}
