/**
 * Errors of the registry client. Every one names the registry (and the repository when there is
 * one) and says what to do; none ever contains a credential or a token. The code is stable; the
 * kind follows DESIGN.md: `stalled` when a human must change something (credentials, the reference,
 * the registry's content), `transient` when trying again later may succeed (network, 5xx, 429,
 * timeouts, a body cut short).
 */
import { PlugctlError } from '../errors.ts';
import type { FailureKind } from '../errors.ts';

/**
 * The stable codes, with their kind:
 * - REGISTRY_UNREACHABLE (transient): connection refused/reset/TLS failure, after the retries
 * - REGISTRY_TIMEOUT (transient): no response headers, or the body went silent, within timeoutMs
 * - REGISTRY_SERVER_ERROR (transient): 5xx after the retries
 * - REGISTRY_RATE_LIMITED (transient): 429 after the retries
 * - REGISTRY_BODY_TRUNCATED (transient): the connection closed before the announced/declared size
 * - REGISTRY_AUTH_FAILED (stalled): 401 with the credentials (or token) we had; wrong password,
 *   credentials needed but none configured, or a registry that refuses every token
 * - REGISTRY_ACCESS_DENIED (stalled): 403
 * - REGISTRY_TOKEN_FAILED (transient when the token service answered 5xx/unreachable, else stalled):
 *   the token service answered but gave no usable token
 * - MANIFEST_NOT_FOUND, BLOB_NOT_FOUND (stalled): 404
 * - DIGEST_MISMATCH (stalled): content does not hash to the digest it was asked for / announced
 *   with; a registry serving wrong bytes does not fix itself on the next try
 * - SIZE_MISMATCH (stalled): content longer than its descriptor says
 * - MANIFEST_TOO_LARGE (stalled): a manifest or config over the size cap
 * - MANIFEST_INVALID (stalled): not JSON, an unsupported media type, a malformed descriptor
 * - PLATFORM_NOT_FOUND (stalled): an index without the requested os/architecture/variant
 * - REGISTRY_REDIRECT_INVALID (stalled): too many redirects, a redirect without Location, or to a
 *   plain-http URL on a host that must use https
 * - REGISTRY_BAD_RESPONSE (stalled): any other unexpected status (400, 405, ...)
 */
export type RegistryErrorCode =
  | 'REGISTRY_UNREACHABLE'
  | 'REGISTRY_TIMEOUT'
  | 'REGISTRY_SERVER_ERROR'
  | 'REGISTRY_RATE_LIMITED'
  | 'REGISTRY_BODY_TRUNCATED'
  | 'REGISTRY_AUTH_FAILED'
  | 'REGISTRY_ACCESS_DENIED'
  | 'REGISTRY_TOKEN_FAILED'
  | 'MANIFEST_NOT_FOUND'
  | 'BLOB_NOT_FOUND'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'MANIFEST_TOO_LARGE'
  | 'MANIFEST_INVALID'
  | 'PLATFORM_NOT_FOUND'
  | 'REGISTRY_REDIRECT_INVALID'
  | 'REGISTRY_BAD_RESPONSE';

const DEFAULT_KIND: Record<RegistryErrorCode, FailureKind> = {
  REGISTRY_UNREACHABLE: 'transient',
  REGISTRY_TIMEOUT: 'transient',
  REGISTRY_SERVER_ERROR: 'transient',
  REGISTRY_RATE_LIMITED: 'transient',
  REGISTRY_BODY_TRUNCATED: 'transient',
  REGISTRY_AUTH_FAILED: 'stalled',
  REGISTRY_ACCESS_DENIED: 'stalled',
  REGISTRY_TOKEN_FAILED: 'stalled',
  MANIFEST_NOT_FOUND: 'stalled',
  BLOB_NOT_FOUND: 'stalled',
  DIGEST_MISMATCH: 'stalled',
  SIZE_MISMATCH: 'stalled',
  MANIFEST_TOO_LARGE: 'stalled',
  MANIFEST_INVALID: 'stalled',
  PLATFORM_NOT_FOUND: 'stalled',
  REGISTRY_REDIRECT_INVALID: 'stalled',
  REGISTRY_BAD_RESPONSE: 'stalled',
};

/**
 * A failure talking to a registry. `registry` is the host (`127.0.0.1:5000`, `docker.io`),
 * `repository` the path when the operation had one, `status` the HTTP status when there was one.
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
      kind: options.kind ?? DEFAULT_KIND[code],
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
