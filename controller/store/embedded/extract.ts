/**
 * Safe layer extraction: applies one image layer (a tar, gzip-compressed or not, sniffed from its
 * first bytes as moby's DecompressStream does) onto a root file system directory, with whiteouts,
 * in one streaming pass (gunzip with 1 MiB chunks -> tar-stream -> files).
 *
 * Policies (decided here, relied on by the store):
 * - Paths: an entry name that is absolute or has a `..` component is refused (LAYER_UNSAFE, naming
 *   the entry). Every parent component is resolved against the rootfs: a symlink met on the way is
 *   followed the way the plugin will see it (an absolute target is taken relative to the rootfs);
 *   one that climbs above the rootfs is refused. A symlink's own target may be anything (it is only
 *   a name); writing THROUGH a symlink out of the rootfs is what is refused. An existing entry at
 *   the final path is replaced (not followed), unless both are directories.
 * - Hardlinks: the target is resolved the same way and must exist inside the rootfs and not be a
 *   directory; otherwise LAYER_UNSAFE.
 * - Whiteouts: `.wh.NAME` removes NAME from lower layers; `.wh..wh..opq` empties its directory of
 *   everything not written by this same layer (moby's ApplyLayer rules); other `.wh..wh.` entries
 *   and aufs metadata directories at the top (`.wh..wh.plnk/...`) are ignored.
 * - Device nodes (character, block) are skipped with a warning: Node cannot mknod, and a plugin
 *   never needs them in its rootfs (the runtime gives it a fresh /dev and adds the devices its
 *   config and settings name). FIFOs are created (with mkfifo(1)).
 * - Ownership and modes: as root, every entry gets the archive's uid/gid (lchown) and its full mode
 *   including set-uid, set-gid and sticky bits, as moby does: the plugin's rootfs lives in a 0700
 *   directory no unprivileged host user can enter, and the content was consented to through the
 *   privilege grant. Not as root, ownership is left as is (moby's rootless behaviour) and modes are
 *   still applied. Extended attributes (file capabilities, SELinux labels) are skipped with a
 *   warning: Node cannot set them.
 * - Size: the inflated size is capped (default 4 GiB) and so is the inflate ratio once past a grace
 *   size (default 100:1 past 16 MiB); beyond either the layer is refused as GZIP_BOMB.
 * The caller extracts into a staging directory and discards it on any error.
 */
import {
  chmod,
  chown,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readlink,
  rm,
  symlink,
  utimes,
} from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { createGunzip as createGunzipType } from 'node:zlib';
import type { Logger } from 'pino';
import type { Header, extract as extractType } from 'tar-stream';
import { LayerError } from './errors.ts';
import { ParallelWriter, isNotFound } from './fsutil.ts';

/** Bounds on what one layer may inflate to. */
export interface ExtractLimits {
  /** largest inflated size of one layer, bytes (default 4 GiB) */
  maxBytes: number;
  /** largest inflated/compressed ratio (default 100) ... */
  maxRatio: number;
  /** ... enforced once this many bytes have been inflated (default 16 MiB) */
  ratioGraceBytes: number;
}

/** The default limits: 4 GiB, 100:1 past 16 MiB. */
export const DEFAULT_EXTRACT_LIMITS: Readonly<ExtractLimits> = Object.freeze({
  maxBytes: 4 * 1024 ** 3,
  maxRatio: 100,
  ratioGraceBytes: 16 * 1024 ** 2,
});

/** What applying one layer did. */
export interface LayerReport {
  /** tar entries seen */
  entries: number;
  /** bytes of tar stream (inflated) */
  tarBytes: number;
  /** bytes of the layer as given (compressed when gzip) */
  inputBytes: number;
  /** `entry: why` for each entry that was skipped (device nodes, xattrs) */
  skipped: string[];
  /** `sha256:` of the uncompressed tar stream: the layer's diff ID, to check against the config's */
  diffId: string;
}

