/**
 * What every generator of a checked-in file does with its output (the CRD and validator derived from
 * the schema, the docs derived from the error catalogue): write it, or with `--check` only compare it
 * with what is committed, so a test (and CI) fails when someone changed the source without
 * regenerating.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-file.ts';

/** Where a generated file comes from and which command regenerates it, for the stale-file message. */
export interface GeneratedFrom {
  /** the source the file is derived from, e.g. `controller/api/schema.ts` */
  source: string;
  /** the command that regenerates it, e.g. `make crds` */
  command: string;
}

/**
 * Writes `rendered` to `path` (atomically, mode 0644), or with `--check` in `args` only compares.
 * Returns 1, after saying which command regenerates it, when the file is stale or missing.
 */
export async function writeOrCheck(
  path: string,
  rendered: string,
  args: readonly string[],
  from: GeneratedFrom,
): Promise<number> {
  if (args.includes('--check')) {
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current === rendered) return 0;
    process.stderr.write(
      `${path} is ${current === undefined ? 'missing' : `out of date with ${from.source}`}; run \`${from.command}\` and commit the result\n`,
    );
    return 1;
  }
  await writeFileAtomic(path, rendered, { mode: 0o644 });
  process.stdout.write(`wrote ${path}\n`);
  return 0;
}
