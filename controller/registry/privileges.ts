/**
 * A managed plugin's config.json (docker's types.PluginConfig, the part plugctl reads) and the
 * privileges it requires, computed exactly as moby's plugin manager does (plugin/backend_linux.go,
 * computePrivileges) so that plugctl can check declared grants itself instead of trusting the
 * engine's answer, which is `[]` whenever the engine could not read the registry.
 */
import type { PluginPrivilege } from '../spec/types.ts';
import { RegistryError } from './errors.ts';

/** One settable environment variable. `Value` is null when config.json has none (a Go *string). */
export interface PluginEnv {
  Name: string;
  Description: string;
  Settable: string[];
  Value: string | null;
}

/** One mount. `Source` null (absent) means "no host path": only then is no privilege required. */
export interface PluginMount {
  Name: string;
  Description: string;
  Settable: string[];
  Source: string | null;
  Destination: string;
  Type: string;
  Options: string[];
}

/** One device. `Path` null (absent) means "no host device": only then is no privilege required. */
export interface PluginDevice {
  Name: string;
  Description: string;
  Settable: string[];
  Path: string | null;
}

/**
 * The plugin config as moby decodes it: every field present (Go zero values for absent ones:
 * '' / false / []), pointer fields (`Source`, `Path`, `Value`) null when absent or null.
 */
export interface PluginConfig {
  Description: string;
  Documentation: string;
  Entrypoint: string[];
  WorkDir: string;
  User: { UID: number; GID: number };
  Env: PluginEnv[];
  Args: { Name: string; Description: string; Settable: string[]; Value: string[] };
  Mounts: PluginMount[];
  Interface: { Socket: string; Types: string[]; ProtocolScheme: string };
  Network: { Type: string };
  Linux: { Capabilities: string[]; AllowAllDevices: boolean; Devices: PluginDevice[] };
  IpcHost: boolean;
  PidHost: boolean;
  PropagatedMount: string;
  /** layer diff IDs; empty when the config has no rootfs section */
  rootfs: { type: string; diff_ids: string[] };
}

/**
 * The privileges moby requires for `config`, in moby's order: network (unless Network.Type is
 * "", "null" or "bridge"), host ipc namespace, host pid namespace, one mount per mount whose
 * Source is set (even to ""), one device per device whose Path is set, allow-all-devices, and
 * capabilities (the list as written, when non-empty). Names, descriptions and values are moby's.
 */
export function computePrivileges(config: PluginConfig): PluginPrivilege[] {
  const privileges: PluginPrivilege[] = [];
  const type = config.Network.Type;
  if (type !== 'null' && type !== 'bridge' && type !== '') {
    privileges.push({ name: 'network', description: 'permissions to access a network', value: [type] });
  }
  if (config.IpcHost) {
    privileges.push({
      name: 'host ipc namespace',
      description: 'allow access to host ipc namespace',
      value: ['true'],
    });
  }
  if (config.PidHost) {
    privileges.push({
      name: 'host pid namespace',
      description: 'allow access to host pid namespace',
      value: ['true'],
    });
  }
  for (const mount of config.Mounts) {
    if (mount.Source !== null) {
      privileges.push({ name: 'mount', description: 'host path to mount', value: [mount.Source] });
    }
  }
  for (const device of config.Linux.Devices) {
    if (device.Path !== null) {
      privileges.push({ name: 'device', description: 'host device to access', value: [device.Path] });
    }
  }
  if (config.Linux.AllowAllDevices) {
    privileges.push({
      name: 'allow-all-devices',
      description: "allow 'rwm' access to all devices",
      value: ['true'],
    });
  }
  if (config.Linux.Capabilities.length > 0) {
    privileges.push({
      name: 'capabilities',
      description: 'list of additional capabilities required',
      value: [...config.Linux.Capabilities],
    });
  }
  return privileges;
}

class Shape extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Go's encoding/json field lookup: keys match field names case-insensitively, and when several
 * keys map to one field the last one wins (Go assigns in document order). Go would merge two
 * objects given for one struct field; here the last replaces the first, a difference only a
 * hand-crafted config with duplicate keys could show.
 */
function field(record: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  let found: unknown = undefined;
  for (const [key, value] of Object.entries(record)) {
    if (key.toLowerCase() === lower) found = value;
  }
  return found;
}

function str(value: unknown, path: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new Shape(`${path} must be a string`);
  return value;
}

function ptr(value: unknown, path: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new Shape(`${path} must be a string`);
  return value;
}

function bool(value: unknown, path: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw new Shape(`${path} must be true or false`);
  return value;
}

function uint(value: unknown, path: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new Shape(`${path} must be an unsigned 32-bit integer`);
  return value;
}

function strings(value: unknown, path: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Shape(`${path} must be an array of strings`);
  return value.map((item, i) => str(item, `${path}[${i}]`));
}

function obj(value: unknown, path: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw new Shape(`${path} must be an object`);
  return value;
}

