/**
 * Loads DockerPlugin documents from YAML files and directories. Every problem becomes a LoadError that
 * points at `file:line:column` and names the field, so a user can fix a repository of documents from
 * one run's output. Loading never throws for bad input: a broken document is excluded and reported,
 * and the valid documents beside it are still returned, because one typo must not stop (or, worse,
 * prune) every other plugin on the host.
 */
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PlugctlError, type ErrorCode } from '../errors.ts';
import { DEFAULT_DOCUMENT_LIMITS } from '../limits.ts';
import type { DocumentLimits } from '../limits.ts';
import { LineIndex, locate, parseBounded } from './bounded-yaml.ts';
import { defaultLocalName, parseReference } from './reference.ts';
import type { Reference } from './reference.ts';
import { formatOrigin } from './types.ts';
import type { DockerPlugin, Origin } from './types.ts';
import { validateDocument } from './validate.ts';
import type { IssueTarget, PathSegment } from './validate.ts';

/** A valid document, where it starts, and the Docker plugin name it manages on the host. */
export interface LoadedDocument {
  doc: DockerPlugin;
  /** Position of the document's first node. */
  origin: Origin;
  /**
   * The local plugin name, as dockerd reports it: spec.alias (normalised like docker does, so `sshfs`
   * becomes `sshfs:latest`) or else the name `docker plugin install <remote>` would give.
   */
  localName: string;
  /** spec.remote, parsed and normalised; for a built plugin, its local name as a reference. */
  reference: Reference;
}

/**
 * Why something was not loaded. `path` is the field path (`spec.settings.env.DEBUG`), '' for the whole
 * document or file. For errors about a path rather than a position (PATH_NOT_FOUND, READ_FAILED) the
 * origin's line and column are 0.
 */
export interface LoadError {
  origin: Origin;
  path: string;
  message: string;
  code: ErrorCode;
  /** for LIMIT_EXCEEDED: which bound of DocumentLimits was exceeded */
  limit?: keyof DocumentLimits;
}

/** How documents are loaded; every field is optional. */
export interface LoadOptions {
  /** bounds on each file (default DEFAULT_DOCUMENT_LIMITS); fields not given keep their default */
  limits?: Partial<DocumentLimits>;
  /** reads standard input, for the path `-` (STDIN_PATH); without it `-` is a READ_FAILED error */
  stdin?: () => Promise<string>;
}

/**
 * Everything one load produced: valid documents in file order, then document order; errors sorted by
 * position; and every file that was read, in the order it was read.
 */
export interface LoadResult {
  documents: LoadedDocument[];
  errors: LoadError[];
  files: string[];
}

/** Stable codes of load errors, beside the schema codes of validate.ts and INVALID_REFERENCE. */
export const LOAD_CODES = {
  pathNotFound: 'PATH_NOT_FOUND',
  readFailed: 'READ_FAILED',
  yamlSyntax: 'YAML_SYNTAX',
  duplicateName: 'DUPLICATE_NAME',
  duplicateLocalName: 'DUPLICATE_LOCAL_NAME',
  limitExceeded: 'LIMIT_EXCEEDED',
} as const;

/**
 * True for errors that refuse a whole file rather than some of its documents: a syntax error
 * (nothing in the file can be trusted to be what was meant), a file over maxFileBytes or with more
 * than maxDocuments documents. A watcher keeps the file's last valid documents for these.
 */
export function refusesWholeFile(error: LoadError): boolean {
  return (
    error.code === LOAD_CODES.yamlSyntax ||
    (error.code === LOAD_CODES.limitExceeded &&
      (error.limit === 'maxFileBytes' || error.limit === 'maxDocuments'))
  );
}

/** `limits` over the defaults. */
export function documentLimits(limits: Partial<DocumentLimits> = {}): DocumentLimits {
  return { ...DEFAULT_DOCUMENT_LIMITS, ...limits };
}

/** Formats an error as `file:line:col: field.path: message` (without line:col when there is none). */
export function formatLoadError(e: LoadError): string {
  const where = e.origin.line === 0 ? e.origin.file : formatOrigin(e.origin);
  return e.path === '' ? `${where}: ${e.message}` : `${where}: ${e.path}: ${e.message}`;
}

/**
 * A valid document of one file before duplicates are decided, plus the positions duplicate detection
 * reports (its metadata.name, and the field its local name comes from).
 */
export interface ParsedDocument extends LoadedDocument {
  nameOrigin: Origin;
  localNameOrigin: Origin;
  localNamePath: string;
}

