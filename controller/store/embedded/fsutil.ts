/**
 * File-system primitives of the embedded store: removal, random names, and the parallel writer that
 * streams a blob to disk. Whole files are written with runtime/atomic-file.ts.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

/** Removes a file or a directory tree; absent is fine. */
export async function removeAll(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/** Random lowercase hex of `bytes` bytes. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** True for an ENOENT error. */
export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/**
 * Writes chunks at increasing offsets of a file with several writes in flight (the thread pool
 * writes while the caller produces the next chunk). A chunk must not be modified until it has been
 * written: `written`, when given, is called exactly once when the writer no longer reads it (after
 * its write finished or failed, or at once when the writer has already failed), which is when a
 * pooled buffer may be reused. The first failure is thrown by the next `write` or by `flush`.
 */
export class ParallelWriter {
  readonly #handle: FileHandle;
  readonly #maxInflight: number;
  readonly #inflight = new Set<Promise<void>>();
  #position = 0;
  #failure: unknown = undefined;

  constructor(handle: FileHandle, maxInflight = 4) {
    this.#handle = handle;
    this.#maxInflight = maxInflight;
  }

  /** Bytes handed to write so far. */
  get size(): number {
    return this.#position;
  }

  /** The first write failure, if any (writes after it are dropped). */
  get failure(): unknown {
    return this.#failure;
  }

  /** Queues `chunk` at the current end; waits only while too many writes are in flight. */
  async write(chunk: Uint8Array, written?: () => void): Promise<void> {
    this.queue(chunk, written);
    if (this.#inflight.size >= this.#maxInflight) await Promise.race(this.#inflight);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Queues `chunk` at the current end without waiting, however many writes are in flight: for a
   * caller that bounds what it has in flight itself (a pool of buffers). Failures are reported as
   * for write().
   */
  queue(chunk: Uint8Array, written?: () => void): void {
    if (this.#failure !== undefined || chunk.byteLength === 0) {
      written?.();
      return;
    }
    const position = this.#position;
    this.#position += chunk.byteLength;
    const pending = this.#writeAll(chunk, position).then(
      () => written?.(),
      (error: unknown) => {
        this.#failure ??= error;
        written?.();
      },
    );
    this.#inflight.add(pending);
    void pending.finally(() => this.#inflight.delete(pending));
  }

  /** Waits for every queued write; throws the first failure. */
  async flush(): Promise<void> {
    await Promise.all(this.#inflight);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Waits for queued writes without throwing (before closing on an error path). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#inflight);
  }

  async #writeAll(chunk: Uint8Array, position: number): Promise<void> {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const { bytesWritten } = await this.#handle.write(
        chunk,
        offset,
        chunk.byteLength - offset,
        position + offset,
      );
      offset += bytesWritten;
    }
  }
}
