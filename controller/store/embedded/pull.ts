/**
 * Pulling a plugin: what the registry says about a remote (manifest, config, privileges), and the
 * one streaming pass per layer that downloads it, verifies its digest, inflates and unpacks it into
 * a staging rootfs while the compressed bytes are written into a content-store ingest file.
 * Nothing here commits anything: the store commits blobs and publishes the plugin only after every
 * layer has been applied (see store.ts), and discards the staging on any failure.
 */
import { channel } from 'node:diagnostics_channel';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { RegistryClient, ResolvedManifest } from '../../registry/client.ts';
import type { Descriptor } from '../../registry/manifest.ts';
import {
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  digestOf,
} from '../../registry/manifest.ts';
import { parsePluginConfig } from '../../plugin/config.ts';
import { computePrivileges } from '../../plugin/privileges.ts';
import type { PluginConfig } from '../../plugin/config.ts';
import { formatReference, parseReference } from '../../api/reference.ts';
import type { Reference } from '../../api/reference.ts';
import type { PluginPrivilege } from '../../plugin/privileges.ts';
import type { ContentStore, Ingest } from './content.ts';
import { LayerError } from './errors.ts';
import { applyLayer, openLayer, preloadExtraction } from './extract.ts';
import type { ExtractLimits, LayerReport, LayerSink } from './extract.ts';
import type { PullProgress } from '../store.ts';

/** Everything known about a remote plugin before any layer is downloaded. */
export interface RemotePlugin {
  ref: Reference;
  /** the normalised reference, e.g. `127.0.0.1:5000/test/vol:1.0` (moby's PluginReference) */
  remote: string;
  resolved: ResolvedManifest;
  configBytes: Uint8Array;
  configDigest: string;
  config: PluginConfig;
  /** DockerVersion of the config blob, when it has one */
  dockerVersion?: string;
  privileges: PluginPrivilege[];
  /** the manifest's exact bytes when they could be recovered (see recoverManifestBytes) */
  manifestBytes?: Uint8Array;
}

/** Layer media types moby's plugin manager applies (fetch_linux.go applyLayer). */
const LAYER_TYPES: ReadonlySet<string> = new Set([
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  'application/vnd.docker.image.rootfs.diff.tar',
  MEDIA_TYPE_OCI_LAYER_GZIP,
  'application/vnd.oci.image.layer.v1.tar',
]);

/** How many compressed bytes are gathered before they go to zlib and to the ingest file. */
const COALESCE_BYTES = 1024 * 1024;

/**
 * Buffers of COALESCE_BYTES one layer download may fill ahead of the inflater and the ingest
 * file. Enough to keep both busy while the next one fills; every buffer more is a megabyte of
 * peak memory.
 */
const POOL_BUFFERS = 4;

/** The node:diagnostics_channel on which a pull reports its stages (see PullStageEvent). */
export const PULL_STAGES_CHANNEL = 'plugctl:embedded-pull';

/** What a pull reports on PULL_STAGES_CHANNEL: the stage just reached and when. */
export interface PullStageEvent {
  stage: 'remote-start' | 'remote-read' | 'blob-opened' | 'blob-verified' | 'layer-applied' | 'blob-synced';
  /** performance.now() */
  at: number;
  /** the layer, for the blob stages */
  digest?: string;
}

// Stage timestamps for benchmarks and tracing; publishing costs nothing without a subscriber.
const stages = channel(PULL_STAGES_CHANNEL);

function reportStage(stage: PullStageEvent['stage'], digest?: string): void {
  if (!stages.hasSubscribers) return;
  const event: PullStageEvent = { stage, at: performance.now(), ...(digest !== undefined ? { digest } : {}) };
  stages.publish(event);
}

function caseInsensitiveString(json: unknown, key: string): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  let found: unknown;
  for (const [k, v] of Object.entries(json)) if (k.toLowerCase() === key.toLowerCase()) found = v;
  return typeof found === 'string' ? found : undefined;
}

/**
 * The manifest's bytes, which the registry client verifies but does not hand out: re-serialised in
 * the forms real pushers write (moby's plugin push, distribution's schema2 builder, the compact
 * form of plugctl and most tools) and kept only when one hashes to the manifest's digest, so what is
 * stored is exactly what the registry served. Undefined when no form matches (descriptors with
 * annotations or URLs); the store then records the digest without the blob, as dockerd does
 * after its GC, and rebuilds a manifest when pushing.
 */
