/**
 * File mode's secrets: `valueFrom.file` is read from the host on every pass, so a changed file is
 * applied at the next reconcile (resync, or the next `apply`). One trailing newline is dropped, as
 * `echo token > file` writes one. A `secretKeyRef` needs the Kubernetes agent and is refused here.
 */
import { open } from 'node:fs/promises';
import { PlugctlError } from '../errors.ts';
import { MAX_SECRET_BYTES } from '../limits.ts';
import type { SecretResolver } from '../api/secrets.ts';
import type { SecretSource } from '../api/types.ts';

/** Options of the file resolver. */
export interface FileSecretOptions {
  /** largest file read, bytes; default MAX_SECRET_BYTES */
  maxBytes?: number;
}

/** A SecretResolver for file mode: reads `file` sources, refuses `secretKeyRef`. */
export function fileSecretResolver(options: FileSecretOptions = {}): SecretResolver {
  const maxBytes = options.maxBytes ?? MAX_SECRET_BYTES;
  return {
    async resolve(source: SecretSource, signal?: AbortSignal): Promise<string> {
      if (source.file === undefined) {
        throw new PlugctlError(
          'SECRET_SOURCE_UNSUPPORTED',
          `valueFrom.secretKeyRef (Secret ${source.secretKeyRef.name}) is read only in Kubernetes mode; ` +
            'in file mode give the secret as valueFrom.file: /path/to/file',
        );
      }
      return readSecretFile(source.file, maxBytes, signal);
    },
  };
}

async function readSecretFile(path: string, maxBytes: number, signal?: AbortSignal): Promise<string> {
  const fail = (why: string, cause?: unknown): PlugctlError =>
    new PlugctlError('SECRET_UNAVAILABLE', `cannot read the secret file ${path}: ${why}`, {
      ...(cause !== undefined ? { cause: new Error(why) } : {}),
    });
  signal?.throwIfAborted();
  let handle;
  try {
    handle = await open(path, 'r');
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
