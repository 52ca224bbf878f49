/**
 * Registry mirrors, in the spirit of containerd's hosts.toml: for an upstream registry, mirrors that
 * are tried in order before it, each with its own credentials and TLS settings. They come from
 * `registries.yaml` (in the state directory, or `--registries PATH`) and `--registry-mirror
 * REGISTRY=MIRROR[,MIRROR...]` (which replaces the file's list for that registry):
 *
 * ```yaml
 * mirrors:
 *   docker.io:
 *     - host: mirror.example.com:5000     # host[:port], optionally followed by a path prefix
 *       insecure: false                   # plain http / unverified TLS; loopback hosts may always use http
 *       auth: { username: bot, passwordFile: /etc/plugctl/mirror-password }
 *       ca: /etc/plugctl/mirror-ca.pem       # its certificate must chain to these (not the system's)
 *     - host: 127.0.0.1:5001/cache
 * ```
 *
 * A mirror never decides what the content is: the inspector checks what it serves against the pinned
 * digest, or the digest the upstream gives for the tag, and only when the upstream is unreachable
 * takes the mirror's word for the tag (and says so).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { PlugctlError } from '../errors.ts';
import { Credentials, authKeyFor } from './credentials.ts';
import type { Reference } from '../api/reference.ts';

/** One mirror of an upstream registry. */
export interface MirrorEndpoint {
  /** `host[:port]` the mirror answers on */
  host: string;
  /** repository prefix on the mirror (`cache` makes `acme/vol` `cache/acme/vol`); '' for none */
  prefix: string;
  /** plain http (and unverified https) allowed, like --insecure-registry; loopback hosts always may use http */
  insecure: boolean;
  /** credentials for this mirror; absent: the Docker credential files for its host */
  credentials?: Credentials;
  /** PEM certificates this mirror's https certificate must chain to (instead of the system's) */
  ca?: string;
}

/** Mirrors by upstream registry (`docker.io`, `registry.example.com:5000`). */
export interface MirrorConfig {
  mirrors: ReadonlyMap<string, readonly MirrorEndpoint[]>;
}

/** No mirrors at all. */
export const NO_MIRRORS: MirrorConfig = { mirrors: new Map() };

const HOST = /^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$/;
const PREFIX = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const MAX_FILE_BYTES = 256 * 1024;

function invalid(where: string, why: string): PlugctlError {
  return new PlugctlError('MIRROR_CONFIG_INVALID', `${where}: ${why}`);
}

