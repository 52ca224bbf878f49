/**
 * Real registries for the registry client's integration tests and bench/update-check.ts: Debian's
 * docker-registry (distribution 2.8) started on 127.0.0.1 with a generated config (anonymous,
 * htpasswd Basic, or token auth), a token issuer that signs real ES256 JWTs, and builders for
 * plugin content (config JSON + one gzip tar layer) pushed with plugctl's own push API.
 *
 * Every process is started here and stopped by its PID; every port is on loopback.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import type { RegistryClient, RepositoryRef } from '../../controller/registry/client.ts';
import {
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_PLUGIN_CONFIG,
  digestOf,
} from '../../controller/registry/manifest.ts';
import { REGISTRY, skipReason } from '../prerequisites.ts';

function run(
  file: string,
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 127;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/**
 * Why a test docker-registry cannot be started here, or undefined; in strict mode a missing
 * package throws instead (test/prerequisites.ts). Kept for suites that pass a skip reason to
 * `describe`; new suites use `describeWith(name, { needs: REGISTRY }, fn)`.
 */
export async function registrySkipReason(): Promise<string | undefined> {
  return skipReason('a test docker-registry', REGISTRY);
}

/** A running docker-registry. */
export interface RunningRegistry {
  /** `127.0.0.1:PORT`, as references name it */
  host: string;
  port: number;
  pid: number;
  dir: string;
  /** stops the process (by PID) and removes its storage */
  stop(): Promise<void>;
}

/** Auth of a registry under test. */
export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; users: Record<string, string> }
  | { kind: 'token'; realm: string; service: string; issuer: string; rootCertBundle: string };

async function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts `docker-registry serve` on 127.0.0.1:`port` (5100-5499) with filesystem storage in a temp
 * dir, waits until /v2/ answers, and returns it. htpasswd files are made with `htpasswd -Bbn`
 * (bcrypt, the only hash distribution accepts).
 */
export async function startRegistry(
  port: number,
  auth: RegistryAuth = { kind: 'none' },
): Promise<RunningRegistry> {
  // 5000 belongs to test/env's registry; each suite keeps to its own hundred above it.
  if (port < 5100 || port > 5499) throw new Error(`test registries use ports 5100-5499, not ${port}`);
  const dir = await mkdtemp(join(tmpdir(), `plugctl-registry-${port}-`));
  await mkdir(join(dir, 'data'));
  let authYaml = '';
  if (auth.kind === 'htpasswd') {
    const lines: string[] = [];
    for (const [user, password] of Object.entries(auth.users)) {
      const made = await run('htpasswd', ['-Bbn', user, password]);
      if (made.code !== 0) throw new Error(`htpasswd failed: ${made.stderr}`);
      lines.push(made.stdout.trim());
    }
    await writeFile(join(dir, 'htpasswd'), `${lines.join('\n')}\n`, { mode: 0o600 });
    authYaml = `auth:\n  htpasswd:\n    realm: plugctl-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (auth.kind === 'token') {
    authYaml =
      `auth:\n  token:\n    realm: ${auth.realm}\n    service: ${auth.service}\n` +
      `    issuer: ${auth.issuer}\n    rootcertbundle: ${auth.rootCertBundle}\n`;
  }
  const config =
    `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n` +
    `storage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\n` +
    `http:\n  addr: 127.0.0.1:${port}\n  secret: plugctl-test-${randomUUID()}\n${authYaml}`;
  await writeFile(join(dir, 'config.yml'), config);
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: false,
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('docker-registry did not start');
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      if (!(await waitForExit(child, 5000))) {
        process.kill(pid, 'SIGKILL');
        await waitForExit(child, 5000);
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry on port ${port} exited ${child.exitCode}: ${stderr}`);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}/v2/`);
      await response.arrayBuffer();
      if (response.status === 200 || response.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry on port ${port} did not answer within 15 s: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { host: `127.0.0.1:${port}`, port, pid, dir, stop };
}

// ------------------------------------------------------------------------------- token issuer

/**
 * libtrust's key ID, which distribution 2.8 uses to find a token's signing key from its `kid`
 * header: the first 240 bits of the SHA-256 of the DER (PKIX) public key, base32, in 12 groups of
 * 4 characters joined by ':'.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const bytes = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return (out.match(/.{4}/g) ?? []).join(':');
}

/** One token request the issuer saw (no secrets: the account name and scopes only). */
export interface TokenRequestRecord {
  account: string | undefined;
  service: string | null;
  scopes: string[];
  granted: boolean;
}

/** How the issuer signs and what it grants. */
export interface IssuerSettings {
  /** `kid` (libtrust key ID, default) or `x5c` (the certificate chain) in the JWT header */
  keyHeader: 'kid' | 'x5c';
  /**
   * false (default): `repository(plugin):a:pull` is granted as type `repository`, class `plugin`,
   * as Docker's token servers do. true: the type is left as `repository(plugin)`, a mistake a naive
   * token server makes, which distribution refuses.
   */
  classInType: boolean;
}

/** A running token issuer. */
export interface TokenIssuer {
  /** `http://127.0.0.1:PORT/token` */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file with the self-signed certificate to give the registry as rootcertbundle */
  rootCertBundle: string;
  requests: TokenRequestRecord[];
  /** behaviour switches tests may flip between requests */
  settings: IssuerSettings;
  stop(): Promise<void>;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * Starts a token issuer on 127.0.0.1 (an ephemeral port): GET /token with Basic credentials from
 * `users`, and scopes `type[(class)]:name:actions`. It grants each requested action the user's
 * `acl` allows (all of them by default) and signs an ES256 JWT with a key whose self-signed
 * certificate (made with the openssl CLI) the registry trusts. Unknown users or wrong passwords
 * get 401.
 */
