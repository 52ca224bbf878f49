/**
 * What every generator derived from the schema does with its output: write it, or with `--check`
 * only compare it with what is committed, so a test (and CI) fails when someone changed the schema
 * without regenerating.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../runtime/atomic-file.ts';

/**
 * Writes `rendered` to `path` (atomically, mode 0644), or with `--check` in `args` only compares.
 * Returns 1, after saying which command regenerates it, when the file is stale or missing.
 */
export async function writeOrCheck(path: string, rendered: string, args: readonly string[]): Promise<number> {
  if (args.includes('--check')) {
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current === rendered) return 0;
    process.stderr.write(
      `${path} is ${current === undefined ? 'missing' : 'out of date with controller/api/schema.ts'}; run \`make crds\` and commit the result\n`,
    );
    return 1;
  }
  await writeFileAtomic(path, rendered, { mode: 0o644 });
  process.stdout.write(`wrote ${path}\n`);
  return 0;
}