function list<T>(
  value: unknown,
  path: string,
  item: (record: Record<string, unknown>, path: string) => T,
): T[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Shape(`${path} must be an array`);
  return value.map((entry, i) => item(obj(entry, `${path}[${i}]`), `${path}[${i}]`));
}

/**
 * Decodes a plugin config.json (already JSON-parsed) the way moby's json.Unmarshal into
 * types.PluginConfig does: case-insensitive keys, null and absent as zero values, wrong types
 * refused. Throws RegistryError PLUGIN_CONFIG_INVALID naming the field; `source` names the plugin
 * for the message (e.g. `127.0.0.1:5000/test/vol:1.0`).
 */
export function parsePluginConfig(
  json: unknown,
  source: { registry: string; repository: string; what?: string },
): PluginConfig {
  try {
    // Go would decode `null` into an all-zero config; a config that is not an object is refused
    // instead, since it is never what `docker plugin create` writes.
    if (!isRecord(json)) throw new Shape('the config is not a JSON object');
    const root = json;
    const args = obj(field(root, 'Args'), 'Args');
    const iface = obj(field(root, 'Interface'), 'Interface');
    const linux = obj(field(root, 'Linux'), 'Linux');
    const user = obj(field(root, 'User'), 'User');
    const rootfs = obj(field(root, 'rootfs'), 'rootfs');
    return {
      Description: str(field(root, 'Description'), 'Description'),
      Documentation: str(field(root, 'Documentation'), 'Documentation'),
      Entrypoint: strings(field(root, 'Entrypoint'), 'Entrypoint'),
      WorkDir: str(field(root, 'WorkDir'), 'WorkDir'),
      User: { UID: uint(field(user, 'UID'), 'User.UID'), GID: uint(field(user, 'GID'), 'User.GID') },
      Env: list(field(root, 'Env'), 'Env', (env, path) => ({
        Name: str(field(env, 'Name'), `${path}.Name`),
        Description: str(field(env, 'Description'), `${path}.Description`),
        Settable: strings(field(env, 'Settable'), `${path}.Settable`),
        Value: ptr(field(env, 'Value'), `${path}.Value`),
      })),
      Args: {
        Name: str(field(args, 'Name'), 'Args.Name'),
        Description: str(field(args, 'Description'), 'Args.Description'),
        Settable: strings(field(args, 'Settable'), 'Args.Settable'),
        Value: strings(field(args, 'Value'), 'Args.Value'),
      },
      Mounts: list(field(root, 'Mounts'), 'Mounts', (mount, path) => ({
        Name: str(field(mount, 'Name'), `${path}.Name`),
        Description: str(field(mount, 'Description'), `${path}.Description`),
        Settable: strings(field(mount, 'Settable'), `${path}.Settable`),
        Source: ptr(field(mount, 'Source'), `${path}.Source`),
        Destination: str(field(mount, 'Destination'), `${path}.Destination`),
        Type: str(field(mount, 'Type'), `${path}.Type`),
        Options: strings(field(mount, 'Options'), `${path}.Options`),
      })),
      Interface: {
        Socket: str(field(iface, 'Socket'), 'Interface.Socket'),
        Types: strings(field(iface, 'Types'), 'Interface.Types'),
        ProtocolScheme: str(field(iface, 'ProtocolScheme'), 'Interface.ProtocolScheme'),
      },
      Network: { Type: str(field(obj(field(root, 'Network'), 'Network'), 'Type'), 'Network.Type') },
      Linux: {
        Capabilities: strings(field(linux, 'Capabilities'), 'Linux.Capabilities'),
        AllowAllDevices: bool(field(linux, 'AllowAllDevices'), 'Linux.AllowAllDevices'),
        Devices: list(field(linux, 'Devices'), 'Linux.Devices', (device, path) => ({
          Name: str(field(device, 'Name'), `${path}.Name`),
          Description: str(field(device, 'Description'), `${path}.Description`),
          Settable: strings(field(device, 'Settable'), `${path}.Settable`),
          Path: ptr(field(device, 'Path'), `${path}.Path`),
        })),
      },
      IpcHost: bool(field(root, 'IpcHost'), 'IpcHost'),
      PidHost: bool(field(root, 'PidHost'), 'PidHost'),
      PropagatedMount: str(field(root, 'PropagatedMount'), 'PropagatedMount'),
      rootfs: {
        type: str(field(rootfs, 'type'), 'rootfs.type'),
        diff_ids: strings(field(rootfs, 'diff_ids'), 'rootfs.diff_ids'),
      },
    };
  } catch (error) {
    if (!(error instanceof Shape)) throw error;
    throw new RegistryError(
      'PLUGIN_CONFIG_INVALID',
      `${source.registry}/${source.repository}${source.what !== undefined ? ` ${source.what}` : ''}: the plugin config is not valid: ${error.message}; docker would refuse it too — fix the plugin's config.json and push it again`,
      { registry: source.registry, repository: source.repository, cause: error },
    );
  }
}
