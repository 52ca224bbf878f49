/**
 * Where the API server is and how to authenticate: `--kubeconfig`, else `$KUBECONFIG` (a list of files,
 * merged as kubectl merges them), else the pod's service account (in-cluster). The result is plain data
 * plus a credential source; client.ts makes the connection.
 *
 * @kubernetes/client-node does the parts it does cheaply: the shape of clusters, users and contexts
 * (`config_types.js`) and exec credential plugins (`exec_auth.js`). Its KubeConfig class is not loaded:
 * it statically imports the whole generated API (~70 MB resident; docs/architecture.md).
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { newClusters, newContexts, newUsers } from '@kubernetes/client-node/dist/config_types.js';
import type { Cluster, Context, User } from '@kubernetes/client-node/dist/config_types.js';
import { parse } from 'yaml';
import type { Clock } from '../runtime/clock.ts';
import { KUBE_CODES, KubeError } from './errors.ts';

/** The files a pod's service account is mounted as. */
export interface InClusterPaths {
  tokenFile: string;
  caFile: string;
  namespaceFile: string;
}

/** Where Kubernetes mounts them. */
export const IN_CLUSTER_PATHS: InClusterPaths = {
  tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
  caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
  namespaceFile: '/var/run/secrets/kubernetes.io/serviceaccount/namespace',
};

/** Per-request credentials. */
export interface Credentials {
  /** Headers to send with the next request (Authorization, Impersonate-User). */
  headers(): Promise<Record<string, string>>;
  /** The server answered 401: forget what is cached, so the next request reads the credentials again. */
  invalidate(): void;
}

/** How to reach one API server. */
export interface ClusterConnection {
  /** `https://host:port` with an optional path prefix, no trailing slash */
  server: string;
  /** PEM of the CA bundle that signs the server's certificate; undefined: the system's CAs */
  ca?: string;
  insecureSkipTLSVerify: boolean;
  tlsServerName?: string;
  /** PEM client certificate and key, when the user authenticates with one */
  clientCert?: string;
  clientKey?: string;
  credentials: Credentials;
  /** the context's namespace, the service account's namespace, or "default" */
  namespace: string;
  /** where this came from, for messages: "kubeconfig /path (context x)" or "in-cluster" */
  origin: string;
}

/** Options of loadClusterConnection. */
export interface ConnectionOptions {
  /** `--kubeconfig` */
  kubeconfig?: string;
  /** the environment to read KUBECONFIG and KUBERNETES_SERVICE_HOST/PORT from (default process.env) */
  env?: Readonly<Record<string, string | undefined>>;
  clock: Clock;
  inClusterPaths?: InClusterPaths;
  /** how often a token file is checked for rotation (default 10 s) */
  tokenRecheckMs?: number;
}

function invalid(message: string, cause?: unknown): KubeError {
  return new KubeError(KUBE_CODES.configInvalid, message, { kind: 'stalled', cause });
}

/**
 * A token read from a file and read again when the file changes (a projected service-account token is
 * rotated by the kubelet, well before it expires), checked at most every `recheckMs`, and at once after
 * a 401.
 */
export class TokenFile implements Credentials {
  readonly #path: string;
  readonly #clock: Clock;
  readonly #recheckMs: number;
  #token: string | undefined;
  #identity = '';
  #checkedAt = -Infinity;

  constructor(path: string, clock: Clock, recheckMs = 10_000) {
    this.#path = path;
    this.#clock = clock;
    this.#recheckMs = recheckMs;
  }