/** Options of applyLayer. */
export interface ApplyLayerOptions {
  /** names the layer in messages, e.g. its digest */
  layer: string;
  limits?: ExtractLimits;
  /** apply the archive's uid/gid (default: when running as root) */
  chown?: boolean;
  logger?: Pick<Logger, 'warn'>;
  signal?: AbortSignal;
  /**
   * Called after every 2 MiB of layer input, e.g. `() => gc({ type: 'minor' })` in a process run
   * with --expose-gc: the dead 64 KiB socket buffers of a download otherwise pile up until V8's
   * external-memory threshold (peak RSS ~135 MB instead of ~105 MB for a 50 MB layer, same speed).
   */
  reclaim?: () => void;
}

/** Input bytes between two calls of ApplyLayerOptions.reclaim. */
const RECLAIM_EVERY = 2 * 1024 * 1024;

const INFLATE_CHUNK = 1024 * 1024;
const MAX_SYMLINK_HOPS = 40;
const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_META_PREFIX = '.wh..wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';
const MAX_SKIPPED_REPORTED = 100;

type Compression = 'gzip' | 'none';

function sniff(first: Uint8Array, layer: string): Compression {
  if (first[0] === 0x1f && first[1] === 0x8b) return 'gzip';
  const unsupported = (name: string): never => {
    throw new LayerError(
      'LAYER_UNSUPPORTED',
      `layer ${layer} is ${name}-compressed; plugctl unpacks gzip-compressed and plain tar layers only. Push the plugin with gzip layers (docker plugin push writes them)`,
    );
  };
  if (first[0] === 0x28 && first[1] === 0xb5 && first[2] === 0x2f && first[3] === 0xfd) unsupported('zstd');
  if (first[0] === 0x42 && first[1] === 0x5a && first[2] === 0x68) unsupported('bzip2');
  if (first[0] === 0xfd && first[1] === 0x37 && first[2] === 0x7a && first[3] === 0x58) unsupported('xz');
  return 'none';
}

/** Linux's PATH_MAX and NAME_MAX: longer paths and components cannot be stored, whatever the disk. */
const PATH_MAX = 4095;
const NAME_MAX = 255;

/**
 * How an entry name is quoted in messages: in full up to 200 characters, else its start and its
 * length (a hostile name of thousands of characters must not swamp a log line or a status).
 */
export function entryLabel(name: string): string {
  if (name.length <= 200) return JSON.stringify(name);
  return `${JSON.stringify(name.slice(0, 100))}... (${name.length} characters)`;
}

/**
 * Splits an entry name into its components: `./a//b/` -> [a, b]. Refuses absolute names and `..`
 * components (LAYER_UNSAFE), and names no Linux file system can hold (LAYER_INVALID: longer than
 * PATH_MAX bytes, a component longer than NAME_MAX bytes, a NUL byte), naming the entry and layer.
 */
export function entryComponents(name: string, layer: string, what = 'entry'): string[] {
  if (name.startsWith('/')) {
    throw new LayerError(
      'LAYER_UNSAFE',
      `layer ${layer}: ${what} ${entryLabel(name)} is an absolute path; layers may only name paths inside the rootfs. The plugin's content is hostile or broken; nothing was installed`,
      { entry: name },
    );
  }
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) {
    throw new LayerError(
      'LAYER_UNSAFE',
      `layer ${layer}: ${what} ${entryLabel(name)} climbs out with '..'; layers may only name paths inside the rootfs. The plugin's content is hostile or broken; nothing was installed`,
      { entry: name },
    );
  }
  const unrepresentable = (why: string): LayerError =>
    new LayerError(
      'LAYER_INVALID',
      `layer ${layer}: ${what} ${entryLabel(name)} ${why}, which no Linux file system can store; the layer cannot be installed. Nothing was installed`,
      { entry: name },
    );
  if (name.includes('\0')) throw unrepresentable('contains a NUL byte');
  if (Buffer.byteLength(name, 'utf8') > PATH_MAX) throw unrepresentable(`is longer than ${PATH_MAX} bytes`);
  if (parts.some((part) => Buffer.byteLength(part, 'utf8') > NAME_MAX)) {
    throw unrepresentable(`has a component longer than ${NAME_MAX} bytes`);
  }
  return parts;
}

