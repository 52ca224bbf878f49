/**
 * A minimal Docker Engine API client over undici: connection to the daemon's socket, API version
 * negotiation, per-request deadlines, and HTTP failures turned into EngineErrors. It knows nothing of
 * plugins; store.ts builds the plugin operations on top of it.
 */
import type { Readable } from 'node:stream';
import coerce from 'semver/functions/coerce.js';
import compareSemver from 'semver/functions/compare.js';
import type { Dispatcher, Pool } from 'undici';
import { EngineError } from '../../errors.ts';
import { defaultKind } from '../../error-codes.ts';
import type { ErrorCode, FailureKind } from '../../errors.ts';

/** The newest Engine API version this client speaks; a newer daemon is addressed at this version. */
export const CLIENT_MAX_API_VERSION = '1.41';
/** The oldest Engine API version with the managed-plugin endpoints. */
export const CLIENT_MIN_API_VERSION = '1.25';
/** Used when neither an option nor DOCKER_HOST names the daemon. */
export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

/** Where the daemon listens, parsed from `unix:///path`, `tcp://host:port` or `http://host:port`. */
export interface EngineEndpoint {
  /** the address as given, for messages */
  address: string;
  /** unix socket path, when the daemon listens on one */
  socketPath?: string;
  /** origin URL undici connects to (`http://localhost` for a unix socket) */
  origin: string;
}

/**
 * Parses a Docker host address. Only unix sockets and plain-HTTP TCP are supported: a TLS endpoint
 * (DOCKER_TLS_VERIFY, tcp port 2376) needs client certificates that plugctl does not load.
 */
export function parseDockerHost(address: string): EngineEndpoint {
  const trimmed = address.trim();
  if (trimmed.startsWith('unix://')) {
    const socketPath = trimmed.slice('unix://'.length);
    if (!socketPath.startsWith('/')) {
      throw new EngineError(
        'INVALID_DOCKER_HOST',
        `docker host ${JSON.stringify(address)} needs an absolute socket path, e.g. unix:///var/run/docker.sock`,
        { kind: 'stalled' },
      );
    }
    return { address: trimmed, socketPath, origin: 'http://localhost' };
  }
  const match = /^(?:tcp|http):\/\/([^/]+?)\/?$/.exec(trimmed);
  if (match?.[1] !== undefined) {
    return { address: trimmed, origin: `http://${match[1]}` };
  }
  throw new EngineError(
    'INVALID_DOCKER_HOST',
    `docker host ${JSON.stringify(address)} is not supported: use unix:///path/to/docker.sock or tcp://127.0.0.1:2375`,
    { kind: 'stalled' },
  );
}

/**
 * Compares two `major.minor` API versions numerically (semver, `1.9` < `1.25`); returns <0, 0 or >0.
 * Something that is not a version counts as 0.0, older than every API.
 */
export function compareApiVersions(a: string, b: string): number {
  return compareSemver(coerce(a) ?? '0.0.0', coerce(b) ?? '0.0.0');
}

/** Options of one request. */
export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  /** JSON-encoded as the request body */
  json?: unknown;
  /** a streamed request body (e.g. a tar for POST /plugins/create), sent with `contentType` */
  body?: { stream: Readable; contentType: string };
  /** extra headers; their values never appear in errors */
  headers?: Record<string, string>;
  /** whole-request deadline in milliseconds; 0 means none (long-lived streams such as /events) */
  timeoutMs?: number;
  /** aborts the request (and its stream) from outside */
  signal?: AbortSignal;
  /** longest silence allowed between body chunks (streams), in milliseconds */
  idleTimeoutMs?: number;
}

/** A finished, buffered response. */
export interface EngineResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Settings of an EngineClient. */
export interface EngineClientOptions {
  /** deadline of a request that sets no timeout of its own; default 30 s */
  defaultTimeoutMs?: number;
  /** parallel connections to the daemon; default 8, so a long pull does not block a listing */
  connections?: number;
  /** told about every finished request: its method, path (without query) and status or error code */
  onRequest?: (method: string, path: string, outcome: number | string) => void;
}

const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  500: 'ENGINE_ERROR',
  503: 'ENGINE_UNAVAILABLE',
};

