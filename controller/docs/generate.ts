/**
 * `make docs`: regenerates every document derived from the code (docs/errors.md from the error
 * catalogue, docs/reference.md from the schema, docs/troubleshooting.md), or with `--check` fails when any of them is stale.
 * A new generated document is one more entry in GENERATED_DOCS.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeOrCheck } from '../runtime/generated-file.ts';
import { renderErrorsDoc } from './errors-md.ts';
import { renderReferenceDoc } from './reference-md.ts';
import { renderTroubleshootingDoc } from './troubleshooting-md.ts';

/** One generated document: its path under the repository root, its source, and its renderer. */
export interface GeneratedDoc {
  path: string;
  source: string;
  render: () => string;
}

/** Every document `make docs` writes. */
export const GENERATED_DOCS: readonly GeneratedDoc[] = [
  { path: 'docs/errors.md', source: 'controller/error-codes.ts', render: renderErrorsDoc },
  { path: 'docs/reference.md', source: 'controller/api/schema.ts', render: renderReferenceDoc },
  { path: 'docs/troubleshooting.md', source: 'controller/error-codes.ts', render: renderTroubleshootingDoc },
];

/** The repository root (this file is controller/docs/generate.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Writes every document under `root`, or with `--check` compares them with the files there. Returns
 * the worst exit code (1 when any is stale or missing) instead of exiting, so tests can call it.
 */
export async function main(args: readonly string[], root: string = REPO_ROOT): Promise<number> {
  let worst = 0;
  for (const doc of GENERATED_DOCS) {
    const code = await writeOrCheck(join(root, doc.path), doc.render(), args, {
      source: doc.source,
      command: 'make docs',
    });
    worst = Math.max(worst, code);
  }
  return worst;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
