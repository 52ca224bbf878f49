/**
 * The registry client against real registries: Debian's docker-registry (distribution 2.8) without
 * auth, with htpasswd Basic auth and with token auth (a token issuer signing real ES256 JWTs, the
 * credentials coming from a credential helper program named in a test Docker config), a
 * multi-platform index, and a hostile loopback server that misbehaves on purpose. Everything is
 * checked through the client's results and the registry's state, and every process is stopped.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import { RegistryClient } from '../../controller/registry/client.ts';
import type { RegistryClientOptions } from '../../controller/registry/client.ts';
import { Credentials, resolveCredentials } from '../../controller/registry/credentials.ts';
import { RegistryError } from '../../controller/registry/errors.ts';
import {
  digestOf,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_PLUGIN_CONFIG,
} from '../../controller/registry/manifest.ts';
import { formatPlatform, hostPlatform, normalizePlatform } from '../../controller/registry/platform.ts';
import { parsePluginConfig } from '../../controller/plugin/config.ts';
import { computePrivileges } from '../../controller/plugin/privileges.ts';
import { parseReference } from '../../controller/api/reference.ts';
import type { Reference } from '../../controller/api/reference.ts';
import { buildPlugin, pushPlugin, startRegistry, startTokenIssuer } from './registry-harness.ts';
import type { RunningRegistry, TokenIssuer } from './registry-harness.ts';
import { rejectsWith as rejectsWithError } from '../errors.ts';
import { REGISTRY, describeWith } from '../prerequisites.ts';
import { within } from '../wait.ts';

/** Every failure of the client is a RegistryError with a stable code. */
const rejectsWith = (promise: Promise<unknown>, code: string): Promise<RegistryError> =>
  rejectsWithError(promise, code, undefined, RegistryError);

/** The suites that start a real docker-registry. */
const withRegistry = { needs: REGISTRY, concurrency: false };

/** Requests seen by a counting dispatcher, as `METHOD path`. */
interface Counter {
  dispatcher: Dispatcher;
  requests: string[];
  close(): Promise<void>;
}

