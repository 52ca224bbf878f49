/**
 * Helpers for the embedded store's tests: tar archives built entry by entry (hostile ones too,
 * since tar-stream writes names and link targets as given), temp directories, and a listing of a
 * directory tree for state assertions.
 */
import { lstat, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import type { Header } from 'tar-stream';

/** One entry: a header (name required) and, for files, the content. */
export interface TarEntry {
  name: string;
  type?: Header['type'];
  content?: string | Uint8Array;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

/** An uncompressed tar of `entries`, in order. */
export async function tarOf(entries: readonly TarEntry[]): Promise<Buffer> {
  const packer = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    packer.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    packer.on('end', () => resolve());
    packer.on('error', reject);
  });
  for (const entry of entries) {
    const content =
      entry.content === undefined
        ? undefined
        : typeof entry.content === 'string'
          ? Buffer.from(entry.content)
          : entry.content;
    const header = {
      name: entry.name,
      type: entry.type ?? 'file',
      mode: entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644),
      mtime: entry.mtime ?? new Date(1_000_000_000_000),
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      ...(entry.linkname !== undefined ? { linkname: entry.linkname } : {}),
      ...(entry.devmajor !== undefined ? { devmajor: entry.devmajor, devminor: entry.devminor ?? 0 } : {}),
      ...(entry.pax !== undefined ? { pax: entry.pax } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const callback = (error?: Error | null): void => (error ? reject(error) : resolve());
      if (content !== undefined) packer.entry(header, content, callback);
      else packer.entry(header, callback);
    });
  }
  packer.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A gzip of tarOf(entries). */
export async function tgzOf(entries: readonly TarEntry[]): Promise<Buffer> {
  return gzipSync(await tarOf(entries));
}

/** Yields `bytes` in chunks of `size` (as a network would). */
export async function* chunked(bytes: Uint8Array, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += size) yield bytes.subarray(offset, offset + size);
}

/** A temp directory and its removal. */
export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `plugctl-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * The tree under `dir` as sorted lines: `d path`, `f path`, `l path -> target`, `p path` (fifo),
 * `? path` (anything else).
 */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const abs = join(dir, childRel);
      const stats = await lstat(abs);
      if (stats.isDirectory()) {
        out.push(`d ${childRel}`);
        await walk(childRel);
      } else if (stats.isSymbolicLink()) out.push(`l ${childRel} -> ${await readlink(abs)}`);
      else if (stats.isFile()) out.push(`f ${childRel}`);
      else if (stats.isFIFO()) out.push(`p ${childRel}`);
      else out.push(`? ${childRel}`);
    }
  };
  await walk('');
  return out;
}
