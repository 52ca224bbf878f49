/**
 * What every command shares: global options, the logger, and the store, built lazily so that a
 * command that never talks to the engine never loads undici.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PlugctlError } from '../errors.ts';
import type { MirrorConfig } from '../registry/mirrors.ts';
import { SecretKeeper } from '../reconcile/secrets.ts';
import { fileSecretResolver } from '../sources/secret-files.ts';
import type { Logger, LevelWithSilent } from 'pino';
import { parseLabelPairs, type HostLabels } from '../api/labels.ts';
import { createLogger } from '../observe/logger.ts';
import type { HostLabelSources } from '../sources/host-labels.ts';
import type { RegistryClient } from '../registry/client.ts';
import type { Credentials } from '../registry/credentials.ts';
import type { StoreKind } from './open-store.ts';
import type { RemoteInspector } from '../registry/inspect.ts';
import type { PluginReader, Store } from '../store/store.ts';

/** Global options, as parsed from the command line. */
export interface GlobalOptions {
  dockerHost?: string;
  /** which store to work on (auto: docker when an engine is configured or present, else embedded) */
  store: StoreKind;
  /** the embedded store's root */
  root: string;
  /** registries that may be reached over plain http besides loopback ones */
  insecureRegistry: string[];
  /** the registry mirrors file, when named explicitly (default: <state-dir>/registries.yaml if present) */
  registries?: string;
  /** `REGISTRY=MIRROR[,MIRROR...]` values of --registry-mirror */
  registryMirror: string[];
  /** directories valueFrom.file secrets may be read from */
  secretsDir: string[];
  stateDir: string;
  /** overall deadline of one plugin's registry lookup and of its pull, ms */
  pullTimeout: number;
  /** absent: the command's own default (info for `run`, error for the others) */
  logLevel?: LevelWithSilent;
  /** one-off label overrides (`k=v,...`) */
  nodeLabels?: string;
  /** the persistent labels file, when named explicitly */
  labelsFile?: string;
}

/** Output streams, injected so commands can be run in-process by tests. */
export interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
  /** the whole of standard input, for `-f -`; absent where there is none */
  readStdin?: () => Promise<string>;
}

/** Observers a long-running command attaches to the store. */
export interface StoreHooks {
  onRequest?: (method: string, path: string, outcome: number | string) => void;
  /** the command only reads: the embedded store is opened read-only (starts nothing, takes no lock) */
  readOnly?: boolean;
  /**
   * registry credentials per registry host, for the store and the registry client (default: the
   * Docker client configuration); `plugctl run --kube` puts pull Secrets in front of it
   */
  credentials?: (registryHost: string) => Promise<Credentials | undefined>;
}

/** A command's environment. `openStore` connects on first use and is closed by `close`. */
export interface CommandContext {
  options: GlobalOptions;
  /** the environment the command runs in (NO_COLOR, TERM, ...) */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  io: Output;
  /** Connects on first use; `onRequest` (first caller's) observes every engine request, for metrics. */
  openStore(options?: StoreHooks): Promise<Store>;
  /** Resolves secret env values (file mode: files under --secrets-dir), with the state dir's salt. */
  secrets(): SecretKeeper;
  /** The registry inspector for the opened store (it must know whether the store takes digests). */
  openInspector(): Promise<RemoteInspector>;
  /** Where this host's labels come from (the engine of `reader`, the labels file, --node-labels). */
  labelSources(reader: Pick<PluginReader, 'engineLabels'>): HostLabelSources;
  /** This host's labels, read from every source once (see labelSources). */
  hostLabels(reader: Pick<PluginReader, 'engineLabels'>): Promise<HostLabels>;
  close(): Promise<void>;
}

/**
 * Builds a context from global options. `defaultLogLevel` applies when --log-level is not given;
 * pretty logs are coloured unless NO_COLOR is set to anything but the empty string (no-color.org).
 */
