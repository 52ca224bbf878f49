/**
 * The content-addressed blob store, laid out like containerd's content/local store that dockerd's
 * plugin manager uses: `<root>/storage/blobs/<algorithm>/<hex>`, read-only files (0444). Content is
 * ingested into a temp file under `<root>/tmp/` and becomes visible only when committed: the
 * caller has verified its digest, the file is fsynced, renamed to its digest's path, and the
 * directory fsynced. A blob path therefore always holds exactly the bytes its name says.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { ReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isDigest } from '../../registry/manifest.ts';
import { ParallelWriter, isNotFound, randomHex } from './fsutil.ts';
import { fsyncDir } from '../../runtime/atomic-file.ts';
import type { StoreLayout } from './layout.ts';

/** One blob of the store. */
export interface BlobInfo {
  digest: string;
  size: number;
}

/**
 * Bytes written to an ingest file between two background data syncs. Syncing as the blob arrives
 * spreads its writeback over the download, so the fsync that must precede the commit finds little
 * left to write instead of the whole blob (dockerd's content store fsyncs every ingest too).
 */
const EARLY_SYNC_BYTES = 8 * 1024 * 1024;

/**
 * A blob being written to its temp file (several writes in flight, so a chunk must not be modified
 * until it has been written; see ParallelWriter). Nothing here checks the digest: the caller
 * verifies the bytes (the registry client's verified stream) before commit.
 */
export class Ingest {
  readonly path: string;
  readonly #handle: FileHandle;
  readonly #writer: ParallelWriter;
  #closed = false;
  /** the background data sync in flight, if any */
  #syncing: Promise<void> | undefined;
  #syncedAt = 0;
  /** a failed background sync: reported by finish(), since the kernel reports a writeback error once */
  #syncFailure: unknown = undefined;
  #finishing: Promise<void> | undefined;

  /** Use ContentStore.ingest(). */
  constructor(path: string, handle: FileHandle) {
    this.path = path;
    this.#handle = handle;
    this.#writer = new ParallelWriter(handle);
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#writer.size;
  }

  /** The first failure of a write or of a background sync, if any. */
  get failure(): unknown {
    return this.#writer.failure ?? this.#syncFailure;
  }

  /** Queues `chunk` at the current end; waits only when too many writes are in flight. */
  async write(chunk: Uint8Array): Promise<void> {
    await this.#writer.write(chunk);
    this.#syncEarly();
  }

  /**
   * Queues `chunk` without waiting; `written` is called once the file no longer reads it (see
   * ParallelWriter.queue). The caller bounds how much it has in flight.
   */
  queue(chunk: Uint8Array, written?: () => void): void {
    this.#writer.queue(chunk, written);
    this.#syncEarly();
  }

  #syncEarly(): void {
    if (this.#syncing !== undefined || this.#finishing !== undefined) return;
    if (this.#writer.size - this.#syncedAt < EARLY_SYNC_BYTES) return;
    this.#syncedAt = this.#writer.size;
    this.#syncing = this.#handle.datasync().then(
      () => {
        this.#syncing = undefined;
      },
      (error: unknown) => {
        this.#syncFailure ??= error;
        this.#syncing = undefined;
      },
    );
  }

  /** Waits for every write, fsyncs and closes the file. Calling it again returns the same promise. */
  finish(): Promise<void> {
    this.#finishing ??= (async () => {
      await this.#writer.flush();
      await this.#syncing;
      if (this.#syncFailure !== undefined) throw this.#syncFailure;
      await this.#handle.sync();
      this.#closed = true;
      await this.#handle.close();
    })();
    return this.#finishing;
  }

  /** Closes (if still open) and deletes the temp file. Never throws. */
  async abort(): Promise<void> {
    await this.#writer.settle();
    await this.#syncing;
    await this.#finishing?.catch(() => undefined);
    if (!this.#closed) {
      this.#closed = true;
      await this.#handle.close().catch(() => undefined);
    }
    await rm(this.path, { force: true }).catch(() => undefined);
  }
}

/** The blob store of one root. Constructing it does no I/O. */
export class ContentStore {
  readonly #layout: StoreLayout;

