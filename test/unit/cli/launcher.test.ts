// bin/plugctl.js sets `plugctl run` up for idling with little memory (HTTP parser kept at baseline
// code, idle heap trim) before it runs the command: the command must parse and answer as without, and
// the trim's timer must not keep a finished process alive.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'acorn';

const run = promisify(execFile);
const launcher = fileURLToPath(new URL('../../../bin/plugctl.js', import.meta.url));
const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
  engines: { node: string };
};

test('`run --help` answers and exits, also after global options with values', async () => {
  const { stdout } = await run(process.execPath, [launcher, '--log-level', 'error', 'run', '--help'], {
    timeout: 30_000,
  });
  assert.match(stdout, /^Usage: plugctl run \[options\]/);
  assert.match(stdout, /--resync <duration>/);
});

test('other commands run as before', async () => {
  const { stdout } = await run(process.execPath, [launcher, '--version'], { timeout: 30_000 });
  assert.equal(stdout.trim(), manifest.version);
});

test('bin/plugctl.js parses as ES2020, so an old Node reaches its version check', () => {
  const source = readFileSync(launcher, 'utf8').replace(/^#!.*/, '');
  assert.doesNotThrow(() => parse(source, { ecmaVersion: 2020, sourceType: 'module' }));
});

test('engines.node keeps the ">=N" form bin/plugctl.js reads', () => {
  assert.match(manifest.engines.node, /^>=\s*\d+(\.\d+)*$/);
});

test('an unsupported Node gets exit 2 and one line naming its version and the one needed', async () => {
  const old = 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"22.3.0"})';
  const result = await run(process.execPath, ['--import', old, launcher, '--version'], {
    timeout: 30_000,
  }).then(
    () => assert.fail('ran on Node 22'),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
  assert.equal(result.code, 2);
  assert.equal(result.stdout, '');
  assert.equal(
    result.stderr,
    `plugctl: Node.js 22.3.0 (${process.execPath}) is not supported; plugctl needs Node.js ${manifest.engines.node}\n`,
  );
});

// `plugctl run` restarts node once with a capped young generation (bin/launch.js). A module given
// with --import runs in every node that starts, and says which flags that node got.
const sayFlags =
  'data:text/javascript,process.stderr.write(JSON.stringify(process.execArgv.filter(a=>a.startsWith("--max-semi"))) + "\\n")';

test('`run` restarts node once, with --max-semi-space-size=8, keeping the arguments', async () => {
  const { stdout, stderr } = await run(
    process.execPath,
    ['--import', sayFlags, launcher, '--log-level', 'error', 'run', '--help'],
    { timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } },
  );
  assert.deepEqual(stderr.trim().split('\n'), ['[]', '["--max-semi-space-size=8"]']);
  assert.match(stdout, /^Usage: plugctl run \[options\]/);
});

test('`run` keeps a young-generation size the operator chose in NODE_OPTIONS', async () => {
  const { stderr } = await run(process.execPath, ['--import', sayFlags, launcher, 'run', '--help'], {
    timeout: 30_000,
    env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4' },
  });
  assert.deepEqual(stderr.trim().split('\n'), ['[]']);
});

test('other commands are not restarted', async () => {
  const { stderr } = await run(process.execPath, ['--import', sayFlags, launcher, '--version'], {
    timeout: 30_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  assert.deepEqual(stderr.trim().split('\n'), ['[]']);
});
