/**
 * The on-disk layout of the embedded store, which is moby's plugins directory (plugin/manager.go,
 * plugin/manager_linux.go, plugin/backend_linux.go of dockerd 20.10; containerd's content/local
 * store for blobs), so that a directory written by dockerd can be read by plugctl and back:
 *
 *   <root>/<64-hex id>/config.json   moby's v2.Plugin as JSON, mode 0600, written atomically
 *   <root>/<64-hex id>/rootfs/       the unpacked root file system
 *   <root>/<id>-removing/            a plugin being removed (renamed first, then deleted)
 *   <root>/storage/blobs/sha256/<hex> content-addressed blobs (configs, manifests, layers), 0444
 *   <root>/tmp/                      staging: pulls, upgrades and blob ingests; emptied at start
 *   <root>/plugctl.lock              one store process per root (not moby's; dockerd ignores it)
 *
 * plugctl also uses, only transiently inside a plugin directory during an upgrade,
 * `config.json.upgrade` (the next config) and `rootfs-old` (the rootfs being replaced; moby uses
 * the same name); reload finishes or rolls back an upgrade from them (see store.ts).
 *
 * config.json is moby's v2.Plugin struct marshalled by Go:
 *   { "plugin": <types.Plugin: Config, Enabled, Id, Name, PluginReference, Settings>,
 *     "Rootfs": "<root>/<id>/rootfs" (set at enable; "" before), "Config": "<config digest>",
 *     "Blobsums": [<layer digests>], "Manifest": "<manifest digest>", "SwarmServiceID": "" }
 * The record is kept as the JSON object it was read as, so fields another writer (a newer
 * dockerd) added survive plugctl's rewrites.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { PluginConfig } from '../../plugin/config.ts';

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/** moby's full plugin ID: 64 lowercase hex digits. */
export const PLUGIN_ID_RE = /^[a-f0-9]{64}$/;

/** The paths of one store root. Pure: computing a path does no I/O. */
export class StoreLayout {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  pluginDir(id: string): string {
    return join(this.root, id);
  }
  configFile(id: string): string {
    return join(this.root, id, 'config.json');
  }
  rootfs(id: string): string {
    return join(this.root, id, 'rootfs');
  }
  /** the next config.json of an upgrade in progress */
  upgradeFile(id: string): string {
    return join(this.root, id, 'config.json.upgrade');
  }
  /** the replaced rootfs of an upgrade in progress (moby's name for it) */
  oldRootfs(id: string): string {
    return join(this.root, id, 'rootfs-old');
  }
  removing(id: string): string {
    return join(this.root, `${id}-removing`);
  }
  get tmp(): string {
    return join(this.root, 'tmp');
  }
  get storage(): string {
    return join(this.root, 'storage');
  }
  get blobs(): string {
    return join(this.root, 'storage', 'blobs');
  }
  /** `<root>/storage/blobs/<algorithm>/<hex>` of a well-formed digest */
  blobPath(digest: string): string {
    const colon = digest.indexOf(':');
    return join(this.root, 'storage', 'blobs', digest.slice(0, colon), digest.slice(colon + 1));
  }
  get lockFile(): string {
    return join(this.root, 'plugctl.lock');
  }
}

/**
 * A new plugin ID as moby's stringid.GenerateRandomID makes it: 32 random bytes in hex, drawn
 * again while the 12-character short form is all digits (it would read as a number).
 */
export function generatePluginId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    if (!/^[0-9]{12}/.test(id)) return id;
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * One plugin's config.json, immutable: changes go through `with`, which returns a changed copy,
 * so a change is visible only once it has been persisted and swapped in.
 */
export class StoredPlugin {
  readonly #json: JsonObject;

  /** `json` must have passed parseStoredPlugin's checks (or come from newStoredPlugin). */
  constructor(json: JsonObject) {
    this.#json = json;
  }

