/**
 * File mode's secrets: `valueFrom.file` is read from the host on every pass, so a changed file is
 * applied at the next reconcile (resync, or the next `apply`). One trailing newline is dropped, as
 * `echo token > file` writes one. A `secretKeyRef` needs the Kubernetes agent and is refused here.
 *
 * Only files inside the allowed directories (`--secrets-dir`, default /etc/plugctl/secrets) are read,
 * after resolving symlinks: plugctl runs as root, and a document must not be a way to copy any file
 * root can read (say /etc/shadow) into a plugin's environment.
 */
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import { PlugctlError } from '../errors.ts';
import { MAX_SECRET_BYTES } from '../limits.ts';
import type { SecretResolver } from '../api/secrets.ts';
import type { SecretSource } from '../api/types.ts';

/** Options of the file resolver. */
export interface FileSecretOptions {
  /** largest file read, bytes; default MAX_SECRET_BYTES */
  maxBytes?: number;
  /** directories secret files must be inside (symlinks resolved); default DEFAULT_SECRETS_DIRS */
  allowedDirs?: readonly string[];
}

/** Where secret files may be, unless --secrets-dir says otherwise. */
export const DEFAULT_SECRETS_DIRS: readonly string[] = ['/etc/plugctl/secrets'];

/** A SecretResolver for file mode: reads `file` sources, refuses `secretKeyRef`. */
export function fileSecretResolver(options: FileSecretOptions = {}): SecretResolver {
  const maxBytes = options.maxBytes ?? MAX_SECRET_BYTES;
  const allowedDirs = options.allowedDirs ?? DEFAULT_SECRETS_DIRS;
  return {
    async resolve(source: SecretSource, signal?: AbortSignal): Promise<string> {
      if (source.file === undefined) {
        throw new PlugctlError(
          'SECRET_SOURCE_UNSUPPORTED',
          `valueFrom.secretKeyRef (Secret ${source.secretKeyRef.name}) is read only in Kubernetes mode; ` +
            'in file mode give the secret as valueFrom.file: /path/to/file',
        );
      }
      return readSecretFile(await allowedPath(source.file, allowedDirs), maxBytes, signal, source.file);
    },
  };
}

/**
 * The file's real path when it is inside one of `dirs` (both with symlinks resolved); otherwise
 * SECRET_PATH_FORBIDDEN. A file that does not exist is SECRET_UNAVAILABLE (it may appear later).
 */
async function allowedPath(file: string, dirs: readonly string[]): Promise<string> {
  let real: string;
  try {
    real = await realpath(file);
  } catch (error) {
    throw new PlugctlError('SECRET_UNAVAILABLE', `cannot read the secret file ${file}: ${errnoText(error)}`);
  }
  for (const dir of dirs) {
    const root = await realpath(dir).catch(() => undefined);
    if (
      root !== undefined &&
      (real === root || real.startsWith(root.endsWith(sep) ? root : `${root}${sep}`))
    ) {
      return real;
    }
  }
  throw new PlugctlError(
    'SECRET_PATH_FORBIDDEN',
    `the secret file ${file}${real !== file ? ` (${real})` : ''} is not inside ${dirs.join(', ')}; ` +
      'put it there, or allow its directory with --secrets-dir',
  );
}

async function readSecretFile(
  path: string,
  maxBytes: number,
  signal: AbortSignal | undefined,
  declared: string,
): Promise<string> {
  const fail = (why: string, cause?: unknown): PlugctlError =>
    new PlugctlError('SECRET_UNAVAILABLE', `cannot read the secret file ${declared}: ${why}`, {
      ...(cause !== undefined ? { cause: new Error(why) } : {}),
    });
  signal?.throwIfAborted();
  let handle;
  try {
    // the real path was checked: a symlink swapped in since is not followed
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    throw fail(errnoText(error), error);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw fail('not a regular file');
    if (stat.size > maxBytes) throw fail(`${stat.size} bytes, over the ${maxBytes}-byte limit for a secret`);
    // read one byte past the limit, in case the file grew after the stat
    const buffer = Buffer.alloc(maxBytes + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > maxBytes) throw fail(`over the ${maxBytes}-byte limit for a secret`);
    const text = buffer.subarray(0, bytesRead).toString('utf8');
    if (text.includes('\0')) throw fail('it contains a NUL byte, which no environment value can hold');
    return text.replace(/\r?\n$/, '');
  } catch (error) {
    if (error instanceof PlugctlError) throw error;
    throw fail(errnoText(error), error);
  } finally {
    await handle.close();
  }
}

/** The errno code and a short text, never the file's content (which no fs error carries anyway). */
function errnoText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return code ?? 'read failed';
}
