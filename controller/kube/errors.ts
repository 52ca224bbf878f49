/**
 * Failures talking to the Kubernetes API server, as PlugctlErrors with stable codes. The kind follows
 * from what a retry can achieve: a refused permission or an invalid object needs a human (stalled), a
 * missing object or CRD may appear (waiting), everything else is transient (back off).
 */
import { PlugctlError } from '../errors.ts';
import type { ErrorCode, FailureKind } from '../errors.ts';

/** Stable codes of Kubernetes failures. */
export const KUBE_CODES = {
  /** no --kubeconfig, no $KUBECONFIG and not inside a cluster */
  configNotFound: 'KUBE_CONFIG_NOT_FOUND',
  /** the kubeconfig or the service-account files cannot be read or make no sense */
  configInvalid: 'KUBE_CONFIG_INVALID',
  /** the kubeconfig asks for something plugctl does not do (legacy auth providers, proxies) */
  configUnsupported: 'KUBE_CONFIG_UNSUPPORTED',
  /** 401: the credentials were rejected */
  unauthorized: 'KUBE_UNAUTHORIZED',
  /** 403: RBAC does not allow the request */
  forbidden: 'KUBE_FORBIDDEN',
  /** 404: the object (or its resource type: CRD not installed) does not exist */
  notFound: 'KUBE_NOT_FOUND',
  /** 409: already exists, or the object changed since it was read, or a field-manager conflict */
  conflict: 'KUBE_CONFLICT',
  /** 410: the resource version is too old (a watch or a list continuation expired) */
  gone: 'KUBE_GONE',
  /** 422 or 400: the server rejected the object or the request as invalid */
  invalid: 'KUBE_INVALID',
  /** 429: the server asked to slow down */
  throttled: 'KUBE_THROTTLED',
  /** 5xx */
  serverError: 'KUBE_SERVER_ERROR',
  /** the connection could not be made or broke, or the server did not answer in time */
  unreachable: 'KUBE_UNREACHABLE',
  /** the answer was not the JSON the API promises */
  badResponse: 'KUBE_BAD_RESPONSE',
} as const;

/** A failed Kubernetes API call. `status` is the HTTP status when there was an answer. */
export class KubeError extends PlugctlError {
  readonly status: number | undefined;
  /** the Status reason the server gave (e.g. AlreadyExists, Conflict, Expired) */
  readonly reason: string | undefined;
  /** milliseconds the server asked to wait (Retry-After), when it did */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      kind?: FailureKind;
      status?: number;
      reason?: string;
      retryAfterMs?: number;
      cause?: unknown;
    } = {},
  ) {
    super(code, message, options);
    this.status = options.status;
    this.reason = options.reason;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The code and kind of an HTTP error status. */
export function classifyStatus(status: number): { code: ErrorCode; kind: FailureKind } {
  switch (status) {
    case 401:
      return { code: KUBE_CODES.unauthorized, kind: 'transient' }; // a rotated token may fix it
    case 403:
      return { code: KUBE_CODES.forbidden, kind: 'stalled' };
    case 404:
      return { code: KUBE_CODES.notFound, kind: 'waiting' };
    case 409:
      return { code: KUBE_CODES.conflict, kind: 'transient' };
    case 410:
      return { code: KUBE_CODES.gone, kind: 'transient' };
    case 400:
    case 422:
      return { code: KUBE_CODES.invalid, kind: 'stalled' };
    case 429:
      return { code: KUBE_CODES.throttled, kind: 'transient' };
    default:
      return { code: status >= 500 ? KUBE_CODES.serverError : KUBE_CODES.badResponse, kind: 'transient' };
  }
}

/** Whether `error` is a KubeError with HTTP status `status`. */
export function hasStatus(error: unknown, status: number): boolean {
  return error instanceof KubeError && error.status === status;
}
