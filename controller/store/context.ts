/**
 * Plugin build contexts, as `docker plugin create` takes them: a directory holding `config.json`
 * and `rootfs/`, or a tar of one (a file; gzip-compressed or not). Both stores build from a context
 * (the docker store sends it to POST /plugins/create, the embedded store unpacks it itself), and the
 * planner needs to know, before anything is built, what the context asks for (its privileges) and
 * whether it changed since it was built (its digest). Everything here is store-neutral.
 */
import { createHash } from 'node:crypto';
import { constants, createReadStream, type Stats } from 'node:fs';
import { lstat, open, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { join, posix, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import type { Header, Pack } from 'tar-stream';
import { PlugctlError } from '../errors.ts';
import { MAX_CONTEXT_CONFIG_BYTES } from '../limits.ts';
import { parsePluginConfig, PluginConfigError } from '../plugin/config.ts';
import { computePrivileges } from '../plugin/privileges.ts';
import type { PluginConfig } from '../plugin/config.ts';
import type { PluginPrivilege } from '../plugin/privileges.ts';

const CHUNK = 1024 * 1024;

/** What a context holds, known before anything is built from it. */
export interface ContextInfo {
  /** absolute path of the context */
  context: string;
  /**
   * `sha256:` of the context's content: of a tar file's bytes, or of a directory's tree (names,
   * types, modes, owners, link targets and file contents; not modification times, which a fresh
   * Git checkout changes without changing anything else)
   */
  digest: string;
  config: PluginConfig;
  /** what the plugin will be able to do once created (moby's rules), to compare with the grants */
  privileges: PluginPrivilege[];
}

/** CONTEXT_INVALID (stalled: the context must be fixed) naming the context and what is wrong. */
export function contextError(context: string, message: string, cause?: unknown): PlugctlError {
  return new PlugctlError('CONTEXT_INVALID', `plugin context ${context}: ${message}`, {
    kind: 'stalled',
    ...(cause !== undefined ? { cause } : {}),
  });
}

/**
 * Where JSON.parse stopped, without its message: V8 quotes a snippet of the input there, and a
 * config.json may be anything (a symlink's target, a file the plugin's author did not mean to share).
 */
function jsonErrorPosition(error: unknown): string {
  const position = /position (\d+)/.exec(error instanceof Error ? error.message : '')?.[1];
  return position === undefined ? '' : ` at byte ${position}`;
}

/**
 * Parses and checks a context's config.json as dockerd would decode it. Errors never quote the
 * file's content (nor carry the parser's error, which does).
 */
export function parseContextConfig(bytes: Uint8Array, context: string): PluginConfig {
  if (bytes.byteLength > MAX_CONTEXT_CONFIG_BYTES) {
    throw contextError(
      context,
      `config.json is larger than ${MAX_CONTEXT_CONFIG_BYTES} bytes; a plugin config is a few KiB`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw contextError(context, `config.json is not valid JSON (syntax error${jsonErrorPosition(error)})`);
  }
  try {
    return parsePluginConfig(json, context);
  } catch (error) {
    if (error instanceof PluginConfigError) {
      throw contextError(context, `config.json is not a valid plugin config: ${error.detail}`, error);
    }
    throw error;
  }
}

/** Adds one entry to `packer` and waits until it is written. */
export function addEntry(
  packer: Pack,
  header: Header | (Partial<Header> & { name: string }),
  body?: Readable | Uint8Array,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error | null): void => (error ? reject(error) : resolve());
    if (body instanceof Uint8Array) {
      packer.entry(header, body, done);
      return;
    }
    const sink = packer.entry(header, done);
    if (body !== undefined) pipeline(body, sink).catch(reject);
  });
}

/** Linux's major/minor of a dev_t. */
function majorMinor(rdev: number): { devmajor: number; devminor: number } {
  return {
    devmajor: ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff),
    devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
  };
}

/** How packDirectory names and dates entries. */
export interface PackOptions {
  /** prepended to every entry name (`rootfs/`), '' for none */
  prefix?: string;
  /** a fixed modification time for every entry, so the archive depends on content only */
  mtime?: Date;
}

/**
 * Writes `dir`'s tree into `packer`, sorted by name so the same tree always gives the same archive;
 * hardlinks become links, sockets are skipped (tar cannot hold them). Does not finalize.
 */
