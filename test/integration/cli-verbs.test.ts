/**
 * The CLI verbs that talk to a running controller, against a real `plugctl run`, dockerd and
 * registry: `wait --for=condition=...` reads the status the controller writes, `reconcile` asks it
 * through its loopback endpoint (token in the state directory) and waits for the outcome, and
 * `get -w` prints what changes. Assertions are about the host (docker CLI) and the processes' exits.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { endpointPath } from '../../controller/cli/endpoint.ts';
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
});