export function recoverManifestBytes(resolved: ResolvedManifest): Uint8Array | undefined {
  const { manifest } = resolved;
  const plain = (d: Descriptor): { mediaType: string; digest: string; size: number } => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
  });
  const schema2 = (d: Descriptor): { mediaType: string; size: number; digest: string } => ({
    mediaType: d.mediaType,
    size: d.size,
    digest: d.digest,
  });
  const candidates: string[] = [
    // moby's writeManifest: specs.Manifest embedded first, its own mediaType last
    JSON.stringify({
      schemaVersion: 2,
      config: plain(manifest.config),
      layers: manifest.layers.map(plain),
      mediaType: manifest.mediaType,
    }),
    // compact, mediaType second (plugctl, most tools)
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifest.mediaType,
      config: plain(manifest.config),
      layers: manifest.layers.map(plain),
    }),
    // OCI without a mediaType field
    JSON.stringify({ schemaVersion: 2, config: plain(manifest.config), layers: manifest.layers.map(plain) }),
    // distribution's schema2 (json.MarshalIndent with three spaces)
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType: manifest.mediaType,
        config: schema2(manifest.config),
        layers: manifest.layers.map(schema2),
      },
      null,
      3,
    ),
  ];
  for (const text of candidates) {
    const bytes = Buffer.from(text, 'utf8');
    if (digestOf(bytes, resolved.digest) === resolved.digest) return bytes;
  }
  return undefined;
}

/**
 * Resolves `remote` and fetches its config (one manifest HEAD, the manifest and the config blob;
 * no layer): the config parsed as moby does and the privileges it requires. Registry errors
 * propagate unchanged (RegistryError).
 */
export async function readRemote(
  registry: RegistryClient,
  remote: string,
  signal?: AbortSignal,
): Promise<RemotePlugin> {
  const ref = parseReference(remote);
  reportStage('remote-start');
  // a pull unpacks next: its modules load while the registry answers
  preloadExtraction().catch(() => undefined);
  const options = signal !== undefined ? { signal } : {};
  const fetched = await registry.fetchConfig(ref, undefined, options);
  reportStage('remote-read');
  const config = parsePluginConfig(
    fetched.json,
    `${ref.domain}/${ref.path} ${ref.digest ?? ref.tag ?? 'latest'}`,
  );
  const dockerVersion = caseInsensitiveString(fetched.json, 'DockerVersion');
  const manifestBytes = recoverManifestBytes(fetched.resolved);
  return {
    ref,
    remote: formatReference(ref),
    resolved: fetched.resolved,
    configBytes: fetched.bytes,
    configDigest: fetched.descriptor.digest,
    config,
    ...(dockerVersion !== undefined ? { dockerVersion } : {}),
    privileges: computePrivileges(config),
    ...(manifestBytes !== undefined ? { manifestBytes } : {}),
  };
}

/** The layers of a manifest moby would apply, in order; refuses compressions plugctl cannot unpack. */
export function applicableLayers(remote: RemotePlugin, logger?: Pick<Logger, 'warn'>): Descriptor[] {
  const out: Descriptor[] = [];
  for (const layer of remote.resolved.manifest.layers) {
    if (LAYER_TYPES.has(layer.mediaType)) {
      out.push(layer);
    } else if (/zstd/i.test(layer.mediaType)) {
      throw new LayerError(
        'LAYER_UNSUPPORTED',
        `${remote.remote}: layer ${layer.digest} is ${layer.mediaType}; plugctl (like dockerd 20.10) unpacks gzip and plain tar layers only. Push the plugin with gzip layers`,
      );
    } else {
      logger?.warn(
        { remote: remote.remote, digest: layer.digest, mediaType: layer.mediaType },
        `${remote.remote}: skipping manifest entry ${layer.digest} of type ${layer.mediaType}, which is not a layer (dockerd skips it too)`,
      );
    }
  }
  return out;
}

/**
 * Streams one layer blob from the registry into an ingest file and onto the rootfs at once.
 *
 * The network's small chunks (64 KiB) are copied into a few reused 1 MiB buffers; each full
 * buffer is queued to the ingest file and to the inflater, both on the thread pool, and goes back
 * to the pool once both are done with it. While they work, the main thread receives, hashes and
 * copies the next megabyte: the stages overlap instead of taking turns. When no buffer is free
 * the download pauses (TCP backpressure), so memory stays bounded whatever the layer's size, and
 * reusing the same few buffers avoids the page faults and garbage of fresh ones.
 *
 * Resolves when the source ended without error (the registry client's stream ends only after the
 * size and digest matched) and every entry is on disk. By then the ingest file's finish() (flush
 * and fsync) has been started; the caller awaits it before committing. Rejects with the first
 * error; the source is then destroyed and the sink aborted and settled. The caller deletes the
 * ingest and the rootfs. `digest` only names the layer in stage reports.
 */
