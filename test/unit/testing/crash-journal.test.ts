// The crash worker's step journal (test/integration/crash-journal.ts): what a SIGKILLed process
// had journaled is all in the file afterwards, and the kill point follows from it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { killPoint, readJournal, stepAt } from '../../integration/crash-journal.ts';
import type { JournalEntry } from '../../integration/crash-journal.ts';

const JOURNAL = fileURLToPath(new URL('../../integration/crash-journal.ts', import.meta.url));

const entries = (...steps: JournalEntry['step'][]): JournalEntry[] =>
  steps.map((step, index) => ({ step, at: 1000 + index }));

describe('killPoint', () => {
  test('before: the operation was not called', () => {
    assert.equal(killPoint([]), 'before');
    assert.equal(killPoint(entries('go', 'open', 'journal')), 'before');
  });
  test('during: called and not returned', () => {
    assert.equal(killPoint(entries('go', 'open', 'start')), 'during');
  });
  test('after: returned', () => {
    assert.equal(killPoint(entries('go', 'open', 'start', 'done')), 'after');
  });
});

describe('the journal of a process killed with SIGKILL', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-journal-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('holds every step journaled before the kill', async () => {
    const file = join(dir, 'steps.log');
    const script = `
      import { StepJournal } from ${JSON.stringify(JOURNAL)};
      const journal = new StepJournal(process.argv[1]);
      for (const step of ['go', 'open', 'start']) journal.record(step);
      process.stdout.write('started\\n');
      setInterval(() => undefined, 1000); // the operation, never returning
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`exited ${code} before journaling`)));
    });
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const journal = await readJournal(file);
    assert.deepEqual(
      journal.map((entry) => entry.step),
      ['go', 'open', 'start'],
    );
    assert.equal(killPoint(journal), 'during');
    const [go, start] = [stepAt(journal, 'go'), stepAt(journal, 'start')];
    assert.ok(go !== undefined && start !== undefined && start >= go && Math.abs(go - Date.now()) < 60_000);
  });

  test('a missing journal is empty; a line that is not a step is an error', async () => {
    assert.deepEqual(await readJournal(join(dir, 'never-written.log')), []);
    await writeFile(join(dir, 'bad.log'), 'go 12.5\nhalf');
    await assert.rejects(readJournal(join(dir, 'bad.log')), /not a journal line: "half"/);
  });
});
