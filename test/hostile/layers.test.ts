/**
 * Hostile layers pulled into the real embedded store on a temp root: entries no file system can
 * hold, layers that are not the content their config describes, and entries aimed outside the
 * rootfs. Each is a permanent LAYER_INVALID (or LAYER_UNSAFE) naming the entry, nothing of the
 * plugin is installed, and a valid plugin pulls into the same store afterwards.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { LayerError } from '../../controller/store/embedded/errors.ts';
import type { EmbeddedStore } from '../../controller/store/embedded/store.ts';
import { digestOf } from '../../controller/registry/manifest.ts';
import { rejectsWith } from '../errors.ts';
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
let registry: LyingRegistry;
let store: EmbeddedStore;
let client: ReturnType<typeof hostileClient>;
let stores = 0;

before(async () => {
  box = await sandbox('layers');
  world = await fingerprint([...REACHABLE, box.outside]);
  registry = await LyingRegistry.start();
});

afterEach(async () => {
  await store.close();
  await client.close();
});

after(async () => {
  await registry.close();
  assert.equal(
    await fingerprint([...REACHABLE, box.outside]),
    world,
    'nothing outside the store root changed',
  );
  await box.remove();
});

async function freshStore(): Promise<EmbeddedStore> {
  client = hostileClient();
  store = await openStore(join(box.dir, `root-${++stores}`), client);
  return store;
}

/** Pulls `layers` (with `diffIds`) and expects `code`; then nothing is installed and a good plugin pulls. */
async function refused(
  tag: string,
  layers: TarEntry[][],
  code: 'LAYER_INVALID' | 'LAYER_UNSAFE',
  diffIds?: string[],
): Promise<LayerError> {
  const plugin = await registry.putPlugin('team/hostile', tag, layers, diffIds);
  const s = await freshStore();
  const error = await rejectsWith(
    s.pull(plugin.remote, { remote: plugin.remote, privileges: VOL_PRIVILEGES }),
    code,
    'stalled',
    LayerError,
  );
  assert.deepEqual(await s.list(), [], 'nothing installed');
  assert.deepEqual(await readdir(s.layout.tmp), [], 'no staging left');
  assert.deepEqual(await readdir(join(s.layout.blobs, 'sha256')).catch(() => []), [], 'no blob committed');
  const good = await registry.putPlugin('team/good', tag, [GOOD_LAYER]);
  await s.pull(good.remote, { remote: good.remote, privileges: VOL_PRIVILEGES });
  assert.deepEqual(
    (await s.list()).map((p) => p.name),
    [good.remote],
    'a valid plugin pulls into the same store',
  );
  return error;
}

describe('entries the store cannot represent are LAYER_INVALID, permanent, naming the entry', () => {
  it('an entry name of 4,200 characters (was a transient STORE_IO ENAMETOOLONG, retried)', async () => {
    const name = `bin/${'a'.repeat(200)}/${'b/'.repeat(1997)}x`;
    assert.equal(name.length, 4200);
    const error = await refused('long-name', [[...GOOD_LAYER, { name, content: 'x' }]], 'LAYER_INVALID');
    assert.equal(error.entry, name);
    assert.match(error.message, /entry "bin\/a{96}"\.\.\. \(4200 characters\) is longer than 4095 bytes/);
  });

  it('a path component of 300 characters', async () => {
    const name = `etc/${'c'.repeat(300)}`;
    const error = await refused('long-component', [[...GOOD_LAYER, { name, content: 'x' }]], 'LAYER_INVALID');
    assert.equal(error.entry, name);
    assert.match(error.message, /has a component longer than 255 bytes/);
  });

  it('a symlink whose target is 5,000 characters (ENAMETOOLONG from the file system)', async () => {
    const entry = { name: 'etc/far', type: 'symlink' as const, linkname: `/${'d'.repeat(4999)}` };
    const error = await refused('long-link', [[...GOOD_LAYER, entry]], 'LAYER_INVALID');
    assert.equal(error.entry, 'etc/far');
    assert.match(error.message, /cannot be stored on this file system \(ENAMETOOLONG\)/);
  });
});

describe("a layer's uncompressed digest is checked against the config's rootfs.diff_ids", () => {
  it('a diff ID that is neither the layer nor its blob: LAYER_INVALID, nothing installed', async () => {
    const error = await refused('diff-mismatch', [GOOD_LAYER], 'LAYER_INVALID', [
      digestOf(Buffer.from('other content')),
    ]);
    assert.match(
      error.message,
      /unpacks to sha256:[0-9a-f]{64}, but the config's rootfs\.diff_ids\[0\] is sha256:/,
    );
  });

  it('more diff IDs than layers: LAYER_INVALID before any layer is downloaded', async () => {
    const before_ = registry.requests.length;
    const error = await refused('diff-count', [GOOD_LAYER], 'LAYER_INVALID', [
      digestOf(Buffer.from('a')),
      digestOf(Buffer.from('b')),
    ]);
    assert.match(error.message, /lists 1 layer\(s\) but the config's rootfs\.diff_ids names 2/);
    const hostile = registry.requests.slice(before_).filter((r) => r.url.includes('team/hostile/blobs/'));
    assert.equal(hostile.length, 1, 'only the config blob was fetched');
  });

  it("moby's convention (the compressed blob's digest as diff ID) still pulls", async () => {
    const probe = await registry.putPlugin('team/moby', 'probe', [GOOD_LAYER]);
    const plugin = await registry.putPlugin('team/moby', '1.0', [GOOD_LAYER], probe.layerDigests);
    const s = await freshStore();
    await s.pull(plugin.remote, { remote: plugin.remote, privileges: VOL_PRIVILEGES });
    assert.equal((await s.list()).length, 1);
  });
});

describe('entries aimed outside the rootfs', () => {
  it('`..` into the decoy beside the store root: LAYER_UNSAFE, the decoy untouched', async () => {
    const error = await refused(
      'escape',
      [[...GOOD_LAYER, { name: '../../../outside/keep', content: 'overwritten' }]],
      'LAYER_UNSAFE',
    );
    assert.equal(error.entry, '../../../outside/keep');
  });

  it('a symlink to the decoy, then a file written through it: LAYER_UNSAFE', async () => {
    const error = await refused(
      'through-link',
      [
        [
          ...GOOD_LAYER,
          { name: 'out', type: 'symlink', linkname: '../../../outside' },
          { name: 'out/keep', content: 'overwritten' },
        ],
      ],
      'LAYER_UNSAFE',
    );
    assert.equal(error.entry, 'out/keep');
  });
});
