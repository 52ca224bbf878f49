/**
 * What the hostile suite drives plugctl with: registries that lie (small node:http servers on
 * 127.0.0.1 speaking enough of the OCI distribution API to serve plugins, each route replaceable by
 * a hostile behaviour), plugins built for them, the real embedded store on a temp root, and a
 * fingerprint of every file a hostile input could reach outside the store root, taken before and
 * after, to prove nothing there changed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parsePluginConfig } from '../../controller/plugin/config.ts';
import { RegistryClient } from '../../controller/registry/client.ts';
import type { RegistryClientOptions } from '../../controller/registry/client.ts';
import { MEDIA_TYPE_DOCKER_MANIFEST, digestOf } from '../../controller/registry/manifest.ts';
import { configBlob, pluginManifest } from '../../controller/store/embedded/build.ts';
import { openEmbeddedStore } from '../../controller/store/embedded/store.ts';
import type { EmbeddedStore, EmbeddedStoreOptions } from '../../controller/store/embedded/store.ts';
import { idleRuntime } from '../idle-runtime.ts';
import { tarOf, tgzOf } from '../unit/store/embedded/helpers.ts';
import type { TarEntry } from '../unit/store/embedded/helpers.ts';
import { volConfig } from '../conformance/fixtures.ts';

/** A request as the registry saw it. */
export interface SeenRequest {
  method: string;
  url: string;
  authorization: string | undefined;
}

/**
 * A hostile behaviour: takes over the request when it returns true (it must then answer or hold
 * the response), leaves it to the honest registry otherwise.
 */
export type Behaviour = (req: IncomingMessage, res: ServerResponse) => boolean;

/** What putPlugin stored. */
export interface StoredPlugin {
  remote: string;
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
  diffIds: string[];
}

/** A registry on 127.0.0.1 that serves what it is given, unless a behaviour says otherwise. */
export class LyingRegistry {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #blobs = new Map<string, Uint8Array>();
  readonly #manifests = new Map<string, { bytes: Uint8Array; digest: string }>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly requests: SeenRequest[] = [];
  behaviour: Behaviour | undefined;
  host = '';

  private constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts a registry on an ephemeral loopback port. */
  static async start(): Promise<LyingRegistry> {
    const registry = new LyingRegistry();
    await new Promise<void>((resolve) => registry.#server.listen(0, '127.0.0.1', resolve));
    registry.host = `127.0.0.1:${(registry.#server.address() as AddressInfo).port}`;
    return registry;
  }

  /**
   * Stores a plugin under `repo:tag`: one gzip layer per entry list, the vol fixture's config (with
   * `diffIds`, default the layers' true uncompressed digests).
   */
  async putPlugin(
    repo: string,
    tag: string,
    layers: TarEntry[][],
    diffIds?: string[],
  ): Promise<StoredPlugin> {
    const tars = await Promise.all(layers.map((entries) => tarOf(entries)));
    const blobs = await Promise.all(layers.map((entries) => tgzOf(entries)));
    const trueDiffIds = tars.map((tar) => digestOf(tar));
    const ids = diffIds ?? trueDiffIds;
    const config = configBlob(parsePluginConfig(volConfig(tag), `${repo}:${tag}`), ids);
    const configDigest = digestOf(config);
    this.#blobs.set(configDigest, config);
    const layerDigests = blobs.map((blob) => {
      const digest = digestOf(blob);
      this.#blobs.set(digest, blob);
      return digest;
    });
    const manifest = pluginManifest(
      { digest: configDigest, size: config.byteLength },
      blobs.map((blob, i) => ({ digest: layerDigests[i] as string, size: blob.byteLength })),
    );
    const manifestDigest = digestOf(manifest);
    this.#manifests.set(`${repo}:${tag}`, { bytes: manifest, digest: manifestDigest });
    this.#manifests.set(`${repo}@${manifestDigest}`, { bytes: manifest, digest: manifestDigest });
    return {
      remote: `${this.host}/${repo}:${tag}`,
      manifestDigest,
      configDigest,
      layerDigests,
      diffIds: ids,
    };
  }

  /** Sends `bytes` one byte every `everyMs` on `res` (headers first), until it is done or closed. */
  drip(
    res: ServerResponse,
    bytes: Uint8Array,
    everyMs: number,
    headers: Record<string, string | number> = {},
  ): void {
    res.writeHead(200, { 'content-length': bytes.byteLength, ...headers });
    let sent = 0;
    const timer = setInterval(() => {
      if (res.destroyed || sent >= bytes.byteLength) {
        clearInterval(timer);
        this.#timers.delete(timer);
        if (!res.destroyed) res.end();
        return;
      }
      res.write(bytes.subarray(sent, sent + 1));
      sent++;
    }, everyMs);
    this.#timers.add(timer);
  }

  /** The manifest stored under `repo:tag`. */
  manifest(repoAndRef: string): { bytes: Uint8Array; digest: string } {
    const found = this.#manifests.get(repoAndRef);
    assert.ok(found !== undefined, `no manifest ${repoAndRef}`);
    return found;
  }

  /** A stored blob's bytes. */
  blob(digest: string): Uint8Array {
    const found = this.#blobs.get(digest);
    assert.ok(found !== undefined, `no blob ${digest}`);
    return found;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
    });
    if (this.behaviour?.(req, res) === true) return;
    const url = req.url ?? '';
    if (url === '/v2/' || url === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url);
    if (manifest !== null) {
      const ref = manifest[2] as string;
      const found = this.#manifests.get(`${manifest[1]}${ref.includes(':') ? '@' : ':'}${ref}`);
      if (found === undefined) {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
        return;
      }
      res.writeHead(200, {
        'content-type': MEDIA_TYPE_DOCKER_MANIFEST,
        'content-length': found.bytes.byteLength,
        'docker-content-digest': found.digest,
      });
      res.end(req.method === 'HEAD' ? undefined : found.bytes);
      return;
    }
    const blob = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url);
    const bytes = blob === null ? undefined : this.#blobs.get(blob[1] as string);
    if (bytes === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.byteLength });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  }

  /** Stops serving: open connections (dripping ones too) are cut. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** The layer of a good plugin: a binary, a config file and a symlink. */