function countingDispatcher(): Counter {
  const requests: string[] = [];
  const agent = new Agent();
  const dispatcher = agent.compose((dispatch) => (options, handler) => {
    requests.push(`${options.method} ${options.path}`);
    return dispatch(options, handler);
  });
  return { dispatcher, requests, close: () => agent.close() };
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const anonymous: RegistryClientOptions = { credentials: async () => undefined };

describeWith('registry client: anonymous docker-registry', withRegistry, () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  let ref: Reference;
  before(async () => {
    registry = await startRegistry(5121);
    client = new RegistryClient(anonymous);
    ref = parseReference(`${registry.host}/test/vol:1.0`);
  });
  after(async () => {
    await client?.close();
    await registry?.stop();
  });

  it('pushes a plugin with the push API, then resolves, fetches its config and streams its layer', async () => {
    const plugin = await buildPlugin('anon-1');
    const pushed = await pushPlugin(client, ref, '1.0', plugin);
    assert.equal(pushed, plugin.manifestDigest);

    const resolved = await client.resolve(ref);
    assert.equal(resolved.digest, plugin.manifestDigest);
    assert.equal(resolved.mediaType, MEDIA_TYPE_DOCKER_MANIFEST);
    assert.deepEqual(resolved.config, {
      mediaType: MEDIA_TYPE_PLUGIN_CONFIG,
      digest: plugin.configDigest,
      size: plugin.configBytes.byteLength,
    });
    assert.equal(resolved.index, undefined);

    const config = await client.fetchConfig(ref);
    assert.deepEqual(config.json, plugin.config);
    assert.equal(digestOf(config.bytes), plugin.configDigest);
    const parsed = parsePluginConfig(config.json, `${registry.host}/${ref.path}`);
    assert.deepEqual(parsed.rootfs.diff_ids, [plugin.diffId]);
    assert.deepEqual(
      computePrivileges(parsed).map((p) => [p.name, p.value]),
      [
        ['network', ['host']],
        ['mount', ['/var/lib/plugctl-test']],
        ['capabilities', ['CAP_SYS_ADMIN']],
      ],
    );

    const layer = resolved.manifest.layers[0];
    assert.ok(layer !== undefined);
    assert.deepEqual(await readAll(await client.openBlob(ref, layer)), plugin.layer);

    const dir = await mkdtemp(join(tmpdir(), 'plugctl-blob-'));
    try {
      await client.fetchBlobToFile(ref, layer, join(dir, 'layer.tar.gz'));
      assert.deepEqual(await readFile(join(dir, 'layer.tar.gz')), plugin.layer);
      assert.deepEqual(await readdir(dir), ['layer.tar.gz']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    // a blob pushed from a stream (sent once, verified by the registry) reads back the same
    const streamed = Buffer.from('streamed blob content '.repeat(1000));
    const streamedDigest = digestOf(streamed);
    const pushedStream = await client.pushBlob(
      ref,
      Readable.from([streamed]),
      streamedDigest,
      streamed.byteLength,
    );
    assert.equal(pushedStream.existed, false);
    const back = await client.openBlob(ref, {
      mediaType: 'application/octet-stream',
      digest: streamedDigest,
      size: streamed.byteLength,
    });
    assert.deepEqual(await readAll(back), streamed);

    // the registry has it now: a second push of the same blob uploads nothing
    const again = await client.pushBlob(ref, plugin.layer, plugin.layerDigest, plugin.layer.byteLength);
    assert.equal(again.existed, true);
  });

  it('resolves a digest reference and verifies the manifest bytes against it', async () => {
    const plugin = await buildPlugin('anon-1');
    const pinned = parseReference(`${registry.host}/test/vol@${plugin.manifestDigest}`);
    const fresh = new RegistryClient(anonymous);
    try {
      const resolved = await fresh.resolve(pinned);
      assert.equal(resolved.digest, plugin.manifestDigest);
      assert.equal(resolved.config.digest, plugin.configDigest);
    } finally {
      await fresh.close();
    }
  });

  it('costs exactly one manifest HEAD for an unchanged tag, and notices a moved tag', async () => {
    const counter = countingDispatcher();
    const tracked = new RegistryClient({ ...anonymous, dispatcher: counter.dispatcher });
    try {
      const first = await tracked.fetchConfig(ref);
      const firstPass = [...counter.requests];
      assert.ok(firstPass.includes(`HEAD /v2/${ref.path}/manifests/1.0`), firstPass.join('\n'));
      assert.ok(
        firstPass.includes(`GET /v2/${ref.path}/manifests/${first.resolved.digest}`),
        firstPass.join('\n'),
      );
      assert.ok(
        firstPass.includes(`GET /v2/${ref.path}/blobs/${first.descriptor.digest}`),
        firstPass.join('\n'),
      );

      counter.requests.length = 0;
      const second = await tracked.fetchConfig(ref);
      assert.deepEqual(counter.requests, [`HEAD /v2/${ref.path}/manifests/1.0`]);
      assert.equal(second.resolved.digest, first.resolved.digest);

      // re-push 1.0 with new content: the next check sees the new digest and the new diff_ids
      const moved = await buildPlugin('anon-2');
      await pushPlugin(client, ref, '1.0', moved);
      counter.requests.length = 0;
      const head = await tracked.headManifest(ref);
      assert.deepEqual(counter.requests, [`HEAD /v2/${ref.path}/manifests/1.0`]);
      assert.equal(head.digest, moved.manifestDigest);
      assert.notEqual(head.digest, first.resolved.digest);
      const third = await tracked.fetchConfig(ref);
      assert.deepEqual((third.json as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids, [moved.diffId]);
    } finally {
      await tracked.close();
      await counter.close();
    }
  });

  it('reports a missing tag as MANIFEST_NOT_FOUND naming the registry and repository', async () => {
    const missing = parseReference(`${registry.host}/test/vol:9.9`);
    const error = await rejectsWith(client.resolve(missing), 'MANIFEST_NOT_FOUND');
    assert.equal(error.kind, 'stalled');
    assert.match(error.message, /127\.0\.0\.1:5121\/test\/vol/);
    assert.match(error.message, /9\.9/);
  });

  it('refuses an image whose config is not a plugin config', async () => {
    const image = await buildPlugin('image');
    const configBytes = Buffer.from('{"architecture":"amd64","os":"linux"}');
    await client.pushBlob(ref, configBytes, digestOf(configBytes), configBytes.byteLength);
    await client.pushBlob(ref, image.layer, image.layerDigest, image.layer.byteLength);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
        config: {
          mediaType: 'application/vnd.example.other+json',
          digest: digestOf(configBytes),
          size: configBytes.byteLength,
        },
        layers: [
          {
            mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
            digest: image.layerDigest,
            size: image.layer.byteLength,
          },
        ],
      }),
    );
    await client.pushManifest(ref, 'other', MEDIA_TYPE_DOCKER_MANIFEST, manifest);
    const error = await rejectsWith(client.fetchConfig({ ...ref, tag: 'other' }), 'MANIFEST_INVALID');
    assert.match(error.message, /not a plugin/);
  });
});

