/**
 * What every command shares: global options, the logger, and the store, built lazily so that a
 * command that never talks to the engine never loads undici.
 */
import { join } from 'node:path';
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
  stateDir: string;
  /** overall deadline of one plugin's registry lookup and of its pull, ms */
  pullTimeout: number;
  logLevel: LevelWithSilent;
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
  logger: Logger;
  io: Output;
  /** Connects on first use; `onRequest` (first caller's) observes every engine request, for metrics. */
  openStore(options?: StoreHooks): Promise<Store>;
  /** The registry inspector for the opened store (it must know whether the store takes digests). */
  openInspector(): Promise<RemoteInspector>;
  /** Where this host's labels come from (the engine of `reader`, the labels file, --node-labels). */
  labelSources(reader: Pick<PluginReader, 'engineLabels'>): HostLabelSources;
  /** This host's labels, read from every source once (see labelSources). */
  hostLabels(reader: Pick<PluginReader, 'engineLabels'>): Promise<HostLabels>;
  close(): Promise<void>;
}

/** Builds a context from global options. */
export function createContext(options: GlobalOptions, io: Output, env: NodeJS.ProcessEnv): CommandContext {
  const logger = createLogger({ level: options.logLevel });
  let store: Promise<Store> | undefined;
  let registry: Promise<RegistryClient> | undefined;
  let credentials: StoreHooks['credentials'];
  return {
    options,
    logger,
    io,
    openStore(hooks: StoreHooks = {}) {
      credentials ??= hooks.credentials;
      store ??= import('./open-store.ts').then(({ chooseStore, openStore }) =>
        openStore({
          kind: chooseStore(options.store, options.dockerHost, env),
          dockerHost: options.dockerHost,
          root: options.root,
          env,
          logger,
          registry: () => registryClient(hooks.credentials),
          pullTimeoutMs: options.pullTimeout,
          ...hooks,
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
        { timeoutMs: options.pullTimeout },
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
   * `credentials` (the store's, which is opened first) is the one it keeps.
   */
  function registryClient(credentials: StoreHooks['credentials'] | undefined): Promise<RegistryClient> {
    registry ??= import('../registry/client.ts').then(
      ({ RegistryClient }) =>
        new RegistryClient({
          insecureRegistries: options.insecureRegistry,
          credentials:
            credentials ??
            (async (host) => (await import('../registry/credentials.ts')).resolveCredentials(host, { env })),
        }),
    );
    return registry;
  }
}
