/**
 * The streamed layer (pull.ts pumpLayer) against real files: the rootfs and the ingest file get
 * exactly the layer's bytes although the pump reuses a few buffers; it resolves only after the
 * source ended (the registry client's stream ends only when the digest matched); and every
 * failure (source, hostile entry, ingest) rejects once the files in flight have settled. Also the
 * ingest's early syncs and the parallel writer's release callbacks the pump relies on.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ContentStore } from '../../../../controller/store/embedded/content.ts';
import type { Ingest } from '../../../../controller/store/embedded/content.ts';
import { LayerError } from '../../../../controller/store/embedded/errors.ts';
import { openLayer } from '../../../../controller/store/embedded/extract.ts';
import { ParallelWriter } from '../../../../controller/store/embedded/fsutil.ts';
import { StoreLayout } from '../../../../controller/store/embedded/layout.ts';
import { pumpLayer } from '../../../../controller/store/embedded/pull.ts';
import { tarOf, tempDir, tgzOf, tree } from './helpers.ts';

let dir: { path: string; remove: () => Promise<void> };
let content: ContentStore;
let rootfs: string;

beforeEach(async () => {
  dir = await tempDir('pull');
  const layout = new StoreLayout(join(dir.path, 'root'));
  await mkdir(layout.tmp, { recursive: true });
  content = new ContentStore(layout);
  rootfs = join(dir.path, 'rootfs');
  await mkdir(rootfs);
});

afterEach(async () => {
  await dir.remove();
});

/**
 * A source like the verified registry stream: `bytes` in network-sized chunks (fresh buffers each
 * time), then `end` or the error `fail`; `hold` delays the end until it resolves.
 */
function source(bytes: Uint8Array, options: { fail?: Error; hold?: Promise<void>; chunk?: number } = {}) {
  const size = options.chunk ?? 64 * 1024;
  let offset = 0;
  return new Readable({
    read() {
      if (offset < bytes.byteLength) {
        this.push(Buffer.from(bytes.subarray(offset, offset + size)));
        offset += size;
        return;
      }
      const finish = (): void => {
        if (options.fail !== undefined) this.destroy(options.fail);
        else this.push(null);
      };
      if (options.hold !== undefined) void options.hold.then(finish);
      else finish();
    },
  });
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function pump(layer: Buffer, options: Parameters<typeof source>[1] = {}): Promise<Ingest> {
  const ingest = await content.ingest();
  const sink = await openLayer(rootfs, { layer: 'sha256:test' });
  try {
    await pumpLayer(source(layer, options), ingest, sink);
    await ingest.finish();
  } catch (error) {
    await ingest.abort();
    throw error;
  }
  return ingest;
}

describe('pumpLayer', () => {
  it('writes the layer to the rootfs and the blob to the ingest file, byte for byte', async () => {
    // more megabytes than the pump has buffers, and chunks that straddle its buffer boundaries
    const big = randomBytes(9 * 1024 * 1024 + 4321);
    const layer = await tgzOf([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/plugind', content: 'x'.repeat(1000), mode: 0o755 },
      { name: 'data/random.bin', content: big },
      { name: 'etc/link', type: 'symlink', linkname: '../bin/plugind' },
    ]);
    for (const chunk of [64 * 1024, 1000 * 1000 + 7]) {
      const ingest = await pump(layer, { chunk });
      assert.equal(sha256(await readFile(ingest.path)), sha256(layer), 'the ingest file is the blob');
      assert.equal(sha256(await readFile(join(rootfs, 'data/random.bin'))), sha256(big));
      assert.equal((await stat(join(rootfs, 'bin/plugind'))).mode & 0o777, 0o755);
      assert.deepEqual(await tree(rootfs), [
        'd bin',
        'f bin/plugind',
        'd data',
        'f data/random.bin',
        'd etc',
        'l etc/link -> ../bin/plugind',
      ]);
      await ingest.abort();
    }
  });

  it('unpacks plain tar layers too, although their chunks are handed on (copied) not inflated', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 5);
    const layer = await tarOf([{ name: 'blob', content: big }]);
    const ingest = await pump(layer);
    assert.equal(sha256(await readFile(join(rootfs, 'blob'))), sha256(big));
    assert.equal(sha256(await readFile(ingest.path)), sha256(layer));
  });

  it('resolves only after the source ended: unverified content is never reported applied', async () => {
    const layer = await tgzOf([{ name: 'f', content: randomBytes(2 * 1024 * 1024) }]);
    let release: () => void = () => undefined;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const ingest = await content.ingest();
    const sink = await openLayer(rootfs, { layer: 'sha256:test' });
    let settled = false;
    const pumped = pumpLayer(source(layer, { hold }), ingest, sink).finally(() => (settled = true));
    for (let i = 0; i < 200; i++) await tick();
    assert.equal(settled, false, 'every byte is in, but the source has not ended');
    release();
    await pumped;
    await ingest.abort();
  });

  it('passes a source error at the end (a digest mismatch) through, after the files settled', async () => {
    const layer = await tgzOf([{ name: 'f', content: randomBytes(3 * 1024 * 1024) }]);
    const mismatch = Object.assign(new Error('blob hashes to something else'), { code: 'DIGEST_MISMATCH' });
    await assert.rejects(pump(layer, { fail: mismatch }), (error: unknown) => error === mismatch);
  });

  it('stops the download on a hostile entry and rejects with LAYER_UNSAFE', async () => {
    const layer = await tgzOf([
      { name: 'ok', content: randomBytes(2 * 1024 * 1024) },
      { name: '../escape', content: 'x' },
      { name: 'after', content: randomBytes(4 * 1024 * 1024) },
    ]);
    const input = source(layer);
    const ingest = await content.ingest();
    const sink = await openLayer(rootfs, { layer: 'sha256:hostile' });
    await assert.rejects(
      pumpLayer(input, ingest, sink),
      (error: unknown) => error instanceof LayerError && error.code === 'LAYER_UNSAFE',
    );
    assert.equal(input.destroyed, true, 'the download was stopped');
    await ingest.abort();
    assert.deepEqual(await tree(join(dir.path)), ['d root', 'd root/tmp', 'd rootfs', 'f rootfs/ok']);
  });

  it('rejects when the ingest file cannot be written', async () => {
    const layer = await tgzOf([{ name: 'f', content: randomBytes(3 * 1024 * 1024) }]);
    const ingest = await content.ingest();
    const broken = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    // what a failed write looks like to the pump: the chunk is released, `failure` is set
    Object.defineProperty(ingest, 'queue', {
      value: (_chunk: Uint8Array, written?: () => void) => written?.(),
    });
    Object.defineProperty(ingest, 'failure', { get: () => broken });
    const sink = await openLayer(rootfs, { layer: 'sha256:test' });
    await assert.rejects(pumpLayer(source(layer), ingest, sink), (error: unknown) => error === broken);
    await ingest.abort();
  });
});

