/**
 * Kubernetes test harness: a real kube-apiserver and etcd on 127.0.0.1 (test/env/kube-env.sh), brought
 * up once per test file with fresh data and torn down by PID afterwards, plus kubectl 1.20 and an admin
 * client. Files using it run serially with the other integration tests (`--test-concurrency=1`, and by
 * hand under `flock /tmp/plugctl-itest.lock`).
 *
 *   describeKube('informer', () => {
 *     const kube = useKube();                      // before(): up, after(): down
 *     it('...', async () => { await kubectl(['get', 'nodes']); kube().client; });
 *   });
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { describeWith, KUBE } from '../prerequisites.ts';
import { KubeClient } from '../../controller/kube/client.ts';
import { loadClusterConnection } from '../../controller/kube/config.ts';
import { systemClock } from '../../controller/runtime/clock.ts';
import { parseExports } from '../integration/harness.ts';

/** The environment script. */
export const KUBE_ENV_SCRIPT = fileURLToPath(new URL('../env/kube-env.sh', import.meta.url));
/** The checked-in CRDs. */
export const CRDS_DIR = fileURLToPath(new URL('../../crds/', import.meta.url));

/** A running API server. */
export interface KubeEnv {
  /** admin kubeconfig (static token in system:masters) */
  kubeconfig: string;
  /** `https://127.0.0.1:PORT` */
  server: string;
  /** PEM file of the CA that signed the server's certificate */
  caFile: string;
  /** kubectl 1.20.2 */
  kubectl: string;
  /** run directory (logs: etcd.log, kube-apiserver.log) */
  dir: string;
  /** true when this file's before() started it (and after() stops it) */
  started: boolean;
  /** an admin client */
  client: KubeClient;
  /** HOME of kubectl in this test process (its discovery and OpenAPI cache starts empty) */
  home: string;
}

