/**
 * RuncRuntime against real runc: plugins built here from busybox-static and the static plugind
 * (test/env/plugind.c), run from a private temp directory (own runc root, sockets root and discovery
 * directory — never /run/docker/plugins, which belongs to the machine's dockerd). Assertions are
 * about the world afterwards: runc's container list, /proc, the socket answering HTTP, files on disk.
 * Needs root, runc, gcc and busybox-static (test/prerequisites.ts' RUNC).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, afterEach, before, it } from 'node:test';
import { pino } from 'pino';
import { PlugctlError } from '../../controller/errors.ts';
import { parsePluginConfig } from '../../controller/plugin/config.ts';
import type { EffectiveSettings } from '../../controller/store/store.ts';
import { RuncRuntime } from '../../controller/store/embedded/runc.ts';
import type { RuncExit } from '../../controller/store/embedded/runc.ts';
import { mountsUnder, unmountUnder } from '../../controller/store/embedded/runc-mounts.ts';
import type { RunnablePlugin } from '../../controller/store/embedded/runtime.ts';
import { RUNC, describeWith } from '../prerequisites.ts';
import { waitFor, within } from '../wait.ts';

const run = promisify(execFile);
const PLUGIND_SOURCE = fileURLToPath(new URL('../env/plugind.c', import.meta.url));
const BUSYBOX = '/bin/busybox';

/** The vol fixture's config (test/env/plugin-env.sh), with the socket called x.sock. */
function volConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Description: 'runc runtime test plugin',
    Entrypoint: ['/bin/plugind', '/run/docker/plugins/x.sock'],
    WorkDir: '/',
    Interface: { Types: ['docker.volumedriver/1.0'], Socket: 'x.sock' },
    Network: { Type: 'host' },
    Env: [
      { Name: 'GREETING', Settable: ['value'], Value: 'hello' },
      { Name: 'FAIL_AT_START', Settable: ['value'], Value: '0' },
    ],
    Args: { Name: 'args', Settable: ['value'], Value: [] },
    Linux: { Capabilities: [] },
    ...overrides,
  };
}

/** POSTs to the plugin over its unix socket and returns status and body. */
function post(socketPath: string, path: string, body = '{}'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method: 'POST',
        path,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (data += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('plugin did not answer within 5 s')));
    req.end(body);
  });
}

function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function eventually(what: string, check: () => boolean): Promise<void> {
  await waitFor(check, { what });
}

async function rejection(promise: Promise<unknown>): Promise<PlugctlError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PlugctlError, `expected a PlugctlError, got ${String(error)}`);
    return error;
  }
  return assert.fail('expected a rejection');
}

