/**
 * The `embedded` Store: plugctl's own plugin manager, with moby's semantics and on-disk layout
 * (see layout.ts), pulling straight from registries with the registry client and running enabled
 * plugins through a PluginRuntime (runc in production).
 *
 * Crash safety, by operation (every file written atomically; every publishing rename fsynced):
 * - pull / create: the whole plugin directory (rootfs/ and config.json) is built under `tmp/` and
 *   renamed to `<root>/<id>` in one step, after its blobs are committed. A crash leaves either no
 *   plugin or a complete one; `tmp/` is emptied at the next start.
 * - upgrade: the next config is written as `<id>/config.json.upgrade`, the rootfs is renamed to
 *   `rootfs-old`, the new rootfs renamed in, the upgrade file renamed over config.json, and
 *   `rootfs-old` deleted. Reload finishes an upgrade whose new rootfs is in place and rolls back
 *   one whose is not, so config.json always describes the rootfs beside it.
 * - set / enable / disable: one atomic rewrite of config.json. Enable starts the plugin before it
 *   records it: a crash in between leaves a disabled plugin running, which reload stops.
 * - remove: `<id>` is renamed to `<id>-removing` (fsynced), then deleted; reload deletes leftovers
 *   by absolute path (dockerd's reload uses a relative path and never does).
 * Blobs are committed before anything references them and deleted only by gc(), which excludes
 * pulls through a reader-writer lock: no referenced blob is ever missing. The files inside a rootfs
 * are not fsynced one by one (neither does dockerd): a killed process leaves them complete, a power
 * loss right after a pull may not; blobs and config.json are always durable once published.
 */
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { PlugctlError, describeError } from '../../errors.ts';
import { privilegesEqual, formatPrivileges } from '../../plugin/privileges.ts';
import { systemClock } from '../../runtime/clock.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { RegistryClient } from '../../registry/client.ts';
import { withDeadline } from '../../registry/deadline.ts';
import { DEFAULT_PULL_TIMEOUT_MS } from '../../limits.ts';
import { parsePluginConfig } from '../../plugin/config.ts';
import type { PluginConfig } from '../../plugin/config.ts';
import { familiarString, formatReference, parseReference } from '../../api/reference.ts';
import type { PluginPrivilege } from '../../plugin/privileges.ts';
import type {
  InstalledPlugin,
  ListFilters,
  PluginEvent,
  PluginLogSource,
  PluginUsage,
  PullOptions,
  Store,
} from '../store.ts';
import { activate } from '../activate.ts';
// build.ts (tar-stream, gzip) is imported where a plugin is created or pushed: a pull or a
// controller never pays for loading it.
import type { BuiltContext, CreateContext, PushResult } from './build.ts';
import { ContentStore } from './content.ts';
import { EmbeddedStoreError, ioError } from './errors.ts';
import { DEFAULT_EXTRACT_LIMITS, applyLayer } from './extract.ts';
import type { ExtractLimits, LayerReport } from './extract.ts';
import { isNotFound, removeAll } from './fsutil.ts';
import { fsyncDir, writeFileAtomic } from '../../runtime/atomic-file.ts';
import { collectGarbage } from './gc.ts';
import type { GcResult } from './gc.ts';
import {
  PLUGIN_ID_RE,
  StoreLayout,
  generatePluginId,
  mobyConfigJson,
  newStoredPlugin,
  parseStoredPlugin,
} from './layout.ts';
import type { JsonObject, StoredPlugin } from './layout.ts';
import { installedPlugin } from './installed.ts';
import { acquireStoreLock } from './lock.ts';
import type { StoreLock } from './lock.ts';
import { applicableLayers, readRemote, unpackLayers } from './pull.ts';
import type { RemotePlugin, StagedBlob } from './pull.ts';
import type { PluginRuntime, RunnablePlugin, RuntimeExit } from './runtime.ts';
import { KeyedMutex, ReadWriteLock } from './rwlock.ts';
import { applySettings } from './settings.ts';
import { DEFAULT_RESTART_POLICY, RestartSupervisor } from './supervise.ts';
import type { RestartPolicy } from './supervise.ts';

/** How to open an embedded store. */
export interface EmbeddedStoreOptions {
  /** the plugins directory, e.g. /var/lib/plugctl/plugins (created 0700 if missing) */
  root: string;
  /** runs enabled plugins; the store never closes it (whoever made it does) */
  runtime: PluginRuntime;
  /** pulls and pushes; the store never closes it (whoever made it does) */
  registry: RegistryClient;
  logger: Logger;
  /** default: the system clock (drives restart backoff) */
  clock?: Clock;
  /** parent of each plugin's runtime state directory (`<runDir>/<id>`); default /run/plugctl/plugins */
  runDir?: string;
  /** decompression limits per layer; default 4 GiB and 100:1 past 16 MiB */
  limits?: Partial<ExtractLimits>;
  /**
   * overall deadline of one pull or upgrade (manifest, config, every layer), ms; past it the pull
   * fails with REGISTRY_TIMEOUT and nothing of it is kept. Default DEFAULT_PULL_TIMEOUT_MS (15 min)
   */
  pullTimeoutMs?: number;
  /** crash restart backoff; default 1 s doubling to 60 s, reset after 60 s up */
  restartPolicy?: Partial<RestartPolicy>;
  /** SIGTERM-to-SIGKILL grace when stopping a plugin, ms; default 10000 (dockerd's) */
  stopGraceMs?: number;
  /** how long a start at open or after a crash may take before it counts as failed, s; default 30 */
  restartTimeoutSeconds?: number;
  /**
   * Called every 2 MiB of layer data a pull reads, to let the process collect garbage early
   * (e.g. `() => gc({ type: 'minor' })` under --expose-gc); keeps a pull's peak RSS near 100 MB
   * instead of ~135 MB at the same speed. Default: none.
   */
  reclaim?: () => void;
  /**
   * Open only to read (`plugctl get`, or a plugins directory another engine such as a stopped
   * dockerd owns): nothing is written, created, cleaned or started, and no lock is taken, so a
   * reader works beside the controller that holds the root. A missing root reads as empty.
   * Interrupted upgrades and `-removing` leftovers are left as they are (config.json is read as
   * it is); enabled plugins are reported enabled without being started. Every change is refused
   * with STORE_READ_ONLY.
   */
  readOnly?: boolean;
}

