/**
 * Folds the node test runner's event stream into a RunSummary: how many tests ran, which tests
 * and suites were skipped and why, and how many tests each file defined. closing.ts, the reporter
 * the Makefile's test targets pass to `node --test`, prints and saves it; floor.ts checks it.
 */
import { isAbsolute, relative } from 'node:path';
import type { TestEvent } from 'node:test/reporters';

/** One skipped test or suite. */
export interface Skipped {
  /** the test file, relative to the working directory */
  file: string;
  name: string;
  reason: string;
}

/** What one `node --test` run did. */
export interface RunSummary {
  /** the runner's working directory: the patterns are relative to it */
  cwd: string;
  /** the file patterns the runner was given (its positional arguments) */
  patterns: string[];
  /** tests (not suites) that ran: passed or failed, neither skipped nor todo */
  ran: number;
  failed: number;
  skipped: Skipped[];
  /** file (relative) -> tests it defined, run or skipped; a file that defined none is missing */
  testsPerFile: Record<string, number>;
  /** files that could not be loaded or failed outside any test */
  brokenFiles: string[];
}

/** How a summary names a test file: relative to `cwd` when it lies below it, else absolute. */
export function fileKey(cwd: string, file: string | undefined): string {
  if (file === undefined) return '<unknown file>';
  const below = relative(cwd, file);
  return below.startsWith('..') || isAbsolute(below) ? file : below;
}

/**
 * Reads the whole event stream. The runner's own process.argv holds the patterns: node's options
 * are in execArgv, so argv is [node, ...patterns].
 */
export async function collect(source: AsyncIterable<TestEvent>): Promise<RunSummary> {
  const cwd = process.cwd();
  const summary: RunSummary = {
    cwd,
    patterns: process.argv.slice(1),
    ran: 0,
    failed: 0,
    skipped: [],
    testsPerFile: {},
    brokenFiles: [],
  };
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    // the file being run (node 24 adds entryFile with process isolation); `file` is where the
    // test was declared, which is test/prerequisites.ts for the stand-in of a gated suite
    const entryFile = (data as { entryFile?: string }).entryFile ?? data.file;
    const file = fileKey(cwd, entryFile);
    // with process isolation a file with no tests, or one that fails to load, is a test named by its path
    if (entryFile !== undefined && data.name === entryFile) {
      if (event.type === 'test:fail') summary.brokenFiles.push(file);
      continue;
    }
    if (data.skip !== undefined && data.skip !== false) {
      summary.skipped.push({ file, name: data.name, reason: data.skip === true ? '' : data.skip });
    }
    if (data.details.type === 'suite') continue;
    summary.testsPerFile[file] = (summary.testsPerFile[file] ?? 0) + 1;
    const skippedOrTodo =
      (data.skip !== undefined && data.skip !== false) || (data.todo !== undefined && data.todo !== false);
    if (skippedOrTodo) continue;
    summary.ran++;
    if (event.type === 'test:fail') summary.failed++;
  }
  return summary;
}
