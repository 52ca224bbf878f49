/**
 * Registries that lie, against the real registry client and the real embedded store on a temp
 * root: redirects that downgrade to plain http or aim at cloud metadata, peers that send a byte
 * every few seconds (on headers, a manifest or a blob), and a Retry-After of a day. Each is refused
 * with its code within its deadline, nothing of the plugin is installed, credentials never leave
 * the host they are for, and a valid plugin beside a slow one converges meanwhile.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Credentials } from '../../controller/registry/credentials.ts';
import { createRemoteInspector } from '../../controller/registry/inspect.ts';
import { RegistryError } from '../../controller/registry/errors.ts';
import { reconcilePass } from '../../controller/reconcile/once.ts';
import type { DesiredPlugin } from '../../controller/reconcile/desired.ts';
import { toDesired } from '../../controller/reconcile/desired.ts';
import { loadDocumentsFromText } from '../../controller/api/load.ts';
import { WorkQueue } from '../../controller/runtime/queue.ts';
import type { EmbeddedStore } from '../../controller/store/embedded/store.ts';
import { rejectsWith } from '../errors.ts';
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
  box = await sandbox('registries');
  world = await fingerprint([...REACHABLE, box.outside]);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

after(async () => {
  assert.equal(await fingerprint([...REACHABLE, box.outside]), world, 'nothing outside the sandbox changed');
  await box.remove();
});

let roots = 0;

/** A fresh store root in the sandbox, closed after the test. */
async function freshStore(
  client: ReturnType<typeof hostileClient>,
  pullTimeoutMs?: number,
): Promise<EmbeddedStore> {
  const root = join(box.dir, `root-${++roots}`);
  const store = await openStore(root, client, pullTimeoutMs !== undefined ? { pullTimeoutMs } : {});
  cleanups.push(async () => {
    await store.close();
    await client.close();
  });
  return store;
}

async function started(): Promise<LyingRegistry> {
  const registry = await LyingRegistry.start();
  cleanups.push(() => registry.close());
  return registry;
}

/** Nothing of any plugin is in the store: no plugin, no blob, nothing left in tmp/. */
async function assertNothingInstalled(store: EmbeddedStore): Promise<void> {
  assert.deepEqual(await store.list(), []);
  assert.deepEqual(await readdir(store.layout.tmp), [], 'tmp/ is empty');
  const blobs = await readdir(join(store.layout.blobs, 'sha256')).catch(() => []);
  assert.deepEqual(blobs, [], 'no blob was committed');
}

describe('redirects', () => {
  for (const target of [
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'http://[::ffff:169.254.169.254]/latest/meta-data/',
    'http://metadata.google.internal/computeMetadata/v1/',
    'https://169.254.169.254/x',
    'http://10.20.30.40:5000/v2/x/blobs/sha256:00',
  ]) {
    it(`a loopback registry redirecting a blob to ${target} is refused (REGISTRY_REDIRECT_INVALID), nothing installed`, async () => {
      const registry = await started();
      const plugin = await registry.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
      const layer = plugin.layerDigests[0] as string;
      registry.behaviour = (req, res) => {
        if (!(req.url ?? '').endsWith(layer)) return false;
        res.writeHead(307, { location: target }).end();
        return true;
      };
      const store = await freshStore(hostileClient());
      const started_ = performance.now();
      const error = await rejectsWith(
        store.pull(plugin.remote, { remote: plugin.remote, privileges: VOL_PRIVILEGES }),
        'REGISTRY_REDIRECT_INVALID',
        'stalled',
        RegistryError,
      );
      assert.match(error.message, /refused/);
      assert.ok(performance.now() - started_ < 2000, 'refused at once, not after a connection attempt');
      await assertNothingInstalled(store);
    });
  }

  it('a redirect to another loopback registry is followed without the credentials of the first', async () => {
    const storage = await started();
    const registry = await started();
    const plugin = await registry.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    const layer = plugin.layerDigests[0] as string;
    await storage.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    registry.behaviour = (req, res) => {
      if (req.headers.authorization === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"' }).end();
        return true;
      }
      if (!(req.url ?? '').endsWith(layer)) return false;
      res.writeHead(307, { location: `http://${storage.host}/v2/team/vol/blobs/${layer}` }).end();
      return true;
    };
    const credentials = new Credentials({
      serverAddress: registry.host,
      username: 'operator',
      password: 'secret',
    });
    const client = hostileClient({
      credentials: async (host) => (host === registry.host ? credentials : undefined),
    });
    const store = await freshStore(client);
    await store.pull(plugin.remote, { remote: plugin.remote, privileges: VOL_PRIVILEGES });
    assert.deepEqual(
      (await store.list()).map((p) => p.name),
      [plugin.remote],
    );
    const blobRequests = storage.requests.filter((r) => r.url.endsWith(layer));
    assert.equal(blobRequests.length, 1);
    assert.deepEqual(
      storage.requests.map((r) => r.authorization),
      storage.requests.map(() => undefined),
      'the storage host never saw the credentials',
    );
    assert.ok(registry.requests.some((r) => r.authorization?.startsWith('Basic ') === true));
  });
});