/**
 * The EngineError code for an HTTP status (404 -> NOT_FOUND, 409 -> CONFLICT, other 5xx ->
 * ENGINE_ERROR, any other -> ENGINE_UNEXPECTED_STATUS), with the code's kind from the catalogue.
 */
export function codeForStatus(status: number): { code: ErrorCode; kind: FailureKind } {
  const code = STATUS_CODES[status] ?? (status >= 500 ? 'ENGINE_ERROR' : 'ENGINE_UNEXPECTED_STATUS');
  return { code, kind: defaultKind(code) };
}

/** Extracts the engine's `{"message": ...}`, or the raw text when the body is not that JSON. */
export function engineMessage(text: string): string {
  try {
    const parsed: unknown = JSON.parse(text);
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      'message' in parsed &&
      typeof parsed.message === 'string'
    ) {
      return parsed.message;
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.trim() || '(empty response)';
}

function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

/**
 * An Engine API client bound to one daemon and one negotiated API version. Build it with
 * `connectEngine()`; every request carries a deadline and fails with an EngineError.
 */
export class EngineClient {
  readonly endpoint: EngineEndpoint;
  /** API version every request is addressed at, e.g. `1.41` */
  readonly apiVersion: string;
  /** the daemon's version string, e.g. `20.10.24+dfsg1` */
  readonly engineVersion: string;
  /** the highest API version the daemon speaks (apiVersion is the lower of it and plugctl's) */
  readonly daemonApiVersion: string;
  readonly #pool: EnginePool;
  readonly #defaultTimeoutMs: number;
  readonly #onRequest: NonNullable<EngineClientOptions['onRequest']>;

  /** Use connectEngine(); the constructor does no I/O. */
  constructor(init: {
    endpoint: EngineEndpoint;
    pool: EnginePool;
    apiVersion: string;
    engineVersion: string;
    daemonApiVersion?: string;
    defaultTimeoutMs: number;
    onRequest?: EngineClientOptions['onRequest'];
  }) {
    this.#onRequest = init.onRequest ?? (() => undefined);
    this.endpoint = init.endpoint;
    this.#pool = init.pool;
    this.apiVersion = init.apiVersion;
    this.engineVersion = init.engineVersion;
    this.daemonApiVersion = init.daemonApiVersion ?? init.apiVersion;
    this.#defaultTimeoutMs = init.defaultTimeoutMs;
  }

  /** Sends a request and buffers the answer; non-2xx statuses throw an EngineError. */
  async request(
    method: Dispatcher.HttpMethod,
    path: string,
    options: RequestOptions = {},
  ): Promise<EngineResponse> {
    let text = '';
    const response = await this.#send(method, path, options, async (body) => {
      text = await body.text();
    });
    return { ...response, text };
  }

  /** Sends a request and parses the JSON answer. */
  async json(method: Dispatcher.HttpMethod, path: string, options: RequestOptions = {}): Promise<unknown> {
    const { text } = await this.request(method, path, options);
    if (text.trim() === '') return null;
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw new EngineError('BAD_RESPONSE', `${method} ${path}: the engine answered with invalid JSON`, {
        cause,
      });
    }
  }

  /**
   * Sends a request whose answer is a stream of JSON messages, one per line (pull, upgrade), and
   * hands each parsed message to `onMessage` as it arrives. Non-JSON lines are ignored.
   */
  async stream(
    method: Dispatcher.HttpMethod,
    path: string,
    options: RequestOptions,
    onMessage: (message: unknown) => void,
    onOpen?: () => void,
  ): Promise<void> {
    await this.#send(method, path, options, async (body) => {
      onOpen?.();
      const decoder = new TextDecoder();
      let pending = '';
      const emit = (line: string): void => {
        if (line.trim() === '') return;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          return;
        }
        onMessage(parsed);
      };
      for await (const chunk of body) {
        pending += decoder.decode(chunk as Uint8Array, { stream: true });
        let newline = pending.indexOf('\n');
        while (newline >= 0) {
          emit(pending.slice(0, newline));
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
        }
      }
      emit(pending + decoder.decode());
    });
  }

  async #send(
    method: Dispatcher.HttpMethod,
    path: string,
    options: RequestOptions,
    consume: (body: Dispatcher.ResponseData['body']) => Promise<void>,
  ): Promise<Omit<EngineResponse, 'text'>> {
    const what = `${method} ${path}`;
    const timeoutMs = options.timeoutMs ?? this.#defaultTimeoutMs;
    const controller = new AbortController();
    let timedOut = false;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, timeoutMs)
        : undefined;
    const signal = options.signal ? AbortSignal.any([controller.signal, options.signal]) : controller.signal;
    let outcome: number | string = 'ERROR';
    const query = Object.fromEntries(
      Object.entries(options.query ?? {}).filter(
        (entry): entry is [string, string | number | boolean] => entry[1] !== undefined,
      ),
    );
    const headers: Record<string, string> = { ...options.headers };
    let body: string | Readable | undefined;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    } else if (options.body !== undefined) {
      body = options.body.stream;
      headers['content-type'] = options.body.contentType;
    }
    try {
      const response = await this.#pool.request({
        method,
        path: `/v${this.apiVersion}${path}`,
        query,
        headers,
        body: body ?? null,
        signal,
        headersTimeout: timeoutMs > 0 ? timeoutMs : this.#defaultTimeoutMs,
        // undici treats 0 as "no body timeout", which is what a deadline-less stream needs
        bodyTimeout: options.idleTimeoutMs ?? timeoutMs,
      });
      outcome = response.statusCode;
      if (response.statusCode < 200 || response.statusCode > 299) {
        const text = await response.body.text();
        const { code, kind } = codeForStatus(response.statusCode);
        throw new EngineError(code, `${engineMessage(text)} (${what}: HTTP ${response.statusCode})`, {
          kind,
          status: response.statusCode,
        });
      }
      await consume(response.body);
      return { status: response.statusCode, headers: response.headers };
    } catch (error) {
      const mapped = this.#transportError(error, what, timedOut, timeoutMs);
      if (typeof outcome !== 'number' && mapped instanceof EngineError) outcome = mapped.code;
      throw mapped;
    } finally {
      clearTimeout(timer);
      this.#onRequest(method, path, outcome);
    }
  }

  #transportError(error: unknown, what: string, timedOut: boolean, timeoutMs: number): unknown {
    if (error instanceof EngineError) return error;
    const code = errorCode(error);
    if (timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new EngineError(
        'ENGINE_TIMEOUT',
        `the Docker engine at ${this.endpoint.address} did not answer ${what} within ${Math.round(timeoutMs / 1000)}s; check that dockerd is healthy`,
        { cause: error },
      );
    }
    return unreachable(this.endpoint, error, what);
  }

  /** Releases the connections; pending requests are allowed to finish. */
  async close(): Promise<void> {
    await this.#pool.close();
  }
}

