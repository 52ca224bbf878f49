// bin/plugctl.js sets `plugctl run` up for idling with little memory (HTTP parser kept at baseline
// code, idle heap trim) before it runs the command: the command must parse and answer as without, and
// the trim's timer must not keep a finished process alive.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const launcher = fileURLToPath(new URL('../../../bin/plugctl.js', import.meta.url));

test('`run --help` answers and exits, also after global options with values', async () => {
  const { stdout } = await run(process.execPath, [launcher, '--log-level', 'error', 'run', '--help'], {
    timeout: 30_000,
  });
  assert.match(stdout, /^Usage: plugctl run \[options\]/);
  assert.match(stdout, /--resync <duration>/);
});

test('other commands run as before', async () => {
  const { stdout } = await run(process.execPath, [launcher, '--version'], { timeout: 30_000 });
  assert.equal(stdout.trim(), '0.1.0');
});