  constructor(layout: StoreLayout) {
    this.#layout = layout;
  }

  /** Where a committed blob lives (whether or not it exists). */
  path(digest: string): string {
    return this.#layout.blobPath(digest);
  }

  /** The size of a committed blob, or undefined when the store does not have it. */
  async info(digest: string): Promise<BlobInfo | undefined> {
    if (!isDigest(digest)) return undefined;
    try {
      const stats = await stat(this.path(digest));
      return stats.isFile() ? { digest, size: stats.size } : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Starts writing a blob into a temp file under `<root>/tmp/`. */
  async ingest(): Promise<Ingest> {
    const path = join(this.#layout.tmp, `ingest-${randomHex(8)}`);
    const handle = await open(path, 'wx', 0o600);
    return new Ingest(path, handle);
  }

  /**
   * Publishes a finished ingest (see Ingest.finish) under `digest`, which the caller has verified.
   * When the blob already exists (another pull committed it first) the ingest is dropped.
   * The directory fsync is left to `syncCommits`, so that a pull commits all blobs with one.
   */
  async commit(ingest: Ingest, digest: string): Promise<void> {
    const target = this.path(digest);
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    if ((await this.info(digest)) !== undefined) {
      await rm(ingest.path, { force: true });
      return;
    }
    await chmod(ingest.path, 0o444);
    await rename(ingest.path, target);
  }

  /** Makes the commits of digests with these algorithms durable (one fsync per directory). */
  async syncCommits(digests: readonly string[]): Promise<void> {
    const dirs = new Set(digests.map((digest) => dirname(this.path(digest))));
    for (const dir of dirs) await fsyncDir(dir);
  }

  /**
   * Stores `bytes` (configs, manifests) unless present, verifying them against `digest` when
   * given. Returns the digest. Durable when it returns.
   */
  async put(bytes: Uint8Array, digest?: string): Promise<string> {
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (digest !== undefined && digest !== actual) {
      throw new Error(`refusing to store content as ${digest}: it hashes to ${actual}`);
    }
    if ((await this.info(actual)) !== undefined) return actual;
    const ingest = await this.ingest();
    try {
      await ingest.write(bytes);
      await ingest.finish();
      await this.commit(ingest, actual);
    } catch (error) {
      await ingest.abort();
      throw error;
    }
    await this.syncCommits([actual]);
    return actual;
  }

  /** The bytes of a (small) blob, or undefined when absent. */
  async read(digest: string): Promise<Buffer | undefined> {
    if (!isDigest(digest)) return undefined;
    try {
      return await readFile(this.path(digest));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** A stream of a blob's bytes (1 MiB reads). */
  openRead(digest: string): ReadStream {
    return createReadStream(this.path(digest), { highWaterMark: 1024 * 1024 });
  }

  /** Every committed blob with its size. */
  async list(): Promise<BlobInfo[]> {
    const infos = await Promise.all((await this.digests()).map((digest) => this.info(digest)));
    return infos.filter((info): info is BlobInfo => info !== undefined);
  }

  /** The digests of every committed blob (one readdir per algorithm, no stat). Files not named like a digest are ignored (never deleted). */
  async digests(): Promise<string[]> {
    const out: string[] = [];
    let algorithms: string[];
    try {
      algorithms = await readdir(this.#layout.blobs);
    } catch (error) {
      if (isNotFound(error)) return out;
      throw error;
    }
    for (const algorithm of algorithms) {
      let names: string[];
      try {
        names = await readdir(join(this.#layout.blobs, algorithm));
      } catch (error) {
        if (isNotFound(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
        throw error;
      }
      for (const name of names) {
        const digest = `${algorithm}:${name}`;
        if (isDigest(digest)) out.push(digest);
      }
    }
    return out;
  }

  /** Deletes a blob and returns its size (0 when it was absent). The caller must hold the GC lock exclusively. */
  async delete(digest: string): Promise<number> {
    const path = this.path(digest);
    try {
      const { size } = await stat(path);
      await unlink(path);
      return size;
    } catch (error) {
      if (!isNotFound(error)) throw error;
      return 0;
    }
  }
}
