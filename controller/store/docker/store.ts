/**
 * The `docker` Store: plugin operations through the Docker Engine API. Engine answers are mapped to
 * plugctl's shapes and engine failures to PlugctlErrors whose kind tells the controller whether to
 * wait, back off or stop. Behaviours of the engine this code relies on are noted where they matter
 * (observed on dockerd 20.10.24, API 1.41).
 */
import { EngineError, PlugctlError, SpecError } from '../../errors.ts';
import type { FailureKind } from '../../errors.ts';
import { authKeyFor, encodeRegistryAuth, resolveCredentials } from '../../registry/credentials.ts';
import type { Credentials } from '../../registry/credentials.ts';
import { formatPrivileges, privilegesEqual } from '../../plugin/privileges.ts';
import { parseReference } from '../../api/reference.ts';
import type { PluginPrivilege } from '../../plugin/privileges.ts';
import type {
  InstalledPlugin,
  ListFilters,
  PluginEvent,
  PluginLogSource,
  PluginUsage,
  PullOptions,
  PullProgress,
  Store,
} from '../store.ts';
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { activate } from '../activate.ts';
import { systemClock } from '../../runtime/clock.ts';
import { EngineUsage } from './usage.ts';
import { array, capabilityOf, record, str, strings, toInstalledPlugin, type Json } from '../plugin-json.ts';
import { connectEngine } from './client.ts';
import type { ConnectOptions, EngineClient } from './client.ts';
import { DIGEST_SAFE_ENGINE_VERSION, supportsDigestReferences } from './engine-version.ts';

/** Finds the credentials for a registry host (`docker.io`, `127.0.0.1:5000`); undefined = anonymous. */
export type CredentialLookup = (registryHost: string) => Promise<Credentials | undefined>;

/** How to reach the engine and authenticate to registries. */
export interface DockerStoreOptions extends ConnectOptions {
  /** default: the Docker client configuration found from `env` (DOCKER_CONFIG, ~/.docker) */
  credentials?: CredentialLookup;
  /** deadline of a whole pull or upgrade; default 30 min */
  pullTimeoutMs?: number;
  /** longest silence of a pull's progress stream; default 5 min */
  pullIdleTimeoutMs?: number;
  /**
   * where the engine puts managed plugins' socket directories (`<root>/<id>/<socket>`): moby fixes
   * it at /run/docker/plugins whatever --exec-root says; default that
   */
  pluginSocketsRoot?: string;
  /** how long usage listings are reused, ms; default 2000 */
  usageTtlMs?: number;
}

/** Where dockerd puts the sockets of managed plugins (moby's getPluginExecRoot on Linux). */
export const DEFAULT_PLUGIN_SOCKETS_ROOT = '/run/docker/plugins';

/** Maps GET /plugins/privileges output; `null` (what the engine sends for none) becomes []. */
export function toPrivileges(raw: unknown): PluginPrivilege[] {
  return array(raw).map((entry) => {
    const item = record(entry);
    const description = str(item['Description']);
    return {
      name: str(item['Name']) ?? '',
      ...(description !== undefined && description !== '' ? { description } : {}),
      value: strings(item['Value']),
    };
  });
}

/** The body of pull and upgrade: the grants in the engine's shape. */
function grantsBody(privileges: readonly PluginPrivilege[]): Json[] {
  return privileges.map((p) => ({ Name: p.name, Description: p.description ?? '', Value: [...p.value] }));
}

// ---------------------------------------------------------------------------------------------
// Progress streams (pull, upgrade): one JSON object per line; a failure after the 200 status
// arrives as {"error": "...", "errorDetail": {"message": "..."}}.

/** The error message a progress-stream message carries, if it is an error message. */
/** Maps one /events message to a PluginEvent, or undefined for anything that is not about a plugin. */
export function toPluginEvent(message: unknown): PluginEvent | undefined {
  const event = record(message);
  if (str(event['Type']) !== 'plugin') return undefined;
  const actor = record(event['Actor']);
  const id = str(actor['ID']) ?? str(event['id']);
  const action = str(event['Action']) ?? str(event['status']);
  if (id === undefined || action === undefined) return undefined;
  const name = str(record(actor['Attributes'])['name']);
  return name === undefined ? { action, id } : { action, id, name };
}

export function streamError(message: unknown): string | undefined {
  const item = record(message);
  const detail = str(record(item['errorDetail'])['message']);
  const error = str(item['error']);
  if (detail !== undefined && detail !== '') return detail;
  if (error !== undefined && error !== '') return error;
  return undefined;
}

