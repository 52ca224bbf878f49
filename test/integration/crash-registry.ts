/**
 * The crash-safety test's own docker-registry (Debian's distribution 2.8) on 127.0.0.1, on a port
 * in 5400-5499 (other suites use 5100-5299), anonymous, filesystem storage in a temp directory.
 * Started and stopped by its PID.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running registry. */
export interface CrashRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  pid: number;
  /** stops the process by PID (TERM, then KILL) and deletes its storage */
  stop(): Promise<void>;
}

export const CRASH_PORT_MIN = 5400;
export const CRASH_PORT_MAX = 5499;

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function startOn(port: number): Promise<CrashRegistry> {
  const dir = await mkdtemp(join(tmpdir(), `plugctl-crash-registry-${port}-`));
  await mkdir(join(dir, 'data'));
  await writeFile(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n` +
      `storage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\n` +
      `http:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('docker-registry did not start');
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      if (!(await exited(child, 5000))) {
        process.kill(pid, 'SIGKILL');
        await exited(child, 5000);
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry on port ${port} exited ${child.exitCode}: ${stderr}`);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}/v2/`);
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry on port ${port} did not answer within 15 s: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { host: `127.0.0.1:${port}`, port, pid, stop };
}

/** Starts a registry on the first free port of 5400-5499 from `first` on, and waits until /v2/ answers. */
export async function startCrashRegistry(first = CRASH_PORT_MIN): Promise<CrashRegistry> {
  let lastError: unknown;
  const span = CRASH_PORT_MAX - CRASH_PORT_MIN + 1;
  for (let i = 0; i < 10; i++) {
    const port = CRASH_PORT_MIN + ((first - CRASH_PORT_MIN + i * 7) % span);
    if (!(await portFree(port))) continue;
    try {
      return await startOn(port);
    } catch (error) {
      lastError = error; // lost a race for the port: try another
    }
  }
  throw new Error('no free port for docker-registry in 5400-5499', { cause: lastError });
}
