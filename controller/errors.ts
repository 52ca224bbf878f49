/**
 * Every error plugctl raises is a PlugctlError: a stable machine-readable `code`, a message that says
 * what happened and what to do, and the underlying `cause`. The `kind` drives retry policy:
 * stalled (a human must change something), waiting (retry after a delay), transient (back off).
 */

/** How a failure is retried by the controller. */
export type FailureKind = 'stalled' | 'waiting' | 'transient';

/** Base class of all plugctl errors. */
export class PlugctlError extends Error {
  readonly code: string;
  readonly kind: FailureKind;

  constructor(code: string, message: string, options: { kind?: FailureKind; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.kind = options.kind ?? 'transient';
  }
}

/** A document or reference is invalid; fix the document. */
export class SpecError extends PlugctlError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { ...options, kind: 'stalled' });
  }
}

/** The Docker Engine refused or failed a request. `status` is the HTTP status when there was one. */
export class EngineError extends PlugctlError {
  readonly status: number | undefined;
  constructor(
    code: string,
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
