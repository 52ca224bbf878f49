/**
 * copytruncate rotation against a real O_APPEND writer, as a running plugin holds its log: after
 * rotation the old lines are in plugin.log.1 and the writer's next line starts the emptied log.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { rotateLogIfLarge } from '../../../../controller/store/embedded/runc-log.ts';

test('a log past its cap is copied to .1 and truncated; the appending writer continues at 0', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'plugctl-log-'));
  const log = join(dir, 'plugin.log');
  const fd = openSync(log, 'a', 0o600);
  try {
    assert.equal(await rotateLogIfLarge(log, 100), false, 'an empty log stays');
    writeSync(fd, 'x'.repeat(99) + '\n');
    assert.equal(await rotateLogIfLarge(log, 100), false, 'at the cap it stays');
    writeSync(fd, 'last line before rotation\n');
    assert.equal(await rotateLogIfLarge(log, 100), true);
    assert.match(await readFile(`${log}.1`, 'utf8'), /last line before rotation\n$/);
    assert.equal((await stat(log)).size, 0);
    writeSync(fd, 'after\n');
    assert.equal(await readFile(log, 'utf8'), 'after\n', 'no hole: O_APPEND writes at the new end');
    assert.equal(await rotateLogIfLarge(join(dir, 'absent.log'), 1), false, 'a missing log is no error');
  } finally {
    closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  }
});
