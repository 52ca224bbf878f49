/**
 * Transport rules of the registry client that need no network, kept pure so they are unit-tested
 * on their own: which hosts may use plain HTTP, backoff delays, Retry-After, redirects (and when
 * the Authorization header must be dropped), and which low-level failures are worth a retry.
 */
import { isIP } from 'node:net';

/** Host part of `host[:port]`, brackets of an IPv6 literal removed, lower-cased. */
export function hostnameOf(host: string): string {
  let name = host.toLowerCase();
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    return close === -1 ? name.slice(1) : name.slice(1, close);
  }
  const colon = name.lastIndexOf(':');
  if (colon !== -1 && name.indexOf(':') === colon) name = name.slice(0, colon);
  return name;
}

/** Whether `host[:port]` is a loopback address: 127.0.0.0/8, ::1 or localhost (Docker's rule). */
export function isLoopbackHost(host: string): boolean {
  const name = hostnameOf(host);
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1' || name === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * Whether plain HTTP may be used for `host`: loopback hosts, and hosts listed in
 * `insecureRegistries` either exactly (`host:port`) or by host name alone (`host` covers every port),
 * matching how `--insecure-registry` entries are usually written. CIDR entries are not supported.
 */
export function allowsPlainHttp(host: string, insecureRegistries: readonly string[]): boolean {
  if (isLoopbackHost(host)) return true;
  const lower = host.toLowerCase();
  const name = hostnameOf(host);
  return insecureRegistries.some((entry) => {
    const stripped = entry
      .toLowerCase()
      .replace(/^https?:\/\//, '')
      .replace(/\/+$/, '');
    return stripped === lower || stripped === name;
  });
}

/**
 * Delay before retry number `attempt` (0-based): exponential from `baseMs`, capped at `maxMs`,
 * with full jitter (a uniform draw in [cap/2, cap]) so that many clients retrying together spread.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/**
 * Milliseconds a Retry-After value asks for: delay-seconds or an HTTP-date (relative to `now`),
 * clamped to [0, capMs]. Undefined when absent or unparseable (callers then use their backoff).
 */
export function parseRetryAfter(value: string | undefined, now: number, capMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) return Math.min(Number.parseInt(text, 10) * 1000, capMs);
  if (!/[a-z]/i.test(text)) return undefined; // "-5", "1.5": not valid delay-seconds nor a date
  const at = Date.parse(text);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, Math.min(at - now, capMs));
}

/** Names that resolve to a cloud's instance metadata service, whatever their address. */
const METADATA_HOSTNAMES: ReadonlySet<string> = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
]);

/** The four bytes of an IPv4 literal, or undefined. */
function ipv4Bytes(name: string): number[] | undefined {
  if (isIP(name) !== 4) return undefined;
  return name.split('.').map((part) => Number(part));
}

/** An IPv6 literal in the WHATWG URL's canonical form (lower case, compressed, `::ffff:a9fe:a9fe`). */
function canonicalIpv6(name: string): string {
  return new URL(`http://[${name}]/`).hostname.slice(1, -1);
}

/**
 * Whether `host[:port]` is a link-local address (169.254.0.0/16, fe80::/10, IPv4-mapped forms
 * included) or a cloud metadata service (AWS's fd00:ec2::254, Alibaba's 100.100.100.200, the
 * metadata host names). A registry never legitimately sends a client there; an attacker who
 * controls a registry's answers would, to read the host's cloud credentials.
 */
export function isLinkLocalOrMetadataHost(host: string): boolean {
  const name = hostnameOf(host).replace(/\.$/, '');
  if (METADATA_HOSTNAMES.has(name)) return true;
  let v4 = ipv4Bytes(name);
  if (isIP(name) === 6) {
    const v6 = canonicalIpv6(name);
    if (/^fe[89ab][0-9a-f]:/.test(v6) || v6 === 'fd00:ec2::254') return true;
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
    if (mapped !== null) {
      const high = Number.parseInt(mapped[1] as string, 16);
      const low = Number.parseInt(mapped[2] as string, 16);
      v4 = [high >> 8, high & 0xff, low >> 8, low & 0xff];
    }
  }
  if (v4 === undefined) return false;
  return (v4[0] === 169 && v4[1] === 254) || v4.join('.') === '100.100.100.200';
}

/**
 * Why a redirect from `from` to `to` must not be followed, or undefined when it may be. Refused:
 * a scheme other than http(s); a link-local or metadata address; plain http to a host that is not
 * itself allowed plain http (loopback, or listed in `insecureRegistries`), whatever the scheme of
 * `from` (a loopback registry may not hand the client to a plain-http host elsewhere); and a
 * loopback target from a registry that is not itself on loopback (a remote registry must not steer
 * requests at this host's own services).
 */
export function redirectRefusal(
  from: URL,
  to: URL,
  insecureRegistries: readonly string[],
): string | undefined {
  if (to.protocol !== 'https:' && to.protocol !== 'http:')
    return `redirect to unsupported scheme ${to.protocol}`;
  if (isLinkLocalOrMetadataHost(to.host)) {
    return `redirect to ${to.host} refused: a link-local or cloud metadata address is never a registry`;
  }
  if (to.protocol === 'http:' && !allowsPlainHttp(to.host, insecureRegistries)) {
    return `redirect to plain-http ${to.host} refused; a redirect may use plain http only to a registry allowed it (loopback, or listed with --insecure-registry)`;
  }
  if (isLoopbackHost(to.host) && !isLoopbackHost(from.host)) {
    return `redirect from ${from.host} to the loopback address ${to.host} refused`;
  }
  return undefined;
}

/** The outcome of looking at one redirect. */
export interface RedirectTarget {
  url: URL;
  /** false when the target is another origin: the Authorization header must not follow */
  keepAuthorization: boolean;
}

/**
 * Resolves a Location header against the URL that answered with it. Authorization is kept only
 * when scheme, host and port are all unchanged: a registry redirecting blob downloads to storage
 * (S3, a CDN) must never receive the registry's credentials or token, and a switch to another
 * scheme or port counts as another origin as browsers count it.
 */
export function redirectTarget(from: URL, location: string): RedirectTarget {
  const url = new URL(location, from);
  return { url, keepAuthorization: url.origin === from.origin };
}

const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** The `code` of an error or of its cause chain (undici wraps socket errors). */
export function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Whether a failure before any response arrived is worth another attempt. */
export function isRetryableNetworkError(error: unknown): boolean {
  const code = errorCode(error);
  return (
    code !== undefined &&
    (RETRYABLE_CODES.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS'))
  );
}

/**
 * Whether a failure is a timeout (headers deadline, body idle, a body below the minimum rate), for
 * the error's code.
 */
export function isTimeoutError(error: unknown): boolean {
  const code = errorCode(error);
  return (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'PLUGCTL_TRANSFER_TOO_SLOW'
  );
}

/** How a timed-out body failed, for messages: the rate guard's own words, or idle silence. */
export function timeoutDetail(error: unknown): string {
  return errorCode(error) === 'PLUGCTL_TRANSFER_TOO_SLOW' && error instanceof Error
    ? `too slow: ${error.message}`
    : 'no data within the idle timeout';
}
