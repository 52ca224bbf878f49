/**
 * Hostile documents: huge, wide, deep or numerous YAML, and references no pull can reach. Each is
 * refused on its own (LIMIT_EXCEEDED naming file, document and limit; INVALID_REFERENCE) in well
 * under a second, while a valid document beside it loads; a file at the bounds loads in linear time.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadDocuments } from '../../controller/api/load.ts';
import type { LoadError, LoadResult } from '../../controller/api/load.ts';
import { DEFAULT_DOCUMENT_LIMITS } from '../../controller/limits.ts';
import { parseReference } from '../../controller/api/reference.ts';
import { rejectsWith } from '../errors.ts';
import { LyingRegistry, REACHABLE, fingerprint, hostileClient, sandbox } from './harness.ts';
import type { Sandbox } from './harness.ts';

const HEAD = (name: string, remote = `example.com/team/${name}:1.0`): string =>
  `apiVersion: plugctl.dev/v1alpha1\nkind: DockerPlugin\nmetadata:\n  name: ${name}\nspec:\n  remote: ${remote}\n`;

const VALID = HEAD('valid');

let box: Sandbox;
let world: string;

before(async () => {
  box = await sandbox('documents');
  world = await fingerprint([...REACHABLE, box.outside]);
});

after(async () => {
  assert.equal(await fingerprint([...REACHABLE, box.outside]), world, 'nothing outside the sandbox changed');
  await box.remove();
});

/** Writes `text` as `name` and a valid document as `valid.yaml` beside it, then loads the directory. */
async function loadBeside(
  name: string,
  text: string,
): Promise<{ result: LoadResult; ms: number; file: string }> {
  const dir = join(box.dir, name.replace(/\W/g, '-'));
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, text);
  await writeFile(join(dir, 'valid.yaml'), VALID);
  const started = performance.now();
  const result = await loadDocuments([dir]);
  return { result, ms: performance.now() - started, file };
}

function onlyError(result: LoadResult): LoadError {
  assert.equal(result.errors.length, 1, result.errors.map((e) => e.message).join('\n'));
  return result.errors[0] as LoadError;
}

function assertValidBeside(result: LoadResult): void {
  assert.deepEqual(
    result.documents.map((d) => d.doc.metadata.name),
    ['valid'],
    'the valid document beside the refused one loads',
  );
}