/** What opening the store found and did. */
export interface ReloadReport {
  /** IDs of the plugins loaded */
  loaded: string[];
  /** plugin directories that could not be loaded: left in place, reported, never fatal */
  skipped: { id: string; path: string; reason: string }[];
  /** `<id>-removing` leftovers deleted (absolute paths) */
  removedLeftovers: string[];
  /** entries deleted from `tmp/` (interrupted pulls, upgrades, ingests), and temp files of interrupted config.json writes */
  cleanedTmp: number;
  /** upgrades interrupted by a crash, finished or undone */
  recoveredUpgrades: { id: string; action: 'completed' | 'rolled back' }[];
  /** enabled plugins found running and adopted */
  adopted: string[];
  /** enabled plugins started */
  started: string[];
  /** enabled plugins that failed to start (retried with backoff) */
  failedToStart: { id: string; error: string }[];
  /**
   * disabled plugins found running and stopped: an enable killed after the runtime started the
   * plugin but before config.json recorded it (config.json is the truth: that enable never happened)
   */
  stopped: string[];
}

export type { ListFilters } from '../store.ts';

/** What a pull, upgrade or create unpacked. */
export interface InstallReport {
  id: string;
  name: string;
  layers: LayerReport[];
}

/**
 * Normalises a local plugin name as moby's Pull and CreateFromContext do:
 * FamiliarString(TagNameOnly(ParseNormalizedNamed(name))). A name with a digest is refused.
 */
export function normalizePluginName(name: string): string {
  let ref;
  try {
    ref = parseReference(name);
  } catch (error) {
    throw new EmbeddedStoreError(
      'INVALID_PLUGIN_NAME',
      `plugin name ${JSON.stringify(name)} is not a valid REPOSITORY[:TAG]: ${describeError(error)}`,
      { cause: error },
    );
  }
  if (ref.digest !== undefined) {
    throw new EmbeddedStoreError(
      'INVALID_PLUGIN_NAME',
      `plugin name ${name} contains a digest; a local plugin name is REPOSITORY[:TAG]`,
    );
  }
  return familiarString(ref);
}

/**
 * The embedded store. Build it with openEmbeddedStore(); the constructor does no I/O. Methods are
 * safe to call concurrently: operations on one plugin are serialised, different plugins proceed
 * in parallel, and gc() waits for pulls in progress (and they for it).
 */
export class EmbeddedStore implements Store {
  readonly layout: StoreLayout;
  readonly #content: ContentStore;
  readonly #runtime: PluginRuntime;
  readonly #registry: RegistryClient;
  readonly #logger: Logger;
  readonly #runDir: string;
  readonly #limits: ExtractLimits;
  readonly #stopGraceMs: number;
  readonly #restartTimeoutMs: number;
  readonly #reclaim: (() => void) | undefined;
  readonly #pullTimeoutMs: number;
  /** undefined when read-only */
  readonly #lock: StoreLock | undefined;
  readonly #plugins = new Map<string, StoredPlugin>();
  readonly #gcLock = new ReadWriteLock();
  readonly #mutex = new KeyedMutex();
  readonly #listeners = new Set<(event: PluginEvent) => void>();
  readonly #closers = new Set<(error: Error) => void>();
  /** plugins being stopped on purpose: their exit is not a crash */
  readonly #stopping = new Set<string>();
  readonly #supervisor: RestartSupervisor;
  #closed = false;
  #report: ReloadReport | undefined;