describeWith('registry client: multi-platform index', withRegistry, () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  const digests: Record<string, string> = {};
  let ref: Reference;
  before(async () => {
    registry = await startRegistry(5124);
    client = new RegistryClient(anonymous);
    ref = parseReference(`${registry.host}/multi/arch:1.0`);
    const amd64 = await buildPlugin('amd64');
    const arm64 = await buildPlugin('arm64');
    digests['amd64'] = await pushPlugin(client, ref, amd64.manifestDigest, amd64);
    digests['arm64'] = await pushPlugin(client, ref, arm64.manifestDigest, arm64);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_OCI_INDEX,
        manifests: [
          {
            mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
            digest: amd64.manifestDigest,
            size: amd64.manifestBytes.byteLength,
            platform: { os: 'linux', architecture: 'amd64' },
          },
          {
            mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
            digest: arm64.manifestDigest,
            size: arm64.manifestBytes.byteLength,
            platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          },
        ],
      }),
    );
    digests['index'] = await client.pushManifest(ref, '1.0', MEDIA_TYPE_OCI_INDEX, index);
  });
  after(async () => {
    await client?.close();
    await registry?.stop();
  });

  it("resolves to the host's platform by default", async () => {
    const host = normalizePlatform(hostPlatform());
    const resolved = await client.resolve(ref);
    const expected = host.architecture === 'arm64' ? digests['arm64'] : digests['amd64'];
    assert.equal(resolved.digest, expected);
    assert.equal(resolved.index?.digest, digests['index']);
    assert.equal(resolved.index?.mediaType, MEDIA_TYPE_OCI_INDEX);
  });

  it('resolves an explicit platform, with or without the arm64 variant', async () => {
    assert.equal(
      (await client.resolve(ref, { os: 'linux', architecture: 'arm64' })).digest,
      digests['arm64'],
    );
    assert.equal(
      (await client.resolve(ref, { os: 'linux', architecture: 'arm64', variant: 'v8' })).digest,
      digests['arm64'],
    );
    assert.equal(
      (await client.resolve(ref, { os: 'linux', architecture: 'amd64' })).digest,
      digests['amd64'],
    );
    const config = await client.fetchConfig(ref, { os: 'linux', architecture: 'arm64' });
    assert.match((config.json as { Description: string }).Description, /arm64/);
  });

  it('reports a platform the index lacks, listing the ones it has', async () => {
    const error = await rejectsWith(
      client.resolve(ref, { os: 'linux', architecture: 's390x' }),
      'PLATFORM_NOT_FOUND',
    );
    assert.equal(error.kind, 'stalled');
    assert.match(error.message, /without linux\/s390x/);
    assert.match(error.message, /linux\/amd64, linux\/arm64\/v8/);
    assert.equal(formatPlatform({ os: 'linux', architecture: 's390x' }), 'linux/s390x');
  });
});

