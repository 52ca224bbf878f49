/**
 * Plugin build contexts like test/env/plugin-env.sh's `vol` fixture (config.json + rootfs/ with the
 * static plugind of test/env/plugind.c and busybox-static), for tests that build and push plugins
 * themselves — with `docker plugin create` or with the embedded store's createPlugin.
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PLUGIND_SOURCE = fileURLToPath(new URL('../env/plugind.c', import.meta.url));

/** Result of one command. */
export interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws for a non-zero exit (see `code`). */
export function exec(
  file: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(
      file,
      [...args],
      { maxBuffer: 1 << 24, timeout: options.timeoutMs ?? 120_000, env: options.env ?? process.env },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 127;
        resolve({
          code,
          stdout,
          stderr: error !== null && code === 127 ? `${error.message}\n${stderr}` : stderr,
        });
      },
    );
  });
}

/** Compiles test/env/plugind.c statically to `out`; throws with gcc's output when it fails. */
export async function buildPlugind(out: string): Promise<string> {
  const built = await exec('gcc', ['-static', '-Os', '-s', '-Wall', '-o', out, PLUGIND_SOURCE]);
  if (built.code !== 0) throw new Error(`gcc failed to build plugind (exit ${built.code}):\n${built.stderr}`);
  return out;
}

/** plugin-env.sh's `vol` config: a volume driver asking for network=host, env and args settable. */
export function volConfig(label: string): Record<string, unknown> {
  return {
    Description: `plugctl interop volume plugin ${label}`,
    Documentation: 'https://example.invalid/plugctl/test/vol',
    Entrypoint: ['/bin/plugind', '/run/docker/plugins/plugind.sock'],
    WorkDir: '/',
    Interface: { Types: ['docker.volumedriver/1.0'], Socket: 'plugind.sock' },
    Network: { Type: 'host' },
    Env: [
      { Name: 'GREETING', Description: 'greeting printed at start', Settable: ['value'], Value: 'hello' },
      { Name: 'DEBUG', Description: 'debug level', Settable: ['value'], Value: '0' },
      {
        Name: 'FAIL_AT_START',
        Description: '1 makes the plugin exit at start',
        Settable: ['value'],
        Value: '0',
      },
    ],
    Args: { Name: 'args', Description: 'extra arguments', Settable: ['value'], Value: [`--label=${label}`] },
    Linux: { Capabilities: [] },
  };
}

/**
 * Writes a build context at `dir` as plugin-env.sh builds its fixtures: rootfs/ with /bin/plugind,
 * /bin/busybox and /bin/sh, the directories plugind and the runtime expect, `/VERSION` = `label`,
 * and config.json = `config`. Returns `dir`.
 */
export async function makeContext(
  dir: string,
  plugind: string,
  label: string,
  config: Record<string, unknown>,
): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  for (const sub of [
    'bin',
    'run/docker/plugins',
    'tmp',
    'proc',
    'dev',
    'sys',
    'etc',
    'state',
    'mnt',
    'var/lib/plugind',
  ]) {
    await mkdir(join(rootfs, sub), { recursive: true });
  }
  await copyFile(plugind, join(rootfs, 'bin/plugind'));
  await chmod(join(rootfs, 'bin/plugind'), 0o755);
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  await symlink('busybox', join(rootfs, 'bin/sh'));
  await writeFile(join(rootfs, 'etc/hosts'), '');
  await writeFile(join(rootfs, 'etc/resolv.conf'), '');
  await writeFile(join(rootfs, 'VERSION'), label);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

/** makeContext with config.json = volConfig(label). */
export function makeVolContext(dir: string, plugind: string, label: string): Promise<string> {
  return makeContext(dir, plugind, label, volConfig(label));
}
