/**
 * What every command shares: global options, the logger, and the store, built lazily so that a
 * command that never talks to the engine never loads undici.
 */
import type { Logger, LevelWithSilent } from 'pino';
import { createLogger } from '../observe/logger.ts';
import type { Store } from '../store/store.ts';

/** Global options, as parsed from the command line. */
export interface GlobalOptions {
  dockerHost?: string;
  stateDir: string;
  logLevel: LevelWithSilent;
  nodeLabels?: string;
}

/** Output streams, injected so commands can be run in-process by tests. */
export interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** A command's environment. `openStore` connects on first use and is closed by `close`. */
export interface CommandContext {
  options: GlobalOptions;
  logger: Logger;
  io: Output;
  openStore(): Promise<Store>;
  close(): Promise<void>;
}

/** Builds a context from global options. */
export function createContext(options: GlobalOptions, io: Output, env: NodeJS.ProcessEnv): CommandContext {
  const logger = createLogger({ level: options.logLevel });
  let store: Promise<Store> | undefined;
  return {
    options,
    logger,
    io,
    openStore() {
      store ??= import('../store/docker/store.ts').then(({ connectDockerStore }) =>
        connectDockerStore({ host: options.dockerHost, env }),
      );
      return store;
    },
    async close() {
      if (store !== undefined) await (await store.catch(() => undefined))?.close();
    },
  };
}