describeWith('registry client: htpasswd Basic auth', withRegistry, () => {
  let registry: RunningRegistry;
  const password = 'b4sic-Secret!';
  before(async () => {
    registry = await startRegistry(5122, { kind: 'htpasswd', users: { bob: password } });
  });
  after(async () => {
    await registry?.stop();
  });

  const withPassword = (secret: string): RegistryClientOptions => ({
    credentials: async (host) => new Credentials({ serverAddress: host, username: 'bob', password: secret }),
  });

  it('pushes and pulls with the right password', async () => {
    const client = new RegistryClient(withPassword(password));
    try {
      const ref = parseReference(`${registry.host}/private/vol:1.0`);
      const plugin = await buildPlugin('basic');
      await pushPlugin(client, ref, '1.0', plugin);
      const config = await client.fetchConfig(ref);
      assert.equal(config.resolved.digest, plugin.manifestDigest);
    } finally {
      await client.close();
    }
  });

  it('fails clearly with a wrong password, never showing it', async () => {
    const client = new RegistryClient(withPassword('wrong-pa55word'));
    try {
      const ref = parseReference(`${registry.host}/private/vol:1.0`);
      const error = await rejectsWith(client.resolve(ref), 'REGISTRY_AUTH_FAILED');
      assert.equal(error.kind, 'stalled');
      assert.equal(error.status, 401);
      assert.match(error.message, /127\.0\.0\.1:5122/);
      assert.match(error.message, /rejected the credentials of bob/);
      assert.doesNotMatch(error.message, /wrong-pa55word/);
      assert.doesNotMatch(JSON.stringify(error), /wrong-pa55word/);
    } finally {
      await client.close();
    }
  });

  it('says that credentials are missing when none are configured', async () => {
    const client = new RegistryClient(anonymous);
    try {
      const error = await rejectsWith(
        client.headManifest(parseReference(`${registry.host}/private/vol:1.0`)),
        'REGISTRY_AUTH_FAILED',
      );
      assert.match(error.message, /no credentials are configured for 127\.0\.0\.1:5122/);
    } finally {
      await client.close();
    }
  });
});

describeWith('registry client: token auth with a credential helper', withRegistry, () => {
  let issuer: TokenIssuer;
  let registry: RunningRegistry;
  let home: string;
  const secret = 'T0ken-helper-secret';
  before(async () => {
    issuer = await startTokenIssuer({ users: { carol: secret } });
    registry = await startRegistry(5123, {
      kind: 'token',
      realm: issuer.realm,
      service: issuer.service,
      issuer: issuer.issuer,
      rootCertBundle: issuer.rootCertBundle,
    });
    // a Docker config naming a credential helper for this registry, and the helper on PATH
    home = await mkdtemp(join(tmpdir(), 'plugctl-docker-config-'));
    await mkdir(join(home, 'bin'));
    await writeFile(
      join(home, 'config.json'),
      JSON.stringify({ credHelpers: { [registry.host]: 'plugctltest' } }),
    );
    const helper = join(home, 'bin', 'docker-credential-plugctltest');
    await writeFile(
      helper,
      `#!/bin/sh\nread -r server\n[ "$1" = get ] || exit 9\n` +
        `if [ "$server" = "${registry.host}" ]; then printf '{"ServerURL":"%s","Username":"carol","Secret":"%s"}' "$server" "$(cat "${join(home, 'secret')}")"; ` +
        `else echo "credentials not found in native keychain"; exit 1; fi\n`,
    );
    await chmod(helper, 0o755);
    await writeFile(join(home, 'secret'), secret);
  });
  after(async () => {
    await registry?.stop();
    await issuer?.stop();
    if (home !== undefined) await rm(home, { recursive: true, force: true });
  });

  const fromDockerConfig = (): RegistryClientOptions => ({
    credentials: (host) =>
      resolveCredentials(host, {
        configDir: home,
        env: { ...process.env, PATH: `${join(home, 'bin')}:${process.env['PATH'] ?? ''}` },
      }),
  });

  it('gets tokens for repository(plugin) scopes from the realm, pushes and pulls', async () => {
    const client = new RegistryClient(fromDockerConfig());
    try {
      const ref = parseReference(`${registry.host}/team/tok:1.0`);
      const plugin = await buildPlugin('token');
      await pushPlugin(client, ref, '1.0', plugin);
      const before = issuer.requests.length;
      const config = await client.fetchConfig(ref);
      assert.equal(config.resolved.digest, plugin.manifestDigest);
      // one token for pull, cached for every request of that scope
      const pulls = issuer.requests.slice(before);
      assert.deepEqual(pulls, [
        {
          account: 'carol',
          service: issuer.service,
          scopes: ['repository(plugin):team/tok:pull'],
          granted: true,
        },
      ]);
      assert.ok(
        issuer.requests.some((r) => r.scopes.includes('repository(plugin):team/tok:pull,push')),
        'push asked for pull,push',
      );
      await client.headManifest(ref);
      assert.equal(issuer.requests.length, before + 1, 'the cached token was reused');
    } finally {
      await client.close();
    }
  });

  it('is accepted by the registry with an x5c certificate chain instead of a kid', async () => {
    issuer.settings.keyHeader = 'x5c';
    const client = new RegistryClient(fromDockerConfig());
    try {
      const resolved = await client.resolve(parseReference(`${registry.host}/team/tok:1.0`));
      assert.match(resolved.digest, /^sha256:/);
    } finally {
      issuer.settings.keyHeader = 'kid';
      await client.close();
    }
  });

  it('fails with REGISTRY_AUTH_FAILED when the token grants `repository(plugin)` as its type', async () => {
    // distribution compares only type and name of the token's access entries: the class must be
    // separate. A token service that keeps it inside the type gets every request refused.
    issuer.settings.classInType = true;
    const client = new RegistryClient(fromDockerConfig());
    try {
      const error = await rejectsWith(
        client.resolve(parseReference(`${registry.host}/team/tok:1.0`)),
        'REGISTRY_AUTH_FAILED',
      );
      assert.match(error.message, /127\.0\.0\.1:5123\/team\/tok/);
    } finally {
      issuer.settings.classInType = false;
      await client.close();
    }
  });

  it('fails clearly when the helper supplies a wrong secret, never showing it', async () => {
    await writeFile(join(home, 'secret'), 'not-the-secret');
    const client = new RegistryClient(fromDockerConfig());
    try {
      const error = await rejectsWith(
        client.resolve(parseReference(`${registry.host}/team/tok:1.0`)),
        'REGISTRY_AUTH_FAILED',
      );
      assert.equal(error.kind, 'stalled');
      assert.match(error.message, /token service refused the credentials of carol/);
      assert.match(error.message, /127\.0\.0\.1:5123/);
      assert.doesNotMatch(error.message, /not-the-secret/);
    } finally {
      await writeFile(join(home, 'secret'), secret);
      await client.close();
    }
  });
});