function unreachable(endpoint: EngineEndpoint, error: unknown, what: string): EngineError {
  const detail = error instanceof Error ? error.message : String(error);
  return new EngineError(
    'ENGINE_UNREACHABLE',
    `cannot reach the Docker engine at ${endpoint.address} (${what}: ${detail}); is dockerd running? Point plugctl at it with --docker-host or DOCKER_HOST`,
    { cause: error },
  );
}

/** How to find and talk to the daemon. */
export interface ConnectOptions extends EngineClientOptions {
  /** explicit address (the `--docker-host` flag); wins over DOCKER_HOST */
  host?: string;
  /** environment to read DOCKER_HOST from; default process.env */
  env?: NodeJS.ProcessEnv;
  /** deadline of the connection handshake (ping + version); default 10 s */
  connectTimeoutMs?: number;
}

/** The API version to address a daemon that speaks `daemonApi`: the lower of its and ours. */
export function negotiateApiVersion(daemonApi: string): string {
  return compareApiVersions(daemonApi, CLIENT_MAX_API_VERSION) < 0 ? daemonApi : CLIENT_MAX_API_VERSION;
}

/**
 * Connects to the daemon: pings it, negotiates the API version (the lower of ours and the daemon's)
 * and reads the engine version. Fails with ENGINE_UNREACHABLE when nothing answers and
 * ENGINE_TOO_OLD when the daemon predates the plugin API.
 */
