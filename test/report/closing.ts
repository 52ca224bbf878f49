/**
 * The closing report of a test run, a node:test reporter the Makefile passes after the spec
 * reporter (both to stdout):
 *
 * - one block, after everything else, listing every skipped test and suite with its reason (a
 *   missing prerequisite names how to install it: test/prerequisites.ts), so that a skip is never
 *   lost in the middle of the output; nothing when nothing was skipped;
 * - when PLUGCTL_TEST_SUMMARY names a file, the run's RunSummary (collect.ts) as JSON in it, which
 *   test/report/floor.ts checks against test/floor.json.
 *
 * One reporter rather than two: a third reporter makes node's pipeline warn about listeners.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { TestEvent } from 'node:test/reporters';
import { STRICT_ENV } from '../prerequisites.ts';
import { collect } from './collect.ts';

/** The environment variable naming the summary file. */
export const SUMMARY_ENV = 'PLUGCTL_TEST_SUMMARY';

export default async function* closing(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const summary = await collect(source);
  const file = process.env[SUMMARY_ENV];
  if (file !== undefined && file !== '') {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
  }
  const { skipped } = summary;
  if (skipped.length === 0) return;
  const lines = [
    '',
    `━━ ${skipped.length} skipped (with ${STRICT_ENV}=1, as \`make test\` and CI set it, a missing prerequisite fails instead) ━━`,
    ...skipped.map((skip) => `  ${skip.file}: ${skip.name}${skip.reason === '' ? '' : ` — ${skip.reason}`}`),
    '',
  ];
  yield `${lines.join('\n')}\n`;
}