/** Result of one command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

let current: KubeEnv | undefined;

/** `describe` for suites that need the API server (test/prerequisites.ts decides what a lack of one means). */
export function describeKube(name: string, fn: () => void): void {
  describeWith(name, { needs: KUBE, concurrency: 1 }, fn);
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
      { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
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

/** Runs kube-env.sh with one subcommand; throws with its stderr when it fails. */
export async function kubeEnvScript(subcommand: string): Promise<CommandResult> {
  const result = await run('bash', [KUBE_ENV_SCRIPT, subcommand], process.env, 300_000);
  if (result.code !== 0)
    throw new Error(`kube-env.sh ${subcommand} exited ${result.code}:\n${result.stderr}`);
  return result;
}

/** A logger for code under test: silent unless PLUGCTL_TEST_LOG names a level. */
export function testLogger(): Logger {
  return pino(
    { level: process.env['PLUGCTL_TEST_LOG'] ?? 'silent' },
    pino.destination({ fd: 2, sync: true }),
  );
}

/**
 * A logger that keeps every line it writes (debug and up, unless PLUGCTL_TEST_LOG names a level), for
 * tests that read the logs, for example to show a secret never reaches them; also written to stderr
 * when PLUGCTL_TEST_LOG is set.
 */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino(
    { level: process.env['PLUGCTL_TEST_LOG'] ?? 'debug' },
    {
      write(line: string) {
        lines.push(line);
        if (process.env['PLUGCTL_TEST_LOG'] !== undefined) process.stderr.write(line);
      },
    },
  );
  return { logger, lines };
}

/** Opens a client from a kubeconfig (the admin's by default). */
export async function openClient(kubeconfig?: string): Promise<KubeClient> {
  const connection = await loadClusterConnection({
    kubeconfig: kubeconfig ?? currentKube().kubeconfig,
    env: {},
    clock: systemClock,
  });
  return KubeClient.open(connection);
}

/** Brings the API server up (fresh etcd data unless it already runs) and returns it. */
export async function startKube(): Promise<KubeEnv> {
  const exports = parseExports((await kubeEnvScript('up')).stdout);
  const need = (key: string): string => {
    const value = exports[key];
    if (value === undefined) throw new Error(`kube-env.sh up did not print ${key}`);
    return value;
  };
  const kubeconfig = need('KUBECONFIG');
  const connection = await loadClusterConnection({ kubeconfig, env: {}, clock: systemClock });
  current = {
    kubeconfig,
    server: need('KE_SERVER'),
    caFile: need('KE_CA'),
    kubectl: need('KE_KUBECTL'),
    dir: need('KE_DIR'),
    started: exports['KE_STARTED'] === '1',
    client: await KubeClient.open(connection),
    home: await mkdtemp(join(tmpdir(), 'plugctl-kubectl-home-')),
  };
  return current;
}

/** Stops what startKube() started (by PID, through the script). */
export async function stopKube(): Promise<void> {
  const env = current;
  current = undefined;
  await env?.client.close();
  if (env !== undefined) await rm(env.home, { recursive: true, force: true });
  if (env?.started) await kubeEnvScript('down');
}

/** The running environment; throws when it is not started. */
export function currentKube(): KubeEnv {
  if (current === undefined) throw new Error('the API server is not started: call useKube() in the suite');
  return current;
}

/** before(): start the API server; after(): stop it. Returns a getter valid inside tests. */
export function useKube(options: { crds?: boolean } = {}): () => KubeEnv {
  before(async () => {
    await startKube();
    if (options.crds === true) await installCrds();
  });
  after(async () => {
    await stopKube();
  });
  return currentKube;
}

/** Runs kubectl against the environment. Throws on a non-zero exit unless `check: false`. */
export async function kubectl(
  args: string[],
  options: { check?: boolean; input?: string; kubeconfig?: string } = {},
): Promise<CommandResult> {
  const env = currentKube();
  const result = await run(
    env.kubectl,
    args,
    {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: env.home,
      KUBECONFIG: options.kubeconfig ?? env.kubeconfig,
    },
    60_000,
    options.input,
  );
  if (options.check !== false && result.code !== 0) {
    throw new Error(`kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  }
  return result;
}

/**
 * Installs the checked-in CRDs and waits until the API server serves them and publishes their schema
 * in its OpenAPI document (a moment later), which kubectl's client-side validation reads.
 */
export async function installCrds(): Promise<void> {
  await kubectl(['apply', '-f', CRDS_DIR]);
  await kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/dockerplugins.plugctl.dev',
    'crd/dockerpluginnodes.plugctl.dev',
  ]);
  await eventually('the CRD schemas in the OpenAPI document', async () => {
    const plugin = await kubectl(['explain', 'dockerplugins.spec.rollout'], { check: false });
    const node = await kubectl(['explain', 'dockerpluginnodes.status.plugins'], { check: false });
    return plugin.code === 0 && node.code === 0;
  });
}

/** Stops only kube-apiserver (etcd keeps the data), to show clients survive a restart. */
export async function stopApiserver(): Promise<void> {
  await kubeEnvScript('stop-apiserver');
}

/** Kills kube-apiserver (SIGKILL: a crash, and quick); etcd keeps the data. */
export async function killApiserver(): Promise<void> {
  await kubeEnvScript('kill-apiserver');
}

/** Starts kube-apiserver again after stopApiserver() or killApiserver(). */
export async function startApiserver(): Promise<void> {
  await kubeEnvScript('start-apiserver');
}

/** Polls `check` every 50 ms until it returns true or `timeoutMs` passes; throws with `what` then. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Writes a copy of the admin kubeconfig into `dir` with another server URL (e.g. a proxy's) or another
 * user token, and returns its path.
 */
export async function writeKubeconfig(
  dir: string,
  options: { server?: string; token?: string },
): Promise<string> {
  const { readFile, writeFile } = await import('node:fs/promises');
  const { parse, stringify } = await import('yaml');
  const env = currentKube();
  const config = parse(await readFile(env.kubeconfig, 'utf8')) as {
    clusters: { cluster: { server: string } }[];
    users: { user: { token: string } }[];
  };
  const [cluster] = config.clusters;
  const [user] = config.users;
  if (cluster === undefined || user === undefined)
    throw new Error(`${env.kubeconfig} has no cluster or user`);
  if (options.server !== undefined) cluster.cluster.server = options.server;
  if (options.token !== undefined) user.user.token = options.token;
  const path = `${dir}/kubeconfig-${Math.random().toString(16).slice(2)}`;
  await writeFile(path, stringify(config), { mode: 0o600 });
  return path;
}
