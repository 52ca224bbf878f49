// The pieces of the loader the file source builds on: per-file parsing that reports which rejected
// documents it could still name, duplicate resolution across files, and the listing loadDocuments uses.
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  listDocumentFiles,
  loadDocuments,
  parseDocumentFile,
  resolveDuplicates,
} from '../../../controller/api/load.ts';
import { pluginYaml, tempDir } from './helpers.ts';

test('parseDocumentFile names rejected documents when it can and counts those it cannot', () => {
  const text = [
    pluginYaml('good'),
    pluginYaml('bad-remote').replace('remote: example/bad-remote:1.0', 'remote: 42'),
    'kind: DockerPlugin\nspec: {}\n',
    'just a scalar\n',
  ].join('---\n');
  const parsed = parseDocumentFile(text, 'f.yaml');
  assert.deepEqual(
    parsed.documents.map((d) => [d.doc.metadata.name, d.nameOrigin.line, d.localNamePath]),
    [['good', 4, 'spec.remote']],
  );
  assert.deepEqual(parsed.rejectedNames, ['bad-remote']);
  assert.equal(parsed.unnamedRejections, 2);
  assert.ok(parsed.errors.length >= 3);
});

test('resolveDuplicates across files withdraws both and names the first place in the error at the second', () => {
  const a = parseDocumentFile(pluginYaml('x'), 'a.yaml').documents;
  const b = parseDocumentFile(pluginYaml('x', '2', 'example/y:1.0'), 'b.yaml').documents;
  const resolved = resolveDuplicates([...a, ...b]);
  assert.deepEqual(resolved.documents, []);
  assert.equal(resolved.errors.length, 1);
  assert.equal(resolved.errors[0]?.origin.file, 'b.yaml');
  assert.match(resolved.errors[0]?.message ?? '', /also declared at a\.yaml:4:9/);
});

test('listDocumentFiles lists what loadDocuments reads, in the same order', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await mkdir(join(dir, 'b'));
    await writeFile(join(dir, 'b', 'z.yaml'), pluginYaml('z'));
    await writeFile(join(dir, 'a.yml'), pluginYaml('a'));
    await writeFile(join(dir, 'c.yaml'), pluginYaml('c'));
    await writeFile(join(dir, 'notes.txt'), 'x');
    await symlink('c.yaml', join(dir, 'd.yaml'));
    const listed = await listDocumentFiles([dir, join(dir, 'missing')]);
    assert.deepEqual(listed.files, [join(dir, 'a.yml'), join(dir, 'b', 'z.yaml'), join(dir, 'c.yaml')]);
    assert.deepEqual(
      listed.errors.map((e) => e.code),
      ['PATH_NOT_FOUND'],
    );
    assert.deepEqual((await loadDocuments([dir])).files, listed.files);
  } finally {
    await cleanup();
  }
});
