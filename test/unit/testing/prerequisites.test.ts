// The prerequisite checks of test/prerequisites.ts against a PATH made for each case, and the
// strict mode end to end: a node --test run of a suite whose tool is missing fails (strict) or
// skips and lists the skip in the closing block (not strict).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { STRICT_ENV, describeMissing, missingPrerequisites, strictMode } from '../../prerequisites.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/gated.ts', import.meta.url));

describe('missingPrerequisites', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-prereq-'));
    await writeFile(join(dir, 'runc'), '#!/bin/sh\n');
    await chmod(join(dir, 'runc'), 0o755);
    await writeFile(join(dir, 'gcc'), 'not executable');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('finds an executable on PATH', () => {
    assert.deepEqual(missingPrerequisites(['runc'], { PATH: `/nonexistent:${dir}` }), []);
  });

  test('names what is missing and how to install it', () => {
    const missing = missingPrerequisites(['runc', 'docker-registry', 'runc'], { PATH: '/nonexistent' });
    assert.deepEqual(
      missing.map((m) => m.name),
      ['runc', 'docker-registry'],
    );
    assert.equal(missing[0]?.problem, 'runc is not on PATH');
    assert.match(missing[0]?.remedy ?? '', /make env-install.*as root.*package runc/);
    assert.match(
      describeMissing(missing),
      /^missing runc \(runc is not on PATH; install it with `make env-install` as root/,
    );
  });

  test('a file that is not executable does not count', () => {
    assert.deepEqual(
      missingPrerequisites(['gcc'], { PATH: dir }).map((m) => m.name),
      ['gcc'],
    );
  });

  test('root is the uid of this process', () => {
    const missing = missingPrerequisites(['root'], {});
    assert.equal(missing.length === 0, process.getuid?.() === 0);
  });

  test(`strict mode is ${STRICT_ENV}=1 and nothing else`, () => {
    assert.equal(strictMode({ [STRICT_ENV]: '1' }), true);
    assert.equal(strictMode({ [STRICT_ENV]: '0' }), false);
    assert.equal(strictMode({}), false);
  });
});

/** Runs the fixture under node --test with the closing reporter and a PATH without runc. */
function runFixture(strict: boolean): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [
        '--test',
        '--test-reporter=spec',
        '--test-reporter-destination=stdout',
        '--test-reporter=./test/report/closing.ts',
        '--test-reporter-destination=stdout',
        FIXTURE,
      ],
      {
        cwd: ROOT,
        env: { PATH: '/nonexistent', ...(strict ? { [STRICT_ENV]: '1' } : {}) },
        timeout: 60_000,
      },
      (error, stdout) => resolve({ code: error === null ? 0 : Number(error.code), stdout }),
    );
  });
}

describe('a suite whose prerequisite is missing', () => {
  test('fails in strict mode, naming what is missing and how to install it', async () => {
    const { code, stdout } = await runFixture(true);
    assert.equal(code, 1, stdout);
    assert.match(stdout, /✖ a suite that needs runc/);
    assert.match(
      stdout,
      /a suite that needs runc cannot run: missing runc \(runc is not on PATH; install it with `make env-install` as root/,
    );
    assert.match(stdout, /✔ runs/);
    assert.doesNotMatch(stdout, /skipped \(with/);
  });

  test('is skipped otherwise, and listed in one block at the end', async () => {
    const { code, stdout } = await runFixture(false);
    assert.equal(code, 0, stdout);
    const block = stdout.slice(stdout.indexOf('━━ 1 skipped'));
    assert.ok(block.length < stdout.length, stdout);
    assert.match(block, /gated\.ts: a suite that needs runc — missing runc \(runc is not on PATH/);
    assert.ok(stdout.lastIndexOf('ℹ duration_ms') < stdout.indexOf('━━ 1 skipped'), 'the block comes last');
  });
});
