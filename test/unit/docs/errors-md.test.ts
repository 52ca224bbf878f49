// docs/errors.md is generated from the error catalogue: this fails when the committed file is stale.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_CODES } from '../../../controller/error-codes.ts';
import { renderErrorsDoc } from '../../../controller/docs/errors-md.ts';
import { GENERATED_DOCS, main, REPO_ROOT } from '../../../controller/docs/generate.ts';

test('the committed docs/errors.md is exactly renderErrorsDoc() (run `make docs` when this fails)', async () => {
  const committed = await readFile(join(REPO_ROOT, 'docs/errors.md'), 'utf8');
  assert.equal(committed, renderErrorsDoc(), 'docs/errors.md is stale: run `make docs` and commit it');
});

test('every generated doc is up to date (`make docs -- --check`)', async () => {
  assert.equal(await main(['--check']), 0);
});

test('the doc lists every code once, with its kind and hint', () => {
  const doc = renderErrorsDoc();
  assert.equal(doc, renderErrorsDoc(), 'deterministic');
  for (const [code, entry] of Object.entries(ERROR_CODES)) {
    const rows = doc.split('\n').filter((line) => line.startsWith(`| \`${code}\` |`));
    assert.equal(rows.length, 1, code);
    assert.ok(rows[0]?.includes(` ${entry.kind}`), code);
    assert.ok(rows[0]?.includes(entry.hint), code);
  }
  assert.match(doc, /\| `UPGRADE_ROLLED_BACK` \| stalled, sticky \|/);
  assert.match(doc, /\| `PULL_FAILED` \| transient; stalled when /);
});

test('main writes every doc, then --check passes; a stale or missing doc fails --check', async () => {
  const root = await mkdtemp(join(tmpdir(), 'plugctl-docs-'));
  try {
    await mkdir(join(root, 'docs'));
    assert.equal(await main([], root), 0);
    assert.equal(await main(['--check'], root), 0);
    const first = GENERATED_DOCS[0]!;
    await writeFile(join(root, first.path), 'stale\n');
    assert.equal(await main(['--check'], root), 1);
    await rm(join(root, first.path));
    assert.equal(await main(['--check'], root), 1);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