/** Splits `host[:port][/prefix]` into host and prefix, checking both. */
function parseLocation(text: string, where: string): { host: string; prefix: string } {
  const stripped = text
    .trim()
    .replace(/^https?:\/\//, '')
    .replace(/\/+$/, '');
  const slash = stripped.indexOf('/');
  const host = slash < 0 ? stripped : stripped.slice(0, slash);
  const prefix = slash < 0 ? '' : stripped.slice(slash + 1);
  if (!HOST.test(host) || !URL.canParse(`https://${host}/`)) {
    throw invalid(where, `${JSON.stringify(text)} is not a host[:port] (port 1 to 65535)`);
  }
  if (prefix !== '' && !PREFIX.test(prefix)) {
    throw invalid(where, `the path prefix ${JSON.stringify(prefix)} is not a repository path`);
  }
  return { host: host.toLowerCase(), prefix };
}

/** The upstream key: Docker Hub under its reference name, others as written. */
function upstreamKey(text: string, where: string): string {
  const { host, prefix } = parseLocation(text, where);
  if (prefix !== '')
    throw invalid(where, `an upstream registry is a host[:port], not ${JSON.stringify(text)}`);
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

/**
 * `--registry-mirror REGISTRY=MIRROR[,MIRROR...]` values: mirrors with default settings (no
 * credentials of their own, TLS verified, http only on loopback).
 */
export function parseMirrorFlags(values: readonly string[]): Map<string, MirrorEndpoint[]> {
  const out = new Map<string, MirrorEndpoint[]>();
  for (const value of values) {
    const where = `--registry-mirror ${value}`;
    const eq = value.indexOf('=');
    if (eq <= 0 || eq === value.length - 1) throw invalid(where, 'expected REGISTRY=MIRROR[,MIRROR...]');
    const upstream = upstreamKey(value.slice(0, eq), where);
    const list = out.get(upstream) ?? [];
    for (const item of value.slice(eq + 1).split(',')) {
      if (item.trim() === '') throw invalid(where, 'an empty mirror in the list');
      list.push({ ...parseLocation(item, where), insecure: false });
    }
    out.set(upstream, list);
  }
  return out;
}

/**
 * Parses registries.yaml's text. Unknown keys are errors (a misspelt `insecure` must not silently
 * turn TLS checks back on, or off). `readFile` reads a passwordFile.
 */
export function parseRegistriesYaml(
  text: string,
  file: string,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): Map<string, MirrorEndpoint[]> {
  if (text.length > MAX_FILE_BYTES) throw invalid(file, `over ${MAX_FILE_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 0, uniqueKeys: true });
  } catch (error) {
    throw invalid(file, `not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const out = new Map<string, MirrorEndpoint[]>();
  if (doc === null || doc === undefined) return out;
  const root = record(doc, file);
  onlyKeys(root, ['mirrors'], file);
  if (root['mirrors'] === undefined || root['mirrors'] === null) return out;
  for (const [upstreamText, list] of Object.entries(record(root['mirrors'], `${file}: mirrors`))) {
    const where = `${file}: mirrors.${upstreamText}`;
    const upstream = upstreamKey(upstreamText, where);
    if (!Array.isArray(list)) throw invalid(where, 'must be a list of mirrors');
    const endpoints: MirrorEndpoint[] = list.map((item: unknown, index) => {
      const at = `${where}[${index}]`;
      const entry = typeof item === 'string' ? { host: item } : record(item, at);
      onlyKeys(entry, ['host', 'insecure', 'auth', 'ca'], at);
      if (typeof entry['host'] !== 'string') throw invalid(at, 'host is required (host[:port][/prefix])');
      const insecure = entry['insecure'] ?? false;
      if (typeof insecure !== 'boolean') throw invalid(at, 'insecure must be true or false');
      const location = parseLocation(entry['host'], at);
      const credentials =
        entry['auth'] === undefined
          ? undefined
          : parseAuth(entry['auth'], location.host, `${at}.auth`, readFile);
      const ca = entry['ca'] === undefined ? undefined : readCa(entry['ca'], `${at}.ca`, readFile);
      return {
        ...location,
        insecure,
        ...(credentials !== undefined ? { credentials } : {}),
        ...(ca !== undefined ? { ca } : {}),
      };
    });
    out.set(upstream, endpoints);
  }
  return out;
}

function readCa(value: unknown, where: string, readFile: (path: string) => string): string {
  if (typeof value !== 'string' || !value.startsWith('/'))
    throw invalid(where, 'must be the absolute path of a PEM file');
  let pem: string;
  try {
    pem = readFile(value);
  } catch (error) {
    throw invalid(where, `cannot read ${value} (${(error as NodeJS.ErrnoException).code ?? 'read failed'})`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw invalid(where, `${value} holds no PEM certificate`);
  return pem;
}

function parseAuth(
  value: unknown,
  host: string,
  where: string,
  readFile: (path: string) => string,
): Credentials {
  const auth = record(value, where);
  onlyKeys(auth, ['username', 'password', 'passwordFile'], where);
  if (typeof auth['username'] !== 'string' || auth['username'] === '')
    throw invalid(where, 'username is required');
  if ((auth['password'] === undefined) === (auth['passwordFile'] === undefined)) {
    throw invalid(where, 'give exactly one of password and passwordFile');
  }
  let password: string;
  if (typeof auth['passwordFile'] === 'string') {
    try {
      password = readFile(auth['passwordFile']).replace(/\r?\n$/, '');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'read failed';
      throw invalid(where, `cannot read passwordFile ${auth['passwordFile']} (${code})`);
    }
  } else if (typeof auth['password'] === 'string') {
    password = auth['password'];
  } else {
    throw invalid(where, 'password and passwordFile must be strings');
  }
  return new Credentials({ serverAddress: authKeyFor(host), username: auth['username'], password });
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(where, 'must be a mapping');
  return value as Record<string, unknown>;
}

function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key))
      throw invalid(where, `unknown key ${JSON.stringify(key)} (allowed: ${allowed.join(', ')})`);
  }
}

/** The file's mirrors with the flags' lists replacing the file's for the registries they name. */
export function mergeMirrors(
  file: ReadonlyMap<string, MirrorEndpoint[]>,
  flags: ReadonlyMap<string, MirrorEndpoint[]>,
): MirrorConfig {
  return { mirrors: new Map([...file, ...flags]) };
}

/** The mirrors of `registry`, in the order they are tried (empty when it has none). */
export function mirrorsOf(config: MirrorConfig, registry: string): readonly MirrorEndpoint[] {
  return config.mirrors.get(registry) ?? [];
}

/** The reference `ref` has on `mirror`: same repository (under its prefix), tag and digest. */
export function onMirror(ref: Reference, mirror: MirrorEndpoint): Reference {
  return {
    ...ref,
    domain: mirror.host,
    path: mirror.prefix === '' ? ref.path : `${mirror.prefix}/${ref.path}`,
  };
}

/** host -> the PEM certificates its TLS certificate must chain to, for mirrors that name a CA. */
export function mirrorCas(config: MirrorConfig): Map<string, string> {
  const out = new Map<string, string>();
  for (const mirror of [...config.mirrors.values()].flat())
    if (mirror.ca !== undefined) out.set(mirror.host, mirror.ca);
  return out;
}

/** Hosts of mirrors marked insecure: they join --insecure-registry. */
export function insecureMirrorHosts(config: MirrorConfig): string[] {
  return [...config.mirrors.values()]
    .flat()
    .filter((m) => m.insecure)
    .map((m) => m.host);
}

/**
 * A credential lookup that answers for mirrors with their own credentials first, and asks
 * `fallback` (the Docker credential files) for every other host.
 */
export function withMirrorCredentials<T extends (host: string) => Promise<Credentials | undefined>>(
  config: MirrorConfig,
  fallback: T,
): (host: string) => Promise<Credentials | undefined> {
  const own = new Map<string, Credentials>();
  for (const mirror of [...config.mirrors.values()].flat()) {
    if (mirror.credentials !== undefined) own.set(mirror.host, mirror.credentials);
  }
  if (own.size === 0) return fallback;
  return async (host) => own.get(host.toLowerCase()) ?? fallback(host);
}
