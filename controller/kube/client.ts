/**
 * The HTTP client of the API server: one undici connection pool (only undici's Pool and request API
 * are loaded, as for the Docker engine and the registry), JSON requests with the connection's
 * credentials, Status replies turned into KubeErrors, and line-delimited streams for watches. It never
 * retries: the informer, the leader and the slots each have their own loop and backoff.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { Dispatcher, Pool } from 'undici';
import type { ClusterConnection } from './config.ts';
import { KUBE_CODES, KubeError, classifyStatus } from './errors.ts';

/** Query parameters; undefined values are left out. */
export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

/** One API request. */
export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Query;
  /** serialised as JSON */
  body?: unknown;
  /** default application/json */
  contentType?: string;
  /** the Accept header (default application/json), e.g. to ask for metadata only */
  accept?: string;
  signal?: AbortSignal;
  /** deadline for the response headers and between body chunks (default: the client's) */
  timeoutMs?: number;
}

/** Counters for benchmarks and tests: what this client has sent and received. */
export interface ClientStats {
  requests: number;
  /** watch streams opened */
  streams: number;
  /** bytes received on watch streams */
  streamBytes: number;
}

type RequestFn = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

/** The Status object the API server answers failures with. */
interface Status {
  kind?: string;
  message?: string;
  reason?: string;
  code?: number;
}

function isStatus(value: unknown): value is Status {
  return typeof value === 'object' && value !== null && (value as Status).kind === 'Status';
}

function queryString(query: Query | undefined): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