// ----------------------------------------------------------------------------- hostile registry

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Hostile {
  host: string;
  port: number;
  routes: Map<string, Handler>;
  hits: string[];
  server: Server;
}

async function startHostile(): Promise<Hostile> {
  const routes = new Map<string, Handler>();
  const hits: string[] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    hits.push(`${req.method} ${path}`);
    const handler =
      routes.get(path) ?? (path === '/v2/' ? (_req, r) => r.writeHead(200).end('{}') : undefined);
    if (handler === undefined) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"NOT_FOUND","message":"no such thing"}]}');
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { host: `127.0.0.1:${address.port}`, port: address.port, routes, hits, server };
}

async function stopHostile(hostile: Hostile | undefined): Promise<void> {
  if (hostile === undefined) return;
  hostile.server.closeAllConnections();
  await new Promise<void>((resolve) => hostile.server.close(() => resolve()));
}

describe('registry client: hostile registry', { concurrency: false }, () => {
  let hostile: Hostile;
  let storage: Hostile;
  let dir: string;
  const good = Buffer.from('the real blob content '.repeat(100));
  const descriptor = { mediaType: 'application/octet-stream', digest: digestOf(good), size: good.byteLength };
  const fast: RegistryClientOptions = { ...anonymous, retries: 2, retryBaseMs: 10, timeoutMs: 700 };
  before(async () => {
    hostile = await startHostile();
    storage = await startHostile();
    dir = await mkdtemp(join(tmpdir(), 'plugctl-hostile-'));
  });
  after(async () => {
    await stopHostile(hostile);
    await stopHostile(storage);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });
  const blobPath = `/v2/evil/repo/blobs/${descriptor.digest}`;
  const repo = (): Reference => parseReference(`${hostile.host}/evil/repo:1.0`);

  async function assertNothingKept(client: RegistryClient, code: string): Promise<void> {
    const target = join(dir, 'blob');
    await rejectsWith(client.fetchBlobToFile(repo(), descriptor, target), code);
    assert.deepEqual(await readdir(dir), [], 'nothing left behind');
  }

  it('wrong digest: a blob whose bytes differ is DIGEST_MISMATCH and nothing is kept', async () => {
    const evil = Buffer.from(good);
    evil[10] = 0x21;
    hostile.routes.set(blobPath, (_req, res) =>
      res.writeHead(200, { 'content-length': evil.byteLength }).end(evil),
    );
    const client = new RegistryClient(fast);
    try {
      const error = await rejectsWith(readAll(await client.openBlob(repo(), descriptor)), 'DIGEST_MISMATCH');
      assert.equal(error.kind, 'stalled');
      assert.match(error.message, new RegExp(`${hostile.host}/evil/repo`));
      await assertNothingKept(client, 'DIGEST_MISMATCH');
    } finally {
      await client.close();
    }
  });

  it('wrong digest: a manifest fetched by digest whose bytes differ is DIGEST_MISMATCH', async () => {
    const real = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
        config: descriptor,
        layers: [],
      }),
    );
    const served = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
        config: { ...descriptor, size: 1 },
        layers: [],
      }),
    );
    const digest = digestOf(real);
    hostile.routes.set(`/v2/evil/repo/manifests/${digest}`, (_req, res) =>
      res.writeHead(200, { 'content-type': MEDIA_TYPE_DOCKER_MANIFEST }).end(served),
    );
    // by tag, a Docker-Content-Digest that the body does not hash to is refused as well
    hostile.routes.set('/v2/evil/repo/manifests/lying', (req, res) => {
      res.writeHead(200, { 'content-type': MEDIA_TYPE_DOCKER_MANIFEST, 'docker-content-digest': digest });
      res.end(req.method === 'HEAD' ? undefined : served);
    });
    const client = new RegistryClient(fast);
    try {
      await rejectsWith(
        client.resolve(parseReference(`${hostile.host}/evil/repo@${digest}`)),
        'DIGEST_MISMATCH',
      );
      await rejectsWith(client.resolve(parseReference(`${hostile.host}/evil/repo:lying`)), 'DIGEST_MISMATCH');
    } finally {
      await client.close();
    }
  });

  it('truncated body: Content-Length larger than what is sent, then close, is REGISTRY_BODY_TRUNCATED', async () => {
    hostile.routes.set(blobPath, (_req, res) => {
      res.writeHead(200, { 'content-length': good.byteLength });
      res.write(good.subarray(0, 500));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const client = new RegistryClient(fast);
    try {
      const error = await rejectsWith(
        readAll(await client.openBlob(repo(), descriptor)),
        'REGISTRY_BODY_TRUNCATED',
      );
      assert.equal(error.kind, 'transient');
      assert.match(error.message, /after 500 of 2200 bytes/);
      await assertNothingKept(client, 'REGISTRY_BODY_TRUNCATED');
    } finally {
      await client.close();
    }
  });

  it('a body longer than the descriptor is SIZE_MISMATCH', async () => {
    const longer = Buffer.concat([good, Buffer.from('extra')]);
    hostile.routes.set(blobPath, (_req, res) => {
      res.writeHead(200); // chunked: the size is only known while streaming
      res.end(longer);
    });
    const client = new RegistryClient(fast);
    try {
      await rejectsWith(readAll(await client.openBlob(repo(), descriptor)), 'SIZE_MISMATCH');
      await assertNothingKept(client, 'SIZE_MISMATCH');
    } finally {
      await client.close();
    }
  });

  it('oversized manifest: refused with MANIFEST_TOO_LARGE, announced or streamed', async () => {
    const huge = Buffer.alloc(5 * 1024 * 1024, 0x20);
    hostile.routes.set('/v2/evil/repo/manifests/huge', (req, res) => {
      res.writeHead(200, {
        'content-type': MEDIA_TYPE_DOCKER_MANIFEST,
        'content-length': huge.byteLength,
        'docker-content-digest': digestOf(huge),
      });
      res.end(req.method === 'HEAD' ? undefined : huge);
    });
    hostile.routes.set('/v2/evil/repo/manifests/huge-chunked', (req, res) => {
      res.writeHead(200, { 'content-type': MEDIA_TYPE_DOCKER_MANIFEST });
      if (req.method === 'HEAD') return void res.end();
      res.write(huge.subarray(0, 3 * 1024 * 1024));
      res.end(huge.subarray(3 * 1024 * 1024));
    });
    const client = new RegistryClient(fast);
    try {
      await rejectsWith(
        client.resolve(parseReference(`${hostile.host}/evil/repo:huge`)),
        'MANIFEST_TOO_LARGE',
      );
      const error = await rejectsWith(
        client.resolve(parseReference(`${hostile.host}/evil/repo:huge-chunked`)),
        'MANIFEST_TOO_LARGE',
      );
      assert.match(error.message, /larger than 4194304 bytes/);
    } finally {
      await client.close();
    }
  });

  it('401 loop: a registry that refuses every token fails after one re-authentication', async () => {
    let tokens = 0;
    hostile.routes.set('/v2/', (_req, res) =>
      res
        .writeHead(401, { 'www-authenticate': `Bearer realm="http://${hostile.host}/token",service="evil"` })
        .end(),
    );
    hostile.routes.set('/token', (_req, res) => {
      tokens++;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token: `t${tokens}`, expires_in: 300 }));
    });
    hostile.routes.set('/v2/evil/repo/manifests/1.0', (_req, res) =>
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="http://${hostile.host}/token",service="evil",scope="repository:evil/repo:pull",error="invalid_token"`,
        })
        .end(),
    );
    hostile.hits.length = 0;
    const client = new RegistryClient(fast);
    try {
      const error = await rejectsWith(client.resolve(repo()), 'REGISTRY_AUTH_FAILED');
      assert.equal(error.kind, 'stalled');
      assert.equal(tokens, 2, 'one token, then one fresh token, then give up');
      assert.deepEqual(hostile.hits, [
        'GET /v2/',
        'GET /token',
        'HEAD /v2/evil/repo/manifests/1.0',
        'GET /token',
        'HEAD /v2/evil/repo/manifests/1.0',
      ]);
    } finally {
      hostile.routes.delete('/v2/');
      hostile.routes.delete('/v2/evil/repo/manifests/1.0');
      await client.close();
    }
  });

  it('429 with Retry-After: waits as asked, then succeeds', async () => {
    let calls = 0;
    hostile.routes.set(blobPath, (_req, res) => {
      calls++;
      if (calls === 1) return void res.writeHead(429, { 'retry-after': '1' }).end();
      res.writeHead(200, { 'content-length': good.byteLength }).end(good);
    });
    const client = new RegistryClient(fast);
    try {
      const started = Date.now();
      assert.deepEqual(await readAll(await client.openBlob(repo(), descriptor)), good);
      assert.ok(Date.now() - started >= 950, `waited ${Date.now() - started} ms`);
      assert.equal(calls, 2);
    } finally {
      await client.close();
    }
  });

  it('500 then success: retried', async () => {
    let calls = 0;
    hostile.routes.set(blobPath, (_req, res) => {
      calls++;
      if (calls === 1) return void res.writeHead(500).end('boom');
      res.writeHead(200, { 'content-length': good.byteLength }).end(good);
    });
    const client = new RegistryClient(fast);
    try {
      assert.deepEqual(await readAll(await client.openBlob(repo(), descriptor)), good);
      assert.equal(calls, 2);
    } finally {
      await client.close();
    }
  });

  it('500 forever: gives up after the retries with REGISTRY_SERVER_ERROR', async () => {
    let calls = 0;
    hostile.routes.set(blobPath, (_req, res) => {
      calls++;
      res
        .writeHead(503, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}');
    });
    const client = new RegistryClient(fast);
    try {
      const error = await rejectsWith(client.openBlob(repo(), descriptor), 'REGISTRY_SERVER_ERROR');
      assert.equal(error.kind, 'transient');
      assert.equal(error.status, 503);
      assert.equal(calls, 3, 'first attempt + 2 retries');
      assert.match(error.message, /down for maintenance/);
      assert.match(error.message, /after 3 attempt\(s\)/);
      await assertNothingKept(client, 'REGISTRY_SERVER_ERROR');
    } finally {
      await client.close();
    }
  });

  it('a body that stalls midway: the idle timeout fires, REGISTRY_TIMEOUT, nothing kept', async () => {
    hostile.routes.set(blobPath, (_req, res) => {
      res.writeHead(200, { 'content-length': good.byteLength });
      res.write(good.subarray(0, 1000)); // and never another byte
    });
    const client = new RegistryClient(fast);
    try {
      // the 700 ms idle timeout must end the read: without it the read would hang forever
      const error = await within(
        rejectsWith(readAll(await client.openBlob(repo(), descriptor)), 'REGISTRY_TIMEOUT'),
        { what: 'the idle timeout to end a stalled body' },
      );
      assert.match(error.message, /stalled after 1000 of 2200 bytes/);
      await assertNothingKept(client, 'REGISTRY_TIMEOUT');
    } finally {
      await client.close();
    }
  });

  it('no response headers at all: REGISTRY_TIMEOUT after the retries', async () => {
    hostile.routes.set(blobPath, () => {
      // never answer
    });
    const client = new RegistryClient(fast);
    try {
      const error = await rejectsWith(client.openBlob(repo(), descriptor), 'REGISTRY_TIMEOUT');
      assert.match(error.message, /no response within 700 ms after 3 attempt/);
    } finally {
      await client.close();
    }
  });

  it('an identity token is exchanged with an OAuth2 refresh_token POST, then used as Bearer', async () => {
    const forms: Record<string, string>[] = [];
    hostile.routes.set('/v2/', (_req, res) =>
      res
        .writeHead(401, { 'www-authenticate': `Bearer realm="http://${hostile.host}/oauth",service="evil"` })
        .end(),
    );
    hostile.routes.set('/oauth', (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        forms.push(Object.fromEntries(new URLSearchParams(body)));
        if (req.method !== 'POST') return void res.writeHead(405).end();
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ access_token: 'oauth-access', expires_in: 300 }));
      });
    });
    hostile.routes.set(blobPath, (req, res) => {
      if (req.headers.authorization !== 'Bearer oauth-access') return void res.writeHead(401).end();
      res.writeHead(200, { 'content-length': good.byteLength }).end(good);
    });
    const client = new RegistryClient({
      ...fast,
      credentials: async (host) => new Credentials({ serverAddress: host, identityToken: 'refresh-me' }),
    });
    try {
      assert.deepEqual(await readAll(await client.openBlob(repo(), descriptor)), good);
      assert.deepEqual(forms, [
        {
          grant_type: 'refresh_token',
          refresh_token: 'refresh-me',
          client_id: 'plugctl',
          scope: 'repository(plugin):evil/repo:pull',
          service: 'evil',
        },
      ]);
    } finally {
      hostile.routes.delete('/v2/');
      await client.close();
    }
  });

  it('a redirect to another host does not carry the Authorization header', async () => {
    hostile.routes.set('/v2/', (req, res) => {
      if (req.headers.authorization === undefined)
        return void res.writeHead(401, { 'www-authenticate': 'Basic realm="evil"' }).end();
      res.writeHead(200).end();
    });
    hostile.routes.set(blobPath, (req, res) => {
      if (req.headers.authorization === undefined)
        return void res.writeHead(401, { 'www-authenticate': 'Basic realm="evil"' }).end();
      res.writeHead(307, { location: `http://${storage.host}/storage/blob?sig=abc` }).end();
    });
    const seen: (string | undefined)[] = [];
    storage.routes.set('/storage/blob', (req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-length': good.byteLength }).end(good);
    });
    const client = new RegistryClient({
      ...fast,
      credentials: async (host) =>
        new Credentials({ serverAddress: host, username: 'u', password: 'redirect-secret' }),
    });
    try {
      assert.deepEqual(await readAll(await client.openBlob(repo(), descriptor)), good);
      assert.deepEqual(seen, [undefined]);
    } finally {
      hostile.routes.delete('/v2/');
      await client.close();
    }
  });
});