/**
 * errno codes (and Node's argument errors) that mean "this entry cannot be represented here": the
 * layer's fault, permanent. Anything else (ENOSPC, EIO, EACCES, EROFS) is the host's: STORE_IO.
 */
const UNREPRESENTABLE: ReadonlySet<string> = new Set([
  'ENAMETOOLONG',
  'EINVAL',
  'EILSEQ',
  'ELOOP',
  'ENOTDIR',
  'EISDIR',
  'EEXIST',
  'EMLINK',
  'EFBIG',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_ARG_TYPE',
]);

async function lstatOrUndefined(path: string): Promise<Awaited<ReturnType<typeof lstat>> | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // discard
  }
}

async function mkfifo(path: string, mode: number): Promise<void> {
  // FIFOs are rare in layers: child_process is loaded only for them
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile('mkfifo', ['-m', (mode & 0o7777).toString(8), '--', path], (error) =>
      error === null ? resolve() : reject(error),
    );
  });
}

interface Resolved {
  /** absolute path */
  abs: string;
  /** path relative to the rootfs, components joined by '/'; '' is the rootfs itself */
  rel: string;
}

/**
 * Writes entries under one rootfs. Keeps a cache of directories it knows to be real (not symlinks)
 * so that the common case costs no lstat; every removal or replacement invalidates the cache
 * below the removed path. Only this writer touches the staging rootfs, so the cache stays true.
 */
class RootfsWriter {
  readonly #root: string;
  readonly #layer: string;
  readonly #chown: boolean;
  readonly #realDirs = new Set<string>(['']);
  /** paths (rel) written by the current layer: opaque whiteouts keep them */
  readonly #unpacked = new Set<string>();
  /** directory metadata, applied after the layer (children change mtimes; a 0555 dir must stay writable) */
  readonly #dirMeta = new Map<string, { mode: number; mtime: Date }>();
  readonly skipped: string[] = [];
  #skippedCount = 0;

  constructor(root: string, layer: string, chownEntries: boolean) {
    this.#root = root;
    this.#layer = layer;
    this.#chown = chownEntries;
  }

  get skippedCount(): number {
    return this.#skippedCount;
  }

