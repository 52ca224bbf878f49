// The global options are defined once (controller/cli/global-options.json): commander's program is built
// from the list, and the launcher reads it to tell a global option's value from the command, because
// `plugctl run` is set up differently (no TurboFan, HTTP parser kept at baseline, idle heap trim).
// These tests fail when an option is added outside the list, or when the launcher takes a value for
// the command.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { main } from '../../../controller/main.ts';
import { GLOBAL_OPTIONS, type GlobalOptionSpec } from '../../../controller/cli/global-options.ts';
import { parseDuration } from '../../../controller/cli/duration.ts';
import { DEFAULT_PULL_TIMEOUT_MS } from '../../../controller/limits.ts';

const run = promisify(execFile);
const launcher = fileURLToPath(new URL('../../../bin/plugctl.js', import.meta.url));

/** Reports, on stderr, when the launcher loads what it loads only for `run` (registry/parser-tiering). */
const RUN_SETUP_MARKER = 'plugctl-test: run set-up';
const HOOK =
  'data:text/javascript,' +
  encodeURIComponent(
    `import { registerHooks } from 'node:module';
registerHooks({
  resolve(specifier, context, next) {
    const result = next(specifier, context);
    if (/\\/registry\\/parser-tiering\\.[jt]s$/.test(result.url)) process.stderr.write(${JSON.stringify(RUN_SETUP_MARKER + '\n')});
    return result;
  },
});`,
  );

/** Runs the launcher with `args`; says whether it set the process up for `run`. */
async function launch(args: string[]): Promise<{ stdout: string; setUpForRun: boolean }> {
  const { stdout, stderr } = await run(process.execPath, ['--import', HOOK, launcher, ...args], {
    timeout: 30_000,
  });
  return { stdout, setUpForRun: stderr.includes(RUN_SETUP_MARKER) };
}

/** A value the option accepts. */
function sampleValue(spec: GlobalOptionSpec): string {
  if (spec.duration === true) return '90s';
  return spec.choices?.[0] ?? (spec.value === '<k=v,...>' ? 'role=storage' : '/tmp/plugctl-test');
}

test('a duration option’s default in global-options.json is the library default', () => {
  const pullTimeout = GLOBAL_OPTIONS.find((o) => o.flag === '--pull-timeout');
  assert.equal(typeof pullTimeout?.default, 'string');
  assert.equal(parseDuration(pullTimeout?.default as string, '--pull-timeout'), DEFAULT_PULL_TIMEOUT_MS);
});

test('every option before the command in --help comes from global-options.json, with its value', async () => {
  let help = '';
  assert.equal(await main(['--help'], { out: (t) => (help += t), err: (t) => (help += t) }), 0);
  const offered = new Map<string, string | undefined>();
  for (const [, flag, value] of help.matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)(?: ([<[][^ ]*[>\]]))?/gm)) {
    if (flag !== '--version' && flag !== '--help') offered.set(flag as string, value);
  }
  const listed = new Map(GLOBAL_OPTIONS.map((o) => [o.flag as string, o.value as string | undefined]));
  assert.deepEqual(offered, listed);
  assert.ok(listed.size >= 7);
});

test('the launcher finds `run` after every global option that takes a value', async () => {
  const withValues = GLOBAL_OPTIONS.filter((o) => o.value !== undefined);
  assert.ok(withValues.length > 0);
  const results = await Promise.all(
    withValues.map(async (o) => ({
      flag: o.flag,
      ...(await launch([o.flag, sampleValue(o), 'run', '--help'])),
    })),
  );
  for (const { flag, stdout, setUpForRun } of results) {
    assert.match(stdout, /^Usage: plugctl run \[options\]/, flag);
    assert.ok(setUpForRun, `${flag} VALUE run: the launcher did not set the process up for run`);
  }
});

test('the launcher takes a global option\'s value "run" for a value, not for the command', async () => {
  const [asValue, inline, other] = await Promise.all([
    launch(['--root', 'run', 'gc', '--help']),
    launch(['--state-dir=/tmp/plugctl-test', 'run', '--help']),
    launch(['--log-level', 'error', 'get', '--help']),
  ]);
  assert.match(asValue.stdout, /^Usage: plugctl gc/);
  assert.equal(asValue.setUpForRun, false);
  assert.match(inline.stdout, /^Usage: plugctl run/);
  assert.equal(inline.setUpForRun, true);
  assert.equal(other.setUpForRun, false);
});