export async function startTokenIssuer(options: {
  users: Record<string, string>;
  service?: string;
  issuer?: string;
  expiresIn?: number;
}): Promise<TokenIssuer> {
  const dir = await mkdtemp(join(tmpdir(), 'plugctl-token-issuer-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  const made = await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=plugctl-test-token-issuer',
  ]);
  if (made.code !== 0) throw new Error(`openssl failed: ${made.stderr}`);
  const privateKey = createPrivateKey(await readFile(keyFile));
  const publicKey = createPublicKey(privateKey);
  const kid = libtrustKeyId(publicKey);
  const certPem = await readFile(certFile, 'utf8');
  const certDer = Buffer.from(
    certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''),
    'base64',
  ).toString('base64');
  const service = options.service ?? 'plugctl-test-registry';
  const issuer = options.issuer ?? 'plugctl-test-issuer';
  const requests: TokenRequestRecord[] = [];

  const state: IssuerSettings = { keyHeader: 'kid', classInType: false };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    const auth = req.headers.authorization ?? '';
    let account: string | undefined;
    let ok = false;
    if (auth.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      account = decoded.slice(0, colon);
      ok = colon > 0 && options.users[account] === decoded.slice(colon + 1);
    }
    const scopes = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter((s) => s !== '');
    requests.push({ account, service: url.searchParams.get('service'), scopes, granted: ok });
    if (!ok) {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Basic realm="plugctl-test-issuer"',
      });
      res.end(JSON.stringify({ details: 'incorrect username or password' }));
      return;
    }
    const access = scopes.flatMap((scope) => {
      const match = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?:(.+):([a-z,*]+)$/.exec(scope);
      if (match === null) return [];
      const [, type = '', klass, name = '', actions = ''] = match;
      if (state.classInType && klass !== undefined) {
        return [{ type: `${type}(${klass})`, name, actions: actions.split(',') }];
      }
      return [{ type, ...(klass !== undefined ? { class: klass } : {}), name, actions: actions.split(',') }];
    });
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = options.expiresIn ?? 300;
    const header =
      state.keyHeader === 'kid'
        ? { typ: 'JWT', alg: 'ES256', kid }
        : { typ: 'JWT', alg: 'ES256', x5c: [certDer] };
    const claims = {
      iss: issuer,
      sub: account,
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), {
      key: privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    const token = `${signingInput}.${base64url(signature)}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date().toISOString(),
      }),
    );
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('token issuer has no port');
  const result: TokenIssuer = {
    realm: `http://127.0.0.1:${address.port}/token`,
    service,
    issuer,
    rootCertBundle: certFile,
    requests,
    settings: state,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  return result;
}

