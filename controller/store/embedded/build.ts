/**
 * Building a plugin from a context and pushing a plugin to a registry, as `docker plugin create`
 * and `docker plugin push` do (moby's CreateFromContext, Push, buildManifest and writeManifest in
 * plugin/backend_linux.go):
 *
 * - A context is a directory holding `config.json` and `rootfs/`, or a tar of such a directory
 *   (a file path or a stream; gzip-compressed or not). As in moby's splitConfigRootFSFromTar, tar
 *   entry names are cleaned, a leading `/` dropped, `config.json` read, everything under `rootfs/`
 *   re-rooted (hardlink targets too) and every other entry ignored.
 * - The rootfs becomes one gzip layer. Its diff ID is the digest of the uncompressed tar, as image
 *   specs define it (moby writes the compressed digest there; dockerd never checks diff IDs of
 *   plugins, so both pull everywhere).
 * - The config blob is the config as dockerd stores it (types.PluginConfig) with rootfs.diff_ids,
 *   followed by a newline (Go's json.Encoder).
 * - The manifest is moby's: Docker schema 2, config media type application/vnd.docker.plugin.v1+json,
 *   layer media type application/vnd.docker.image.rootfs.diff.tar.gzip.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import type { Header, Pack } from 'tar-stream';
import type { RegistryClient } from '../../registry/client.ts';
import {
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_PLUGIN_CONFIG,
} from '../../registry/manifest.ts';
import type { PluginConfig } from '../../plugin/config.ts';
import {
  addEntry,
  contextError,
  packDirectory,
  parseContextConfig,
  readDirectoryContext,
} from '../context.ts';
import type { ContentStore, Ingest } from './content.ts';
import { EmbeddedStoreError } from './errors.ts';
import { PlugctlError } from '../../errors.ts';
import { mobyConfigJson } from './layout.ts';

/** A create context: a directory or tar file path, or a tar stream (gzip-compressed or not). */
export type CreateContext = string | AsyncIterable<Uint8Array>;

/** The layer and config a context produced; the layer is ingested but not committed. */
export interface BuiltContext {
  config: PluginConfig;
  layer: { digest: string; size: number; diffId: string; ingest: Ingest };
}

/** One descriptor of a manifest, in the field order moby's manifests use. */
export interface ManifestEntry {
  mediaType: string;
  digest: string;
  size: number;
}

const CHUNK = 1024 * 1024;

/** moby's splitConfigRootFSFromTar: `config.json` out, `rootfs/...` re-rooted into `packer`. */
async function splitTarContext(
  source: AsyncIterable<Uint8Array>,
  packer: Pack,
  context: string,
): Promise<Uint8Array | undefined> {
  let config: Uint8Array | undefined;
  let hasRootfs = false;
  const tar = extract();
  // streamx re-emits a destroying error after node's pipeline has settled (see extract.ts)
  tar.on('error', () => undefined);
  tar.on('entry', (header, stream, next) => {
    stream.on('error', () => undefined);
    void (async () => {
      let name = posix.normalize(header.name);
      if (name.startsWith('/')) name = name.slice(1);
      name = name.replace(/\/+$/, '');
      if (name === 'config.json') {
        if (header.type !== 'file' && header.type !== 'contiguous-file') {
          stream.resume();
          throw contextError(
            context,
            `config.json in the archive is a ${header.type ?? 'special entry'}, not a file`,
          );
        }
        const chunks: Uint8Array[] = [];
        for await (const chunk of stream as AsyncIterable<Uint8Array>) chunks.push(chunk);
        config = Buffer.concat(chunks);
        return;
      }
      const parts = name.split('/');
      if (parts[0] !== 'rootfs') {
        stream.resume();
        return;
      }
      hasRootfs = true;
      const rerooted: Header = {
        ...header,
        name: parts.length === 1 ? '.' : posix.normalize(parts.slice(1).join('/')),
      };
      const linkname = header.linkname ?? '';
      if (header.type === 'link' && linkname.toLowerCase().startsWith('rootfs/')) {
        rerooted.linkname = linkname.slice('rootfs/'.length);
      }
      if (header.type === 'file' || header.type === 'contiguous-file') {
        await addEntry(packer, rerooted, Readable.from(stream as AsyncIterable<Uint8Array>));
      } else {
        stream.resume();
        await addEntry(packer, rerooted);
      }
    })().then(
      () => next(),
      (error: unknown) => next(error instanceof Error ? error : new Error(String(error))),
    );
  });
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next();
  const chunks = async function* (): AsyncGenerator<Uint8Array> {
    if (first.done === true) return;
    yield first.value;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  };
  const gzipped = first.done !== true && first.value[0] === 0x1f && first.value[1] === 0x8b;
  try {
    if (gzipped) await pipeline(chunks(), createGunzip({ chunkSize: CHUNK }), tar);
    else await pipeline(chunks(), tar);
  } catch (error) {
    if (error instanceof PlugctlError) throw error;
    throw contextError(context, `is not a readable tar archive (${(error as Error).message})`, error);
  }
  if (!hasRootfs)
    throw contextError(context, 'has no rootfs/ directory; a plugin context holds config.json and rootfs/');
  packer.finalize();
  return config;
}

