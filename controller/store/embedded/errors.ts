/**
 * Errors of the embedded store. Codes shared with the docker store (NOT_FOUND, PLUGIN_ENABLED,
 * PLUGIN_EXISTS, SETTING_REJECTED, ENABLE_FAILED) mean the same thing in both, so the controller
 * and the conformance suite treat both stores alike; the others are the embedded store's own.
 */
import { PlugctlError } from '../../errors.ts';
import type { FailureKind } from '../../errors.ts';

/**
 * The stable codes, with their kind:
 * - STORE_LOCKED (stalled): another live process holds `<root>/plugctl.lock`
 * - STORE_CLOSED (stalled): the store was closed
 * - STORE_READ_ONLY (stalled): a change asked of a store opened read-only
 * - STORE_IO (transient): the host file system failed (disk full, permissions, ...)
 * - NOT_FOUND (stalled): no plugin by that name or ID
 * - AMBIGUOUS_ID (stalled): an ID prefix matches several plugins
 * - INVALID_PLUGIN_NAME (stalled): not a REPOSITORY[:TAG] name
 * - PLUGIN_EXISTS (transient): pull or create under a name already installed
 * - PLUGIN_ENABLED (waiting): set, upgrade or remove of an enabled plugin
 * - PRIVILEGES_MISMATCH (stalled): the grants differ from what the plugin asks for
 * - SETTING_REJECTED (stalled): a setting the plugin's config does not allow (moby's set rules)
 * - ENABLE_FAILED (transient): the runtime could not start the plugin
 * - LAYER_UNSAFE (stalled): a layer entry would write outside the rootfs (`..`, absolute path,
 *   symlink or hardlink escape)
 * - LAYER_INVALID (stalled): a layer that is not a well-formed tar (or gzip of one)
 * - LAYER_UNSUPPORTED (stalled): a layer compression or media type plugctl cannot unpack (zstd)
 * - GZIP_BOMB (stalled): a layer inflates beyond the size or ratio cap
 * - CONTEXT_INVALID (stalled): a create context without config.json or rootfs/
 * - BLOB_MISSING (stalled): content the store needs (to push) is not in its blob store
 */
export type EmbeddedErrorCode =
  | 'STORE_LOCKED'
  | 'STORE_CLOSED'
  | 'STORE_READ_ONLY'
  | 'STORE_IO'
  | 'NOT_FOUND'
  | 'AMBIGUOUS_ID'
  | 'INVALID_PLUGIN_NAME'
  | 'PLUGIN_EXISTS'
  | 'PLUGIN_ENABLED'
  | 'PRIVILEGES_MISMATCH'
  | 'SETTING_REJECTED'
  | 'ENABLE_FAILED'
  | 'LAYER_UNSAFE'
  | 'LAYER_INVALID'
  | 'LAYER_UNSUPPORTED'
  | 'GZIP_BOMB'
  | 'CONTEXT_INVALID'
  | 'BLOB_MISSING';

const DEFAULT_KIND: Record<EmbeddedErrorCode, FailureKind> = {
  STORE_LOCKED: 'stalled',
  STORE_CLOSED: 'stalled',
  STORE_READ_ONLY: 'stalled',
  STORE_IO: 'transient',
  NOT_FOUND: 'stalled',
  AMBIGUOUS_ID: 'stalled',
  INVALID_PLUGIN_NAME: 'stalled',
  PLUGIN_EXISTS: 'transient',
  PLUGIN_ENABLED: 'waiting',
  PRIVILEGES_MISMATCH: 'stalled',
  SETTING_REJECTED: 'stalled',
  ENABLE_FAILED: 'transient',
  LAYER_UNSAFE: 'stalled',
  LAYER_INVALID: 'stalled',
  LAYER_UNSUPPORTED: 'stalled',
  GZIP_BOMB: 'stalled',
  CONTEXT_INVALID: 'stalled',
  BLOB_MISSING: 'stalled',
};

/** A failure of the embedded store; `kind` defaults per code (see EmbeddedErrorCode). */
export class EmbeddedStoreError extends PlugctlError {
  declare readonly code: EmbeddedErrorCode;

  constructor(
    code: EmbeddedErrorCode,
    message: string,
    options: { kind?: FailureKind; cause?: unknown } = {},
  ) {
    super(code, message, {
      kind: options.kind ?? DEFAULT_KIND[code],
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
  }
}

/** A layer entry refused during extraction; `entry` is the tar name as written in the archive. */
export class LayerError extends EmbeddedStoreError {
  readonly entry: string | undefined;
  constructor(
    code: 'LAYER_UNSAFE' | 'LAYER_INVALID' | 'LAYER_UNSUPPORTED' | 'GZIP_BOMB',
    message: string,
    options: { entry?: string; cause?: unknown } = {},
  ) {
    super(code, message, options.cause !== undefined ? { cause: options.cause } : {});
    this.entry = options.entry;
  }
}

/** Wraps a file-system failure as STORE_IO naming what was being done; PlugctlErrors pass through. */
export function ioError(what: string, error: unknown): PlugctlError {
  if (error instanceof PlugctlError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const hint =
    code === 'ENOSPC'
      ? ': the disk is full; free space and retry'
      : code === 'EACCES' || code === 'EPERM'
        ? ': permission denied; run plugctl as root or fix the permissions of the store root'
        : code === 'EROFS'
          ? ': the file system is read-only'
          : '';
  const detail = error instanceof Error ? error.message : String(error);
  return new EmbeddedStoreError('STORE_IO', `${what} failed: ${detail}${hint}`, { cause: error });
}
