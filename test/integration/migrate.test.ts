/**
 * Migrating from another tool (docs/migrating.md), against a real dockerd and registry: a plugin that
 * `docker plugin install` put there, as Ansible's docker_plugin module and Terraform's docker_plugin
 * resource do, is adopted by a document declaring its name and remote — not reinstalled — then
 * configured as declared, and removed when its document goes away.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { runPlugctl, type CliResult } from './cli.ts';
import { describeIntegration, docker, envScript, useEnv } from './harness.ts';

interface PluginJson {
  Id: string;
  Enabled: boolean;
  PluginReference: string;
  Settings: { Env: string[] };
}

describeIntegration('migrating: adopting plugins another tool installed', () => {
  const env = useEnv();
  let state: string;
  let work: string;

  beforeEach(async () => {
    state = await mkdtemp(join(tmpdir(), 'plugctl-migrate-state-'));
    work = await mkdtemp(join(tmpdir(), 'plugctl-migrate-docs-'));
  });

  afterEach(async () => {
    await envScript('reset');
    await rm(state, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  const plugctl = (...args: string[]): Promise<CliResult> => runPlugctl(state, env().dockerHost, args);

  async function inspect(name: string): Promise<PluginJson | undefined> {
    const result = await docker(['plugin', 'inspect', `${name}:latest`], { check: false });
    return result.code === 0 ? (JSON.parse(result.stdout) as PluginJson[])[0] : undefined;
  }

  async function document(name: string, remote: string, extra: string[] = []): Promise<void> {
    await mkdir(work, { recursive: true });
    const text = [
      'apiVersion: plugctl.dev/v1alpha1',
      'kind: DockerPlugin',
      `metadata: { name: ${name} }`,
      'spec:',
      `  remote: ${remote}`,
      `  alias: ${name}`,
      '  privileges: [{ name: network, value: [host] }]',
      ...extra,
      '',
    ].join('\n');
    await writeFile(join(work, `${name}.yaml`), text);
  }

  it('a plugin installed with docker plugin install is adopted in place, configured, and pruned with its document', async () => {
    const remote = `${env().registry}/test/vol:1.0`;
    // what the Ansible module (Docker SDK) and the Terraform provider do: install under an alias
    await docker(['plugin', 'install', '--grant-all-permissions', '--alias', 'legacy', remote]);
    const before = await inspect('legacy');
    assert.ok(before?.Enabled);

    await document('legacy', remote, ['  settings:', '    env: { GREETING: migrated }']);
    const diff = await plugctl('diff', '-f', work);
    assert.equal(diff.code, 1, diff.out + diff.err);
    assert.match(diff.out, /adopt {2}\(installed from the declared remote; plugctl takes ownership\)/);
    assert.equal(
      (await inspect('legacy'))?.Settings.Env.includes('GREETING=migrated'),
      false,
      'diff changes nothing',
    );

    const apply = await plugctl('apply', '-f', work);
    assert.equal(apply.code, 0, apply.out + apply.err);
    const after = await inspect('legacy');
    assert.equal(after?.Id, before?.Id, 'adopted, not reinstalled');
    assert.ok(after?.Enabled);
    assert.ok(after?.Settings.Env.includes('GREETING=migrated'), JSON.stringify(after?.Settings.Env));
    const inventory = await readFile(join(state, 'inventory.json'), 'utf8');
    assert.ok(inventory.includes(before.Id), 'recorded as plugctl-owned');
    assert.equal((await plugctl('diff', '-f', work)).code, 0, 'converged');

    // the document goes away (another stays, so the source is not empty): the adopted plugin goes too
    await document('other', `${env().registry}/test/vol:2.0`);
    await rm(join(work, 'legacy.yaml'));
    const prune = await plugctl('apply', '-f', work);
    assert.equal(prune.code, 0, prune.out + prune.err);
    assert.equal(await inspect('legacy'), undefined);
  });

  it('a plugin of the declared name from another remote is left alone (NAME_CONFLICT)', async () => {
    await docker([
      'plugin',
      'install',
      '--grant-all-permissions',
      '--alias',
      'legacy',
      `${env().registry}/test/vol:2.0`,
    ]);
    const theirs = await inspect('legacy');
    await document('legacy', `${env().registry}/test/vol:1.0`);
    const apply = await plugctl('apply', '-f', work);
    assert.equal(apply.code, 1);
    assert.match(apply.out, /NAME_CONFLICT/);
    const now = await inspect('legacy');
    assert.equal(now?.Id, theirs?.Id);
    assert.match(now?.PluginReference ?? '', /test\/vol:2\.0$/);
  });
});
