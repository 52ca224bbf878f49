/**
 * Ready means the plugin answers, for one-shot `plugctl apply`: a plugin the apply enabled is probed
 * with Plugin.Activate, on both stores (the private dockerd of test/env, and the embedded store
 * running the plugin under runc), through the real CLI. A plugin that answers is reported Ready and
 * the exit is 0; a wedged one is reported Unresponsive with the error and the exit is 1, and it is
 * left enabled.
 *
 * Wedging: the fixture's plugind holds every request unanswered while /var/lib/plugind/hang exists
 * in its rootfs and removes that file when it starts (so a restart cures it). A *directory* of that
 * name is something its unlink() cannot remove, so a plugin enabled with it wedges from its first
 * request on — a plugin that comes up and never answers. The plugin is installed disabled first, so
 * its rootfs exists to put the directory in before the enable under test.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { runPlugctl, type CliResult } from './cli.ts';
import { describeIntegration, docker, useEnv } from './harness.ts';

interface PluginJson {
  Id: string;
  Enabled: boolean;
}

describeIntegration('plugctl apply probes the plugins it enabled', () => {
  const env = useEnv();
  let work: string;

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'plugctl-apply-ready-'));
  });

  afterEach(async () => {
    const ids = (await docker(['plugin', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await docker(['plugin', 'rm', '-f', ...ids]);
    await rm(work, { recursive: true, force: true });
  });

  async function document(enabled: boolean): Promise<string> {
    const file = join(work, 'docs', 'vol.yaml');
    await mkdir(join(work, 'docs'), { recursive: true });
    await writeFile(
      file,
      [
        'apiVersion: plugctl.dev/v1alpha1',
        'kind: DockerPlugin',
        'metadata: { name: vol }',
        'spec:',
        `  remote: ${env().registry}/test/vol:1.0`,
        '  alias: vol',
        `  enabled: ${enabled}`,
        '  privileges: [{ name: network, value: [host] }]',
        '  healthCheck: { timeoutSeconds: 1 }',
        '',
      ].join('\n'),
    );
    return file;
  }

  /** The checks both stores pass; `global` selects the store, `rootfs` finds the installed plugin's. */
  function checks(
    global: () => string[],
    rootfs: () => Promise<string>,
    enabled: () => Promise<boolean | undefined>,
    cleanup: () => Promise<void>,
  ): void {
    const plugctl = (...args: string[]): Promise<CliResult> =>
      runPlugctl(join(work, 'state'), env().dockerHost, [...global(), ...args]);

    it('reports a plugin that answers Plugin.Activate Ready, exit 0', async () => {
      try {
        const result = await plugctl('apply', '-f', await document(true));
        assert.equal(result.code, 0, result.out + result.err);
        assert.match(result.out, /^dockerplugin\/vol created, Ready$/m);
        assert.equal(await enabled(), true);
      } finally {
        await cleanup();
      }
    });

    it('reports a plugin that never answers Unresponsive with the error, exit 1, left enabled', async () => {
      try {
        const disabled = await plugctl('apply', '-f', await document(false));
        assert.equal(disabled.code, 0, disabled.out + disabled.err);
        const hang = join(await rootfs(), 'var/lib/plugind/hang');
        await mkdir(hang, { recursive: true });

        const started = performance.now();
        const result = await plugctl('apply', '-f', await document(true));
        const seconds = (performance.now() - started) / 1000;
        assert.equal(result.code, 1, result.out + result.err);
        assert.match(
          result.out,
          /^dockerplugin\/vol configured, not Ready \[waiting PLUGIN_UNRESPONSIVE\]: Unresponsive: vol:latest was enabled but does not answer Plugin\.Activate: .*no answer within \d+ ms/m,
        );
        assert.match(result.out, /1 failed/);
        assert.equal(await enabled(), true, 'apply reports; it does not disable or restart');
        assert.ok(existsSync(hang), 'the plugin was not restarted');
        // one probe allowed timeoutSeconds (1 s): apply does not wait for more
        assert.ok(seconds < 30, `apply took ${seconds.toFixed(1)} s`);
      } finally {
        await cleanup();
      }
    });
  }

  async function inspectDocker(): Promise<PluginJson | undefined> {
    const result = await docker(['plugin', 'inspect', 'vol:latest'], { check: false });
    if (result.code !== 0) return undefined;
    return (JSON.parse(result.stdout) as PluginJson[])[0];
  }

  describe('docker store', () => {
    checks(
      () => [],
      async () => join(env().dir, 'root', 'plugins', (await inspectDocker())!.Id, 'rootfs'),
      async () => (await inspectDocker())?.Enabled,
      async () => undefined,
    );
  });

  describe('embedded store (runc)', () => {
    const root = (): string => join(work, 'root');
    const global = (): string[] => ['--store', 'embedded', '--root', root()];
    /** moby's layout: <root>/<id>/config.json holds the plugin as the store keeps it */
    const plugin = async (): Promise<{ id: string; enabled: boolean } | undefined> => {
      for (const id of await readdir(root()).catch(() => [] as string[])) {
        const file = join(root(), id, 'config.json');
        if (!existsSync(file)) continue;
        const json = JSON.parse(await readFile(file, 'utf8')) as {
          plugin: { Name: string; Enabled: boolean };
        };
        if (json.plugin.Name === 'vol:latest') return { id, enabled: json.plugin.Enabled };
      }
      return undefined;
    };
    checks(
      global,
      async () => join(root(), (await plugin())!.id, 'rootfs'),
      async () => (await plugin())?.enabled,
      async () => {
        await runPlugctl(join(work, 'state'), env().dockerHost, [...global(), 'rm', '-f', 'vol']);
      },
    );
  });
});
