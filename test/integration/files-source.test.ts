// FileSource against what editors, tools and Kubernetes really do to files: atomic saves, vim's
// backup dance, partial writes, directory moves, ConfigMap `..data` swaps and bursts of writes. Each
// test ends in the state on disk, and checks that no key was ever reported missing on the way (a
// missing key is what prunes a plugin). Also checks that every write and create is notified; how
// fast is measured by bench/file-source.ts. Needs only a local filesystem.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, open, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { FileSource } from '../../controller/sources/files.ts';
import { pluginYaml, sleep, startSource, tempDir, until, versionOf } from '../unit/sources/helpers.ts';
import type { Watched } from '../unit/sources/helpers.ts';
import { DEFAULT_DEADLINE_MS } from '../wait.ts';

/**
 * Longer than chokidar's atomic window (100 ms, the delay of unlink events) plus a batch: after it,
 * a transient disappearance would have been reported.
 */
const QUIET_MS = 300;

let dir = '';
let cleanup: () => Promise<void> = async () => {};
const opened: FileSource[] = [];

async function watchDir(paths: string[] = [dir]): Promise<Watched> {
  const w = await startSource(paths);
  opened.push(w.source);
  return w;
}

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  await cleanup();
});

/** Writes a ConfigMap-style volume the way the kubelet's atomic writer does. */
async function writeConfigMap(
  root: string,
  files: Record<string, string>,
  generation: number,
): Promise<void> {
  const data = join(root, `..2024_01_01_00_00_0${generation}.000000001`);
  await mkdir(data, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(data, name), text);
  // The swap: a new `..data` link renamed over the old one, in one step.
  await symlink(`..2024_01_01_00_00_0${generation}.000000001`, join(root, '..data_tmp'));
  await rename(join(root, '..data_tmp'), join(root, '..data'));
  for (const name of Object.keys(files)) {
    await symlink(`..data/${name}`, join(root, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
  if (generation > 1)
    await rm(join(root, `..2024_01_01_00_00_0${generation - 1}.000000001`), { recursive: true });
}

describe('FileSource with editors and tools', () => {
  test('atomic save (write a temp file, rename it over) changes the key without a disappearance', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    const w = await watchDir();
    for (const temp of ['.a.yaml.tmp', 'a.yaml.tmp.12345', 'a.yaml.new.yaml']) {
      const version = `v-${temp}`;
      await writeFile(join(dir, temp), pluginYaml('a', version));
      await rename(join(dir, temp), join(dir, 'a.yaml'));
      await w.waitFor((s) => versionOf(s, 'a') === version, `the save through ${temp}`);
    }
    await sleep(QUIET_MS);
    assert.deepEqual(w.disappeared(), new Set());
    assert.deepEqual(w.source.snapshot().errors, []);
    assert.equal(w.source.snapshot().documents.get('a')?.origin.file, join(dir, 'a.yaml'));
  });

  test("vim's save (probe 4913, rename to a~ backup, write new, delete backup) changes the key only", async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    const w = await watchDir();
    await writeFile(join(dir, '4913'), '');
    await unlink(join(dir, '4913'));
    await rename(join(dir, 'a.yaml'), join(dir, 'a.yaml~'));
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a', '2'));
    await unlink(join(dir, 'a.yaml~'));
    await w.waitFor((s) => versionOf(s, 'a') === '2', 'the new content');
    await sleep(QUIET_MS);
    assert.deepEqual(w.disappeared(), new Set());
    assert.deepEqual(
      w.notifications.slice(1).map((n) => n.keys),
      [['a']],
    );
  });

  test('a partial write (half, a pause longer than a batch, the rest) ends in the final document', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a') + '---\n' + pluginYaml('b'));
    const w = await watchDir();
    const text = pluginYaml('a', '2') + '---\n' + pluginYaml('b', '2');
    for (const cut of [5, Math.floor(text.length / 3), Math.floor(text.length / 2) + 7]) {
      const version = `cut${cut}`;
      const full = text.replaceAll('"2"', `"${version}"`);
      const handle = await open(join(dir, 'a.yaml'), 'w');
      await handle.write(full.slice(0, cut));
      await sleep(60);
      await handle.write(full.slice(cut));
      await handle.close();
      await w.waitFor(
        (s) => versionOf(s, 'a') === version && versionOf(s, 'b') === version && s.errors.length === 0,
        `the complete file after a cut at ${cut}`,
      );
    }
    await sleep(QUIET_MS);
    assert.deepEqual(w.disappeared(), new Set());
  });

  test('a burst of 50 writes ends in the last content, coalesced into a few notifications', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    const w = await watchDir();
    const began = performance.now();
    for (let i = 1; i <= 50; i++) {
      await writeFile(join(dir, 'a.yaml'), pluginYaml('a', `w${i}`));
      await sleep(2);
    }
    const burstMs = performance.now() - began;
    await w.waitFor((s) => versionOf(s, 'a') === 'w50', 'the last write');
    await sleep(QUIET_MS);
    assert.equal(versionOf(w.source.snapshot(), 'a'), 'w50');
    const count = w.notifications.length - 1;
    // continuous events postpone a batch by at most maxDelayMs (100 ms): one batch per 100 ms of
    // the burst, however long a busy machine made it, and the last one after it
    const bound = Math.ceil(burstMs / 100) + 2;
    assert.ok(
      count >= 1 && count <= Math.min(bound, 49),
      `${count} notifications for 50 writes in ${burstMs.toFixed(0)} ms (at most ${bound})`,
    );
    assert.deepEqual(w.disappeared(), new Set());
  });

  test('a file renamed within the tree keeps its key: no change, no disappearance', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    const w = await watchDir();
    await rename(join(dir, 'a.yaml'), join(dir, 'b.yaml'));
    await w.waitFor((s) => s.documents.get('a')?.origin.file === join(dir, 'b.yaml'), 'the new origin');
    await sleep(QUIET_MS);
    assert.deepEqual(w.notifications.slice(1), []);
    assert.deepEqual(w.source.snapshot().errors, []);
  });

  test('a directory moved out of the tree removes its keys; moved back in, they appear', async () => {
    const outside = await tempDir();
    try {
      await mkdir(join(dir, 'team', 'nested'), { recursive: true });
      await writeFile(join(dir, 'team', 'a.yaml'), pluginYaml('a'));
      await writeFile(join(dir, 'team', 'nested', 'b.yaml'), pluginYaml('b'));
      await writeFile(join(dir, 'c.yaml'), pluginYaml('c'));
      const w = await watchDir();
      assert.deepEqual([...w.source.snapshot().documents.keys()].sort(), ['a', 'b', 'c']);
      await rename(join(dir, 'team'), join(outside.dir, 'team'));
      await w.waitFor((s) => s.documents.size === 1, 'a and b to disappear');
      assert.deepEqual([...w.source.snapshot().documents.keys()], ['c']);
      await rename(join(outside.dir, 'team'), join(dir, 'moved'));
      await w.waitFor((s) => s.documents.size === 3, 'a and b to reappear');
      assert.equal(
        w.source.snapshot().documents.get('b')?.origin.file,
        join(dir, 'moved', 'nested', 'b.yaml'),
      );
      // Edits inside the moved-in directory are watched too.
      await writeFile(join(dir, 'moved', 'nested', 'b.yaml'), pluginYaml('b', '2'));
      await w.waitFor((s) => versionOf(s, 'b') === '2', 'an edit in the moved-in directory');
      assert.deepEqual(w.source.snapshot().errors, []);
    } finally {
      await outside.cleanup();
    }
  });

  test('a directory renamed within the tree keeps its keys without a disappearance', async () => {
    await mkdir(join(dir, 'one'));
    for (let i = 0; i < 20; i++) await writeFile(join(dir, 'one', `p${i}.yaml`), pluginYaml(`p${i}`));
    const w = await watchDir();
    await rename(join(dir, 'one'), join(dir, 'two'));
    await w.waitFor(
      (s) => [...s.documents.values()].every((d) => d.origin.file.startsWith(join(dir, 'two'))),
      'every origin to move',
    );
    await sleep(QUIET_MS);
    assert.equal(w.source.snapshot().documents.size, 20);
    assert.deepEqual(w.disappeared(), new Set());
    assert.deepEqual(w.source.snapshot().errors, []);
  });

  test('a new subdirectory is watched, and so are files created in it later', async () => {
    const w = await watchDir();
    await mkdir(join(dir, 'new', 'deeper'), { recursive: true });
    await writeFile(join(dir, 'new', 'deeper', 'a.yaml'), pluginYaml('a'));
    await w.waitFor((s) => s.documents.has('a'), 'a');
    await writeFile(join(dir, 'new', 'deeper', 'b.yml'), pluginYaml('b'));
    await w.waitFor((s) => s.documents.has('b'), 'b');
  });

  test('a ConfigMap volume: a `..data` swap loads the new content, a dropped key disappears', async () => {
    const cm = join(dir, 'configmap');
    await writeConfigMap(cm, { 'a.yaml': pluginYaml('a'), 'b.yaml': pluginYaml('b') }, 1);
    const w = await watchDir();
    assert.deepEqual([...w.source.snapshot().documents.keys()].sort(), ['a', 'b']);
    assert.equal(w.source.snapshot().documents.get('a')?.origin.file, join(cm, 'a.yaml'));

    await writeConfigMap(cm, { 'a.yaml': pluginYaml('a', '2'), 'b.yaml': pluginYaml('b', '2') }, 2);
    await w.waitFor((s) => versionOf(s, 'a') === '2' && versionOf(s, 'b') === '2', 'the swapped content');

    await writeConfigMap(cm, { 'a.yaml': pluginYaml('a', '3'), 'c.yaml': pluginYaml('c') }, 3);
    await unlink(join(cm, 'b.yaml')); // the kubelet removes links of keys that are gone
    await w.waitFor(
      (s) => versionOf(s, 'a') === '3' && s.documents.has('c') && !s.documents.has('b'),
      'the third version',
    );
    await sleep(QUIET_MS);
    assert.deepEqual(w.disappeared(), new Set(['b']));
    assert.deepEqual(w.source.snapshot().errors, []);
  });

  test('a watched file given by path survives atomic saves and deletion', async () => {
    const file = join(dir, 'plugins.yaml');
    await writeFile(file, pluginYaml('a'));
    const w = await watchDir([file]);
    await writeFile(join(dir, '.tmp'), pluginYaml('a', '2'));
    await rename(join(dir, '.tmp'), file);
    await w.waitFor((s) => versionOf(s, 'a') === '2', 'the atomic save');
    await writeFile(file, pluginYaml('a', '3'));
    await w.waitFor((s) => versionOf(s, 'a') === '3', 'an edit after the save');
    await unlink(file);
    await w.waitFor((s) => s.documents.size === 0 && s.errors[0]?.code === 'PATH_NOT_FOUND', 'the deletion');
    await writeFile(file, pluginYaml('a', '4'));
    await w.waitFor((s) => versionOf(s, 'a') === '4' && s.errors.length === 0, 'the file to return');
  });

  test('the watched directory itself removed and recreated', async () => {
    const root = join(dir, 'plugins.d');
    await mkdir(root);
    await writeFile(join(root, 'a.yaml'), pluginYaml('a'));
    const w = await watchDir([root]);
    await rm(root, { recursive: true });
    await w.waitFor((s) => s.documents.size === 0 && s.errors[0]?.code === 'PATH_NOT_FOUND', 'the removal');
    await mkdir(root);
    await writeFile(join(root, 'b.yaml'), pluginYaml('b'));
    await w.waitFor((s) => s.documents.has('b') && s.errors.length === 0, 'the new directory to load');
    await writeFile(join(root, 'b.yaml'), pluginYaml('b', '2'));
    await w.waitFor((s) => versionOf(s, 'b') === '2', 'an edit in the new directory');
  });

  test('emptying a file withdraws its documents only after the grace period', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    const w = await watchDir();
    const emptied = Date.now();
    await writeFile(join(dir, 'a.yaml'), '');
    await w.waitFor((s) => !s.documents.has('a'), 'a to be withdrawn');
    assert.ok(Date.now() - emptied >= 140, `withdrawn after ${Date.now() - emptied} ms`);
  });
});