  #skip(entry: string, why: string): void {
    this.#skippedCount++;
    if (this.skipped.length < MAX_SKIPPED_REPORTED) this.skipped.push(`${entry}: ${why}`);
  }

  #unsafe(entry: string, message: string): LayerError {
    return new LayerError(
      'LAYER_UNSAFE',
      `layer ${this.#layer}: entry ${entryLabel(entry)} ${message}. The plugin's content is hostile or broken; nothing was installed`,
      { entry },
    );
  }

  #invalid(entry: string, message: string, cause?: unknown): LayerError {
    return new LayerError('LAYER_INVALID', `layer ${this.#layer}: entry ${entryLabel(entry)} ${message}`, {
      entry,
      ...(cause !== undefined ? { cause } : {}),
    });
  }

  #forget(rel: string): void {
    const prefix = `${rel}/`;
    for (const dir of this.#realDirs) if (dir === rel || dir.startsWith(prefix)) this.#realDirs.delete(dir);
    for (const dir of this.#dirMeta.keys())
      if (dir === rel || dir.startsWith(prefix)) this.#dirMeta.delete(dir);
  }

  /**
   * Resolves `parts` to a real directory inside the rootfs, creating missing directories (0755, as
   * moby does for implied parents) and following symlinks with the rootfs as `/`. Refuses a
   * symlink chain that climbs above the rootfs or loops.
   */
  async resolveDir(parts: readonly string[], entry: string): Promise<Resolved> {
    // `pending` may hold '..' and '.' from symlink targets (entry names have none); a '..' pops a
    // component already resolved to a real directory, which is how the kernel resolves it
    let pending = [...parts];
    const done: string[] = [];
    let hops = 0;
    while (pending.length > 0) {
      const component = pending[0] as string;
      pending = pending.slice(1);
      if (component === '' || component === '.') continue;
      if (component === '..') {
        if (done.length === 0) {
          throw this.#unsafe(entry, 'would be written through a symlink that points outside the rootfs');
        }
        done.pop();
        continue;
      }
      const rel = done.length === 0 ? component : `${done.join('/')}/${component}`;
      if (this.#realDirs.has(rel)) {
        done.push(component);
        continue;
      }
      const abs = join(this.#root, rel);
      const stats = await lstatOrUndefined(abs);
      if (stats === undefined) {
        await mkdir(abs, { mode: 0o755 });
        this.#realDirs.add(rel);
        // created by this layer, so an opaque whiteout later in the same layer keeps it
        this.#unpacked.add(rel);
        done.push(component);
        continue;
      }
      if (stats.isDirectory()) {
        this.#realDirs.add(rel);
        done.push(component);
        continue;
      }
      if (stats.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) {
          throw this.#unsafe(entry, `goes through more than ${MAX_SYMLINK_HOPS} symlinks (a loop?)`);
        }
        const target = await readlink(abs);
        // an absolute target is resolved from the rootfs, which is `/` for the plugin
        if (target.startsWith('/')) done.length = 0;
        pending = [...target.split('/'), ...pending];
        continue;
      }
      throw this.#invalid(entry, `needs /${rel} to be a directory, but an earlier entry made it a file`);
    }
    return { abs: join(this.#root, ...done), rel: done.join('/') };
  }

  /** Makes room for a new entry at `target`: removes what is there unless both are directories. */
  async #clear(target: Resolved, isDir: boolean): Promise<'kept-dir' | 'clear'> {
    const existing = await lstatOrUndefined(target.abs);
    if (existing === undefined) return 'clear';
    if (isDir && existing.isDirectory()) return 'kept-dir';
    await rm(target.abs, { recursive: true, force: true });
    this.#forget(target.rel);
    return 'clear';
  }

  async #owner(abs: string, header: Header, isLink: boolean): Promise<void> {
    if (!this.#chown) return;
    const uid = header.uid ?? 0;
    const gid = header.gid ?? 0;
    if (isLink) await lchown(abs, uid, gid);
    else await chown(abs, uid, gid);
  }

  /**
   * Applies one entry; `stream` is its content (always consumed). A file-system refusal that says
   * the entry cannot be represented (a name too long, a structure the layer contradicts) is the
   * layer's fault: LAYER_INVALID naming the entry, never a transient STORE_IO retried forever.
   */
  async apply(header: Header, stream: AsyncIterable<unknown>): Promise<void> {
    try {
      await this.#apply(header, stream);
    } catch (error) {
      if (error instanceof LayerError) throw error;
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      if (typeof code === 'string' && UNREPRESENTABLE.has(code)) {
        throw this.#invalid(header.name, `cannot be stored on this file system (${code})`, error);
      }
      throw error;
    }
  }

  async #apply(header: Header, stream: AsyncIterable<unknown>): Promise<void> {
    const name = header.name;
    const parts = entryComponents(name, this.#layer);
    if (parts.length === 0) {
      // the rootfs itself (`./`): its mode and owner stay the store's
      await drain(stream);
      return;
    }
    if (
      (parts[0] as string).startsWith(WHITEOUT_META_PREFIX) &&
      !(parts.length === 1 && parts[0] === WHITEOUT_OPAQUE)
    ) {
      // aufs metadata at the top (`.wh..wh.plnk/...`, `.wh..wh.aufs`): never part of the rootfs
      await drain(stream);
      return;
    }
    const base = parts[parts.length - 1] as string;
    const parent = await this.resolveDir(parts.slice(0, -1), name);

    if (base.startsWith(WHITEOUT_PREFIX)) {
      await drain(stream);
      if (base === WHITEOUT_OPAQUE) return this.#opaque(parent);
      if (base.startsWith(WHITEOUT_META_PREFIX)) return;
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      if (hidden === '' || hidden === '.' || hidden === '..') {
        throw this.#unsafe(name, 'is a whiteout of an invalid name');
      }
      const rel = parent.rel === '' ? hidden : `${parent.rel}/${hidden}`;
      await rm(join(parent.abs, hidden), { recursive: true, force: true });
      this.#forget(rel);
      return;
    }

    const target: Resolved = {
      abs: join(parent.abs, base),
      rel: parent.rel === '' ? base : `${parent.rel}/${base}`,
    };
    const mode = (header.mode ?? 0o644) & 0o7777;
    const mtime = header.mtime ?? new Date(0);
    const pax = header.pax;
    if (typeof pax === 'object' && pax !== null) {
      const xattrs = Object.keys(pax).filter((key) => key.startsWith('SCHILY.xattr.'));
      if (xattrs.length > 0)
        this.#skip(name, `extended attributes not applied (${xattrs.map((k) => k.slice(13)).join(', ')})`);
    }

    switch (header.type) {
      case 'file':
      case 'contiguous-file': {
        await this.#clear(target, false);
        const handle = await open(target.abs, 'wx', 0o600);
        const writer = new ParallelWriter(handle);
        try {
          // chunks are slices of the inflater's output buffers, never reused: safe to write in parallel
          for await (const chunk of stream as AsyncIterable<Uint8Array>) await writer.write(chunk);
          await writer.flush();
          if (this.#chown) await handle.chown(header.uid ?? 0, header.gid ?? 0);
          // after chown: chown clears set-uid/set-gid bits
          await handle.chmod(mode);
          await handle.utimes(mtime, mtime);
        } finally {
          await writer.settle();
          await handle.close();
        }
        break;
      }
      case 'directory': {
        await drain(stream);
        const outcome = await this.#clear(target, true);
        if (outcome === 'clear') await mkdir(target.abs, { mode: 0o700 });
        this.#realDirs.add(target.rel);
        await this.#owner(target.abs, header, false);
        this.#dirMeta.set(target.rel, { mode, mtime });
        break;
      }
      case 'symlink': {
        await drain(stream);
        await this.#clear(target, false);
        await symlink(header.linkname ?? '', target.abs);
        await this.#owner(target.abs, header, true);
        await lutimes(target.abs, mtime, mtime);
        break;
      }
      case 'link': {
        await drain(stream);
        const linkname = header.linkname ?? '';
        const linkParts = entryComponents(linkname, this.#layer, `hardlink target of ${entryLabel(name)}`);
        if (linkParts.length === 0) throw this.#unsafe(name, 'is a hardlink to the rootfs itself');
        const linkParent = await this.resolveDir(linkParts.slice(0, -1), name);
        const source = join(linkParent.abs, linkParts[linkParts.length - 1] as string);
        const stats = await lstatOrUndefined(source);
        if (stats === undefined)
          throw this.#invalid(
            name,
            `is a hardlink to ${entryLabel(linkname)}, which the layer has not created`,
          );
        if (stats.isDirectory())
          throw this.#unsafe(name, `is a hardlink to the directory ${entryLabel(linkname)}`);
        if (source === target.abs) break;
        await this.#clear(target, false);
        await link(source, target.abs);
        break;
      }
      case 'fifo': {
        await drain(stream);
        await this.#clear(target, false);
        await mkfifo(target.abs, mode);
        await this.#owner(target.abs, header, false);
        await chmod(target.abs, mode);
        break;
      }
      case 'character-device':
      case 'block-device': {
        await drain(stream);
        this.#skip(
          name,
          `${header.type} ${header.devmajor ?? 0}:${header.devminor ?? 0} not created (plugins get their devices from the runtime)`,
        );
        return;
      }
      default: {
        await drain(stream);
        throw this.#invalid(name, `has the unsupported tar type ${String(header.type)}`);
      }
    }
    this.#unpacked.add(target.rel);
  }

  /** moby's opaque whiteout: remove everything below `dir` that this layer did not write. */
  async #opaque(dir: Resolved): Promise<void> {
    const walk = async (abs: string, rel: string): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(abs);
      } catch (error) {
        if (isNotFound(error)) return;
        throw error;
      }
      for (const child of names) {
        const childRel = rel === '' ? child : `${rel}/${child}`;
        const childAbs = join(abs, child);
        if (!this.#unpacked.has(childRel)) {
          await rm(childAbs, { recursive: true, force: true });
          this.#forget(childRel);
          continue;
        }
        const stats = await lstatOrUndefined(childAbs);
        if (stats?.isDirectory() === true) await walk(childAbs, childRel);
      }
    };
    await walk(dir.abs, dir.rel);
  }

  /** Applies directory modes and times, deepest first. */
  async finish(): Promise<void> {
    const dirs = [...this.#dirMeta.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [rel, meta] of dirs) {
      const abs = join(this.#root, rel);
      await chmod(abs, meta.mode);
      await utimes(abs, meta.mtime, meta.mtime);
    }
    this.#dirMeta.clear();
  }
}