interface FileResult {
  candidates: ParsedDocument[];
  errors: LoadError[];
  /** metadata.name of documents rejected by validation whose name could still be read */
  rejectedNames: string[];
  /** how many documents were rejected by validation without a readable metadata.name */
  unnamedRejections: number;
}

/**
 * What one file's text holds, before duplicates are decided: its valid documents in order, its errors,
 * the metadata.name of every document that was rejected but whose name could still be read, and how
 * many were rejected without one (so a watcher can keep last valid versions instead of dropping them).
 */
export interface ParsedFile {
  documents: ParsedDocument[];
  errors: LoadError[];
  rejectedNames: string[];
  unnamedRejections: number;
}

function origin(file: string, lines: LineIndex, offset: number): Origin {
  const pos = lines.position(offset);
  return { file, line: pos.line, column: pos.column };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function codeOf(error: unknown, fallback: ErrorCode): ErrorCode {
  return error instanceof PlugctlError ? error.code : fallback;
}

/** The whole-file error of a text over maxFileBytes. */
function fileTooLarge(file: string, bytes: number | undefined, limits: DocumentLimits): LoadError {
  return {
    origin: { file, line: 0, column: 0 },
    path: '',
    message:
      `${bytes === undefined ? 'is' : `is ${bytes} bytes,`} larger than ${limits.maxFileBytes} bytes (limit maxFileBytes); ` +
      'none of its documents is loaded. Split it into several files',
    code: LOAD_CODES.limitExceeded,
    limit: 'maxFileBytes',
  };
}

/** Bytes of `text` as UTF-8 when that could exceed `max`; a cheap upper bound check first. */
function overBytes(text: string, max: number): number | undefined {
  if (text.length * 3 <= max) return undefined;
  const bytes = Buffer.byteLength(text, 'utf8');
  return bytes > max ? bytes : undefined;
}

/** Parses, validates and resolves every document of one file; duplicates are decided later, globally. */
function parseFile(text: string, file: string, limits: DocumentLimits): FileResult {
  const errors: LoadError[] = [];
  let candidates: ParsedDocument[] = [];
  const rejectedNames: string[] = [];
  let unnamedRejections = 0;
  const tooLarge = overBytes(text, limits.maxFileBytes);
  if (tooLarge !== undefined) {
    return {
      candidates,
      errors: [fileTooLarge(file, tooLarge, limits)],
      rejectedNames,
      unnamedRejections: 1,
    };
  }
  const lines = new LineIndex(text);
  for (const item of parseBounded(text, limits)) {
    if (item.type === 'syntax') {
      errors.push({
        origin: origin(file, lines, item.offset),
        path: '',
        message: item.message,
        code: LOAD_CODES.yamlSyntax,
      });
      continue;
    }
    if (item.type === 'violation') {
      errors.push({
        origin: origin(file, lines, item.offset),
        path: '',
        message: item.message,
        code: LOAD_CODES.limitExceeded,
        limit: item.limit,
      });
      unnamedRejections++;
      if (item.index === 0) {
        // the whole file is refused: what was taken from it so far is dropped
        candidates = [];
        rejectedNames.length = 0;
      }
      continue;
    }
    // A document holding only comments, or nothing between two `---`, declares nothing.
    if (item.value === null || item.value === undefined) continue;
    const root = item.root;
    // A `kind: List` (what `plugctl get -o json` and `kubectl get -o json` print) holds its objects
    // in `items`; each is a document of its own, positioned under `items.N`, and counts toward
    // maxDocuments like one.
    const list = listItems(item.value);
    if (list !== undefined && list.length > limits.maxDocuments) {
      errors.push({
        origin: origin(file, lines, locate(text, root, ['items'], 'value')),
        path: 'items',
        message: `the List holds ${list.length} objects, more than ${limits.maxDocuments} (limit maxDocuments); none is loaded. Split it into several files`,
        code: LOAD_CODES.limitExceeded,
        limit: 'maxDocuments',
      });
      unnamedRejections++;
      continue;
    }
    const entries: [unknown, PathSegment[]][] =
      list === undefined ? [[item.value, []]] : list.map((v, i) => [v, ['items', i]]);
    for (const [value, prefix] of entries) {
      if (value === null || value === undefined) continue;
      const at = (segments: readonly PathSegment[], target: IssueTarget = 'value'): Origin =>
        origin(file, lines, locate(text, root, [...prefix, ...segments], target));
      // an issue may be at any depth: the document is parsed again with every position recorded
      const atAnyDepth = (segments: readonly PathSegment[], target: IssueTarget): Origin =>
        origin(file, lines, locate(text, item.fullRoot(), [...prefix, ...segments], target));

      const rejected = (): void => {
        const name = readableName(value);
        if (name !== undefined) rejectedNames.push(name);
        else unnamedRejections++;
      };
      const result = validateDocument(value);
      if (!result.ok) {
        rejected();
        for (const i of result.issues) {
          errors.push({
            origin: atAnyDepth(i.segments, i.target),
            path: i.path,
            message: i.message,
            code: i.code,
          });
        }
        continue;
      }
      const parsed = result.doc;
      // The schema holds exactly one of remote and build.
      const { remote, build, alias } = parsed.spec;
      // A built plugin is named like `docker plugin create NAME` names it: the alias, else metadata.name.
      const nameSegments =
        remote !== undefined
          ? ['spec', 'remote']
          : alias !== undefined
            ? ['spec', 'alias']
            : ['metadata', 'name'];
      let reference: Reference;
      try {
        reference = parseReference(remote ?? alias ?? parsed.metadata.name);
      } catch (error) {
        rejected();
        errors.push({
          origin: at(nameSegments),
          path: nameSegments.join('.'),
          message: messageOf(error),
          code: codeOf(error, 'INVALID_REFERENCE'),
        });
        continue;
      }
      let localName: string;
      try {
        // Docker normalises --alias exactly like a reference (docker.io and :latest implied), so two
        // aliases collide when docker would give them the same name, not only when they are equal strings.
        localName = defaultLocalName(alias === undefined ? reference : parseReference(alias));
      } catch (error) {
        rejected();
        errors.push({
          origin: at(['spec', 'alias']),
          path: 'spec.alias',
          message: messageOf(error),
          code: codeOf(error, 'INVALID_REFERENCE'),
        });
        continue;
      }
      if (build !== undefined && reference.digest !== undefined) {
        rejected();
        errors.push({
          origin: at(nameSegments),
          path: nameSegments.join('.'),
          message: 'a built plugin is named REPOSITORY[:TAG], without a digest',
          code: 'INVALID_REFERENCE',
        });
        continue;
      }
      const localNameSegments = alias === undefined ? nameSegments : ['spec', 'alias'];
      candidates.push({
        doc: parsed,
        origin: at([]),
        localName,
        reference,
        nameOrigin: at(['metadata', 'name']),
        localNameOrigin: at(localNameSegments),
        localNamePath: localNameSegments.join('.'),
      });
    }
  }
  return { candidates, errors, rejectedNames, unnamedRejections };
}

/** The objects of a `kind: List` (apiVersion v1, as kubectl prints it); undefined for anything else. */
function listItems(value: unknown): unknown[] | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { kind, items } = value as { kind?: unknown; items?: unknown };
  return kind === 'List' && Array.isArray(items) ? items : undefined;
}

