/**
 * Verified blob streams and files. A blob is trusted only once its last byte has been hashed:
 * the stream from `verifiedStream` ends normally only when the size and digest both match, and
 * errors otherwise. Consumers must treat everything they wrote from such a stream as garbage until
 * it has ended without error, and delete it when it errors; `writeVerifiedFile` does exactly that
 * for files (temp file, fsync, rename only when verified, temp removed on every failure).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError, where } from './errors.ts';
import { isTimeoutError } from './http.ts';
import type { Descriptor } from './manifest.ts';
import { digestAlgorithm } from './manifest.ts';

/** Who a blob came from, for messages. */
export interface BlobSource {
  registry: string;
  repository: string;
}

/**
 * Wraps a response body so it yields the same bytes while hashing and counting them. Errors
 * (RegistryError): SIZE_MISMATCH as soon as more than `descriptor.size` bytes arrive,
 * REGISTRY_BODY_TRUNCATED when the body ends or breaks early, REGISTRY_TIMEOUT when it went
 * silent longer than the idle timeout, DIGEST_MISMATCH at the end when the hash differs.
 * Destroying the returned stream destroys the body.
 */
export function verifiedStream(
  body: AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => unknown },
  descriptor: Descriptor,
  source: BlobSource,
): Readable {
  const subject = `blob ${descriptor.digest} of ${where(source.registry, source.repository)}`;
  const fail = (
    code: 'SIZE_MISMATCH' | 'REGISTRY_BODY_TRUNCATED' | 'REGISTRY_TIMEOUT' | 'DIGEST_MISMATCH',
    message: string,
    cause?: unknown,
  ): RegistryError =>
    new RegistryError(code, message, {
      registry: source.registry,
      repository: source.repository,
      ...(cause !== undefined ? { cause } : {}),
    });
  async function* verify(): AsyncGenerator<Uint8Array> {
    const hash = createHash(digestAlgorithm(descriptor.digest));
    let received = 0;
    try {
      for await (const chunk of body) {
        received += chunk.byteLength;
        if (received > descriptor.size) {
          throw fail(
            'SIZE_MISMATCH',
            `${subject} is larger than the ${descriptor.size} bytes its manifest declares; the registry serves ` +
              'different content than the manifest describes: nothing was kept; re-push the plugin or report it to the registry operator',
          );
        }
        hash.update(chunk);
        yield chunk;
      }
    } catch (error) {
      if (error instanceof RegistryError) throw error;
      if (isTimeoutError(error)) {
        throw fail(
          'REGISTRY_TIMEOUT',
          `${subject} stalled after ${received} of ${descriptor.size} bytes (no data within the idle timeout); nothing was kept; it will be retried`,
          error,
        );
      }
      throw fail(
        'REGISTRY_BODY_TRUNCATED',
        `${subject} broke off after ${received} of ${descriptor.size} bytes; nothing was kept; it will be retried`,
        error,
      );
    } finally {
      body.destroy?.();
    }
    if (received < descriptor.size) {
      throw fail(
        'REGISTRY_BODY_TRUNCATED',
        `${subject} ended after ${received} of ${descriptor.size} bytes; nothing was kept; it will be retried`,
      );
    }
    const actual = `${digestAlgorithm(descriptor.digest)}:${hash.digest('hex')}`;
    if (actual !== descriptor.digest) {
      throw fail(
        'DIGEST_MISMATCH',
        `${subject} hashes to ${actual}: the registry served corrupt or substituted content; nothing was kept. ` +
          'Re-push the plugin or report it to the registry operator',
      );
    }
  }
  return Readable.from(verify(), { objectMode: false, highWaterMark: 1024 * 1024 });
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