interface ExtractionModules {
  createGunzip: typeof createGunzipType;
  extract: typeof extractType;
}
let modules: Promise<ExtractionModules> | undefined;

/**
 * Loads what extraction needs (zlib, tar-stream). They are imported on first use, not with this
 * module, so that commands that never unpack a layer do not pay for them at start-up; a pull calls
 * this before its registry round trips so that the loading overlaps the waiting.
 */
export function preloadExtraction(): Promise<ExtractionModules> {
  modules ??= Promise.all([import('node:zlib'), import('tar-stream')]).then(([zlib, tar]) => ({
    createGunzip: zlib.createGunzip,
    extract: tar.extract,
  }));
  return modules;
}

/**
 * One layer being applied, fed chunk by chunk (see openLayer). Inflating runs on the thread pool
 * while the caller produces the next chunk; files are written while the next ones inflate.
 */
export interface LayerSink {
  /**
   * Hands over the next bytes of the layer. `consumed`, when given, is called exactly once when
   * the sink no longer reads `chunk` (the caller may then reuse its memory); without it the chunk
   * must never be modified. Never throws: a failure rejects `done`, and later chunks are dropped.
   */
  write(chunk: Uint8Array, consumed?: () => void): void;
  /** The layer's input is complete: `done` resolves once every entry is on disk. */
  end(): void;
  /** Stops applying; `done` rejects with `error` (passed through, like the source's own errors). */
  abort(error: unknown): void;
  /**
   * The report, once the input was ended, was a valid layer and every entry is on disk. Rejects
   * with LayerError (LAYER_UNSAFE, LAYER_INVALID, LAYER_UNSUPPORTED, GZIP_BOMB) or the abort's
   * error, only after every file operation in flight has settled, so the caller may then delete
   * the rootfs. The rootfs is left half-written: the caller owns it and must discard it.
   */
  readonly done: Promise<LayerReport>;
}