export function pumpLayer(
  source: Readable,
  ingest: Ingest,
  sink: LayerSink,
  digest?: string,
): Promise<LayerReport> {
  return new Promise<LayerReport>((resolve, reject) => {
    const free: Buffer[] = [];
    let made = 0;
    let current: Buffer | undefined;
    let filled = 0;
    /** bytes received while no buffer was free (at most one network chunk) */
    let pending: Uint8Array | undefined;
    let failed = false;
    let ended = false;

    const take = (): Buffer | undefined => {
      const buffer = free.pop();
      if (buffer !== undefined) return buffer;
      if (made >= POOL_BUFFERS) return undefined;
      made++;
      return Buffer.allocUnsafeSlow(COALESCE_BYTES);
    };

    const fail = (error: unknown): void => {
      if (failed) return;
      failed = true;
      source.destroy();
      sink.abort(error);
      // settles after every file operation in flight, so the caller may delete at once
      sink.done.then(
        () => reject(error),
        (sinkError: unknown) => reject(sinkError),
      );
    };

    /** Hands the filled part of `current` to the ingest file and the inflater. */
    const dispatch = (): void => {
      const buffer = current as Buffer;
      const chunk = filled === COALESCE_BYTES ? buffer : buffer.subarray(0, filled);
      current = undefined;
      filled = 0;
      let holders = 2;
      const release = (): void => {
        if (--holders > 0) return;
        if (failed) return;
        if (ingest.failure !== undefined) {
          fail(ingest.failure);
          return;
        }
        free.push(buffer);
        if (pending !== undefined) {
          const rest = pending;
          pending = undefined;
          copyIn(rest);
          if (pending !== undefined) return;
          if (ended) finish();
          else source.resume();
        }
      };
      ingest.queue(chunk, release);
      sink.write(chunk, release);
    };

    /** Copies `bytes` into pool buffers, dispatching each one that fills; pauses when none is free. */
    const copyIn = (bytes: Uint8Array): void => {
      let offset = 0;
      while (offset < bytes.byteLength) {
        if (current === undefined) {
          current = take();
          if (current === undefined) {
            pending = bytes.subarray(offset);
            source.pause();
            return;
          }
        }
        const n = Math.min(bytes.byteLength - offset, COALESCE_BYTES - filled);
        current.set(bytes.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === COALESCE_BYTES) dispatch();
      }
    };

    /** After the source's end: the last partial buffer goes out, then the sink and ingest finish. */
    const finish = (): void => {
      if (failed || pending !== undefined) return;
      if (current !== undefined && filled > 0) dispatch();
      sink.end();
      // the blob's fsync starts now, overlapping with inflating and writing the last megabytes;
      // the caller awaits ingest.finish() (the same promise) before committing
      ingest.finish().catch(() => undefined);
      sink.done.then(resolve, () => undefined);
    };

    source.on('data', (chunk: Uint8Array) => {
      if (!failed) copyIn(chunk);
    });
    source.once('error', fail);
    source.once('end', () => {
      reportStage('blob-verified', digest);
      // 'end' may come while the last bytes wait for a free buffer (pending): release() finishes then
      ended = true;
      finish();
    });
    sink.done.catch(fail);
  });
}

/** A layer blob written to an ingest file and verified, waiting to be committed. */
export interface StagedBlob {
  digest: string;
  ingest: Ingest;
  /** resolves when the ingest file is fsynced and closed */
  finished: Promise<void>;
}

/** What unpacking produced: the new blobs to commit and one report per layer. */
export interface Unpacked {
  staged: StagedBlob[];
  reports: LayerReport[];
}

/** Options of unpackLayers. */
export interface UnpackOptions {
  registry: RegistryClient;
  content: ContentStore;
  remote: RemotePlugin;
  layers: readonly Descriptor[];
  /** the staging rootfs (an existing, empty directory) */
  rootfs: string;
  limits?: ExtractLimits;
  logger?: Pick<Logger, 'warn'>;
  signal?: AbortSignal;
  /** see ApplyLayerOptions.reclaim */
  reclaim?: () => void;
  /** told when each layer starts, how many of its bytes have arrived, and when it is unpacked */
  onProgress?: (event: PullProgress) => void;
}

/**
 * The config's diff IDs must name the layers the manifest lists, one each, in order: the config is
 * what the plugin was consented to (its privileges), so layers it does not describe are not its
 * content. LAYER_INVALID before anything is downloaded when the counts differ.
 */
function checkDiffIdCount(remote: RemotePlugin, layers: readonly Descriptor[]): void {
  const diffIds = remote.config.rootfs.diff_ids;
  if (diffIds.length === layers.length) return;
  throw new LayerError(
    'LAYER_INVALID',
    `${remote.remote}: the manifest lists ${layers.length} layer(s) but the config's rootfs.diff_ids names ${diffIds.length}; ` +
      'the plugin is inconsistent (hostile or broken). Nothing was installed; re-push the plugin',
  );
}

