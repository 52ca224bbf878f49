/**
 * `plugctl run` as a real process against a real dockerd and registry: file changes, drift made by
 * hand, a registry outage, a dockerd restart and SIGTERM in the middle of a pull. Every assertion is
 * about the host's state (through the docker CLI) or the process's exit.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, rename, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { phaseOf } from '../../controller/reconcile/status.ts';
import { readStatuses, statusPath } from '../../controller/reconcile/status-file.ts';
import { buildPlugind, makeVolContext, volConfig } from '../conformance/fixtures.ts';
import { describeIntegration, docker, envScript, useEnv } from './harness.ts';
import { waitFor } from '../wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const execFileAsync = promisify(execFile);

interface PluginJson {
  Id: string;
  Enabled: boolean;
  PluginReference: string;
  Settings: { Env: string[]; Args: string[] };
}

/** A running `plugctl run`, with its log lines. */
interface Running {
  child: ChildProcess;
  logs: string[];
  exited: Promise<number | null>;
  address: string;
}

describeIntegration('plugctl run against a real dockerd', () => {
  const env = useEnv();
  let state: string;
  let docs: string;
  let running: Running | undefined;

  beforeEach(async () => {
    state = await mkdtemp(join(tmpdir(), 'plugctl-run-state-'));
    docs = await mkdtemp(join(tmpdir(), 'plugctl-run-docs-'));
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

  /** `plugctl run` at debug level, with `extra` options of run. */
  async function start(...extra: string[]): Promise<Running> {
    return startWith(['--log-level', 'debug'], ...extra);
  }

  async function startWith(globals: string[], ...extra: string[]): Promise<Running> {
    const child = spawn(
      process.execPath,
      [
        join(ROOT, 'bin/plugctl.js'),
        '--state-dir',
        state,
        ...globals,
        'run',
        '-f',
        docs,
        '--listen',
        '127.0.0.1:0',
        ...extra,
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
    running = { child, logs, exited, address };
    return running;
  }

  async function stop(r: Running, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    r.child.kill(signal);
    const code = await r.exited;
    running = undefined;
    return code;
  }

  function doc(name: string, fields: { tag?: string; greeting?: string; enabled?: boolean } = {}): string {
    return [
      'apiVersion: plugctl.dev/v1alpha1',
      'kind: DockerPlugin',
      `metadata: { name: ${name} }`,
      'spec:',
      `  remote: ${env().registry}/test/vol:${fields.tag ?? '1.0'}`,
      `  alias: ${name}`,
      `  enabled: ${fields.enabled ?? true}`,
      '  privileges: [{ name: network, value: [host] }]',
      `  settings: { env: { GREETING: "${fields.greeting ?? 'hello'}" } }`,
      '',
    ].join('\n');
  }

  /** Runs the plugctl CLI as a separate process against the same state directory. */
  async function runCli(...args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(
      process.execPath,
      [join(ROOT, 'bin/plugctl.js'), '--state-dir', state, ...args],
      {
        env: { ...process.env, DOCKER_HOST: env().dockerHost },
      },
    );
    return stdout;
  }

  /** Writes like an editor: a temp file renamed over the target. */
  async function save(file: string, text: string): Promise<void> {
    const temp = join(docs, `.${file}.swp`);
    await writeFile(temp, text);
    await rename(temp, join(docs, file));
  }

  async function inspect(name: string): Promise<PluginJson | undefined> {
    const result = await docker(['plugin', 'inspect', `${name}:latest`], { check: false });
    if (result.code !== 0) return undefined;
    return (JSON.parse(result.stdout) as PluginJson[])[0];
  }

  /** Waits for `probe` to hold (test/wait.ts), checking at least every `stepMs`. */
  function eventually<T>(
    what: string,
    probe: () => Promise<T | undefined | false>,
    timeoutMs?: number,
    stepMs = 50,
  ): Promise<T> {
    return waitFor(probe, { what, maxIntervalMs: stepMs, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
  }

  const greeting = (p: PluginJson | undefined): string | undefined =>
    p?.Settings.Env.find((e) => e.startsWith('GREETING='))?.slice('GREETING='.length);

  it('installs a written file, reconfigures an edited one, prunes a deleted one', async () => {
    const r = await start();
    await save('a.yaml', doc('a', { greeting: 'one' }));
    await eventually('a installed and enabled', async () => (await inspect('a'))?.Enabled);

    await save('a.yaml', doc('a', { greeting: 'two' }));
    await eventually('a reconfigured', async () => {
      const p = await inspect('a');
      return p?.Enabled === true && greeting(p) === 'two';
    });

    await unlink(join(docs, 'a.yaml'));
    await eventually('a pruned', async () => (await inspect('a')) === undefined);

    await save('b.yaml', doc('b', { greeting: 'status' }));
    await eventually('b installed', async () => (await inspect('b'))?.Enabled);
    // Another process reads the status the controller persisted.
    await eventually('get shows b Ready', async () => {
      const get = await runCli('get', '-o', 'json');
      const rows = (
        JSON.parse(get) as {
          items: {
            metadata: { name: string };
            status: { conditions?: { type: string; status: string }[] };
          }[];
        }
      ).items;
      const row = rows.find((x) => x.metadata.name === 'b');
      return row?.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
    });
    assert.match(await runCli('get'), /b\s+b:latest\s+true\s+yes\s+files:\S+\s+\w+\s+\S+\s+nothing\s+Ready/);

    const metrics = await (await fetch(`http://${r.address}/metrics`)).text();
    assert.match(metrics, /plugctl_reconciles_total\{result="done"\} \d+/);
    assert.match(metrics, /plugctl_docker_api_requests_total\{method="GET",path="\/plugins",outcome="200"\}/);
    assert.match(metrics, /^plugctl_build_info\{version="[^"]+",node="[^"]+"\} 1$/m);
    assert.match(metrics, /^process_resident_memory_bytes [1-9]\d*$/m);
    assert.match(metrics, /^nodejs_heap_size_used_bytes [1-9]\d*$/m);
    assert.equal((await fetch(`http://${r.address}/readyz`)).status, 200);
    assert.equal(await stop(r), 0, 'SIGTERM exits cleanly');
  });

  it('logs its start, the documents it found and every action at the default level, as JSON off a terminal', async () => {
    await save('a.yaml', doc('a'));
    await save('b.yaml', doc('b'));
    const r = await startWith([]);
    await eventually(
      'a and b enabled',
      async () => (await inspect('a'))?.Enabled && (await inspect('b'))?.Enabled,
    );
    await eventually('the enable of both logged', async () =>
      ['a', 'b'].every((key) =>
        r.logs.some((l) => l.includes(`"key":"${key}"`) && l.includes('"action":"enable"')),
      ),
    );
    assert.equal(await stop(r), 0);
    const lines = r.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(
      lines.every((l) => typeof l['level'] === 'number' && l['level'] >= 30),
      'nothing below info',
    );
    const starting = lines.find((l) => l['msg'] === 'plugctl run starting');
    assert.equal(
      starting?.['version'],
      JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).version,
    );
    assert.deepEqual(lines.find((l) => l['msg'] === 'initial scan complete')?.['found'], ['a', 'b']);
    for (const key of ['a', 'b']) {
      const actions = lines.filter((l) => l['msg'] === 'action' && l['key'] === key).map((l) => l['action']);
      assert.equal(actions[0], 'pull', `actions of ${key}: ${actions.join(', ')}`);
      assert.equal(actions.at(-1), 'enable', `actions of ${key}: ${actions.join(', ')}`);
    }
  });

  it('resyncs a converged host without rewriting its status, and counts each plugin once', async () => {
    await save('a.yaml', doc('a'));
    await save('b.yaml', doc('b'));
    const r = await start('--resync', '1s');
    const metric = async (pattern: RegExp): Promise<number> =>
      Number(pattern.exec(await (await fetch(`http://${r.address}/metrics`)).text())?.[1] ?? NaN);
    const done = /plugctl_reconciles_total\{result="done"\} (\d+)/;
    await eventually(
      'a and b enabled',
      async () => (await inspect('a'))?.Enabled && (await inspect('b'))?.Enabled,
    );
    await eventually('status persisted with both Ready', async () => {
      const statuses = await readStatuses(state);
      return ['a', 'b'].every((key) => statuses[key] !== undefined && phaseOf(statuses[key]) === 'ready');
    });
    // the last coalesced write (200 ms after the last change) lands: the file stays the same for 1 s
    let previous = await stat(statusPath(state));
    const before = await eventually('status.json to stay unchanged for 1 s', async () => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const now = await stat(statusPath(state));
      const same = now.ino === previous.ino && now.mtimeMs === previous.mtimeMs;
      previous = now;
      return same && now;
    });
    const reconciled = await metric(done);
    await eventually('three resyncs', async () => (await metric(done)) >= reconciled + 6, 20_000);
    const after = await stat(statusPath(state));
    assert.equal(after.ino, before.ino, 'status.json was replaced by a no-op resync');
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.equal(await metric(/plugctl_plugins\{state="ready"\} (\d+)/), 2);
  });

  it('builds from a context, and rebuilds when the context alone is fixed or changed', async () => {
    const work = await mkdtemp(join(tmpdir(), 'plugctl-run-ctx-'));
    try {
      const plugind = await buildPlugind(join(work, 'plugind'));
      const context = join(work, 'helper');
      await mkdir(join(context, 'rootfs'), { recursive: true });
      await start();
      await save(
        'helper.yaml',
        [
          'apiVersion: plugctl.dev/v1alpha1',
          'kind: DockerPlugin',
          'metadata: { name: helper }',
          'spec:',
          `  build: { context: ${context} }`,
          '  privileges: [{ name: network, value: [host] }]',
          '',
        ].join('\n'),
      );
      // No config.json yet: stalled, naming the context.
      await eventually('helper stalled on its context', async () => {
        const list = JSON.parse(await runCli('get', '-o', 'json')) as {
          items: { metadata: { name: string }; status: { lastError?: { code: string; message: string } } }[];
        };
        const error = list.items.find((o) => o.metadata.name === 'helper')?.status.lastError;
        return error?.code === 'CONTEXT_INVALID' && error.message.includes(context);
      });
      // Fixing the context (the document is unchanged) is noticed without waiting for a resync.
      await makeVolContext(context, plugind, 'one');
      const built = await eventually('helper built and enabled', async () => {
        const p = await inspect('helper');
        return p?.Enabled === true ? p : undefined;
      });
      await writeFile(join(context, 'config.json'), JSON.stringify(volConfig('two')));
      await eventually('helper rebuilt from the changed context', async () => {
        const p = await inspect('helper');
        return p?.Enabled === true && p.Id !== built.Id && p.Settings.Args.includes('--label=two');
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('never prunes at start-up before the documents are read, nor on an empty directory', async () => {
    await save('keep.yaml', doc('keep'));
    let r = await start();
    await eventually('keep installed', async () => (await inspect('keep'))?.Enabled);
    await stop(r);

    // Many documents to read before keep.yaml is seen; all suspended so they cost no engine work.
    const decoys = Array.from({ length: 400 }, (_, i) =>
      doc(`decoy-${i}`).replace('  enabled: true', '  enabled: true\n  suspend: true'),
    );
    await Promise.all(decoys.map((text, i) => writeFile(join(docs, `decoy-${i}.yaml`), text)));
    r = await start();
    await eventually('ready', async () => (await fetch(`http://${r.address}/readyz`)).status === 200);
    assert.equal((await inspect('keep'))?.Enabled, true, 'still installed after the scan');
    assert.ok(!r.logs.some((l) => /"action":"remove"/.test(l)), 'no remove was ever attempted');
    await stop(r);

    // The same directory (the same apply set), emptied, at start-up keeps what plugctl owns...
    for (const file of await readdir(docs)) await rm(join(docs, file), { force: true });
    r = await start();
    await eventually('ready', async () => (await fetch(`http://${r.address}/readyz`)).status === 200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await inspect('keep'))?.Enabled, true, 'not pruned on an empty start');
    // ... until the declaration is non-empty again: then keep is no longer declared and goes.
    await save('other.yaml', doc('other'));
    await eventually('other installed', async () => (await inspect('other'))?.Enabled);
    await eventually('keep pruned', async () => (await inspect('keep')) === undefined);
  });

  // The resync runs every 5 minutes: within the 20 s deadline only the engine's events can have
  // brought the plugin back. bench/controller.ts measures how fast.
  it('re-enables a plugin disabled by hand and reinstalls one removed by hand, from engine events', async () => {
    await save('a.yaml', doc('a'));
    await start();
    await eventually('a enabled', async () => (await inspect('a'))?.Enabled);
    await docker(['plugin', 'disable', 'a:latest']);
    await eventually('a re-enabled', async () => (await inspect('a'))?.Enabled);

    await docker(['plugin', 'rm', '-f', 'a:latest']);
    await eventually('a reinstalled after a removal by hand', async () => (await inspect('a'))?.Enabled);
  });

  it('heals drift whatever name the user typed: short name, full name, ID, ID prefix; set; rm -f', async () => {
    await save('w.yaml', doc('w'));
    await start();
    const first = await eventually('w enabled', async () => {
      const p = await inspect('w');
      return p?.Enabled === true ? p : undefined;
    });
    const healTimes: Record<string, number> = {};
    for (const typed of ['w', 'w:latest', first.Id, first.Id.slice(0, 12)]) {
      await docker(['plugin', 'disable', typed]);
      const at = Date.now();
      await eventually(
        `w re-enabled after "docker plugin disable ${typed}"`,
        async () => (await inspect('w'))?.Enabled,
      );
      healTimes[typed === first.Id ? 'id' : typed === first.Id.slice(0, 12) ? 'id-prefix' : typed] =
        Date.now() - at;
    }
    // The engine sends no event for `set`; the disable before it does, and the echo of plugctl's own
    // enable makes it look again, so a setting changed by hand is put back too.
    await docker(['plugin', 'disable', 'w']);
    await docker(['plugin', 'set', 'w', 'GREETING=changed-by-hand'], { check: false });
    await eventually('w enabled with the declared setting', async () => {
      const p = await inspect('w');
      return p?.Enabled === true && greeting(p) === 'hello';
    });
    await docker(['plugin', 'rm', '-f', 'w']);
    await eventually(
      'w reinstalled after "docker plugin rm -f w"',
      async () => (await inspect('w'))?.Enabled,
    );
    // Speed is measured in bench/; here the times are only reported.
    process.stdout.write(`# heal times (ms) by what was typed: ${JSON.stringify(healTimes)}\n`);
  });

  it('backs off while the registry is down and converges when it returns', async () => {
    await envScript('stop-registry');
    try {
      const r = await start();
      await save('a.yaml', doc('a'));
      await eventually(
        'pull failures logged',
        async () => r.logs.filter((l) => /reconcile failed/.test(l)).length >= 2,
      );
      const failures = r.logs.filter((l) => /reconcile failed/.test(l)).length;
      assert.ok(failures < 40, `backoff bounds the retries (${failures} failures)`);
      assert.equal(await inspect('a'), undefined);
    } finally {
      await envScript('start-registry');
    }
    await eventually(
      'a installed once the registry is back',
      async () => (await inspect('a'))?.Enabled,
      30_000,
    );
  });

  it('reconnects to a restarted dockerd and converges', async () => {
    await save('a.yaml', doc('a'));
    const r = await start();
    await eventually('a enabled', async () => (await inspect('a'))?.Enabled);
    await envScript('restart-dockerd');
    await eventually('stream lost', async () => r.logs.some((l) => /engine event stream lost/.test(l)));
    // Drift made right after the restart is seen through the re-opened event stream.
    await docker(['plugin', 'disable', '-f', 'a:latest'], { check: false });
    await eventually('a enabled again', async () => (await inspect('a'))?.Enabled, 20_000);
  });

  it('exits cleanly on SIGTERM during a pull, and the next start converges', async () => {
    const r = await start();
    await save('a.yaml', doc('a'));
    await eventually('pull started', async () => r.logs.some((l) => /"action":"pull"/.test(l)), undefined, 5);
    const code = await stop(r);
    assert.equal(code, 0);
    assert.ok(r.logs.some((l) => /shutting down/.test(l)));

    await start();
    await eventually('a installed by the next run', async () => (await inspect('a'))?.Enabled);
  });
});
