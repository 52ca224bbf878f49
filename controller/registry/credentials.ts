/**
 * Registry credentials from the Docker client's configuration, read exactly where and as `docker`
 * reads them: `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), with `credHelpers`,
 * `credsStore` and `auths`. Secrets stay inside Credentials objects, which redact themselves when
 * logged, inspected or serialised; no error message ever contains one.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PlugctlError } from '../errors.ts';

/** The key Docker Hub credentials are stored under, for historical reasons. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';
const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
const HELPER_TIMEOUT_MS = 10_000;

/**
 * Credentials for one registry: a username and password, or an identity token (an OAuth refresh
 * token, which `docker login` stores when the registry hands one out). Secrets are private fields and
 * `toJSON`/`inspect`/`toString` print `[redacted]` in their place.
 */
export class Credentials {
  /** the registry these are for, as Docker keys it (`https://index.docker.io/v1/` for Docker Hub) */
  readonly serverAddress: string;
  readonly username: string | undefined;
  readonly #password: string | undefined;
  readonly #identityToken: string | undefined;

  constructor(init: { serverAddress: string; username?: string; password?: string; identityToken?: string }) {
    this.serverAddress = init.serverAddress;
    this.username = init.username;
    this.#password = init.password;
    this.#identityToken = init.identityToken;
  }

  /** The password; read it only to send it. */
  get password(): string | undefined {
    return this.#password;
  }

  /** The identity token; read it only to send it. */
  get identityToken(): string | undefined {
    return this.#identityToken;
  }