/**
 * Turns `context` into a gzip layer blob (ingested into `content`, not committed) and the plugin
 * config. Throws CONTEXT_INVALID when config.json or rootfs/ is missing or the config is invalid.
 */
export async function buildContext(context: CreateContext, content: ContentStore): Promise<BuiltContext> {
  const label = typeof context === 'string' ? context : 'stream';
  const packer = pack();
  packer.on('error', () => undefined);
  const ingest = await content.ingest();
  const layerHash = createHash('sha256');
  const diffHash = createHash('sha256');
  const hashTar = async function* (input: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
    for await (const chunk of input) {
      const bytes = chunk as Uint8Array;
      diffHash.update(bytes);
      yield bytes;
    }
  };
  const toIngest = async (input: AsyncIterable<Uint8Array>): Promise<void> => {
    for await (const chunk of input) {
      layerHash.update(chunk);
      await ingest.write(chunk);
    }
  };
  const packed = pipeline(packer, hashTar, createGzip({ chunkSize: CHUNK }), toIngest);
  packed.catch(() => undefined);
  try {
    let configBytes: Uint8Array | undefined;
    if (typeof context === 'string') {
      const stats = await stat(context).catch((error: unknown) => {
        throw contextError(context, `cannot be read (${(error as Error).message})`, error);
      });
      if (stats.isDirectory()) {
        configBytes = await readDirectoryContext(context);
        await packDirectory(join(context, 'rootfs'), packer);
        packer.finalize();
      } else {
        configBytes = await splitTarContext(
          createReadStream(context, { highWaterMark: CHUNK }),
          packer,
          context,
        );
      }
    } else {
      configBytes = await splitTarContext(context, packer, label);
    }
    if (configBytes === undefined)
      throw contextError(label, 'has no config.json; a plugin context holds config.json and rootfs/');
    const config = parseContextConfig(configBytes, label);
    await packed;
    await ingest.finish();
    return {
      config,
      layer: {
        digest: `sha256:${layerHash.digest('hex')}`,
        size: ingest.size,
        diffId: `sha256:${diffHash.digest('hex')}`,
        ingest,
      },
    };
  } catch (error) {
    packer.destroy();
    await packed.catch(() => undefined);
    await ingest.abort();
    throw error;
  }
}

/** The config blob `docker plugin create` writes: the stored config with its diff IDs, and a newline. */
export function configBlob(config: PluginConfig, diffIds: string[], dockerVersion?: string): Uint8Array {
  const withRootfs: PluginConfig = { ...config, rootfs: { type: 'layers', diff_ids: diffIds } };
  return Buffer.from(`${JSON.stringify(mobyConfigJson(withRootfs, dockerVersion))}\n`, 'utf8');
}