// ------------------------------------------------------------------------------- plugin content

/** A plugin's content as `docker plugin push` would lay it out. */
export interface BuiltPlugin {
  config: Record<string, unknown>;
  configBytes: Uint8Array;
  configDigest: string;
  layer: Uint8Array;
  layerDigest: string;
  diffId: string;
  manifestBytes: Uint8Array;
  manifestDigest: string;
}

/** A gzip tar holding `files` (path -> content), deterministic (fixed mtime). */
export async function gzipTar(files: Record<string, string>): Promise<{ tar: Buffer; gz: Buffer }> {
  const packer = pack();
  const chunks: Buffer[] = [];
  packer.on('data', (chunk: unknown) => {
    chunks.push(chunk as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    packer.on('end', () => resolve());
    packer.on('error', reject);
  });
  for (const [name, content] of Object.entries(files)) {
    packer.entry({ name, mtime: new Date(0), mode: 0o755 }, content);
  }
  packer.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  return { tar, gz: gzipSync(tar) };
}

/**
 * Builds a plugin: config (application/vnd.docker.plugin.v1+json) with rootfs.diff_ids of one
 * gzip tar layer whose content is `marker` (so different markers give different digests).
 */
export async function buildPlugin(
  marker: string,
  overrides: Record<string, unknown> = {},
): Promise<BuiltPlugin> {
  const { tar, gz } = await gzipTar({ 'plugin.sh': `#!/bin/sh\necho ${marker}\n`, 'marker.txt': marker });
  const diffId = digestOf(tar);
  const config: Record<string, unknown> = {
    Description: `plugctl test plugin ${marker}`,
    Documentation: 'https://example.invalid/plugctl',
    Entrypoint: ['/plugin.sh'],
    Interface: { Socket: 'test.sock', Types: ['docker.volumedriver/1.0'] },
    Network: { Type: 'host' },
    Linux: { Capabilities: ['CAP_SYS_ADMIN'], AllowAllDevices: false, Devices: null },
    Mounts: [
      {
        Name: 'state',
        Source: '/var/lib/plugctl-test',
        Destination: '/state',
        Type: 'bind',
        Options: ['rbind'],
        Settable: ['source'],
      },
    ],
    Env: [{ Name: 'MARKER', Value: marker, Settable: ['value'] }],
    Args: { Name: 'args', Settable: ['value'], Value: [] },
    ...overrides,
    rootfs: { type: 'layers', diff_ids: [diffId] },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = digestOf(configBytes);
  const layerDigest = digestOf(gz);
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
      config: { mediaType: MEDIA_TYPE_PLUGIN_CONFIG, digest: configDigest, size: configBytes.byteLength },
      layers: [{ mediaType: MEDIA_TYPE_DOCKER_LAYER_GZIP, digest: layerDigest, size: gz.byteLength }],
    }),
  );
  return {
    config,
    configBytes,
    configDigest,
    layer: gz,
    layerDigest,
    diffId,
    manifestBytes,
    manifestDigest: digestOf(manifestBytes),
  };
}

/** Pushes a built plugin's blobs and manifest with plugctl's push API; returns the manifest digest. */
export async function pushPlugin(
  client: RegistryClient,
  repo: RepositoryRef,
  tagOrDigest: string,
  plugin: BuiltPlugin,
): Promise<string> {
  await client.pushBlob(repo, plugin.layer, plugin.layerDigest, plugin.layer.byteLength);
  await client.pushBlob(repo, plugin.configBytes, plugin.configDigest, plugin.configBytes.byteLength);
  return client.pushManifest(repo, tagOrDigest, MEDIA_TYPE_DOCKER_MANIFEST, plugin.manifestBytes);
}
