/**
 * The registry client: the OCI distribution API over undici, as plugctl needs it to pull plugins
 * itself, compute their privileges, notice moved tags, and push (tests, the embedded store).
 *
 * Behaviour worth knowing before using it:
 * - Scheme: https always, except for loopback hosts (127.0.0.0/8, ::1, localhost) and hosts listed
 *   in `insecureRegistries`. For those, like dockerd, the first contact tries https (certificate
 *   not verified, as Docker does for insecure registries) and falls back to plain http when no TLS
 *   connection can be made; the choice is remembered per host for the client's lifetime.
 * - Auth: the /v2/ ping's WWW-Authenticate decides: none, Basic (credentials sent with every
 *   request) or Bearer (a token per repository scope from the realm, cached until expires_in).
 *   Plugin scopes are requested as `repository(plugin):NAME:pull` (and `:pull,push` to push), as
 *   dockerd does. A 401 triggers exactly one re-authentication (fresh credentials and token); a
 *   second 401 is REGISTRY_AUTH_FAILED. Credentials and tokens never appear in errors.
 * - Retries: connection errors, 5xx and 429 are retried `retries` times with exponential backoff
 *   and jitter; 429 waits for Retry-After (seconds or HTTP date) up to `maxRetryAfterMs`. Request
 *   bodies that are streams are never replayed.
 * - Redirects are followed by hand (at most 5); the Authorization header never follows a redirect
 *   to another origin (blob storage, CDNs).
 * - Timeouts: every request has a headers deadline, a body idle timeout and a minimum download
 *   rate (`transfer`, default DEFAULT_TRANSFER_LIMITS; see transfer-guard.ts). A caller bounds a
 *   whole operation with its `signal` (deadline.ts does for a plugin's lookup and pull).
 * - Caches (in memory, per client): manifests and configs by digest (content-addressed, so never
 *   stale); tags are always asked again with one HEAD. An unchanged tag therefore costs exactly
 *   one manifest HEAD, and the config is fetched only when the digest moved.
 */
import type { Readable } from 'node:stream';
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Agent, Dispatcher } from 'undici';
import type { Reference } from '../api/reference.ts';
import { SpecError } from '../errors.ts';
import {
  basicAuthorization,
  parseWwwAuthenticate,
  parseTokenResponse,
  repositoryScope,
  TokenCache,
} from './auth.ts';
import type { CachedToken, Challenge } from './auth.ts';
import { verifiedStream, writeVerifiedFile } from './blobs.ts';
import { resolveCredentials } from './credentials.ts';
import type { Credentials } from './credentials.ts';
import { RegistryError, where } from './errors.ts';
import type { RegistryErrorCode } from './errors.ts';
import {
  allowsPlainHttp,
  backoffDelay,
  errorCode,
  isRetryableNetworkError,
  isTimeoutError,
  parseRetryAfter,
  redirectRefusal,
  redirectTarget,
  timeoutDetail,
} from './http.ts';
import {
  bareMediaType,
  CONFIG_MEDIA_TYPES,
  digestAlgorithm,
  digestOf,
  isDigest,
  MANIFEST_ACCEPT,
  ManifestShapeError,
  MAX_MANIFEST_BYTES,
  parseManifest,
} from './manifest.ts';
import type { Descriptor, ImageManifest, IndexManifest, Manifest } from './manifest.ts';
import { formatPlatform, hostPlatform, normalizePlatform, selectPlatform } from './platform.ts';
import { transferGuard } from './transfer-guard.ts';
import { DEFAULT_RETRY_MAX_MS, DEFAULT_TRANSFER_LIMITS } from '../limits.ts';
import type { TransferLimits } from '../limits.ts';
import type { Platform } from './platform.ts';

/** Options of a RegistryClient; every side effect is injectable. */
export interface RegistryClientOptions {
  /** hosts (`host` or `host:port`) that may be spoken to over plain http, like --insecure-registry */
  insecureRegistries?: string[];
  /**
   * `host:port` -> PEM certificates that host's https certificate must chain to, instead of the
   * system's (a registry mirror with its own CA); not applied to an injected dispatcher
   */
  trustedCas?: ReadonlyMap<string, string>;
  /** credentials for a registry (the reference's domain, e.g. `docker.io`); default: the Docker config */
  credentials?: (registry: string) => Promise<Credentials | undefined>;
  /**
   * headers deadline and body idle timeout of every request, ms (shorthand for both fields of
   * `transfer`); default 30000
   */
  timeoutMs?: number;
  /** per-request deadlines and the minimum download rate; default DEFAULT_TRANSFER_LIMITS */
  transfer?: Partial<TransferLimits>;
  /** retries after the first attempt for network errors, 5xx and 429; default 3 */
  retries?: number;
  /** first backoff delay, ms (doubles per retry, jittered); default 250 */
  retryBaseMs?: number;
  /** longest backoff delay, ms; default DEFAULT_RETRY_MAX_MS (8000) */
  retryMaxMs?: number;
  /**
   * longest wait a 429's Retry-After may impose between two attempts, ms; default retryMaxMs (the
   * backoff maximum). A longer request is reported in the error (RegistryError.retryAfterMs).
   */
  maxRetryAfterMs?: number;
  /** resource class in token scopes; default 'plugin' (`repository(plugin):…`), '' for none */
  resourceClass?: string;
  /**
   * undici dispatcher for every request (e.g. one composed with interceptors). Default: an Agent
   * the client creates lazily (and a second one, not verifying certificates, for insecure
   * registries over https), closed by close(). An injected dispatcher is used for both and never
   * closed by the client.
   */
  dispatcher?: Dispatcher;
  /** clock, for token expiry and Retry-After dates; default Date.now */
  now?: () => number;
  /** waits between retries; default a timers/promises setTimeout honouring the signal */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Per-call options. */
export interface CallOptions {
  /** aborts the call, including retries' waits */
  signal?: AbortSignal;
}

/** The repository part of a reference; a full Reference fits. */
export interface RepositoryRef {
  domain: string;
  path: string;
}

/** What a manifest HEAD (or GET, when a registry sends no digest on HEAD) says about a tag. */
export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

/** A reference resolved to one image (plugin) manifest. */
export interface ResolvedManifest {
  /** digest of the platform's image manifest: what to pull or pin */
  digest: string;
  mediaType: string;
  manifest: ImageManifest;
  /** the config descriptor (for a plugin: application/vnd.docker.plugin.v1+json) */
  config: Descriptor;
  /** set when the reference named an index (multi-arch): the index and the choice made */
  index?: { digest: string; mediaType: string; platform: Platform; available: Platform[] };
}

/** A fetched, digest-verified config blob. */
export interface FetchedConfig {
  resolved: ResolvedManifest;
  descriptor: Descriptor;
  /** the exact bytes, whose digest is descriptor.digest */
  bytes: Uint8Array;
  /** the parsed JSON (give it to parsePluginConfig for a plugin) */
  json: unknown;
}

/** Result of pushing a blob. */
export interface PushedBlob {
  digest: string;
  /** true when the registry already had it and nothing was uploaded */
  existed: boolean;
}

interface HostState {
  scheme: 'https' | 'http';
  /** the challenge last seen from this registry; undefined: anonymous access works */
  challenge: Challenge | undefined;
  /** true when https to this host must not verify certificates (insecure registry) */
  insecureTls: boolean;
}

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: URL;
}

