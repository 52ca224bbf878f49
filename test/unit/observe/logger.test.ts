// The logs of a command: pretty on a terminal (a pseudo-terminal from util-linux's `script`), coloured
// unless NO_COLOR is set, and JSON when stderr is not a terminal.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** The start of an ANSI colour sequence. */
const ESC = '\u001b[';
const context = new URL('../../../controller/cli/context.ts', import.meta.url).href;
/** Logs one line through a command's context (the level `run` defaults to), as a command does. */
const SCRIPT = [
  `const { createContext } = await import(${JSON.stringify(context)});`,
  "const options = { store: 'auto', root: '/nonexistent', insecureRegistry: [], stateDir: '/nonexistent', pullTimeout: 1000 };",
  "const ctx = createContext(options, { out: () => {}, err: () => {} }, process.env, 'info');",
  "ctx.logger.info({ key: 'a' }, 'hello');",
  'ctx.logger.debug("below the default level");',
].join('\n');

/** Runs SCRIPT with stderr on a pseudo-terminal; returns what the terminal showed. */
async function onTerminal(env: NodeJS.ProcessEnv): Promise<string> {
  const command = `${process.execPath} --input-type=module -e '${SCRIPT.replaceAll("'", "'\\''")}'`;
  const { stdout } = await run('script', ['-qec', command, '/dev/null'], { env, timeout: 30_000 });
  return stdout;
}

test('on a terminal the logs are pretty and coloured', async () => {
  const { NO_COLOR: _, ...env } = process.env;
  const shown = await onTerminal(env);
  assert.match(shown, /INFO.*hello/);
  assert.ok(shown.includes(ESC), JSON.stringify(shown));
  assert.doesNotMatch(shown, /below the default level/);
});

test('NO_COLOR turns the colours off, and an empty NO_COLOR does not', async () => {
  const shown = await onTerminal({ ...process.env, NO_COLOR: '1' });
  assert.match(shown, /INFO \(\d+\): hello/);
  assert.ok(!shown.includes(ESC), JSON.stringify(shown));
  assert.ok((await onTerminal({ ...process.env, NO_COLOR: '' })).includes(ESC));
});

test('off a terminal the logs are JSON lines', async () => {
  const { stderr } = await run(process.execPath, ['--input-type=module', '-e', SCRIPT], { timeout: 30_000 });
  const lines = stderr
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.['msg'], 'hello');
  assert.equal(lines[0]?.['level'], 30);
  assert.equal(lines[0]?.['key'], 'a');
});
