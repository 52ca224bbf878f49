/**
 * Verified blob streams and files. A blob is trusted only once its last byte has been hashed:
 * the stream from `verifiedStream` ends normally only when the size and digest both match, and
 * errors otherwise. Consumers must treat everything they wrote from such a stream as garbage until
 * it has ended without error, and delete it when it errors; `writeVerifiedFile` does exactly that
 * for files (temp file, fsync, rename only when verified, temp removed on every failure).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError, where } from './errors.ts';
import { isTimeoutError, timeoutDetail } from './http.ts';
import type { Descriptor } from './manifest.ts';
import { digestAlgorithm } from './manifest.ts';
import { keepHttpParserBaseline } from './parser-tiering.ts';

// The registry client imports this module before it first loads undici, so this runs before the
// HTTP parser is instantiated (see parser-tiering.ts for why and what it saves).
keepHttpParserBaseline();

/** Who a blob came from, for messages. */
export interface BlobSource {
  registry: string;
  repository: string;
}

type VerifyFailure = 'SIZE_MISMATCH' | 'REGISTRY_BODY_TRUNCATED' | 'REGISTRY_TIMEOUT' | 'DIGEST_MISMATCH';

/**
 * The verifying stream itself. It listens to the body's events rather than iterating it: a blob is
 * hundreds of 64 KiB chunks, and an async iterator per layer of streams costs a promise and a
 * turn of the microtask queue per chunk, on the thread that also parses, hashes and unpacks.
 * Each chunk is hashed and passed on synchronously; the body is paused while this stream's
 * consumer is behind (`push` returns false) and resumed when it reads again.
 */
class VerifiedBlobStream extends Readable {
  readonly #body: Readable;
  readonly #descriptor: Descriptor;
  readonly #source: BlobSource;
  readonly #subject: string;
  readonly #hash: Hash;
  #received = 0;
  #settled = false;

  constructor(body: Readable, descriptor: Descriptor, source: BlobSource) {
    super({ highWaterMark: 1024 * 1024 });
    this.#body = body;
    this.#descriptor = descriptor;
    this.#source = source;
    this.#subject = `blob ${descriptor.digest} of ${where(source.registry, source.repository)}`;
    this.#hash = createHash(digestAlgorithm(descriptor.digest));
    body.on('data', (chunk: Uint8Array) => this.#onData(chunk));
    body.once('end', () => this.#onEnd());
    body.once('error', (error: unknown) => this.#onBroken(error));
    // a body destroyed without an error (socket closed under it) never ends: that is a truncation
    body.once('close', () => this.#onBroken(undefined));
    // flowing starts when this stream is read
    body.pause();
  }

  override _read(): void {
    if (!this.#settled) this.#body.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#settled) {
      this.#settled = true;
      this.#body.destroy();
    }
    callback(error);
  }

  #fail(code: VerifyFailure, message: string, cause?: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#body.destroy();
    this.destroy(
      new RegistryError(code, message, {
        registry: this.#source.registry,
        repository: this.#source.repository,
        ...(cause !== undefined ? { cause } : {}),
      }),
    );
  }

  #onData(chunk: Uint8Array): void {
    if (this.#settled) return;
    this.#received += chunk.byteLength;
    if (this.#received > this.#descriptor.size) {
      this.#fail(
        'SIZE_MISMATCH',
        `${this.#subject} is larger than the ${this.#descriptor.size} bytes its manifest declares; the registry serves ` +
          'different content than the manifest describes: nothing was kept; re-push the plugin or report it to the registry operator',
      );
      return;
    }
    this.#hash.update(chunk);
    if (!this.push(chunk)) this.#body.pause();
  }

  #onEnd(): void {
    if (this.#settled) return;
    const size = this.#descriptor.size;
    if (this.#received < size) {
      this.#fail(
        'REGISTRY_BODY_TRUNCATED',
        `${this.#subject} ended after ${this.#received} of ${size} bytes; nothing was kept; it will be retried`,
      );
      return;
    }
    const digest = this.#descriptor.digest;
    const actual = `${digestAlgorithm(digest)}:${this.#hash.digest('hex')}`;
    if (actual !== digest) {
      this.#fail(
        'DIGEST_MISMATCH',
        `${this.#subject} hashes to ${actual}: the registry served corrupt or substituted content; nothing was kept. ` +
          'Re-push the plugin or report it to the registry operator',
      );
      return;
    }
    this.#settled = true;
    this.push(null);
  }

  #onBroken(error: unknown): void {
    if (this.#settled) return;
    const received = this.#received;
    const size = this.#descriptor.size;
    if (error !== undefined && isTimeoutError(error)) {
      this.#fail(
        'REGISTRY_TIMEOUT',
        `${this.#subject} stalled after ${received} of ${size} bytes (${timeoutDetail(error)}); nothing was kept; it will be retried`,
        error,
      );
      return;
    }
    this.#fail(
      'REGISTRY_BODY_TRUNCATED',
      `${this.#subject} broke off after ${received} of ${size} bytes; nothing was kept; it will be retried`,
      error,
    );
  }
}

/**
 * Wraps a response body so it yields the same bytes while hashing and counting them. Errors
 * (RegistryError): SIZE_MISMATCH as soon as more than `descriptor.size` bytes arrive,
 * REGISTRY_BODY_TRUNCATED when the body ends or breaks early, REGISTRY_TIMEOUT when it went
 * silent longer than the idle timeout, DIGEST_MISMATCH at the end when the hash differs.
 * Destroying the returned stream destroys the body. The stream ends (`end`, a null read) only
 * after the last byte was hashed and matched.
 */
export function verifiedStream(
  body: AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => unknown },
  descriptor: Descriptor,
  source: BlobSource,
): Readable {
  if (body instanceof Readable) return new VerifiedBlobStream(body, descriptor, source);
  const readable = Readable.from(body, { objectMode: false });
  readable.once('close', () => body.destroy?.());
  return new VerifiedBlobStream(readable, descriptor, source);
}

/**
 * Streams `source` into `path` through a temp file in the same directory: fsync, rename, fsync of
 * the directory, all only after the stream ended without error. On any failure the temp file is
 * removed and `path` is untouched (an existing file there is neither replaced nor deleted).
 */
export async function writeVerifiedFile(source: Readable, path: string): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.partial-${randomBytes(6).toString('hex')}`);
  try {
    await pipeline(source, createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
    const handle = await open(temp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    source.destroy();
    await rm(temp, { force: true });
    throw error;
  }
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
