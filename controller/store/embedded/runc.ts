/**
 * The embedded store's PluginRuntime: runs each enabled plugin as a runc container, the way dockerd
 * runs managed plugins through containerd, minus containerd. runc's state directory (`runcRoot`,
 * separate from docker's) is the source of truth for what runs, so a controller that restarts finds
 * its plugins again with `runc state` and never starts one twice.
 *
 * Per plugin, in its `stateDir`: `bundle/config.json` (the OCI spec from oci-spec.ts, with plugctl's
 * bookkeeping in its annotations), `plugin.pid`, and `plugin.log` — the container's stdout and
 * stderr and runc's own start-up errors (the previous start's log is kept as `plugin.log.1`, and a
 * log past its cap is rotated there too, see runc-log.ts). The process writes to that file directly
 * rather than through a pipe to the controller, so it keeps running, and logging, while the
 * controller restarts.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, rm, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, isAbsolute, join, relative } from 'node:path';
import type { Logger } from 'pino';
import { PlugctlError, type ErrorCode } from '../../errors.ts';
import { buildRuntimeSpec } from './oci-spec.ts';
import type { DeviceLookup, OciRuntimeSpec } from './oci-spec.ts';
import { linkDiscovery, unlinkDiscovery } from './runc-discovery.ts';
import { makeRshared, unmountUnder } from './runc-mounts.ts';
import { DEFAULT_LOG_MAX_BYTES, rotateLogIfLarge } from './runc-log.ts';
import { RestartPolicy } from './runc-restart.ts';
import type { RestartPolicyOptions } from './runc-restart.ts';
import { prepareRootfs } from './runc-rootfs.ts';
import type { PluginRuntime, RunnablePlugin, RuntimeExit } from './runtime.ts';

export { RestartPolicy } from './runc-restart.ts';
export type { RestartPolicyOptions } from './runc-restart.ts';

/** Options of RuncRuntime. Every path is absolute. */
export interface RuncRuntimeOptions {
  logger: Logger;
  /** runc executable (name on PATH or path); default `runc` */
  runcBinary?: string;
  /** runc's state root; default /run/plugctl/runc (docker's runc state lives elsewhere) */
  runcRoot?: string;
  /** parent of the per-plugin socket directories `<socketsRoot>/<id>`; default /run/docker/plugins */
  socketsRoot?: string;
  /** where `<name>.sock` discovery links go; default `socketsRoot`; null: no links */
  discoveryDir?: string | null;
  /** crash backoff handed to the store with each exit (see RuncExit); defaults of RestartPolicy */
  restart?: Omit<RestartPolicyOptions, 'now'>;
  /** how often running plugins are checked for crashes; default 300 ms */
  pollMs?: number;
  /** a plugin's log is rotated once larger than this (see runc-log.ts); default 10 MiB */
  logMaxBytes?: number;
  /** device lookup for the spec; injected by tests */
  lookupDevices?: DeviceLookup;
  /** monotonic milliseconds (restart backoff); default performance.now */
  now?: () => number;
}

/**
 * A crash report from RuncRuntime: RuntimeExit plus the delay RestartPolicy suggests before the
 * store starts the plugin again (doubling per crash, reset after a minute of healthy running).
 */
export interface RuncExit extends RuntimeExit {
  restartDelayMs: number;
}

const BUNDLE_DIR = 'bundle';
const PID_FILE = 'plugin.pid';
const LOG_FILE = 'plugin.log';
/** how often the logs of running plugins are checked against their cap */
const LOG_CHECK_MS = 5000;
const TAIL_LINES = 20;
/** grace before SIGKILL when a plugin that failed to come up is torn down */
const FAILED_START_GRACE_MS = 1000;
/** how long a SIGKILLed process may take to disappear before stop gives up waiting */
const KILL_WAIT_MS = 5000;
const ANNOTATION = {
  name: 'dev.plugctl.plugin.name',
  socket: 'dev.plugctl.plugin.socket',
  propagatedMount: 'dev.plugctl.plugin.propagated-mount',
  log: 'dev.plugctl.plugin.log',
} as const;
/** runc accepts `^[\w+-\.]+$`; plugin IDs are 64 hex characters */
const VALID_ID = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
/** sun_path is 108 bytes including the terminating NUL */
const MAX_SOCKET_PATH = 107;