  /** Use openEmbeddedStore(). */
  constructor(parts: {
    layout: StoreLayout;
    runtime: PluginRuntime;
    registry: RegistryClient;
    logger: Logger;
    clock: Clock;
    runDir: string;
    limits: ExtractLimits;
    restartPolicy: RestartPolicy;
    stopGraceMs: number;
    restartTimeoutMs: number;
    reclaim?: () => void;
    pullTimeoutMs?: number;
    lock: StoreLock | undefined;
  }) {
    this.layout = parts.layout;
    this.#content = new ContentStore(parts.layout);
    this.#runtime = parts.runtime;
    this.#registry = parts.registry;
    this.#logger = parts.logger;
    this.#runDir = parts.runDir;
    this.#limits = parts.limits;
    this.#stopGraceMs = parts.stopGraceMs;
    this.#restartTimeoutMs = parts.restartTimeoutMs;
    this.#reclaim = parts.reclaim;
    this.#pullTimeoutMs = parts.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS;
    this.#lock = parts.lock;
    this.#supervisor = new RestartSupervisor(parts.clock, parts.restartPolicy, (id, attempt) =>
      this.#restartAfterCrash(id, attempt),
    );
  }

  describe(): string {
    return `embedded ${this.layout.root}`;
  }

  /** Always true: the registry client pulls by digest (and resolves indexes) itself. */
  acceptsDigestReferences(): boolean {
    return true;
  }

  /** What opening the store found and did (see openEmbeddedStore). */
  get reloadReport(): ReloadReport | undefined {
    return this.#report;
  }

  /** The content store (blobs); exposed for tests and tools such as `plugctl gc`. */
  get content(): ContentStore {
    return this.#content;
  }

  /**
   * The plugins, with `docker plugin ls --filter` semantics for `enabled` and `capability` (a plugin
   * matches a capability when any of its interface types has it; dockerd 20.10 instead drops a
   * plugin when any of its types differs, which only matters for plugins with several types).
   */
  async list(filters: ListFilters = {}): Promise<InstalledPlugin[]> {
    this.#assertOpen();
    const capability = filters.capability?.toLowerCase();
    const plugins: InstalledPlugin[] = [];
    for (const plugin of this.#plugins.values()) {
      if (filters.enabled !== undefined && plugin.enabled !== filters.enabled) continue;
      const installed = this.#installed(plugin);
      if (capability !== undefined && !installed.capabilities.includes(capability)) continue;
      plugins.push(installed);
    }
    return plugins;
  }

  /**
   * Plugin.Activate on the socket the runtime gave the plugin (`<socketsRoot>/<id>/<socket>`), the
   * same socket the store waited for when it started the plugin.
   */
  async activate(plugin: InstalledPlugin, timeoutMs: number): Promise<void> {
    if (plugin.socket === undefined) {
      throw new PlugctlError('PLUGIN_UNRESPONSIVE', `plugin ${plugin.name} declares no socket to probe`, {
        kind: 'waiting',
      });
    }
    await activate(join(this.#runtime.socketDir(plugin.id), plugin.socket), timeoutMs);
  }

  /**
   * The embedded store runs no volumes, networks or containers, so for everything it knows nothing
   * uses a plugin: each answer is empty and complete. Clients outside plugctl that found a plugin's
   * socket (a dockerd pointed at the discovery links) are not seen; spec.inUse cannot protect them.
   */
  async usage(plugins: readonly InstalledPlugin[]): Promise<Map<string, PluginUsage>> {
    return new Map(
      plugins.map((p) => [p.name, { volumes: [], networks: [], logContainers: [], complete: true }]),
    );
  }

  /** Nothing is cached: see usage(). */
  invalidateUsage(): void {}

  /** The embedded store has no engine: no labels of its own (the labels file and flags still apply). */
  async engineLabels(): Promise<Record<string, string>> {
    return {};
  }

  /** By local name, full ID or unique ID prefix (as docker resolves them); AMBIGUOUS_ID when several match. */
  async inspect(name: string): Promise<InstalledPlugin | undefined> {
    this.#assertOpen();
    const plugin = this.#find(name);
    return plugin === undefined ? undefined : this.#installed(plugin);
  }

  /**
   * The `plugin` object of the plugin's config.json: moby keeps there exactly what `docker plugin
   * inspect` prints (Config, Enabled, Id, Name, PluginReference, Settings).
   */
  async inspectRaw(name: string): Promise<Record<string, unknown> | undefined> {
    this.#assertOpen();
    const plugin = this.#find(name);
    if (plugin === undefined) return undefined;
    return (JSON.parse(plugin.serialize()) as { plugin: Record<string, unknown> }).plugin;
  }

  /** The runtime writes an enabled plugin's output to `<runDir>/<id>/plugin.log` (rotated to `.1`). */
  async logSource(name: string): Promise<PluginLogSource | undefined> {
    this.#assertOpen();
    const plugin = this.#find(name);
    return plugin === undefined ? undefined : { file: join(this.#runDir, plugin.id, 'plugin.log') };
  }

  /**
   * Runs registry work for `remote` under the pull deadline: one plugin's slow registry holds that
   * plugin for at most pullTimeoutMs, then fails with REGISTRY_TIMEOUT.
   */
  async #withPullDeadline<T>(
    remote: string,
    what: string,
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const ref = parseReference(remote);
    return withDeadline(
      this.#pullTimeoutMs,
      { registry: ref.domain, repository: ref.path, description: what },
      work,
    );
  }

  async pull(name: string, options: PullOptions): Promise<void> {
    await this.pullWithReport(name, options);
  }

  /** pull() returning what was unpacked (entries, sizes, skipped entries). */
  async pullWithReport(name: string, options: PullOptions): Promise<InstallReport> {
    this.#assertWritable('pull');
    const localName = normalizePluginName(name);
    return this.#mutex.run(`name:${localName}`, async () => {
      this.#assertNameFree(localName, `pull ${options.remote} as ${localName}`);
      return this.#withPullDeadline(
        options.remote,
        `pulling ${options.remote} as ${localName}`,
        async (signal) => {
          const remote = await readFrom(this.#registry, options, signal);
          this.#checkPrivileges(remote, options.privileges, `pulling ${remote.remote} as ${localName}`);
          const layers = applicableLayers(remote, this.#logger);
          return this.#gcLock.shared(async () => {
            const id = generatePluginId();
            const staging = await this.#staging();
            try {
              const unpacked = await this.#unpackAndCommit(
                remote,
                layers,
                staging,
                signal,
                options.onProgress,
              );
              const record = newStoredPlugin({
                id,
                name: localName,
                reference: remote.remote,
                config: remote.config,
                ...(remote.dockerVersion !== undefined ? { dockerVersion: remote.dockerVersion } : {}),
                configDigest: remote.configDigest,
                manifestDigest: remote.resolved.digest,
                blobsums: layers.map((layer) => layer.digest),
              });
              await this.#publish(staging, record);
              this.#logger.info(
                { id, name: localName, remote: remote.remote },
                `pulled ${remote.remote} as ${localName}`,
              );
              this.#emit('pull', record);
              return { id, name: localName, layers: unpacked.reports };
            } catch (error) {
              await removeAll(staging).catch(() => undefined);
              throw this.#wrap(error, `pulling ${remote.remote} as ${localName}`);
            }
          });
        },
      );
    });
  }

  async enable(name: string, timeoutSeconds: number): Promise<void> {
    this.#assertWritable('enable');
    const id = this.#require(name, 'enable').id;
    await this.#mutex.run(`id:${id}`, async () => {
      const plugin = this.#requireId(id, name, 'enable');
      if (plugin.enabled) return;
      const timeoutMs = Math.max(1, Math.ceil(timeoutSeconds)) * 1000;
      try {
        await this.#runtime.start(this.#runnable(plugin), timeoutMs);
      } catch (error) {
        throw new EmbeddedStoreError(
          'ENABLE_FAILED',
          `plugin ${plugin.name} did not start: ${describeError(error)}; fix its settings or content, then retry`,
          { cause: error },
        );
      }
      const enabled = plugin.with((json) => {
        (json['plugin'] as JsonObject)['Enabled'] = true;
        json['Rootfs'] = this.layout.rootfs(id);
      });
      try {
        await this.#persist(enabled);
      } catch (error) {
        await this.#stop(id).catch(() => undefined);
        throw ioError(`recording that plugin ${plugin.name} is enabled`, error);
      }
      this.#supervisor.started(id);
      this.#emit('enable', enabled);
    });
  }

  /** Stops the plugin. The embedded store does not track users of a plugin (inUse is unknown), so `force` changes nothing. */
  async disable(name: string, _force: boolean): Promise<void> {
    this.#assertWritable('disable');
    const id = this.#require(name, 'disable').id;
    await this.#mutex.run(`id:${id}`, async () => {
      const plugin = this.#requireId(id, name, 'disable');
      if (!plugin.enabled) return;
      await this.#stop(id);
      const disabled = plugin.with((json) => {
        (json['plugin'] as JsonObject)['Enabled'] = false;
      });
      await this.#persist(disabled).catch((error: unknown) => {
        throw ioError(`recording that plugin ${plugin.name} is disabled`, error);
      });
      this.#emit('disable', disabled);
    });
  }

  async set(name: string, settings: string[]): Promise<void> {
    this.#assertWritable('set');
    if (settings.length === 0) return;
    const id = this.#require(name, 'set').id;
    await this.#mutex.run(`id:${id}`, async () => {
      const plugin = this.#requireId(id, name, 'set');
      if (plugin.enabled) {
        throw new EmbeddedStoreError(
          'PLUGIN_ENABLED',
          `cannot change the settings of ${plugin.name} while it is enabled; disable it first`,
        );
      }
      const changed = applySettings(plugin, settings);
      await this.#persist(changed).catch((error: unknown) => {
        throw ioError(`saving the settings of plugin ${plugin.name}`, error);
      });
    });
  }

  async upgrade(name: string, options: PullOptions): Promise<void> {
    await this.upgradeWithReport(name, options);
  }

  /** upgrade() returning what was unpacked. */
  async upgradeWithReport(name: string, options: PullOptions): Promise<InstallReport> {
    this.#assertWritable('upgrade');
    const id = this.#require(name, 'upgrade').id;
    return this.#mutex.run(`id:${id}`, async () => {
      const plugin = this.#requireId(id, name, 'upgrade');
      if (plugin.enabled) {
        throw new EmbeddedStoreError(
          'PLUGIN_ENABLED',
          `cannot upgrade ${plugin.name} while it is enabled; disable it first`,
        );
      }
      return this.#withPullDeadline(
        options.remote,
        `upgrading ${plugin.name} to ${options.remote}`,
        async (signal) => {
          const remote = await readFrom(this.#registry, options, signal);
          const what = `upgrading ${plugin.name} to ${remote.remote}`;
          this.#checkPrivileges(remote, options.privileges, what);
          const layers = applicableLayers(remote, this.#logger);
          return this.#gcLock.shared(async () => {
            const staging = await this.#staging();
            try {
              const unpacked = await this.#unpackAndCommit(
                remote,
                layers,
                staging,
                signal,
                options.onProgress,
              );
              // moby's upgradePlugin: new config, reference and digests; the settings are kept
              const upgraded = plugin.with((json) => {
                const object = json['plugin'] as JsonObject;
                object['Config'] = mobyConfigJson(remote.config, remote.dockerVersion);
                object['PluginReference'] = remote.remote;
                json['Config'] = remote.configDigest;
                json['Blobsums'] = layers.map((layer) => layer.digest);
                json['Manifest'] = remote.resolved.digest;
              });
              await this.#swapRootfs(upgraded, join(staging, 'rootfs'));
              await removeAll(staging).catch(() => undefined);
              this.#logger.info({ id, name: plugin.name, remote: remote.remote }, what);
              this.#emit('pull', upgraded);
              return { id, name: plugin.name, layers: unpacked.reports };
            } catch (error) {
              await removeAll(staging).catch(() => undefined);
              throw this.#wrap(error, what);
            }
          });
        },
      );
    });
  }

  async remove(name: string, force: boolean): Promise<void> {
    this.#assertWritable('remove');
    const found = this.#find(name);
    if (found === undefined) return;
    const id = found.id;
    await this.#mutex.run(`id:${id}`, async () => {
      const plugin = this.#plugins.get(id);
      if (plugin === undefined) return;
      if (plugin.enabled) {
        if (!force) {
          throw new EmbeddedStoreError(
            'PLUGIN_ENABLED',
            `plugin ${plugin.name} is enabled, so it was not removed; disable it first`,
          );
        }
        await this.#stop(id);
      }
      const removing = this.layout.removing(id);
      try {
        await removeAll(removing);
        await rename(this.layout.pluginDir(id), removing);
        await fsyncDir(this.layout.root);
      } catch (error) {
        throw ioError(`removing plugin ${plugin.name} (${this.layout.pluginDir(id)})`, error);
      }
      this.#plugins.delete(id);
      this.#supervisor.forget(id);
      this.#emit('remove', plugin);
      try {
        await removeAll(removing);
        // The runtime's files for it (bundle, pid file, log) outlive a disable, not a remove.
        await removeAll(join(this.#runDir, id));
      } catch (error) {
        // the plugin is gone already; reload deletes what is left
        this.#logger.warn(
          { id, path: removing, error: describeError(error) },
          `could not delete ${removing}`,
        );
      }
    });
  }

  /**
   * Deletes blobs no installed plugin references (see gc.ts), waiting for pulls, upgrades and
   * creates in progress and holding off new ones meanwhile.
   */
  async gc(): Promise<GcResult> {
    this.#assertWritable('collect garbage in');
    return this.#gcLock.exclusive(async () => {
      const result = await collectGarbage(this.#content, this.#plugins.values());
      this.#logger.info({ removed: result.removed, bytes: result.bytes, kept: result.kept }, 'blob gc');
      return result;
    });
  }

  /** The Store's create: createPlugin from a context path. */
  async create(name: string, context: string): Promise<void> {
    await this.createPlugin(name, context);
  }

  /**
   * `docker plugin create`: a plugin named `name` (REPOSITORY[:TAG]) from a context (a directory
   * or tar path, or a tar stream, holding config.json and rootfs/), installed disabled. Its config,
   * layer and manifest blobs go into the content store, ready for pushPlugin.
   */
  async createPlugin(name: string, context: CreateContext): Promise<InstallReport> {
    this.#assertWritable('create a plugin in');
    const localName = normalizePluginName(name);
    return this.#mutex.run(`name:${localName}`, async () => {
      this.#assertNameFree(localName, `create ${localName}`);
      return this.#gcLock.shared(async () => {
        const staging = await this.#staging();
        let built: BuiltContext | undefined;
        try {
          const { buildContext, configBlob, pluginManifest } = await import('./build.ts');
          built = await buildContext(context, this.#content);
          const { layer } = built;
          // unpack from the blob itself: what is installed is exactly what will be pushed
          const report = await applyLayer(
            createReadStream(layer.ingest.path, { highWaterMark: 1024 * 1024 }),
            join(staging, 'rootfs'),
            { layer: `${layer.digest} (rootfs of ${localName})`, limits: this.#limits, logger: this.#logger },
          );
          await this.#content.commit(layer.ingest, layer.digest);
          const configBytes = configBlob(built.config, [layer.diffId]);
          const configDigest = await this.#content.put(configBytes);
          const manifestBytes = pluginManifest({ digest: configDigest, size: configBytes.byteLength }, [
            { digest: layer.digest, size: layer.size },
          ]);
          const manifestDigest = await this.#content.put(manifestBytes);
          await this.#content.syncCommits([layer.digest]);
          const config = parsePluginConfig(
            JSON.parse(Buffer.from(configBytes).toString('utf8')) as unknown,
            localName,
          );
          const id = generatePluginId();
          const record = newStoredPlugin({
            id,
            name: localName,
            reference: localName,
            config,
            configDigest,
            manifestDigest,
            blobsums: [layer.digest],
          });
          await this.#publish(staging, record);
          this.#logger.info({ id, name: localName }, `created ${localName}`);
          this.#emit('create', record);
          return { id, name: localName, layers: [report] };
        } catch (error) {
          if (built !== undefined) await built.layer.ingest.abort();
          await removeAll(staging).catch(() => undefined);
          throw this.#wrap(error, `creating ${localName}`);
        }
      });
    });
  }

  /**
   * `docker plugin push`: uploads the plugin's blobs and manifest to `remote` (default: its name,
   * which must then be a pushable REPOSITORY:TAG). A plugin without a stored manifest (pulled by
   * dockerd) gets one built from its config and layers, as dockerd does.
   */
  async pushPlugin(name: string, remote?: string): Promise<PushResult> {
    this.#assertWritable('push from');
    const plugin = this.#require(name, 'push');
    const ref = parseReference(remote ?? plugin.name);
    if (ref.digest !== undefined) {
      throw new EmbeddedStoreError(
        'INVALID_PLUGIN_NAME',
        `cannot push to ${remote ?? plugin.name}: a push target is REPOSITORY[:TAG], without a digest`,
      );
    }
    const tag = ref.tag ?? 'latest';
    const { manifestBlobs, pluginManifest, pushManifestAndBlobs } = await import('./build.ts');
    return this.#gcLock.shared(async () => {
      let manifestBytes =
        plugin.manifestDigest !== undefined ? await this.#content.read(plugin.manifestDigest) : undefined;
      if (manifestBytes === undefined || manifestBlobs(manifestBytes) === undefined) {
        const configDigest = plugin.configDigest;
        const config = configDigest !== undefined ? await this.#content.info(configDigest) : undefined;
        const layers = await Promise.all(plugin.blobsums.map((digest) => this.#content.info(digest)));
        if (config === undefined || layers.length === 0 || layers.some((layer) => layer === undefined)) {
          throw new EmbeddedStoreError(
            'BLOB_MISSING',
            `plugin ${plugin.name} cannot be pushed: its manifest and layers are not in the store (dockerd's GC deletes them for plugins it pulled); pull it again with plugctl, then push`,
          );
        }
        manifestBytes = Buffer.from(pluginManifest(config, layers as { digest: string; size: number }[]));
        const digest = await this.#content.put(manifestBytes);
        // as dockerd's getManifestDescriptor does: remember the manifest, so GC keeps it
        await this.#mutex.run(`id:${plugin.id}`, async () => {
          const current = this.#plugins.get(plugin.id);
          if (current === undefined) return;
          await this.#persist(
            current.with((json) => {
              json['Manifest'] = digest;
            }),
          );
        });
      }
      const pushed = await pushManifestAndBlobs({
        registry: this.#registry,
        content: this.#content,
        repo: ref,
        tag,
        manifestBytes,
        plugin: plugin.name,
      });
      const result: PushResult = { remote: `${ref.domain}/${ref.path}:${tag}`, tag, ...pushed };
      this.#logger.info(
        { id: plugin.id, name: plugin.name, ...result },
        `pushed ${plugin.name} to ${result.remote}`,
      );
      this.#emit('push', plugin);
      return result;
    });
  }

  async watch(
    listener: (event: PluginEvent) => void,
    signal: AbortSignal,
    onReady?: () => void,
  ): Promise<void> {
    this.#assertOpen();
    if (signal.aborted) return;
    await new Promise<void>((resolve, reject) => {
      const finish = (): void => {
        this.#listeners.delete(listener);
        this.#closers.delete(onClose);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        finish();
        resolve();
      };
      const onClose = (error: Error): void => {
        finish();
        reject(error);
      };
      this.#listeners.add(listener);
      this.#closers.add(onClose);
      signal.addEventListener('abort', onAbort, { once: true });
      onReady?.();
    });
  }

  /**
   * Releases the store: cancels scheduled restarts, ends watches (they reject with STORE_CLOSED)
   * and releases the root's lock. Running plugins keep running (as under dockerd with
   * live-restore), and the runtime and registry client stay open: whoever made them closes them.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#supervisor.close();
    const closed = new EmbeddedStoreError(
      'STORE_CLOSED',
      `the embedded store at ${this.layout.root} was closed`,
    );
    for (const close of [...this.#closers]) close(closed);
    await this.#lock?.release();
  }

  // ---------------------------------------------------------------------------- opening

  /** Loads the root (see openEmbeddedStore), which calls it once before handing the store out. */
  async reload(restartTimeoutSeconds: number): Promise<ReloadReport> {
    if (this.#report !== undefined) throw new Error('EmbeddedStore.reload runs once, from openEmbeddedStore');
    const report: ReloadReport = {
      loaded: [],
      skipped: [],
      removedLeftovers: [],
      cleanedTmp: 0,
      recoveredUpgrades: [],
      adopted: [],
      started: [],
      failedToStart: [],
      stopped: [],
    };
    const readOnly = this.#lock === undefined;
    if (!readOnly) {
      for (const entry of await readdir(this.layout.tmp)) {
        await removeAll(join(this.layout.tmp, entry));
        report.cleanedTmp++;
      }
    }
    const entries = await readdir(this.layout.root).catch((error: unknown) => {
      if (readOnly && isNotFound(error)) return [];
      throw error;
    });
    for (const entry of entries) {
      const absolute = join(this.layout.root, entry);
      if (entry.endsWith('-removing') && PLUGIN_ID_RE.test(entry.slice(0, -'-removing'.length))) {
        if (readOnly) continue;
        await removeAll(absolute);
        report.removedLeftovers.push(absolute);
        continue;
      }
      if (!PLUGIN_ID_RE.test(entry)) continue;
      try {
        // an unreadable directory is reported below, when its config.json cannot be read
        if (!readOnly) report.cleanedTmp += await this.#removeTempFiles(entry).catch(() => 0);
        const recovered = readOnly ? undefined : await this.#recoverUpgrade(entry);
        if (recovered !== undefined) report.recoveredUpgrades.push({ id: entry, action: recovered });
      } catch (error) {
        report.skipped.push({
          id: entry,
          path: absolute,
          reason: `interrupted upgrade could not be recovered: ${describeError(error)}`,
        });
        continue;
      }
      const file = this.layout.configFile(entry);
      let parsed: StoredPlugin | string;
      try {
        parsed = parseStoredPlugin(JSON.parse(await readFile(file, 'utf8')) as unknown, entry);
      } catch (error) {
        parsed = isNotFound(error)
          ? 'config.json is missing (a removal interrupted on an older engine?); delete the directory by hand if the plugin is not needed'
          : `config.json cannot be read: ${describeError(error)}`;
      }
      if (typeof parsed === 'string') {
        report.skipped.push({ id: entry, path: absolute, reason: parsed });
        this.#logger.warn({ id: entry, path: file, reason: parsed }, `skipping plugin ${entry}: ${parsed}`);
        continue;
      }
      this.#plugins.set(entry, parsed);
      report.loaded.push(entry);
    }
    if (readOnly) {
      this.#report = report;
      return report;
    }
    this.#runtime.onExit((exit) => this.#onExit(exit));
    const enabled = [...this.#plugins.values()].filter((plugin) => plugin.enabled);
    await Promise.all(
      enabled.map(async (plugin) => {
        try {
          if (await this.#runtime.isRunning(plugin.id)) {
            this.#supervisor.started(plugin.id);
            report.adopted.push(plugin.id);
            return;
          }
          await this.#runtime.start(this.#runnable(plugin), restartTimeoutSeconds * 1000);
          this.#supervisor.started(plugin.id);
          report.started.push(plugin.id);
        } catch (error) {
          const message = describeError(error);
          report.failedToStart.push({ id: plugin.id, error: message });
          const delay = this.#supervisor.crashed(plugin.id);
          this.#logger.warn(
            { id: plugin.id, name: plugin.name, error: message, retryInMs: delay },
            `enabled plugin ${plugin.name} did not start; retrying in ${delay} ms`,
          );
        }
      }),
    );
    // only a plugin with a runtime state directory (`<runDir>/<id>`, made before each start) can
    // run: the others cost no runtime query
    const disabled = [...this.#plugins.values()].filter((plugin) => !plugin.enabled);
    await Promise.all(
      disabled.map(async (plugin) => {
        try {
          const started = await lstat(join(this.#runDir, plugin.id)).then(
            () => true,
            () => false,
          );
          if (!started || !(await this.#runtime.isRunning(plugin.id))) return;
          await this.#stop(plugin.id);
          report.stopped.push(plugin.id);
          this.#logger.warn(
            { id: plugin.id, name: plugin.name },
            `plugin ${plugin.name} is disabled but was running (an interrupted enable); stopped it`,
          );
        } catch (error) {
          this.#logger.warn(
            { id: plugin.id, name: plugin.name, error: describeError(error) },
            `could not stop disabled plugin ${plugin.name}, which is running`,
          );
        }
      }),
    );
    this.#report = report;
    return report;
  }

  /**
   * Deletes the temp files of config.json writes a crash interrupted (writeFileAtomic's
   * `.<name>.tmp-<hex>`, from set, enable, disable or the upgrade file) in a plugin directory.
   */
  async #removeTempFiles(id: string): Promise<number> {
    const dir = this.layout.pluginDir(id);
    let removed = 0;
    for (const name of await readdir(dir)) {
      if (!/^\..+\.tmp-[0-9a-f]{12}$/.test(name)) continue;
      await removeAll(join(dir, name));
      removed++;
    }
    return removed;
  }

  /** Finishes or undoes an upgrade a crash interrupted (see the module comment). */
  async #recoverUpgrade(id: string): Promise<'completed' | 'rolled back' | undefined> {
    const exists = (path: string): Promise<boolean> =>
      lstat(path).then(
        () => true,
        (error: unknown) => {
          if (isNotFound(error)) return false;
          throw error;
        },
      );
    const upgrade = this.layout.upgradeFile(id);
    const old = this.layout.oldRootfs(id);
    const rootfs = this.layout.rootfs(id);
    const hasUpgrade = await exists(upgrade);
    const hasOld = await exists(old);
    if (!hasUpgrade && !hasOld) return undefined;
    const hasRootfs = await exists(rootfs);
    let action: 'completed' | 'rolled back';
    if (hasUpgrade && hasOld && hasRootfs) {
      await rename(upgrade, this.layout.configFile(id));
      action = 'completed';
    } else if (hasOld && !hasRootfs) {
      await rename(old, rootfs);
      if (hasUpgrade) await removeAll(upgrade);
      action = 'rolled back';
    } else if (hasUpgrade) {
      await removeAll(upgrade);
      action = 'rolled back';
    } else {
      action = 'completed';
    }
    await fsyncDir(this.layout.pluginDir(id));
    await removeAll(old);
    this.#logger.warn({ id, action }, `plugin ${id}: an interrupted upgrade was ${action}`);
    return action;
  }

  // ---------------------------------------------------------------------------- internals

  #assertOpen(): void {
    if (this.#closed) {
      throw new EmbeddedStoreError('STORE_CLOSED', `the embedded store at ${this.layout.root} is closed`);
    }
  }

  #assertWritable(verb: string): void {
    this.#assertOpen();
    if (this.#lock === undefined) {
      throw new EmbeddedStoreError(
        'STORE_READ_ONLY',
        `cannot ${verb} the plugin store at ${this.layout.root}: it was opened read-only`,
      );
    }
  }

  #installed(plugin: StoredPlugin): InstalledPlugin {
    return installedPlugin(plugin.pluginObject);
  }

  /** moby's resolvePluginID: full ID, then name (normalised), then unique ID prefix. */
  #find(nameOrId: string): StoredPlugin | undefined {
    if (PLUGIN_ID_RE.test(nameOrId)) return this.#plugins.get(nameOrId);
    let normalized: string | undefined;
    try {
      normalized = normalizePluginName(nameOrId);
    } catch {
      normalized = undefined;
    }
    if (normalized !== undefined) {
      for (const plugin of this.#plugins.values()) if (plugin.name === normalized) return plugin;
    }
    if (nameOrId === '') return undefined;
    const matches = [...this.#plugins.values()].filter((plugin) => plugin.id.startsWith(nameOrId));
    if (matches.length > 1) {
      throw new EmbeddedStoreError(
        'AMBIGUOUS_ID',
        `${JSON.stringify(nameOrId)} matches ${matches.length} plugins (${matches.map((p) => p.name).join(', ')}); give a longer ID or the name`,
      );
    }
    return matches[0];
  }

  #require(nameOrId: string, verb: string): StoredPlugin {
    const plugin = this.#find(nameOrId);
    if (plugin === undefined) {
      throw new EmbeddedStoreError('NOT_FOUND', `cannot ${verb} plugin ${nameOrId}: it is not installed`);
    }
    return plugin;
  }

  #requireId(id: string, asked: string, verb: string): StoredPlugin {
    const plugin = this.#plugins.get(id);
    if (plugin === undefined) {
      throw new EmbeddedStoreError('NOT_FOUND', `cannot ${verb} plugin ${asked}: it was removed meanwhile`);
    }
    return plugin;
  }

  #assertNameFree(name: string, what: string): void {
    for (const plugin of this.#plugins.values()) {
      if (plugin.name === name) {
        throw new EmbeddedStoreError(
          'PLUGIN_EXISTS',
          `cannot ${what}: a plugin named ${name} is already installed (ID ${plugin.id})`,
        );
      }
    }
  }

  #checkPrivileges(remote: RemotePlugin, granted: readonly PluginPrivilege[], what: string): void {
    if (privilegesEqual(granted, remote.privileges)) return;
    throw new EmbeddedStoreError(
      'PRIVILEGES_MISMATCH',
      `${what} refused: the plugin asks for ${formatPrivileges(remote.privileges)} but the grants are ${formatPrivileges(granted)}; ` +
        'grant exactly what it asks for (or set grantAllPrivileges). Nothing was downloaded beyond its config',
    );
  }

  /** A fresh staging directory `<root>/tmp/.pull-XXXXXX/` (0700) with an empty `rootfs/` (0755). */
  async #staging(): Promise<string> {
    const staging = await mkdtemp(join(this.layout.tmp, '.pull-'));
    await mkdir(join(staging, 'rootfs'), { mode: 0o755 });
    return staging;
  }

  /** Unpacks the layers into `<staging>/rootfs` in one pass each, then commits their blobs. */
  async #unpackAndCommit(
    remote: RemotePlugin,
    layers: Parameters<typeof unpackLayers>[0]['layers'],
    staging: string,
    signal: AbortSignal,
    onProgress?: PullOptions['onProgress'],
  ): Promise<Awaited<ReturnType<typeof unpackLayers>>> {
    const unpacked = await unpackLayers({
      ...(onProgress !== undefined ? { onProgress } : {}),
      signal,
      registry: this.#registry,
      content: this.#content,
      remote,
      layers,
      rootfs: join(staging, 'rootfs'),
      limits: this.#limits,
      logger: this.#logger,
      ...(this.#reclaim !== undefined ? { reclaim: this.#reclaim } : {}),
    });
    await this.#commitBlobs(remote, unpacked.staged);
    return unpacked;
  }

  /** Commits the new layer blobs, the config and the manifest (when its bytes are known). */
  async #commitBlobs(remote: RemotePlugin, staged: StagedBlob[]): Promise<void> {
    for (const blob of staged) await this.#content.commit(blob.ingest, blob.digest);
    await this.#content.put(remote.configBytes, remote.configDigest);
    if (remote.manifestBytes !== undefined)
      await this.#content.put(remote.manifestBytes, remote.resolved.digest);
    await this.#content.syncCommits(staged.map((blob) => blob.digest));
  }

  /** Writes config.json into the staging directory and renames the directory to `<root>/<id>`. */
  async #publish(staging: string, record: StoredPlugin): Promise<void> {
    await writeFileAtomic(join(staging, 'config.json'), record.serialize());
    await rename(staging, this.layout.pluginDir(record.id));
    await fsyncDir(this.layout.root);
    this.#plugins.set(record.id, record);
  }

  /** The upgrade protocol (module comment); rolls back in-process when a step fails. */
  async #swapRootfs(upgraded: StoredPlugin, newRootfs: string): Promise<void> {
    const id = upgraded.id;
    const rootfs = this.layout.rootfs(id);
    const old = this.layout.oldRootfs(id);
    const upgrade = this.layout.upgradeFile(id);
    await removeAll(old);
    await writeFileAtomic(upgrade, upgraded.serialize());
    try {
      await rename(rootfs, old);
    } catch (error) {
      await removeAll(upgrade);
      throw error;
    }
    try {
      await rename(newRootfs, rootfs);
    } catch (error) {
      await rename(old, rootfs);
      await removeAll(upgrade);
      throw error;
    }
    await rename(upgrade, this.layout.configFile(id));
    await fsyncDir(this.layout.pluginDir(id));
    this.#plugins.set(id, upgraded);
    await removeAll(old).catch((error: unknown) => {
      this.#logger.warn(
        { id, path: old, error: describeError(error) },
        `could not delete ${old}; the next start does`,
      );
    });
  }

  async #persist(plugin: StoredPlugin): Promise<void> {
    await writeFileAtomic(this.layout.configFile(plugin.id), plugin.serialize());
    this.#plugins.set(plugin.id, plugin);
  }

  #runnable(plugin: StoredPlugin): RunnablePlugin {
    let config: PluginConfig;
    try {
      config = parsePluginConfig(plugin.config, `${plugin.name} config.json`);
    } catch (error) {
      throw new EmbeddedStoreError(
        'ENABLE_FAILED',
        `plugin ${plugin.name} cannot run: its stored config is invalid (${describeError(error)}); remove and pull it again`,
        { kind: 'stalled', cause: error },
      );
    }
    return {
      id: plugin.id,
      name: plugin.name,
      rootfs: this.layout.rootfs(plugin.id),
      config,
      settings: this.#installed(plugin).settings,
      stateDir: join(this.#runDir, plugin.id),
    };
  }

  /** Stops a plugin on purpose (its exit is not a crash) and cancels any scheduled restart. */
  async #stop(id: string): Promise<void> {
    this.#supervisor.forget(id);
    this.#stopping.add(id);
    try {
      await this.#runtime.stop(id, this.#stopGraceMs);
    } finally {
      this.#stopping.delete(id);
    }
  }

  #onExit(exit: RuntimeExit): void {
    if (this.#closed) return;
    const plugin = this.#plugins.get(exit.id);
    if (plugin === undefined || !plugin.enabled || this.#stopping.has(exit.id)) return;
    const delay = this.#supervisor.crashed(exit.id);
    this.#logger.warn(
      { id: exit.id, name: plugin.name, lastOutput: exit.lastOutput, restartInMs: delay },
      `plugin ${plugin.name} exited unexpectedly; restarting in ${delay} ms`,
    );
    this.#emit('die', plugin);
  }

  async #restartAfterCrash(id: string, attempt: number): Promise<boolean> {
    if (this.#closed) return false;
    return this.#mutex.run(`id:${id}`, async () => {
      const plugin = this.#plugins.get(id);
      if (plugin === undefined || !plugin.enabled || this.#closed) return false;
      if (await this.#runtime.isRunning(id)) return true;
      try {
        await this.#runtime.start(this.#runnable(plugin), this.#restartTimeoutMs);
      } catch (error) {
        this.#logger.warn(
          { id, name: plugin.name, attempt, error: describeError(error) },
          `restart ${attempt} of plugin ${plugin.name} failed`,
        );
        throw error;
      }
      this.#logger.info({ id, name: plugin.name, attempt }, `plugin ${plugin.name} restarted`);
      this.#emit('restart', plugin);
      return true;
    });
  }

  #emit(action: string, plugin: StoredPlugin): void {
    const event: PluginEvent = { action, id: plugin.id, name: plugin.name };
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.#logger.warn({ action, error: describeError(error) }, 'a plugin event listener threw');
      }
    }
  }

  /** Errors from extraction, the registry and the store pass through; file-system errors become STORE_IO. */
  #wrap(error: unknown, what: string): unknown {
    if (error instanceof PlugctlError) return error;
    return ioError(what, error);
  }
}