describe('FileSource lifecycle', () => {
  test('close() leaves nothing running: a process that closes its source exits', async () => {
    const files = fileURLToPath(new URL('../../controller/sources/files.ts', import.meta.url));
    const script = `
      import { writeFile } from 'node:fs/promises';
      import { join } from 'node:path';
      import { pino } from 'pino';
      import { FileSource } from ${JSON.stringify(files)};
      const dir = process.argv[1];
      const source = new FileSource({ paths: [dir], logger: pino({ level: 'silent' }) });
      await source.start();
      const changed = new Promise((done) => source.onChange(done));
      await writeFile(join(dir, 'a.yaml'), ${JSON.stringify(pluginYaml('a'))});
      await changed;
      await writeFile(join(dir, 'a.yaml'), '');  // arms the empty-file recheck timer too
      await new Promise((done) => setTimeout(done, 40));
      await source.close();
      console.log('closed');
    `;
    // the process must exit by itself (a timer or watcher left running would keep it alive):
    // execFile kills it, and so fails the test, after the deadline
    const { stdout } = await new Promise<{ stdout: string }>((done, fail) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script, dir],
        { cwd: fileURLToPath(new URL('../..', import.meta.url)), timeout: DEFAULT_DEADLINE_MS },
        (error, out) => (error ? fail(error) : done({ stdout: out })),
      );
    });
    assert.equal(stdout.trim(), 'closed');
  });
});

