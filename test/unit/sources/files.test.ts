// FileSource on real temp directories: what the initial scan guarantees (nothing is "synced" before
// every file has been read), what a snapshot holds, and how bad input is kept from removing documents.
// Editor and filesystem behaviours (atomic saves, moves, ConfigMap swaps, bursts, latency) are in
// test/integration/files-source.test.ts.
import assert from 'node:assert/strict';
import { mkdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { FileSource } from '../../../controller/sources/files.ts';
import { formatLoadError } from '../../../controller/api/load.ts';
import { FakeClock } from '../runtime/fake-clock.ts';
import { pluginYaml, silentLogger, sleep, startSource, tempDir, until, versionOf } from './helpers.ts';
import type { Watched } from './helpers.ts';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
const open: FileSource[] = [];

async function watchDir(paths: string[] = [dir]): Promise<Watched> {
  const w = await startSource(paths);
  open.push(w.source);
  return w;
}

function errorLines(w: Watched): string[] {
  return w.source.snapshot().errors.map(formatLoadError);
}

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  await cleanup();
});

describe('FileSource initial scan', () => {
  test('is not synced before start() and is synced, with every file read, when start() resolves', async () => {
    const n = 1000;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        mkdir(join(dir, `d${i % 10}`), { recursive: true }).then(() =>
          writeFile(join(dir, `d${i % 10}`, `p${i}.yaml`), pluginYaml(`p${i}`)),
        ),
      ),
    );
    const source = new FileSource({ paths: [dir], logger: silentLogger });
    open.push(source);
    const seen: number[] = [];
    source.onChange((keys) => seen.push(keys.size));
    assert.equal(source.snapshot().synced, false);
    assert.equal(source.snapshot().generation, 0);
    const started = source.start();
    assert.equal(source.snapshot().synced, false);
    await started;
    const snapshot = source.snapshot();
    assert.equal(snapshot.synced, true);
    assert.equal(snapshot.documents.size, n);
    assert.deepEqual(snapshot.errors, []);
    assert.equal(snapshot.generation, 1);
    // One notification for the whole initial scan, carrying every key.
    assert.deepEqual(seen, [n]);
  });

  test('an empty directory is synced with no documents and no errors', async () => {
    const w = await watchDir();
    assert.equal(w.source.snapshot().synced, true);
    assert.equal(w.source.snapshot().documents.size, 0);
    assert.deepEqual(w.source.snapshot().errors, []);
  });

  test('reads only *.yaml and *.yml, skips dot entries and editor temp files', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    await writeFile(join(dir, 'b.yml'), pluginYaml('b'));
    await writeFile(join(dir, 'c.json'), pluginYaml('c'));
    await writeFile(join(dir, '.d.yaml'), pluginYaml('d'));
    await writeFile(join(dir, 'e.yaml~'), pluginYaml('e'));
    await writeFile(join(dir, '.e.yaml.swp'), pluginYaml('e2'));
    await writeFile(join(dir, '4913'), pluginYaml('f'));
    await mkdir(join(dir, '.git'));
    await writeFile(join(dir, '.git', 'g.yaml'), pluginYaml('g'));
    const w = await watchDir();
    assert.deepEqual([...w.source.snapshot().documents.keys()].sort(), ['a', 'b']);
  });

  test('a file named on the command line is read whatever its name', async () => {
    const file = join(dir, 'plugins.conf');
    await writeFile(file, pluginYaml('a'));
    const w = await watchDir([file]);
    assert.deepEqual([...w.source.snapshot().documents.keys()], ['a']);
    assert.equal(w.source.snapshot().documents.get('a')?.origin.file, file);
  });

  test('a missing path is an error, and its documents load when it appears', async () => {
    const missing = join(dir, 'later');
    const w = await watchDir([missing]);
    assert.equal(w.source.snapshot().synced, true);
    assert.deepEqual(
      w.source.snapshot().errors.map((e) => [e.code, e.origin.file]),
      [['PATH_NOT_FOUND', missing]],
    );
    await mkdir(missing);
    await writeFile(join(missing, 'a.yaml'), pluginYaml('a'));
    await w.waitFor((s) => s.documents.has('a') && s.errors.length === 0, 'the new path to load');
  });

  test('a file reached through a symlink and directly is loaded once', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    await symlink('a.yaml', join(dir, 'link.yaml'));
    const w = await watchDir();
    assert.deepEqual([...w.source.snapshot().documents.keys()], ['a']);
    assert.deepEqual(errorLines(w), []);
    assert.equal(w.source.snapshot().documents.get('a')?.origin.file, join(dir, 'a.yaml'));
  });

  test('the snapshot is one immutable object per generation', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    const w = await watchDir();
    const first = w.source.snapshot();
    assert.equal(w.source.snapshot(), first);
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a', '2'));
    await w.waitFor((s) => versionOf(s, 'a') === '2', 'the edit');
    assert.equal(versionOf(first, 'a'), '1');
    assert.equal(w.source.snapshot().generation, first.generation + 1);
  });

  test('needs a path, starts once, and close() is idempotent', async () => {
    assert.throws(() => new FileSource({ paths: [], logger: silentLogger }), /at least one path/);
    const w = await watchDir();
    await assert.rejects(w.source.start(), /started once/);
    await w.source.close();
    await w.source.close();
  });

  test('closing before the initial scan completes resolves start() unsynced', async () => {
    const source = new FileSource({ paths: [dir], logger: silentLogger });
    const started = source.start();
    await source.close();
    await started;
    assert.equal(source.snapshot().synced, false);
  });
});