/** What is known about a running plugin, from start() or from runc state + the bundle. */
interface Tracked {
  id: string;
  name: string;
  pid: number;
  /** /proc/<pid>/stat starttime, so a recycled PID is never mistaken for the plugin */
  startTime: string;
  logPath: string;
  socketPath: string | undefined;
  propagatedMount: string | undefined;
  /** set once the watcher has queued the exit handling, so it is queued once */
  exiting?: boolean;
}

interface RuncState {
  status: string;
  pid: number;
  bundle: string;
}

interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The start time (clock ticks since boot) of a live process, or undefined when `pid` is gone or a
 * zombie. Zombies matter: plugin processes are re-parented to PID 1 once runc exits, and an init
 * that does not reap leaves them as zombies, which `kill(pid, 0)` still reports as alive.
 */
function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // the command name (2nd field) may contain spaces and parentheses; fields resume after the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  if (state === undefined || state === 'Z' || state === 'X' || state === 'x') return undefined;
  return fields[19];
}

function alive(tracked: { pid: number; startTime: string }): boolean {
  return processStartTime(tracked.pid) === tracked.startTime;
}

/** The last `count` non-empty lines of a log file (reads at most its last 64 KiB). */
async function tail(path: string, count = TAIL_LINES): Promise<string[]> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return [];
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n');
    if (size > length) lines.shift(); // probably cut in the middle
    return lines.filter((line) => line.trim() !== '').slice(-count);
  } finally {
    await handle.close();
  }
}

function formatOutput(lines: string[], logPath: string): string {
  if (lines.length === 0) return `it wrote nothing (log: ${logPath})`;
  return `its last output (log: ${logPath}):\n  ${lines.join('\n  ')}`;
}

