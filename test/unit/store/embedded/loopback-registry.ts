/**
 * A real docker-registry (Debian's distribution 2.8) on 127.0.0.1 for the embedded store's
 * integration test and benchmarks, on ports 5200-5299 (the registry client's tests use 5100-5199),
 * anonymous, with filesystem storage in a temp directory. Started and stopped by its PID.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running registry. */
export interface LoopbackRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  pid: number;
  /** stops the process by PID (TERM, then KILL) and deletes its storage */
  stop(): Promise<void>;
}

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

/** Why a registry cannot be started here, or undefined. */
export async function loopbackRegistrySkipReason(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'needs Linux';
  const found = await new Promise<boolean>((resolve) => {
    const child = spawn('docker-registry', ['--version'], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
  return found
    ? undefined
    : 'docker-registry is not installed; run: sudo bash test/env/registry-env.sh install';
}

/** Starts a registry on `port` (5200-5299) and waits until /v2/ answers. */
export async function startLoopbackRegistry(port: number): Promise<LoopbackRegistry> {
  if (port < 5200 || port > 5299)
    throw new Error(`embedded-store registries use ports 5200-5299, not ${port}`);
  const dir = await mkdtemp(join(tmpdir(), `plugctl-embedded-registry-${port}-`));
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