  async headers(): Promise<Record<string, string>> {
    const now = this.#clock.now();
    if (this.#token === undefined || now - this.#checkedAt >= this.#recheckMs) {
      this.#checkedAt = now;
      let info;
      try {
        info = await stat(this.#path);
      } catch (error) {
        throw invalid(`cannot read the token file ${this.#path}: ${(error as Error).message}`, error);
      }
      const identity = `${info.ino}:${info.size}:${info.mtimeMs}`;
      if (identity !== this.#identity || this.#token === undefined) {
        const token = (await readFile(this.#path, 'utf8')).trim();
        if (token === '') throw invalid(`the token file ${this.#path} is empty`);
        this.#token = token;
        this.#identity = identity;
      }
    }
    return { authorization: `Bearer ${this.#token}` };
  }

  invalidate(): void {
    this.#token = undefined;
  }
}

/** Fixed headers (a static token, basic auth, or none). */
class StaticCredentials implements Credentials {
  readonly #headers: Record<string, string>;
  constructor(headers: Record<string, string>) {
    this.#headers = headers;
  }
  headers(): Promise<Record<string, string>> {
    return Promise.resolve({ ...this.#headers });
  }
  invalidate(): void {}
}

/** An exec credential plugin, run by client-node's ExecAuth (which caches until the expiry it reports). */
class ExecCredentials implements Credentials {
  readonly #user: User;
  readonly #extra: Record<string, string>;
  #auth: Promise<{ applyAuthentication(user: User, opts: object): Promise<void> }> | undefined;

  constructor(user: User, extra: Record<string, string>) {
    this.#user = user;
    this.#extra = extra;
  }

  async headers(): Promise<Record<string, string>> {
    this.#auth ??= import('@kubernetes/client-node/dist/exec_auth.js').then((m) => new m.ExecAuth());
    const opts: { headers: Record<string, string>; cert?: unknown } = { headers: {} };
    try {
      await (await this.#auth).applyAuthentication(this.#user, opts);
    } catch (error) {
      throw new KubeError(
        KUBE_CODES.unauthorized,
        `the exec credential plugin of user ${this.#user.name} failed: ${(error as Error).message}`,
        { kind: 'transient', cause: error },
      );
    }
    if (opts.cert !== undefined) {
      throw new KubeError(
        KUBE_CODES.configUnsupported,
        `the exec credential plugin of user ${this.#user.name} returned a client certificate; plugctl supports exec plugins that return a token`,
        { kind: 'stalled' },
      );
    }
    const authorization = opts.headers['Authorization'];
    return { ...this.#extra, ...(authorization === undefined ? {} : { authorization }) };
  }

  invalidate(): void {
    this.#auth = undefined; // a new ExecAuth has an empty token cache
  }
}

type Raw = Record<string, unknown>;

function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One kubeconfig file, its relative paths made absolute against the file's directory. */
interface ParsedFile {
  path: string;
  clusters: Raw[];
  users: Raw[];
  contexts: Raw[];
  currentContext?: string;
}

const PATH_FIELDS = {
  cluster: ['certificate-authority'],
  user: ['client-certificate', 'client-key', 'token-file'],
} as const;

function absolutise(entries: unknown, inner: 'cluster' | 'user', base: string): Raw[] {
  if (!Array.isArray(entries)) return [];
  return entries.filter(isRecord).map((entry) => {
    const body = entry[inner];
    if (!isRecord(body)) return entry;
    const copy: Raw = { ...body };
    for (const field of PATH_FIELDS[inner]) {
      const value = copy[field];
      if (typeof value === 'string' && value !== '' && !isAbsolute(value)) copy[field] = resolve(base, value);
    }
    return { ...entry, [inner]: copy };
  });
}

async function parseFile(path: string): Promise<ParsedFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw invalid(`cannot read kubeconfig ${path}: ${(error as Error).message}`, error);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw invalid(`kubeconfig ${path} is not valid YAML: ${(error as Error).message}`, error);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isRecord(doc)) throw invalid(`kubeconfig ${path} is not a mapping`);
  const base = dirname(resolve(path));
  const current = doc['current-context'];
  return {
    path,
    clusters: absolutise(doc['clusters'], 'cluster', base),
    users: absolutise(doc['users'], 'user', base),
    contexts: Array.isArray(doc['contexts']) ? doc['contexts'].filter(isRecord) : [],
    ...(typeof current === 'string' && current !== '' ? { currentContext: current } : {}),
  };
}

/** kubectl's merge: the first file to name an entry (or the current context) wins. */
function merge(files: ParsedFile[]): Omit<ParsedFile, 'path'> {
  const pick = (lists: Raw[][]): Raw[] => {
    const seen = new Set<unknown>();
    return lists.flat().filter((entry) => {
      if (seen.has(entry['name'])) return false;
      seen.add(entry['name']);
      return true;
    });
  };
  const currentContext = files.find((f) => f.currentContext !== undefined)?.currentContext;
  return {
    clusters: pick(files.map((f) => f.clusters)),
    users: pick(files.map((f) => f.users)),
    contexts: pick(files.map((f) => f.contexts)),
    ...(currentContext === undefined ? {} : { currentContext }),
  };
}

async function readPem(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw invalid(`cannot read the ${what} ${path}: ${(error as Error).message}`, error);
  }
}

const decode = (data: string): string => Buffer.from(data, 'base64').toString('utf8');

async function fromKubeconfig(paths: string[], options: ConnectionOptions): Promise<ClusterConnection> {
  const where = paths.join(':');
  const merged = merge(await Promise.all(paths.map(parseFile)));
  // token-file is handled here (re-read on rotation); config_types would read it once, relative to cwd
  const tokenFiles = new Map<unknown, string>();
  const users = merged.users.map((entry) => {
    const body = entry['user'];
    if (!isRecord(body) || typeof body['token-file'] !== 'string') return entry;
    tokenFiles.set(entry['name'], body['token-file']);
    const { 'token-file': _dropped, ...rest } = body;
    return { ...entry, user: rest };
  });
  let clusters: Cluster[];
  let parsedUsers: User[];
  let contexts: Context[];
  try {
    clusters = newClusters(merged.clusters);
    parsedUsers = newUsers(users);
    contexts = newContexts(merged.contexts);
  } catch (error) {
    throw invalid(`kubeconfig ${where}: ${(error as Error).message}`, error);
  }
  const contextName = merged.currentContext;
  if (contextName === undefined) throw invalid(`kubeconfig ${where} sets no current-context`);
  const context = contexts.find((c) => c.name === contextName);
  if (context === undefined)
    throw invalid(`kubeconfig ${where}: current-context "${contextName}" is not defined`);
  const cluster = clusters.find((c) => c.name === context.cluster);
  if (cluster === undefined) {
    throw invalid(
      `kubeconfig ${where}: context "${contextName}" names cluster "${context.cluster}", which is not defined`,
    );
  }
  const user = context.user === undefined ? undefined : parsedUsers.find((u) => u.name === context.user);
  if (context.user !== undefined && user === undefined) {
    throw invalid(
      `kubeconfig ${where}: context "${contextName}" names user "${context.user}", which is not defined`,
    );
  }
  if (cluster.proxyUrl) {
    throw new KubeError(
      KUBE_CODES.configUnsupported,
      `kubeconfig ${where}: cluster "${cluster.name}" sets proxy-url, which plugctl does not support; reach the API server directly`,
      { kind: 'stalled' },
    );
  }
  if (!/^https?:\/\//.test(cluster.server)) {
    throw invalid(
      `kubeconfig ${where}: cluster "${cluster.name}" has server "${cluster.server}", which is not an http(s) URL`,
    );
  }
  const connection: ClusterConnection = {
    server: cluster.server,
    insecureSkipTLSVerify: cluster.skipTLSVerify,
    credentials: await userCredentials(user, tokenFiles.get(user?.name), where, options),
    namespace: context.namespace ?? 'default',
    origin: `kubeconfig ${where} (context ${contextName})`,
  };
  if (cluster.caData) connection.ca = decode(cluster.caData);
  else if (cluster.caFile) connection.ca = await readPem(cluster.caFile, 'certificate authority');
  if (cluster.tlsServerName) connection.tlsServerName = cluster.tlsServerName;
  if (user?.certData) connection.clientCert = decode(user.certData);
  else if (user?.certFile) connection.clientCert = await readPem(user.certFile, 'client certificate');
  if (user?.keyData) connection.clientKey = decode(user.keyData);
  else if (user?.keyFile) connection.clientKey = await readPem(user.keyFile, 'client key');
  return connection;
}

async function userCredentials(
  user: User | undefined,
  tokenFile: string | undefined,
  where: string,
  options: ConnectionOptions,
): Promise<Credentials> {
  if (user === undefined) return new StaticCredentials({});
  const extra: Record<string, string> = user.impersonateUser
    ? { 'impersonate-user': user.impersonateUser }
    : {};
  if (user.authProvider) {
    throw new KubeError(
      KUBE_CODES.configUnsupported,
      `kubeconfig ${where}: user "${user.name}" uses the legacy auth-provider "${String((user.authProvider as Raw)['name'])}"; use an exec credential plugin (client.authentication.k8s.io) instead`,
      { kind: 'stalled' },
    );
  }
  if (user.exec) return new ExecCredentials(user, extra);
  if (user.token) return new StaticCredentials({ ...extra, authorization: `Bearer ${user.token}` });
  if (tokenFile !== undefined) {
    const file = new TokenFile(tokenFile, options.clock, options.tokenRecheckMs);
    await file.headers(); // fail now, with the file named, rather than at the first request
    return {
      headers: async () => ({ ...extra, ...(await file.headers()) }),
      invalidate: () => file.invalidate(),
    };
  }
  if (user.username && user.password) {
    const basic = Buffer.from(`${user.username}:${user.password}`).toString('base64');
    return new StaticCredentials({ ...extra, authorization: `Basic ${basic}` });
  }
  return new StaticCredentials(extra); // client certificate only, or anonymous
}

async function inCluster(options: ConnectionOptions, host: string, port: string): Promise<ClusterConnection> {
  const paths = options.inClusterPaths ?? IN_CLUSTER_PATHS;
  const token = new TokenFile(paths.tokenFile, options.clock, options.tokenRecheckMs);
  await token.headers();
  const namespace = (await readFile(paths.namespaceFile, 'utf8').catch(() => 'default')).trim() || 'default';
  const hostPart = host.includes(':') ? `[${host}]` : host; // an IPv6 service address
  return {
    server: `https://${hostPart}:${port}`,
    ca: await readPem(paths.caFile, 'service-account CA'),
    insecureSkipTLSVerify: false,
    credentials: token,
    namespace,
    origin: 'in-cluster',
  };
}

/**
 * Resolves the API server connection: `options.kubeconfig`, else `$KUBECONFIG`, else in-cluster
 * (KUBERNETES_SERVICE_HOST and _PORT with the pod's service-account token and CA). Throws KubeError
 * KUBE_CONFIG_NOT_FOUND when there is none, KUBE_CONFIG_INVALID (naming the file) when it is unusable.
 */
export async function loadClusterConnection(options: ConnectionOptions): Promise<ClusterConnection> {
  const env = options.env ?? process.env;
  if (options.kubeconfig !== undefined && options.kubeconfig !== '') {
    return fromKubeconfig([options.kubeconfig], options);
  }
  const fromEnv = (env['KUBECONFIG'] ?? '').split(':').filter((p) => p !== '');
  if (fromEnv.length > 0) return fromKubeconfig(fromEnv, options);
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (host && port) return inCluster(options, host, port);
  throw new KubeError(
    KUBE_CODES.configNotFound,
    'no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set)',
    { kind: 'stalled' },
  );
}