describe('slow peers', () => {
  const transfer = {
    headersTimeoutMs: 1500,
    bodyIdleTimeoutMs: 10_000,
    minBytesPerSecond: 64,
    rateWindowMs: 1000,
  };

  it('headers sent one byte every 300 ms: REGISTRY_TIMEOUT at the headers deadline', async () => {
    const registry = await started();
    const plugin = await registry.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    const sockets: Socket[] = [];
    registry.behaviour = (req, res) => {
      if (!(req.url ?? '').includes('/manifests/')) return false;
      // a raw, dripping status line and headers: never a complete header block
      const socket = res.socket as Socket;
      sockets.push(socket);
      const head = Buffer.from(
        'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: ' + 'a'.repeat(200),
      );
      let sent = 0;
      const timer = setInterval(() => {
        if (socket.destroyed || sent >= head.byteLength) return clearInterval(timer);
        socket.write(head.subarray(sent, sent + 1));
        sent++;
      }, 300);
      socket.once('close', () => clearInterval(timer));
      return true;
    };
    const client = hostileClient({ retries: 0, transfer });
    const store = await freshStore(client);
    const began = performance.now();
    await rejectsWith(
      store.pull(plugin.remote, { remote: plugin.remote, privileges: VOL_PRIVILEGES }),
      'REGISTRY_TIMEOUT',
      'transient',
    );
    const took = performance.now() - began;
    assert.ok(took < 4000, `failed after ${Math.round(took)} ms`);
    await assertNothingInstalled(store);
  });

  for (const what of ['manifest', 'blob'] as const) {
    it(`a ${what} sent one byte every 250 ms: REGISTRY_TIMEOUT below the minimum rate, nothing installed`, async () => {
      const registry = await started();
      const plugin = await registry.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
      const layer = plugin.layerDigests[0] as string;
      registry.behaviour = (req, res) => {
        const url = req.url ?? '';
        if (what === 'manifest' && url.includes('/manifests/') && req.method === 'GET') {
          const manifest = registry.manifest(`team/vol@${plugin.manifestDigest}`);
          registry.drip(res, manifest.bytes, 250, {
            'content-type': 'application/vnd.docker.distribution.manifest.v2+json',
            'docker-content-digest': manifest.digest,
          });
          return true;
        }
        if (what === 'blob' && url.endsWith(layer)) {
          registry.drip(res, registry.blob(layer), 250);
          return true;
        }
        return false;
      };
      const store = await freshStore(hostileClient({ transfer }));
      const began = performance.now();
      const error = await rejectsWith(
        store.pull(plugin.remote, { remote: plugin.remote, privileges: VOL_PRIVILEGES }),
        'REGISTRY_TIMEOUT',
        'transient',
      );
      assert.match(error.message, /too slow/);
      const took = performance.now() - began;
      assert.ok(took < 4000, `failed after ${Math.round(took)} ms`);
      await assertNothingInstalled(store);
    });
  }

  it('a pull that keeps the minimum rate but never ends: REGISTRY_TIMEOUT at the pull deadline', async () => {
    const registry = await started();
    const { randomBytes } = await import('node:crypto');
    const big = [...GOOD_LAYER, { name: 'data.bin', content: randomBytes(200 * 1024) }];
    const plugin = await registry.putPlugin('team/vol', '1.0', [big]);
    const layer = plugin.layerDigests[0] as string;
    registry.behaviour = (req, res) => {
      if (!(req.url ?? '').endsWith(layer)) return false;
      // ~200 bytes/s: fast enough for the rate guard (64), 1,000 s from the end
      registry.drip(res, registry.blob(layer), 5);
      return true;
    };
    const store = await freshStore(hostileClient({ transfer }), 1500);
    const began = performance.now();
    const error = await rejectsWith(
      store.pull(plugin.remote, { remote: plugin.remote, privileges: VOL_PRIVILEGES }),
      'REGISTRY_TIMEOUT',
      'transient',
    );
    assert.match(error.message, /did not finish within 1\.5s \(the pull deadline\)/);
    const took = performance.now() - began;
    assert.ok(took >= 1400 && took < 3000, `failed after ${Math.round(took)} ms`);
    await assertNothingInstalled(store);
  });

  it('apply: a valid plugin beside a stalled one converges while the stalled one fails within its deadline', async () => {
    const good = await started();
    const slow = await started();
    const valid = await good.putPlugin('team/good', '1.0', [GOOD_LAYER]);
    const stalled = await slow.putPlugin('team/slow', '1.0', [GOOD_LAYER]);
    // the slow registry never answers a manifest: headers never come
    slow.behaviour = (req) => (req.url ?? '').includes('/manifests/');
    const client = hostileClient({ retries: 0, transfer: { ...transfer, headersTimeoutMs: 60_000 } });
    const store = await freshStore(client, 2000);
    const inspector = createRemoteInspector(
      client,
      { acceptsDigests: true, description: store.describe() },
      { timeoutMs: 2000 },
    );
    const docs = (name: string, remote: string): string =>
      `apiVersion: plugctl.dev/v1alpha1\nkind: DockerPlugin\nmetadata:\n  name: ${name}\nspec:\n  remote: ${remote}\n  enabled: false\n  privileges:\n    - { name: network, value: [host] }\n`;
    const loaded = loadDocumentsFromText(
      [docs('slow', stalled.remote), docs('good', valid.remote)].join('---\n'),
      'plugins.yaml',
    );
    assert.deepEqual(loaded.errors, []);
    const desired: DesiredPlugin[] = loaded.documents.map((d) => toDesired(d));
    const stateDir = join(box.dir, 'state-apply');
    await mkdir(stateDir, { recursive: true });
    let goodInstalledAt: number | undefined;
    const began = performance.now();
    const poll = setInterval(() => {
      void store.list().then((plugins) => {
        if (goodInstalledAt === undefined && plugins.some((p) => p.name === valid.remote))
          goodInstalledAt = performance.now() - began;
      });
    }, 20);
    let output;
    try {
      output = await reconcilePass(
        { desired, prune: false, set: 'hostile', dryRun: false },
        { store, inspector, stateDir, logger: pino({ level: 'silent' }), concurrency: 4 },
      );
    } finally {
      clearInterval(poll);
    }
    const took = performance.now() - began;
    const results = new Map((output.results ?? []).map((r) => [r.key, r]));
    assert.equal(results.get('good')?.failure, undefined, JSON.stringify(results.get('good')));
    assert.equal(results.get('slow')?.failure?.code, 'REGISTRY_TIMEOUT');
    assert.match(results.get('slow')?.failure?.message ?? '', /looking up .* did not finish within 2s/);
    assert.deepEqual(
      (await store.list()).map((p) => p.name),
      [valid.remote],
    );
    assert.ok(
      goodInstalledAt !== undefined && goodInstalledAt < 1500,
      `good installed after ${goodInstalledAt} ms, before the slow lookup's deadline`,
    );
    assert.ok(took < 4000, `the pass ended after ${Math.round(took)} ms`);
  });
});