describe('hostile YAML is refused within the document limits', () => {
  it('60,000 keys in one map: LIMIT_EXCEEDED maxEntries, document named, in well under a second', async () => {
    const keys = Array.from({ length: 60_000 }, (_, i) => `      K${i}: "v"\n`).join('');
    const { result, ms, file } = await loadBeside('keys', `${HEAD('keys')}  settings:\n    env:\n${keys}`);
    const e = onlyError(result);
    assert.equal(e.code, 'LIMIT_EXCEEDED');
    assert.equal(e.limit, 'maxEntries');
    assert.equal(e.origin.file, file);
    assert.match(e.message, /^document 1: a map has more than 1000 entries \(limit maxEntries\)/);
    assertValidBeside(result);
    assert.ok(ms < 1000, `refused in ${Math.round(ms)} ms (was 92 s before the limits)`);
  });

  it('30,000 and 300,000 env entries: maxEntries, refused as soon as the bound is crossed', async () => {
    for (const count of [30_000, 300_000]) {
      const keys = Array.from({ length: count }, (_, i) => `      E${i}: "x"\n`).join('');
      const { result, ms } = await loadBeside(`env${count}`, `${HEAD('env')}  settings:\n    env:\n${keys}`);
      const e = onlyError(result);
      assert.equal(
        e.limit,
        count * 14 > DEFAULT_DOCUMENT_LIMITS.maxFileBytes ? 'maxFileBytes' : 'maxEntries',
      );
      assertValidBeside(result);
      assert.ok(ms < 1000, `${count} entries refused in ${Math.round(ms)} ms`);
    }
  });

  it('a 60 MB string: LIMIT_EXCEEDED maxFileBytes without reading the file; a 100 KB value: maxValueBytes', async () => {
    const huge = `${HEAD('huge')}  alias: "${'a'.repeat(60 * 1024 * 1024)}"\n`;
    const heapBefore = process.memoryUsage().heapUsed;
    const { result, ms, file } = await loadBeside('huge', huge);
    const e = onlyError(result);
    assert.equal(e.code, 'LIMIT_EXCEEDED');
    assert.equal(e.limit, 'maxFileBytes');
    assert.equal(e.origin.file, file);
    assert.match(
      e.message,
      /larger than 4194304 bytes \(limit maxFileBytes\); none of its documents is loaded/,
    );
    assertValidBeside(result);
    assert.ok(ms < 500, `refused in ${Math.round(ms)} ms`);
    assert.ok(
      process.memoryUsage().heapUsed - heapBefore < 200 * 1024 * 1024,
      'the file was never read whole',
    );

    const long = await loadBeside('long', `${HEAD('long')}  alias: "${'a'.repeat(100 * 1024)}"\n`);
    const v = onlyError(long.result);
    assert.equal(v.limit, 'maxValueBytes');
    assert.match(v.message, /^document 1: a value is longer than 65536 bytes/);
    assertValidBeside(long.result);
  });

  it('10,000 nested lists and 2,000 nested maps: maxDepth, no stack overflow', async () => {
    const flow = `${HEAD('deep')}  x: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`;
    const e = onlyError((await loadBeside('deep', flow)).result);
    assert.equal(e.limit, 'maxDepth');
    let block = '';
    for (let i = 0; i < 2000; i++) block += `${' '.repeat(i + 2)}k${i}:\n`;
    const nested = await loadBeside('deepmaps', `${HEAD('deepmaps')}${block}`);
    assert.equal(onlyError(nested.result).limit, 'maxDepth');
    assertValidBeside(nested.result);
  });

  it('1,001 documents in one file: maxDocuments refuses the whole file, the file beside it loads', async () => {
    const docs = Array.from({ length: 1001 }, (_, i) => HEAD(`p${i}`)).join('---\n');
    const { result } = await loadBeside('many', docs);
    const e = onlyError(result);
    assert.equal(e.limit, 'maxDocuments');
    assert.match(
      e.message,
      /more than 1000 documents \(limit maxDocuments\); none of its documents is loaded/,
    );
    assertValidBeside(result);
  });

  it('a refused document among valid ones: only it is refused, the documents after it are parsed afresh', async () => {
    const wide = Array.from({ length: 2000 }, (_, i) => `      K${i}: "v"\n`).join('');
    const text = [HEAD('first'), `${HEAD('wide')}  settings:\n    env:\n${wide}`, HEAD('last')].join('---\n');
    const { result } = await loadBeside('mixed', text);
    const e = onlyError(result);
    assert.equal(e.limit, 'maxEntries');
    assert.match(e.message, /^document 2: /);
    assert.deepEqual(result.documents.map((d) => d.doc.metadata.name).sort(), ['first', 'last', 'valid']);
  });

  it('limits are configurable: a larger maxEntries loads the 2,000-entry document', async () => {
    const wide = Array.from({ length: 2000 }, (_, i) => `      K${i}: "v"\n`).join('');
    const file = join(box.dir, 'configurable.yaml');
    await writeFile(file, `${HEAD('wide')}  settings:\n    env:\n${wide}`);
    const result = await loadDocuments([file], { limits: { maxEntries: 5000 } });
    assert.deepEqual(result.errors, []);
    assert.equal(Object.keys(result.documents[0]?.doc.spec.settings?.env ?? {}).length, 2000);
  });

  it('a file at the bounds (4 MiB, 1,000 documents) loads in linear time: under 2 s and 100 MB', async () => {
    const env = Array.from({ length: 100 }, (_, i) => `      KEY_${i}: "${'v'.repeat(24)}"\n`).join('');
    const parts: string[] = [];
    let size = 0;
    for (let i = 0; i < DEFAULT_DOCUMENT_LIMITS.maxDocuments; i++) {
      const part = `${i === 0 ? '' : '---\n'}${HEAD(`p${i}`)}  settings:\n    env:\n${env}`;
      if (size + part.length > DEFAULT_DOCUMENT_LIMITS.maxFileBytes) break;
      parts.push(part);
      size += part.length;
    }
    const file = join(box.dir, 'at-the-bounds.yaml');
    await writeFile(file, parts.join(''));
    assert.ok(size > 3.9 * 1024 * 1024, `the file is ${size} bytes`);
    const probe = new URL('./load-probe.ts', import.meta.url).pathname;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [probe, file], { maxBuffer: 1 << 20 }, (error, stdout) =>
        error === null ? resolve(stdout) : reject(error),
      ),
    );
    const measured = JSON.parse(out) as { ms: number; extraMB: number; documents: number; errors: number };
    assert.equal(measured.errors, 0);
    assert.equal(measured.documents, parts.length);
    assert.ok(measured.ms < 2000, `loaded ${size} bytes in ${measured.ms} ms`);
    assert.ok(measured.extraMB < 100, `loading took ${measured.extraMB} MB more memory`);
  });
});

describe('a reference no pull can reach is a load error, never a transient failure', () => {
  it('registry.example:99999/x:1 is INVALID_REFERENCE on that document', async () => {
    const { result, file } = await loadBeside('port', HEAD('port', 'registry.example:99999/x:1'));
    const e = onlyError(result);
    assert.equal(e.code, 'INVALID_REFERENCE');
    assert.equal(e.origin.file, file);
    assert.equal(e.path, 'spec.remote');
    assert.match(e.message, /port 99999 is out of range/);
    assertValidBeside(result);
  });

  it('the registry client refuses such a host as stalled, without a request', async () => {
    const registry = await LyingRegistry.start();
    const client = hostileClient();
    try {
      const ref = { ...parseReference(`${registry.host}/x:1`), domain: 'registry.example:99999' };
      const error = await rejectsWith(client.headManifest(ref), 'INVALID_REFERENCE', 'stalled');
      assert.match(error.message, /registry\.example:99999/);
      assert.deepEqual(registry.requests, []);
    } finally {
      await client.close();
      await registry.close();
    }
  });
});