/** metadata.name of a document that failed validation, when it is a non-empty string. */
function readableName(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const metadata = (value as { metadata?: unknown }).metadata;
  if (typeof metadata !== 'object' || metadata === null) return undefined;
  const name = (metadata as { name?: unknown }).name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/**
 * Parses, validates and resolves every document of one YAML text read from `file` (which only labels
 * positions). Duplicates are not decided here: pass the documents of every file to resolveDuplicates.
 */
export function parseDocumentFile(text: string, file: string, options: LoadOptions = {}): ParsedFile {
  const { candidates, errors, rejectedNames, unnamedRejections } = parseFile(
    text,
    file,
    documentLimits(options.limits),
  );
  return { documents: candidates, errors, rejectedNames, unnamedRejections };
}

function groupBy(
  candidates: readonly ParsedDocument[],
  key: (c: ParsedDocument) => string,
): ParsedDocument[][] {
  const groups = new Map<string, ParsedDocument[]>();
  for (const c of candidates) {
    const k = key(c);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [c]);
    else group.push(c);
  }
  return [...groups.values()].filter((g) => g.length > 1);
}

function excluded(count: number): string {
  return count === 2 ? 'neither document is loaded' : `none of the ${count} documents is loaded`;
}

/**
 * Two documents claiming one name (or one host plugin) cannot both be right, and picking one would make
 * the result depend on file order: all of them are excluded, and one error at the last names the others.
 * `candidates` must be in load order (files, then documents); the result keeps that order.
 */