interface SendOptions extends CallOptions {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT';
  registry: string;
  repository?: string;
  /** token scope actions; undefined: no auth (ping) */
  actions?: readonly ('pull' | 'push')[];
  /** path on the registry (`/v2/…`) or an absolute URL (upload locations) */
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array | Readable;
  /** what the request is about, for messages: `manifest test/vol:1.0` */
  what: string;
}

const DEFAULTS = {
  retries: 3,
  retryBaseMs: 250,
  retryMaxMs: DEFAULT_RETRY_MAX_MS,
};
const MAX_REDIRECTS = 5;
const CACHE_ENTRIES = 1024;
const ERROR_BODY_BYTES = 4096;
/** Docker Hub's API endpoint; `docker.io` is only its name in references and credential files. */
const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';

/** A Map that forgets its oldest entry beyond `limit` entries; reads refresh an entry. */
class BoundedCache<V> {
  readonly #map = new Map<string, V>();
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }
  get(key: string): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#limit) {
      const oldest = this.#map.keys().next();
      if (oldest.done !== true) this.#map.delete(oldest.value);
    }
  }
}

type RequestFn = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

interface Transport {
  request: RequestFn;
  secure: Dispatcher;
  insecure: Dispatcher;
  /** per host (`host:port`, lower case): agents trusting that host's own CA */
  byHost: ReadonlyMap<string, Dispatcher>;
  /** the agents this client made, closed by close() */
  owned: Dispatcher[];
}

interface StoredManifest {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
  manifest: Manifest;
}

