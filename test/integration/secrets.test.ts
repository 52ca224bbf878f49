/**
 * Secret-valued settings on a real dockerd and on the embedded store (runc): a secret read from a
 * file reaches the plugin, a changed file reconfigures it (under `plugctl run` too), a missing file
 * blocks only its own plugin with SECRET_UNAVAILABLE, and the secret's value appears in no command
 * output, no log line, no status file and no inventory of the whole run.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, realpath, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { describeIntegration, docker, useEnv } from './harness.ts';
import { waitFor } from '../wait.ts';

const CLI = new URL('../../bin/plugctl.js', import.meta.url).pathname;

interface PluginJson {
  Id: string;
  Name: string;
  Enabled: boolean;
  Settings: { Env: string[] };
}

interface Output {
  code: number | null;
  out: string;
  err: string;
}

describeIntegration('secret-valued settings', () => {
  const env = useEnv();
  let dir: string;
  /** every byte plugctl printed or logged in this test */
  let transcript: string[];
  let running: ChildProcess | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-secrets-'));
    transcript = [];
  });

  afterEach(async () => {
    if (running !== undefined && running.exitCode === null) {
      running.kill('SIGKILL');
      await new Promise((resolve) => running?.once('exit', resolve));
    }
    running = undefined;
    const ids = (await docker(['plugin', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await docker(['plugin', 'rm', '-f', ...ids]);
    await rm(dir, { recursive: true, force: true });
  });

  function cli(global: readonly string[], args: readonly string[]): Promise<Output> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...global, '--log-level', 'trace', ...args], {
        env: { ...process.env, DOCKER_HOST: env().dockerHost },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code) => {
        transcript.push(out, err);
        resolve({ code, out, err });
      });
    });
  }

  function startRun(global: readonly string[], docs: string): { logs: string[]; exited: Promise<void> } {
    const child = spawn(
      process.execPath,
      [
        CLI,
        ...global,
        '--log-level',
        'trace',
        'run',
        '-f',
        docs,
        '--listen',
        '127.0.0.1:0',
        // the default resync (5 min): only the watch on the secret file applies a change in time
      ],
      { env: { ...process.env, DOCKER_HOST: env().dockerHost }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running = child;
    const logs: string[] = [];
    child.stdout.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return { logs, exited };
  }

  function doc(name: string, greeting: string): string {
    return [
      'apiVersion: plugctl.dev/v1alpha1',
      'kind: DockerPlugin',
      `metadata: { name: ${name} }`,
      'spec:',
      `  remote: ${env().registry}/test/vol:1.0`,
      `  alias: ${name}`,
      '  privileges: [{ name: network, value: [host] }]',
      `  settings: { env: { GREETING: ${greeting}, DEBUG: "1" } }`,
      '',
    ].join('\n');
  }

  /** Every file under `root` (the state directory: inventory, status, salt, labels...). */
  async function filesUnder(root: string): Promise<string[]> {
    const out: string[] = [];
    for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
      if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
    }
    return out;
  }

  async function scenario(
    global: readonly string[],
    installedEnv: (name: string) => Promise<Record<string, string> | undefined>,
    state: string,
  ): Promise<void> {
    const docs = join(dir, 'docs');
    const secretFile = join(dir, 'token');
    const values = [1, 2, 3].map(() => `plugctl-secret-${randomBytes(12).toString('hex')}`);
    await writeFile(secretFile, `${values[0]}\n`, { mode: 0o600 });
    await rm(docs, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(docs));
    const secretRef = `{ valueFrom: { file: ${secretFile} } }`;
    await writeFile(join(docs, 'vol.yaml'), doc('vol', secretRef));
    await writeFile(join(docs, 'fine.yaml'), doc('fine', '"plain"'));
    await writeFile(
      join(docs, 'broken.yaml'),
      doc('broken', `{ valueFrom: { file: ${join(dir, 'absent')} } }`),
    );

    // A missing secret blocks its own plugin only.
    const applied = await cli(global, ['apply', '-f', docs]);
    assert.equal(applied.code, 1, applied.out + applied.err);
    assert.match(
      applied.out,
      /dockerplugin\/broken failed.*SECRET_UNAVAILABLE.*spec\.settings\.env\.GREETING.*absent/,
    );
    assert.match(applied.out, /dockerplugin\/vol created/);
    assert.match(applied.out, /dockerplugin\/fine created/);
    assert.equal((await installedEnv('vol'))?.['GREETING'], values[0], 'the plugin got the secret');
    assert.equal((await installedEnv('fine'))?.['GREETING'], 'plain');
    assert.equal(await installedEnv('broken'), undefined, 'nothing installed without its secret');

    const yaml = await cli(global, ['get', '-o', 'yaml']);
    assert.equal(yaml.code, 0, yaml.err);
    assert.match(yaml.out, /GREETING: <secret>/);
    await cli(global, ['get', '-o', 'json', '-f', docs]);
    assert.equal((await cli(global, ['diff', '-f', docs])).code, 2);

    // A changed secret is a difference like any other setting, shown without its value.
    await writeFile(secretFile, `${values[1]}\n`);
    await unlink(join(docs, 'broken.yaml'));
    const diff = await cli(global, ['diff', '-f', docs]);
    assert.equal(diff.code, 1, diff.out + diff.err);
    assert.match(diff.out, /env GREETING <secret, changed>/);
    assert.match(diff.out, /set GREETING=<secret>/);

    // `plugctl run` applies it, and a later change of the file alone reconfigures again at once
    // (the file is watched; the resync is minutes away).
    const run = startRun(global, docs);
    await waitFor(async () => (await installedEnv('vol'))?.['GREETING'] === values[1], {
      what: 'run to apply the changed secret',
      timeoutMs: 60_000,
    });
    const statusFile = join(state, 'status.json');
    const hashed = await waitFor(
      async () => {
        const text = await readFile(statusFile, 'utf8').catch(() => '');
        return /"GREETING": "hmac-sha256:[0-9a-f]{64}"/.test(text) ? text : undefined;
      },
      { what: 'status.json to record the secret hash', timeoutMs: 30_000 },
    );
    await writeFile(secretFile, values[2]!);
    await waitFor(async () => (await installedEnv('vol'))?.['GREETING'] === values[2], {
      what: 'run to apply the secret file changed again',
      timeoutMs: 60_000,
    });
    await waitFor(
      async () => {
        const text = await readFile(statusFile, 'utf8').catch(() => '');
        return text !== hashed && /"GREETING": "hmac-sha256:/.test(text);
      },
      { what: 'status.json to record the new hash', timeoutMs: 30_000 },
    );
    running?.kill('SIGTERM');
    await run.exited;
    transcript.push(...run.logs);
    assert.equal((await installedEnv('vol'))?.['DEBUG'], '1');
    assert.match(await readFile(join(state, 'inventory.json'), 'utf8'), /"GREETING": "hmac-sha256:/);

    // Nothing plugctl printed, logged or wrote down holds any of the values.
    const written = await Promise.all((await filesUnder(state)).map((f) => readFile(f, 'utf8')));
    const everything = [...transcript, ...written].join('\n');
    assert.ok(transcript.join('').length > 1000, 'the logs were captured (trace level)');
    for (const value of values) {
      assert.ok(!everything.includes(value), `the secret ${value} leaked`);
      assert.ok(
        !everything.includes(Buffer.from(value).toString('base64').slice(0, 20)),
        'the secret leaked in base64',
      );
    }
  }

  it('docker store: the secret reaches the plugin, changes reconfigure it, and it leaks nowhere', async () => {
    const state = join(dir, 'state');
    await scenario(
      ['--state-dir', state, '--secrets-dir', dir],
      async (name) => {
        const result = await docker(['plugin', 'inspect', name], { check: false });
        if (result.code !== 0) return undefined;
        const plugin = (JSON.parse(result.stdout) as PluginJson[])[0]!;
        return Object.fromEntries(
          plugin.Settings.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
        );
      },
      state,
    );
  });

  it('embedded store: the same, with the plugins run by plugctl itself', async () => {
    const state = join(dir, 'state');
    const root = join(dir, 'root');
    const global = ['--store', 'embedded', '--root', root, '--state-dir', state, '--secrets-dir', dir];
    try {
      await scenario(
        global,
        async (name) => {
          // moby's layout: <root>/<id>/config.json holds the plugin with its settings
          const entries = await readdir(root).catch(() => [] as string[]);
          for (const id of entries) {
            const file = join(root, id, 'config.json');
            if (!(await stat(file).catch(() => undefined))?.isFile()) continue;
            const plugin = (JSON.parse(await readFile(file, 'utf8')) as { plugin: PluginJson }).plugin;
            if (plugin.Name !== `${name}:latest` && plugin.Name !== name) continue;
            return Object.fromEntries(
              plugin.Settings.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
            );
          }
          return undefined;
        },
        state,
      );
    } finally {
      if (running !== undefined && running.exitCode === null) {
        running.kill('SIGKILL');
        await new Promise((resolve) => running?.once('exit', resolve));
      }
      await cli(global, ['prune', '--set', `files:${await realpath(join(dir, 'docs'))}`]);
    }
  });
});