export function resolveDuplicates(candidates: readonly ParsedDocument[]): {
  documents: LoadedDocument[];
  errors: LoadError[];
} {
  const errors: LoadError[] = [];
  const rejected = new Set<ParsedDocument>();
  for (const group of groupBy(candidates, (c) => c.doc.metadata.name)) {
    const last = group.at(-1) as ParsedDocument;
    const others = group.slice(0, -1).map((c) => formatOrigin(c.nameOrigin));
    errors.push({
      origin: last.nameOrigin,
      path: 'metadata.name',
      message: `duplicate name ${JSON.stringify(last.doc.metadata.name)}, also declared at ${others.join(', ')}: ${excluded(group.length)}`,
      code: LOAD_CODES.duplicateName,
    });
    for (const c of group) rejected.add(c);
  }
  for (const group of groupBy(candidates, (c) => c.localName)) {
    const last = group.at(-1) as ParsedDocument;
    const others = group
      .slice(0, -1)
      .map((c) => `${formatOrigin(c.localNameOrigin)} (${JSON.stringify(c.doc.metadata.name)})`);
    errors.push({
      origin: last.localNameOrigin,
      path: last.localNamePath,
      message:
        `local plugin name ${JSON.stringify(last.localName)} is also used by ${others.join(', ')}: ` +
        `${excluded(group.length)}; give each a distinct spec.alias`,
      code: LOAD_CODES.duplicateLocalName,
    });
    for (const c of group) rejected.add(c);
  }
  const documents = candidates
    .filter((c) => !rejected.has(c))
    .map(({ doc, origin: o, localName, reference }) => ({ doc, origin: o, localName, reference }));
  return { documents, errors };
}

/**
 * Orders load errors the way every source reports them: by the file's position in `files` (errors of
 * no listed file, such as a missing root, first), then line, then column, keeping the input order
 * for ties. Returns a new array.
 */
export function sortLoadErrors(errors: readonly LoadError[], files: readonly string[]): LoadError[] {
  const order = new Map(files.map((f, i) => [f, i]));
  return errors
    .map((e, i) => ({ e, i }))
    .sort(
      (a, b) =>
        (order.get(a.e.origin.file) ?? -1) - (order.get(b.e.origin.file) ?? -1) ||
        a.e.origin.line - b.e.origin.line ||
        a.e.origin.column - b.e.origin.column ||
        a.i - b.i,
    )
    .map(({ e }) => e);
}

function finish(
  results: readonly FileResult[],
  pathErrors: readonly LoadError[],
  files: string[],
): LoadResult {
  const candidates = results.flatMap((r) => r.candidates);
  const { documents, errors } = resolveDuplicates(candidates);
  const all = [...pathErrors, ...results.flatMap((r) => r.errors), ...errors];
  return { documents, errors: sortLoadErrors(all, files), files };
}

/**
 * Loads the documents in one YAML text as if read from `fileName` (which only labels positions).
 * Same rules as loadDocuments, duplicate detection included.
 */
export function loadDocumentsFromText(text: string, fileName: string, options: LoadOptions = {}): LoadResult {
  return finish([parseFile(text, fileName, documentLimits(options.limits))], [], [fileName]);
}

function isYamlFile(name: string): boolean {
  return name.endsWith('.yaml') || name.endsWith('.yml');
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Lists the YAML files under a directory, depth first in sorted name order (locale-independent, so every
 * host loads the same order). Dot entries are skipped: editors' swap files, `.git`, and the `..data`
 * indirection of Kubernetes ConfigMap volumes, whose files are reached through their symlinks instead.
 * Symlinks are followed, each real directory visited once.
 */
async function listDirectory(
  dir: string,
  visited: Set<string>,
  out: string[],
  errors: LoadError[],
): Promise<void> {
  let entries;
  try {
    const real = await realpath(dir);
    if (visited.has(real)) return;
    visited.add(real);
    entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => byCodeUnits(a.name, b.name));
  } catch (error) {
    // One unreadable subdirectory must not hide the documents in its siblings.
    errors.push(pathError(dir, LOAD_CODES.readFailed, `cannot read directory: ${messageOf(error)}`));
    return;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const full = join(dir, entry.name);
    let isDirectory = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const target = await stat(full).catch(() => undefined);
      if (target === undefined) continue; // dangling link: nothing to load
      isDirectory = target.isDirectory();
      isFile = target.isFile();
    }
    if (isDirectory) await listDirectory(full, visited, out, errors);
    else if (isFile && isYamlFile(entry.name)) out.push(full);
  }
}

function pathError(path: string, code: ErrorCode, message: string): LoadError {
  return { origin: { file: path, line: 0, column: 0 }, path: '', message, code };
}

/** The files a load reads, and the problems met while finding them. */
export interface DocumentFiles {
  files: string[];
  errors: LoadError[];
}

