/**
 * The embedded store's building blocks: the root lock file (live holder refused, stale holder taken
 * over), the GC reader-writer lock, the keyed mutex, the restart backoff (fake clock), the content
 * store's commit rules and the GC's idea of what is referenced.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { parsePluginConfig } from '../../../../controller/plugin/config.ts';
import { ContentStore } from '../../../../controller/store/embedded/content.ts';
import { EmbeddedStoreError } from '../../../../controller/store/embedded/errors.ts';
import { collectGarbage } from '../../../../controller/store/embedded/gc.ts';
import { StoreLayout, newStoredPlugin } from '../../../../controller/store/embedded/layout.ts';
import { acquireStoreLock, holderAlive } from '../../../../controller/store/embedded/lock.ts';
import { KeyedMutex, ReadWriteLock } from '../../../../controller/store/embedded/rwlock.ts';
import { RestartSupervisor } from '../../../../controller/store/embedded/supervise.ts';
import { FakeClock, settle } from '../../runtime/fake-clock.ts';
import { tempDir } from './helpers.ts';

let dir: { path: string; remove: () => Promise<void> };
beforeEach(async () => {
  dir = await tempDir('primitives');
});
afterEach(async () => {
  await dir.remove();
});

/** The PID of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok(child.pid !== undefined);
  return child.pid;
}

describe('root lock', () => {
  it('refuses a second holder with STORE_LOCKED naming the PID, and frees on release', async () => {
    const path = join(dir.path, 'plugctl.lock');
    const first = await acquireStoreLock(path);
    await assert.rejects(
      acquireStoreLock(path),
      (error: unknown) =>
        error instanceof EmbeddedStoreError &&
        error.code === 'STORE_LOCKED' &&
        error.kind === 'stalled' &&
        error.message.includes(`process ${process.pid}`),
    );
    await first.release();
    const second = await acquireStoreLock(path);
    await second.release();
    assert.deepEqual(await readdir(dir.path), [], 'no lock or temp file left');
  });

  it('takes over a lock whose holder died, or whose PID now belongs to a later process', async () => {
    const path = join(dir.path, 'plugctl.lock');
    await writeFile(path, JSON.stringify({ pid: await deadPid(), token: 'dead' }));
    const taken = await acquireStoreLock(path);
    assert.equal(JSON.parse(await readFile(path, 'utf8')).pid, process.pid);
    await taken.release();

    // our own PID, but a different start time: the PID was reused
    await writeFile(path, JSON.stringify({ pid: process.pid, start: '1', token: 'reused' }));
    assert.equal(await holderAlive({ pid: process.pid, start: '1', token: 'reused' }), false);
    const again = await acquireStoreLock(path);
    await again.release();

    await writeFile(path, 'not json');
    const corrupt = await acquireStoreLock(path);
    await corrupt.release();
  });

  it('release does not delete a lock another process took meanwhile', async () => {
    const path = join(dir.path, 'plugctl.lock');
    const mine = await acquireStoreLock(path);
    await writeFile(path, JSON.stringify({ pid: 1, token: 'someone-else' }));
    await mine.release();
    assert.match(await readFile(path, 'utf8'), /someone-else/);
  });
});

describe('ReadWriteLock', () => {
  it('lets readers share, makes the writer wait for them, and queues new readers behind a waiting writer', async () => {
    const lock = new ReadWriteLock();
    const order: string[] = [];
    let releaseReader!: () => void;
    const reader = lock.shared(async () => {
      order.push('reader1 in');
      await new Promise<void>((resolve) => (releaseReader = resolve));
      order.push('reader1 out');
    });
    const reader2 = lock.shared(async () => {
      order.push('reader2 in');
    });
    await settle();
    const writer = lock.exclusive(async () => {
      order.push('writer');
    });
    const reader3 = lock.shared(async () => {
      order.push('reader3 in');
    });
    await settle();
    assert.deepEqual(order, ['reader1 in', 'reader2 in']);
    releaseReader();
    await Promise.all([reader, reader2, writer, reader3]);
    assert.deepEqual(order, ['reader1 in', 'reader2 in', 'reader1 out', 'writer', 'reader3 in']);
  });

  it('releases on errors', async () => {
    const lock = new ReadWriteLock();
    await assert.rejects(lock.exclusive(async () => Promise.reject(new Error('x'))));
    await lock.shared(async () => undefined);
    assert.equal(lock.readers, 0);
  });
});

describe('KeyedMutex', () => {
  it('serialises one key and lets other keys run', async () => {
    const mutex = new KeyedMutex();
    const order: string[] = [];
    let release!: () => void;
    const a1 = mutex.run('a', async () => {
      order.push('a1');
      await new Promise<void>((resolve) => (release = resolve));
    });
    const a2 = mutex.run('a', async () => {
      order.push('a2');
    });
    const b = mutex.run('b', async () => {
      order.push('b');
    });
    await b;
    assert.deepEqual(order, ['a1', 'b']);
    release();
    await Promise.all([a1, a2]);
    assert.deepEqual(order, ['a1', 'b', 'a2']);
  });
});

describe('RestartSupervisor', () => {
  it('backs off 1 s doubling to 60 s, and resets after a stable minute', async () => {
    const clock = new FakeClock(0);
    const attempts: number[] = [];
    let succeed = false;
    const supervisor = new RestartSupervisor(
      clock,
      { initialMs: 1000, maxMs: 60_000, stableMs: 60_000 },
      async () => {
        attempts.push(clock.now());
        if (!succeed) throw new Error('still broken');
        return true;
      },
    );
    supervisor.started('p');
    assert.equal(supervisor.crashed('p'), 1000);
    // each failed restart schedules the next one: 1, 2, 4, 8, 16, 32, 60, 60 seconds later
    for (const delay of [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]) {
      const before = attempts.length;
      clock.advance(delay - 1);
      await settle();
      assert.equal(attempts.length, before, `not before ${delay} ms`);
      clock.advance(1);
      await settle();
      assert.equal(attempts.length, before + 1, `after ${delay} ms`);
    }
    succeed = true;
    clock.advance(60_000);
    await settle();
    assert.equal(attempts.length, 9);
    assert.equal(supervisor.pending('p'), false);
    clock.advance(60_000); // stable for a minute
    assert.equal(supervisor.crashed('p'), 1000, 'reset after a stable minute');
    supervisor.forget('p');
    assert.equal(clock.pending(), 0);
    supervisor.close();
  });

  it('stops when the store says the plugin should not run', async () => {
    const clock = new FakeClock(0);
    let calls = 0;
    const supervisor = new RestartSupervisor(
      clock,
      { initialMs: 10, maxMs: 100, stableMs: 1000 },
      async () => {
        calls++;
        return false;
      },
    );
    supervisor.crashed('p');
    clock.advance(10);
    await settle();
    clock.advance(1000);
    await settle();
    assert.equal(calls, 1);
    assert.equal(clock.pending(), 0);
  });
});

describe('content store and GC', () => {
  it('commits verified content read-only under its digest, and GC deletes only unreferenced blobs', async () => {
    const layout = new StoreLayout(dir.path);
    await mkdir(layout.tmp, { recursive: true });
    const content = new ContentStore(layout);
    const config = await content.put(Buffer.from('{"config":1}'));
    const layer = await content.put(Buffer.from('layer bytes'));
    const manifestOnlyLayer = await content.put(Buffer.from('listed only in the manifest'));
    const manifest = await content.put(
      Buffer.from(JSON.stringify({ config: { digest: config }, layers: [{ digest: manifestOnlyLayer }] })),
    );
    const orphan = await content.put(Buffer.from('nobody wants me'));
    assert.equal((await stat(content.path(config))).mode & 0o777, 0o444);
    await assert.rejects(content.put(Buffer.from('x'), `sha256:${'0'.repeat(64)}`), /hashes to/);
    assert.deepEqual(await readdir(layout.tmp), [], 'no ingest left behind');

    const plugin = newStoredPlugin({
      id: 'b'.repeat(64),
      name: 'p:1',
      reference: 'p:1',
      config: parsePluginConfig({}, 'r/p'),
      configDigest: config,
      manifestDigest: manifest,
      // like a plugin dockerd pulled: gzip layers are missing from Blobsums
      blobsums: [layer],
    });
    const result = await collectGarbage(content, [plugin]);
    assert.deepEqual(result.digests, [orphan]);
    assert.equal(result.removed, 1);
    assert.equal(result.bytes, 'nobody wants me'.length);
    assert.equal(result.kept, 4);
    assert.deepEqual(
      (await content.list()).map((b) => b.digest).sort(),
      [config, layer, manifestOnlyLayer, manifest].sort(),
    );
    const none = await collectGarbage(content, []);
    assert.equal(none.removed, 4);
  });
});