describe('FileSource changes', () => {
  test('reports added, modified and deleted keys; an identical rewrite reports nothing', async () => {
    const w = await watchDir();
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    await w.waitFor((s) => s.documents.has('a'), 'a to appear');
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a', '2'));
    await w.waitFor((s) => versionOf(s, 'a') === '2', 'a to change');
    await writeFile(join(dir, 'b.yaml'), pluginYaml('b'));
    await w.waitFor((s) => s.documents.has('b'), 'b to appear');
    const before = w.notifications.length;
    const generation = w.source.snapshot().generation;
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a', '2')); // same content
    await unlink(join(dir, 'b.yaml'));
    await w.waitFor((s) => !s.documents.has('b'), 'b to disappear');
    assert.deepEqual(
      w.notifications.map((n) => n.keys),
      [['a'], ['a'], ['b'], ['b']],
    );
    assert.equal(w.notifications.length, before + 1);
    assert.equal(w.source.snapshot().generation, generation + 1);
  });

  test('a file that stops parsing keeps its documents and reports the error until fixed', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a') + '---\n' + pluginYaml('b'));
    const w = await watchDir();
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a', '2') + 'spec: [unclosed\n');
    await w.waitFor((s) => s.errors.length > 0, 'the syntax error');
    const s = w.source.snapshot();
    assert.deepEqual([...s.documents.keys()].sort(), ['a', 'b']);
    assert.equal(versionOf(s, 'a'), '1');
    assert.ok(s.errors.every((e) => e.code === 'YAML_SYNTAX' && e.origin.file === join(dir, 'a.yaml')));
    // An errors-only change still notifies (with no keys), so the controller can re-enable pruning.
    assert.deepEqual(w.notifications.at(-1)?.keys, []);
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a', '3'));
    await w.waitFor((x) => x.errors.length === 0 && !x.documents.has('b'), 'the fix');
    assert.equal(versionOf(w.source.snapshot(), 'a'), '3');
  });

  test('a broken file that never parsed contributes errors and no documents', async () => {
    await writeFile(join(dir, 'a.yaml'), 'metadata: [\n');
    const w = await watchDir();
    assert.equal(w.source.snapshot().documents.size, 0);
    assert.equal(w.source.snapshot().errors[0]?.code, 'YAML_SYNTAX');
  });

  test('in a file of several documents, valid ones update and an invalid one keeps its last valid version', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a') + '---\n' + pluginYaml('b'));
    const w = await watchDir();
    const brokenB = pluginYaml('b', '2').replace('  remote: example/b:1.0\n', '  remote: 42\n');
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a', '2') + '---\n' + brokenB);
    await w.waitFor((s) => versionOf(s, 'a') === '2', 'a to update');
    const s = w.source.snapshot();
    assert.equal(versionOf(s, 'b'), '1');
    assert.equal(s.errors.length, 1);
    assert.equal(s.errors[0]?.path, 'spec.remote');
    assert.deepEqual(w.notifications.at(-1)?.keys, ['a']);
  });

  test('an invalid new document is only an error; removing a document from a file removes its key', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a') + '---\n' + pluginYaml('b'));
    const w = await watchDir();
    await writeFile(
      join(dir, 'a.yaml'),
      pluginYaml('a') + '---\nkind: DockerPlugin\nmetadata: { name: c }\n',
    );
    await w.waitFor((s) => !s.documents.has('b') && s.errors.length > 0, 'b removed, c rejected');
    assert.deepEqual([...w.source.snapshot().documents.keys()], ['a']);
  });

  test('a duplicate across files applies neither and names both places; removing one applies the other', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('x', '1'));
    const w = await watchDir();
    await writeFile(join(dir, 'b.yaml'), pluginYaml('x', '2', 'example/other:1.0'));
    await w.waitFor((s) => !s.documents.has('x'), 'x to be withdrawn');
    const lines = errorLines(w);
    assert.equal(lines.length, 1);
    assert.match(
      lines[0] as string,
      new RegExp(`^${join(dir, 'b.yaml')}:4:9: metadata.name: duplicate name "x"`),
    );
    assert.match(lines[0] as string, new RegExp(`also declared at ${join(dir, 'a.yaml')}:4:9`));
    await unlink(join(dir, 'a.yaml'));
    await w.waitFor((s) => versionOf(s, 'x') === '2' && s.errors.length === 0, 'b.yaml to apply');
  });

  test('two files claiming one local plugin name apply neither', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a', '1', 'example/same:1.0'));
    await writeFile(join(dir, 'b.yaml'), pluginYaml('b', '1', 'example/same:1.0'));
    const w = await watchDir();
    assert.equal(w.source.snapshot().documents.size, 0);
    assert.deepEqual(
      w.source.snapshot().errors.map((e) => e.code),
      ['DUPLICATE_LOCAL_NAME'],
    );
  });

  test('a document moved to another file with the same content is not a change', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    const w = await watchDir();
    const generation = w.source.snapshot().generation;
    await rename(join(dir, 'a.yaml'), join(dir, 'renamed.yaml'));
    await w.waitFor(
      (s) => s.documents.get('a')?.origin.file === join(dir, 'renamed.yaml'),
      'the origin to follow the rename',
    );
    await w.waitFor((s) => s.generation > generation, 'a new generation');
    assert.deepEqual(w.notifications.slice(1), []);
    assert.deepEqual(w.disappeared(), new Set());
  });

  test('a document cut from one file and pasted into another is neither a change nor a disappearance', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('x') + '---\n' + pluginYaml('y'));
    const w = await watchDir();
    await writeFile(join(dir, 'a.yaml'), pluginYaml('y'));
    await writeFile(join(dir, 'b.yaml'), pluginYaml('x'));
    await w.waitFor(
      (s) => s.documents.get('x')?.origin.file === join(dir, 'b.yaml') && s.errors.length === 0,
      'x to be declared by b.yaml',
    );
    assert.deepEqual(w.notifications.slice(1), []);
  });

  test('a document removed from a file that still exists is withdrawn after a grace period', async () => {
    await writeFile(join(dir, 'a.yaml'), pluginYaml('x') + '---\n' + pluginYaml('y'));
    const w = await watchDir();
    const removed = Date.now();
    await writeFile(join(dir, 'a.yaml'), pluginYaml('y'));
    await w.waitFor((s) => !s.documents.has('x'), 'x to be withdrawn');
    assert.ok(Date.now() - removed >= 140, `withdrawn after ${Date.now() - removed} ms`);
    assert.deepEqual(
      w.notifications.slice(1).map((n) => n.keys),
      [['x']],
    );
  });

  test('a directory removed with its files removes their keys', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'a.yaml'), pluginYaml('a'));
    await writeFile(join(dir, 'b.yaml'), pluginYaml('b'));
    const w = await watchDir();
    await rm(join(dir, 'sub'), { recursive: true });
    await w.waitFor((s) => !s.documents.has('a'), 'a to disappear');
    assert.deepEqual([...w.source.snapshot().documents.keys()], ['b']);
  });

  test('a listener that throws does not stop the others', async () => {
    const w = await watchDir();
    const got: string[][] = [];
    w.source.onChange(() => {
      throw new Error('boom');
    });
    const off = w.source.onChange((keys) => got.push([...keys]));
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    await w.waitFor((s) => s.documents.has('a'), 'a');
    assert.deepEqual(got, [['a']]);
    off();
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a', '2'));
    await w.waitFor((s) => versionOf(s, 'a') === '2', 'the edit');
    assert.deepEqual(got, [['a']]);
  });
});

describe('FileSource debounce', () => {
  test('a batch runs debounceMs after an event, on the injected clock', async () => {
    const clock = new FakeClock(1000);
    const source = new FileSource({ paths: [dir], logger: silentLogger, clock, debounceMs: 20 });
    open.push(source);
    await source.start();
    await writeFile(join(dir, 'a.yaml'), pluginYaml('a'));
    await until(() => clock.pending() > 0, 'the event to arm the debounce');
    clock.advance(19);
    await sleep(30);
    assert.equal(source.snapshot().documents.size, 0);
    clock.advance(1);
    await until(() => source.snapshot().documents.has('a'), 'the batch');
    await source.close();
    assert.equal(clock.pending(), 0);
  });
});
