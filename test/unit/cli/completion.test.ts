// `plugctl completion bash` is generated from the commander program: bash runs the generated script,
// and its completion function is called as bash calls it (COMP_WORDS, COMP_CWORD) to check what it
// offers. zsh and fish are checked in test/integration/completion-shells.test.ts (they need packages).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { CompletingOption } from '../../../controller/cli/completion-hints.ts';
import { renderCompletion } from '../../../controller/cli/completion.ts';
import { main } from '../../../controller/main.ts';

const run = promisify(execFile);

/** Runs plugctl in-process; returns the exit code and both streams. */
async function plugctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) }, {});
  return { code, out, err };
}

/** Loads the script in bash, then completes `line` (the last word is the one being completed). */
const DRIVER = `source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=()
_plugctl
printf '%s\\n' "\${COMPREPLY[@]}"`;

describe('bash completion', () => {
  let dir = '';
  let script = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-completion-'));
    script = join(dir, '.plugctl.bash');
    const { code, out } = await plugctl('completion', 'bash');
    assert.equal(code, 0);
    await writeFile(script, out);
    await mkdir(join(dir, 'plugins.d'));
    await writeFile(join(dir, 'plugins.d', 'sshfs.yaml'), '');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** What the completion function offers for `words` (the last one is being completed), sorted. */
  async function complete(...words: string[]): Promise<string[]> {
    const { stdout } = await run('bash', ['--norc', '-c', DRIVER, 'driver', script, 'plugctl', ...words], {
      cwd: dir,
    });
    return stdout
      .split('\n')
      .filter((l) => l !== '')
      .sort();
  }

  test('the script is valid bash and registers the function for plugctl', async () => {
    const { stdout } = await run('bash', ['--norc', '-c', `source "$1" && complete -p plugctl`, 'x', script]);
    assert.equal(stdout.trim(), 'complete -F _plugctl plugctl');
  });

  test('commands, then the options of the command and the global ones', async () => {
    const commands = await complete('');
    for (const name of ['apply', 'diff', 'get', 'run', 'prune', 'explain', 'completion']) {
      assert.ok(commands.includes(name), name);
    }
    assert.deepEqual(await complete('ex'), ['explain']);
    const applyOptions = await complete('apply', '--');
    for (const flag of ['--filename', '--dry-run', '--take-ownership', '--store', '--state-dir', '--help']) {
      assert.ok(applyOptions.includes(flag), flag);
    }
    assert.ok(!applyOptions.includes('--output'), 'get has -o, apply has not');
    assert.equal(applyOptions.filter((o) => o === '--help').length, 1);
    assert.deepEqual(await complete('--st'), ['--state-dir', '--store']);
  });

  test('option values from the choices commander knows: --store, get -o, --log-level', async () => {
    assert.deepEqual(await complete('--store', ''), ['auto', 'docker', 'embedded']);
    // get -o offers its formats (a superset once more formats are added)
    const formats = await complete('get', '-o', '');
    for (const format of ['json', 'table', 'yaml']) assert.ok(formats.includes(format), format);
    assert.deepEqual(await complete('get', '--output', 'y'), ['yaml']);
    assert.deepEqual(await complete('apply', '--log-level', 'de'), ['debug']);
  });

  test("an option's value is not taken for the command", async () => {
    assert.deepEqual(await complete('--store', 'embedded', 'ap'), ['apply']);
    assert.deepEqual(await complete('--state-dir', '/tmp', 'get', '-o', 'js'), ['json', 'jsonpath=']);
  });

  test('arguments: completion shells, explain field paths, files for -f and contexts', async () => {
    assert.deepEqual(await complete('completion', ''), ['bash', 'fish', 'zsh']);
    const fields = await complete('explain', 'dockerplugin.spec.sett');
    assert.deepEqual(fields, [
      'dockerplugin.spec.settings',
      ...['args', 'devices', 'env', 'mounts'].map((f) => `dockerplugin.spec.settings.${f}`),
    ]);
    assert.deepEqual(await complete('apply', '-f', 'plug'), ['plugins.d']);
    assert.deepEqual(await complete('apply', '-f', 'plugins.d/'), ['plugins.d/sshfs.yaml']);
    assert.deepEqual(await complete('create', 'my/plugin:1.0', 'plug'), ['plugins.d']);
    assert.deepEqual(await complete('create', 'plug'), [], 'the name is free text');
  });
});

test('completion of an unknown shell is a usage error (exit 2)', async () => {
  const { code, err } = await plugctl('completion', 'tcsh');
  assert.equal(code, 2);
  assert.match(err, /bash, zsh, fish/);
});

test('a command added to the program is completed without another edit', async () => {
  // the scripts are built from commander's program, so every command main.ts registers appears
  const { out: help } = await plugctl('--help');
  const commands = [...help.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]);
  assert.ok(commands.length >= 10);
  for (const shell of ['bash', 'zsh', 'fish']) {
    const { out } = await plugctl('completion', shell);
    for (const command of commands) assert.match(out, new RegExp(`\\b${command}\\b`), `${shell}: ${command}`);
  }
});

test('a CompletingOption offers its words for values commander cannot check with choices', async () => {
  const program = new Command('plugctl');
  program
    .command('show')
    .addOption(
      new CompletingOption('-o, --output <format>', 'output format').completeWith([
        'table',
        'json',
        'jsonpath=',
      ]),
    )
    .action(() => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'plugctl-completion-hint-'));
  try {
    const script = join(dir, 'script.bash');
    await writeFile(script, renderCompletion(program, 'bash'));
    const { stdout } = await run('bash', [
      '--norc',
      '-c',
      DRIVER,
      'driver',
      script,
      'plugctl',
      'show',
      '-o',
      'js',
    ]);
    assert.deepEqual(
      stdout
        .split('\n')
        .filter((l) => l !== '')
        .sort(),
      ['jsonpath=', 'json'].sort(),
    );
    // parsing is not restricted to the words
    program.exitOverride();
    await program.parseAsync(['show', '-o', 'jsonpath={.items}'], { from: 'user' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
