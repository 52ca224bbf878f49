/**
 * Integration-test harness: starts the real environment of test/env/plugin-env.sh (a private
 * dockerd, a registry on 127.0.0.1 and fixture plugins) and runs the docker CLI against it.
 *
 * Typical use, once per test file:
 *
 *   describeIntegration('docker store', () => {
 *     const env = useEnv();                 // before(): up, after(): down (or reset)
 *     it('...', async () => { await docker(['plugin', 'ls']); env().dockerHost; });
 *   });
 */
import { execFile } from 'node:child_process';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PLUGIN_ENV, describeWith } from '../prerequisites.ts';

/** Path of the environment script. */
export const ENV_SCRIPT = fileURLToPath(new URL('../env/plugin-env.sh', import.meta.url));

/** What a running environment exposes to tests. */
export interface TestEnv {
  /** `unix://...` of the private dockerd, as DOCKER_HOST expects it */
  dockerHost: string;
  /** the private dockerd's socket path */
  socketPath: string;
  /** `127.0.0.1:<port>` of the loopback registry holding the fixtures */
  registry: string;
  /** state directory of the environment (logs: dockerd.log, registry.log) */
  dir: string;
  /** docker CLI used by `docker()` */
  dockerCli: string;
  /** private, empty DOCKER_CONFIG for the CLI */
  dockerConfig: string;
  /** dockerd's version string, e.g. `20.10.24+dfsg1` */
  engineVersion: string;
  /** true when startEnv() started dockerd itself (and so stopEnv() tears it down) */
  started: boolean;
}

/** Result of one command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

let current: TestEnv | undefined;

/**
 * `describe` for suites that need the real environment (test/env/plugin-env.sh: Linux, root,
 * dockerd, docker-registry, runc, gcc, busybox-static, curl). With something missing the suite
 * becomes one test that fails in strict mode (`make test`, CI) or is skipped otherwise, naming
 * what is missing and how to install it (test/prerequisites.ts).
 */
export function describeIntegration(name: string, fn: () => void): void {
  describeWith(name, { needs: PLUGIN_ENV }, fn);
}

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  input?: string,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGTERM' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(
            new Error(`${file} ${args.join(' ')} failed to run: ${error.message}\n${stderr}`, {
              cause: error,
            }),
          );
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs the environment script with one subcommand; throws with its stderr when it fails. */
export async function envScript(
  subcommand: string,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<CommandResult> {
  const result = await run('bash', [ENV_SCRIPT, subcommand], { ...process.env, ...extraEnv }, 300_000);
  if (result.code !== 0) {
    throw new Error(`plugin-env.sh ${subcommand} exited ${result.code}:\n${result.stderr}`);
  }
  return result;
}

/** Parses the `export K=V` lines the script prints. */
export function parseExports(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const match = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) out[match[1]] = match[2];
  }
  return out;
}

function required(exports: Record<string, string>, key: string): string {
  const value = exports[key];
  if (value === undefined) throw new Error(`plugin-env.sh did not print ${key}`);
  return value;
}

/**
 * Brings the environment up (idempotent: fast when it already runs) and returns it. Set PE_BENCH=1
 * in the environment to also get test/bench-1..20.
 */
export async function startEnv(): Promise<TestEnv> {
  const { stdout } = await envScript('up');
  const exports = parseExports(stdout);
  const socketPath = required(exports, 'PE_SOCK');
  current = {
    dockerHost: required(exports, 'DOCKER_HOST'),
    socketPath,
    registry: required(exports, 'PE_REG'),
    dir: required(exports, 'PE_DIR'),
    dockerCli: required(exports, 'PE_DOCKER'),
    dockerConfig: required(exports, 'PE_DOCKER_CONFIG'),
    engineVersion: required(exports, 'PE_ENGINE_VERSION'),
    started: exports['PE_STARTED'] === '1',
  };
  return current;
}

/**
 * Leaves the machine as startEnv() found it: tears everything down when startEnv() started dockerd,
 * otherwise (someone else owns the environment) only removes every plugin and volume.
 */
export async function stopEnv(): Promise<void> {
  const env = current;
  current = undefined;
  if (env === undefined || env.started) await envScript('down');
  else {
    await envScript('start-registry'); // a test may have stopped it
    await envScript('reset');
  }
}

/** The running environment; throws when startEnv() has not run. */
export function currentEnv(): TestEnv {
  if (current === undefined)
    throw new Error('the test environment is not started: call startEnv() or useEnv()');
  return current;
}

/**
 * Registers before/after hooks in the enclosing suite that start the environment once and stop it
 * afterwards, and returns a getter for it (valid inside tests).
 */
export function useEnv(): () => TestEnv {
  before(async () => {
    await startEnv();
  });
  after(async () => {
    await stopEnv();
  });
  return currentEnv;
}

/**
 * Runs the docker CLI against the environment's dockerd. Throws on a non-zero exit unless
 * `check: false`, in which case the caller inspects `code`.
 */
export async function docker(
  args: string[],
  options: { check?: boolean; input?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const env = currentEnv();
  const result = await run(
    env.dockerCli,
    args,
    { ...process.env, DOCKER_HOST: env.dockerHost, DOCKER_CONFIG: env.dockerConfig },
    options.timeoutMs ?? 120_000,
    options.input,
  );
  if (options.check !== false && result.code !== 0) {
    throw new Error(`docker ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  }
  return result;
}

/** Removes every plugin and volume from the environment's dockerd (between tests). */
export async function resetEnv(): Promise<void> {
  await envScript('reset');
}