export async function packDirectory(dir: string, packer: Pack, options: PackOptions = {}): Promise<void> {
  const prefix = options.prefix ?? '';
  const inodes = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel === '' ? dir : join(dir, rel))).sort();
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const abs = join(dir, childRel);
      const stats = await lstat(abs);
      const base = {
        name: `${prefix}${childRel}`,
        mode: stats.mode & 0o7777,
        uid: stats.uid,
        gid: stats.gid,
        mtime: options.mtime ?? stats.mtime,
      };
      if (stats.isDirectory()) {
        await addEntry(packer, { ...base, type: 'directory' });
        await walk(childRel);
      } else if (stats.isSymbolicLink()) {
        await addEntry(packer, { ...base, type: 'symlink', linkname: await readlink(abs) });
      } else if (stats.isFile()) {
        if (stats.nlink > 1) {
          const key = `${stats.dev}:${stats.ino}`;
          const first = inodes.get(key);
          if (first !== undefined) {
            await addEntry(packer, { ...base, type: 'link', linkname: first });
            continue;
          }
          inodes.set(key, `${prefix}${childRel}`);
        }
        await addEntry(
          packer,
          { ...base, type: 'file', size: stats.size },
          createReadStream(abs, { highWaterMark: CHUNK }),
        );
      } else if (stats.isFIFO()) {
        await addEntry(packer, { ...base, type: 'fifo' });
      } else if (stats.isCharacterDevice() || stats.isBlockDevice()) {
        await addEntry(packer, {
          ...base,
          type: stats.isCharacterDevice() ? 'character-device' : 'block-device',
          ...majorMinor(stats.rdev),
        });
      }
    }
  };
  await walk('');
}