/**
 * Lists the files loadDocuments would read for `paths`, in the order it would read them: a path is a
 * file (taken whatever its name) or a directory (its *.yaml and *.yml files, recursively, sorted,
 * skipping dot entries, following symlinks). A file reached twice (by its real path) is listed once.
 * Never rejects: a missing path is a PATH_NOT_FOUND error, an unreadable one READ_FAILED.
 */
export async function listDocumentFiles(paths: readonly string[]): Promise<DocumentFiles> {
  const files: string[] = [];
  const seen = new Set<string>();
  const pathErrors: LoadError[] = [];
  const visited = new Set<string>();
  const addFile = async (file: string): Promise<void> => {
    // A file that vanished since it was listed is reported by whoever reads it.
    const real = await realpath(file).catch(() => resolve(file));
    if (seen.has(real)) return;
    seen.add(real);
    files.push(file);
  };
  for (const path of paths) {
    try {
      const info = await stat(path);
      if (info.isDirectory()) {
        const found: string[] = [];
        await listDirectory(path, visited, found, pathErrors);
        for (const file of found) await addFile(file);
      } else if (info.isFile()) {
        await addFile(path);
      } else {
        pathErrors.push(pathError(path, LOAD_CODES.readFailed, 'not a regular file or directory'));
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        pathErrors.push(pathError(path, LOAD_CODES.pathNotFound, 'no such file or directory'));
      } else {
        pathErrors.push(pathError(path, LOAD_CODES.readFailed, `cannot read: ${messageOf(error)}`));
      }
    }
  }
  return { files, errors: pathErrors };
}

/** What reading one document file gave: its text, or the error that refuses it. */
export type FileText = { text: string } | { error: LoadError };

/**
 * Reads a document file as UTF-8, refusing it (LIMIT_EXCEEDED, maxFileBytes) without reading it when
 * it is larger than `maxFileBytes`, and reading at most one byte more when it grows meanwhile, so a
 * 60 MB file costs a stat, not 60 MB. Rejects with the file system's error (the caller reports it).
 */
export async function readDocumentFile(file: string, maxFileBytes: number): Promise<FileText> {
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    const limits = documentLimits({ maxFileBytes });
    if (size > maxFileBytes) return { error: fileTooLarge(file, size, limits) };
    const buffer = Buffer.allocUnsafe(Math.min(size, maxFileBytes) + 1);
    let length = 0;
    while (length < buffer.byteLength) {
      const { bytesRead } = await handle.read(buffer, length, buffer.byteLength - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxFileBytes) return { error: fileTooLarge(file, undefined, limits) };
    return { text: buffer.toString('utf8', 0, length) };
  } finally {
    await handle.close();
  }
}

/** The path that means standard input (`-f -`), and how its documents are named in messages. */
export const STDIN_PATH = '-';
const STDIN_NAME = '<stdin>';

/**
 * Loads every DockerPlugin document from `paths`, in the order given. A path is a file (read whatever
 * its name), a directory (its *.yaml and *.yml files, recursively, sorted, skipping dot entries), or
 * `-` for standard input (`options.stdin`). A file reached twice is read once. Never rejects for bad
 * input: a missing path is a PATH_NOT_FOUND error, an unreadable one READ_FAILED, a file or document
 * beyond `options.limits` LIMIT_EXCEEDED (naming the limit), and a bad document is excluded while the
 * rest load.
 */
export async function loadDocuments(paths: string[], options: LoadOptions = {}): Promise<LoadResult> {
  const limits = documentLimits(options.limits);
  const { files, errors: pathErrors } = await listDocumentFiles(paths.filter((p) => p !== STDIN_PATH));
  const results: FileResult[] = [];
  const read: string[] = [];
  if (paths.includes(STDIN_PATH)) {
    const text = options.stdin === undefined ? undefined : await options.stdin();
    if (text === undefined) {
      pathErrors.push(pathError(STDIN_NAME, LOAD_CODES.readFailed, 'standard input cannot be read here'));
    } else if (Buffer.byteLength(text) > limits.maxFileBytes) {
      pathErrors.push(fileTooLarge(STDIN_NAME, Buffer.byteLength(text), limits));
    } else {
      read.push(STDIN_NAME);
      results.push(parseFile(text, STDIN_NAME, limits));
    }
  }
  for (const file of files) {
    let text: string;
    try {
      const got = await readDocumentFile(file, limits.maxFileBytes);
      if ('error' in got) {
        pathErrors.push(got.error);
        continue;
      }
      text = got.text;
    } catch (error) {
      pathErrors.push(pathError(file, LOAD_CODES.readFailed, `cannot read: ${messageOf(error)}`));
      continue;
    }
    read.push(file);
    results.push(parseFile(text, file, limits));
  }
  return finish(results, pathErrors, read);
}