export async function connectEngine(options: ConnectOptions = {}): Promise<EngineClient> {
  const env = options.env ?? process.env;
  const hostEnv = env['DOCKER_HOST'];
  const endpoint = parseDockerHost(
    options.host ?? (hostEnv !== undefined && hostEnv !== '' ? hostEnv : DEFAULT_DOCKER_HOST),
  );
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const pool = await openPool(endpoint.origin, {
    ...(endpoint.socketPath !== undefined ? { socketPath: endpoint.socketPath } : {}),
    connections: options.connections ?? 8,
    connectTimeout: connectTimeoutMs,
  });
  try {
    const pinged = await handshake(pool, endpoint, '/_ping', connectTimeoutMs);
    // unversioned /version answers at the daemon's own API version, whatever that is
    const version = await handshake(pool, endpoint, '/version', connectTimeoutMs);
    const info = parseVersion(version.text);
    const daemonApi = pinged.apiVersion ?? info.apiVersion ?? CLIENT_MIN_API_VERSION;
    const apiVersion = negotiateApiVersion(daemonApi);
    if (compareApiVersions(apiVersion, CLIENT_MIN_API_VERSION) < 0) {
      throw new EngineError(
        'ENGINE_TOO_OLD',
        `the Docker engine at ${endpoint.address} speaks API ${daemonApi}, older than ${CLIENT_MIN_API_VERSION} which managed plugins need; upgrade dockerd`,
        { kind: 'stalled' },
      );
    }
    return new EngineClient({
      endpoint,
      pool,
      apiVersion,
      engineVersion: info.engineVersion ?? 'unknown',
      daemonApiVersion: daemonApi,
      defaultTimeoutMs: options.defaultTimeoutMs ?? 30_000,
      onRequest: options.onRequest,
    });
  } catch (error) {
    await pool.destroy();
    throw error;
  }
}

function parseVersion(text: string): { engineVersion?: string; apiVersion?: string } {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return {};
    return {
      ...('Version' in parsed && typeof parsed.Version === 'string' ? { engineVersion: parsed.Version } : {}),
      ...('ApiVersion' in parsed && typeof parsed.ApiVersion === 'string'
        ? { apiVersion: parsed.ApiVersion }
        : {}),
    };
  } catch {
    return {};
  }
}

/** One unversioned GET of the handshake; returns the body and the API-Version header. */
async function handshake(
  pool: EnginePool,
  endpoint: EngineEndpoint,
  path: string,
  timeoutMs: number,
): Promise<{ text: string; apiVersion?: string }> {
  let response: Dispatcher.ResponseData;
  let text: string;
  try {
    response = await pool.request({
      method: 'GET',
      path,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await response.body.text();
  } catch (error) {
    throw unreachable(endpoint, error, `GET ${path}`);
  }
  if (response.statusCode !== 200) {
    const { code, kind } = codeForStatus(response.statusCode);
    throw new EngineError(
      code,
      `the Docker engine at ${endpoint.address} failed GET ${path}: ${engineMessage(text)} (HTTP ${response.statusCode})`,
      { kind, status: response.statusCode },
    );
  }
  const header = response.headers['api-version'];
  const apiVersion = Array.isArray(header) ? header[0] : header;
  return apiVersion === undefined ? { text } : { text, apiVersion };
}

/** The part of an undici Pool the engine client uses, with `request` bound to the pool. */
export interface EnginePool {
  request(options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

type RequestFn = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

/**
 * A connection pool to the engine. Only undici's Pool and request API are loaded, not the whole
 * package: that saves most of undici's start-up time and memory (shared/notes/performance-facts.md).
 * The specifiers are variables so TypeScript does not look for types of internal paths.
 */
async function openPool(origin: string, options: Pool.Options): Promise<EnginePool> {
  const poolPath = 'undici/lib/dispatcher/pool.js';
  const requestPath = 'undici/lib/api/api-request.js';
  const [PoolClass, request] = await Promise.all([
    import(poolPath).then((m: { default: typeof Pool }) => m.default),
    import(requestPath).then((m: { default: RequestFn }) => m.default),
  ]);
  const pool = new PoolClass(origin, options);
  return {
    request: (requestOptions) => request.call(pool, requestOptions),
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  };
}