describe('FileSource notifies every change', () => {
  test('each of 100 writes and 20 creates is notified with its key', async () => {
    const files = 20;
    for (let i = 0; i < files; i++) await writeFile(join(dir, `p${i}.yaml`), pluginYaml(`p${i}`));
    const w = await watchDir();
    let last: { key: string; seen: boolean } | undefined;
    w.source.onChange((keys) => {
      if (last !== undefined && keys.has(last.key)) last.seen = true;
    });
    // one change at a time, so that each notification belongs to one write (bench/file-source.ts
    // measures how long each takes)
    for (let i = 0; i < 100; i++) {
      const probe = { key: `p${i % files}`, seen: false };
      last = probe;
      await writeFile(join(dir, `${probe.key}.yaml`), pluginYaml(probe.key, `n${i}`));
      await until(() => probe.seen, `the notification for write ${i}`);
      assert.equal(versionOf(w.source.snapshot(), probe.key), `n${i}`);
    }
    for (let i = 0; i < 20; i++) {
      const probe = { key: `new${i}`, seen: false };
      last = probe;
      await writeFile(join(dir, `${probe.key}.yaml`), pluginYaml(probe.key));
      await until(() => probe.seen, `the notification for create ${i}`);
    }
    assert.equal(w.source.snapshot().documents.size, files + 20);
    assert.deepEqual(w.disappeared(), new Set());
  });
});