function header(headers: Response['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function refText(ref: Reference): string {
  return `${ref.path}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** Reads at most `limit` bytes of a body; throws MANIFEST_TOO_LARGE beyond it. */
async function readCapped(
  response: Response,
  limit: number,
  registry: string,
  repository: string | undefined,
  what: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > limit) {
        response.body.destroy();
        throw new RegistryError(
          'MANIFEST_TOO_LARGE',
          `${where(registry, repository)}: ${what} is larger than ${limit} bytes; plugctl refuses it (a plugin manifest or config is a few KiB)`,
          { registry, ...(repository !== undefined ? { repository } : {}) },
        );
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof RegistryError) throw error;
    const code = isTimeoutError(error) ? 'REGISTRY_TIMEOUT' : 'REGISTRY_BODY_TRUNCATED';
    throw new RegistryError(
      code,
      `${where(registry, repository)}: ${what} ${code === 'REGISTRY_TIMEOUT' ? `stalled (${timeoutDetail(error)})` : 'broke off'} after ${total} bytes; it will be retried`,
      { registry, ...(repository !== undefined ? { repository } : {}), cause: error },
    );
  }
  return Buffer.concat(chunks, total);
}

/** The registry's own error summary (`MANIFEST_UNKNOWN: manifest unknown`), never more than a line. */
async function errorSummary(response: Response): Promise<string> {
  let text: string;
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      chunks.push(chunk);
      total += chunk.byteLength;
      if (total >= ERROR_BODY_BYTES) break;
    }
    text = Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES).toString('utf8');
  } catch {
    return '';
  } finally {
    response.body.destroy();
  }
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = parsed.errors?.[0];
    if (first !== undefined) {
      return [first.code, first.message]
        .filter((part) => typeof part === 'string')
        .join(': ')
        .slice(0, 200);
    }
  } catch {
    // not the registry's JSON error format
  }
  return text.split('\n')[0]?.trim().slice(0, 200) ?? '';
}

async function drain(response: Response): Promise<void> {
  try {
    await response.body.dump({ limit: 64 * 1024 });
  } catch {
    response.body.destroy();
  }
}

/**
 * A client for OCI distribution registries. Holds connection pools and caches; create one per
 * process (or per test) and close() it when done. Methods are safe to call concurrently.
 */
export class RegistryClient {
  readonly #insecure: string[];
  readonly #trustedCas: ReadonlyMap<string, string>;
  readonly #credentials: (registry: string) => Promise<Credentials | undefined>;
  readonly #transferLimits: TransferLimits;
  readonly #retries: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #maxRetryAfterMs: number;
  readonly #resourceClass: string;
  readonly #injected: Dispatcher | undefined;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #tokens: TokenCache;
  readonly #hosts = new Map<string, Promise<HostState>>();
  readonly #credentialCache = new Map<string, Promise<Credentials | undefined>>();
  readonly #manifests = new BoundedCache<StoredManifest>(CACHE_ENTRIES);
  readonly #configs = new BoundedCache<Uint8Array>(CACHE_ENTRIES);
  #agents: Promise<Transport> | undefined;
  #closed = false;

  constructor(options: RegistryClientOptions = {}) {
    this.#insecure = [...(options.insecureRegistries ?? [])];
    this.#trustedCas = options.trustedCas ?? new Map();
    this.#credentials = options.credentials ?? ((registry) => resolveCredentials(registry));
    this.#transferLimits = {
      ...DEFAULT_TRANSFER_LIMITS,
      ...(options.timeoutMs !== undefined
        ? { headersTimeoutMs: options.timeoutMs, bodyIdleTimeoutMs: options.timeoutMs }
        : {}),
      ...options.transfer,
    };
    this.#retries = options.retries ?? DEFAULTS.retries;
    this.#retryBaseMs = options.retryBaseMs ?? DEFAULTS.retryBaseMs;
    this.#retryMaxMs = options.retryMaxMs ?? DEFAULTS.retryMaxMs;
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? this.#retryMaxMs;
    this.#resourceClass = options.resourceClass ?? 'plugin';
    this.#injected = options.dispatcher;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms, signal) => sleepFor(ms, undefined, signal ? { signal } : undefined));
    this.#tokens = new TokenCache(this.#now);
  }

  /** Closes the connection pools this client created. Further calls fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const agents = this.#agents;
    this.#agents = undefined;
    if (agents !== undefined) {
      const { owned } = await agents;
      await Promise.all(owned.map((agent) => agent.close()));
    }
  }

  // ---------------------------------------------------------------- public API: pulling

  /**
   * The digest, media type and size a tag (or digest) currently points at: one manifest HEAD
   * (plus a ping and a token on first contact with the registry). Falls back to a GET when the
   * registry sends no Docker-Content-Digest on HEAD; that GET's bytes are cached by digest.
   * Errors: MANIFEST_NOT_FOUND, MANIFEST_TOO_LARGE, auth and transport errors.
   */
  async headManifest(ref: Reference, options: CallOptions = {}): Promise<ManifestHead> {
    const registry = ref.domain;
    const repository = ref.path;
    const what = `manifest ${refText(ref)}`;
    const response = await this.#send({
      ...options,
      method: 'HEAD',
      registry,
      repository,
      actions: ['pull'],
      path: `/v2/${repository}/manifests/${ref.digest ?? ref.tag ?? 'latest'}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      what,
    });
    await this.#expectOk(response, [200], registry, repository, what);
    await drain(response);
    const size = Number.parseInt(header(response.headers, 'content-length') ?? '', 10);
    if (Number.isFinite(size) && size > MAX_MANIFEST_BYTES) {
      throw new RegistryError(
        'MANIFEST_TOO_LARGE',
        `${where(registry, repository)}: ${what} is ${size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit; plugctl refuses it`,
        { registry, repository },
      );
    }
    const digest = header(response.headers, 'docker-content-digest');
    const mediaType = bareMediaType(header(response.headers, 'content-type'));
    if (
      digest !== undefined &&
      isDigest(digest) &&
      Number.isFinite(size) &&
      MANIFEST_ACCEPT.some((t) => t === mediaType)
    ) {
      if (ref.digest !== undefined && digest !== ref.digest) {
        throw new RegistryError(
          'DIGEST_MISMATCH',
          `${where(registry, repository)}: asked for ${ref.digest} but the registry answered with ${digest}; it serves the wrong content`,
          { registry, repository },
        );
      }
      return { digest, mediaType, size };
    }
    // No usable digest on HEAD (some registries, some proxies): GET it and hash it ourselves.
    const stored = await this.#getManifest(ref, ref.digest ?? ref.tag ?? 'latest', options);
    return { digest: stored.digest, mediaType: stored.mediaType, size: stored.bytes.byteLength };
  }

  /**
   * Resolves a reference to one image manifest. A reference with a digest is resolved by the
   * digest alone (its tag, if any, is not consulted: call headManifest on the tag to check where it
   * points). A tag costs one HEAD when its digest is already
   * cached; otherwise the manifest is fetched by digest and verified. An index (OCI index, Docker
   * manifest list) is resolved to the entry matching `platform` (default: this host's), and the
   * child's bytes are verified against the index's digest and size.
   * Errors: MANIFEST_NOT_FOUND, DIGEST_MISMATCH, SIZE_MISMATCH, MANIFEST_TOO_LARGE, MANIFEST_INVALID,
   * PLATFORM_NOT_FOUND (its message lists the platforms the index has), auth and transport errors.
   */
  async resolve(ref: Reference, platform?: Platform, options: CallOptions = {}): Promise<ResolvedManifest> {
    const registry = ref.domain;
    const repository = ref.path;
    const digest = ref.digest ?? (await this.headManifest(ref, options)).digest;
    const top = await this.#manifestByDigest(ref, digest, options);
    if (top.manifest.kind === 'manifest') {
      return {
        digest: top.digest,
        mediaType: top.mediaType,
        manifest: top.manifest,
        config: top.manifest.config,
      };
    }
    const index: IndexManifest = top.manifest;
    const wanted = platform ?? hostPlatform();
    const available = index.manifests
      .map((entry) => entry.platform)
      .filter((p): p is Platform => p !== undefined && p.os !== 'unknown');
    const chosen = selectPlatform(
      wanted,
      index.manifests.map((entry) => entry.platform),
    );
    const entry = index.manifests[chosen];
    if (entry === undefined) {
      throw new RegistryError(
        'PLATFORM_NOT_FOUND',
        `${where(registry, repository)}: ${refText(ref)} is a multi-platform index without ${formatPlatform(normalizePlatform(wanted))}; ` +
          `it has ${available.length === 0 ? 'no platform-specific manifests' : available.map(formatPlatform).join(', ')}. ` +
          'Use a reference built for this platform',
        { registry, repository },
      );
    }
    const child = await this.#manifestByDigest(ref, entry.digest, options, entry.size);
    if (child.manifest.kind !== 'manifest') {
      throw new RegistryError(
        'MANIFEST_INVALID',
        `${where(registry, repository)}: the ${formatPlatform(wanted)} entry of ${refText(ref)} is itself an index; nested indexes are not supported`,
        { registry, repository },
      );
    }
    return {
      digest: child.digest,
      mediaType: child.mediaType,
      manifest: child.manifest,
      config: child.manifest.config,
      index: {
        digest: top.digest,
        mediaType: top.mediaType,
        platform: entry.platform ?? wanted,
        available,
      },
    };
  }

  /**
   * The config blob of the manifest `ref` resolves to, digest- and size-verified, with its parsed
   * JSON. Accepts the plugin config type and image config types (Docker, OCI); anything else is
   * MANIFEST_INVALID. Cached by config digest: an unchanged tag costs one HEAD in total.
   */
  async fetchConfig(ref: Reference, platform?: Platform, options: CallOptions = {}): Promise<FetchedConfig> {
    const registry = ref.domain;
    const repository = ref.path;
    const resolved = await this.resolve(ref, platform, options);
    const descriptor = resolved.config;
    if (!CONFIG_MEDIA_TYPES.has(descriptor.mediaType)) {
      throw new RegistryError(
        'MANIFEST_INVALID',
        `${where(registry, repository)}: ${refText(ref)} has a config of type ${descriptor.mediaType}, which is not a plugin ` +
          `(expected ${[...CONFIG_MEDIA_TYPES].join(' or ')}); is this an image rather than a plugin?`,
        { registry, repository },
      );
    }
    if (descriptor.size > MAX_MANIFEST_BYTES) {
      throw new RegistryError(
        'MANIFEST_TOO_LARGE',
        `${where(registry, repository)}: the config of ${refText(ref)} is ${descriptor.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`,
        { registry, repository },
      );
    }
    let bytes = this.#configs.get(descriptor.digest);
    if (bytes === undefined) {
      const stream = await this.openBlob(ref, descriptor, options);
      const chunks: Uint8Array[] = [];
      for await (const chunk of stream as AsyncIterable<Uint8Array>) chunks.push(chunk);
      bytes = Buffer.concat(chunks);
      this.#configs.set(descriptor.digest, bytes);
    }
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      throw new RegistryError(
        'MANIFEST_INVALID',
        `${where(registry, repository)}: the config ${descriptor.digest} of ${refText(ref)} is not valid JSON`,
        { registry, repository },
      );
    }
    return { resolved, descriptor, bytes, json };
  }

  /**
   * A blob's content as a stream that is verified while it flows: it errors with SIZE_MISMATCH
   * as soon as more than descriptor.size bytes arrive, REGISTRY_BODY_TRUNCATED or REGISTRY_TIMEOUT
   * when the body breaks off or stalls, and DIGEST_MISMATCH at the end when the hash differs.
   * Contract: the bytes are trustworthy only once the stream has ended without error; a consumer
   * must discard everything it derived from them when it errors (writeVerifiedFile and
   * fetchBlobToFile do). Errors before the body starts: BLOB_NOT_FOUND, auth and transport errors.
   */
  async openBlob(repo: RepositoryRef, descriptor: Descriptor, options: CallOptions = {}): Promise<Readable> {
    const registry = repo.domain;
    const repository = repo.path;
    if (!isDigest(descriptor.digest)) {
      throw new RegistryError(
        'MANIFEST_INVALID',
        `${where(registry, repository)}: ${JSON.stringify(descriptor.digest)} is not a digest plugctl can verify`,
        { registry, repository },
      );
    }
    const what = `blob ${descriptor.digest}`;
    const response = await this.#send({
      ...options,
      method: 'GET',
      registry,
      repository,
      actions: ['pull'],
      path: `/v2/${repository}/blobs/${descriptor.digest}`,
      what,
    });
    await this.#expectOk(response, [200], registry, repository, what);
    const length = Number.parseInt(header(response.headers, 'content-length') ?? '', 10);
    if (Number.isFinite(length) && length > descriptor.size) {
      response.body.destroy();
      throw new RegistryError(
        'SIZE_MISMATCH',
        `${where(registry, repository)}: ${what} is announced as ${length} bytes but its manifest declares ${descriptor.size}; ` +
          'the registry serves different content than the manifest describes',
        { registry, repository },
      );
    }
    return verifiedStream(response.body, descriptor, { registry, repository });
  }

  /**
   * Downloads a blob to `path`, verified: written to a temp file beside it, fsynced, and renamed
   * into place only when size and digest matched. On any error nothing is left behind.
   */
  async fetchBlobToFile(
    repo: RepositoryRef,
    descriptor: Descriptor,
    path: string,
    options: CallOptions = {},
  ): Promise<void> {
    const stream = await this.openBlob(repo, descriptor, options);
    await writeVerifiedFile(stream, path);
  }

  // ---------------------------------------------------------------- public API: pushing

  /**
   * Uploads a blob unless the registry already has it (HEAD first): one POST to open an upload and
   * a monolithic PUT `?digest=`. Bytes are checked against `digest` before anything is sent and
   * may be retried; a stream is sent once (the registry verifies it).
   */
  async pushBlob(
    repo: RepositoryRef,
    data: Uint8Array | Readable,
    digest: string,
    size: number,
    options: CallOptions = {},
  ): Promise<PushedBlob> {
    const registry = repo.domain;
    const repository = repo.path;
    if (data instanceof Uint8Array && (data.byteLength !== size || digestOf(data, digest) !== digest)) {
      throw new RegistryError(
        'DIGEST_MISMATCH',
        `${where(registry, repository)}: refusing to push: the bytes given do not match ${digest} (${size} bytes)`,
        { registry, repository },
      );
    }
    const what = `blob ${digest}`;
    const base = { ...options, registry, repository, actions: ['pull', 'push'] as const, what };
    const head = await this.#send({ ...base, method: 'HEAD', path: `/v2/${repository}/blobs/${digest}` });
    await drain(head);
    if (head.status === 200) return { digest, existed: true };
    if (head.status !== 404) await this.#expectOk(head, [200], registry, repository, what);

    const start = await this.#send({ ...base, method: 'POST', path: `/v2/${repository}/blobs/uploads/` });
    await this.#expectOk(start, [202], registry, repository, `upload of ${what}`);
    await drain(start);
    const location = header(start.headers, 'location');
    if (location === undefined) {
      throw new RegistryError(
        'REGISTRY_BAD_RESPONSE',
        `${where(registry, repository)}: the registry opened an upload for ${what} without a Location`,
        { registry, repository },
      );
    }
    const target = new URL(location, start.url);
    target.searchParams.set('digest', digest);
    const put = await this.#send({
      ...base,
      method: 'PUT',
      path: target.toString(),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: data,
    });
    await this.#expectOk(put, [201], registry, repository, `upload of ${what}`);
    await drain(put);
    return { digest, existed: false };
  }

  /**
   * Puts a manifest under `tagOrDigest` with its media type; returns its digest. The registry's
   * Docker-Content-Digest, when sent, must agree.
   */
  async pushManifest(
    repo: RepositoryRef,
    tagOrDigest: string,
    mediaType: string,
    bytes: Uint8Array,
    options: CallOptions = {},
  ): Promise<string> {
    const registry = repo.domain;
    const repository = repo.path;
    if (bytes.byteLength > MAX_MANIFEST_BYTES) {
      throw new RegistryError(
        'MANIFEST_TOO_LARGE',
        `${where(registry, repository)}: refusing to push a ${bytes.byteLength}-byte manifest (limit ${MAX_MANIFEST_BYTES})`,
        { registry, repository },
      );
    }
    const digest = digestOf(bytes);
    const what = `manifest ${repository}:${tagOrDigest}`;
    const response = await this.#send({
      ...options,
      method: 'PUT',
      registry,
      repository,
      actions: ['pull', 'push'],
      path: `/v2/${repository}/manifests/${tagOrDigest}`,
      headers: { 'content-type': mediaType },
      body: bytes,
      what,
    });
    await this.#expectOk(response, [201], registry, repository, what);
    await drain(response);
    const announced = header(response.headers, 'docker-content-digest');
    if (announced !== undefined && announced !== digest) {
      throw new RegistryError(
        'DIGEST_MISMATCH',
        `${where(registry, repository)}: the registry stored ${what} as ${announced}, not ${digest}`,
        { registry, repository },
      );
    }
    return digest;
  }

  // ---------------------------------------------------------------- manifests

  async #manifestByDigest(
    ref: Reference,
    digest: string,
    options: CallOptions,
    expectedSize?: number,
  ): Promise<StoredManifest> {
    const cached = this.#manifests.get(digest);
    const stored = cached ?? (await this.#getManifest(ref, digest, options));
    if (expectedSize !== undefined && stored.bytes.byteLength !== expectedSize) {
      throw new RegistryError(
        'SIZE_MISMATCH',
        `${where(ref.domain, ref.path)}: manifest ${digest} is ${stored.bytes.byteLength} bytes but the index declares ${expectedSize}`,
        { registry: ref.domain, repository: ref.path },
      );
    }
    return stored;
  }

  /** GET a manifest by tag or digest, size-capped and verified, then cache it by digest. */
  async #getManifest(ref: Reference, tagOrDigest: string, options: CallOptions): Promise<StoredManifest> {
    const registry = ref.domain;
    const repository = ref.path;
    const what = `manifest ${repository}${isDigest(tagOrDigest) ? '@' : ':'}${tagOrDigest}`;
    const response = await this.#send({
      ...options,
      method: 'GET',
      registry,
      repository,
      actions: ['pull'],
      path: `/v2/${repository}/manifests/${tagOrDigest}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      what,
    });
    await this.#expectOk(response, [200], registry, repository, what);
    const length = Number.parseInt(header(response.headers, 'content-length') ?? '', 10);
    if (Number.isFinite(length) && length > MAX_MANIFEST_BYTES) {
      response.body.destroy();
      throw new RegistryError(
        'MANIFEST_TOO_LARGE',
        `${where(registry, repository)}: ${what} is ${length} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit; plugctl refuses it`,
        { registry, repository },
      );
    }
    const bytes = await readCapped(response, MAX_MANIFEST_BYTES, registry, repository, what);
    const announced = header(response.headers, 'docker-content-digest');
    const expected = isDigest(tagOrDigest)
      ? tagOrDigest
      : announced !== undefined && isDigest(announced)
        ? announced
        : undefined;
    const digest = digestOf(bytes, expected ?? 'sha256:');
    for (const claim of [isDigest(tagOrDigest) ? tagOrDigest : undefined, announced]) {
      if (claim !== undefined && isDigest(claim) && digestOf(bytes, claim) !== claim) {
        throw new RegistryError(
          'DIGEST_MISMATCH',
          `${where(registry, repository)}: ${what} hashes to ${digestOf(bytes, claim)}, not ${claim}; the registry serves corrupt or ` +
            'substituted content; nothing was used. Re-push the plugin or report it to the registry operator',
          { registry, repository },
        );
      }
    }
    let manifest: Manifest;
    try {
      manifest = parseManifest(bytes, header(response.headers, 'content-type'));
    } catch (error) {
      if (!(error instanceof ManifestShapeError)) throw error;
      throw new RegistryError(
        'MANIFEST_INVALID',
        `${where(registry, repository)}: ${what}: ${error.message}`,
        {
          registry,
          repository,
          cause: error,
        },
      );
    }
    // The canonical name is the sha256 one, whatever algorithm the registry announced.
    const canonical = digestAlgorithm(digest) === 'sha256' ? digest : digestOf(bytes);
    const stored: StoredManifest = { digest: canonical, mediaType: manifest.mediaType, bytes, manifest };
    this.#manifests.set(canonical, stored);
    if (digest !== canonical) this.#manifests.set(digest, stored);
    return stored;
  }

  // ---------------------------------------------------------------- transport

  async #agentsFor(): Promise<Transport> {
    if (this.#closed) throw new Error('RegistryClient is closed');
    this.#agents ??= (async () => {
      // Only the Agent and the request API are loaded, not all of undici: that saves ~70 ms of
      // start-up (shared/notes/performance-facts.md). The specifiers are variables so TypeScript
      // does not look for types of internal paths; the shapes are undici's public ones.
      // `request` is called with the dispatcher as `this`, so it works for any dispatcher
      // (an injected or composed one too) without patching Dispatcher.prototype as undici's
      // index does.
      const requestPath = 'undici/lib/api/api-request.js';
      const request = ((await import(requestPath)) as { default: RequestFn }).default;
      // every response keeps a minimum rate, whichever dispatcher carries it
      const guard = transferGuard(this.#transferLimits);
      if (this.#injected !== undefined) {
        const guarded = this.#injected.compose(guard);
        return { request, secure: guarded, insecure: guarded, byHost: new Map(), owned: [] };
      }
      const agentPath = 'undici/lib/dispatcher/agent.js';
      const AgentClass = ((await import(agentPath)) as { default: typeof Agent }).default;
      const connect = { timeout: this.#transferLimits.headersTimeoutMs };
      const secure = new AgentClass({ connect });
      const insecure = new AgentClass({ connect: { ...connect, rejectUnauthorized: false } });
      const byHost = new Map<string, Dispatcher>();
      const owned: Dispatcher[] = [secure, insecure];
      for (const [host, ca] of this.#trustedCas) {
        const agent = new AgentClass({ connect: { ...connect, ca } });
        owned.push(agent);
        byHost.set(host.toLowerCase(), agent.compose(guard));
      }
      return {
        request,
        secure: secure.compose(guard),
        insecure: insecure.compose(guard),
        byHost,
        owned,
      };
    })();
    return this.#agents;
  }

  /** One HTTP exchange, no retries, no auth: the single place undici is called. */
  async #exchange(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: Uint8Array | Readable | undefined,
    insecureTls: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    const agents = await this.#agentsFor();
    // a host with its own CA is always verified against it, even where plain http would be allowed
    const https = url.protocol === 'https:';
    const own = https ? agents.byHost.get(url.host.toLowerCase()) : undefined;
    const dispatcher = own ?? (insecureTls && https ? agents.insecure : agents.secure);
    const response = await agents.request.call(dispatcher, {
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: method as Dispatcher.HttpMethod,
      headers,
      ...(body !== undefined ? { body } : {}),
      // undici's headersTimeout runs from the request's dispatch to its last header byte, unrefreshed
      // by header bytes: a deadline, which a peer dripping its headers cannot stretch
      headersTimeout: this.#transferLimits.headersTimeoutMs,
      bodyTimeout: this.#transferLimits.bodyIdleTimeoutMs,
      ...(signal !== undefined ? { signal } : {}),
    });
    return { status: response.statusCode, headers: response.headers, body: response.body, url };
  }

  /** How to reach `registry`: scheme and auth challenge, discovered once by pinging /v2/. */
  async #host(registry: string, options: CallOptions): Promise<HostState> {
    // A host no URL can hold (a port past 65535) never becomes reachable: a stalled error, not a
    // transient "Invalid URL" retried forever. References are checked when loaded; this is for callers
    // that build references themselves.
    if (!URL.canParse(`https://${registry}/v2/`)) {
      throw new SpecError(
        'INVALID_REFERENCE',
        `registry ${JSON.stringify(registry)} is not a host[:port] a URL can hold (a port is 1 to 65535); fix the reference`,
      );
    }
    let state = this.#hosts.get(registry);
    if (state === undefined) {
      state = this.#ping(registry, options);
      this.#hosts.set(registry, state);
      // a failed ping (registry down) must not be remembered
      state.catch(() => this.#hosts.delete(registry));
    }
    return state;
  }

  async #ping(registry: string, options: CallOptions): Promise<HostState> {
    const endpoint = registry === 'docker.io' ? DOCKER_HUB_ENDPOINT : registry;
    // a host given its own CA speaks https only: no fallback to plain http, even on loopback
    const plain = allowsPlainHttp(endpoint, this.#insecure) && !this.#trustedCas.has(endpoint.toLowerCase());
    let scheme: 'https' | 'http' = 'https';
    let response: Response | undefined;
    if (plain) {
      try {
        response = await this.#exchange(
          new URL(`https://${endpoint}/v2/`),
          'GET',
          {},
          undefined,
          true,
          options.signal,
        );
      } catch (error) {
        if (options.signal?.aborted === true) throw error;
        // no TLS here: Docker's fallback for loopback and insecure registries
        scheme = 'http';
      }
    }
    const state: HostState = { scheme, challenge: undefined, insecureTls: plain };
    if (response === undefined) {
      response = await this.#transport(
        { ...options, method: 'GET', registry, path: '/v2/', what: 'the /v2/ endpoint' },
        state,
        {},
      );
    }
    await drain(response);
    if (response.status === 401) {
      state.challenge = this.#pickChallenge(response);
    }
    return state;
  }

  #pickChallenge(response: Response): Challenge | undefined {
    const challenges = parseWwwAuthenticate(response.headers['www-authenticate']);
    return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
  }

  #url(state: HostState, registry: string, path: string): URL {
    if (/^https?:\/\//.test(path)) return new URL(path);
    const endpoint = registry === 'docker.io' ? DOCKER_HUB_ENDPOINT : registry;
    return new URL(`${state.scheme}://${endpoint}${path}`);
  }

  /**
   * Sends with retries (network errors, 5xx, 429) and manual redirects; auth is the caller's
   * `authorization`, dropped for good once a redirect leaves the origin. Returns any other status.
   */
  async #transport(
    request: SendOptions,
    state: HostState,
    auth: { authorization?: string },
  ): Promise<Response> {
    const { registry, repository } = request;
    const replayable = !(request.body !== undefined && !(request.body instanceof Uint8Array));
    let url = this.#url(state, registry, request.path);
    let keepAuth = true;
    let redirects = 0;
    let method = request.method;
    for (let attempt = 0; ;) {
      const headers: Record<string, string> = { ...request.headers };
      if (auth.authorization !== undefined && keepAuth) headers['authorization'] = auth.authorization;
      let response: Response;
      try {
        response = await this.#exchange(
          url,
          method,
          headers,
          request.body,
          state.insecureTls,
          request.signal,
        );
      } catch (error) {
        if (request.signal?.aborted === true) throw error;
        if (isRetryableNetworkError(error) && replayable && attempt < this.#retries) {
          await this.#sleep(backoffDelay(attempt, this.#retryBaseMs, this.#retryMaxMs), request.signal);
          attempt++;
          continue;
        }
        const timeout = isTimeoutError(error);
        throw new RegistryError(
          timeout ? 'REGISTRY_TIMEOUT' : 'REGISTRY_UNREACHABLE',
          `${where(registry, repository)}: ${request.what}: ${
            timeout
              ? `no response within ${this.#transferLimits.headersTimeoutMs} ms`
              : `cannot connect (${errorCode(error) ?? 'network error'})`
          } after ${attempt + 1} attempt(s); check that the registry is up and reachable${
            url.protocol === 'https:' && !allowsPlainHttp(url.host, this.#insecure)
              ? ' and serves https (plain-http registries must be listed with --insecure-registry)'
              : ''
          }`,
          { registry, ...(repository !== undefined ? { repository } : {}), cause: error },
        );
      }
      const status = response.status;
      if ((status >= 500 || status === 429) && replayable && attempt < this.#retries) {
        await drain(response);
        const asked =
          status === 429
            ? parseRetryAfter(header(response.headers, 'retry-after'), this.#now(), Number.POSITIVE_INFINITY)
            : undefined;
        // a Retry-After is honoured up to the backoff maximum: a registry asking for a day is
        // asked again after that, and its wish is reported if it still refuses
        const wait =
          asked !== undefined
            ? Math.min(asked, this.#maxRetryAfterMs)
            : backoffDelay(attempt, this.#retryBaseMs, this.#retryMaxMs);
        await this.#sleep(wait, request.signal);
        attempt++;
        continue;
      }
      if ([301, 302, 303, 307, 308].includes(status)) {
        await drain(response);
        const location = header(response.headers, 'location');
        const invalid = (why: string): RegistryError =>
          new RegistryError(
            'REGISTRY_REDIRECT_INVALID',
            `${where(registry, repository)}: ${request.what}: ${why}`,
            {
              registry,
              ...(repository !== undefined ? { repository } : {}),
              status,
            },
          );
        if (location === undefined) throw invalid(`redirect ${status} without a Location header`);
        if (++redirects > MAX_REDIRECTS)
          throw invalid(`more than ${MAX_REDIRECTS} redirects; the registry is misconfigured`);
        if (!replayable) throw invalid(`redirected while uploading a stream, which cannot be sent twice`);
        let target: ReturnType<typeof redirectTarget>;
        try {
          target = redirectTarget(url, location);
        } catch {
          throw invalid(`redirect to an unparseable Location`);
        }
        const refusal = redirectRefusal(url, target.url, this.#insecure);
        if (refusal !== undefined) throw invalid(refusal);
        if (!target.keepAuthorization) keepAuth = false;
        url = target.url;
        if (status === 303) method = 'GET';
        continue;
      }
      if (status >= 500 || status === 429) {
        const asked =
          status === 429
            ? parseRetryAfter(header(response.headers, 'retry-after'), this.#now(), Number.POSITIVE_INFINITY)
            : undefined;
        const summary = await errorSummary(response);
        const wish =
          asked === undefined
            ? ''
            : `; the registry asks to wait ${Math.round(asked / 1000)} s (Retry-After), plugctl waits at most its backoff maximum`;
        throw new RegistryError(
          status === 429 ? 'REGISTRY_RATE_LIMITED' : 'REGISTRY_SERVER_ERROR',
          `${where(registry, repository)}: ${request.what}: ${status === 429 ? 'rate limited (429)' : `server error ${status}`}${
            summary !== '' ? ` (${summary})` : ''
          } after ${attempt + 1} attempt(s)${wish}; it will be retried later`,
          {
            registry,
            ...(repository !== undefined ? { repository } : {}),
            status,
            ...(asked !== undefined ? { retryAfterMs: asked } : {}),
          },
        );
      }
      return response;
    }
  }

  /** #transport plus authentication: at most one re-authentication per request. */
  async #send(request: SendOptions): Promise<Response> {
    const { registry, repository } = request;
    const state = await this.#host(registry, request);
    const scope =
      request.actions !== undefined && repository !== undefined
        ? repositoryScope(repository, request.actions, this.#resourceClass)
        : undefined;
    let authorization =
      scope !== undefined ? await this.#authorization(state, registry, scope, request) : undefined;
    let reauthenticated = false;
    for (;;) {
      const response = await this.#transport(
        request,
        state,
        authorization !== undefined ? { authorization } : {},
      );
      if (response.status !== 401 || scope === undefined) return response;
      const challenge = this.#pickChallenge(response);
      await drain(response);
      if (reauthenticated || challenge === undefined || !replayableBody(request.body)) {
        throw await this.#authFailed(
          registry,
          repository,
          request.what,
          authorization !== undefined,
          state.challenge,
        );
      }
      // the registry changed its mind (or our token expired early): forget what we had, once
      reauthenticated = true;
      if (state.challenge !== undefined && state.challenge.scheme === 'bearer') {
        this.#tokens.invalidate(this.#tokenKey(state.challenge, scope));
      }
      this.#credentialCache.delete(registry);
      state.challenge = challenge;
      if (challenge.scheme === 'bearer') this.#tokens.invalidate(this.#tokenKey(challenge, scope));
      authorization = await this.#authorization(state, registry, scope, request);
      if (authorization === undefined) {
        throw await this.#authFailed(registry, repository, request.what, false, challenge);
      }
    }
  }

  async #authFailed(
    registry: string,
    repository: string | undefined,
    what: string,
    sentCredentials: boolean,
    challenge: Challenge | undefined,
  ): Promise<RegistryError> {
    const credentials = await this.#credentialsFor(registry).catch(() => undefined);
    const how =
      credentials === undefined
        ? `the registry requires authentication and no credentials are configured for ${registry}; run \`docker login ${registry}\` or configure a credential helper`
        : `the registry rejected the credentials of ${credentials.username ?? 'the identity token'} for ${registry}${
            sentCredentials ? '' : ' (or its token)'
          }; check them with \`docker login ${registry}\` and that this account may pull${challenge?.scheme === 'bearer' ? ' (token scope)' : ''}`;
    return new RegistryError(
      'REGISTRY_AUTH_FAILED',
      `${where(registry, repository)}: ${what}: unauthorized (401): ${how}`,
      {
        registry,
        ...(repository !== undefined ? { repository } : {}),
        status: 401,
      },
    );
  }

  #credentialsFor(registry: string): Promise<Credentials | undefined> {
    let pending = this.#credentialCache.get(registry);
    if (pending === undefined) {
      pending = this.#credentials(registry);
      this.#credentialCache.set(registry, pending);
      pending.catch(() => this.#credentialCache.delete(registry));
    }
    return pending;
  }

  #tokenKey(challenge: Challenge, scope: string): string {
    return TokenCache.key(challenge.params['realm'] ?? '', challenge.params['service'], scope);
  }

  /** The Authorization header for `scope` under the host's current challenge, or undefined. */
  async #authorization(
    state: HostState,
    registry: string,
    scope: string,
    options: CallOptions,
  ): Promise<string | undefined> {
    const challenge = state.challenge;
    if (challenge === undefined) return undefined;
    if (challenge.scheme === 'basic') {
      const credentials = await this.#credentialsFor(registry);
      if (credentials?.username === undefined || credentials.password === undefined) return undefined;
      return basicAuthorization(credentials.username, credentials.password);
    }
    const key = this.#tokenKey(challenge, scope);
    const token = await this.#tokens.get(key, () => this.#fetchToken(registry, challenge, scope, options));
    return `Bearer ${token}`;
  }

  /** Asks the token service (the challenge's realm) for a token for `scope`. */
  async #fetchToken(
    registry: string,
    challenge: Challenge,
    scope: string,
    options: CallOptions,
  ): Promise<CachedToken> {
    const realm = challenge.params['realm'];
    const fail = (code: RegistryErrorCode, message: string, extra: { status?: number } = {}) =>
      new RegistryError(code, `${where(registry)}: token service ${realm ?? '(none)'}: ${message}`, {
        registry,
        ...extra,
      });
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm ?? '');
    } catch {
      throw fail(
        'REGISTRY_TOKEN_FAILED',
        'the registry names no valid token realm in its WWW-Authenticate challenge',
      );
    }
    if (
      realmUrl.protocol !== 'https:' &&
      !(realmUrl.protocol === 'http:' && allowsPlainHttp(realmUrl.host, this.#insecure))
    ) {
      throw fail(
        'REGISTRY_TOKEN_FAILED',
        'refusing to send credentials to a token realm that is not https (list its host with --insecure-registry if intended)',
      );
    }
    const credentials = await this.#credentialsFor(registry);
    const service = challenge.params['service'];
    const state: HostState = {
      scheme: realmUrl.protocol === 'https:' ? 'https' : 'http',
      challenge: undefined,
      insecureTls: false,
    };
    let response: Response;
    const request: SendOptions = { ...options, method: 'GET', registry, path: '', what: 'token request' };
    if (credentials?.identityToken !== undefined) {
      // An identity token is an OAuth2 refresh token: exchange it with a form POST, as Docker does.
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: credentials.identityToken,
        client_id: 'plugctl',
        scope,
      });
      if (service !== undefined) form.set('service', service);
      response = await this.#transport(
        {
          ...request,
          method: 'POST',
          path: realmUrl.toString(),
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: Buffer.from(form.toString(), 'utf8'),
        },
        state,
        {},
      );
    } else {
      const url = new URL(realmUrl);
      if (service !== undefined) url.searchParams.set('service', service);
      url.searchParams.append('scope', scope);
      if (credentials?.username !== undefined) url.searchParams.set('account', credentials.username);
      const authorization =
        credentials?.username !== undefined && credentials.password !== undefined
          ? basicAuthorization(credentials.username, credentials.password)
          : undefined;
      response = await this.#transport(
        { ...request, path: url.toString() },
        state,
        authorization !== undefined ? { authorization } : {},
      );
    }
    if (response.status === 401 || response.status === 403) {
      await drain(response);
      throw new RegistryError(
        'REGISTRY_AUTH_FAILED',
        `${where(registry)}: the token service refused ${
          credentials === undefined
            ? 'anonymous access'
            : `the credentials of ${credentials.username ?? 'the identity token'}`
        } for ${scope} (${response.status}); ${
          credentials === undefined
            ? `run \`docker login ${registry}\` or configure a credential helper`
            : `check them with \`docker login ${registry}\``
        }`,
        { registry, status: response.status },
      );
    }
    if (response.status !== 200) {
      const summary = await errorSummary(response);
      throw fail(
        'REGISTRY_TOKEN_FAILED',
        `answered ${response.status}${summary !== '' ? ` (${summary})` : ''}`,
        {
          status: response.status,
        },
      );
    }
    const bytes = await readCapped(response, 1024 * 1024, registry, undefined, 'token response');
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      throw fail('REGISTRY_TOKEN_FAILED', 'answered with something other than JSON');
    }
    const token = parseTokenResponse(body, this.#now());
    if (token === undefined) throw fail('REGISTRY_TOKEN_FAILED', 'answered without a token');
    return token;
  }

  /** Throws the error matching a non-success status; returns when `status` is in `ok`. */
  async #expectOk(
    response: Response,
    ok: readonly number[],
    registry: string,
    repository: string,
    what: string,
    notFound: RegistryErrorCode = what.startsWith('blob') ? 'BLOB_NOT_FOUND' : 'MANIFEST_NOT_FOUND',
  ): Promise<void> {
    if (ok.includes(response.status)) return;
    const summary = await errorSummary(response);
    const detail = summary !== '' ? ` (${summary})` : '';
    const status = response.status;
    if (status === 404) {
      throw new RegistryError(
        notFound,
        `${where(registry, repository)}: ${what} not found${detail}; check the repository name and tag, and that your account may see it`,
        { registry, repository, status },
      );
    }
    if (status === 403) {
      throw new RegistryError(
        'REGISTRY_ACCESS_DENIED',
        `${where(registry, repository)}: ${what}: access denied (403)${detail}; the account lacks permission for this repository`,
        { registry, repository, status },
      );
    }
    throw new RegistryError(
      'REGISTRY_BAD_RESPONSE',
      `${where(registry, repository)}: ${what}: unexpected status ${status}${detail}`,
      { registry, repository, status },
    );
  }
}

function replayableBody(body: SendOptions['body']): boolean {
  return body === undefined || body instanceof Uint8Array;
}
