/**
 * End to end: documents on disk -> `plugctl apply` -> a real dockerd pulling real plugins from a real
 * registry. Every test asserts the host's state afterwards (through the docker CLI), not the calls made.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { buildPlugind, makeVolContext, volConfig } from '../conformance/fixtures.ts';
import { runPlugctl, type CliResult } from './cli.ts';
import { describeIntegration, docker, envScript, useEnv } from './harness.ts';

interface PluginJson {
  Id: string;
  Name: string;
  Enabled: boolean;
  PluginReference: string;
  Settings: { Env: string[]; Args: string[] };
}

describeIntegration('plugctl apply against a real dockerd', () => {
  const env = useEnv();
  let state: string;
  let docs: string;

  beforeEach(async () => {
    state = await mkdtemp(join(tmpdir(), 'plugctl-state-'));
    docs = await mkdtemp(join(tmpdir(), 'plugctl-docs-'));
  });

  afterEach(async () => {
    const ids = (await docker(['plugin', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await docker(['plugin', 'rm', '-f', ...ids]);
    await rm(state, { recursive: true, force: true });
    await rm(docs, { recursive: true, force: true });
  });

  const plugctl = (...args: string[]): Promise<CliResult> => runPlugctl(state, env().dockerHost, args);

  async function write(file: string, ...documents: string[]): Promise<string> {
    const path = join(docs, file);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, documents.join('---\n'));
    return path;
  }

  function vol(
    name: string,
    fields: {
      tag?: string;
      alias?: string;
      enabled?: boolean;
      env?: Record<string, string>;
      extra?: string;
    } = {},
  ): string {
    const lines = [
      'apiVersion: plugctl.dev/v1alpha1',
      'kind: DockerPlugin',
      `metadata: { name: ${name} }`,
      'spec:',
      `  remote: ${env().registry}/test/vol:${fields.tag ?? '1.0'}`,
      `  alias: ${fields.alias ?? name}`,
      `  enabled: ${fields.enabled ?? true}`,
      '  privileges: [{ name: network, value: [host] }]',
    ];
    if (fields.env !== undefined) lines.push(`  settings: { env: ${JSON.stringify(fields.env)} }`);
    if (fields.extra !== undefined) lines.push(fields.extra);
    return `${lines.join('\n')}\n`;
  }

  async function inspect(name: string): Promise<PluginJson | undefined> {
    const result = await docker(['plugin', 'inspect', name], { check: false });
    if (result.code !== 0) return undefined;
    return (JSON.parse(result.stdout) as PluginJson[])[0];
  }

  function envOf(plugin: PluginJson): Record<string, string> {
    return Object.fromEntries(
      plugin.Settings.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
  }

  async function hostSnapshot(): Promise<string> {
    const ids = (await docker(['plugin', 'ls', '-q', '--no-trunc'])).stdout
      .split('\n')
      .filter(Boolean)
      .sort();
    if (ids.length === 0) return '[]';
    const plugins = JSON.parse((await docker(['plugin', 'inspect', ...ids])).stdout) as PluginJson[];
    return JSON.stringify(plugins.map((p) => [p.Id, p.Name, p.Enabled, p.PluginReference, p.Settings]));
  }

  it('cold apply installs and enables every plugin with its settings and privileges', async () => {
    await write('vol.yaml', vol('vol', { env: { GREETING: 'hi there', DEBUG: '1' } }));
    await write(
      'nested/priv.yaml',
      [
        'apiVersion: plugctl.dev/v1alpha1',
        'kind: DockerPlugin',
        'metadata: { name: priv }',
        'spec:',
        `  remote: ${env().registry}/test/priv:1.0`,
        '  privileges:', // deliberately not in the order the plugin lists them
        '    - { name: network, value: [host] }',
        '    - { name: capabilities, value: [CAP_SYS_ADMIN] }',
        '    - { name: mount, value: [/tmp] }',
        '    - { name: device, value: [/dev/null] }',
      ].join('\n'),
    );
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 0, result.out + result.err);
    assert.match(result.out, /dockerplugin\/vol created/);
    assert.match(result.out, /dockerplugin\/priv created/);

    const plugin = await inspect('vol:latest');
    assert.ok(plugin, 'vol is installed');
    assert.equal(plugin.Enabled, true);
    assert.equal(plugin.PluginReference, `${env().registry}/test/vol:1.0`);
    assert.equal(envOf(plugin).GREETING, 'hi there');
    assert.equal(envOf(plugin).DEBUG, '1');
    const priv = await inspect(`${env().registry}/test/priv:1.0`);
    assert.equal(priv?.Enabled, true);
  });

  it('a second apply plans only no-ops and changes nothing on the host', async () => {
    await write('vol.yaml', vol('vol', { env: { GREETING: 'again' } }));
    assert.equal((await plugctl('apply', '-f', docs)).code, 0);
    const before = await hostSnapshot();

    const diff = await plugctl('diff', '-f', docs);
    assert.equal(diff.code, 0, diff.out);
    const second = await plugctl('apply', '-f', docs);
    assert.equal(second.code, 0);
    assert.match(second.out, /dockerplugin\/vol unchanged/);
    assert.match(
      second.out,
      /0 created, 0 configured, 0 deleted, 1 unchanged, 0 skipped, 0 failed, 0 invalid documents/,
    );
    assert.equal(await hostSnapshot(), before);
  });

  it('disables a plugin when the document says enabled: false', async () => {
    await write('vol.yaml', vol('vol'));
    assert.equal((await plugctl('apply', '-f', docs)).code, 0);
    await write('vol.yaml', vol('vol', { enabled: false }));
    const diff = await plugctl('diff', '-f', docs);
    assert.equal(diff.code, 1);
    assert.match(diff.out, /disable/);
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 0, result.out);
    assert.equal((await inspect('vol:latest'))?.Enabled, false);
  });

  it('changes the settings of an enabled plugin and enables it again', async () => {
    await write('vol.yaml', vol('vol', { env: { GREETING: 'one' } }));
    assert.equal((await plugctl('apply', '-f', docs)).code, 0);
    const id = (await inspect('vol:latest'))?.Id;

    await write('vol.yaml', vol('vol', { env: { GREETING: 'two', DEBUG: '1' } }));
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 0, result.out);
    assert.match(result.out, /dockerplugin\/vol configured/);
    const plugin = await inspect('vol:latest');
    assert.equal(plugin?.Id, id, 'same plugin, reconfigured in place');
    assert.equal(plugin?.Enabled, true);
    assert.deepEqual([envOf(plugin!).GREETING, envOf(plugin!).DEBUG], ['two', '1']);

    // Removing a key from the document reverts it to the plugin's default.
    await write('vol.yaml', vol('vol', { env: { GREETING: 'two' } }));
    assert.equal((await plugctl('apply', '-f', docs)).code, 0);
    assert.equal(envOf((await inspect('vol:latest'))!).DEBUG, '0');
  });

  it('upgrades 1.0 -> 2.0 keeping the declared settings and the plugin enabled', async () => {
    await write('vol.yaml', vol('vol', { env: { GREETING: 'kept' } }));
    assert.equal((await plugctl('apply', '-f', docs)).code, 0);
    const id = (await inspect('vol:latest'))?.Id;

    await write('vol.yaml', vol('vol', { tag: '2.0', env: { GREETING: 'kept' } }));
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 0, result.out + result.err);
    const plugin = await inspect('vol:latest');
    assert.equal(plugin?.Id, id, 'an upgrade keeps the plugin ID');
    assert.equal(plugin?.PluginReference, `${env().registry}/test/vol:2.0`);
    assert.equal(plugin?.Enabled, true);
    assert.equal(envOf(plugin!).GREETING, 'kept');
    assert.equal((await plugctl('diff', '-f', docs)).code, 0, 'converged after the upgrade');
  });

  it('brings up a dependsOn chain in one apply: the dependency first, then its dependent', async () => {
    await write('chain.yaml', vol('top', { extra: '  dependsOn: [base]' }), vol('base'));
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 0, result.out + result.err);
    assert.equal((await inspect('base:latest'))?.Enabled, true);
    assert.equal((await inspect('top:latest'))?.Enabled, true);
    assert.equal((await plugctl('diff', '-f', docs)).code, 0);
  });

  it('prunes an owned plugin that is no longer declared and leaves an unmanaged one alone', async () => {
    await write('vol.yaml', vol('vol'));
    await write('other.yaml', vol('other'));
    assert.equal((await plugctl('apply', '-f', docs)).code, 0);
    await docker([
      'plugin',
      'install',
      '--grant-all-permissions',
      '--alias',
      'mine',
      `${env().registry}/test/vol:2.0`,
    ]);

    await rm(join(docs, 'other.yaml'));
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 0, result.out);
    assert.match(result.out, /dockerplugin\/other deleted/);
    assert.equal(await inspect('other:latest'), undefined, 'owned and undeclared: removed');
    assert.equal((await inspect('mine:latest'))?.Enabled, true, 'unmanaged: untouched');
    assert.equal((await inspect('vol:latest'))?.Enabled, true, 'still declared: kept');
  });

  it('refuses a privilege mismatch, installs nothing, and names both lists', async () => {
    await write(
      'priv.yaml',
      [
        'apiVersion: plugctl.dev/v1alpha1',
        'kind: DockerPlugin',
        'metadata: { name: priv }',
        'spec:',
        `  remote: ${env().registry}/test/priv:1.0`,
        '  privileges:', // every element but the first of what the plugin asks (CVE-2026-33997's blind spot)
        '    - { name: mount, value: [/tmp] }',
        '    - { name: device, value: [/dev/null] }',
        '    - { name: capabilities, value: [CAP_SYS_ADMIN] }',
      ].join('\n'),
    );
    await write('vol.yaml', vol('vol'));
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 1);
    assert.match(
      result.out,
      /dockerplugin\/priv failed \[stalled PRIVILEGES_MISMATCH\]: privileges do not match/,
    );
    assert.match(result.out, /asks for .*network=\[host\]/);
    assert.match(result.out, /grants .*mount=\[\/tmp\]/);
    assert.equal(await inspect(`${env().registry}/test/priv:1.0`), undefined, 'nothing installed');
    assert.equal((await inspect('vol:latest'))?.Enabled, true, 'the other plugin still converged');
  });

  it('reports a registry that is down as a clear error', async () => {
    await write(
      'vol.yaml',
      vol('vol', { extra: '  grantAllPrivileges: true' }).replace(/ {2}privileges:.*\n/, ''),
    );
    await envScript('stop-registry');
    try {
      const result = await plugctl('apply', '-f', docs);
      assert.equal(result.code, 1);
      assert.match(result.out, /dockerplugin\/vol failed/);
      assert.match(result.out, /127\.0\.0\.1:5000/, 'the error names the registry');
      assert.match(
        result.out,
        /REGISTRY_UNREACHABLE/,
        'reported as a registry failure, not as "no privileges"',
      );
      assert.match(result.out, /ECONNREFUSED/);
      assert.equal(await inspect('vol:latest'), undefined);
    } finally {
      await envScript('start-registry');
    }
    assert.equal((await plugctl('apply', '-f', docs)).code, 0, 'converges once the registry is back');
  });

  it('reports invalid YAML with file:line:column, changes nothing for it, and applies the valid documents', async () => {
    await write('keep.yaml', vol('keep'));
    assert.equal((await plugctl('apply', '-f', docs)).code, 0);

    // keep.yaml becomes broken: its plugin must not be pruned; good.yaml beside it still applies.
    const broken = await write(
      'keep.yaml',
      'apiVersion: plugctl.dev/v1alpha1\nkind: DockerPlugin\nmetadata: { name: keep\nspec: [\n',
    );
    await write('good.yaml', vol('good'));
    await write('bad-field.yaml', vol('badfield', { extra: '  inUse: Sometimes' }));
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 1);
    assert.match(result.err, new RegExp(`${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+`));
    assert.match(result.err, /bad-field\.yaml:\d+:\d+.*spec\.inUse/);
    assert.equal((await inspect('keep:latest'))?.Enabled, true, 'the broken document changed nothing');
    assert.equal((await inspect('good:latest'))?.Enabled, true, 'the valid document applied');
    assert.equal(await inspect('badfield:latest'), undefined);
  });

  async function manifestDigest(tag: string): Promise<string> {
    const manifest = await fetch(`http://${env().registry}/v2/test/vol/manifests/${tag}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    const digest = manifest.headers.get('docker-content-digest');
    assert.ok(
      digest !== null && digest.startsWith('sha256:'),
      `the registry names the digest of test/vol:${tag}`,
    );
    return digest;
  }

  it('never sends a digest reference to an engine older than 25.0.4, and the daemon stays up', async () => {
    const digest = await manifestDigest('1.0');
    await write('pinned.yaml', vol('pinned').replace(`test/vol:1.0`, `test/vol@${digest}`));
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 1);
    assert.match(result.out, /DIGEST_UNSUPPORTED_BY_ENGINE/);
    assert.match(result.out, new RegExp(env().engineVersion.split('+')[0]!.replace(/\./g, '\\.')));
    assert.match(result.out, /repo:tag@digest/, 'says how to write a pin this engine can honour');
    const ping = await docker(['version', '--format', '{{.Server.Version}}']);
    assert.equal(ping.code, 0, 'dockerd is still alive');
    assert.equal(await inspect('pinned:latest'), undefined);
  });

  it('honours a tag@digest pin on an old engine by pulling the tag and checking the content', async () => {
    const digest = await manifestDigest('1.0');
    await write('pinned.yaml', vol('pinned').replace(`test/vol:1.0`, `test/vol:1.0@${digest}`));
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 0, result.out);
    const plugin = await inspect('pinned:latest');
    assert.equal(plugin?.Enabled, true);
    assert.equal(plugin?.PluginReference, `${env().registry}/test/vol:1.0`, 'installed by tag');
    assert.equal((await plugctl('diff', '-f', docs)).code, 0, 'converged: the pin is satisfied');
    assert.equal((await docker(['version'])).code, 0, 'dockerd is still alive');

    // A pin the tag no longer points at is refused before anything reaches the engine.
    const other = await manifestDigest('2.0');
    await write(
      'pinned.yaml',
      vol('pinned2', { alias: 'pinned2' }).replace(`test/vol:1.0`, `test/vol:1.0@${other}`),
    );
    const refused = await plugctl('apply', '-f', docs);
    assert.equal(refused.code, 1);
    assert.match(refused.out, /PIN_MISMATCH/);
    assert.match(refused.out, new RegExp(`now points at ${digest}`));
    assert.equal(await inspect('pinned2:latest'), undefined);
  });

  it('builds a plugin from a context in the repository, rebuilds it when the context changes', async () => {
    const plugind = await buildPlugind(join(docs, '..', `${docs.split('/').pop()}-plugind`));
    try {
      const context = await makeVolContext(join(docs, 'plugins', 'helper'), plugind, 'one');
      const document = (privileges: string): string =>
        [
          'apiVersion: plugctl.dev/v1alpha1',
          'kind: DockerPlugin',
          'metadata: { name: helper }',
          'spec:',
          '  build: { context: ../plugins/helper }',
          `  privileges: ${privileges}`,
          '  settings: { env: { DEBUG: "3" } }',
          '',
        ].join('\n');
      await write('docs/helper.yaml', document('[{ name: network, value: [host] }]'));
      const docsDir = join(docs, 'docs');

      const first = await plugctl('apply', '-f', docsDir);
      assert.equal(first.code, 0, first.out + first.err);
      const built = await inspect('helper:latest');
      assert.equal(built?.Enabled, true);
      assert.equal(envOf(built!)['DEBUG'], '3');
      assert.deepEqual(built?.Settings.Args, ['--label=one']);
      assert.equal(
        (await plugctl('diff', '-f', docsDir)).code,
        0,
        'converged: the same context is not rebuilt',
      );

      // A new version of the context in the repository (a fresh checkout also changes mtimes).
      await writeFile(join(context, 'config.json'), JSON.stringify(volConfig('two')));
      const diff = await plugctl('diff', '-f', docsDir);
      assert.equal(diff.code, 1);
      assert.match(diff.out, /build .*plugins\/helper {2}\(the context changed/);
      const second = await plugctl('apply', '-f', docsDir);
      assert.equal(second.code, 0, second.out + second.err);
      const rebuilt = await inspect('helper:latest');
      assert.notEqual(rebuilt?.Id, built?.Id, 'rebuilt');
      assert.equal(rebuilt?.Enabled, true);
      assert.deepEqual(rebuilt?.Settings.Args, ['--label=two']);
      assert.equal(envOf(rebuilt!)['DEBUG'], '3', 'the declared settings are applied again');

      // Creating grants whatever the config asks: plugctl compares before it builds.
      await docker(['plugin', 'rm', '-f', 'helper:latest']);
      await write('docs/helper.yaml', document('[]'));
      const refused = await plugctl('apply', '-f', docsDir);
      assert.equal(refused.code, 1);
      assert.match(
        refused.out,
        /PRIVILEGES_MISMATCH\]: privileges do not match: the context \S+plugins\/helper asks for network=\[host\]/,
      );
      assert.equal(await inspect('helper:latest'), undefined, 'nothing built');
    } finally {
      await rm(plugind, { force: true });
    }
  });
});
