// The zsh and fish completion scripts (`plugctl completion zsh|fish`, generated from the commander
// program) parse in their shells, and fish, which can complete a command line non-interactively
// (`complete -C`), offers what the program knows. No services: the shells come from Debian
// (`make env-install`).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { main } from '../../controller/main.ts';
import { describeWith } from '../prerequisites.ts';

const run = promisify(execFile);

async function script(shell: string): Promise<string> {
  let out = '';
  const code = await main(['completion', shell], { out: (t) => (out += t), err: () => undefined }, {});
  assert.equal(code, 0);
  return out;
}

describeWith('zsh and fish completion scripts', { needs: ['zsh', 'fish'] }, () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-completion-shells-'));
    await writeFile(join(dir, '_plugctl'), await script('zsh'));
    await writeFile(join(dir, 'plugctl.fish'), await script('fish'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('zsh -n accepts the zsh script, which defines _plugctl for compdef', async () => {
    await run('zsh', ['-n', join(dir, '_plugctl')]);
    const text = await script('zsh');
    assert.match(text, /^#compdef plugctl\n/);
    assert.match(text, /'\*--store=\[[^\]]*\]:value:\(auto docker embedded\)'/);
    assert.match(
      text,
      /\(get\)\n\s+_arguments -s \\\n(.*\n)*?.*\{-o,--output=\}'\[table, wide, name, json, yaml or jsonpath=TEMPLATE\]:value:\(table wide name json yaml jsonpath=\)'/,
    );
    // zsh loads it: autoloaded from fpath, the function exists
    const { stdout } = await run('zsh', [
      '-f',
      '-c',
      `fpath=(${dir} $fpath); autoload -Uz _plugctl; whence -w _plugctl`,
    ]);
    assert.match(stdout, /_plugctl: function/);
  });

  test('fish -n accepts the fish script, and fish completes command lines with it', async () => {
    const file = join(dir, 'plugctl.fish');
    await run('fish', ['--no-config', '-n', file]);
    const complete = async (line: string): Promise<string[]> => {
      const { stdout } = await run('fish', [
        '--no-config',
        '-c',
        `source ${file}; complete -C ${JSON.stringify(line)}`,
      ]);
      return stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('\t')[0] ?? '')
        .sort();
    };
    assert.deepEqual(await complete('plugctl get -o '), [
      'json',
      'jsonpath=',
      'name',
      'table',
      'wide',
      'yaml',
    ]);
    assert.deepEqual(await complete('plugctl --store embedded ap'), ['apply']);
    assert.deepEqual(await complete('plugctl completion '), ['bash', 'fish', 'zsh']);
    assert.ok((await complete('plugctl apply --')).includes('--dry-run'));
    assert.ok(!(await complete('plugctl apply --')).includes('--output'));
    assert.ok((await complete('plugctl explain dockerplugin.spec.')).includes('dockerplugin.spec.dependsOn'));
  });
});
