/**
 * Registry authentication pieces that need no network: WWW-Authenticate parsing (RFC 7235), the
 * scope strings of Docker's token protocol, the Basic header, token responses and a token cache
 * keyed by (realm, service, scope) that honours expires_in.
 *
 * Facts this follows (distribution v2.8 registry/auth/token and Docker's client):
 * - the registry challenges with `Bearer realm="…",service="…",scope="repository:NAME:pull"` (it
 *   never puts a resource class in its own challenge) and adds `error="invalid_token"` when a token
 *   was sent but rejected;
 * - Docker asks the token service for `repository(plugin):NAME:pull` when it pulls a plugin, and
 *   `…:pull,push` when it pushes one; the registry compares only the type and name of the token's
 *   `access` entries, so a token granted for the class-qualified scope opens the plain repository;
 * - token responses carry `token` and/or `access_token`; `expires_in` defaults to 60 seconds and
 *   Docker never trusts less than that.
 */

/** One challenge of a WWW-Authenticate header, scheme lower-cased, parameter names lower-cased. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN_CHARS = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Parses every challenge of one or more WWW-Authenticate header values. Tolerant: quoted strings
 * with escapes, bare token values, extra commas and spaces; a token68 credential is kept as the
 * parameter `token68`. Never throws; garbage yields fewer challenges.
 */
export function parseWwwAuthenticate(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((value) => parseWwwAuthenticate(value));
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpaces = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN_CHARS.test(header[i] ?? '')) i++;
    return header.slice(start, i);
  };
  const readQuoted = (): string => {
    // at the opening quote
    i++;
    let out = '';
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      out += header[i];
      i++;
    }
    i++; // closing quote (or end)
    return out;
  };

  let current: Challenge | undefined;
  while (i < n) {
    skipSpaces();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const word = readToken();
    if (word === '') {
      i++; // an unexpected character: skip it rather than loop
      continue;
    }
    skipSpaces();
    if (header[i] === '=' && current !== undefined) {
      i++;
      skipSpaces();
      current.params[word.toLowerCase()] = header[i] === '"' ? readQuoted() : readToken();
      continue;
    }
    // a new challenge: `Scheme` followed by auth-params or by one token68 credential
    current = { scheme: word.toLowerCase(), params: {} };
    challenges.push(current);
    const comma = header.indexOf(',', i);
    const rest = header.slice(i, comma === -1 ? n : comma).trim();
    if (TOKEN68.test(rest)) {
      current.params['token68'] = rest;
      i = comma === -1 ? n : comma;
    }
  }
  return challenges;
}

/** The repository scope Docker requests: `repository(plugin):NAME:pull,push`, or without a class. */
export function repositoryScope(name: string, actions: readonly string[], resourceClass = ''): string {
  const type = resourceClass === '' ? 'repository' : `repository(${resourceClass})`;
  return `${type}:${name}:${actions.join(',')}`;
}

/** One parsed scope: `repository(plugin):a/b:pull,push` -> type repository, class plugin. */
export interface Scope {
  type: string;
  class: string;
  name: string;
  actions: string[];
}

/**
 * Parses one scope as the token protocol writes it (`type[(class)]:name:actions`). The name may
 * contain ':' (a registry host with a port); type and actions are the first and last fields.
 */
export function parseScope(scope: string): Scope | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const typeField = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((action) => action !== '');
  const match = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$/i.exec(typeField);
  if (match === null || name === '') return undefined;
  return { type: match[1] ?? '', class: match[2] ?? '', name, actions };
}

/** `Basic base64(user:password)`. The result is a secret: never log it. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

/** A bearer token and when it stops being usable (ms since the epoch). */
export interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Docker's floor: a token is assumed valid for at least a minute, and by default exactly that. */
export const MIN_TOKEN_LIFETIME_S = 60;

/**
 * Reads a token service's JSON answer. Returns undefined when it holds no token. The expiry is
 * issued_at (or now) + expires_in (at least 60 s), less a 10% safety margin so a token is not sent
 * in its last seconds.
 */
export function parseTokenResponse(body: unknown, now: number): CachedToken | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const record = body as Record<string, unknown>;
  const token =
    typeof record['token'] === 'string' && record['token'] !== ''
      ? record['token']
      : typeof record['access_token'] === 'string' && record['access_token'] !== ''
        ? record['access_token']
        : undefined;
  if (token === undefined) return undefined;
  const expiresIn =
    typeof record['expires_in'] === 'number' && Number.isFinite(record['expires_in'])
      ? Math.max(record['expires_in'], MIN_TOKEN_LIFETIME_S)
      : MIN_TOKEN_LIFETIME_S;
  let issuedAt = now;
  if (typeof record['issued_at'] === 'string') {
    const parsed = Date.parse(record['issued_at']);
    // a token service whose clock runs ahead must not make us keep a token past its real end
    if (Number.isFinite(parsed) && parsed < now) issuedAt = parsed;
  }
  return { token, expiresAt: issuedAt + expiresIn * 900 };
}

/**
 * Bearer tokens by (realm, service, scope). Concurrent requests for the same key share one
 * fetch. Lives inside one RegistryClient; nothing is module-level.
 */
export class TokenCache {
  readonly #tokens = new Map<string, CachedToken>();
  readonly #pending = new Map<string, Promise<CachedToken>>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The cache key of a token request. */
  static key(realm: string, service: string | undefined, scope: string): string {
    return `${realm}\n${service ?? ''}\n${scope}`;
  }

  /** A still-valid token for `key`, else one from `fetch` (deduplicated across callers). */
  async get(key: string, fetch: () => Promise<CachedToken>): Promise<string> {
    const cached = this.#tokens.get(key);
    if (cached !== undefined && cached.expiresAt > this.#now()) return cached.token;
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = fetch().finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    const fresh = await pending;
    this.#tokens.set(key, fresh);
    return fresh.token;
  }

  /** Forgets the token for `key` (after the registry rejected it). */
  invalidate(key: string): void {
    this.#tokens.delete(key);
  }

  /** Number of cached tokens (for tests and metrics). */
  get size(): number {
    return this.#tokens.size;
  }
}