function retryAfterMs(headers: Dispatcher.ResponseData['headers']): number | undefined {
  const value = headers['retry-after'];
  const text = Array.isArray(value) ? value[0] : value;
  return text !== undefined && /^\d+$/.test(text) ? Number(text) * 1000 : undefined;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Options of KubeClient.open. */
export interface ClientOptions {
  /** default deadline for headers and between body chunks (default 30 s) */
  timeoutMs?: number;
  /** connections kept to the server; watches hold one each (default 16) */
  connections?: number;
}

/** A client for one API server. Construct with KubeClient.open; close() when done. */
export class KubeClient {
  /** the connection's default namespace */
  readonly namespace: string;
  /** where the configuration came from, for messages */
  readonly origin: string;
  readonly stats: ClientStats = { requests: 0, streams: 0, streamBytes: 0 };
  readonly #connection: ClusterConnection;
  readonly #pool: Pool;
  readonly #request: RequestFn;
  readonly #prefix: string;
  readonly #origin: string;
  readonly #timeoutMs: number;

  private constructor(connection: ClusterConnection, pool: Pool, request: RequestFn, timeoutMs: number) {
    this.#connection = connection;
    this.#pool = pool;
    this.#request = request;
    this.#timeoutMs = timeoutMs;
    const url = new URL(connection.server);
    this.#origin = url.origin;
    this.#prefix = url.pathname.replace(/\/+$/, '');
    this.namespace = connection.namespace;
    this.origin = connection.origin;
  }

  /** Builds the client; nothing is sent until the first request. */
  static async open(connection: ClusterConnection, options: ClientOptions = {}): Promise<KubeClient> {
    // Variable specifiers: TypeScript must not look for types of undici's internal paths.
    const poolPath = 'undici/lib/dispatcher/pool.js';
    const requestPath = 'undici/lib/api/api-request.js';
    const [PoolClass, request] = await Promise.all([
      import(poolPath).then((m: { default: typeof Pool }) => m.default),
      import(requestPath).then((m: { default: RequestFn }) => m.default),
    ]);
    const timeoutMs = options.timeoutMs ?? 30_000;
    const pool = new PoolClass(new URL(connection.server).origin, {
      connections: options.connections ?? 16,
      connect: {
        timeout: timeoutMs,
        rejectUnauthorized: !connection.insecureSkipTLSVerify,
        ...(connection.ca !== undefined ? { ca: connection.ca } : {}),
        ...(connection.clientCert !== undefined ? { cert: connection.clientCert } : {}),
        ...(connection.clientKey !== undefined ? { key: connection.clientKey } : {}),
        ...(connection.tlsServerName !== undefined ? { servername: connection.tlsServerName } : {}),
      },
    });
    return new KubeClient(connection, pool, request, timeoutMs);
  }

  async #send(req: KubeRequest, bodyTimeoutMs: number): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {
      accept: req.accept ?? 'application/json',
      'user-agent': 'plugctl',
      ...(await this.#connection.credentials.headers()),
    };
    let body: string | undefined;
    if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['content-type'] = req.contentType ?? 'application/json';
    }
    const path = `${this.#prefix}${req.path}${queryString(req.query)}`;
    this.stats.requests++;
    try {
      return await this.#request.call(this.#pool, {
        origin: this.#origin,
        path,
        method: req.method,
        headers,
        ...(body !== undefined ? { body } : {}),
        headersTimeout: req.timeoutMs ?? this.#timeoutMs,
        bodyTimeout: bodyTimeoutMs,
        ...(req.signal !== undefined ? { signal: req.signal } : {}),
      });
    } catch (error) {
      if (req.signal?.aborted) throw error;
      throw new KubeError(
        KUBE_CODES.unreachable,
        `${req.method} ${req.path} on ${this.#origin} (${this.origin}) failed: ${(error as Error).message}`,
        { kind: 'transient', cause: error },
      );
    }
  }

  async #failure(req: KubeRequest, response: Dispatcher.ResponseData): Promise<KubeError> {
    const text = (
      await readAll(response.body as unknown as Readable).catch(() => Buffer.alloc(0))
    ).toString();
    let status: Status | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      if (isStatus(parsed)) status = parsed;
    } catch {
      // not a Status: the text itself is the message
    }
    if (response.statusCode === 401) this.#connection.credentials.invalidate();
    const { code, kind } = classifyStatus(response.statusCode);
    const detail = status?.message ?? (text.trim().slice(0, 500) || 'no message');
    const wait = retryAfterMs(response.headers);
    return new KubeError(code, `${req.method} ${req.path}: ${detail} (HTTP ${response.statusCode})`, {
      kind,
      status: response.statusCode,
      ...(status?.reason !== undefined ? { reason: status.reason } : {}),
      ...(wait !== undefined ? { retryAfterMs: wait } : {}),
    });
  }

  /** Sends `req` and returns the parsed JSON reply; throws KubeError for any status other than 2xx. */
  async request<T>(req: KubeRequest): Promise<T> {
    const response = await this.#send(req, req.timeoutMs ?? this.#timeoutMs);
    if (response.statusCode < 200 || response.statusCode >= 300) throw await this.#failure(req, response);
    let text: string;
    try {
      text = (await readAll(response.body as unknown as Readable)).toString();
    } catch (error) {
      if (req.signal?.aborted) throw error;
      throw new KubeError(
        KUBE_CODES.unreachable,
        `${req.method} ${req.path}: the reply broke off: ${(error as Error).message}`,
        {
          kind: 'transient',
          cause: error,
        },
      );
    }
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new KubeError(KUBE_CODES.badResponse, `${req.method} ${req.path}: the reply is not JSON`, {
        kind: 'transient',
        cause: error,
      });
    }
  }

  /**
   * Opens a streaming GET (a watch) and calls `onLine` with each line of the body, and `onData` with
   * every chunk as it arrives (liveness for a watchdog). There is no body deadline: the caller stops the
   * stream with `req.signal`. Resolves when the server ends the stream; rejects with KubeError on an
   * error status or a broken connection, or with the abort reason.
   */
  async stream(req: KubeRequest, onLine: (line: string) => void, onData?: () => void): Promise<void> {
    const response = await this.#send(req, 0);
    if (response.statusCode !== 200) throw await this.#failure(req, response);
    this.stats.streams++;
    onData?.();
    let pending = '';
    const decoder = new StringDecoder('utf8'); // a character may span two chunks
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Buffer>) {
        this.stats.streamBytes += chunk.length;
        onData?.();
        pending += decoder.write(chunk);
        let newline = pending.indexOf('\n');
        while (newline !== -1) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (line.trim() !== '') onLine(line);
          newline = pending.indexOf('\n');
        }
      }
    } catch (error) {
      if (req.signal?.aborted) throw req.signal.reason ?? error;
      if (error instanceof KubeError) throw error; // from onLine
      throw new KubeError(
        KUBE_CODES.unreachable,
        `${req.path}: the watch stream broke: ${(error as Error).message}`,
        {
          kind: 'transient',
          cause: error,
        },
      );
    }
    if (pending.trim() !== '') onLine(pending);
  }

  /** Closes the pool: open requests and streams are destroyed. */
  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}