describe('Ingest', () => {
  it('syncs in the background as it grows, and finish() is one promise however often it is called', async () => {
    const ingest = await content.ingest();
    const data = randomBytes(20 * 1024 * 1024);
    for (let offset = 0; offset < data.byteLength; offset += 1024 * 1024) {
      await ingest.write(data.subarray(offset, offset + 1024 * 1024));
    }
    const first = ingest.finish();
    assert.equal(ingest.finish(), first);
    await first;
    assert.equal(sha256(await readFile(ingest.path)), sha256(data));
    await ingest.abort();
    await assert.rejects(stat(ingest.path), /ENOENT/);
  });

  it('abort() waits for a finish in progress and deletes the file', async () => {
    const ingest = await content.ingest();
    ingest.queue(randomBytes(9 * 1024 * 1024));
    void ingest.finish();
    await ingest.abort();
    await assert.rejects(stat(ingest.path), /ENOENT/);
  });
});

describe('ParallelWriter.queue', () => {
  it('calls `written` once per chunk, after its bytes are in the file', async () => {
    const path = join(dir.path, 'out');
    const handle = await open(path, 'w');
    const writer = new ParallelWriter(handle);
    const chunks = Array.from({ length: 12 }, () => randomBytes(256 * 1024));
    const seen: number[] = [];
    chunks.forEach((chunk, index) => writer.queue(chunk, () => seen.push(index)));
    writer.queue(new Uint8Array(0), () => seen.push(-1));
    await writer.flush();
    await handle.close();
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      [-1, ...chunks.map((_, index) => index)],
    );
    assert.equal(sha256(await readFile(path)), sha256(Buffer.concat(chunks)));
  });
});
