/**
 * The process crash-safety.test.ts kills: opens the embedded store on ROOT, performs one operation
 * and prints `done` when it has finished. The test SIGKILLs it at a random moment, then checks
 * what the next store process finds.
 *
 *   node test/integration/crash-worker.ts ROOT pull    NAME REMOTE
 *   node test/integration/crash-worker.ts ROOT upgrade NAME REMOTE
 *   node test/integration/crash-worker.ts ROOT set     NAME JOURNAL KEY=VALUE...
 *   node test/integration/crash-worker.ts ROOT remove  NAME
 *   node test/integration/crash-worker.ts ROOT enable  NAME      (CRASH_RUNC set: see crash-common.ts)
 *   node test/integration/crash-worker.ts ROOT disable NAME
 *   node test/integration/crash-worker.ts ROOT open              (only opens the store: a restart)
 *
 * Output, one line each, in this order: `ready` (modules loaded; with CRASH_WAIT_GO=1 it then
 * waits for a line on stdin: `go`, or `go MS` to SIGKILL itself MS after `start`), `open` (the store is open, reload done), `journal` (set only: the
 * SetJournal is durable), `start` (the operation is called), `done`. Errors go to stderr with
 * exit code 2. Stdout is a pipe, which Node writes synchronously on Linux: a line is out before the
 * next step begins. The test reacts to these lines as they come; where a kill landed it reads from
 * the step journal (crash-journal.ts), which the worker writes, when CRASH_STEPS names a file,
 * before each of these lines from `go` on.
 */
import { pino } from 'pino';
import { RegistryClient } from '../../controller/registry/client.ts';
import { writeFileAtomic } from '../../controller/runtime/atomic-file.ts';
import type { PluginRuntime } from '../../controller/store/embedded/runtime.ts';
import { openEmbeddedStore } from '../../controller/store/embedded/store.ts';
import { ENV_RUNC, ENV_WAIT_GO, FIXTURE_PRIVILEGES, idleRuntime } from './crash-common.ts';
import type { CrashOp, RuncPaths, SetJournal } from './crash-common.ts';
import { ENV_STEPS, StepJournal } from './crash-journal.ts';
import type { Step } from './crash-journal.ts';

const OPS: readonly (CrashOp | 'open')[] = ['pull', 'upgrade', 'set', 'remove', 'enable', 'disable', 'open'];

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** ms after `start` at which this process SIGKILLs itself, when the test asked for it */
let killAfterMs: number | undefined;

/** Journals a step (when there is a journal), then announces it on stdout. */
function step(steps: StepJournal | undefined, name: Step): void {
  steps?.record(name);
  if (name !== 'go') say(name);
  if (name === 'start' && killAfterMs !== undefined) armSelfKill(killAfterMs);
}

/**
 * SIGKILLs this process `ms` from now, between two steps of the operation: by a timer up to the
 * last 2 ms, then by yielding to the event loop (timers have 1 ms granularity; a set takes a few).
 */
function armSelfKill(ms: number): void {
  const due = performance.now() + ms;
  const check = (): void => {
    if (performance.now() >= due) process.kill(process.pid, 'SIGKILL');
    else setImmediate(check);
  };
  if (ms > 2) setTimeout(check, ms - 2);
  else setImmediate(check);
}

function usage(message: string): never {
  process.stderr.write(`crash-worker: ${message}\nusage: crash-worker.ts ROOT OP NAME [ARGS...]\n`);
  process.exit(64);
}

/**
 * Waits for the test's `go` line; returns the delay after `start` at which to SIGKILL this process
 * when the line carries one (`go 3.25`).
 */
function waitForGo(): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      if (seen.includes('\n')) {
        process.stdin.off('data', onData);
        process.stdin.pause();
        const delay = Number(seen.split('\n')[0]!.split(' ')[1]);
        resolve(Number.isFinite(delay) ? delay : undefined);
      }
    };
    process.stdin.on('data', onData);
    process.stdin.once('end', () => reject(new Error('stdin closed before go')));
  });
}

async function main(): Promise<void> {
  const [root, opArg, name, ...rest] = process.argv.slice(2);
  if (root === undefined || opArg === undefined || (name === undefined && opArg !== 'open'))
    usage('missing arguments');
  const op = OPS.find((candidate) => candidate === opArg);
  if (op === undefined) usage(`unknown operation ${opArg}`);

  const runcJson = process.env[ENV_RUNC];
  let runtime: PluginRuntime = idleRuntime;
  let runDir: string | undefined;
  const logger = pino({ level: 'silent' });
  if (runcJson !== undefined && runcJson !== '') {
    const paths = JSON.parse(runcJson) as RuncPaths;
    const { RuncRuntime } = await import('../../controller/store/embedded/runc.ts');
    runtime = new RuncRuntime({
      logger,
      runcRoot: paths.runcRoot,
      socketsRoot: paths.socketsRoot,
      discoveryDir: null,
      pollMs: 50,
    });
    runDir = paths.runDir;
  }
  const registry = new RegistryClient({ credentials: async () => undefined });
  const stepsFile = process.env[ENV_STEPS];
  const steps = stepsFile !== undefined && stepsFile !== '' ? new StepJournal(stepsFile) : undefined;
  say('ready');
  if (process.env[ENV_WAIT_GO] === '1') killAfterMs = await waitForGo();
  step(steps, 'go');

  const store = await openEmbeddedStore({
    root,
    runtime,
    registry,
    logger,
    ...(runDir !== undefined ? { runDir } : {}),
    stopGraceMs: 2000,
    restartTimeoutSeconds: 10,
  });
  step(steps, 'open');
  if (op === 'open') step(steps, 'start');
  const target = name ?? '';
  switch (op) {
    case 'pull':
    case 'upgrade': {
      const remote = rest[0];
      if (remote === undefined) usage(`${op} needs a REMOTE`);
      step(steps, 'start');
      if (op === 'pull') await store.pull(target, { remote, privileges: FIXTURE_PRIVILEGES });
      else await store.upgrade(target, { remote, privileges: FIXTURE_PRIVILEGES });
      break;
    }
    case 'set': {
      const [journal, ...settings] = rest;
      if (journal === undefined || settings.length === 0)
        usage('set needs a JOURNAL and KEY=VALUE arguments');
      const current = await store.inspect(target);
      if (current === undefined) throw new Error(`set: plugin ${target} is not installed`);
      const record: SetJournal = {
        name: target,
        settings,
        before: { env: current.settings.env, args: current.settings.args },
      };
      await writeFileAtomic(journal, JSON.stringify(record));
      step(steps, 'journal');
      step(steps, 'start');
      await store.set(target, settings);
      break;
    }
    case 'remove':
      step(steps, 'start');
      await store.remove(target, false);
      break;
    case 'enable':
      step(steps, 'start');
      await store.enable(target, 10);
      break;
    case 'disable':
      step(steps, 'start');
      await store.disable(target, false);
      break;
  }
  step(steps, 'done');
  await store.close();
  await runtime.close();
  await registry.close();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `crash-worker: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(2);
  },
);
