// docs/troubleshooting.md is generated from the error catalogue: this fails when the committed file is
// stale, or when a code is missing from the section its kind puts it in.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_CODES, type ErrorCodeEntry } from '../../../controller/error-codes.ts';
import { REPO_ROOT } from '../../../controller/docs/generate.ts';
import { renderTroubleshootingDoc } from '../../../controller/docs/troubleshooting-md.ts';

test('the committed docs/troubleshooting.md is exactly renderTroubleshootingDoc() (run `make docs` when this fails)', async () => {
  const committed = await readFile(join(REPO_ROOT, 'docs/troubleshooting.md'), 'utf8');
  assert.equal(committed, renderTroubleshootingDoc());
});

test('every code is listed with its fix in the section of its kind; stalled-when-varies codes in both', () => {
  const doc = renderTroubleshootingDoc();
  const section = (title: string): string => {
    const start = doc.indexOf(`\n## ${title}\n`);
    assert.ok(start >= 0, title);
    const end = doc.indexOf('\n## ', start + 1);
    return doc.slice(start, end < 0 ? undefined : end);
  };
  const stalled = section('Stalled: a human must act');
  const waiting = section('Reconciling: waiting for something else');
  const transient = section('Reconciling: retried on their own');
  for (const [code, entry] of Object.entries(ERROR_CODES) as [string, ErrorCodeEntry][]) {
    const home = { stalled, waiting, transient }[entry.kind];
    const row = home.split('\n').find((line) => line.startsWith(`| \`${code}\``));
    assert.ok(row?.includes(entry.hint), code);
    if (entry.kind !== 'stalled' && entry.varies?.startsWith('stalled') === true) {
      assert.ok(stalled.includes(`| \`${code}\` (${entry.varies})`), code);
    }
  }
  assert.match(stalled, /\| `UPGRADE_ROLLED_BACK` \(sticky\) \|/);
  assert.match(doc, /\| Skipped +\| Ready=False, reason `NotSelected`/);
});
