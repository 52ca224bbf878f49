/**
 * The crash worker's journal of its steps, and where a kill landed according to it.
 *
 * The worker (crash-worker.ts) appends one line per step to a file of its own (`CRASH_STEPS`):
 * `go` (told to start), `open` (the store is open, reload done), `journal` (set only: its intent
 * is durable), `start` (the operation is about to be called), `done` (the operation returned).
 * Each line is written with one write(2) before the worker takes the next step. A SIGKILL cannot
 * undo a write that has returned (the data is in the kernel's page cache; only a crash of the
 * machine could lose it, and the test reads the file after the worker died, on the same machine),
 * so the file the test reads afterwards holds exactly the steps the worker had reached:
 *
 * - no `start`: the kill landed **before** the operation (while the store was being opened);
 * - `start` without `done`: **during** the operation — it had been called and had not returned;
 * - `done` (or a worker that exited by itself): **after** it had finished.
 *
 * This does not depend on when the test saw the worker's output or when its own timers fired.
 * The timestamps (epoch ms, from performance.timeOrigin + performance.now(), comparable between
 * processes of one machine) give the operation's real duration for aiming later kills.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** The environment variable naming the worker's journal file. */
export const ENV_STEPS = 'CRASH_STEPS';

/** The steps a worker journals, in order. */
export const STEPS = ['go', 'open', 'journal', 'start', 'done'] as const;
export type Step = (typeof STEPS)[number];

/** Where a kill landed relative to the operation. */
export type KillPoint = 'before' | 'during' | 'after';

/** One journaled step and when it was reached (epoch ms, sub-ms precision). */
export interface JournalEntry {
  step: Step;
  at: number;
}

/** Now, in epoch ms with sub-ms precision: the clock both sides of the journal use. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** The worker's side: appends steps to its journal file with synchronous writes. */
export class StepJournal {
  readonly #fd: number;

  /** Creates (or appends to) the journal at `path`. */
  constructor(path: string) {
    this.#fd = openSync(path, 'a');
  }

  /** Journals `step`; returns once the line is in the file (one write(2), no fsync: see above). */
  record(step: Step): void {
    writeSync(this.#fd, `${step} ${epochNow().toFixed(3)}\n`);
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/**
 * True when the journal at `path` already records `step` (read synchronously, for a file watcher's
 * callback that must decide at once); a missing file records nothing.
 */
export function journalHas(path: string, step: Step): boolean {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .some((line) => line.startsWith(`${step} `));
  } catch {
    return false;
  }
}

/** Reads a journal; a missing file is an empty journal (the worker was killed before `go`). */
export async function readJournal(path: string): Promise<JournalEntry[]> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw error;
  });
  const entries: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [step, at] = line.split(' ');
    const known = STEPS.find((candidate) => candidate === step);
    if (known === undefined || at === undefined || !Number.isFinite(Number(at))) {
      throw new Error(`${path}: not a journal line: ${JSON.stringify(line)}`);
    }
    entries.push({ step: known, at: Number(at) });
  }
  return entries;
}

/** When `step` was journaled, if it was. */
export function stepAt(entries: readonly JournalEntry[], step: Step): number | undefined {
  return entries.find((entry) => entry.step === step)?.at;
}

/** Where the kill landed, from the journal (see the module comment). */
export function killPoint(entries: readonly JournalEntry[]): KillPoint {
  if (stepAt(entries, 'done') !== undefined) return 'after';
  return stepAt(entries, 'start') === undefined ? 'before' : 'during';
}
