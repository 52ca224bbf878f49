/**
 * Cold apply of N distinct plugins: `plugctl apply` (one process, plugins installed concurrently)
 * against a sequential `docker plugin install --grant-all-permissions` loop of the same plugins, on
 * the same dockerd and registry, in one run. Prints both medians and the ratio (target <= 0.5x).
 *
 * Usage: node bench/cold-apply.ts [--rounds 3] [--sizes 10,20]
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const envScript = join(root, 'test/env/plugin-env.sh');
const node = process.execPath;

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, sizes: { type: 'string', default: '10,20' } },
});
const rounds = Number(values.rounds);
const sizes = values.sizes.split(',').map(Number);

async function sh(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { stdout } = await run(command, args, { env, maxBuffer: 1 << 24 });
  return stdout;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  await sh('bash', [envScript, 'up']);
  await sh('bash', [envScript, 'build-bench']);
  const env = {
    ...process.env,
    DOCKER_HOST: `unix://${process.env.PE_DIR ?? '/tmp/plugctl-env'}/docker.sock`,
  };
  // The CLI shipped with the daemon's package, as the env script uses: its API matches dockerd exactly.
  const cli = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  const docker = (args: string[]): Promise<string> => sh(cli, args, env);
  const registry = '127.0.0.1:5000';
  const removeAll = async (): Promise<void> => {
    const ids = (await docker(['plugin', 'ls', '-q'])).split('\n').filter(Boolean);
    if (ids.length > 0) await docker(['plugin', 'rm', '-f', ...ids]);
  };

  const rows: string[][] = [];
  try {
    for (const n of sizes) {
      const remotes = Array.from({ length: n }, (_, i) => `${registry}/test/bench-${i + 1}:1.0`);
      const dir = await mkdtemp(join(tmpdir(), 'plugctl-bench-'));
      const docs = remotes.map(
        (remote, i) =>
          `apiVersion: plugctl.dev/v1alpha1\nkind: DockerPlugin\nmetadata:\n  name: bench-${i + 1}\nspec:\n  remote: ${remote}\n  grantAllPrivileges: true\n`,
      );
      await writeFile(join(dir, 'plugins.yaml'), docs.join('---\n'));
      const loop: number[] = [];
      const ours: number[] = [];
      for (let round = 0; round < rounds; round++) {
        await removeAll();
        loop.push(
          await timed(async () => {
            for (const remote of remotes)
              await docker(['plugin', 'install', '--grant-all-permissions', remote]);
          }),
        );
        await assertEnabled(docker, n);
        await removeAll();
        const state = await mkdtemp(join(tmpdir(), 'plugctl-bench-state-'));
        ours.push(
          await timed(() =>
            sh(node, [join(root, 'bin/plugctl.js'), '--state-dir', state, 'apply', '-f', dir], env),
          ),
        );
        await assertEnabled(docker, n);
        await rm(state, { recursive: true, force: true });
      }
      await removeAll();
      await rm(dir, { recursive: true, force: true });
      const a = median(loop);
      const b = median(ours);
      rows.push([String(n), `${a.toFixed(0)} ms`, `${b.toFixed(0)} ms`, `${(b / a).toFixed(2)}x`]);
    }
  } finally {
    await sh('bash', [envScript, 'down']);
  }
  const header = ['plugins', 'docker plugin install loop', 'plugctl apply', 'ratio (target <= 0.50x)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`cold apply, median of ${rounds} rounds, same dockerd and registry\n`);
  console.log(
    [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'),
  );
}

/** A round only counts when every plugin ended installed and enabled. */
async function assertEnabled(docker: (args: string[]) => Promise<string>, n: number): Promise<void> {
  const enabled = (await docker(['plugin', 'ls', '--format', '{{.Enabled}}']))
    .split('\n')
    .filter((l) => l === 'true');
  if (enabled.length !== n) throw new Error(`expected ${n} enabled plugins, found ${enabled.length}`);
}

await main();
