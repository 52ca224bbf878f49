/**
 * The CLI verbs that talk to a running controller, against a real `plugctl run`, dockerd and
 * registry: `wait --for=condition=...` reads the status the controller writes, `reconcile` asks it
 * through its loopback endpoint (token in the state directory) and waits for the outcome, and
 * `get -w` prints what changes. Assertions are about the host (docker CLI) and the processes' exits.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { endpointPath } from '../../controller/cli/endpoint.ts';
import { buildPlugind, makeVolContext } from '../conformance/fixtures.ts';
import { describeIntegration, docker, envScript, useEnv } from './harness.ts';
import { waitFor } from '../wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = join(ROOT, 'bin/plugctl.js');

interface Running {
  child: ChildProcess;
  exited: Promise<number | null>;
  address: string;
  logs: string[];
}

interface CliResult {
  code: number;
  out: string;
  err: string;
}

describeIntegration('CLI verbs against a running controller', () => {
  const env = useEnv();
  let state: string;
  let docs: string;
  let running: Running | undefined;

  beforeEach(async () => {
    state = await mkdtemp(join(tmpdir(), 'plugctl-verbs-state-'));
    docs = await mkdtemp(join(tmpdir(), 'plugctl-verbs-docs-'));
  });

  afterEach(async () => {
    if (running !== undefined) {
      running.child.kill('SIGKILL');
      await running.exited;
      running = undefined;
    }
    await envScript('reset');
    await rm(state, { recursive: true, force: true });
    await rm(docs, { recursive: true, force: true });
  });

  async function start(): Promise<Running> {
    const child = spawn(
      process.execPath,
      [
        CLI,
        '--state-dir',
        state,
        '--log-level',
        'info',
        'run',
        '-f',
        docs,
        '--listen',
        '127.0.0.1:0',
        '--resync',
        '1h',
      ],
      { env: { ...process.env, DOCKER_HOST: env().dockerHost }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const logs: string[] = [];
    let address = '';
    let buffer = '';
    const started = new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        for (const line of lines) {
          logs.push(line);
          const listen = /"listen":"([^"]+)"/.exec(line);
          if (listen) address = listen[1]!;
          if (line.includes('"msg":"watching"')) resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`plugctl run exited ${code}:\n${logs.join('\n')}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await started;
    running = { child, exited, address, logs };
    return running;
  }

  /** Runs the CLI as its own process on the same state directory. */
  function cli(...args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, '--state-dir', state, ...args],
        { env: { ...process.env, DOCKER_HOST: env().dockerHost } },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
          resolve({ code, out: stdout, err: stderr });
        },
      );
    });
  }

  function doc(name: string, privileges = '[{ name: network, value: [host] }]'): string {
    return [
      'apiVersion: plugctl.dev/v1alpha1',
      'kind: DockerPlugin',
      `metadata: { name: ${name}, labels: { tier: ${name === 'a' ? 'front' : 'back'} } }`,
      'spec:',
      `  remote: ${env().registry}/test/vol:1.0`,
      `  alias: ${name}`,
      `  privileges: ${privileges}`,
      '',
    ].join('\n');
  }

  async function save(file: string, text: string): Promise<void> {
    const temp = join(docs, `.${file}.swp`);
    await writeFile(temp, text);
    await rename(temp, join(docs, file));
  }

  async function enabled(name: string): Promise<boolean | undefined> {
    const result = await docker(['plugin', 'inspect', '--format', '{{.Enabled}}', `${name}:latest`], {
      check: false,
    });
    return result.code === 0 ? result.stdout.trim() === 'true' : undefined;
  }

  async function metric(r: Running, pattern: RegExp): Promise<number> {
    return Number(pattern.exec(await (await fetch(`http://${r.address}/metrics`)).text())?.[1] ?? 0);
  }

  it('wait returns once the controller reports Ready, and times out naming where a plugin stands', async () => {
    // No controller: nothing will ever update the status.
    const lonely = await cli('wait', '--for=condition=Ready', 'dockerplugin/a', '--timeout', '1s');
    assert.equal(lonely.code, 1);
    assert.match(lonely.err, /timed out waiting for condition Ready=True on dockerplugin\/a/);
    assert.match(lonely.err, /no plugctl run serves/);
    assert.match(lonely.err, /\[WAIT_TIMEOUT\]/);

    await start();
    await save('a.yaml', doc('a'));
    const ready = await cli('wait', '--for=condition=Ready', 'dockerplugin/a', '--timeout', '60s');
    assert.equal(ready.code, 0, ready.err);
    assert.equal(ready.out, 'dockerplugin/a condition met\n');
    assert.equal(await enabled('a'), true, 'Ready means the plugin is installed and enabled');

    // A plugin that cannot converge: Ready never comes, Stalled does.
    await save('b.yaml', doc('b', '[{ name: mount, value: [/tmp] }]'));
    const stalled = await cli('wait', '--for', 'condition=stalled', 'b', '--timeout', '60s');
    assert.equal(stalled.code, 0, stalled.err);
    const notReady = await cli('wait', '--for=condition=Ready', 'dockerplugin/b', '--timeout', '1s');
    assert.equal(notReady.code, 1);
    assert.match(notReady.err, /dockerplugin\/b: Stalled \(PRIVILEGES_MISMATCH/);

    // get -l selects by the documents' labels, which the controller records.
    const front = await cli('get', '-l', 'tier=front', '-o', 'name');
    assert.equal(front.out, 'dockerplugin/a\n');
    const jsonpath = await cli('get', '-l', 'tier in (front,back)', '-o=jsonpath={.items[*].metadata.name}');
    assert.equal(jsonpath.out, 'a b\n');

    // --for=delete: the document goes, the controller prunes the plugin and forgets its status.
    await rm(join(docs, 'a.yaml'));
    const deleted = await cli('wait', '--for=delete', 'dockerplugin/a', '--timeout', '60s');
    assert.equal(deleted.code, 0, deleted.err);
    assert.equal(await enabled('a'), undefined, 'pruned from the host');
  });

  it('reconcile asks the running controller, waits for the outcome, and retries a held stall', async () => {
    const none = await cli('reconcile');
    assert.equal(none.code, 2);
    assert.match(none.err, /no plugctl run serves the state directory .*\[CONTROLLER_NOT_RUNNING\]/);

    const r = await start();
    // The endpoint file is the controller's, readable only by its user.
    const file = endpointPath(state);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const { token } = JSON.parse(await readFile(file, 'utf8')) as { token: string };
    assert.equal(
      (await fetch(`http://${r.address}/reconcile`, { method: 'POST', body: '{}' })).status,
      401,
      'no token, no reconcile',
    );
    const authorized = await fetch(`http://${r.address}/reconcile`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ names: ['nope'] }),
    });
    assert.deepEqual(await authorized.json(), { unknown: ['nope'], results: [] });

    await save('a.yaml', doc('a'));
    await save('b.yaml', doc('b', '[{ name: mount, value: [/tmp] }]'));
    assert.equal((await cli('wait', '--for=condition=Ready', 'a', '--timeout', '60s')).code, 0);
    assert.equal((await cli('wait', '--for=condition=Stalled', 'b', '--timeout', '60s')).code, 0);

    const doneBefore = await metric(r, /plugctl_reconciles_total\{result="done"\} (\d+)/);
    const ok = await cli('reconcile', 'dockerplugin/a');
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^dockerplugin\/a reconciled: Ready \(Converged\); last action: pull, enable\n$/);
    assert.ok((await metric(r, /plugctl_reconciles_total\{result="done"\} (\d+)/)) > doneBefore);

    // Drift the engine reports is corrected on its own; reconcile returns once the host matches.
    await docker(['plugin', 'disable', 'a:latest']);
    const again = await cli('reconcile', 'a');
    assert.equal(again.code, 0, again.err);
    assert.equal(await enabled('a'), true);

    // A stall is held until the document changes; reconcile runs it again anyway, and says why it fails.
    const stalledBefore = await metric(r, /plugctl_reconciles_total\{result="stalled"\} (\d+)/);
    const stalled = await cli('reconcile', 'b');
    assert.equal(stalled.code, 1);
    assert.match(stalled.out, /^dockerplugin\/b failed \[stalled PRIVILEGES_MISMATCH\]: /);
    assert.equal(await metric(r, /plugctl_reconciles_total\{result="stalled"\} (\d+)/), stalledBefore + 1);

    // Every plugin, and an unknown name.
    const all = await cli('reconcile');
    assert.equal(all.code, 1, 'b still fails');
    assert.match(all.out, /dockerplugin\/a reconciled: Ready/);
    assert.match(all.out, /dockerplugin\/b failed/);
    const unknown = await cli('reconcile', 'nope', '--timeout', '30s');
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /dockerplugin "nope" .*\[OBJECT_NOT_FOUND\]/);

    // On SIGTERM the endpoint file goes with the process.
    r.child.kill('SIGTERM');
    assert.equal(await r.exited, 0);
    running = undefined;
    assert.equal(existsSync(file), false);
  });

  it('get -w prints each change the controller makes until interrupted', async () => {
    await start();
    const watcher = spawn(process.execPath, [CLI, '--state-dir', state, 'get', '-w', '-o', 'name'], {
      env: { ...process.env, DOCKER_HOST: env().dockerHost },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    watcher.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => watcher.once('exit', (code) => resolve(code)));
    try {
      await save('a.yaml', doc('a'));
      await waitFor(async () => out.includes('dockerplugin/a\n') && (await enabled('a')) === true, {
        what: 'get -w to print dockerplugin/a',
        timeoutMs: 60_000,
      });
    } finally {
      watcher.kill('SIGINT');
    }
    assert.equal(await exited, 0, 'SIGINT ends the watch cleanly');
  });

  it('inspect and rm on the docker store: rm refuses a managed plugin, --force lets the controller reinstall it', async () => {
    await start();
    await save('a.yaml', doc('a'));
    assert.equal((await cli('wait', '--for=condition=Ready', 'a', '--timeout', '60s')).code, 0);
    const before = JSON.parse((await docker(['plugin', 'inspect', 'a:latest'])).stdout) as { Id: string }[];

    const inspected = await cli('inspect', 'a');
    assert.equal(inspected.code, 0, inspected.err);
    const records = JSON.parse(inspected.out) as { Id: string; Name: string; Enabled: boolean }[];
    assert.deepEqual(
      records.map((r) => [r.Id, r.Name, r.Enabled]),
      [[before[0]!.Id, 'a:latest', true]],
      'the engine’s own record, as docker plugin inspect prints it',
    );
    const missing = await cli('inspect', 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.err, /\[OBJECT_NOT_FOUND\]/);

    const logs = await cli('logs', 'a');
    assert.equal(logs.code, 0);
    assert.match(
      logs.err,
      new RegExp(`dockerd writes the output of plugin a:latest .*plugin=${before[0]!.Id}`),
    );

    const refused = await cli('rm', 'a');
    assert.equal(refused.code, 1);
    assert.match(
      refused.err,
      /managed by plugctl \(dockerplugin\/a, apply set files:.*--force removes it anyway \[PLUGIN_MANAGED\]/,
    );
    assert.equal(await enabled('a'), true, 'refused: still there');

    const forced = await cli('rm', '--force', 'a');
    assert.equal(forced.code, 0, forced.err);
    assert.equal(forced.out, 'a:latest\n');
    assert.match(forced.err, /plugctl run reinstalls it/);
    // the running controller sees the removal and installs the plugin again: a new ID, enabled
    await waitFor(
      async () => {
        const now = await docker(['plugin', 'inspect', 'a:latest'], { check: false });
        if (now.code !== 0) return false;
        const [p] = JSON.parse(now.stdout) as { Id: string; Enabled: boolean }[];
        return p!.Id !== before[0]!.Id && p!.Enabled;
      },
      { what: 'a reinstalled by the controller', timeoutMs: 60_000 },
    );
  });

  it('logs prints an embedded plugin’s output, inspect its config, and rm removes a created plugin', async () => {
    const work = await mkdtemp(join(tmpdir(), 'plugctl-verbs-embedded-'));
    const root = join(work, 'root');
    const embedded = (...args: string[]): Promise<CliResult> =>
      cli('--store', 'embedded', '--root', root, ...args);
    const set = 'verbs';
    try {
      const plugind = await buildPlugind(join(work, 'plugind'));
      const context = await makeVolContext(join(work, 'ctx'), plugind, 'one');
      await mkdir(join(work, 'docs'));
      await writeFile(
        join(work, 'docs', 'helper.yaml'),
        [
          'apiVersion: plugctl.dev/v1alpha1',
          'kind: DockerPlugin',
          'metadata: { name: helper }',
          'spec:',
          `  build: { context: ${context} }`,
          '  privileges: [{ name: network, value: [host] }]',
          '  settings: { env: { GREETING: from-plugctl } }',
          '',
        ].join('\n'),
      );
      const applied = await embedded('apply', '-f', join(work, 'docs'), '--set', set);
      assert.equal(applied.code, 0, applied.out + applied.err);

      const logs = await embedded('logs', 'helper');
      assert.equal(logs.code, 0, logs.err);
      assert.match(logs.out, /plugind: env GREETING=from-plugctl/, 'the plugin’s own output, through runc');
      const last = await embedded('logs', 'helper', '--tail', '1');
      assert.equal(last.out.trimEnd().split('\n').length, 1);

      const inspected = JSON.parse((await embedded('inspect', 'helper:latest')).out) as {
        Name: string;
        Enabled: boolean;
        Settings: { Env: string[] };
      }[];
      assert.equal(inspected[0]?.Name, 'helper:latest');
      assert.equal(inspected[0]?.Enabled, true);
      assert.ok(inspected[0]?.Settings.Env.includes('GREETING=from-plugctl'));

      // a plugin made with plugctl create is not managed: rm removes it (--force, as it is enabled)
      assert.equal((await embedded('create', 'made/by-hand:1.0', context)).code, 0);
      const removed = await embedded('rm', 'made/by-hand:1.0');
      assert.equal(removed.code, 0, removed.err);
      assert.equal((await embedded('inspect', 'made/by-hand:1.0')).code, 1, 'gone');
      assert.equal((await embedded('rm', 'helper')).code, 1, 'managed: refused');
    } finally {
      await embedded('prune', '--set', set);
      await rm(work, { recursive: true, force: true });
    }
  });

  it('apply shows pull progress from the engine’s stream: bars on a terminal, lines with --progress=plain', async () => {
    await save('a.yaml', doc('a'));
    const plain = await cli('apply', '-f', docs, '--progress=plain');
    assert.equal(plain.code, 0, plain.err);
    assert.match(plain.out, /dockerplugin\/a created/);
    const lines = plain.err.split('\n');
    assert.ok(lines.includes(`a:latest: pulling ${env().registry}/test/vol:1.0`), plain.err);
    assert.ok(
      lines.some((l) => /^a:latest: layer [0-9a-f]{12}: /.test(l)),
      `a line per layer:\n${plain.err}`,
    );
    assert.ok(
      lines.some((l) => /^a:latest: pulled in \d/.test(l)),
      plain.err,
    );
    assert.ok(
      lines.some((l) => /^a:latest: enabled in \d/.test(l)),
      plain.err,
    );
    assert.ok(!plain.err.includes('\u001b'), 'no escape sequences in plain mode');

    // -q: only the results
    await docker(['plugin', 'rm', '-f', 'a:latest']);
    const quiet = await cli('apply', '-f', docs, '-q');
    assert.equal(quiet.code, 0, quiet.err);
    assert.equal(quiet.err, '');
    assert.match(quiet.out, /dockerplugin\/a created/);

    // on a terminal (script gives plugctl a pty): bars drawn in place from the engine's progress stream
    await docker(['plugin', 'rm', '-f', 'a:latest']);
    const tty = await new Promise<string>((resolve, reject) =>
      execFile(
        'script',
        [
          '-qec',
          `stty cols 120; ${process.execPath} ${CLI} --state-dir ${state} apply -f ${docs}`,
          '/dev/null',
        ],
        { env: { ...process.env, DOCKER_HOST: env().dockerHost, TERM: 'xterm' } },
        (error, stdout) => (error === null ? resolve(stdout) : reject(error)),
      ),
    );
    assert.match(tty, /a:latest [0-9a-f]{12} .*\[=+[> ]*\] /, `a bar per layer:\n${JSON.stringify(tty)}`);
    assert.ok(tty.includes('\u001b['), 'drawn with escape sequences');
    assert.match(tty, /dockerplugin\/a created/);
    assert.equal(await enabled('a'), true);
  });

  it('the embedded store reports its own download per layer', async () => {
    const root = await mkdtemp(join(tmpdir(), 'plugctl-verbs-root-'));
    const set = 'progress';
    const embedded = (...args: string[]): Promise<CliResult> =>
      cli('--store', 'embedded', '--root', root, ...args);
    try {
      await save('e.yaml', doc('e'));
      const applied = await embedded('apply', '-f', docs, '--set', set, '--progress', 'plain');
      assert.equal(applied.code, 0, applied.out + applied.err);
      assert.match(applied.err, /^e:latest: layer [0-9a-f]{12}: downloading \([\d.]+ [kM]?B\)$/m);
      assert.match(
        applied.err,
        /^e:latest: layer [0-9a-f]{12}: pull complete, [\d.]+ [kM]?B in \d+ms \([\d.]+ [kMG]?B\/s\)$/m,
      );
      assert.match(applied.err, /^e:latest: pulled in /m);
    } finally {
      await embedded('prune', '--set', set);
      await rm(root, { recursive: true, force: true });
    }
  });
});
