// checkTarget (test/report/floor.ts) on a made-up run over real files in a temp directory.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunSummary } from '../../report/collect.ts';
import { checkTarget } from '../../report/floor.ts';

describe('checkTarget', () => {
  let cwd = '';
  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'plugctl-floor-'));
    await mkdir(join(cwd, 't'));
    await writeFile(join(cwd, 't', 'a.test.ts'), '');
    await writeFile(join(cwd, 't', 'b.test.ts'), '');
  });
  after(() => rm(cwd, { recursive: true, force: true }));

  const run = (overrides: Partial<RunSummary>): RunSummary => ({
    cwd,
    patterns: ['t/*.test.ts'],
    ran: 12,
    failed: 0,
    skipped: [],
    testsPerFile: { 't/a.test.ts': 5, 't/b.test.ts': 7 },
    brokenFiles: [],
    ...overrides,
  });

  test('passes a run at or above the floor with every file counted', () => {
    assert.deepEqual(checkTarget('unit', 12, run({})), []);
  });

  test('fails fewer tests than the floor', () => {
    assert.deepEqual(checkTarget('unit', 13, run({})), [
      'unit: 12 tests ran, fewer than the floor of 13 in test/floor.json (tests were lost: a suite skipped, a file not matched, or tests deleted)',
    ]);
  });

  test('fails a pattern that matches no file, and a matched file without tests', () => {
    const problems = checkTarget(
      'integration',
      0,
      run({ patterns: ['t/*.test.ts', 'nothing/**/*.test.ts'], testsPerFile: { 't/a.test.ts': 5 } }),
    );
    assert.deepEqual(problems, [
      'integration: t/b.test.ts (matched by t/*.test.ts) defined no test',
      'integration: the pattern nothing/**/*.test.ts matched no file',
    ]);
  });

  test('fails any skip, with its reason, and a file that broke outside its tests', () => {
    const problems = checkTarget(
      'integration',
      0,
      run({
        skipped: [{ file: 't/a.test.ts', name: 'runc suite', reason: 'missing runc' }],
        brokenFiles: ['t/b.test.ts'],
      }),
    );
    assert.deepEqual(problems, [
      'integration: t/b.test.ts failed outside its tests',
      'integration: skipped on CI: t/a.test.ts: runc suite (missing runc)',
    ]);
  });
});
