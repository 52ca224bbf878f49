/**
 * Gives the heap's start-up high-water mark back to the system once `plugctl run` has gone quiet.
 *
 * While the controller starts (modules load, the first full sync runs) V8 grows the young generation
 * to 2 x 8 MB and pools the pages it frees, and it keeps all of that for as long as nothing allocates:
 * its memory reducer acts only on a low allocation rate, which it measures at GCs, and an idle
 * controller has no GCs, so it waits forever (`--trace-memory-reducer` prints "high alloc" every 8 s).
 * Capping the young generation instead (--max-semi-space-size=1) keeps it small too, but costs ~40% CPU
 * on a no-op resync of 1000 plugins. So the controller runs one memory-reducing GC when its CPU use
 * shows it has gone quiet: ~9 MB less resident memory for ~60 ms of CPU once (the sampling itself costs
 * ~0.03%), and nothing at all while it is busy.
 */
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** When a trim is due. Every field has a default (startIdleTrim). */
export interface IdleTrimOptions {
  /** how often CPU use is sampled */
  intervalMs: number;
  /** CPU time per interval, as a fraction of it, below which the process counts as quiet */
  quietFraction: number;
  /** quiet intervals in a row before the first trim (the start-up high-water mark) */
  firstQuietIntervals: number;
  /** quiet intervals in a row before any later trim: rarer, as a busy controller refills the heap */
  laterQuietIntervals: number;
  /** growth of the heap since the previous trim that makes a later trim worth a full GC */
  growthBytes: number;
  /**
   * no trim while the heap outside the young generation is larger than this: a memory-reducing GC of
   * a heap holding thousands of plugins costs hundreds of milliseconds (measured: +200 ms per resync
   * of 10000 plugins when it ran between two resyncs). The young generation is not counted: the GC's
   * cost does not grow with it, and it is what the trim gives back (2 x 8 MB in a controller of
   * file-mode plugins, 64 MB measured in an idle `run --kube` with 200 DockerPlugins cached, where
   * counting it kept the trim from ever running: 160 MB resident instead of ~90)
   */
  maxHeapBytes: number;
}

/**
 * The defaults: sample every second; quiet is under 0.5% CPU (an idle controller uses ~0%, a resync of
 * 100 plugins ~1% of its period); the first trim after 2 quiet seconds, later ones after a quiet minute;
 * never with more than 64 MB of heap outside the young generation (an idle controller of 20 plugins has ~25 MB before its trim).
 */
export const IDLE_TRIM_DEFAULTS: Readonly<IdleTrimOptions> = {
  intervalMs: 1000,
  quietFraction: 0.005,
  firstQuietIntervals: 2,
  laterQuietIntervals: 60,
  growthBytes: 4 * 1024 * 1024,
  maxHeapBytes: 64 * 1024 * 1024,
};

/** What the trimmer remembers between samples. */
export interface IdleTrimState {
  /** quiet intervals in a row, up to now */
  quietIntervals: number;
  /** physical heap size right after the previous trim; undefined before the first */
  heapAfterTrim: number | undefined;
}

/** The heap's physical size at a sample, bytes. */
export interface HeapSize {
  /** the whole heap (V8's total_physical_size) */
  totalBytes: number;
  /** of which the young generation (new space and its large objects) */
  youngBytes: number;
}

/** Whether to trim now, given the state after the latest sample and the heap's physical size. */
export function shouldTrim(state: IdleTrimState, heap: HeapSize, options: IdleTrimOptions): boolean {
  if (heap.totalBytes - heap.youngBytes > options.maxHeapBytes) return false;
  if (state.heapAfterTrim === undefined) return state.quietIntervals >= options.firstQuietIntervals;
  return (
    state.quietIntervals >= options.laterQuietIntervals &&
    heap.totalBytes - state.heapAfterTrim >= options.growthBytes
  );
}

/** The young generation's spaces in getHeapSpaceStatistics(). */
const YOUNG_SPACES = new Set(['new_space', 'new_large_object_space']);

/** The heap's physical size now, and the young generation's part of it. */
export function heapSize(): HeapSize {
  let youngBytes = 0;
  for (const space of getHeapSpaceStatistics()) {
    if (YOUNG_SPACES.has(space.space_name)) youngBytes += space.physical_space_size;
  }
  return { totalBytes: getHeapStatistics().total_physical_size, youngBytes };
}

/**
 * One memory-reducing GC (V8's "last resort" collection: full, compacting, releasing pooled pages).
 * `gc` exists only in a context created while --expose-gc is on, so the flag is on for one new context
 * and off again at once: the main context keeps no `gc` global, and V8's flags (on which the compile
 * cache's validity depends) are as before. A memory-reducing GC also throws away the bytecode of every
 * function not running, which the next resync would pay for by compiling everything again and losing
 * its type feedback; bytecode flushing is off for this one GC, as the bytecode is small (~0.3 MB).
 */
export function memoryReducingGc(): void {
  let gc: (options: { type: string; execution: string; flavor: string }) => void;
  setFlagsFromString('--expose-gc');
  try {
    gc = runInNewContext('gc') as typeof gc;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  setFlagsFromString('--no-flush-bytecode');
  try {
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } finally {
    setFlagsFromString('--flush-bytecode');
  }
}

/**
 * Samples CPU use every `intervalMs` and trims the heap when shouldTrim says so. The timer does not
 * keep the process alive. Returns a function that stops it.
 */
export function startIdleTrim(overrides: Partial<IdleTrimOptions> = {}): () => void {
  const options: IdleTrimOptions = { ...IDLE_TRIM_DEFAULTS, ...overrides };
  const state: IdleTrimState = { quietIntervals: 0, heapAfterTrim: undefined };
  const quietMicros = options.intervalMs * 1000 * options.quietFraction;
  let last = process.cpuUsage();
  const timer = setInterval(() => {
    const used = process.cpuUsage(last);
    last = process.cpuUsage();
    state.quietIntervals = used.user + used.system < quietMicros ? state.quietIntervals + 1 : 0;
    if (!shouldTrim(state, heapSize(), options)) return;
    memoryReducingGc();
    state.heapAfterTrim = getHeapStatistics().total_physical_size;
    state.quietIntervals = 0;
    // the GC's own CPU time must not count against the next interval
    last = process.cpuUsage();
  }, options.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