/**
 * Opens the store at `options.root`: creates the root (0700), `tmp/` and `storage/` when missing,
 * takes `<root>/plugctl.lock` (STORE_LOCKED naming the holder's PID when a live process has it; a
 * stale lock is taken over), then reloads: empties `tmp/`, deletes `<id>-removing` leftovers,
 * finishes or undoes interrupted upgrades, loads every `<64-hex>/config.json` (one that cannot be
 * read is skipped and reported, never fatal), and for every enabled plugin adopts it when the
 * runtime reports it running or starts it otherwise (a failed start is retried with backoff), and
 * stops disabled plugins the runtime reports running (an enable interrupted before it was recorded).
 * What reload found is in the store's `reloadReport`. With `readOnly`, only the loading is done.
 */
export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  const layout = new StoreLayout(options.root);
  let lock: StoreLock | undefined;
  if (options.readOnly !== true) {
    try {
      await mkdir(layout.root, { recursive: true, mode: 0o700 });
      await mkdir(layout.tmp, { recursive: true, mode: 0o700 });
      await mkdir(layout.storage, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw ioError(`creating the plugin store at ${layout.root}`, error);
    }
    lock = await acquireStoreLock(layout.lockFile).catch((error: unknown) => {
      throw error instanceof PlugctlError ? error : ioError(`locking ${layout.lockFile}`, error);
    });
  }
  const restartTimeoutSeconds = options.restartTimeoutSeconds ?? 30;
  const store = new EmbeddedStore({
    layout,
    runtime: options.runtime,
    registry: options.registry,
    logger: options.logger,
    clock: options.clock ?? systemClock,
    runDir: options.runDir ?? '/run/plugctl/plugins',
    limits: { ...DEFAULT_EXTRACT_LIMITS, ...options.limits },
    restartPolicy: { ...DEFAULT_RESTART_POLICY, ...options.restartPolicy },
    stopGraceMs: options.stopGraceMs ?? 10_000,
    restartTimeoutMs: restartTimeoutSeconds * 1000,
    ...(options.reclaim !== undefined ? { reclaim: options.reclaim } : {}),
    ...(options.pullTimeoutMs !== undefined ? { pullTimeoutMs: options.pullTimeoutMs } : {}),
    lock,
  });
  try {
    const report = await store.reload(restartTimeoutSeconds);
    if (report.skipped.length > 0 || report.failedToStart.length > 0 || report.recoveredUpgrades.length > 0) {
      options.logger.warn(
        { root: layout.root, ...report },
        `plugin store ${layout.root} opened with problems`,
      );
    }
    return store;
  } catch (error) {
    await store.close();
    throw ioError(`loading the plugin store at ${layout.root}`, error);
  }
}

/**
 * The remote of a pull or upgrade, read from the registry mirror when the caller named one: the
 * layers come from the mirror (`ref`), and the plugin keeps the declared remote as its reference.
 */
async function readFrom(
  registry: RegistryClient,
  options: PullOptions,
  signal: AbortSignal,
): Promise<RemotePlugin> {
  if (options.from === undefined) return readRemote(registry, options.remote, signal);
  const fetched = await readRemote(registry, options.from, signal);
  return { ...fetched, remote: formatReference(parseReference(options.remote)) };
}
