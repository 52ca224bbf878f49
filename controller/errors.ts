/**
 * Every error plugctl raises is a PlugctlError: a stable machine-readable `code` from the catalogue
 * (error-codes.ts), a message that says what happened and what to do, and the underlying `cause`. The
 * `kind` drives retry policy: stalled (a human must change something), waiting (retry after a delay),
 * transient (back off). It is the code's kind in the catalogue unless the throw site says otherwise.
 */
import { defaultKind, type ErrorCode, type FailureKind } from './error-codes.ts';

export type { ErrorCode, FailureKind } from './error-codes.ts';

/** Base class of all plugctl errors. */
export class PlugctlError extends Error {
  readonly code: ErrorCode;
  readonly kind: FailureKind;

  constructor(code: ErrorCode, message: string, options: { kind?: FailureKind; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.kind = options.kind ?? defaultKind(code);
  }
}

/** A document or reference is invalid; fix the document. Always stalled. */
export class SpecError extends PlugctlError {
  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { ...options, kind: 'stalled' });
  }
}

/** The Docker Engine refused or failed a request. `status` is the HTTP status when there was one. */
export class EngineError extends PlugctlError {
  readonly status: number | undefined;
  constructor(
    code: ErrorCode,
    message: string,
    options: { kind?: FailureKind; status?: number; cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.status = options.status;
  }
}

/** Returns a one-line human message for any thrown value, including its code when it has one. */
export function describeError(error: unknown): string {
  if (error instanceof PlugctlError) return `${error.message} [${error.code}]`;
  if (error instanceof Error) return error.message;
  return String(error);
}
