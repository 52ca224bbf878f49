/**
 * A managed plugin's config.json (docker's types.PluginConfig, the part plugctl reads), decoded the
 * way moby decodes it. The same model serves every place a config comes from: a registry, a build
 * context, the embedded store's records and the engine's plugin JSON.
 */
import { PlugctlError } from '../errors.ts';

/** A config.json that does not have docker's shape. Stalled: the config must be fixed. */
export class PluginConfigError extends PlugctlError {
  /** what the config belongs to, as given to parsePluginConfig */
  readonly source: string;
  /** what is wrong, without the source (e.g. `Env[0].Name must be a string`) */
  readonly detail: string;

  constructor(source: string, detail: string, options: { cause?: unknown } = {}) {
    super(
      'PLUGIN_CONFIG_INVALID',
      `${source}: the plugin config is not valid: ${detail}; docker would refuse it too: fix the plugin's config.json`,
      { ...options, kind: 'stalled' },
    );
    this.source = source;
    this.detail = detail;
  }
}

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
 * refused. Throws PluginConfigError naming the field; `source` names the plugin for the message
 * (e.g. `127.0.0.1:5000/test/vol:1.0`, or a build context's path).
 */
export function parsePluginConfig(json: unknown, source: string): PluginConfig {
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
    throw new PluginConfigError(source, error.message, { cause: error });
  }
}