/** True when the stream starts with gzip's magic bytes. */
async function isGzipFile(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const magic = Buffer.alloc(2);
    const { bytesRead } = await handle.read(magic, 0, 2, 0);
    return bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/** A context tar file's bytes as a plain tar (gunzipped when it is compressed). */
async function plainTarOf(file: string): Promise<Readable> {
  const raw = createReadStream(file, { highWaterMark: CHUNK });
  if (!(await isGzipFile(file))) return raw;
  const gunzip = createGunzip({ chunkSize: CHUNK });
  raw.on('error', (error) => gunzip.destroy(error));
  return raw.pipe(gunzip);
}

/** Whether `path` is `dir` or below it (both real, absolute paths). */
function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`);
}

/**
 * Checks a context directory and returns config.json's bytes. Nothing outside the context is read:
 * config.json may be a symlink only to a regular file inside the context, and rootfs/ must be a
 * directory, not a symlink (its own symlinks are archived as symlinks, never followed). Throws
 * CONTEXT_INVALID naming what is missing or refused, never quoting a file's content.
 */
export async function readDirectoryContext(context: string): Promise<Uint8Array> {
  const root = await realpath(context).catch((error: unknown) => {
    throw contextError(context, `cannot be read (${errnoOf(error)}); check spec.build.context`);
  });
  const configPath = join(context, 'config.json');
  const link = await lstat(configPath).catch(() => undefined);
  if (link === undefined)
    throw contextError(context, 'has no config.json; a plugin context holds config.json and rootfs/');
  let real = configPath;
  if (link.isSymbolicLink()) {
    real = await realpath(configPath).catch(() => '');
    if (real === '' || !isWithin(real, root)) {
      throw contextError(
        context,
        'config.json is a symlink to a file outside the context (or to nothing); refused: a build reads nothing outside its context',
      );
    }
  }
  let config: Uint8Array;
  const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: unknown) => {
    throw contextError(context, `config.json cannot be read (${errnoOf(error)})`);
  });
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw contextError(context, 'config.json is not a regular file');
    if (info.size > MAX_CONTEXT_CONFIG_BYTES) {
      throw contextError(
        context,
        `config.json is larger than ${MAX_CONTEXT_CONFIG_BYTES} bytes; a plugin config is a few KiB`,
      );
    }
    config = await handle.readFile();
  } finally {
    await handle.close();
  }
  const rootfs = await lstat(join(context, 'rootfs')).catch(() => undefined);
  if (rootfs?.isSymbolicLink() === true) {
    throw contextError(
      context,
      'rootfs is a symlink; it must be a directory inside the context (a build reads nothing outside its context)',
    );
  }
  if (rootfs?.isDirectory() !== true)
    throw contextError(context, 'has no rootfs/ directory; a plugin context holds config.json and rootfs/');
  return config;
}

/** The errno code of a file-system failure, for messages that must not carry a path's content. */
function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}

/** Reads config.json out of a context tar (the name cleaned as moby's splitConfigRootFSFromTar does). */
async function configFromTar(context: string): Promise<Uint8Array> {
  let config: Uint8Array | undefined;
  let hasRootfs = false;
  const tar = extract();
  tar.on('entry', (header, stream, next) => {
    let name = posix.normalize(header.name).replace(/\/+$/, '');
    if (name.startsWith('/')) name = name.slice(1);
    if (name === 'rootfs' || name.startsWith('rootfs/')) hasRootfs = true;
    if (name !== 'config.json') {
      stream.on('end', () => next());
      stream.resume();
      return;
    }
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      stream.resume();
      next(
        contextError(
          context,
          `config.json in the archive is a ${header.type ?? 'special entry'}, not a file`,
        ),
      );
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    stream.on('end', () => {
      config = Buffer.concat(chunks);
      next();
    });
  });
  try {
    await pipeline(await plainTarOf(context), tar);
  } catch (error) {
    if (error instanceof PlugctlError) throw error;
    throw contextError(context, `is not a readable tar archive (${(error as Error).message})`, error);
  }
  if (config === undefined)
    throw contextError(context, 'has no config.json; a plugin context holds config.json and rootfs/');
  if (!hasRootfs)
    throw contextError(context, 'has no rootfs/ directory; a plugin context holds config.json and rootfs/');
  return config;
}

const EPOCH = new Date(0);

/** sha256 of everything `source` yields. */
async function digestOf(source: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of source) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

/** stat() of a context, or CONTEXT_INVALID naming it. */
async function statContext(context: string): Promise<Stats> {
  return stat(context).catch((error: unknown) => {
    throw contextError(
      context,
      `cannot be read (${(error as Error).message}); check spec.build.context`,
      error,
    );
  });
}

/**
 * A context directory as a plain tar: config.json, then rootfs/ sorted. With `mtime`, every entry
 * carries it, so the archive depends on content only. A failure while packing errors the stream.
 */
function packContext(context: string, config: Uint8Array, mtime?: Date): Pack {
  const packer = pack();
  const stamp = mtime === undefined ? {} : { mtime };
  void (async () => {
    await addEntry(packer, { name: 'config.json', type: 'file', mode: 0o644, ...stamp }, config);
    await addEntry(packer, { name: 'rootfs', type: 'directory', mode: 0o755, ...stamp });
    await packDirectory(join(context, 'rootfs'), packer, { prefix: 'rootfs/', ...stamp });
    packer.finalize();
  })().catch((error: unknown) => packer.destroy(error as Error));
  return packer;
}

/**
 * Reads a context without building it: its config (checked as dockerd checks it), the privileges
 * that config asks for, and the digest of its content. Throws CONTEXT_INVALID naming the context
 * when it is missing, unreadable, or lacks config.json or rootfs/.
 */
export async function inspectContext(context: string): Promise<ContextInfo> {
  let configBytes: Uint8Array;
  let digest: string;
  if ((await statContext(context)).isDirectory()) {
    configBytes = await readDirectoryContext(context);
    digest = await digestOf(packContext(context, configBytes, EPOCH) as AsyncIterable<Uint8Array>);
  } else {
    configBytes = await configFromTar(context);
    digest = await digestOf(createReadStream(context, { highWaterMark: CHUNK }));
  }
  const config = parseContextConfig(configBytes, context);
  return { context, digest, config, privileges: computePrivileges(config) };
}

/**
 * The context as the plain tar `docker plugin create` uploads: a directory is archived
 * (config.json, then rootfs/ sorted), a tar file is sent as is (gunzipped when compressed).
 */
export async function contextTar(context: string): Promise<Readable> {
  if (!(await statContext(context)).isDirectory()) return plainTarOf(context);
  const configBytes = await readDirectoryContext(context);
  return Readable.from(packContext(context, configBytes) as AsyncIterable<Uint8Array>);
}