export function createContext(
  options: GlobalOptions,
  io: Output,
  env: NodeJS.ProcessEnv,
  defaultLogLevel: LevelWithSilent = 'error',
): CommandContext {
  const logger = createLogger({
    level: options.logLevel ?? defaultLogLevel,
    color: (env['NO_COLOR'] ?? '') === '',
  });
  let store: Promise<Store> | undefined;
  let registry: Promise<RegistryClient> | undefined;
  let mirrors: Promise<MirrorConfig> | undefined;
  let keeper: SecretKeeper | undefined;
  let credentials: StoreHooks['credentials'];
  return {
    options,
    env,
    logger,
    io,
    secrets() {
      keeper ??= new SecretKeeper(options.stateDir, fileSecretResolver({ allowedDirs: options.secretsDir }));
      return keeper;
    },
    openStore(hooks: StoreHooks = {}) {
      const { credentials: hookCredentials, ...otherHooks } = hooks;
      credentials ??= hookCredentials;
      store ??= import('./open-store.ts').then(({ chooseStore, openStore }) =>
        openStore({
          kind: chooseStore(options.store, options.dockerHost, env),
          dockerHost: options.dockerHost,
          root: options.root,
          env,
          logger,
          registry: () => registryClient(credentials),
          credentials: async (host: string) => (await credentialLookup(credentials))(host),
          pullTimeoutMs: options.pullTimeout,
          ...otherHooks,
        }),
      );
      return store;
    },
    async openInspector() {
      const opened = await this.openStore();
      // the store's credentials: the inspector reads the same private registries the store pulls from
      const client = await registryClient(credentials);
      const { createRemoteInspector } = await import('../registry/inspect.ts');
      return createRemoteInspector(
        client,
        { acceptsDigests: opened.acceptsDigestReferences(), description: opened.describe() },
        { timeoutMs: options.pullTimeout, mirrors: await mirrorConfig() },
      );
    },
    labelSources(reader) {
      return {
        engine: reader,
        labelsFile: options.labelsFile ?? join(options.stateDir, 'labels'),
        labelsFileRequired: options.labelsFile !== undefined,
        overrides: parseLabelPairs(options.nodeLabels),
      };
    },
    async hostLabels(reader) {
      const { resolveHostLabels } = await import('../sources/host-labels.ts');
      return resolveHostLabels(this.labelSources(reader));
    },
    async close() {
      if (store !== undefined) await (await store.catch(() => undefined))?.close();
      if (registry !== undefined) await (await registry).close();
    },
  };

  /**
   * One registry client per command, shared by the store and the inspector; the first caller's
   * `base` credentials (the store's, which is opened first) are the ones it keeps.
   */
  function registryClient(base: StoreHooks['credentials'] | undefined): Promise<RegistryClient> {
    registry ??= Promise.all([import('../registry/client.ts'), mirrorConfig(), credentialLookup(base)]).then(
      async ([{ RegistryClient }, config, credentials]) => {
        const { insecureMirrorHosts, mirrorCas } = await import('../registry/mirrors.ts');
        return new RegistryClient({
          insecureRegistries: [...options.insecureRegistry, ...insecureMirrorHosts(config)],
          trustedCas: mirrorCas(config),
          credentials,
        });
      },
    );
    return registry;
  }

  /**
   * The mirrors' own credentials first, then `base` (pull Secrets in Kubernetes mode), else the
   * Docker credential files.
   */
  async function credentialLookup(
    base: StoreHooks['credentials'] | undefined,
  ): Promise<(host: string) => Promise<Credentials | undefined>> {
    const [{ withMirrorCredentials }, config] = await Promise.all([
      import('../registry/mirrors.ts'),
      mirrorConfig(),
    ]);
    return withMirrorCredentials(
      config,
      base ??
        (async (host) => (await import('../registry/credentials.ts')).resolveCredentials(host, { env })),
    );
  }

  /**
   * registries.yaml (--registries, else the state directory's when it exists) with the
   * --registry-mirror flags over it; read once per command.
   */
  function mirrorConfig(): Promise<MirrorConfig> {
    mirrors ??= (async () => {
      const { mergeMirrors, parseMirrorFlags, parseRegistriesYaml } = await import('../registry/mirrors.ts');
      const file = options.registries ?? join(options.stateDir, 'registries.yaml');
      let text: string | undefined;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
        if (!missing || options.registries !== undefined) {
          throw new PlugctlError('MIRROR_CONFIG_INVALID', `cannot read ${file}: ${(error as Error).message}`);
        }
      }
      const fromFile = text === undefined ? new Map() : parseRegistriesYaml(text, file);
      return mergeMirrors(fromFile, parseMirrorFlags(options.registryMirror));
    })();
    return mirrors;
  }
}