/** Chunks an applyLayer source may have handed over and not yet seen consumed. */
const SOURCE_CHUNKS_IN_FLIGHT = 4;

class LayerApplier implements LayerSink {
  readonly done: Promise<LayerReport>;
  readonly #layer: string;
  readonly #limits: ExtractLimits;
  readonly #options: ApplyLayerOptions;
  readonly #writer: RootfsWriter;
  readonly #report: LayerReport;
  readonly #modules: ExtractionModules;
  #resolve: (report: LayerReport) => void = () => undefined;
  #reject: (error: unknown) => void = () => undefined;
  /** the first stream of the chain, built at the first non-empty chunk */
  #input: Writable | undefined;
  #compression: Compression | undefined;
  #failed = false;
  #ended = false;
  /** the entry being applied (entries are applied one at a time) */
  #applying: Promise<void> = Promise.resolve();
  #sinceReclaim = 0;
  #diff: Hash | undefined;
  readonly #onAbort: () => void;

  constructor(rootfs: string, options: ApplyLayerOptions, loaded: ExtractionModules) {
    this.#layer = options.layer;
    this.#limits = options.limits ?? DEFAULT_EXTRACT_LIMITS;
    this.#options = options;
    this.#modules = loaded;
    this.#writer = new RootfsWriter(rootfs, this.#layer, options.chown ?? process.getuid?.() === 0);
    this.#report = { entries: 0, tarBytes: 0, inputBytes: 0, skipped: this.#writer.skipped, diffId: '' };
    this.done = new Promise<LayerReport>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#onAbort = () => this.abort(options.signal?.reason ?? new Error('aborted'));
    if (options.signal?.aborted === true) this.#onAbort();
    else options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  write(chunk: Uint8Array, consumed?: () => void): void {
    this.#write(chunk, consumed, consumed !== undefined);
  }

  /** write() for a chunk its producer never reuses (a stream's): never copied. */
  writeOwned(chunk: Uint8Array, consumed: () => void): void {
    this.#write(chunk, consumed, false);
  }

  #write(chunk: Uint8Array, consumed: (() => void) | undefined, reused: boolean): void {
    if (this.#failed || this.#ended || chunk.byteLength === 0) {
      consumed?.();
      return;
    }
    this.#report.inputBytes += chunk.byteLength;
    this.#sinceReclaim += chunk.byteLength;
    if (this.#options.reclaim !== undefined && this.#sinceReclaim >= RECLAIM_EVERY) {
      this.#sinceReclaim = 0;
      this.#options.reclaim();
    }
    if (this.#input === undefined) {
      try {
        this.#start(sniff(chunk, this.#layer));
      } catch (error) {
        consumed?.();
        this.abort(error);
        return;
      }
    }
    // zlib is done with its input when the write callback runs (it inflates into buffers of its
    // own); the tar parser instead hands out slices of its input as file content, so a plain tar
    // chunk its producer will reuse is copied. Either way the callback comes only once the chain
    // has taken the chunk in, which is what bounds the producer's memory.
    const data = reused && this.#compression !== 'gzip' ? Buffer.from(chunk) : chunk;
    (this.#input as Writable).write(data, consumed === undefined ? undefined : () => consumed());
  }

  end(): void {
    if (this.#failed || this.#ended) return;
    this.#ended = true;
    if (this.#input === undefined) {
      this.abort(
        new LayerError(
          'LAYER_INVALID',
          `layer ${this.#layer} is empty; a layer is a tar archive (gzip-compressed or not)`,
        ),
      );
      return;
    }
    this.#input.end();
  }

  abort(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    if (this.#input === undefined) {
      void this.#settle(error);
      return;
    }
    // the pipeline rejects with this error and settles `done`
    this.#input.destroy(error instanceof Error ? error : new Error(String(error)));
  }

  /** Builds inflater -> cap -> tar parser -> files for the compression sniffed from the first chunk. */
  #start(compression: Compression): void {
    this.#compression = compression;
    const report = this.#report;
    const limits = this.#limits;
    const layer = this.#layer;
    // the diff ID is the digest of exactly the bytes the tar parser reads
    const diff = createHash('sha256');
    this.#diff = diff;
    // a Transform, not an async generator: an iterator would make the inflater's Readable
    // concatenate its buffered output (a copy of every byte); a Transform gets each chunk as is
    const capped = new Transform({
      readableHighWaterMark: INFLATE_CHUNK,
      writableHighWaterMark: INFLATE_CHUNK,
      transform(chunk: Buffer, _encoding, callback) {
        report.tarBytes += chunk.byteLength;
        if (report.tarBytes > limits.maxBytes) {
          callback(
            new LayerError(
              'GZIP_BOMB',
              `layer ${layer} inflates to more than ${limits.maxBytes} bytes (the per-layer limit); refused as a decompression bomb. Nothing was installed`,
            ),
          );
          return;
        }
        if (
          compression === 'gzip' &&
          report.tarBytes > limits.ratioGraceBytes &&
          report.tarBytes > limits.maxRatio * report.inputBytes
        ) {
          callback(
            new LayerError(
              'GZIP_BOMB',
              `layer ${layer} inflates more than ${limits.maxRatio}:1 (${report.tarBytes} bytes from ${report.inputBytes}); refused as a decompression bomb. Nothing was installed`,
            ),
          );
          return;
        }
        diff.update(chunk);
        callback(null, chunk);
      },
    });

    const tar = this.#modules.extract();
    // streamx re-emits an error that destroyed it after node's pipeline has already settled and
    // let go of its listeners; the pipeline reports the error, this keeps the late copy quiet
    tar.on('error', () => undefined);
    tar.on('entry', (header, stream, next) => {
      // an entry stream destroyed with the archive emits its error with nobody listening; reading
      // it (for await) still throws it
      stream.on('error', () => undefined);
      report.entries++;
      this.#applying = this.#writer.apply(header, stream).then(
        () => next(),
        (error: unknown) => {
          stream.resume();
          next(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });

    const inflate =
      compression === 'gzip' ? this.#modules.createGunzip({ chunkSize: INFLATE_CHUNK }) : undefined;
    this.#input = inflate ?? capped;
    const piped = inflate !== undefined ? pipeline(inflate, capped, tar) : pipeline(capped, tar);
    piped.then(
      () => this.#finish(),
      (error: unknown) => this.#settle(error),
    );
  }

  async #finish(): Promise<void> {
    try {
      await this.#writer.finish();
    } catch (error) {
      await this.#settle(error);
      return;
    }
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    if (this.#diff !== undefined) this.#report.diffId = `sha256:${this.#diff.digest('hex')}`;
    const writer = this.#writer;
    if (writer.skippedCount > 0) {
      this.#options.logger?.warn(
        { layer: this.#layer, skipped: writer.skippedCount, examples: writer.skipped.slice(0, 5) },
        `layer ${this.#layer}: ${writer.skippedCount} entr${writer.skippedCount === 1 ? 'y was' : 'ies were'} skipped or applied partly (device nodes, extended attributes)`,
      );
    }
    this.#resolve(this.#report);
  }

  /** Rejects `done`, once the entry being applied (if any) has let go of its files. */
  async #settle(error: unknown): Promise<void> {
    this.#failed = true;
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    await this.#applying.catch(() => undefined);
    this.#reject(classify(error, this.#layer));
  }
}

/**
 * Starts applying one layer onto `rootfs` (an existing directory): its compression is sniffed
 * from the first bytes, as moby's DecompressStream does. See LayerSink for the protocol.
 */
export async function openLayer(rootfs: string, options: ApplyLayerOptions): Promise<LayerSink> {
  return new LayerApplier(rootfs, options, await preloadExtraction());
}

/**
 * Applies one layer from `source` onto `rootfs` (an existing directory). Resolves when every entry
 * is on disk and the source ended without error; rejects with LayerError (LAYER_UNSAFE,
 * LAYER_INVALID, LAYER_UNSUPPORTED, GZIP_BOMB) or the source's own error. On rejection the rootfs
 * is left half-written: the caller owns it and must discard it. The chunks of `source` are never
 * modified nor reused by the source after they are yielded (a stream's chunks are not).
 */
export async function applyLayer(
  source: AsyncIterable<Uint8Array>,
  rootfs: string,
  options: ApplyLayerOptions,
): Promise<LayerReport> {
  const sink = new LayerApplier(rootfs, options, await preloadExtraction());
  let failed = false;
  sink.done.catch(() => {
    failed = true;
  });
  // at most a few chunks handed over and not yet inflated: the source is read as fast as the
  // inflater goes, not into memory
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const consumed = (): void => {
    inFlight--;
    wake?.();
  };
  try {
    for await (const chunk of source) {
      if (failed) break;
      inFlight++;
      sink.writeOwned(chunk, consumed);
      while (inFlight >= SOURCE_CHUNKS_IN_FLIGHT && !failed) {
        await Promise.race([
          new Promise<void>((resolve) => (wake = resolve)),
          sink.done.catch(() => undefined),
        ]);
        wake = undefined;
      }
    }
  } catch (error) {
    sink.abort(error);
  }
  sink.end();
  return sink.done;
}

/** Turns zlib and tar-stream failures into LAYER_INVALID; everything else passes through. */
function classify(error: unknown, layer: string): unknown {
  if (error instanceof LayerError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new LayerError(
      'LAYER_INVALID',
      `layer ${layer} is not valid gzip (${message}); the blob is corrupt`,
      {
        cause: error,
      },
    );
  }
  if (/tar header|Unexpected end of data|Header exceeds|Invalid header/i.test(message)) {
    return new LayerError('LAYER_INVALID', `layer ${layer} is not a valid tar archive (${message})`, {
      cause: error,
    });
  }
  return error;
}
