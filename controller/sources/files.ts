/**
 * The file source of `plugctl run -f PATH...`: DockerPlugin documents read from YAML files and kept
 * current with chokidar.
 *
 * File events are only hints. An event marks a path dirty; after a short quiet period the dirty files
 * are read again and the whole desired set is recomputed from per-file state, then compared by content
 * with the previous one. So the order of events does not matter, only what is on disk when the batch
 * runs: an editor's atomic save, vim's rename dance, a half-written file and a directory move all end
 * in whatever the files finally say, and one batch reports each key at most once.
 *
 * Losing a document is what prunes a plugin, so the source errs towards keeping documents: a file is
 * dropped only after an unlink event confirmed by a read that finds it gone; a file that does not parse
 * keeps its last good documents; a document that fails validation keeps its last valid version (these
 * leave an error in the snapshot, and the controller prunes nothing while any error is listed); and a
 * document that vanishes from a file that still exists stays for a short grace period, because that is
 * also what a file read in the middle of a write looks like.
 */
import type { Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { watch } from 'chokidar';
import type { FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.ts';
import { systemClock } from '../runtime/clock.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import {
  LOAD_CODES,
  documentLimits,
  formatLoadError,
  listDocumentFiles,
  parseDocumentFile,
  readDocumentFile,
  refusesWholeFile,
  resolveDuplicates,
  sortLoadErrors,
} from '../api/load.ts';
import type { LoadError, LoadedDocument, ParsedDocument } from '../api/load.ts';
import type { DocumentLimits } from '../limits.ts';
import { formatOrigin } from '../api/types.ts';
import { contentHash } from './hash.ts';
import type { DesiredSnapshot, DesiredSource } from './source.ts';

/** Construction options of a FileSource. */
export interface FileSourceOptions {
  /**
   * Files (read whatever their name) and directories (their *.yaml and *.yml files, recursively,
   * skipping dot entries and following symlinks), as `plugctl apply -f` reads them. Resolved against
   * the working directory at construction; documents and errors carry absolute paths.
   */
  paths: readonly string[];
  logger: Logger;
  /**
   * Quiet period after the last file event before the dirty files are read (default 20 ms). It
   * coalesces the several events of one save; it is also most of the source's reaction latency.
   */
  debounceMs?: number;
  /** Upper bound on how long continuous events can postpone a batch (default 100 ms). */
  maxDelayMs?: number;
  /** Time and timers for the debounce (default: the system clock). */
  clock?: Clock;
  /** Bounds on each file (default DEFAULT_DOCUMENT_LIMITS), as loadDocuments takes them. */
  limits?: Partial<DocumentLimits>;
}

/**
 * A consistent view of the declared documents. Snapshots are immutable: a new object (with a higher
 * `generation`) replaces the previous one whenever documents, their origins or the errors change.
 */
export interface FileSourceSnapshot extends DesiredSnapshot {
  /** valid, non-duplicated documents by metadata.name */
  documents: ReadonlyMap<string, LoadedDocument>;
  /**
   * Every current problem, sorted by file then position: parse and validation errors, duplicates
   * across files, missing paths (PATH_NOT_FOUND), unreadable files or directories (READ_FAILED) and
   * watch failures (WATCH_FAILED, which last until the source is closed: changes may have been missed).
   */
  errors: readonly LoadError[];
  /** false until the initial scan has been read completely; never prune before */
  synced: boolean;
  /** 0 before the first batch; increases by one with every new snapshot */
  generation: number;
}

/** Stable codes of errors the file source adds to those of the loader. */
export const FILE_SOURCE_CODES = {
  watchFailed: 'WATCH_FAILED',
} as const;

const DEFAULT_DEBOUNCE_MS = 20;
const DEFAULT_MAX_DELAY_MS = 100;
/**
 * chokidar's `atomic` window: an unlink followed by an add of the same path within it becomes one
 * change, which is how editors' temp-file-and-rename saves and vim's backup rename look. Unlinks are
 * delayed by it, which only slows deletions down, never writes.
 */
const ATOMIC_MS = 100;
/**
 * How long a document that vanished from a file that still exists stays declared. `writeFile`
 * truncates before it writes, and a batch that lands in between must not withdraw (and so prune)
 * what the file declares. Deleting the whole file is not delayed by this (chokidar's atomic window
 * already delays unlinks).
 */
const DROP_GRACE_MS = 150;
/** Files read at once: enough to hide latency, few enough not to exhaust file descriptors. */
const READ_CONCURRENCY = 32;
/**
 * Kubernetes ConfigMap and Secret volumes expose each key as `name -> ..data/name`, and update by
 * swapping the `..data` symlink to a new timestamped directory in one rename.
 */
const CONFIGMAP_DATA = '..data';

/** What the last event said about a dirty path: 'removed' lets a failed read drop the file. */
type DirtyReason = 'present' | 'removed';

interface FileState {
  /** the file's real path, so that a file reached through two paths is loaded once */
  real: string;
  /** position in load order: index of the first root containing it, then its path segments */
  order: FileOrder;
  /** the documents this file currently declares, including kept last-good versions */
  documents: ParsedDocument[];
  /**
   * documents that vanished from the file less than DROP_GRACE_MS ago: still declared, unless another
   * document claims the same name or local name (they were probably moved there)
   */
  carried: ParsedDocument[];
  errors: LoadError[];
  /** when the carried documents were first found missing */
  droppedSince?: number;
}

interface FileOrder {
  root: number;
  segments: string[];
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isYamlName(name: string): boolean {
  return name.endsWith('.yaml') || name.endsWith('.yml');
}

function compareSegments(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

function compareOrder(a: FileOrder, b: FileOrder): number {
  return a.root - b.root || compareSegments(a.segments, b.segments);
}

function pathError(file: string, code: ErrorCode, message: string): LoadError {
  return { origin: { file, line: 0, column: 0 }, path: '', message, code };
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Watches DockerPlugin files and directories and keeps a snapshot of the documents they declare.
 *
 * - `start()` resolves once the initial scan is complete: chokidar is ready (so no later change can be
 *   missed) and then every file of a fresh listing, plus every file an event named meanwhile, has been
 *   read and parsed. Only then is `synced` true. If the source is closed first, `start()` resolves with
 *   `synced` still false.
 * - Listeners get the keys whose document appeared, changed (by content hash) or disappeared in one
 *   batch; a document moving to another file with the same content is no change. A listener is also
 *   called, with an empty set, when only the errors changed (the controller re-enables pruning then).
 *   The first batch, during start(), reports every key found.
 * - Bad input never removes a document: a file that fails YAML parsing keeps its previous documents;
 *   a document that fails validation but whose metadata.name can be read keeps its previous valid
 *   version (one whose name cannot be read keeps all of the file's previous documents that are not
 *   otherwise declared); a file that cannot be read keeps its documents. A document that vanishes
 *   from a file that still exists (emptied, or read half-written) is withdrawn only after 150 ms
 *   without it; a deleted file withdraws its documents after chokidar's atomic window (100 ms).
 * - Two files declaring the same name or the same local plugin name apply neither, with an error
 *   naming both places, until one goes away. A file reached through two paths is loaded once.
 * - A path missing at start is a PATH_NOT_FOUND error; chokidar watches for it through its parent and
 *   its documents load when it appears.
 */
export class FileSource implements DesiredSource {
  readonly #roots: string[];
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #limits: DocumentLimits;
  readonly #debounceMs: number;
  readonly #maxDelayMs: number;
  readonly #listeners = new Set<(keys: ReadonlySet<string>) => void>();
  readonly #files = new Map<string, FileState>();
  readonly #hashCache = new WeakMap<object, string>();
  #dirty = new Map<string, DirtyReason>();
  /** directories whose files are all re-read: a ConfigMap `..data` swap touched them at once */
  #rescan = new Set<string>();
  #scanErrors: LoadError[] = [];
  readonly #watchErrors = new Map<string, LoadError>();
  #hashes = new Map<string, string>();
  #identities = new Map<string, string>();
  #errorLines: string[] = [];
  #snapshot: FileSourceSnapshot = { documents: new Map(), errors: [], synced: false, generation: 0 };
  #watcher: FSWatcher | undefined;
  #batching = false;
  #timer: TimerHandle | undefined;
  #firstDirtyAt = 0;
  #flushing: Promise<void> | undefined;
  #flushAgain = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #rechecks = new Map<string, TimerHandle>();
  #abortStart: (() => void) | undefined;

  constructor(options: FileSourceOptions) {
    if (options.paths.length === 0) throw new TypeError('FileSource needs at least one path');
    this.#roots = options.paths.map((p) => resolve(p));
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.#limits = documentLimits(options.limits);
    this.#debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.#maxDelayMs = Math.max(options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, this.#debounceMs);
  }

  /** Starts watching; resolves once the initial scan has been read (see the class comment). */
  async start(): Promise<void> {
    if (this.#watcher !== undefined || this.#closed) throw new Error('FileSource can only be started once');
    const watcher = watch(this.#roots, {
      ignored: (path: string, stats?: Stats) => this.#ignored(path, stats),
      ignoreInitial: false,
      followSymlinks: true,
      atomic: ATOMIC_MS,
      // A half-written file is a parse error that the next event fixes; waiting for sizes to settle
      // would add its threshold to every reaction.
      awaitWriteFinish: false,
      persistent: true,
    });
    this.#watcher = watcher;
    watcher.on('all', (event, path) => this.#onEvent(event, path));
    watcher.on('error', (error) => this.#onWatchError(error));
    const ready = await new Promise<boolean>((done) => {
      watcher.once('ready', () => done(true));
      this.#abortStart = () => done(false);
    });
    this.#abortStart = undefined;
    if (!ready || this.#closed) return;
    // Listed after chokidar is ready, so anything created after the listing raises an event. The
    // listing does not trust the initial add events to be complete: synced means every file was read.
    const listing = await listDocumentFiles(this.#roots);
    for (const file of listing.files) {
      const path = resolve(file);
      if (!this.#dirty.has(path)) this.#dirty.set(path, 'present');
    }
    // Root problems are re-checked in every batch; problems below a root stay until close().
    this.#scanErrors = listing.errors.filter((e) => !this.#roots.includes(resolve(e.origin.file)));
    this.#flushing = this.#flush(true);
    await this.#flushing;
    this.#flushing = undefined;
    // Events (and rechecks) that arrived during the initial batch were kept; from now on they are
    // debounced.
    this.#batching = true;
    if (this.#dirty.size > 0 || this.#rescan.size > 0) this.#schedule();
  }

  /** The current snapshot; the same object until the next batch changes something. */
  snapshot(): FileSourceSnapshot {
    return this.#snapshot;
  }

  /**
   * Calls `listener` after each batch that changed documents (with their keys) or only errors (with an
   * empty set). Listener exceptions are logged, not propagated. Returns the unsubscribe function.
   */
  onChange(listener: (keys: ReadonlySet<string>) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Stops watching and cancels pending batches; waits for a batch in flight. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const timer of this.#rechecks.values()) this.#clock.clearTimeout(timer);
    this.#rechecks.clear();
    this.#abortStart?.();
    this.#closing = (async () => {
      await this.#watcher?.close();
      await this.#flushing;
    })();
    return this.#closing;
  }

  /** The path relative to the first root containing it: '' for a root, undefined outside every root. */
  #relative(path: string): { root: number; rel: string } | undefined {
    for (let i = 0; i < this.#roots.length; i++) {
      const rel = relative(this.#roots[i] as string, path);
      if (rel === '' || !(rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)))
        return { root: i, rel };
    }
    return undefined;
  }

  /**
   * chokidar's filter. Dot entries are skipped like the loader skips them (`.git`, swap files, emacs
   * locks, the `..2024_…` directories of ConfigMaps), except the `..data` link itself, whose swap is
   * watched. Files other than *.yaml/*.yml are skipped once their stats show they are not directories
   * (editor temp files such as `4913`, `x.yaml~` and `x.yaml.tmp`).
   */
  #ignored(path: string, stats?: Stats): boolean {
    const where = this.#relative(resolve(path));
    if (where === undefined || where.rel === '') return false;
    const segments = where.rel.split(sep);
    const name = segments.pop() as string;
    if (segments.some((s) => s.startsWith('.'))) return true;
    if (name === CONFIGMAP_DATA) return false;
    if (name.startsWith('.')) return true;
    if (stats === undefined || stats.isDirectory()) return false;
    return !isYamlName(name);
  }

  #onEvent(event: string, rawPath: string): void {
    if (this.#closed) return;
    const path = resolve(rawPath);
    if (basename(path) === CONFIGMAP_DATA) {
      // One rename replaces the content of every key: re-read them all, rather than rely on chokidar
      // noticing that each link's target changed (it does today, through the target directories).
      this.#rescan.add(dirname(path));
      this.#schedule();
      return;
    }
    // Files inside a directory that appears or goes away get their own add or unlink events.
    if (event !== 'add' && event !== 'change' && event !== 'unlink') return;
    if (!this.#isDocumentPath(path)) return;
    this.#dirty.set(path, event === 'unlink' ? 'removed' : 'present');
    this.#schedule();
  }

  #isDocumentPath(path: string): boolean {
    const where = this.#relative(path);
    if (where === undefined) return false;
    if (where.rel === '') return true; // a root named on the command line, whatever its name
    return !where.rel.split(sep).some((s) => s.startsWith('.')) && isYamlName(path);
  }

  #onWatchError(error: unknown): void {
    const path = (error as { path?: unknown }).path;
    const file = typeof path === 'string' ? path : (this.#roots[0] as string);
    const message = `watching failed, changes may be missed until plugctl restarts: ${messageOf(error)}`;
    this.#logger.error({ err: error, file }, 'file watch error');
    if (this.#closed) return;
    this.#watchErrors.set(`${file}\0${message}`, pathError(file, FILE_SOURCE_CODES.watchFailed, message));
    this.#schedule();
  }

  /**
   * Arms the debounce: the batch runs once no event has arrived for debounceMs, or maxDelayMs after
   * the first pending event, whichever is sooner. Before the initial scan, start() runs the batch.
   */
  #schedule(): void {
    if (!this.#batching || this.#closed) return;
    const now = this.#clock.now();
    if (this.#timer === undefined) this.#firstDirtyAt = now;
    else this.#clock.clearTimeout(this.#timer);
    const delay = Math.max(0, Math.min(this.#debounceMs, this.#firstDirtyAt + this.#maxDelayMs - now));
    this.#timer = this.#clock.setTimeout(() => this.#kick(), delay);
  }

  #kick(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    if (this.#flushing !== undefined) {
      this.#flushAgain = true;
      return;
    }
    this.#flushing = this.#flush(false)
      .catch((error: unknown) => this.#logger.error({ err: error }, 'file source batch failed'))
      .finally(() => {
        this.#flushing = undefined;
        if (this.#flushAgain) {
          this.#flushAgain = false;
          this.#kick();
        }
      });
  }

  /** One batch: read every dirty file, recompute the desired set, publish and notify. */
  async #flush(initial: boolean): Promise<void> {
    const started = performance.now();
    const dirty = this.#dirty;
    const rescan = this.#rescan;
    this.#dirty = new Map();
    this.#rescan = new Set();
    if (rescan.size > 0) await this.#expandRescan(rescan, dirty);
    await forEachLimited([...dirty], READ_CONCURRENCY, ([path, reason]) => this.#readFile(path, reason));
    await this.#dropVanishedDuplicates(dirty);
    const rootErrors = await this.#rootErrors();
    if (this.#closed) return;
    this.#publish(rootErrors, initial, dirty.size, performance.now() - started);
  }

  /** Marks every known and every listed file below the rescanned directories dirty. */
  async #expandRescan(dirs: ReadonlySet<string>, dirty: Map<string, DirtyReason>): Promise<void> {
    const inside = (path: string): boolean => [...dirs].some((dir) => path.startsWith(dir + sep));
    for (const path of this.#files.keys()) if (inside(path) && !dirty.has(path)) dirty.set(path, 'present');
    const listing = await listDocumentFiles([...dirs]);
    for (const file of listing.files) {
      const path = resolve(file);
      if (!dirty.has(path) && this.#isDocumentPath(path)) dirty.set(path, 'present');
    }
    for (const e of listing.errors) this.#logger.warn({ file: e.origin.file }, formatLoadError(e));
  }

  /**
   * A file renamed or moved within the tree is reported as an add of the new path at once but as an
   * unlink of the old one only after chokidar's atomic window, so for a moment the old state and the
   * new file declare the same document: a duplicate, which would withdraw it. Before that is published,
   * files that take part in a duplicate and were not read in this batch are checked, and dropped if
   * they are gone.
   */
  async #dropVanishedDuplicates(read: ReadonlyMap<string, DirtyReason>): Promise<void> {
    const claims = new Map<string, Set<string>>();
    const claim = (what: string, path: string): void => {
      const paths = claims.get(what);
      if (paths === undefined) claims.set(what, new Set([path]));
      else paths.add(path);
    };
    for (const [path, state] of this.#files) {
      for (const d of state.documents) {
        claim(`name\0${d.doc.metadata.name}`, path);
        claim(`local\0${d.localName}`, path);
      }
    }
    const suspects = new Set<string>();
    for (const paths of claims.values()) {
      if (paths.size > 1) for (const path of paths) if (!read.has(path)) suspects.add(path);
    }
    await forEachLimited([...suspects], READ_CONCURRENCY, async (path) => {
      try {
        await stat(path);
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'ENOENT' || code === 'ENOTDIR') this.#files.delete(path);
      }
    });
  }

  async #readFile(path: string, reason: DirtyReason): Promise<void> {
    const previous = this.#files.get(path);
    let text: string;
    let real: string;
    try {
      const got = await readDocumentFile(path, this.#limits.maxFileBytes);
      real = await realpath(path);
      if ('error' in got) {
        // Too large to read: like a syntax error, what it declared before stays
        this.#files.set(path, { ...(previous ?? this.#emptyState(path, real)), real, errors: [got.error] });
        return;
      }
      text = got.text;
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'ELOOP') {
        // Gone (or not a file). Only an unlink event lets that drop documents: between the two halves
        // of a rename-style save the path is briefly missing, and chokidar reports an unlink only if
        // it stays missing.
        if (reason === 'removed' || previous === undefined) this.#files.delete(path);
        return;
      }
      // Unreadable for now (permissions, I/O): keep what it declared, report why.
      const error_ = pathError(path, LOAD_CODES.readFailed, `cannot read: ${messageOf(error)}`);
      this.#files.set(path, { ...(previous ?? this.#emptyState(path, path)), errors: [error_] });
      return;
    }
    const parsed = parseDocumentFile(text, path, { limits: this.#limits });
    if (parsed.errors.some(refusesWholeFile)) {
      // Last known good: everything the file declared stays as it was.
      this.#files.set(path, { ...(previous ?? this.#emptyState(path, real)), real, errors: parsed.errors });
      return;
    }
    const before = [...(previous?.documents ?? []), ...(previous?.carried ?? [])];
    let documents = parsed.documents;
    // A rejected document keeps its last valid version; one whose name cannot be read could be any
    // of the file's previous documents, so then all of them that are not declared validly are kept.
    const valid = new Set(documents.map((d) => d.doc.metadata.name));
    const rejected = new Set(parsed.rejectedNames);
    const kept = before.filter((d) => {
      const name = d.doc.metadata.name;
      return !valid.has(name) && (parsed.unnamedRejections > 0 || rejected.has(name));
    });
    if (kept.length > 0) documents = [...documents, ...kept];
    // Writers truncate, then write, sometimes in several chunks: a batch that reads in between sees an
    // empty file or a prefix that may even be valid YAML. Adding or changing a document is corrected
    // by the next read, but withdrawing one prunes a plugin, so a document that vanished from a file
    // that still exists is carried for DROP_GRACE_MS and withdrawn only if it is still absent then.
    const names = new Set(documents.map((d) => d.doc.metadata.name));
    const dropped = before.filter((d) => !names.has(d.doc.metadata.name));
    let carried: ParsedDocument[] = [];
    let droppedSince: number | undefined;
    if (dropped.length > 0) {
      const now = this.#clock.now();
      const since = previous?.droppedSince ?? now;
      if (now - since < DROP_GRACE_MS) {
        carried = dropped;
        droppedSince = since;
        this.#recheck(path, since + DROP_GRACE_MS - now);
      }
    }
    this.#files.set(path, {
      real,
      order: previous?.order ?? this.#orderOf(path),
      documents,
      carried,
      errors: parsed.errors,
      ...(droppedSince === undefined ? {} : { droppedSince }),
    });
  }

  #emptyState(path: string, real: string): FileState {
    return { real, order: this.#orderOf(path), documents: [], carried: [], errors: [] };
  }

  /** Marks `path` dirty again after `delayMs`, unless something else does first. */
  #recheck(path: string, delayMs: number): void {
    if (this.#rechecks.has(path) || this.#closed) return;
    const timer = this.#clock.setTimeout(() => {
      this.#rechecks.delete(path);
      if (this.#closed) return;
      if (!this.#dirty.has(path)) this.#dirty.set(path, 'present');
      this.#schedule();
    }, delayMs);
    this.#rechecks.set(path, timer);
  }

  #orderOf(path: string): FileOrder {
    const where = this.#relative(path);
    return { root: where?.root ?? this.#roots.length, segments: (where?.rel ?? path).split(sep) };
  }

  /** A root that is missing or neither a file nor a directory; statted in every batch. */
  async #rootErrors(): Promise<LoadError[]> {
    const errors: LoadError[] = [];
    for (const root of this.#roots) {
      try {
        const info = await stat(root);
        if (!info.isFile() && !info.isDirectory()) {
          errors.push(pathError(root, LOAD_CODES.readFailed, 'not a regular file or directory'));
        }
      } catch (error) {
        const code = errnoCode(error);
        errors.push(
          code === 'ENOENT' || code === 'ENOTDIR'
            ? pathError(root, LOAD_CODES.pathNotFound, 'no such file or directory')
            : pathError(root, LOAD_CODES.readFailed, `cannot read: ${messageOf(error)}`),
        );
      }
    }
    return errors;
  }

  #hash(doc: object): string {
    let hash = this.#hashCache.get(doc);
    if (hash === undefined) {
      hash = contentHash(doc);
      this.#hashCache.set(doc, hash);
    }
    return hash;
  }

  #publish(rootErrors: LoadError[], initial: boolean, read: number, elapsedMs: number): void {
    const files = [...this.#files.entries()].sort(([, a], [, b]) => compareOrder(a.order, b.order));
    const seenReal = new Set<string>();
    const loaded: FileState[] = [];
    for (const [, state] of files) {
      if (seenReal.has(state.real)) continue; // the same file through another path
      seenReal.add(state.real);
      loaded.push(state);
    }
    const declared = loaded.flatMap((s) => s.documents);
    const claimed = new Set(
      declared.flatMap((d) => [`name\0${d.doc.metadata.name}`, `local\0${d.localName}`]),
    );
    const carried = loaded
      .flatMap((s) => s.carried)
      .filter((d) => !claimed.has(`name\0${d.doc.metadata.name}`) && !claimed.has(`local\0${d.localName}`));
    const resolved = resolveDuplicates([...declared, ...carried]);

    const documents = new Map<string, LoadedDocument>();
    const hashes = new Map<string, string>();
    const identities = new Map<string, string>();
    for (const d of resolved.documents) {
      const key = d.doc.metadata.name;
      const hash = this.#hash(d.doc);
      documents.set(key, d);
      hashes.set(key, hash);
      identities.set(key, `${hash} ${formatOrigin(d.origin)}`);
    }
    const changed = new Set<string>();
    for (const [key, hash] of hashes) if (this.#hashes.get(key) !== hash) changed.add(key);
    for (const key of this.#hashes.keys()) if (!hashes.has(key)) changed.add(key);

    // Problems of roots and directories first, then by file in load order, then by position.
    const errors = sortLoadErrors(
      [
        ...rootErrors,
        ...this.#scanErrors,
        ...this.#watchErrors.values(),
        ...loaded.flatMap((s) => s.errors),
        ...resolved.errors,
      ],
      files.map(([path]) => path),
    );
    const errorLines = errors.map((e) => `${e.code} ${formatLoadError(e)}`);
    const errorsChanged =
      errorLines.length !== this.#errorLines.length ||
      errorLines.some((line, i) => line !== this.#errorLines[i]);
    const moved = [...identities].some(([key, id]) => this.#identities.get(key) !== id);

    if (initial || changed.size > 0 || errorsChanged || moved) {
      if (errorsChanged) this.#logErrors(errors, errorLines);
      this.#errorLines = errorLines;
      this.#snapshot = {
        documents,
        errors,
        synced: this.#snapshot.synced || initial,
        generation: this.#snapshot.generation + 1,
      };
      this.#hashes = hashes;
      this.#identities = identities;
    }
    const log = initial ? this.#logger.info.bind(this.#logger) : this.#logger.debug.bind(this.#logger);
    log(
      {
        read,
        changed: changed.size,
        documents: documents.size,
        errors: errors.length,
        generation: this.#snapshot.generation,
        ms: Math.round(elapsedMs * 10) / 10,
        // the names found, at start-up, so a person sees at once what is declared (bounded: a
        // line per start, not a line per document)
        ...(initial ? { found: foundNames(documents.keys()) } : {}),
      },
      initial ? 'initial scan complete' : 'files re-read',
    );
    if (changed.size > 0 || errorsChanged) this.#notify(changed);
  }

  #logErrors(errors: readonly LoadError[], lines: readonly string[]): void {
    const before = new Set(this.#errorLines);
    errors.forEach((e, i) => {
      if (!before.has(lines[i] as string))
        this.#logger.warn({ code: e.code, file: e.origin.file }, formatLoadError(e));
    });
    if (errors.length === 0) this.#logger.info('all documents load again');
  }

  #notify(keys: ReadonlySet<string>): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(keys);
      } catch (error) {
        this.#logger.error({ err: error }, 'file source listener failed');
      }
    }
  }
}

/** How many document names the start-up log line lists before it counts the rest. */
const FOUND_NAMES_LOGGED = 100;

/** Sorted document names for the start-up log line, at most FOUND_NAMES_LOGGED and a count of the rest. */
function foundNames(keys: Iterable<string>): string[] {
  const names = [...keys].sort();
  if (names.length <= FOUND_NAMES_LOGGED) return names;
  return [...names.slice(0, FOUND_NAMES_LOGGED), `... and ${names.length - FOUND_NAMES_LOGGED} more`];
}
