/**
 * The Store is the only code that touches the host's plugins. Two implementations share this
 * contract: `docker` (the Engine API) and `embedded` (plugctl's own plugin manager). It is made of
 * small interfaces by use, after containerd's content store: reading (PluginReader), changing
 * (PluginWriter) and watching (PluginEventSource); code asks only for the part it uses. Names are
 * local plugin names as Docker shows them (`vieux/sshfs:latest`); references are normalised remotes.
 */
import type { PluginPrivilege } from '../plugin/privileges.ts';

/** Effective settings of an installed plugin, in the same shape as the document's settings. */
export interface EffectiveSettings {
  env: Record<string, string>;
  args: string[];
  mounts: Record<string, string>;
  devices: Record<string, string>;
}

/** What the plugin's config allows to be set, and its defaults (from the plugin's config.json). */
export interface SettableDefaults {
  /** env name -> default value, for env entries declared in the config */
  env: Record<string, { value: string; settable: boolean }>;
  /** `name` is how `set` addresses the args (`<name>=a b c`), from the config's Args.Name */
  args: { name: string; value: string[]; settable: boolean };
  /** mount name -> default source */
  mounts: Record<string, { source: string; settable: boolean }>;
  /** device name -> default path */
  devices: Record<string, { path: string; settable: boolean }>;
}

/** One installed plugin as the store reports it. */
export interface InstalledPlugin {
  id: string;
  /** local name, e.g. `127.0.0.1:5000/test/vol:1.0` */
  name: string;
  /** the remote it was pulled from, normalised (PluginReference in Docker) */
  reference: string;
  enabled: boolean;
  settings: EffectiveSettings;
  defaults: SettableDefaults;
  /** true/false when the store knows whether something uses the plugin; undefined when unknown */
  inUse?: boolean;
  /** capabilities (interface types) such as `volumedriver` */
  capabilities: string[];
  /** rootfs layer diff IDs of the installed config, used to tell content apart */
  diffIds: string[];
  /** the privileges its installed config requires (moby's rules), needed to roll back to it */
  privileges: PluginPrivilege[];
  /** the socket file name of its config's Interface.Socket (`plugind.sock`); absent when it has none */
  socket?: string;
  /** what uses it, when a usage lookup filled it in (see PluginUsageReader); absent when not looked up */
  usage?: PluginUsage;
}

/**
 * What uses a plugin, as the store can tell. The docker store asks the engine: volumes and networks
 * whose driver is the plugin, containers (running or not) whose log driver it is. The embedded store
 * runs no volumes, networks or containers, so for what it knows nothing uses a plugin.
 * `complete: false` means some users could not be checked yet (too many containers for one
 * lookup): callers must not take the lists as the whole truth.
 */
export interface PluginUsage {
  volumes: string[];
  networks: string[];
  /** names of containers whose log driver is the plugin */
  logContainers: string[];
  complete: boolean;
}

/** Looks up what uses plugins. */
export interface PluginUsageReader {
  /**
   * The usage of each of `plugins`, keyed by plugin name. Answers from a short-lived cache unless
   * `fresh` (asked right before forcing a disable, so nothing started using the plugin meanwhile).
   */
  usage(
    plugins: readonly InstalledPlugin[],
    options?: { fresh?: boolean },
  ): Promise<Map<string, PluginUsage>>;
  /** Forgets cached answers (something changed on the host). */
  invalidateUsage(): void;
}

/** Checks that an enabled plugin answers on its socket. */
export interface PluginProber {
  /**
   * Calls Plugin.Activate on the plugin's socket, allowing `timeoutMs`; rejects with
   * PLUGIN_UNRESPONSIVE when it does not answer (or has no socket the store can find).
   */
  activate(plugin: InstalledPlugin, timeoutMs: number): Promise<void>;
}

/**
 * Filters of a store's list, as `docker plugin ls --filter` has them. Both stores give them the same
 * meaning: `enabled` the plugin's state, `capability` one of its interface types exactly
 * (`volumedriver`, case-insensitive).
 */
export interface ListFilters {
  enabled?: boolean;
  capability?: string;
}

/**
 * One step of a pull or upgrade, for progress displays. `layer` names a layer (its digest, or the
 * engine's short ID); without it the event is about the whole pull. `current`/`total` are bytes of
 * the layer's download when known.
 */
export interface PullProgress {
  layer?: string;
  /** what happens, e.g. `Downloading`, `Download complete`, `Extracting`, `Verified`, or the engine's words */
  status: string;
  current?: number;
  total?: number;
}

