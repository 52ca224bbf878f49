/**
 * Registry mirrors that lie, against the real registry client, inspector and embedded store: a mirror
 * serving other content under a pinned digest, a stale mirror for a tag, a mirror redirecting to a
 * cloud metadata address. Each is passed over for the next source, what is installed is the verified
 * content under the declared reference, and when every source fails the error names each of them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { createRemoteInspector } from '../../controller/registry/inspect.ts';
import { mergeMirrors, parseMirrorFlags, type MirrorConfig } from '../../controller/registry/mirrors.ts';
import { RegistryError } from '../../controller/registry/errors.ts';
import type { TarEntry } from '../unit/store/embedded/helpers.ts';
import {
  GOOD_LAYER,
  LyingRegistry,
  REACHABLE,
  VOL_PRIVILEGES,
  fingerprint,
  hostileClient,
  openStore,
  sandbox,
} from './harness.ts';
import type { Sandbox } from './harness.ts';

let box: Sandbox;
let world: string;
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  box = await sandbox('mirrors');
  world = await fingerprint([...REACHABLE, box.outside]);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

after(async () => {
  assert.equal(await fingerprint([...REACHABLE, box.outside]), world, 'nothing outside the sandbox changed');
  await box.remove();
});

const OTHER_LAYER: TarEntry[] = [
  { name: 'bin/plugind', content: '#!/bin/sh\necho substituted\n', mode: 0o755 },
];

async function started(): Promise<LyingRegistry> {
  const registry = await LyingRegistry.start();
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await registry.close();
  });
  const close = registry.close.bind(registry);
  registry.close = async () => {
    closed = true;
    await close();
  };
  return registry;
}

function mirrorsFor(upstream: LyingRegistry, ...mirrors: LyingRegistry[]): MirrorConfig {
  return mergeMirrors(
    new Map(),
    parseMirrorFlags([`${upstream.host}=${mirrors.map((m) => m.host).join(',')}`]),
  );
}

let roots = 0;

/** A CA and a certificate for 127.0.0.1 it signed, made by openssl in `dir`. */
async function certificates(dir: string): Promise<{ ca: string; key: string; cert: string }> {
  await mkdir(dir, { recursive: true });
  const openssl = (...args: string[]): Promise<unknown> => promisify(execFile)('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=plugctl test CA',
  );
  await openssl('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
  await writeFile(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n');
  await openssl(
    'x509',
    '-req',
    '-in',
    'srv.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'srv.pem',
    '-days',
    '1',
    '-extfile',
    'ext',
  );
  const read = (name: string): Promise<string> => readFile(join(dir, name), 'utf8');
  return { ca: await read('ca.pem'), key: await read('srv.key'), cert: await read('srv.pem') };
}

/** An https front for `backend` (a plain-http registry) with the given certificate. */
async function httpsFront(backend: LyingRegistry, tls: { key: string; cert: string }): Promise<string> {
  const server: Server = createServer(tls, (req, res) => {
    void (async () => {
      const answer = await fetch(`http://${backend.host}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers: { accept: String(req.headers.accept ?? '*/*') },
      });
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'content-length', 'docker-content-digest']) {
        const value = answer.headers.get(name);
        if (value !== null) headers[name] = value;
      }
      res.writeHead(answer.status, headers);
      res.end(req.method === 'HEAD' ? undefined : Buffer.from(await answer.arrayBuffer()));
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('registry mirrors that lie', () => {
  it('a mirror serving other content under the pinned digest is passed over; the verified copy is installed under the declared reference', async () => {
    const upstream = await started();
    const liar = await started();
    const honest = await started();
    const pinned = await upstream.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    const copy = await honest.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    assert.equal(copy.manifestDigest, pinned.manifestDigest);
    const other = await liar.putPlugin('team/vol', '1.0', [OTHER_LAYER]);
    const substitute = liar.manifest(`team/vol:1.0`);
    liar.behaviour = (req, res) => {
      if (!(req.url ?? '').endsWith(`/manifests/${pinned.manifestDigest}`)) return false;
      res.writeHead(200, {
        'content-type': 'application/vnd.docker.distribution.manifest.v2+json',
        'content-length': substitute.bytes.byteLength,
      });
      res.end(req.method === 'HEAD' ? undefined : substitute.bytes);
      return true;
    };
    assert.notEqual(other.manifestDigest, pinned.manifestDigest);
    await upstream.close(); // air-gapped: the upstream is unreachable

    const declared = `${pinned.remote}@${pinned.manifestDigest}`;
    const client = hostileClient();
    cleanups.push(() => client.close());
    const inspector = createRemoteInspector(
      client,
      { acceptsDigests: true, description: 'embedded' },
      { mirrors: mirrorsFor(upstream, liar, honest), timeoutMs: 20_000 },
    );
    const info = await inspector.inspect(declared);
    assert.equal(info.mirror?.host, honest.host);
    assert.equal(info.mirror?.verifiedBy, 'pinned');
    assert.equal(info.digest, pinned.manifestDigest);
    assert.match(info.mirror?.description ?? '', /verified against the pinned digest/);

    const root = join(box.root, `pinned-${roots++}`);
    await mkdir(root, { recursive: true });
    const store = await openStore(root, client);
    cleanups.push(() => store.close());
    await store.pull('vol:latest', {
      remote: info.pullRemote,
      privileges: VOL_PRIVILEGES,
      from: info.mirror!.reference,
    });
    const [plugin] = await store.list();
    assert.equal(plugin?.reference, declared, 'the plugin keeps the declared reference');
    assert.deepEqual(plugin?.diffIds, pinned.diffIds, 'the pinned content, not the substitute');
    assert.ok(
      !liar.requests.some((r) => r.url.includes('/blobs/')),
      "nothing of the liar's content was downloaded",
    );
  });

  it('a tag with the upstream down: a mirror redirecting to a metadata address is refused, the next one is taken and said unverified', async () => {
    const upstream = await started();
    const redirecting = await started();
    const honest = await started();
    await upstream.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    const copy = await honest.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    redirecting.behaviour = (req, res) => {
      if (!(req.url ?? '').includes('/manifests/')) return false;
      res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      return true;
    };
    await upstream.close();
    const client = hostileClient();
    cleanups.push(() => client.close());
    const inspector = createRemoteInspector(
      client,
      { acceptsDigests: false, description: 'dockerd 20.10' },
      { mirrors: mirrorsFor(upstream, redirecting, honest), timeoutMs: 20_000 },
    );
    const info = await inspector.inspect(`${upstream.host}/team/vol:1.0`);
    assert.equal(info.mirror?.host, honest.host);
    assert.equal(info.mirror?.verifiedBy, 'mirror');
    assert.equal(
      info.mirror?.reference,
      `${honest.host}/team/vol:1.0`,
      'a tag, never a digest, for an old engine',
    );
    assert.equal(info.pullRemote, `${upstream.host}/team/vol:1.0`);
    assert.equal(info.digest, copy.manifestDigest);
    assert.match(info.mirror?.description ?? '', /not verified: .* was unreachable/);
  });

  it('a tag with the upstream up: a stale mirror is passed over for the content the upstream names', async () => {
    const upstream = await started();
    const stale = await started();
    const fresh = await upstream.putPlugin('team/vol', '2.0', [GOOD_LAYER]);
    await stale.putPlugin('team/vol', '2.0', [OTHER_LAYER]);
    const client = hostileClient();
    cleanups.push(() => client.close());
    const inspector = createRemoteInspector(
      client,
      { acceptsDigests: true, description: 'embedded' },
      { mirrors: mirrorsFor(upstream, stale), timeoutMs: 20_000 },
    );
    const info = await inspector.inspect(fresh.remote);
    assert.equal(info.mirror, undefined, 'the upstream served it');
    assert.equal(info.digest, fresh.manifestDigest);
    assert.deepEqual(info.diffIds, fresh.diffIds);
  });

  it('the upstream and every mirror down: MIRRORS_UNAVAILABLE naming each', async () => {
    const upstream = await started();
    const first = await started();
    const second = await started();
    await upstream.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    second.behaviour = (_req, res) => {
      res.writeHead(503).end();
      return true;
    };
    await upstream.close();
    await first.close();
    const client = hostileClient();
    cleanups.push(() => client.close());
    const inspector = createRemoteInspector(
      client,
      { acceptsDigests: true, description: 'embedded' },
      { mirrors: mirrorsFor(upstream, first, second), timeoutMs: 20_000 },
    );
    await assert.rejects(inspector.inspect(`${upstream.host}/team/vol:1.0`), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.code, 'MIRRORS_UNAVAILABLE');
      assert.equal(error.kind, 'transient');
      assert.match(error.message, new RegExp(`upstream ${upstream.host}: .*cannot connect`));
      assert.match(error.message, new RegExp(`mirror ${first.host}: .*cannot connect`));
      assert.match(error.message, new RegExp(`mirror ${second.host}: .*server error 503`));
      return true;
    });
  });

  it("a mirror with its own CA is verified against it: the right CA is trusted, another CA's certificate is refused", async () => {
    const upstream = await started();
    const backend = await started();
    const plugin = await upstream.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    await backend.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    const good = await certificates(join(box.dir, 'tls-good'));
    const other = await certificates(join(box.dir, 'tls-other'));
    const front = await httpsFront(backend, good);
    await upstream.close();
    const mirrors = mergeMirrors(new Map(), parseMirrorFlags([`${upstream.host}=${front}`]));
    const inspectWith = async (ca: string): Promise<unknown> => {
      const client = hostileClient({ trustedCas: new Map([[front, ca]]) });
      cleanups.push(() => client.close());
      const inspector = createRemoteInspector(
        client,
        { acceptsDigests: true, description: 'embedded' },
        { mirrors, timeoutMs: 20_000 },
      );
      return inspector.inspect(plugin.remote);
    };
    const info = (await inspectWith(good.ca)) as { mirror?: { host: string } };
    assert.equal(info.mirror?.host, front);
    await assert.rejects(inspectWith(other.ca), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.code, 'MIRRORS_UNAVAILABLE');
      assert.match(
        error.message,
        new RegExp(`mirror ${front}: .*cannot connect \\([A-Z_]*(CERT|SIGNATURE|VERIFY)`),
      );
      return true;
    });
  });
});