/**
 * A progress event from one message of the engine's pull stream (jsonmessage: `status`, `id` of the
 * layer, `progressDetail.current/total`); undefined for messages that carry no status (errors).
 */
export function progressOf(message: unknown): PullProgress | undefined {
  const item = record(message);
  const status = str(item['status']);
  if (status === undefined || status === '') return undefined;
  const detail = record(item['progressDetail']);
  const id = str(item['id']);
  const current = detail['current'];
  const total = detail['total'];
  return {
    status,
    ...(id !== undefined && id !== '' ? { layer: id } : {}),
    ...(typeof current === 'number' ? { current } : {}),
    ...(typeof total === 'number' && total > 0 ? { total } : {}),
  };
}

/**
 * Whether a pull failure needs a human: the reference does not exist, access is denied, or the
 * grants are wrong. Everything else (registry down, timeouts, 5xx) is worth retrying.
 */
export function pullFailureKind(message: string): FailureKind {
  return /not found|manifest unknown|name unknown|unauthorized|authentication required|denied|forbidden|incorrect privileges|invalid reference|repository name must|no such host/i.test(
    message,
  )
    ? 'stalled'
    : 'transient';
}

// ---------------------------------------------------------------------------------------------

/** A plugin name as it goes into a URL path: Docker's router takes the rest of the path, slashes included. */
function pluginPath(name: string): string {
  if (name === '') throw new SpecError('INVALID_PLUGIN_NAME', 'the plugin name is empty');
  return `/plugins/${encodeURIComponent(name).replace(/%2F/gi, '/').replace(/%3A/gi, ':').replace(/%40/g, '@')}`;
}

/**
 * A Store backed by the Docker Engine API. Build it with connectDockerStore(). Engine quirks it
 * absorbs: enable of an enabled plugin and disable of a disabled one succeed (the engine answers 409),
 * remove of an absent plugin succeeds (404), and digest references never reach an engine that
 * would crash on them.
 */
export class DockerStore implements Store {
  readonly #engine: EngineClient;
  readonly #credentials: CredentialLookup;
  readonly #pullTimeoutMs: number;
  readonly #pullIdleTimeoutMs: number;
  readonly #socketsRoot: string;
  readonly #usage: EngineUsage;

