/**
 * Manifests and descriptors: the media types plugctl understands, digest computation, and parsing
 * of raw manifest bytes into checked shapes. Parsing is strict about what plugctl relies on
 * (digests, sizes, media types, platforms) and ignores everything else.
 */
import { createHash } from 'node:crypto';

/** Docker image manifest v2 schema 2 (what `docker plugin push` writes). */
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** Docker manifest list. */
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** OCI image manifest. */
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** OCI image index. */
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** The config blob of a Docker managed plugin. */
export const MEDIA_TYPE_PLUGIN_CONFIG = 'application/vnd.docker.plugin.v1+json';
/** Docker image config (accepted as a config; a plugin pushed by other tools may carry it). */
export const MEDIA_TYPE_DOCKER_IMAGE_CONFIG = 'application/vnd.docker.container.image.v1+json';
/** OCI image config. */
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** The gzip layer type `docker plugin push` writes. */
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** OCI gzip layer. */
export const MEDIA_TYPE_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** Manifest media types sent in Accept, most specific first; indexes last so a registry that can
 * choose prefers a single manifest. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
] as const;

/** Config media types accepted by fetchConfig. */
export const CONFIG_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MEDIA_TYPE_PLUGIN_CONFIG,
  MEDIA_TYPE_DOCKER_IMAGE_CONFIG,
  MEDIA_TYPE_OCI_CONFIG,
]);

/** Largest manifest (and config) accepted, in bytes; distribution itself refuses more than 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** A content descriptor: what a manifest says about one blob or child manifest. */
export interface Descriptor {
  mediaType: string;
  /** `algorithm:hex` */
  digest: string;
  size: number;
  /** only in index entries */
  platform?: { os: string; architecture: string; variant?: string };
  urls?: string[];
  annotations?: Record<string, string>;
}

/** An image (or plugin) manifest: a config and layers. */
export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  schemaVersion: 2;
  config: Descriptor;
  layers: Descriptor[];
}

/** An OCI index or Docker manifest list. */
export interface IndexManifest {
  kind: 'index';
  mediaType: string;
  schemaVersion: 2;
  manifests: Descriptor[];
}

/** Either shape. */
export type Manifest = ImageManifest | IndexManifest;

const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/;

/** Whether `digest` is a well-formed digest of an algorithm plugctl can verify. */
export function isDigest(digest: string): boolean {
  return DIGEST_RE.test(digest);
}

/** The digest algorithm's node:crypto name (`sha256`) of a well-formed digest. */
export function digestAlgorithm(digest: string): string {
  return digest.slice(0, digest.indexOf(':'));
}

/** `sha256:<hex>` (or the algorithm of `like`) of `bytes`. */
export function digestOf(bytes: Uint8Array, like = 'sha256:'): string {
  const algorithm = digestAlgorithm(like) || 'sha256';
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Why a manifest could not be parsed; the caller wraps it with the registry's name. */
export class ManifestShapeError extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks one descriptor; `where` names it in the message (`config`, `layers[2]`). */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isRecord(value)) throw new ManifestShapeError(`${where} is not an object`);
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== 'string' || mediaType === '')
    throw new ManifestShapeError(`${where}.mediaType is missing`);
  if (typeof digest !== 'string' || !isDigest(digest))
    throw new ManifestShapeError(`${where}.digest ${JSON.stringify(digest)} is not a sha256/384/512 digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw new ManifestShapeError(`${where}.size ${JSON.stringify(size)} is not a non-negative integer`);
  const descriptor: Descriptor = { mediaType, digest, size };
  const platform = value['platform'];
  if (isRecord(platform)) {
    const os = platform['os'];
    const architecture = platform['architecture'];
    const variant = platform['variant'];
    if (typeof os === 'string' && typeof architecture === 'string') {
      descriptor.platform =
        typeof variant === 'string' && variant !== '' ? { os, architecture, variant } : { os, architecture };
    }
  }
  const urls = value['urls'];
  if (Array.isArray(urls) && urls.every((url) => typeof url === 'string')) descriptor.urls = urls;
  const annotations = value['annotations'];
  if (isRecord(annotations) && Object.values(annotations).every((v) => typeof v === 'string'))
    descriptor.annotations = annotations as Record<string, string>;
  return descriptor;
}

/** The media type without parameters (`; charset=utf-8`), lower-cased. */
export function bareMediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/**
 * Parses manifest bytes. The media type is the body's own `mediaType` when present, else the
 * Content-Type, else inferred from the shape (`manifests` -> OCI index, `config` -> OCI
 * manifest), as containerd does. Schema 1 manifests and unknown types are refused.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new ManifestShapeError('the manifest is not valid JSON');
  }
  if (!isRecord(json)) throw new ManifestShapeError('the manifest is not a JSON object');
  if (json['schemaVersion'] !== 2) {
    throw new ManifestShapeError(
      `schemaVersion ${JSON.stringify(json['schemaVersion'])} is not supported (only schema 2; schema 1 manifests are obsolete)`,
    );
  }
  const declared = typeof json['mediaType'] === 'string' ? json['mediaType'] : '';
  const header = bareMediaType(contentType);
  let mediaType = declared !== '' ? declared : header;
  if (mediaType === '' || mediaType === 'application/json' || mediaType === 'application/octet-stream') {
    mediaType = Array.isArray(json['manifests']) ? MEDIA_TYPE_OCI_INDEX : MEDIA_TYPE_OCI_MANIFEST;
  }
  if (mediaType === MEDIA_TYPE_DOCKER_MANIFEST_LIST || mediaType === MEDIA_TYPE_OCI_INDEX) {
    const manifests = json['manifests'];
    if (!Array.isArray(manifests)) throw new ManifestShapeError('the index has no manifests array');
    return {
      kind: 'index',
      mediaType,
      schemaVersion: 2,
      manifests: manifests.map((entry, i) => parseDescriptor(entry, `manifests[${i}]`)),
    };
  }
  if (mediaType === MEDIA_TYPE_DOCKER_MANIFEST || mediaType === MEDIA_TYPE_OCI_MANIFEST) {
    const layers = json['layers'];
    if (!Array.isArray(layers)) throw new ManifestShapeError('the manifest has no layers array');
    return {
      kind: 'manifest',
      mediaType,
      schemaVersion: 2,
      config: parseDescriptor(json['config'], 'config'),
      layers: layers.map((entry, i) => parseDescriptor(entry, `layers[${i}]`)),
    };
  }
  throw new ManifestShapeError(
    `media type ${JSON.stringify(mediaType)} is not a manifest plugctl understands (expected one of ${MANIFEST_ACCEPT.join(', ')})`,
  );
}