/** Resolves true when something accepts a connection on the unix socket `path`. */
function canConnect(path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), Math.max(1, timeoutMs));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Runs plugins with runc (see the module comment). Construction does no I/O; directories are
 * created on first use. Not safe to share one `runcRoot` between two live controllers (the embedded
 * store's root lock prevents that). Calls for one plugin ID are serialised; different plugins run
 * concurrently.
 */
export class RuncRuntime implements PluginRuntime {
  readonly #log: Logger;
  readonly #runc: string;
  readonly #runcRoot: string;
  readonly #socketsRoot: string;
  readonly #discoveryDir: string | null;
  readonly #restart: Omit<RestartPolicyOptions, 'now'>;
  readonly #pollMs: number;
  readonly #logMaxBytes: number;
  #lastLogCheck = 0;
  readonly #lookupDevices: DeviceLookup | undefined;
  readonly #now: () => number;
  readonly #watched = new Map<string, Tracked>();
  readonly #policies = new Map<string, RestartPolicy>();
  readonly #listeners: ((exit: RuncExit) => void)[] = [];
  readonly #locks = new Map<string, Promise<unknown>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: RuncRuntimeOptions) {
    this.#log = options.logger;
    this.#runc = options.runcBinary ?? 'runc';
    this.#runcRoot = options.runcRoot ?? '/run/plugctl/runc';
    this.#socketsRoot = options.socketsRoot ?? '/run/docker/plugins';
    this.#discoveryDir = options.discoveryDir === undefined ? this.#socketsRoot : options.discoveryDir;
    this.#restart = options.restart ?? {};
    this.#pollMs = options.pollMs ?? 300;
    this.#logMaxBytes = options.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES;
    this.#lookupDevices = options.lookupDevices;
    this.#now = options.now ?? (() => performance.now());
  }

  /** `<socketsRoot>/<id>`: mounted at /run/docker/plugins inside the plugin. */
  socketDir(id: string): string {
    return join(this.#socketsRoot, id);
  }

  /**
   * Starts the plugin (PluginRuntime.start). When runc already runs a container with this ID (a
   * controller restart), it is not started again: start only waits for its socket and links it. A
   * stopped leftover container is deleted first. Rejects with PLUGIN_START_FAILED when runc or the
   * process fails before the socket answers, PLUGIN_SOCKET_TIMEOUT when the socket does not answer
   * within `timeoutMs` (both with the plugin's last output lines, and with nothing left running),
   * PLUGIN_SPEC_INVALID / PLUGIN_SOCKET_PATH_TOO_LONG (stalled) for a config that cannot run.
   */
  start(plugin: RunnablePlugin, timeoutMs: number): Promise<void> {
    return this.#serial(plugin.id, () => this.#start(plugin, timeoutMs));
  }

  /** Stops the plugin (PluginRuntime.stop): TERM, KILL after `graceMs`, delete, unlink. Idempotent. */
  stop(id: string, graceMs: number): Promise<void> {
    return this.#serial(id, () => this.#stop(id, graceMs));
  }

  /**
   * True when runc runs this plugin's container and its process is alive (not a zombie). A running
   * plugin that this instance did not start (a restarted controller) is from then on watched for
   * crashes too.
   */
  isRunning(id: string): Promise<boolean> {
    return this.#serial(id, async () => {
      const tracked = await this.#find(id);
      if (tracked === undefined) return false;
      if (!this.#watched.has(id)) {
        this.#log.info({ plugin: tracked.name, id, pluginPid: tracked.pid }, 'found running plugin');
        this.#watch(tracked);
        this.#policy(id).started();
      }
      return true;
    });
  }

  /**
   * IDs of every container in this runtime's runc root, running or not. Lets the store find plugins
   * that run although nothing should (e.g. removed while the controller was down).
   */
  async containerIds(): Promise<string[]> {
    const result = await this.#command(['list', '--format', 'json']);
    if (result.code !== 0) throw this.#runtimeError('list containers', result);
    const list = JSON.parse(result.stdout || 'null') as { id: string }[] | null;
    return (list ?? []).map((c) => c.id);
  }

  /**
   * Registers a crash listener (PluginRuntime.onExit). The event is a RuncExit; by the time it is
   * emitted the dead container is deleted and its links removed, so the store can start it again.
   */
  onExit(listener: (exit: RuncExit) => void): void {
    this.#listeners.push(listener);
  }

  /** Stops the crash watcher. Plugins keep running. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#locks.values()]);
  }

  /** Runs `fn` after every earlier call for the same plugin ID has settled. */
  #serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (!VALID_ID.test(id)) {
      return Promise.reject(
        new PlugctlError('PLUGIN_ID_INVALID', `${JSON.stringify(id)} is not a valid plugin ID`, {
          kind: 'stalled',
        }),
      );
    }
    const previous = this.#locks.get(id) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.#locks.set(id, settled);
    void settled.then(() => {
      if (this.#locks.get(id) === settled) this.#locks.delete(id);
    });
    return next;
  }

  async #start(plugin: RunnablePlugin, timeoutMs: number): Promise<void> {
    const began = performance.now();
    const deadline = began + timeoutMs;
    const { id, name } = plugin;
    const log = this.#log.child({ plugin: name, id });
    const socketDir = this.socketDir(id);
    const socketPath = join(socketDir, plugin.config.Interface.Socket);
    const inside = relative(socketDir, socketPath);
    if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
      throw new PlugctlError(
        'PLUGIN_SPEC_INVALID',
        `plugin ${name}: its Interface.Socket ${JSON.stringify(plugin.config.Interface.Socket)} is not a file name below /run/docker/plugins; fix the plugin's config`,
        { kind: 'stalled' },
      );
    }
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      throw new PlugctlError(
        'PLUGIN_SOCKET_PATH_TOO_LONG',
        `plugin ${name}: its socket path ${socketPath} is longer than the ${MAX_SOCKET_PATH} bytes a unix socket allows; use a shorter sockets root`,
        { kind: 'stalled' },
      );
    }

    const existing = await this.#find(id);
    if (existing !== undefined) {
      // already running (found again after a controller restart): never start a second copy
      log.info({ pluginPid: existing.pid }, 'plugin already running; not starting it again');
      if (!this.#watched.has(id)) this.#policy(id).started();
      this.#watch(existing);
      await this.#awaitSocket(existing, socketPath, deadline, plugin);
      await this.#link(name, socketPath, log);
      return;
    }
    const state = await this.#state(id);
    if (state !== undefined) {
      log.info({ status: state.status }, 'deleting leftover container');
      await this.#delete(id);
    }

    const bundle = join(plugin.stateDir, BUNDLE_DIR);
    const logPath = join(plugin.stateDir, LOG_FILE);
    const pidPath = join(plugin.stateDir, PID_FILE);
    const propagatedMount =
      plugin.config.PropagatedMount === '' ? undefined : join(dirname(plugin.rootfs), 'propagated-mount');
    // built before anything is touched: a config that cannot run leaves no trace
    const spec: OciRuntimeSpec = buildRuntimeSpec(plugin, {
      socketDir,
      ...(propagatedMount === undefined ? {} : { propagatedMountSource: propagatedMount }),
      ...(this.#lookupDevices === undefined ? {} : { lookupDevices: this.#lookupDevices }),
    });
    spec.annotations = {
      [ANNOTATION.name]: name,
      [ANNOTATION.socket]: socketPath,
      [ANNOTATION.log]: logPath,
      ...(propagatedMount === undefined ? {} : { [ANNOTATION.propagatedMount]: propagatedMount }),
    };
    await mkdir(bundle, { recursive: true, mode: 0o700 });
    await mkdir(this.#runcRoot, { recursive: true, mode: 0o700 });
    await mkdir(this.#socketsRoot, { recursive: true, mode: 0o700 });
    await mkdir(socketDir, { recursive: true, mode: 0o700 });
    await chmod(socketDir, 0o700);
    await rm(socketPath, { force: true });
    await prepareRootfs(plugin.rootfs);
    if (propagatedMount !== undefined) {
      await mkdir(propagatedMount, { recursive: true, mode: 0o755 });
      await makeRshared(propagatedMount);
    }

    await writeAtomically(join(bundle, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
    await rename(logPath, `${logPath}.1`).catch((error: unknown) => {
      if (errno(error) !== 'ENOENT') throw error;
    });
    await rm(pidPath, { force: true });

    const tracked: Tracked = { id, name, pid: 0, startTime: '', logPath, socketPath, propagatedMount };
    const fail = async (code: ErrorCode, what: string): Promise<never> => {
      const lines = await tail(logPath);
      await this.#teardown(tracked, FAILED_START_GRACE_MS);
      throw new PlugctlError(code, `plugin ${name} ${what}; ${formatOutput(lines, logPath)}`, {
        kind: 'transient',
      });
    };

    const remaining = (): number => Math.max(0, deadline - performance.now());
    const exit = await this.#runDetached(id, bundle, pidPath, logPath, remaining());
    if (exit !== 0) {
      await fail(
        'PLUGIN_START_FAILED',
        exit === 'timeout'
          ? `was not started by runc within ${timeoutMs} ms`
          : `could not be started (runc exited with ${exit}); fix its settings or content, then enable it again`,
      );
    }
    const pid = Number.parseInt(await readFile(pidPath, 'utf8').catch(() => ''), 10);
    tracked.pid = pid;
    tracked.startTime = (Number.isInteger(pid) && pid > 0 && processStartTime(pid)) || '';
    if (tracked.startTime === '') {
      await fail('PLUGIN_START_FAILED', 'exited at once; fix its settings or content, then enable it again');
    }
    const outcome = await this.#waitForSocket(tracked, socketPath, deadline);
    if (outcome === 'exited') {
      await fail(
        'PLUGIN_START_FAILED',
        'exited before its socket accepted connections; fix its settings or content, then enable it again',
      );
    } else if (outcome === 'timeout') {
      await fail(
        'PLUGIN_SOCKET_TIMEOUT',
        `did not open its socket ${plugin.config.Interface.Socket} within ${timeoutMs} ms; raise enableTimeoutSeconds if it is slow to start, else fix the plugin (its Interface.Socket must match the socket it creates)`,
      );
    }
    this.#watch(tracked);
    this.#policy(id).started();
    await this.#link(name, socketPath, log);
    log.info({ pluginPid: pid, ms: Math.round(performance.now() - began) }, 'plugin started');
  }

  /** For a plugin found running: its socket must answer too, or start fails as for a new one. */
  async #awaitSocket(
    tracked: Tracked,
    socketPath: string,
    deadline: number,
    plugin: RunnablePlugin,
  ): Promise<void> {
    const outcome = await this.#waitForSocket(tracked, socketPath, deadline);
    if (outcome === 'connected') return;
    const lines = await tail(tracked.logPath);
    throw new PlugctlError(
      outcome === 'timeout' ? 'PLUGIN_SOCKET_TIMEOUT' : 'PLUGIN_START_FAILED',
      `plugin ${plugin.name} is running but its socket ${socketPath} does not answer; disable and enable it again; ${formatOutput(lines, tracked.logPath)}`,
      { kind: 'transient' },
    );
  }

  async #waitForSocket(
    tracked: Tracked,
    socketPath: string,
    deadline: number,
  ): Promise<'connected' | 'exited' | 'timeout'> {
    let delay = 10;
    for (;;) {
      if (!alive(tracked)) return 'exited';
      const left = deadline - performance.now();
      if (left <= 0) return 'timeout';
      if (await canConnect(socketPath, Math.min(left, 1000))) return 'connected';
      await sleep(Math.min(delay, Math.max(0, deadline - performance.now())));
      delay = Math.min(delay * 2, 100);
    }
  }

  async #link(name: string, socketPath: string, log: Logger): Promise<void> {
    if (this.#discoveryDir === null) return;
    try {
      await mkdir(this.#discoveryDir, { recursive: true, mode: 0o700 });
      const outcome = await linkDiscovery(this.#discoveryDir, name, socketPath);
      if (!outcome.linked) log.warn({ link: outcome.path }, `plugin not discoverable: ${outcome.reason}`);
    } catch (error) {
      // discovery is for other engines' benefit; the plugin itself runs fine without it
      log.warn({ err: error }, 'could not create the discovery link');
    }
  }

  async #stop(id: string, graceMs: number): Promise<void> {
    const began = performance.now();
    this.#watched.delete(id);
    this.#policies.get(id)?.reset();
    const tracked = (await this.#find(id)) ?? (await this.#fromBundle(id));
    const nothing: Tracked = {
      id,
      name: id,
      pid: 0,
      startTime: '',
      logPath: '',
      socketPath: undefined,
      propagatedMount: undefined,
    };
    await this.#teardown(tracked ?? nothing, graceMs);
    this.#log.info({ id, ms: Math.round(performance.now() - began) }, 'plugin stopped');
  }

  /** TERM, wait `graceMs`, KILL, delete the container, then remove links, sockets and mounts. */
  async #teardown(tracked: Tracked, graceMs: number): Promise<void> {
    const { id } = tracked;
    if (tracked.pid > 0 && alive(tracked)) {
      await this.#command(['kill', id, 'TERM']);
      if (!(await waitDead(tracked, graceMs))) {
        this.#log.info({ id, graceMs }, 'plugin ignored SIGTERM; sending SIGKILL');
        await this.#command(['kill', id, 'KILL']);
        await waitDead(tracked, KILL_WAIT_MS);
      }
    }
    await this.#delete(id);
    await this.#cleanup(tracked);
  }

  /** Removes what a plugin leaves on the host once its container is gone. */
  async #cleanup(tracked: Tracked): Promise<void> {
    const socketDir = this.socketDir(tracked.id);
    if (this.#discoveryDir !== null) await unlinkDiscovery(this.#discoveryDir, socketDir);
    // as moby (HandleExitEvent removes the exec root of the plugin): stale sockets would make the
    // next start wait on a dead file. Mounts a plugin propagated there are detached first, so the
    // removal can never descend into another filesystem.
    const leftover = await unmountUnder(socketDir);
    if (leftover.length === 0) await rm(socketDir, { recursive: true, force: true });
    else
      this.#log.warn(
        { id: tracked.id, mounts: leftover },
        'could not unmount below the sockets directory; left it',
      );
    if (tracked.propagatedMount !== undefined) {
      const left = await unmountUnder(tracked.propagatedMount);
      if (left.length > 0)
        this.#log.warn({ id: tracked.id, mounts: left }, 'could not unmount the propagated mount');
    }
  }

  async #delete(id: string): Promise<void> {
    const result = await this.#command(['delete', '--force', id]);
    if (result.code !== 0 && !/does not exist/i.test(result.stderr)) {
      throw this.#runtimeError(`delete plugin container ${id}`, result);
    }
  }

  /** The running container `id` with its process alive, or undefined. */
  async #find(id: string): Promise<Tracked | undefined> {
    const watched = this.#watched.get(id);
    if (watched !== undefined && alive(watched)) return watched;
    const state = await this.#state(id);
    if (state === undefined || state.status !== 'running' || !(state.pid > 0)) return undefined;
    const startTime = processStartTime(state.pid);
    if (startTime === undefined) return undefined;
    const fromBundle = await this.#fromBundle(id, state.bundle);
    return {
      id,
      name: fromBundle?.name ?? id,
      pid: state.pid,
      startTime,
      logPath: fromBundle?.logPath ?? join(dirname(state.bundle), LOG_FILE),
      socketPath: fromBundle?.socketPath,
      propagatedMount: fromBundle?.propagatedMount,
    };
  }

  /** What the bundle's annotations say about a plugin (also for a container that has stopped). */
  async #fromBundle(id: string, bundle?: string): Promise<Tracked | undefined> {
    const path = bundle ?? (await this.#state(id))?.bundle;
    if (path === undefined) return undefined;
    try {
      const spec = JSON.parse(await readFile(join(path, 'config.json'), 'utf8')) as Partial<OciRuntimeSpec>;
      const notes = spec.annotations ?? {};
      return {
        id,
        name: notes[ANNOTATION.name] ?? id,
        pid: 0,
        startTime: '',
        logPath: notes[ANNOTATION.log] ?? join(dirname(path), LOG_FILE),
        socketPath: notes[ANNOTATION.socket],
        propagatedMount: notes[ANNOTATION.propagatedMount],
      };
    } catch {
      return undefined;
    }
  }

  async #state(id: string): Promise<RuncState | undefined> {
    const result = await this.#command(['state', id]);
    if (result.code !== 0) {
      if (/does not exist|not exist/i.test(result.stderr)) return undefined;
      throw this.#runtimeError(`read the state of plugin container ${id}`, result);
    }
    return JSON.parse(result.stdout) as RuncState;
  }

  #policy(id: string): RestartPolicy {
    let policy = this.#policies.get(id);
    if (policy === undefined) {
      policy = new RestartPolicy({ ...this.#restart, now: this.#now });
      this.#policies.set(id, policy);
    }
    return policy;
  }

  #watch(tracked: Tracked): void {
    this.#watched.set(tracked.id, tracked);
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => this.#poll(), this.#pollMs);
    this.#timer.unref();
  }

  #poll(): void {
    for (const tracked of this.#watched.values()) {
      if (tracked.exiting !== true && !alive(tracked)) {
        tracked.exiting = true;
        void this.#serial(tracked.id, () => this.#exited(tracked));
      }
    }
    // Log sizes change slowly; a stat per plugin every few seconds is enough to hold the cap.
    if (this.#now() - this.#lastLogCheck >= LOG_CHECK_MS) {
      this.#lastLogCheck = this.#now();
      for (const tracked of this.#watched.values()) {
        rotateLogIfLarge(tracked.logPath, this.#logMaxBytes).then(
          (rotated) => {
            if (rotated) this.#log.info({ plugin: tracked.name, log: tracked.logPath }, 'plugin log rotated');
          },
          (error: unknown) =>
            this.#log.warn({ plugin: tracked.name, err: error }, 'rotating the plugin log failed'),
        );
      }
    }
    if (this.#watched.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** A watched plugin died without stop(): clean up after it, then tell the listeners. */
  async #exited(tracked: Tracked): Promise<void> {
    // stop(), or a restart by the store, got there first
    if (this.#watched.get(tracked.id) !== tracked) return;
    this.#watched.delete(tracked.id);
    const lastOutput = await tail(tracked.logPath);
    const restartDelayMs = this.#policy(tracked.id).exited();
    this.#log.warn(
      { plugin: tracked.name, id: tracked.id, pluginPid: tracked.pid, restartDelayMs, lastOutput },
      'plugin exited on its own',
    );
    try {
      await this.#delete(tracked.id);
      await this.#cleanup(tracked);
    } catch (error) {
      this.#log.warn({ id: tracked.id, err: error }, 'cleaning up after a crashed plugin failed');
    }
    for (const listener of this.#listeners) {
      try {
        listener({ id: tracked.id, lastOutput, restartDelayMs });
      } catch (error) {
        this.#log.error({ id: tracked.id, err: error }, 'plugin exit listener threw');
      }
    }
  }

  /**
   * `runc run --detach`, with the container's stdio (and runc's own errors) going to the log file.
   * runc returns once the process runs; 'timeout' when runc itself hangs past `timeoutMs`.
   */
  async #runDetached(
    id: string,
    bundle: string,
    pidPath: string,
    logPath: string,
    timeoutMs: number,
  ): Promise<number | string> {
    const fd = openSync(logPath, 'a', 0o600);
    try {
      return await new Promise<number | string>((resolve, reject) => {
        const child = spawn(
          this.#runc,
          ['--root', this.#runcRoot, 'run', '--detach', '--pid-file', pidPath, '--bundle', bundle, id],
          // its own session: a Ctrl-C aimed at the controller must not reach the plugin
          { stdio: ['ignore', fd, fd], detached: true },
        );
        const timer = setTimeout(
          () => {
            child.kill('SIGKILL');
            resolve('timeout');
          },
          Math.max(1, timeoutMs),
        );
        child.once('error', (error) => {
          clearTimeout(timer);
          reject(this.#spawnError(error));
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          resolve(code ?? `signal ${signal ?? 'unknown'}`);
        });
      });
    } finally {
      closeSync(fd);
    }
  }

  #command(args: string[], timeoutMs = 30_000): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      execFile(
        this.#runc,
        ['--root', this.#runcRoot, ...args],
        { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error !== null && error.killed === true) {
            reject(
              new PlugctlError(
                'PLUGIN_RUNTIME_FAILED',
                `runc ${args.join(' ')} did not finish within ${timeoutMs} ms; check the host's load and runc's state under ${this.#runcRoot}`,
                { cause: error },
              ),
            );
            return;
          }
          if (error !== null && typeof error.code !== 'number') {
            reject(this.#spawnError(error));
            return;
          }
          resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
        },
      );
    });
  }

  #spawnError(error: Error & { code?: unknown }): PlugctlError {
    if (error.code === 'ENOENT') {
      return new PlugctlError(
        'RUNC_NOT_FOUND',
        `runc (${this.#runc}) was not found; install it (apt-get install runc) or point the runtime at it`,
        { kind: 'stalled', cause: error },
      );
    }
    return new PlugctlError('PLUGIN_RUNTIME_FAILED', `running ${this.#runc} failed: ${error.message}`, {
      cause: error,
    });
  }

  #runtimeError(what: string, result: CommandResult): PlugctlError {
    const detail = result.stderr.trim().split('\n').slice(-3).join('; ') || `exit code ${result.code}`;
    return new PlugctlError(
      'PLUGIN_RUNTIME_FAILED',
      `runc could not ${what}: ${detail}; check the runc state under ${this.#runcRoot}`,
    );
  }
}

/** Polls until the tracked process is gone; false when it is still alive after `ms`. */
async function waitDead(tracked: { pid: number; startTime: string }, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (alive(tracked)) {
    if (performance.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

/** temp file + fsync + rename, as everything plugctl owns. */
async function writeAtomically(path: string, content: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}
