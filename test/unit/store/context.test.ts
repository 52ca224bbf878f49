/**
 * Build contexts read without building: the digest follows content (not modification times), a
 * tar of the same tree is read too, and a context that is not one is refused naming what is missing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { inspectContext } from '../../../controller/store/context.ts';
import { rejectsWith } from '../../errors.ts';

const CONFIG = {
  Description: 'context test',
  Documentation: '',
  Entrypoint: ['/bin/plugind'],
  Interface: { Types: ['docker.volumedriver/1.0'], Socket: 'p.sock' },
  Network: { Type: 'host' },
  Linux: { Capabilities: ['CAP_SYS_ADMIN'] },
};

let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'plugctl-context-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function makeContext(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(join(dir, 'rootfs', 'bin'), { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(CONFIG));
  await writeFile(join(dir, 'rootfs', 'bin', 'plugind'), 'binary');
  return dir;
}

test('a directory: privileges from its config, and a digest that follows content only', async () => {
  const dir = await makeContext('dir');
  const info = await inspectContext(dir);
  assert.equal(info.context, dir);
  assert.match(info.digest, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(
    info.privileges.map((p) => [p.name, p.value]),
    [
      ['network', ['host']],
      ['capabilities', ['CAP_SYS_ADMIN']],
    ],
  );
  await utimes(join(dir, 'rootfs', 'bin', 'plugind'), new Date(2001, 1, 1), new Date(2001, 1, 1));
  assert.equal((await inspectContext(dir)).digest, info.digest, 'a fresh checkout changes nothing');
  const copy = await makeContext('copy');
  assert.equal((await inspectContext(copy)).digest, info.digest, 'the same tree elsewhere');
  await writeFile(join(dir, 'rootfs', 'bin', 'plugind'), 'binary v2');
  assert.notEqual((await inspectContext(dir)).digest, info.digest, 'a changed file');
});

test('a gzip tar of a context is read too', async () => {
  const dir = await makeContext('tarred');
  const tarball = join(work, 'ctx.tar.gz');
  execFileSync('tar', ['-czf', tarball, '-C', dir, 'config.json', 'rootfs']);
  const info = await inspectContext(tarball);
  assert.equal(info.config.Description, 'context test');
  assert.match(info.digest, /^sha256:/);
});

test('not a context: missing path, no config.json, no rootfs/, invalid config', async () => {
  await rejectsWith(inspectContext(join(work, 'absent')), 'CONTEXT_INVALID', 'stalled');
  const empty = join(work, 'empty');
  await mkdir(empty);
  const noConfig = await rejectsWith(inspectContext(empty), 'CONTEXT_INVALID', 'stalled');
  assert.match(noConfig.message, /empty: has no config\.json/);
  await writeFile(join(empty, 'config.json'), JSON.stringify(CONFIG));
  assert.match((await rejectsWith(inspectContext(empty), 'CONTEXT_INVALID')).message, /no rootfs\//);
  await mkdir(join(empty, 'rootfs'));
  await writeFile(join(empty, 'config.json'), '{"Entrypoint": 3}');
  assert.match(
    (await rejectsWith(inspectContext(empty), 'CONTEXT_INVALID')).message,
    /not a valid plugin config/,
  );
});
