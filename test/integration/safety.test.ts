/**
 * Safe by default, against a real dockerd and registry: ownership is scoped to the apply set that
 * declared a plugin and to the plugin's ID, nothing is pruned by omission (no -f, an empty source, a
 * lost --node-labels override), the engine's own labels select documents, narrowed grants are
 * reported, and diff's exit codes tell differences from errors. Every check reads the host afterwards.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { main } from '../../controller/main.ts';
import { runPlugctl, type CliResult } from './cli.ts';
import { describeIntegration, docker, envScript, useEnv } from './harness.ts';

interface PluginJson {
  Id: string;
  Name: string;
  Enabled: boolean;
  PluginReference: string;
}

describeIntegration('safe by default (apply sets, plugin IDs, labels, consent)', () => {
  const env = useEnv();
  let state: string;
  let work: string;

  beforeEach(async () => {
    state = await mkdtemp(join(tmpdir(), 'plugctl-safety-state-'));
    work = await mkdtemp(join(tmpdir(), 'plugctl-safety-docs-'));
  });

  afterEach(async () => {
    await envScript('reset');
    await rm(state, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  const plugctl = (...args: string[]): Promise<CliResult> => runPlugctl(state, env().dockerHost, args);

  function vol(name: string, extra: string[] = [], tag = '1.0'): string {
    return [
      'apiVersion: plugctl.dev/v1alpha1',
      'kind: DockerPlugin',
      `metadata: { name: ${name} }`,
      'spec:',
      `  remote: ${env().registry}/test/vol:${tag}`,
      `  alias: ${name}`,
      '  privileges: [{ name: network, value: [host] }]',
      ...extra,
      '',
    ].join('\n');
  }

  async function write(path: string, text: string): Promise<string> {
    const file = join(work, path);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, text);
    return file;
  }

  async function inspect(name: string): Promise<PluginJson | undefined> {
    const result = await docker(['plugin', 'inspect', `${name}:latest`], { check: false });
    return result.code === 0 ? (JSON.parse(result.stdout) as PluginJson[])[0] : undefined;
  }

  async function installedNames(): Promise<string[]> {
    const out = (await docker(['plugin', 'ls', '--format', '{{.Name}}'])).stdout;
    return out.split('\n').filter(Boolean).sort();
  }

  it('two sets applied from two directories keep each other’s plugins', async () => {
    await write('a/one.yaml', vol('one'));
    await write('b/two.yaml', vol('two'));
    assert.equal((await plugctl('apply', '-f', join(work, 'a'))).code, 0);
    assert.equal((await plugctl('apply', '-f', join(work, 'b'))).code, 0);
    assert.deepEqual(await installedNames(), ['one:latest', 'two:latest']);

    // Applying one directory again, or one file of the other, never prunes across sets.
    const again = await plugctl('apply', '-f', join(work, 'a'), '--dry-run');
    assert.match(again.out, /0 to delete/);
    assert.equal((await plugctl('apply', '-f', join(work, 'a'))).code, 0);
    assert.deepEqual(await installedNames(), ['one:latest', 'two:latest']);

    // get names each plugin's set.
    const get = await plugctl('get');
    assert.match(get.out, new RegExp(`two:latest\\s+true\\s+yes\\s+files:${join(work, 'b')}`));

    // Removing a document from a set prunes it from that set only.
    await rm(join(work, 'b/two.yaml'));
    await write('b/three.yaml', vol('three'));
    assert.equal((await plugctl('apply', '-f', join(work, 'b'))).code, 0);
    assert.deepEqual(await installedNames(), ['one:latest', 'three:latest']);
  });

  it('a document claiming another set’s plugin is a conflict unless --take-ownership', async () => {
    await write('a/one.yaml', vol('one'));
    await write('b/one-again.yaml', vol('one', ['  settings: { env: { GREETING: "from-b" } }']));
    assert.equal((await plugctl('apply', '-f', join(work, 'a'))).code, 0);
    const conflict = await plugctl('apply', '-f', join(work, 'b'));
    assert.equal(conflict.code, 1);
    assert.match(conflict.out, /OWNERSHIP_CONFLICT/);
    assert.match(conflict.out, new RegExp(`files:${join(work, 'a')}`));
    assert.match(conflict.out, new RegExp(`files:${join(work, 'b')}`));
    assert.equal((await plugctl('diff', '-f', join(work, 'b'))).code, 2, 'diff: a conflict is an error');

    const taken = await plugctl('apply', '-f', join(work, 'b'), '--take-ownership');
    assert.equal(taken.code, 0, taken.out + taken.err);
    const inventory = JSON.parse(await readFile(join(state, 'inventory.json'), 'utf8')) as {
      plugins: Record<string, { set: string; id: string }>;
    };
    assert.equal(inventory.plugins['one:latest']?.set, `files:${join(work, 'b')}`);
    assert.equal(inventory.plugins['one:latest']?.id, (await inspect('one'))?.Id);
  });

  it('apply, diff, get -f and run without -f are usage errors that change nothing', async () => {
    await write('a/one.yaml', vol('one'));
    assert.equal((await plugctl('apply', '-f', join(work, 'a'))).code, 0);
    for (const command of ['apply', 'diff', 'run']) {
      const result = await plugctl(command);
      assert.equal(result.code, 2, `${command} exits 2`);
      assert.match(result.err, /must specify -f/);
    }
    assert.deepEqual(await installedNames(), ['one:latest']);
  });

  it('an empty source prunes nothing; prune --set removes a set after showing it', async () => {
    await write('a/one.yaml', vol('one'));
    assert.equal((await plugctl('apply', '-f', join(work, 'a'))).code, 0);
    await rm(join(work, 'a/one.yaml'));
    const empty = await plugctl('apply', '-f', join(work, 'a'));
    assert.equal(empty.code, 0);
    assert.match(empty.err, /an empty source never removes plugins/);
    assert.match(empty.err, /plugctl prune --set files:/);
    assert.deepEqual(await installedNames(), ['one:latest']);

    const set = `files:${join(work, 'a')}`;
    const dry = await plugctl('prune', '--set', set, '--dry-run');
    assert.match(dry.out, /dockerplugin\/one \(one:latest\): delete/);
    assert.deepEqual(await installedNames(), ['one:latest'], 'a dry run removes nothing');
    const pruned = await plugctl('prune', '--set', set);
    assert.equal(pruned.code, 0, pruned.out);
    assert.deepEqual(await installedNames(), []);
  });

  it('reads documents from standard input into a named set', async () => {
    let out = '';
    let err = '';
    const code = await main(
      ['--state-dir', state, 'apply', '-f', '-', '--set', 'piped'],
      { out: (t) => void (out += t), err: (t) => void (err += t), readStdin: async () => vol('piped') },
      { ...process.env, DOCKER_HOST: env().dockerHost },
    );
    assert.equal(code, 0, out + err);
    assert.equal((await inspect('piped'))?.Enabled, true);
    const unnamed = await main(
      ['--state-dir', state, 'apply', '-f', '-'],
      { out: () => undefined, err: (t) => void (err += t), readStdin: async () => vol('piped') },
      { ...process.env, DOCKER_HOST: env().dockerHost },
    );
    assert.equal(unnamed, 2);
    assert.match(err, /standard input \(-f -\) .* --set NAME/);
  });

  it('a lost --node-labels override deletes nothing, and a skipped document is reported', async () => {
    await write('a/storage.yaml', vol('storage', ['  nodeSelector: { matchLabels: { role: storage } }']));
    const withOverride = await plugctl('--node-labels', 'role=storage', 'apply', '-f', join(work, 'a'));
    assert.equal(withOverride.code, 0, withOverride.out + withOverride.err);
    assert.equal((await inspect('storage'))?.Enabled, true);

    const forgot = await plugctl('apply', '-f', join(work, 'a'));
    assert.equal(forgot.code, 0, forgot.out + forgot.err);
    assert.match(forgot.out, /dockerplugin\/storage skipped: .*lost override never deletes/);
    assert.equal((await inspect('storage'))?.Enabled, true, 'still installed');
    const diff = await plugctl('diff', '-f', join(work, 'a'));
    assert.equal(diff.code, 0, 'nothing to change');
    assert.match(diff.out, /dockerplugin\/storage \(storage:latest\): skipped/);
  });

  it('labels from the engine’s daemon configuration select documents', async () => {
    await write('a/storage.yaml', vol('storage', ['  nodeSelector: { matchLabels: { role: storage } }']));
    await write('a/web.yaml', vol('web', ['  nodeSelector: { matchLabels: { role: web } }']));
    try {
      await envScript('restart-dockerd', { PE_ENGINE_LABELS: 'role=storage' });
      const result = await plugctl('apply', '-f', join(work, 'a'));
      assert.equal(result.code, 0, result.out + result.err);
      assert.match(result.out, /dockerplugin\/web skipped/);
      assert.deepEqual(await installedNames(), ['storage:latest']);
      // The engine no longer says role=storage: a persistent source deselects it, so it goes.
      await envScript('restart-dockerd', { PE_ENGINE_LABELS: '' });
      const after = await plugctl('apply', '-f', join(work, 'a'));
      assert.equal(after.code, 0, after.out + after.err);
      assert.match(after.out, /dockerplugin\/storage deleted/);
      assert.deepEqual(await installedNames(), []);
    } finally {
      await envScript('restart-dockerd', { PE_ENGINE_LABELS: '' });
    }
  });

  it('a labels file is a persistent source; removing its label removes the plugin', async () => {
    await write('a/storage.yaml', vol('storage', ['  nodeSelector: { matchLabels: { role: storage } }']));
    await writeFile(join(state, 'labels'), '# this host\nrole=storage\n');
    assert.equal((await plugctl('apply', '-f', join(work, 'a'))).code, 0);
    assert.equal((await inspect('storage'))?.Enabled, true);
    await writeFile(join(state, 'labels'), 'role=web\n');
    const deselected = await plugctl('apply', '-f', join(work, 'a'));
    assert.equal(deselected.code, 0, deselected.out);
    assert.match(deselected.out, /dockerplugin\/storage deleted/);
    assert.equal(await inspect('storage'), undefined);
    await writeFile(join(state, 'labels'), 'role=\n=web\n');
    const bad = await plugctl('apply', '-f', join(work, 'a'));
    assert.equal(bad.code, 2);
    assert.match(bad.err, /labels:2: expected key=value/);
  });

  it('narrowed grants of an installed plugin are reported, and nothing is removed', async () => {
    const priv = (grants: string): string =>
      [
        'apiVersion: plugctl.dev/v1alpha1',
        'kind: DockerPlugin',
        'metadata: { name: priv }',
        'spec:',
        `  remote: ${env().registry}/test/priv:1.0`,
        '  alias: priv',
        `  privileges: ${grants}`,
        '',
      ].join('\n');
    const all =
      '[{ name: network, value: [host] }, { name: mount, value: [/tmp] }, { name: device, value: [/dev/null] }, { name: capabilities, value: [CAP_SYS_ADMIN] }]';
    const file = await write('a/priv.yaml', priv(all));
    const installed = await plugctl('apply', '-f', file);
    assert.equal(installed.code, 0, installed.out + installed.err);
    await writeFile(
      file,
      priv(
        '[{ name: network, value: [host] }, { name: mount, value: [/tmp] }, { name: device, value: [/dev/null] }, { name: capabilities, value: [CAP_NET_ADMIN] }]',
      ),
    );
    const diff = await plugctl('diff', '-f', file);
    assert.equal(diff.code, 1, 'a would-be-blocked plugin is a difference');
    assert.match(diff.out, /PRIVILEGES_MISMATCH/);
    assert.match(diff.out, /CAP_SYS_ADMIN/);
    assert.match(diff.out, /CAP_NET_ADMIN/);
    const get = await plugctl('get', '-f', file);
    assert.match(get.out, /OutOfSync \(blocked PRIVILEGES_MISMATCH\)/);
    const apply = await plugctl('apply', '-f', file);
    assert.equal(apply.code, 1);
    assert.equal((await inspect('priv'))?.Enabled, true, 'not removed, not disabled');
  });

  it('a hand-installed plugin reusing an owned name from another remote survives apply and pruning', async () => {
    const file = await write('a/w.yaml', vol('w'));
    assert.equal((await plugctl('apply', '-f', file)).code, 0);
    const ours = await inspect('w');
    await docker(['plugin', 'rm', '-f', 'w']);
    await docker([
      'plugin',
      'install',
      '--grant-all-permissions',
      '--disable',
      '--alias',
      'w',
      `${env().registry}/test/vol:2.0`,
    ]);
    const theirs = await inspect('w');
    assert.notEqual(theirs?.Id, ours?.Id);

    const apply = await plugctl('apply', '-f', file);
    assert.equal(apply.code, 1);
    assert.match(apply.out, /NAME_CONFLICT.*not the one plugctl installed/);
    let now = await inspect('w');
    assert.equal(now?.Id, theirs?.Id, 'not upgraded over');
    assert.match(now?.PluginReference ?? '', /test\/vol:2\.0$/);

    await rm(file);
    await write('a/other.yaml', vol('other'));
    const prune = await plugctl('apply', '-f', join(work, 'a'));
    assert.equal(prune.code, 0, prune.out + prune.err);
    now = await inspect('w');
    assert.equal(now?.Id, theirs?.Id, 'not pruned');
  });

  it('diff exits 0 without differences, 1 with differences, 2 for errors', async () => {
    const file = await write('a/one.yaml', vol('one'));
    assert.equal((await plugctl('diff', '-f', file)).code, 1, 'not installed yet');
    assert.equal((await plugctl('apply', '-f', file)).code, 0);
    assert.equal((await plugctl('diff', '-f', file)).code, 0);
    await write(
      'a/bad.yaml',
      'apiVersion: plugctl.dev/v1alpha1\nkind: DockerPlugin\nmetadata: { name: bad }\n',
    );
    const invalid = await plugctl('diff', '-f', join(work, 'a'));
    assert.equal(invalid.code, 2);
    assert.match(invalid.out, /1 invalid document/);
    await rm(join(work, 'a/bad.yaml'));
    await write('a/two.yaml', vol('two'));
    await envScript('stop-registry');
    try {
      const unreachable = await plugctl('diff', '-f', join(work, 'a'));
      assert.equal(unreachable.code, 2, unreachable.out);
      assert.match(unreachable.out, /REGISTRY_UNREACHABLE/);
    } finally {
      await envScript('start-registry');
    }
  });

  it('migrates a version 1 inventory without losing ownership or pruning anything', async () => {
    const file = await write('a/one.yaml', vol('one'));
    await docker([
      'plugin',
      'install',
      '--grant-all-permissions',
      '--alias',
      'one',
      `${env().registry}/test/vol:1.0`,
    ]);
    await docker([
      'plugin',
      'install',
      '--grant-all-permissions',
      '--alias',
      'old',
      `${env().registry}/test/vol:1.0`,
    ]);
    const v1 = {
      version: 1,
      plugins: {
        'one:latest': { key: 'one', remote: `${env().registry}/test/vol:1.0`, inUse: 'Wait' },
        'old:latest': { key: 'old', remote: `${env().registry}/test/vol:1.0`, inUse: 'Wait' },
      },
    };
    await writeFile(join(state, 'inventory.json'), JSON.stringify(v1));
    const apply = await plugctl('apply', '-f', file);
    assert.equal(apply.code, 0, apply.out + apply.err);
    assert.deepEqual(await installedNames(), ['old:latest', 'one:latest'], 'the migration prunes nothing');
    const inventory = JSON.parse(await readFile(join(state, 'inventory.json'), 'utf8')) as {
      version: number;
      plugins: Record<string, { set?: string }>;
    };
    assert.equal(inventory.version, 2);
    assert.equal(inventory.plugins['one:latest']?.set, `files:${join(work, 'a', 'one.yaml')}`);
    assert.equal(inventory.plugins['old:latest']?.set, undefined, 'still owned, by no set yet');
    assert.match((await plugctl('get')).out, /old:latest\s+true\s+yes\s+\(unassigned\)/);
  });
});