  /** Use connectDockerStore(); the constructor does no I/O. */
  constructor(
    engine: EngineClient,
    options: {
      credentials: CredentialLookup;
      pullTimeoutMs: number;
      pullIdleTimeoutMs: number;
      pluginSocketsRoot?: string;
      usageTtlMs?: number;
    },
  ) {
    this.#engine = engine;
    this.#credentials = options.credentials;
    this.#pullTimeoutMs = options.pullTimeoutMs;
    this.#pullIdleTimeoutMs = options.pullIdleTimeoutMs;
    this.#socketsRoot = options.pluginSocketsRoot ?? DEFAULT_PLUGIN_SOCKETS_ROOT;
    this.#usage = new EngineUsage(engine, {
      clock: systemClock,
      ...(options.usageTtlMs !== undefined ? { ttlMs: options.usageTtlMs } : {}),
    });
  }

  /**
   * Plugin.Activate on `<pluginSocketsRoot>/<id>/<socket>`, where dockerd creates an enabled managed
   * plugin's socket (and mounts the directory at /run/docker/plugins inside the plugin). Rejects with
   * PLUGIN_PROBE_UNAVAILABLE when this process cannot see or enter that directory.
   */
  async activate(plugin: InstalledPlugin, timeoutMs: number): Promise<void> {
    if (plugin.socket === undefined) {
      throw new EngineError('PLUGIN_UNRESPONSIVE', `plugin ${plugin.name} declares no socket to probe`, {
        kind: 'waiting',
      });
    }
    try {
      await activate(join(this.#socketsRoot, plugin.id, plugin.socket), timeoutMs);
    } catch (error) {
      // No socket where dockerd puts it may mean this process does not see that directory at all
      // (a container without the host's /run/docker/plugins): then nothing is known of the plugin.
      const cause = error instanceof PlugctlError ? error.cause : undefined;
      if ((cause as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT') throw error;
      const visible = await access(this.#socketsRoot, fsConstants.X_OK).then(
        () => true,
        () => false,
      );
      if (visible) throw error;
      throw new PlugctlError(
        'PLUGIN_PROBE_UNAVAILABLE',
        `cannot check that ${plugin.name} answers: the engine's plugin socket directory ${this.#socketsRoot} ` +
          'is not visible to plugctl (in a container, mount it from the host)',
        { kind: 'waiting', cause: error },
      );
    }
  }

  /** See EngineUsage: volumes, networks and containers' log drivers, from cached engine listings. */
  usage(
    plugins: readonly InstalledPlugin[],
    options: { fresh?: boolean } = {},
  ): Promise<Map<string, PluginUsage>> {
    return this.#usage.usage(plugins, options);
  }

  invalidateUsage(): void {
    this.#usage.invalidate();
  }

  /** The daemon's version string, e.g. `20.10.24+dfsg1`. */
  get engineVersion(): string {
    return this.#engine.engineVersion;
  }

  /** The negotiated API version, e.g. `1.41`. */
  get apiVersion(): string {
    return this.#engine.apiVersion;
  }

  describe(): string {
    return `docker ${this.#engine.engineVersion} (API ${this.#engine.apiVersion})`;
  }

  acceptsDigestReferences(): boolean {
    return supportsDigestReferences(this.#engine.engineVersion);
  }

  /**
   * `docker plugin ls --filter` semantics, the same as the embedded store's (see ListFilters).
   * `enabled` goes to the engine (GET /plugins?filters=); `capability` is matched here, because
   * dockerd matches it as a regular expression against every interface type of a plugin (`volume`
   * would match `volumedriver`, and a plugin with two types is dropped when one differs).
   */
  async list(filters: ListFilters = {}): Promise<InstalledPlugin[]> {
    const query =
      filters.enabled === undefined
        ? undefined
        : { filters: JSON.stringify({ enabled: [String(filters.enabled)] }) };
    const raw = await this.#engine.json('GET', '/plugins', query === undefined ? {} : { query });
    const plugins = array(raw).map(toInstalledPlugin);
    const capability = filters.capability?.toLowerCase();
    return capability === undefined ? plugins : plugins.filter((p) => p.capabilities.includes(capability));
  }

  /** GET /info `Labels` (`key=value` strings, from `dockerd --label` or daemon.json). */
  async engineLabels(): Promise<Record<string, string>> {
    const info = (await this.#engine.json('GET', '/info')) as { Labels?: unknown } | null;
    const labels: Record<string, string> = {};
    const raw = info?.Labels;
    for (const entry of Array.isArray(raw) ? raw : []) {
      if (typeof entry !== 'string') continue;
      const eq = entry.indexOf('=');
      // dockerd accepts `--label key` without a value; Swarm reads it as the empty value.
      if (eq < 0) labels[entry] = '';
      else labels[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    return labels;
  }

  async inspect(name: string): Promise<InstalledPlugin | undefined> {
    try {
      return toInstalledPlugin(await this.#engine.json('GET', `${pluginPath(name)}/json`));
    } catch (error) {
      if (error instanceof EngineError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** GET /plugins/{name}/json as the engine sends it (what `docker plugin inspect` prints). */
  async inspectRaw(name: string): Promise<Record<string, unknown> | undefined> {
    try {
      return (await this.#engine.json('GET', `${pluginPath(name)}/json`)) as Record<string, unknown>;
    } catch (error) {
      if (error instanceof EngineError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** dockerd keeps a plugin's output in its own log, one line per write, tagged with the plugin's ID. */
  async logSource(name: string): Promise<PluginLogSource | undefined> {
    const plugin = await this.inspect(name);
    if (plugin === undefined) return undefined;
    return {
      elsewhere:
        `dockerd writes the output of plugin ${plugin.name} into its own log, each line tagged plugin=${plugin.id}: ` +
        `journalctl -u docker | grep ${plugin.id.slice(0, 12)} (or dockerd's log file when it does not log to journald)`,
    };
  }

  /**
   * GET /plugins/privileges, for the engine-side double check of grants. Caution: the engine answers
   * 200 `[]` when it cannot fetch the remote at all (no such repository or tag, registry down; moby
   * swallows the fetch error), and 200 `null` for a plugin that asks for nothing. Both map to [];
   * plugctl's own registry read (RemoteInspector) is what decides.
   */
  async #privileges(remote: string, headers: Record<string, string>): Promise<PluginPrivilege[]> {
    const raw = await this.#engine.json('GET', '/plugins/privileges', { query: { remote }, headers });
    return toPrivileges(raw);
  }

  async pull(name: string, requested: PullOptions): Promise<void> {
    const options = engineTarget(requested);
    this.#guardDigest(options.remote, 'pull');
    this.#guardName(name);
    const headers = await this.#authHeaders(options.remote);
    await this.#checkGrants(options, headers, `pulling ${options.remote} as ${name}`);
    await this.#progress('pull', name, options, headers, '/plugins/pull', { remote: options.remote, name });
  }

  /**
   * POST /plugins/create?name=NAME with the context as a plain tar. The engine grants the created
   * plugin whatever its config asks for and never asks about it, so the planner has compared the
   * context's privileges with the declared grants before this is called.
   */
  async create(name: string, context: string): Promise<void> {
    this.#guardName(name);
    // Imported here: only documents with spec.build need tar-stream in this process.
    const { contextTar } = await import('../context.ts');
    const stream = await contextTar(context);
    try {
      await this.#engine.request('POST', '/plugins/create', {
        query: { name },
        body: { stream, contentType: 'application/x-tar' },
        timeoutMs: this.#pullTimeoutMs,
      });
    } catch (error) {
      stream.destroy();
      if (error instanceof EngineError && /already exists/i.test(error.message)) {
        throw new EngineError(
          'PLUGIN_EXISTS',
          `cannot create ${name}: a plugin with that name is already installed`,
          {
            kind: 'transient',
            ...(error.status !== undefined ? { status: error.status } : {}),
            cause: error,
          },
        );
      }
      if (error instanceof EngineError && error.status !== undefined && error.status < 500) {
        throw new EngineError(
          'CONTEXT_INVALID',
          `the engine refused to create ${name} from ${context}: ${error.message}. Fix the context (config.json and rootfs/)`,
          { kind: 'stalled', status: error.status, cause: error },
        );
      }
      throw error;
    }
  }

  async upgrade(name: string, requested: PullOptions): Promise<void> {
    const options = engineTarget(requested);
    this.#guardDigest(options.remote, 'upgrade to');
    const headers = await this.#authHeaders(options.remote);
    await this.#checkGrants(options, headers, `upgrading ${name} to ${options.remote}`);
    await this.#progress('upgrade', name, options, headers, `${pluginPath(name)}/upgrade`, {
      remote: options.remote,
    });
  }

  /**
   * POST /plugins/{name}/enable?timeout=N. The timeout is always sent. dockerd 20.10 uses it only as
   * the plugin's HTTP client timeout: it waits for the plugin's socket on its own schedule (about
   * 12.5 s) and then fails with "dial unix ...: connect: no such file or directory", so the request
   * deadline allows for both.
   */
  async enable(name: string, timeoutSeconds: number): Promise<void> {
    const timeout = Math.max(1, Math.ceil(timeoutSeconds));
    try {
      await this.#engine.request('POST', `${pluginPath(name)}/enable`, {
        query: { timeout },
        timeoutMs: (timeout + 30) * 1000,
      });
    } catch (error) {
      if (error instanceof EngineError && error.status === 409 && /already enabled/i.test(error.message))
        return;
      if (error instanceof EngineError && (error.status === 500 || error.code === 'ENGINE_TIMEOUT')) {
        throw new EngineError(
          'ENABLE_FAILED',
          `plugin ${name} did not start: ${error.message}. Its output is in the dockerd log (lines tagged plugin=<id>); fix its settings or content, then retry`,
          {
            kind: 'transient',
            ...(error.status !== undefined ? { status: error.status } : {}),
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  async disable(name: string, force: boolean): Promise<void> {
    try {
      await this.#engine.request('POST', `${pluginPath(name)}/disable`, {
        query: force ? { force: 1 } : {},
        timeoutMs: 60_000,
      });
    } catch (error) {
      if (error instanceof EngineError && error.status === 409) {
        if (/already disabled/i.test(error.message)) return;
        // the engine says: plugin <name> is in use
        if (/in use/i.test(error.message)) {
          throw new EngineError(
            'PLUGIN_IN_USE',
            `plugin ${name} is in use (volumes, networks or containers refer to it), so it was not disabled; free it or set inUse: Force`,
            { kind: 'waiting', status: 409, cause: error },
          );
        }
      }
      throw error;
    }
  }

  async set(name: string, settings: string[]): Promise<void> {
    if (settings.length === 0) return;
    try {
      await this.#engine.request('POST', `${pluginPath(name)}/set`, { json: settings });
    } catch (error) {
      // the engine answers HTTP 500: cannot set on an active plugin, disable plugin before setting
      if (error instanceof EngineError && /active plugin|is enabled/i.test(error.message)) {
        throw new EngineError(
          'PLUGIN_ENABLED',
          `cannot change the settings of ${name} while it is enabled; disable it first`,
          { kind: 'waiting', ...(error.status !== undefined ? { status: error.status } : {}), cause: error },
        );
      }
      if (
        error instanceof EngineError &&
        /not settable|not found in the plugin configuration|invalid|not allowed/i.test(error.message)
      ) {
        throw new EngineError(
          'SETTING_REJECTED',
          `the engine rejected settings of ${name}: ${error.message}. Declare only what the plugin's config marks settable`,
          { kind: 'stalled', ...(error.status !== undefined ? { status: error.status } : {}), cause: error },
        );
      }
      throw error;
    }
  }

  async remove(name: string, force: boolean): Promise<void> {
    try {
      await this.#engine.request('DELETE', pluginPath(name), {
        query: { force: force ? 1 : 0 },
        timeoutMs: 60_000,
      });
    } catch (error) {
      if (error instanceof EngineError && error.status === 404) return;
      if (error instanceof EngineError && error.status === 409) {
        if (/in use/i.test(error.message)) {
          throw new EngineError(
            'PLUGIN_IN_USE',
            `plugin ${name} is in use, so it was not removed; free it or remove with force`,
            {
              kind: 'waiting',
              status: 409,
              cause: error,
            },
          );
        }
        throw new EngineError(
          'PLUGIN_ENABLED',
          `plugin ${name} is enabled, so it was not removed; disable it first`,
          {
            kind: 'waiting',
            status: 409,
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  async watch(
    listener: (event: PluginEvent) => void,
    signal: AbortSignal,
    onReady?: () => void,
  ): Promise<void> {
    try {
      await this.#engine.stream(
        'GET',
        '/events',
        { query: { filters: JSON.stringify({ type: ['plugin'] }) }, timeoutMs: 0, idleTimeoutMs: 0, signal },
        (message) => {
          const event = toPluginEvent(message);
          if (event !== undefined) listener(event);
        },
        onReady,
      );
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    if (!signal.aborted) {
      throw new EngineError(
        'EVENTS_CLOSED',
        'the Docker engine closed the event stream (did dockerd restart?)',
      );
    }
  }

  async close(): Promise<void> {
    await this.#engine.close();
  }

  /** Refuses to send a digest reference to an engine that dies of it (moby#47299). */
  #guardDigest(remote: string, verb: string): void {
    if (!remote.includes('@') || supportsDigestReferences(this.#engine.engineVersion)) return;
    const [withoutDigest] = remote.split('@');
    throw new SpecError(
      'DIGEST_UNSUPPORTED_BY_ENGINE',
      `refusing to ${verb} ${remote}: dockerd ${this.#engine.engineVersion} crashes when a plugin reference carries a digest ` +
        `(fixed in ${DIGEST_SAFE_ENGINE_VERSION}, moby#47299). Pin the plugin by tag (e.g. ${withoutDigest ?? remote}) or upgrade dockerd to ${DIGEST_SAFE_ENGINE_VERSION} or newer`,
    );
  }

  #guardName(name: string): void {
    if (name.includes('@')) {
      throw new SpecError(
        'INVALID_PLUGIN_NAME',
        `plugin name ${name} contains a digest; a local plugin name is REPOSITORY[:TAG]`,
      );
    }
  }

  /**
   * Refuses grants that differ from what the remote asks for, comparing every element: dockerd
   * before 29.3.1 skips the first element when it validates grants (CVE-2026-33997), so a wrong
   * grant of the right length would be installed. The engine answers [] also when it cannot fetch
   * the remote; then nothing is checked here, and the pull reports the fetch error, or the engine
   * refuses the grants (lengths differ) and #progress reports PRIVILEGES_MISMATCH.
   */
  async #checkGrants(options: PullOptions, headers: Record<string, string>, what: string): Promise<void> {
    const required = await this.#privileges(options.remote, headers);
    if (required.length === 0 || privilegesEqual(options.privileges, required)) return;
    throw new EngineError(
      'PRIVILEGES_MISMATCH',
      `${what} refused: the plugin asks for ${formatPrivileges(required)} but the grants are ${formatPrivileges(options.privileges)}; ` +
        'grant exactly what it asks for (or set grantAllPrivileges). Nothing was installed',
      { kind: 'stalled' },
    );
  }

  /** X-Registry-Auth for the remote's registry, when there are credentials for it. */
  async #authHeaders(remote: string): Promise<Record<string, string>> {
    const host = parseReference(remote).domain;
    const credentials = await this.#credentials(host);
    if (credentials === undefined) return {};
    return { 'X-Registry-Auth': encodeRegistryAuth(credentials, authKeyFor(host)) };
  }

  /**
   * Runs a pull or upgrade and turns a failure, in the status or in the stream, into PULL_FAILED
   * (PRIVILEGES_MISMATCH when the engine refused the grants, as the embedded store reports it).
   */
  async #progress(
    verb: 'pull' | 'upgrade',
    name: string,
    options: PullOptions,
    headers: Record<string, string>,
    path: string,
    query: Record<string, string>,
  ): Promise<void> {
    let failure: string | undefined;
    const what =
      verb === 'pull' ? `pulling ${options.remote} as ${name}` : `upgrading ${name} to ${options.remote}`;
    try {
      await this.#engine.stream(
        'POST',
        path,
        {
          query,
          headers,
          json: grantsBody(options.privileges),
          timeoutMs: this.#pullTimeoutMs,
          idleTimeoutMs: this.#pullIdleTimeoutMs,
        },
        (message) => {
          failure ??= streamError(message);
          if (options.onProgress !== undefined) {
            const event = progressOf(message);
            if (event !== undefined) options.onProgress(event);
          }
        },
      );
    } catch (error) {
      if (!(error instanceof EngineError)) throw error;
      if (verb === 'upgrade' && error.status === 409) {
        throw new EngineError(
          'PLUGIN_ENABLED',
          `cannot upgrade ${name} while it is enabled; disable it first`,
          {
            kind: 'waiting',
            status: 409,
            cause: error,
          },
        );
      }
      if (verb === 'upgrade' && error.status === 404 && /plugin .*not found/i.test(error.message)) {
        throw new EngineError('NOT_FOUND', `cannot upgrade ${name}: it is not installed`, {
          kind: 'stalled',
          status: 404,
          cause: error,
        });
      }
      if (verb === 'pull' && error.status === 400 && /already exists/i.test(error.message)) {
        // a race with another installer: the next pass lists the plugin and does not pull again
        throw new EngineError(
          'PLUGIN_EXISTS',
          `cannot pull ${options.remote} as ${name}: a plugin with that name is already installed`,
          {
            kind: 'transient',
            status: 400,
            cause: error,
          },
        );
      }
      if (error.status === undefined && error.code !== 'ENGINE_TIMEOUT') throw error;
      throw new EngineError('PULL_FAILED', `${what} failed: ${error.message}`, {
        kind: error.code === 'ENGINE_TIMEOUT' ? 'transient' : pullFailureKind(error.message),
        ...(error.status !== undefined ? { status: error.status } : {}),
        cause: error,
      });
    }
    if (failure !== undefined) {
      if (/incorrect privileges/i.test(failure)) {
        throw new EngineError(
          'PRIVILEGES_MISMATCH',
          `${what} refused by the engine (${failure}): the grants are ${formatPrivileges(options.privileges)}; grant exactly what the plugin asks for (or set grantAllPrivileges)`,
          { kind: 'stalled', status: 200 },
        );
      }
      throw new EngineError('PULL_FAILED', `${what} failed: ${failure}`, {
        kind: pullFailureKind(failure),
        status: 200,
      });
    }
  }
}

/**
 * Connects to the Docker engine (see connectEngine for the address rules) and returns a store bound
 * to it. Without `credentials`, registry credentials come from the Docker client configuration
 * found from `env`.
 */
export async function connectDockerStore(options: DockerStoreOptions = {}): Promise<DockerStore> {
  const env = options.env ?? process.env;
  const engine = await connectEngine({ ...options, env });
  return new DockerStore(engine, {
    credentials: options.credentials ?? ((host) => resolveCredentials(host, { env })),
    pullTimeoutMs: options.pullTimeoutMs ?? 30 * 60_000,
    pullIdleTimeoutMs: options.pullIdleTimeoutMs ?? 5 * 60_000,
    ...(options.pluginSocketsRoot !== undefined ? { pluginSocketsRoot: options.pluginSocketsRoot } : {}),
    ...(options.usageTtlMs !== undefined ? { usageTtlMs: options.usageTtlMs } : {}),
  });
}

export { capabilityOf, toInstalledPlugin };

/**
 * What the engine is asked to pull: the mirror's reference when there is one. The engine records it
 * as the plugin's reference (it has no other), and the caller maps it back to the declared remote.
 */
function engineTarget(options: PullOptions): PullOptions {
  return options.from === undefined ? options : { remote: options.from, privileges: options.privileges };
}