/**
 * A layer's content must be what the config's diff ID says: the digest of the uncompressed tar (the
 * image spec's diff ID), or the digest of the compressed blob, which is what moby's `plugin create`
 * writes there (and which the download already verified). Anything else is LAYER_INVALID.
 */
function checkDiffId(remote: RemotePlugin, layer: Descriptor, index: number, report: LayerReport): void {
  const expected = remote.config.rootfs.diff_ids[index];
  if (expected === report.diffId || expected === layer.digest) return;
  throw new LayerError(
    'LAYER_INVALID',
    `${remote.remote}: layer ${index + 1} (${layer.digest}) unpacks to ${report.diffId}, but the config's rootfs.diff_ids[${index}] is ` +
      `${expected ?? 'missing'}; the layer is not the content the config describes. Nothing was installed; re-push the plugin`,
  );
}

/**
 * Applies `layers` in order onto `rootfs`. A layer the content store already has is unpacked from
 * it; any other is streamed from the registry once: verified (the registry client's stream errors
 * on a size or digest mismatch), inflated, unpacked, and written to an ingest file. Each layer's
 * uncompressed digest is checked against the config's diff ID (LAYER_INVALID). On failure every
 * ingest is deleted and the error rethrown; the caller discards the rootfs.
 */
export async function unpackLayers(options: UnpackOptions): Promise<Unpacked> {
  const { registry, content, remote, layers, rootfs } = options;
  const staged: StagedBlob[] = [];
  const reports: LayerReport[] = [];
  const callOptions = options.signal !== undefined ? { signal: options.signal } : {};
  checkDiffIdCount(remote, layers);
  const record = (index: number, report: LayerReport): void => {
    checkDiffId(remote, layers[index] as Descriptor, index, report);
    reports.push(report);
  };
  try {
    for (const [index, layer] of layers.entries()) {
      const label = `${layer.digest} (${index + 1}/${layers.length} of ${remote.remote})`;
      const extractOptions = {
        layer: label,
        ...(options.limits !== undefined ? { limits: options.limits } : {}),
        ...(options.logger !== undefined ? { logger: options.logger } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
        ...(options.reclaim !== undefined ? { reclaim: options.reclaim } : {}),
      };
      const progress = options.onProgress;
      const already = staged.find((blob) => blob.digest === layer.digest);
      if (already !== undefined) {
        await already.finished;
        record(
          index,
          await applyLayer(
            createReadStream(already.ingest.path, { highWaterMark: COALESCE_BYTES }),
            rootfs,
            extractOptions,
          ),
        );
        continue;
      }
      if ((await content.info(layer.digest)) !== undefined) {
        progress?.({ layer: layer.digest, status: 'Already exists', total: layer.size });
        record(index, await applyLayer(content.openRead(layer.digest), rootfs, extractOptions));
        continue;
      }
      const ingest = await content.ingest();
      const entry: StagedBlob = { digest: layer.digest, ingest, finished: Promise.resolve() };
      staged.push(entry);
      const sink = await openLayer(rootfs, extractOptions);
      let blob: Readable;
      try {
        blob = await registry.openBlob(remote.ref, layer, callOptions);
      } catch (error) {
        sink.abort(error);
        await sink.done.catch(() => undefined);
        throw error;
      }
      reportStage('blob-opened', layer.digest);
      const pumped = pumpLayer(blob, ingest, sink, layer.digest);
      if (progress !== undefined) {
        // a second 'data' listener, added after the pump's, only counts: its flow control is unchanged
        let received = 0;
        progress({ layer: layer.digest, status: 'Downloading', current: 0, total: layer.size });
        blob.on('data', (chunk: Uint8Array) => {
          received += chunk.byteLength;
          progress({ layer: layer.digest, status: 'Downloading', current: received, total: layer.size });
        });
      }
      // started by the pump when the download ended; the fsync overlaps with the next layer
      entry.finished = pumped.then(async () => {
        await ingest.finish();
        reportStage('blob-synced', layer.digest);
      });
      entry.finished.catch(() => undefined);
      record(index, await pumped);
      reportStage('layer-applied', layer.digest);
      progress?.({ layer: layer.digest, status: 'Pull complete', current: layer.size, total: layer.size });
    }
    await Promise.all(staged.map((blob) => blob.finished));
  } catch (error) {
    await Promise.all(staged.map((blob) => blob.ingest.abort()));
    throw error;
  }
  return { staged, reports };
}
