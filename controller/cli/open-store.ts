/**
 * Chooses and opens the plugin store a command works on: the Docker Engine when one is configured
 * or its default socket exists, otherwise plugctl's embedded store (moby's layout under --root,
 * plugins run with runc). Heavy modules are imported only for the store that is used.
 */
import { existsSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';
import type { RegistryClient } from '../registry/client.ts';
import type { Credentials } from '../registry/credentials.ts';
import type { Store } from '../store/store.ts';

/** Which store; `auto` picks docker when an engine is configured or present, else embedded. */
export type StoreKind = 'auto' | 'docker' | 'embedded';

/** The default Docker socket, whose presence makes `auto` choose the docker store. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** Resolves `auto` the way docs/usage.md (Stores) documents it. */
export function chooseStore(
  kind: StoreKind,
  dockerHost: string | undefined,
  env: NodeJS.ProcessEnv,
  socketExists: (path: string) => boolean = existsSync,
): 'docker' | 'embedded' {
  if (kind !== 'auto') return kind;
  if (dockerHost !== undefined || (env.DOCKER_HOST ?? '') !== '') return 'docker';
  return socketExists(DEFAULT_DOCKER_SOCKET) ? 'docker' : 'embedded';
}

/** What opening a store needs. */
export interface OpenStoreOptions {
  kind: 'docker' | 'embedded';
  dockerHost?: string;
  root: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  registry: () => Promise<RegistryClient>;
  /** credentials by registry host for the engine's pulls (default: the Docker credential files) */
  credentials?: (host: string) => Promise<Credentials | undefined>;
  /** overall deadline of one pull of the embedded store, ms (default DEFAULT_PULL_TIMEOUT_MS) */
  pullTimeoutMs?: number;
  onRequest?: (method: string, path: string, outcome: number | string) => void;
  /**
   * Only reads (get, diff): the embedded store is opened read-only, so it starts none of the
   * enabled plugins it finds (a plugins directory of a stopped dockerd stays dockerd's) and works
   * beside a controller that holds the root. The docker store is the same either way.
   */
  readOnly?: boolean;
}

/** Opens the store; closing the returned store also releases what was opened for it. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  if (options.kind === 'docker') {
    const { connectDockerStore } = await import('../store/docker/store.ts');
    return connectDockerStore({
      host: options.dockerHost,
      env: options.env,
      onRequest: options.onRequest,
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    });
  }
  const [{ openEmbeddedStore }, { RuncRuntime }] = await Promise.all([
    import('../store/embedded/store.ts'),
    import('../store/embedded/runc.ts'),
  ]);
  const runtime = new RuncRuntime({ logger: options.logger.child({ component: 'runc' }) });
  const store = await openEmbeddedStore({
    root: options.root,
    runtime,
    registry: await options.registry(),
    logger: options.logger.child({ component: 'embedded-store' }),
    reclaim: minorGc(),
    ...(options.pullTimeoutMs !== undefined ? { pullTimeoutMs: options.pullTimeoutMs } : {}),
    ...(options.readOnly === true ? { readOnly: true } : {}),
  });
  const close = store.close.bind(store);
  store.close = async () => {
    await close();
    await runtime.close();
  };
  return store;
}

/**
 * A minor garbage collection, used every few MiB of a pull: the pull's dead buffers are then freed
 * as it goes and its peak memory stays near 100 MB. The launcher cannot pass --expose-gc, so the
 * flag is set at run time for this one function.
 */
function minorGc(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
    return () => gc({ type: 'minor' });
  } catch {
    return undefined;
  }
}
