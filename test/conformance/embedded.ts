/**
 * Opens a real embedded store for integration tests: a temp root, the real RuncRuntime with a
 * private runc state root, and its own sockets and discovery directories under a short temp dir in
 * /run — never dockerd's /run/docker/plugins — and a RegistryClient (loopback registries are spoken
 * to over plain http). `cleanup` removes every plugin through the store (so runc containers are
 * stopped and deleted by the store itself), closes everything and deletes the temp dirs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { RegistryClient } from '../../controller/registry/client.ts';
import { RuncRuntime } from '../../controller/store/embedded/runc.ts';
import { openEmbeddedStore } from '../../controller/store/embedded/store.ts';
import type { EmbeddedStore } from '../../controller/store/embedded/store.ts';

/** An embedded store on temp dirs, and how to reach its plugins' sockets. */
export interface TempEmbeddedStore {
  store: EmbeddedStore;
  runtime: RuncRuntime;
  client: RegistryClient;
  /** the store root */
  root: string;
  /** host directory of a plugin's sockets (mounted at /run/docker/plugins inside it) */
  socketDir(id: string): string;
  /** where `<name>.sock` discovery links go */
  discoveryDir: string;
  /** removes every plugin (force), closes the store, runtime and client, deletes the temp dirs */
  cleanup(): Promise<void>;
}

/** Opens an embedded store on fresh temp dirs (see the module comment). Needs root and runc. */
export async function openTempEmbeddedStore(label: string): Promise<TempEmbeddedStore> {
  const logger = pino({ level: process.env['PLUGCTL_TEST_LOG'] ?? 'silent' });
  // unix socket paths are limited to 107 bytes: <short>/s/<64-hex id>/plugind.sock fits
  const short = await mkdtemp('/run/pct-');
  const work = await mkdtemp(join(tmpdir(), `plugctl-${label}-`));
  const discoveryDir = join(short, 'd');
  const runtime = new RuncRuntime({
    logger,
    runcRoot: join(short, 'runc'),
    socketsRoot: join(short, 's'),
    discoveryDir,
    pollMs: 100,
  });
  const client = new RegistryClient({ credentials: async () => undefined });
  const root = join(work, 'root');
  let store: EmbeddedStore;
  try {
    store = await openEmbeddedStore({
      root,
      runtime,
      registry: client,
      logger,
      runDir: join(short, 'r'),
      stopGraceMs: 5000,
    });
  } catch (error) {
    await runtime.close();
    await client.close();
    await rm(short, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
    throw error;
  }
  return {
    store,
    runtime,
    client,
    root,
    discoveryDir,
    socketDir: (id) => runtime.socketDir(id),
    async cleanup() {
      try {
        for (const plugin of await store.list().catch(() => [])) {
          await store.remove(plugin.id, true);
        }
      } finally {
        await store.close();
        await runtime.close();
        await client.close();
        await rm(short, { recursive: true, force: true });
        await rm(work, { recursive: true, force: true });
      }
    },
  };
}