describeWith('RuncRuntime with real runc', { needs: RUNC }, () => {
  let base = '';
  let rootfsTemplate = '';
  let runcRoot = '';
  let socketsRoot = '';
  let discoveryDir = '';
  const created: string[] = [];
  const runtimes: RuncRuntime[] = [];
  const timings: Record<string, number[]> = { start: [], stop: [] };

  function runtime(): RuncRuntime {
    const rt = new RuncRuntime({
      logger: pino({ level: 'silent' }),
      runcRoot,
      socketsRoot,
      discoveryDir,
      pollMs: 100,
    });
    runtimes.push(rt);
    return rt;
  }

  /** A plugin with its own copy of the rootfs (runc writes the init layer into it). */
  async function makePlugin(
    name: string,
    config: Record<string, unknown>,
    settings: Partial<EffectiveSettings> = {},
  ): Promise<RunnablePlugin> {
    const id = randomBytes(32).toString('hex');
    const dir = join(base, 'plugins', id);
    await mkdir(dir, { recursive: true });
    await cp(rootfsTemplate, join(dir, 'rootfs'), { recursive: true, verbatimSymlinks: true });
    created.push(id);
    return {
      id,
      name,
      rootfs: join(dir, 'rootfs'),
      config: parsePluginConfig(config, '127.0.0.1:5000/test/vol'),
      settings: { env: {}, args: [], mounts: {}, devices: {}, ...settings },
      stateDir: join(dir, 'state'),
    };
  }

  async function runcList(): Promise<{ id: string; status: string; pid: number }[]> {
    const { stdout } = await run('runc', ['--root', runcRoot, 'list', '--format', 'json']);
    return (JSON.parse(stdout || 'null') as { id: string; status: string; pid: number }[] | null) ?? [];
  }

  async function runcPid(id: string): Promise<number> {
    const { stdout } = await run('runc', ['--root', runcRoot, 'state', id]);
    return (JSON.parse(stdout) as { pid: number }).pid;
  }

  async function timed<T>(kind: 'start' | 'stop', fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const result = await fn();
    timings[kind]?.push(performance.now() - t0);
    return result;
  }

  before(async () => {
    // short: the host path of every socket must fit in a unix socket address (108 bytes)
    base = await mkdtemp('/tmp/prt-');
    runcRoot = join(base, 'runc');
    socketsRoot = join(base, 's');
    discoveryDir = join(base, 'd');
    rootfsTemplate = join(base, 'rootfs');
    for (const d of ['bin', 'run/docker/plugins', 'tmp', 'var/lib/plugind', 'data']) {
      await mkdir(join(rootfsTemplate, d), { recursive: true });
    }
    await run('gcc', ['-static', '-Os', '-s', '-o', join(rootfsTemplate, 'bin/plugind'), PLUGIND_SOURCE]);
    await cp(BUSYBOX, join(rootfsTemplate, 'bin/busybox'));
    for (const applet of ['sh', 'ls', 'sleep', 'mount', 'mkdir', 'echo', 'cat']) {
      await symlink('busybox', join(rootfsTemplate, 'bin', applet));
    }
  });

  afterEach(async () => {
    for (const rt of runtimes.splice(0)) await rt.close();
  });

  after(async () => {
    for (const id of created) {
      await run('runc', ['--root', runcRoot, 'delete', '--force', id]).catch(() => undefined);
    }
    if (base !== '') {
      const left = await unmountUnder(base);
      assert.deepEqual(left, [], 'mounts left under the test directory');
      await rm(base, { recursive: true, force: true });
    }
    const fmt = (xs: number[] | undefined): string => (xs ?? []).map((x) => `${Math.round(x)}`).join(', ');
    console.log(`# runc runtime timings (ms): start [${fmt(timings.start)}], stop [${fmt(timings.stop)}]`);
  });

  it('starts a plugin whose socket answers, with its settings, discoverable, found again after a restart, stopped cleanly', async () => {
    const rt = runtime();
    const plugin = await makePlugin('vol:latest', volConfig(), {
      env: { GREETING: 'bonjour' },
      args: ['--label=x'],
    });
    await timed('start', () => rt.start(plugin, 20_000));

    const socket = join(rt.socketDir(plugin.id), 'x.sock');
    const activate = await post(socket, '/Plugin.Activate');
    assert.equal(activate.status, 200);
    assert.deepEqual(JSON.parse(activate.body), { Implements: ['VolumeDriver'] });

    const log = await readFile(join(plugin.stateDir, 'plugin.log'), 'utf8');
    assert.match(log, /plugind: env GREETING=bonjour/);
    assert.match(log, /plugind: env FAIL_AT_START=0/);
    assert.match(log, /plugind: argv: \/bin\/plugind \/run\/docker\/plugins\/x.sock --label=x/);

    // discovery: <discoveryDir>/vol.sock -> the real socket, usable as such
    const link = join(discoveryDir, 'vol.sock');
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(readlinkSync(link), `../s/${plugin.id}/x.sock`);
    const viaLink = await post(link, '/VolumeDriver.Capabilities');
    assert.deepEqual(JSON.parse(viaLink.body), { Capabilities: { Scope: 'local' } });

    assert.equal(await rt.isRunning(plugin.id), true);
    const pid = await runcPid(plugin.id);
    assert.ok(pidAlive(pid));

    // a second runtime on the same roots (a controller restart) finds it and does not start it twice
    const again = runtime();
    assert.equal(await again.isRunning(plugin.id), true);
    await again.start(plugin, 5000);
    assert.equal(await runcPid(plugin.id), pid);
    assert.deepEqual(
      (await runcList()).map((c) => [c.id, c.status]),
      [[plugin.id, 'running']],
    );
    const afterRestart = await readFile(join(plugin.stateDir, 'plugin.log'), 'utf8');
    assert.equal(afterRestart.match(/plugind: argv/g)?.length, 1, 'the plugin was started twice');

    // stop through the second instance: it knows the plugin only from runc's state
    await timed('stop', () => again.stop(plugin.id, 5000));
    assert.equal(pidAlive(pid), false);
    assert.equal(existsSync(socket), false);
    assert.equal(existsSync(link), false);
    assert.equal(await rt.isRunning(plugin.id), false);
    assert.equal(await again.isRunning(plugin.id), false);
    assert.deepEqual(await runcList(), []);

    await again.stop(plugin.id, 5000); // idempotent
    await rt.stop(plugin.id, 5000);
  });

  it('fails fast with the plugin output when the process exits at start, leaving nothing running', async () => {
    const rt = runtime();
    const plugin = await makePlugin('bad:latest', volConfig(), { env: { FAIL_AT_START: '1' } });
    // the start timeout is far beyond the deadline: failing within it means the exit was noticed
    const error = await within(rejection(rt.start(plugin, 300_000)), {
      what: 'the start of a plugin that exits at once to fail, long before its 300 s timeout',
    });
    assert.equal(error.code, 'PLUGIN_START_FAILED');
    assert.match(error.message, /plugind: FAIL_AT_START=1, exiting 1/);
    assert.match(error.message, /plugin bad:latest/);
    assert.deepEqual(await runcList(), []);
    assert.equal(existsSync(rt.socketDir(plugin.id)), false);
    assert.equal(existsSync(join(discoveryDir, 'bad.sock')), false);
    assert.equal(await rt.isRunning(plugin.id), false);
  });

  it('fails at the timeout when the socket never opens, leaving nothing running', async () => {
    const rt = runtime();
    const plugin = await makePlugin(
      'mute:latest',
      volConfig({ Entrypoint: ['/bin/sh', '-c', 'echo waiting forever; sleep 100'] }),
    );
    const t0 = performance.now();
    // the timeout, then the 1 s SIGTERM grace (sh as PID 1 ignores SIGTERM) and the delete
    const error = await within(rejection(rt.start(plugin, 1500)), {
      what: 'the start to fail at its 1.5 s timeout',
    });
    const elapsed = performance.now() - t0;
    assert.equal(error.code, 'PLUGIN_SOCKET_TIMEOUT');
    assert.match(error.message, /waiting forever/);
    assert.match(error.message, /x\.sock/);
    assert.ok(elapsed >= 1500, `gave up after ${Math.round(elapsed)} ms, before the 1.5 s timeout`);
    assert.deepEqual(await runcList(), []);
    assert.equal(await rt.isRunning(plugin.id), false);
  });

  it("fails with runc's own error when the container cannot be created (a mount source that does not exist)", async () => {
    const rt = runtime();
    const plugin = await makePlugin(
      'nosrc:latest',
      volConfig({
        Mounts: [
          {
            Name: 'data',
            Source: '/nonexistent-src',
            Destination: '/data',
            Type: 'bind',
            Options: ['rbind'],
          },
        ],
      }),
    );
    const error = await rejection(rt.start(plugin, 20_000));
    assert.equal(error.code, 'PLUGIN_START_FAILED');
    assert.match(error.message, /runc exited with 1/);
    assert.match(error.message, /\/nonexistent-src.*no such file or directory/);
    assert.deepEqual(await runcList(), []);
    assert.equal(existsSync(rt.socketDir(plugin.id)), false);
  });

  it('refuses a socket name that leaves the sockets directory, before touching anything', async () => {
    const rt = runtime();
    const plugin = await makePlugin('escape:latest', volConfig({ Interface: { Socket: '../../x.sock' } }));
    const error = await rejection(rt.start(plugin, 20_000));
    assert.equal(error.code, 'PLUGIN_SPEC_INVALID');
    assert.equal(existsSync(rt.socketDir(plugin.id)), false);
    assert.equal(existsSync(plugin.stateDir), false);
  });

  it('keeps a flat discovery link for a name with a registry and a tag, and never takes a name it does not own', async () => {
    const rt = runtime();
    await mkdir(discoveryDir, { recursive: true });
    const taken = join(discoveryDir, 'taken.sock');
    await writeFile(taken, 'a v1 plugin lives here');
    const named = await makePlugin('127.0.0.1:5000/test/vol:1.0', volConfig());
    const other = await makePlugin('taken:latest', volConfig());
    await Promise.all([rt.start(named, 20_000), rt.start(other, 20_000)]);
    const link = join(discoveryDir, '127.0.0.1:5000-test-vol:1.0.sock');
    assert.equal((await post(link, '/Plugin.Activate')).status, 200);
    assert.equal(await readFile(taken, 'utf8'), 'a v1 plugin lives here');
    await Promise.all([rt.stop(named.id, 5000), rt.stop(other.id, 5000)]);
    assert.equal(existsSync(link), false);
    assert.equal(await readFile(taken, 'utf8'), 'a v1 plugin lives here');
    await rm(taken);
  });

  it('a restarted controller watches the plugins it found again', async () => {
    const first = runtime();
    const plugin = await makePlugin('adopted:latest', volConfig());
    await first.start(plugin, 20_000);
    await first.close();
    const second = runtime();
    const exits: RuncExit[] = [];
    second.onExit((exit) => exits.push(exit));
    assert.equal(await second.isRunning(plugin.id), true);
    process.kill(await runcPid(plugin.id), 'SIGKILL');
    await eventually('the exit event', () => exits.length > 0);
    assert.equal(exits[0]?.id, plugin.id);
    assert.ok(exits[0]?.lastOutput.some((line) => line.includes('plugind: listening')));
    assert.deepEqual(await runcList(), []);
  });

  it('reports a plugin killed behind its back, with its last lines, and can start it again', async () => {
    const rt = runtime();
    const exits: RuncExit[] = [];
    rt.onExit((exit) => exits.push(exit));
    const plugin = await makePlugin('crash:latest', volConfig());
    await timed('start', () => rt.start(plugin, 20_000));
    const pid = await runcPid(plugin.id);
    process.kill(pid, 'SIGKILL');
    await eventually('the exit event', () => exits.length > 0);
    const [exit] = exits;
    assert.equal(exit?.id, plugin.id);
    assert.ok(
      exit.lastOutput.some((line) => /plugind: listening on \/run\/docker\/plugins\/x.sock/.test(line)),
    );
    assert.equal(exit.restartDelayMs, 1000);
    assert.equal(await rt.isRunning(plugin.id), false);
    assert.deepEqual(await runcList(), []);
    assert.equal(existsSync(join(discoveryDir, 'crash.sock')), false);

    // the store restarts it after the delay; runc's leftovers do not get in the way
    await timed('start', () => rt.start(plugin, 20_000));
    assert.equal((await post(join(rt.socketDir(plugin.id), 'x.sock'), '/Plugin.Activate')).status, 200);
    await rt.stop(plugin.id, 5000);
    assert.equal(exits.length, 1, 'stop() must not be reported as a crash');
    assert.deepEqual(await runcList(), []);
  });

  it('gives a plugin with Network.Type "" its own network namespace, and shares the host one for "host"', async () => {
    const rt = runtime();
    const own = await makePlugin('netns:latest', volConfig({ Network: { Type: '' } }));
    const host = await makePlugin('hostnet:latest', volConfig({ Network: { Type: 'host' } }));
    await Promise.all([rt.start(own, 20_000), rt.start(host, 20_000)]);
    const ours = readlinkSync('/proc/self/ns/net');
    assert.notEqual(readlinkSync(`/proc/${await runcPid(own.id)}/ns/net`), ours);
    assert.equal(readlinkSync(`/proc/${await runcPid(host.id)}/ns/net`), ours);
    // a unix socket works across network namespaces: both answer
    for (const p of [own, host]) {
      assert.equal((await post(join(rt.socketDir(p.id), 'x.sock'), '/Plugin.Activate')).status, 200);
    }
    await Promise.all([rt.stop(own.id, 5000), rt.stop(host.id, 5000)]);
    assert.deepEqual(await runcList(), []);
  });

  it('mounts a config mount from its effective (set) source', async () => {
    const rt = runtime();
    const data = join(base, 'data-source');
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'hello.txt'), 'hi');
    const plugin = await makePlugin(
      'mounts:latest',
      volConfig({
        Entrypoint: [
          '/bin/sh',
          '-c',
          'ls /data > /run/docker/plugins/ls.txt; exec /bin/plugind /run/docker/plugins/x.sock',
        ],
        Mounts: [
          {
            Name: 'data',
            Source: '/nonexistent-default',
            Destination: '/data',
            Type: 'bind',
            Options: ['rbind', 'ro'],
            Settable: ['source'],
          },
        ],
      }),
      { mounts: { data } },
    );
    await rt.start(plugin, 20_000);
    assert.equal((await readFile(join(rt.socketDir(plugin.id), 'ls.txt'), 'utf8')).trim(), 'hello.txt');
    await rt.stop(plugin.id, 5000);
  });

  it('gives a plugin its declared device (at its set path) and nothing else', async () => {
    const rt = runtime();
    const script = [
      'ls -l /dev > /run/docker/plugins/dev.txt',
      '(: < /dev/fuse && echo fuse-open-ok || echo fuse-open-denied) >> /run/docker/plugins/dev.txt 2>&1',
      'exec /bin/plugind /run/docker/plugins/x.sock',
    ].join('; ');
    const plugin = await makePlugin(
      'dev:latest',
      volConfig({
        Entrypoint: ['/bin/sh', '-c', script],
        Linux: { Capabilities: [], Devices: [{ Name: 'dev', Path: '/dev/null', Settable: ['path'] }] },
      }),
      { devices: { dev: '/dev/fuse' } },
    );
    await rt.start(plugin, 20_000);
    const listing = await readFile(join(rt.socketDir(plugin.id), 'dev.txt'), 'utf8');
    assert.match(listing, /^c.*10,\s+229.* fuse$/m);
    assert.match(listing, /fuse-open-ok/);
    assert.doesNotMatch(listing, / loop-control$/m);
    await rt.stop(plugin.id, 5000);
  });

  it('propagates mounts made below PropagatedMount to the host, and detaches them at stop', async () => {
    const rt = runtime();
    const script =
      'mkdir -p /prop/m && mount -t tmpfs none /prop/m && echo hi > /prop/m/f && exec /bin/plugind /run/docker/plugins/x.sock';
    const plugin = await makePlugin(
      'prop:latest',
      volConfig({
        Entrypoint: ['/bin/sh', '-c', script],
        PropagatedMount: '/prop',
        Linux: { Capabilities: ['CAP_SYS_ADMIN'] },
      }),
    );
    await rt.start(plugin, 20_000);
    const propagated = join(plugin.rootfs, '..', 'propagated-mount');
    assert.equal(await readFile(join(propagated, 'm', 'f'), 'utf8'), 'hi\n');
    await rt.stop(plugin.id, 5000);
    assert.deepEqual(await mountsUnder(propagated), []);
    assert.equal(existsSync(join(propagated, 'm', 'f')), false);
  });

  it('sends SIGKILL after the grace period to a plugin that ignores SIGTERM', async () => {
    const rt = runtime();
    // sh as PID 1 of its namespace has no SIGTERM handler, so the kernel drops the signal
    const plugin = await makePlugin(
      'stubborn:latest',
      volConfig({ Entrypoint: ['/bin/sh', '-c', '/bin/plugind /run/docker/plugins/x.sock & wait'] }),
    );
    await rt.start(plugin, 20_000);
    const pid = await runcPid(plugin.id);
    const t0 = performance.now();
    await within(rt.stop(plugin.id, 700), { what: 'the stop to kill the plugin after its 700 ms grace' });
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 700, `stop took ${Math.round(elapsed)} ms: it did not wait for the grace period`);
    assert.equal(pidAlive(pid), false);
    assert.deepEqual(await runcList(), []);
  });
});
