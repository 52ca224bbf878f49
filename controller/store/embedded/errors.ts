/**
 * Errors of the embedded store. Codes shared with the docker store (NOT_FOUND, PLUGIN_ENABLED,
 * PLUGIN_EXISTS, SETTING_REJECTED, ENABLE_FAILED) mean the same thing in both, so the controller
 * and the conformance suite treat both stores alike; the others are the embedded store's own.
 */
import { PlugctlError } from '../../errors.ts';
import type { ErrorCodeOf, FailureKind } from '../../error-codes.ts';

/**
 * The codes an EmbeddedStoreError carries: those both stores share (the catalogue's `store` area) and
 * the embedded store's own (`embedded`). Their kinds and hints are in the catalogue.
 */
export type EmbeddedErrorCode = ErrorCodeOf<'store' | 'embedded'>;

/** A failure of the embedded store; `kind` defaults to the code's kind in the catalogue. */
export class EmbeddedStoreError extends PlugctlError {
  declare readonly code: EmbeddedErrorCode;

  constructor(
    code: EmbeddedErrorCode,
    message: string,
    options: { kind?: FailureKind; cause?: unknown } = {},
  ) {
    super(code, message, {
      ...(options.kind !== undefined ? { kind: options.kind } : {}),
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