  /** types.Plugin (`plugin`): what the Engine API would return for this plugin. */
  get pluginObject(): JsonObject {
    return this.#json['plugin'] as JsonObject;
  }
  get id(): string {
    return this.pluginObject['Id'] as string;
  }
  get name(): string {
    return this.pluginObject['Name'] as string;
  }
  get enabled(): boolean {
    return this.pluginObject['Enabled'] === true;
  }
  /** The normalised remote it came from; the name for a created plugin (as moby does). */
  get reference(): string {
    const ref = this.pluginObject['PluginReference'];
    return typeof ref === 'string' && ref !== '' ? ref : this.name;
  }
  /** types.PluginConfig (`plugin.Config`) */
  get config(): JsonObject {
    const config = this.pluginObject['Config'];
    return isObject(config) ? config : {};
  }
  /** digest of the config blob (`Config`) */
  get configDigest(): string | undefined {
    const digest = this.#json['Config'];
    return typeof digest === 'string' && digest !== '' ? digest : undefined;
  }
  /** digests of the layer blobs (`Blobsums`); empty for plugins dockerd pulled (see gc.ts) */
  get blobsums(): string[] {
    return stringsOf(this.#json['Blobsums']);
  }
  /** digest of the manifest blob (`Manifest`) */
  get manifestDigest(): string | undefined {
    const digest = this.#json['Manifest'];
    return typeof digest === 'string' && digest !== '' ? digest : undefined;
  }

  /** The bytes of config.json: Go's json.Marshal output shape (compact, struct field order). */
  serialize(): string {
    return JSON.stringify(this.#json);
  }

  /** A deep copy changed by `mutate` (which receives the copy's JSON). */
  with(mutate: (json: JsonObject) => void): StoredPlugin {
    const copy = structuredClone(this.#json);
    mutate(copy);
    return new StoredPlugin(copy);
  }
}

/**
 * Checks a parsed config.json: an object whose `plugin` has the directory's ID, a name and a
 * Config object. Returns the reason it is unusable, or the plugin.
 */
export function parseStoredPlugin(json: unknown, id: string): StoredPlugin | string {
  if (!isObject(json)) return 'config.json is not a JSON object';
  const plugin = json['plugin'];
  if (!isObject(plugin)) return 'config.json has no "plugin" object';
  if (plugin['Id'] !== id) return `config.json names plugin ID ${JSON.stringify(plugin['Id'])}, not ${id}`;
  const name = plugin['Name'];
  if (typeof name !== 'string' || name === '') return 'config.json has no plugin Name';
  if (!isObject(plugin['Config'])) return 'config.json has no plugin Config object';
  return new StoredPlugin(json);
}

/**
 * Go's round trip of a types.PluginInterfaceType string (UnmarshalJSON then MarshalJSON): the
 * prefix ends at the last '.' before the first '/', and — a moby quirk kept on purpose — a type
 * without a '.' loses its first character (`volumedriver` becomes `.olumedriver/`).
 */
export function goInterfaceType(type: string): string {
  let versionIndex = type.length;
  let prefixIndex = 0;
  for (let i = 0; i < type.length; i++) {
    const c = type[i];
    if (c === '.') prefixIndex = i;
    else if (c === '/') {
      versionIndex = i;
      break;
    }
  }
  const prefix = type.slice(0, prefixIndex);
  const capability = type.slice(prefixIndex + 1, versionIndex);
  const version = versionIndex < type.length ? type.slice(versionIndex + 1) : '';
  return `${prefix}.${capability}/${version}`;
}

function mountJson(mount: PluginConfig['Mounts'][number]): JsonObject {
  return {
    Description: mount.Description,
    Destination: mount.Destination,
    Name: mount.Name,
    Options: [...mount.Options],
    Settable: [...mount.Settable],
    Source: mount.Source,
    Type: mount.Type,
  };
}

function deviceJson(device: PluginConfig['Linux']['Devices'][number]): JsonObject {
  return {
    Description: device.Description,
    Name: device.Name,
    Path: device.Path,
    Settable: [...device.Settable],
  };
}

/**
 * types.PluginConfig as dockerd stores it (json.Unmarshal of the config blob, then Marshal): every
 * field, in Go's field order, interface types normalised as Go does. `dockerVersion` is kept when
 * the blob had one (`docker plugin create` writes it).
 */
export function mobyConfigJson(config: PluginConfig, dockerVersion?: string): JsonObject {
  const user: JsonObject = {};
  if (config.User.GID !== 0) user['GID'] = config.User.GID;
  if (config.User.UID !== 0) user['UID'] = config.User.UID;
  const iface: JsonObject = {};
  if (config.Interface.ProtocolScheme !== '') iface['ProtocolScheme'] = config.Interface.ProtocolScheme;
  iface['Socket'] = config.Interface.Socket;
  iface['Types'] = config.Interface.Types.map(goInterfaceType);
  const out: JsonObject = {
    Args: {
      Description: config.Args.Description,
      Name: config.Args.Name,
      Settable: [...config.Args.Settable],
      Value: [...config.Args.Value],
    },
    Description: config.Description,
  };
  if (dockerVersion !== undefined && dockerVersion !== '') out['DockerVersion'] = dockerVersion;
  Object.assign(out, {
    Documentation: config.Documentation,
    Entrypoint: [...config.Entrypoint],
    Env: config.Env.map((env) => ({
      Description: env.Description,
      Name: env.Name,
      Settable: [...env.Settable],
      Value: env.Value,
    })),
    Interface: iface,
    IpcHost: config.IpcHost,
    Linux: {
      AllowAllDevices: config.Linux.AllowAllDevices,
      Capabilities: [...config.Linux.Capabilities],
      Devices: config.Linux.Devices.map(deviceJson),
    },
    Mounts: config.Mounts.map(mountJson),
    Network: { Type: config.Network.Type },
    PidHost: config.PidHost,
    PropagatedMount: config.PropagatedMount,
    User: user,
    WorkDir: config.WorkDir,
  });
  if (config.rootfs.type !== '' || config.rootfs.diff_ids.length > 0) {
    const rootfs: JsonObject = { diff_ids: [...config.rootfs.diff_ids] };
    if (config.rootfs.type !== '') rootfs['type'] = config.rootfs.type;
    out['rootfs'] = rootfs;
  }
  return out;
}

/**
 * moby's InitEmptySettings: mounts and devices copied from the config, env `NAME=value` for every
 * env entry that has a value, args the config's default args.
 */
export function initialSettings(config: PluginConfig): JsonObject {
  return {
    Args: [...config.Args.Value],
    Devices: config.Linux.Devices.map(deviceJson),
    Env: config.Env.filter((env) => env.Value !== null).map((env) => `${env.Name}=${env.Value ?? ''}`),
    Mounts: config.Mounts.map(mountJson),
  };
}

/** What a new plugin record is made of. */
export interface NewPluginFields {
  id: string;
  name: string;
  /** PluginReference: the normalised remote, or the name for a created plugin */
  reference: string;
  config: PluginConfig;
  dockerVersion?: string;
  configDigest: string;
  manifestDigest: string;
  blobsums: string[];
}

/** The record moby's createPlugin writes for a freshly pulled or created plugin: disabled. */
export function newStoredPlugin(fields: NewPluginFields): StoredPlugin {
  return new StoredPlugin({
    plugin: {
      Config: mobyConfigJson(fields.config, fields.dockerVersion),
      Enabled: false,
      Id: fields.id,
      Name: fields.name,
      PluginReference: fields.reference,
      Settings: initialSettings(fields.config),
    },
    Rootfs: '',
    Config: fields.configDigest,
    Blobsums: [...fields.blobsums],
    Manifest: fields.manifestDigest,
    SwarmServiceID: '',
  });
}