describe('Retry-After', () => {
  it('a 429 asking for a day is capped at the backoff maximum and reported, and the queue caps it too', async () => {
    const registry = await started();
    const plugin = await registry.putPlugin('team/vol', '1.0', [GOOD_LAYER]);
    let asked = 0;
    registry.behaviour = (req, res) => {
      if (!(req.url ?? '').includes('/manifests/')) return false;
      asked++;
      res.writeHead(429, { 'retry-after': '86400', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
      return true;
    };
    const client = hostileClient({ retries: 2, retryMaxMs: 200 });
    cleanups.push(() => client.close());
    const inspector = createRemoteInspector(client, { acceptsDigests: true, description: 'test' });
    const began = performance.now();
    const error = await rejectsWith(
      inspector.inspect(plugin.remote),
      'REGISTRY_RATE_LIMITED',
      'transient',
      RegistryError,
    );
    const took = performance.now() - began;
    assert.equal(asked, 3, 'asked again twice, each after the capped wait');
    assert.ok(took >= 380 && took < 2000, `gave up after ${Math.round(took)} ms, not a day`);
    assert.equal(error.retryAfterMs, 86_400_000);
    assert.match(
      error.message,
      /the registry asks to wait 86400 s \(Retry-After\), plugctl waits at most its backoff maximum/,
    );

    // the controller's next attempt for the key: the Retry-After, capped at the queue's maximum
    const queue = new WorkQueue({ maxDelayMs: 1_000_000 });
    try {
      assert.equal(queue.addRateLimited('vol', error.retryAfterMs), 1_000_000);
    } finally {
      queue.shutDown();
    }
  });
});