/**
 * moby's plugin manifest bytes (writeManifest): `schemaVersion`, `config`, `layers`, then
 * `mediaType`, compact.
 */
export function pluginManifest(
  config: { digest: string; size: number },
  layers: { digest: string; size: number }[],
): Uint8Array {
  const entry = (mediaType: string, d: { digest: string; size: number }): ManifestEntry => ({
    mediaType,
    digest: d.digest,
    size: d.size,
  });
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      config: entry(MEDIA_TYPE_PLUGIN_CONFIG, config),
      layers: layers.map((layer) => entry(MEDIA_TYPE_DOCKER_LAYER_GZIP, layer)),
      mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
    }),
    'utf8',
  );
}

/** The blobs a manifest lists (config first), or undefined when it is not an image manifest. */
export function manifestBlobs(bytes: Uint8Array): { mediaType: string; blobs: ManifestEntry[] } | undefined {
  try {
    const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
      mediaType?: unknown;
      config?: Partial<ManifestEntry>;
      layers?: Partial<ManifestEntry>[];
    };
    const pick = (d: Partial<ManifestEntry> | undefined): ManifestEntry | undefined =>
      d !== undefined &&
      typeof d.digest === 'string' &&
      typeof d.size === 'number' &&
      typeof d.mediaType === 'string'
        ? { mediaType: d.mediaType, digest: d.digest, size: d.size }
        : undefined;
    const config = pick(json.config);
    const layers = (json.layers ?? []).map(pick);
    if (config === undefined || layers.some((layer) => layer === undefined)) return undefined;
    return {
      mediaType: typeof json.mediaType === 'string' ? json.mediaType : MEDIA_TYPE_DOCKER_MANIFEST,
      blobs: [config, ...(layers as ManifestEntry[])],
    };
  } catch {
    return undefined;
  }
}

/** Result of a push. */
export interface PushResult {
  /** `registry/repository:tag` pushed to */
  remote: string;
  tag: string;
  /** digest of the manifest in the registry */
  digest: string;
  size: number;
}

/**
 * Uploads every blob of `manifestBytes` from `content` (a blob the registry has is not sent again)
 * and puts the manifest under `tag`. Throws BLOB_MISSING naming the digest when the content store
 * lacks one; registry errors propagate.
 */
export async function pushManifestAndBlobs(options: {
  registry: RegistryClient;
  content: ContentStore;
  repo: { domain: string; path: string };
  tag: string;
  manifestBytes: Uint8Array;
  plugin: string;
  signal?: AbortSignal;
}): Promise<{ digest: string; size: number }> {
  const { registry, content, repo, tag, manifestBytes } = options;
  const parsed = manifestBlobs(manifestBytes);
  if (parsed === undefined) {
    throw new EmbeddedStoreError(
      'BLOB_MISSING',
      `plugin ${options.plugin}: its stored manifest is unreadable; pull or create it again`,
    );
  }
  const callOptions = options.signal !== undefined ? { signal: options.signal } : {};
  for (const blob of parsed.blobs) {
    const info = await content.info(blob.digest);
    if (info === undefined || info.size !== blob.size) {
      throw new EmbeddedStoreError(
        'BLOB_MISSING',
        `plugin ${options.plugin}: blob ${blob.digest} is not in the store (plugins pulled by dockerd lose their layers to dockerd's GC); pull the plugin again with plugctl, then push`,
      );
    }
    const data =
      blob.size <= CHUNK
        ? ((await content.read(blob.digest)) ?? new Uint8Array())
        : content.openRead(blob.digest);
    await registry.pushBlob(repo, data, blob.digest, blob.size, callOptions);
  }
  const digest = await registry.pushManifest(repo, tag, parsed.mediaType, manifestBytes, callOptions);
  return { digest, size: manifestBytes.byteLength };
}