  /** A shape safe to log. */
  toJSON(): Record<string, string | undefined> {
    return {
      serverAddress: this.serverAddress,
      username: this.username,
      ...(this.#password !== undefined ? { password: '[redacted]' } : {}),
      ...(this.#identityToken !== undefined ? { identityToken: '[redacted]' } : {}),
    };
  }

  /** Names the registry and the kind of secret, never the secret. */
  toString(): string {
    return `Credentials(${this.serverAddress}, ${this.#identityToken !== undefined ? 'identity token' : `user ${this.username ?? '?'}`})`;
  }

  /** What console.log and util.inspect show: the same as toString() (util's well-known symbol). */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/** Options of resolveCredentials. */
export interface ResolveOptions {
  /** the directory holding config.json; default $DOCKER_CONFIG, then ~/.docker */
  configDir?: string;
  /** environment for DOCKER_CONFIG, HOME and the helpers' PATH; default process.env */
  env?: NodeJS.ProcessEnv;
}

/** Docker's ConvertToHostname: drops the scheme and everything after the host. */
export function convertToHostname(address: string): string {
  let host = address;
  if (host.startsWith('http://')) host = host.slice('http://'.length);
  else if (host.startsWith('https://')) host = host.slice('https://'.length);
  const slash = host.indexOf('/');
  return slash === -1 ? host : host.slice(0, slash);
}

/** The address Docker stores a registry's credentials under: the Hub's legacy URL, else the host. */
export function authKeyFor(registryHost: string): string {
  const host = convertToHostname(registryHost);
  return DOCKER_HUB_HOSTS.has(host) ? DOCKER_HUB_AUTH_KEY : host;
}

function credentialsError(message: string, cause?: unknown): PlugctlError {
  return new PlugctlError('CREDENTIALS_INVALID', message, {
    kind: 'stalled',
    ...(cause !== undefined ? { cause } : {}),
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringField(record: Record<string, unknown>, key: string): string | undefined {
  const value = record[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Reads config.json; undefined when there is none. */
async function readConfig(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (isRecord(error) && error['code'] === 'ENOENT') return undefined;
    throw credentialsError(
      `cannot read the Docker client configuration ${file}; fix its permissions or set DOCKER_CONFIG`,
      error,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // the parser's message may quote the file's contents, secrets included: leave it out
    throw credentialsError(`the Docker client configuration ${file} is not valid JSON; fix or remove it`);
  }
  if (!isRecord(parsed))
    throw credentialsError(`the Docker client configuration ${file} is not a JSON object; fix or remove it`);
  return parsed;
}

/**
 * The credentials `docker` would use for `registryHost` (e.g. `docker.io`, `ghcr.io`,
 * `127.0.0.1:5000`), or undefined for anonymous access. As in the Docker CLI, a credential helper
 * named for the host in `credHelpers`, or else `credsStore`, is authoritative: when it knows nothing
 * the result is anonymous, and `auths` is consulted only when no helper applies. Fails with code
 * CREDENTIALS_INVALID (stalled) for an unreadable configuration or a broken helper.
 */
export async function resolveCredentials(
  registryHost: string,
  options: ResolveOptions = {},
): Promise<Credentials | undefined> {
  const env = options.env ?? process.env;
  const configDir =
    options.configDir ??
    (env['DOCKER_CONFIG'] !== undefined && env['DOCKER_CONFIG'] !== ''
      ? env['DOCKER_CONFIG']
      : join(env['HOME'] ?? homedir(), '.docker'));
  const file = join(configDir, 'config.json');
  const config = await readConfig(file);
  if (config === undefined) return undefined;

  const key = authKeyFor(registryHost);
  const host = convertToHostname(key);
  const helpers = isRecord(config['credHelpers']) ? config['credHelpers'] : {};
  const helper =
    stringField(helpers, host) ??
    stringField(helpers, key) ??
    (key === DOCKER_HUB_AUTH_KEY ? stringField(helpers, 'docker.io') : undefined) ??
    stringField(config, 'credsStore');
  if (helper !== undefined) return runHelper(helper, key, env, file);

  const auths = isRecord(config['auths']) ? config['auths'] : {};
  const entry = findAuthEntry(auths, key);
  if (entry === undefined) return undefined;
  return fromAuthEntry(entry.value, key, entry.key, file);
}

/**
 * The credentials an `auths` map (of a Docker config, or of a Kubernetes dockerconfigjson Secret)
 * holds for `registryHost`, looked up as Docker looks them up; undefined when it has none. `source`
 * names where the map came from in errors, which never quote a secret.
 */
export function credentialsFromAuths(
  auths: unknown,
  registryHost: string,
  source: string,
): Credentials | undefined {
  if (!isRecord(auths)) return undefined;
  const key = authKeyFor(registryHost);
  const entry = findAuthEntry(auths, key);
  return entry === undefined ? undefined : fromAuthEntry(entry.value, key, entry.key, source);
}

/** Docker's lookup: the exact key, then any key whose host part is the same host. */
function findAuthEntry(
  auths: Record<string, unknown>,
  key: string,
): { key: string; value: Record<string, unknown> } | undefined {
  const exact = auths[key];
  if (isRecord(exact)) return { key, value: exact };
  const host = convertToHostname(key);
  for (const [candidate, value] of Object.entries(auths)) {
    if (isRecord(value) && convertToHostname(candidate) === host) return { key: candidate, value };
  }
  if (key === DOCKER_HUB_AUTH_KEY) {
    for (const alias of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      for (const [candidate, value] of Object.entries(auths)) {
        if (isRecord(value) && convertToHostname(candidate) === alias) return { key: candidate, value };
      }
    }
  }
  return undefined;
}

function fromAuthEntry(
  entry: Record<string, unknown>,
  serverAddress: string,
  entryKey: string,
  file: string,
): Credentials | undefined {
  const identityToken = stringField(entry, 'identitytoken');
  let username = stringField(entry, 'username');
  let password = stringField(entry, 'password');
  const auth = stringField(entry, 'auth');
  if (auth !== undefined) {
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      throw credentialsError(
        `auths[${JSON.stringify(entryKey)}].auth in ${file} is not base64 of "user:password"; run docker login again`,
      );
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (identityToken !== undefined)
    return new Credentials({ serverAddress, ...(username !== undefined ? { username } : {}), identityToken });
  if (username === undefined || password === undefined) return undefined;
  return new Credentials({ serverAddress, username, password });
}

/**
 * Runs `docker-credential-<helper> get` with the server address on stdin, as the Docker CLI does.
 * "credentials not found" means anonymous; any other failure is an error naming the helper, never
 * quoting what it printed beyond its first line.
 */
async function runHelper(
  helper: string,
  serverAddress: string,
  env: NodeJS.ProcessEnv,
  file: string,
): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) {
    throw credentialsError(
      `credential helper name ${JSON.stringify(helper)} in ${file} is not a plain program name`,
    );
  }
  const program = `docker-credential-${helper}`;
  // Loaded here: most hosts have no helper, and every CLI start would pay for child_process.
  const { execFile } = await import('node:child_process');
  const result = await new Promise<{ code: number | string | undefined; stdout: string; stderr: string }>(
    (resolve) => {
      const child = execFile(
        program,
        ['get'],
        { env, timeout: HELPER_TIMEOUT_MS, maxBuffer: 1024 * 1024, windowsHide: true },
        (error, stdout, stderr) => {
          resolve({ code: error === null ? 0 : (error.code ?? 'killed'), stdout, stderr });
        },
      );
      child.stdin?.on('error', () => {
        // a helper that exits without reading stdin closes the pipe; its exit status tells the rest
      });
      child.stdin?.end(serverAddress);
    },
  );
  if (result.code === 'ENOENT') {
    throw credentialsError(
      `credential helper ${program} (named in ${file}) is not on PATH; install it or remove it from the configuration`,
    );
  }
  if (result.code !== 0) {
    const said = (result.stdout.trim() || result.stderr.trim()).split('\n')[0] ?? '';
    if (/credentials not found/i.test(said)) return undefined;
    const how = typeof result.code === 'number' ? `exited ${result.code}` : `failed (${result.code})`;
    throw credentialsError(`credential helper ${program} ${how} for ${serverAddress}: ${said.slice(0, 200)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    throw credentialsError(
      `credential helper ${program} printed something other than JSON for ${serverAddress}`,
    );
  }
  if (!isRecord(parsed))
    throw credentialsError(
      `credential helper ${program} printed something other than a JSON object for ${serverAddress}`,
    );
  const username = stringField(parsed, 'Username');
  const secret = stringField(parsed, 'Secret');
  if (secret === undefined) return undefined;
  if (username === '<token>') return new Credentials({ serverAddress, identityToken: secret });
  return new Credentials({
    serverAddress,
    ...(username !== undefined ? { username } : {}),
    password: secret,
  });
}

/**
 * The X-Registry-Auth header value for `serverAddress`: base64url JSON of
 * `{username, password, serveraddress}` or `{identitytoken, serveraddress}`, or of `{}` without
 * credentials. Padded, because dockerd decodes with Go's padded base64.URLEncoding and silently
 * falls back to anonymous when decoding fails. The result carries secrets: never log it.
 */
export function encodeRegistryAuth(credentials: Credentials | undefined, serverAddress: string): string {
  let body: Record<string, string> = {};
  if (credentials?.identityToken !== undefined) {
    body = { identitytoken: credentials.identityToken, serveraddress: serverAddress };
  } else if (credentials !== undefined) {
    body = {
      username: credentials.username ?? '',
      password: credentials.password ?? '',
      serveraddress: serverAddress,
    };
  }
  return Buffer.from(JSON.stringify(body), 'utf8')
    .toString('base64')
    .replaceAll('+', '-')
    .replaceAll('/', '_');
}
