import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { writeFileAtomic } from '../../../controller/runtime/atomic-file.ts';

describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-atomic-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('concurrent writers in one directory never take each other’s temp file', async () => {
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        writeFileAtomic(join(dir, i % 2 === 0 ? 'a.json' : 'b.json'), `${i}\n`),
      ),
    );
    assert.deepEqual((await readdir(dir)).sort(), ['a.json', 'b.json']);
  });

  test('gives the file its exact mode, whatever the umask', async () => {
    const previous = process.umask(0o077);
    try {
      await writeFileAtomic(join(dir, 'status.json'), '{}\n', { mode: 0o644 });
    } finally {
      process.umask(previous);
    }
    assert.equal((await stat(join(dir, 'status.json'))).mode & 0o777, 0o644);
    await writeFileAtomic(join(dir, 'secret'), 'x');
    assert.equal((await stat(join(dir, 'secret'))).mode & 0o777, 0o600, 'the default is 0600');
  });

  test('leaves no temp file and the old content when the rename fails', async () => {
    await mkdir(join(dir, 'taken'));
    await assert.rejects(writeFileAtomic(join(dir, 'taken'), 'new'));
    assert.deepEqual(await readdir(dir), ['taken'], 'only the directory that was in the way');
  });

  test('creates a missing directory only when asked to', async () => {
    const nested = join(dir, 'state', 'nested', 'inventory.json');
    await assert.rejects(writeFileAtomic(nested, 'x'), { code: 'ENOENT' });
    await writeFileAtomic(nested, 'x', { createDir: true });
    assert.equal(await readFile(nested, 'utf8'), 'x');
  });
});