export const GOOD_LAYER: TarEntry[] = [
  { name: 'bin/', type: 'directory' },
  { name: 'bin/plugind', content: '#!/bin/sh\n', mode: 0o755 },
  { name: 'etc/', type: 'directory' },
  { name: 'etc/hosts', content: '' },
  { name: 'etc/self', type: 'symlink', linkname: '/etc' },
];

/** The privileges volConfig asks for. */
export const VOL_PRIVILEGES = [{ name: 'network', value: ['host'] }];

/** A temp directory for one test file: `root/` is the store root, `outside/` a decoy beside it. */
export interface Sandbox {
  dir: string;
  root: string;
  outside: string;
  remove(): Promise<void>;
}

/** Makes a sandbox with a decoy `outside/` tree that hostile inputs aim at. */
export async function sandbox(name: string): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), `plugctl-hostile-${name}-`));
  const outside = join(dir, 'outside');
  await mkdir(join(outside, 'etc'), { recursive: true });
  await writeFile(join(outside, 'etc', 'shadow'), 'root:$6$decoy$notarealhash:19000:0:99999:7:::\n', {
    mode: 0o600,
  });
  await writeFile(join(outside, 'keep'), 'must not change\n');
  return { dir, root: join(dir, 'root'), outside, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A registry client for hostile registries: few, fast retries. */
export function hostileClient(options: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({
    retries: 1,
    retryBaseMs: 10,
    retryMaxMs: 100,
    credentials: async () => undefined,
    ...options,
  });
}

/** The real embedded store on `root`, running nothing (the idle runtime). */
export function openStore(
  root: string,
  registry: RegistryClient,
  options: Partial<EmbeddedStoreOptions> = {},
): Promise<EmbeddedStore> {
  return openEmbeddedStore({
    root,
    runtime: idleRuntime,
    registry,
    logger: pino({ level: 'silent' }),
    runDir: join(root, '..', 'run'),
    ...options,
  });
}

const SKIPPED_DIRS = new Set(['node_modules', '.git', '.tmp', 'dist']);

/**
 * A fingerprint of every file under `paths`: type, mode, size and content hash (link targets for
 * symlinks), sorted. Directories named in SKIPPED_DIRS are not entered (they are not reachable by
 * anything the suite feeds plugctl, and change under other tools).
 */
export async function fingerprint(paths: readonly string[]): Promise<string> {
  const lines: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const info = await lstat(path).catch(() => undefined);
    if (info === undefined) {
      lines.push(`- ${path}`);
      return;
    }
    const mode = (info.mode & 0o7777).toString(8);
    if (info.isSymbolicLink()) {
      lines.push(`l ${path} ${mode} -> ${await readlink(path)}`);
    } else if (info.isDirectory()) {
      lines.push(`d ${path} ${mode}`);
      for (const name of (await readdir(path)).sort()) {
        if (!SKIPPED_DIRS.has(name)) await walk(join(path, name));
      }
    } else if (info.isFile()) {
      const hash = createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
      lines.push(`f ${path} ${mode} ${info.size} ${hash}`);
    } else {
      lines.push(`? ${path} ${mode}`);
    }
  };
  for (const path of paths) await walk(path);
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/** The repository checkout (where the suite runs) and /etc: what a hostile path or link aims at. */
export const REACHABLE = ['/etc', new URL('../..', import.meta.url).pathname.replace(/\/$/, '')];
