/**
 * The check CI runs after `make test` (.ci/run): every test target ran at least as many tests as
 * test/floor.json says, every file pattern it was given matched files, every matched file defined
 * tests, and nothing was skipped. It reads the summaries test/report/summary.ts wrote.
 *
 *   node test/report/floor.ts [RESULTS_DIR]      (default .tmp/test-results)
 *
 * Exit 0 when every target passes; 1, with one line per problem, otherwise.
 */
import { globSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileKey } from './collect.ts';
import type { RunSummary } from './collect.ts';

const FLOOR_FILE = fileURLToPath(new URL('../floor.json', import.meta.url));

/** test/floor.json: target -> the least number of tests it must run (keys starting with `/` are comments). */
export type Floors = Record<string, number>;

/** The problems of one target's run; empty when it passes. */
export function checkTarget(target: string, floor: number, summary: RunSummary): string[] {
  const problems: string[] = [];
  if (summary.patterns.length === 0) problems.push(`${target}: the runner was given no file pattern`);
  for (const pattern of summary.patterns) {
    const files = globSync(pattern, { cwd: summary.cwd }).map((file) =>
      fileKey(summary.cwd, resolve(summary.cwd, file)),
    );
    if (files.length === 0) problems.push(`${target}: the pattern ${pattern} matched no file`);
    for (const file of files) {
      if ((summary.testsPerFile[file] ?? 0) === 0) {
        problems.push(`${target}: ${file} (matched by ${pattern}) defined no test`);
      }
    }
  }
  for (const file of summary.brokenFiles) problems.push(`${target}: ${file} failed outside its tests`);
  if (summary.ran < floor) {
    problems.push(
      `${target}: ${summary.ran} tests ran, fewer than the floor of ${floor} in test/floor.json ` +
        '(tests were lost: a suite skipped, a file not matched, or tests deleted)',
    );
  }
  for (const skip of summary.skipped) {
    problems.push(
      `${target}: skipped on CI: ${skip.file}: ${skip.name}${skip.reason === '' ? '' : ` (${skip.reason})`}`,
    );
  }
  return problems;
}

async function main(): Promise<number> {
  const dir = process.argv[2] ?? '.tmp/test-results';
  const floors = JSON.parse(await readFile(FLOOR_FILE, 'utf8')) as Floors;
  let failed = false;
  for (const [target, floor] of Object.entries(floors)) {
    if (target.startsWith('/')) continue;
    const file = join(dir, `${target}.json`);
    let summary: RunSummary;
    try {
      summary = JSON.parse(await readFile(file, 'utf8')) as RunSummary;
    } catch (error) {
      console.error(
        `test floor: ${target}: cannot read ${file} (did \`make test\` run it?): ${String(error)}`,
      );
      failed = true;
      continue;
    }
    const problems = checkTarget(target, floor, summary);
    for (const problem of problems) console.error(`test floor: ${problem}`);
    failed ||= problems.length > 0;
    console.log(
      `test floor: ${target}: ${summary.ran} tests ran (floor ${floor}) from ` +
        `${Object.keys(summary.testsPerFile).length} files, ${summary.skipped.length} skipped` +
        (problems.length === 0 ? ': ok' : `: ${problems.length} problem(s)`),
    );
  }
  return failed ? 1 : 0;
}

if (import.meta.main) process.exitCode = await main();