/** Options of a pull or upgrade. */
export interface PullOptions {
  /** normalised remote reference to fetch */
  remote: string;
  /** exact grants to send; the caller has already checked them */
  privileges: PluginPrivilege[];
  /**
   * a registry mirror's reference to fetch the same content from (the caller has checked it is the
   * content `remote` stands for). A store that can keep `remote` as the plugin's reference does (the
   * embedded store); the docker store records what it pulled, and the caller maps it back.
   */
  from?: string;
  /** told each step of the download as it happens (both stores); must not throw */
  onProgress?: (event: PullProgress) => void;
}

/** Something happened to a plugin on the host (from the engine's event stream). */
export interface PluginEvent {
  /** enable, disable, install, remove, create, pull, ... as the engine names it */
  action: string;
  /** the plugin's full ID: the only reliable identity (the name is whatever the user typed) */
  id: string;
  /** the name as given to the command that caused the event (`w`, `w:latest`, an ID prefix, ...) */
  name?: string;
}

/** Reads the host's plugins. */
export interface PluginReader {
  /** Short label for logs and `get` output, e.g. `docker 20.10.24 (API 1.41)`. */
  describe(): string;
  /**
   * False when a reference with a digest must never be sent (dockerd before 25.0.4 crashes on one,
   * moby#47299); pins and multi-platform indexes are then handled by tag or refused.
   */
  acceptsDigestReferences(): boolean;
  /**
   * Every installed plugin, or those matching `filters` (`docker plugin ls --filter` semantics).
   * One request to the engine.
   */
  list(filters?: ListFilters): Promise<InstalledPlugin[]>;
  /** One plugin by local name, full ID or unique ID prefix; undefined when absent. */
  inspect(nameOrId: string): Promise<InstalledPlugin | undefined>;
  /**
   * The host's own labels as the store knows them: the Docker engine's (`dockerd --label`,
   * daemon.json `labels`); none for the embedded store. Matched against spec.nodeSelector.
   */
  engineLabels(): Promise<Record<string, string>>;
}

/**
 * Changes the host's plugins. Every method either completes or throws a PlugctlError; none leaves a
 * plugin half-changed when it throws before the engine acted.
 */
export interface PluginWriter {
  /** Installs `remote` as `name`, disabled. */
  pull(name: string, options: PullOptions): Promise<void>;
  /**
   * `docker plugin create`: installs a plugin named `name`, disabled, built from `context` (the
   * absolute path of a directory holding config.json and rootfs/, or of a tar of one). The caller
   * has already checked the context's privileges: creating grants whatever its config asks for.
   */
  create(name: string, context: string): Promise<void>;
  /** Replaces a disabled plugin's content with `remote`, keeping its ID and name. */
  upgrade(name: string, options: PullOptions): Promise<void>;
  /** Applies settings (`KEY=value`, `mount.source=/x`, `args=a b`) to a disabled plugin. */
  set(name: string, settings: string[]): Promise<void>;
  /** Starts a disabled plugin; fails when it does not come up within `timeoutSeconds`. */
  enable(name: string, timeoutSeconds: number): Promise<void>;
  /** Stops an enabled plugin; without `force` a plugin in use is refused with code PLUGIN_IN_USE. */
  disable(name: string, force: boolean): Promise<void>;
  /** Deletes a disabled plugin (force removes an enabled one). */
  remove(name: string, force: boolean): Promise<void>;
}

/** Reports what happens to the host's plugins, whoever does it. */
export interface PluginEventSource {
  /**
   * Follows plugin events until `signal` aborts (then resolves) or the connection is lost (then
   * rejects, and the caller reconnects with backoff). `onReady` is called once the stream is open,
   * so a caller can re-list to cover what happened while it was disconnected.
   */
  watch(listener: (event: PluginEvent) => void, signal: AbortSignal, onReady?: () => void): Promise<void>;
}

/** Where a plugin's output goes: a file plugctl can read, or where to look instead. */
export type PluginLogSource = { file: string } | { elsewhere: string };

/** What a store tells a person about one plugin beyond PluginReader (`inspect`, `logs`). */
export interface PluginDetails {
  /**
   * The store's own record of a plugin (name, full ID or unique prefix), in the shape
   * `docker plugin inspect` prints: the engine's answer, or the embedded store's config.json.
   * Undefined when absent.
   */
  inspectRaw(nameOrId: string): Promise<Record<string, unknown> | undefined>;
  /** Where the plugin's stdout and stderr go; undefined when the plugin is absent. */
  logSource(nameOrId: string): Promise<PluginLogSource | undefined>;
}

/** A whole plugin store, as a command opens it. */
export interface Store
  extends PluginReader, PluginWriter, PluginEventSource, PluginDetails, PluginProber, PluginUsageReader {
  /** Releases connections (and, for the embedded store, its lock on the root). */
  close(): Promise<void>;
}
