/**
 * Errors of the registry client. Every one names the registry (and the repository when there is
 * one) and says what to do; none ever contains a credential or a token. The codes, their kinds and
 * what to do about each are in the catalogue (../error-codes.ts, area `registry`): `stalled` when a
 * human must change something (credentials, the reference, the registry's content), `transient` when
 * trying again later may succeed (network, 5xx, 429, timeouts, a body cut short).
 */
import { PlugctlError } from '../errors.ts';
import type { ErrorCodeOf, FailureKind } from '../error-codes.ts';

/** The codes a RegistryError carries: the catalogue's `registry` area. */
export type RegistryErrorCode = ErrorCodeOf<'registry'>;

/**
 * A failure talking to a registry. `registry` is the host (`127.0.0.1:5000`, `docker.io`),
 * `repository` the path when the operation had one, `status` the HTTP status when there was one.
 * `kind` defaults to the code's kind in the catalogue.
 */
export class RegistryError extends PlugctlError {
  declare readonly code: RegistryErrorCode;
  readonly registry: string;
  readonly repository: string | undefined;
  readonly status: number | undefined;
  /** the wait a 429's Retry-After asked for, ms, uncapped (the caller caps it at its backoff maximum) */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: RegistryErrorCode,
    message: string,
    options: {
      registry: string;
      repository?: string;
      status?: number;
      kind?: FailureKind;
      cause?: unknown;
      retryAfterMs?: number;
    },
  ) {
    super(code, message, {
      ...(options.kind !== undefined ? { kind: options.kind } : {}),
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.registry = options.registry;
    this.repository = options.repository;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** `registry 127.0.0.1:5000, repository test/vol` — the subject every message starts from. */
export function where(registry: string, repository?: string): string {
  return repository === undefined ? `registry ${registry}` : `${registry}/${repository}`;
}
