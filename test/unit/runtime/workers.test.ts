// The reconcile loop: how each ReconcileResult decides a key's next turn, never two workers on one
// key, done() always called, shutdown. Every test runs on a FakeClock; nothing sleeps.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FailureKind } from '../../../controller/errors.ts';
import { WorkQueue } from '../../../controller/runtime/queue.ts';
import { type ReconcileResult, startWorkers } from '../../../controller/runtime/workers.ts';
import { FakeClock, settle } from './fake-clock.ts';

const DONE: ReconcileResult = { type: 'done' };

function failed(kind: FailureKind): ReconcileResult {
  return { type: 'failed', kind, error: new Error(kind) };
}

interface Run {
  key: string;
  at: number;
}

/**
 * A queue and a pool whose reconcile answers from `respond` and records when each key ran. `respond`
 * may return a promise the test resolves later, to hold a reconcile in flight.
 */
function setup(
  respond: (key: string, attempt: number) => ReconcileResult | Promise<ReconcileResult>,
  count = 1,
) {
  const clock = new FakeClock();
  const queue = new WorkQueue({ clock });
  const runs: Run[] = [];
  const results: Array<{ key: string; result: ReconcileResult; durationMs: number }> = [];
  const workers = startWorkers({
    queue,
    count,
    clock,
    // Not async: a respond that throws makes reconcile throw synchronously, as a plain function may.
    reconcile: (key) => {
      const attempt = runs.filter((run) => run.key === key).length;
      runs.push({ key, at: clock.now() });
      return Promise.resolve(respond(key, attempt));
    },
    onResult: (key, result, durationMs) => results.push({ key, result, durationMs }),
  });
  const times = (key: string): number[] => runs.filter((run) => run.key === key).map((run) => run.at);
  return { clock, queue, workers, runs, results, times };
}

/** Advances the clock in steps of `step` ms up to `total`, letting workers run after each step. */
async function run(clock: FakeClock, total: number, step = 1): Promise<void> {
  await settle();
  for (let elapsed = 0; elapsed < total; elapsed += step) {
    clock.advance(Math.min(step, total - elapsed));
    await settle();
  }
}

function deferred<T>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('concurrency', () => {
  test('a key added three times while every worker is busy is reconciled once', async () => {
    const gate = deferred<ReconcileResult>();
    const { queue, runs } = setup((key) => (key === 'busy' ? gate.promise : DONE));
    queue.add('busy');
    await settle();
    queue.add('a');
    queue.add('a');
    queue.add('a');
    assert.equal(queue.len(), 1);
    gate.resolve(DONE);
    await settle();
    assert.deepEqual(
      runs.map((r) => r.key),
      ['busy', 'a'],
    );
  });

  test('with four workers a key is never reconciled concurrently with itself, and re-adds run once more', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock });
    const inFlight = new Map<string, number>();
    let maxSameKey = 0;
    let maxOverall = 0;
    const releases: Array<() => void> = [];
    const runs: string[] = [];
    startWorkers({
      queue,
      count: 4,
      clock,
      reconcile: async (key) => {
        runs.push(key);
        inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
        maxSameKey = Math.max(maxSameKey, ...inFlight.values());
        maxOverall = Math.max(
          maxOverall,
          [...inFlight.values()].reduce((a, b) => a + b, 0),
        );
        const gate = deferred<void>();
        releases.push(gate.resolve);
        await gate.promise;
        inFlight.set(key, (inFlight.get(key) ?? 0) - 1);
        return DONE;
      },
    });
    queue.add('a');
    queue.add('b');
    await settle();
    // Added three times while in flight, with idle workers available.
    queue.add('a');
    queue.add('a');
    queue.add('a');
    await settle();
    assert.deepEqual(runs, ['a', 'b']);
    while (releases.length > 0) {
      for (const release of releases.splice(0)) release();
      await settle();
    }
    assert.deepEqual(runs, ['a', 'b', 'a'], 'exactly once more');
    assert.equal(maxSameKey, 1);
    assert.equal(maxOverall, 2, 'different keys do run in parallel');
    assert.equal(queue.processing(), 0);
  });
});

describe('results', () => {
  test('done forgets the failures the key had', async () => {
    const { clock, queue, times } = setup((_key, attempt) => (attempt < 2 ? failed('transient') : DONE));
    queue.add('a');
    await run(clock, 100);
    assert.deepEqual(times('a'), [0, 5, 15]);
    assert.equal(queue.failures('a'), 0);
    await run(clock, 10_000, 1000);
    assert.equal(times('a').length, 3, 'not requeued');
  });

  test('a transient failure is retried with exponential backoff: 5, 10, 20, 40 ms', async () => {
    const { clock, queue, times } = setup(() => failed('transient'));
    queue.add('a');
    await run(clock, 75);
    assert.deepEqual(times('a'), [0, 5, 15, 35, 75]);
    assert.equal(queue.failures('a'), 5);
  });

  test('a reconcile that throws or rejects is a transient failure', async () => {
    const boom = new Error('boom');
    const { clock, queue, results, times } = setup((key) => {
      if (key === 'sync') throw boom;
      return Promise.reject(boom);
    });
    queue.add('sync');
    queue.add('async');
    await run(clock, 5);
    assert.deepEqual(times('sync'), [0, 5]);
    assert.deepEqual(times('async'), [0, 5]);
    assert.deepEqual(results[0], {
      key: 'sync',
      result: { type: 'failed', kind: 'transient', error: boom },
      durationMs: 0,
    });
    assert.equal(queue.processing(), 0, 'done was called');
  });

  test('a stalled failure is not retried, and its backoff is forgotten', async () => {
    const { clock, queue, times } = setup((_key, attempt) =>
      attempt === 0 ? failed('transient') : failed('stalled'),
    );
    queue.add('a');
    await run(clock, 5);
    assert.deepEqual(times('a'), [0, 5]);
    await run(clock, 2_000_000, 100_000);
    assert.deepEqual(times('a'), [0, 5], 'never retried by the queue');
    assert.equal(queue.failures('a'), 0);
    queue.add('a'); // the document changed, or resync re-added it
    await settle();
    assert.equal(times('a').length, 3);
  });

  test('a stalled key re-added during its reconcile (document edited) runs again', async () => {
    const gate = deferred<ReconcileResult>();
    const { queue, times } = setup((_key, attempt) => (attempt === 0 ? gate.promise : DONE));
    queue.add('a');
    await settle();
    queue.add('a');
    gate.resolve(failed('stalled'));
    await settle();
    assert.deepEqual(times('a'), [0, 0]);
  });

  test('a waiting failure is polled after 5 s, growing by half, without touching the backoff', async () => {
    const { clock, queue, times } = setup((_key, attempt) =>
      attempt === 0 ? failed('transient') : failed('waiting'),
    );
    queue.add('a');
    await run(clock, 5);
    assert.equal(queue.failures('a'), 1);
    await run(clock, 5000 + 7500 + 11_250, 250);
    assert.deepEqual(times('a'), [0, 5, 5005, 12_505, 23_755]);
    assert.equal(queue.failures('a'), 1, 'waiting neither grows nor clears the transient backoff');
  });

  test('waiting delays are capped, and any other result starts them over', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock });
    const answers: ReconcileResult[] = [
      failed('waiting'),
      failed('waiting'),
      failed('waiting'),
      DONE,
      failed('waiting'),
    ];
    const at: number[] = [];
    startWorkers({
      queue,
      count: 1,
      clock,
      waitingDelayMs: 100,
      waitingMaxDelayMs: 120,
      reconcile: async () => {
        at.push(clock.now());
        return answers.shift() ?? DONE;
      },
    });
    queue.add('a');
    await run(clock, 340, 10);
    assert.deepEqual(at, [0, 100, 220, 340]);
    queue.add('a');
    await run(clock, 100, 10);
    assert.deepEqual(at, [0, 100, 220, 340, 340, 440], 'back to 100 ms after a done');
  });

  test('requeueAfter reconciles again after its delay and forgets the failures', async () => {
    const { clock, queue, times } = setup((_key, attempt) =>
      attempt === 0 ? failed('transient') : attempt === 1 ? { type: 'requeueAfter', ms: 30_000 } : DONE,
    );
    queue.add('a');
    await settle();
    assert.equal(queue.failures('a'), 1);
    await run(clock, 5);
    assert.equal(queue.failures('a'), 0);
    await run(clock, 29_999, 1000);
    assert.deepEqual(times('a'), [0, 5]);
    await run(clock, 1);
    assert.deepEqual(times('a'), [0, 5, 30_005]);
  });
});

describe('observing and stopping', () => {
  test('onResult gets each result with its duration measured on the clock', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock });
    const seen: Array<[string, string, number]> = [];
    startWorkers({
      queue,
      count: 1,
      clock,
      reconcile: async (key) => {
        clock.advance(key === 'slow' ? 1234 : 42);
        return key === 'slow' ? { type: 'requeueAfter', ms: 10 } : DONE;
      },
      onResult: (key, result, durationMs) => seen.push([key, result.type, durationMs]),
    });
    queue.add('fast');
    queue.add('slow');
    await settle();
    assert.deepEqual(seen, [
      ['fast', 'done', 42],
      ['slow', 'requeueAfter', 1234],
    ]);
  });

  test('an onResult that throws is reported as a warning and the worker carries on', async (t) => {
    const warnings: unknown[] = [];
    t.mock.method(process, 'emitWarning', (warning: unknown) => warnings.push(warning));
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock });
    const reconciled: string[] = [];
    startWorkers({
      queue,
      count: 1,
      clock,
      reconcile: async (key) => {
        reconciled.push(key);
        return DONE;
      },
      onResult: () => {
        throw new Error('metrics broke');
      },
    });
    queue.add('a');
    queue.add('b');
    await settle();
    assert.deepEqual(reconciled, ['a', 'b']);
    assert.equal(warnings.length, 2);
    assert.equal((warnings[0] as Error).message, 'metrics broke');
  });

  test('shutDown stops the workers after in-flight reconciles finish; waiting keys never start', async () => {
    const gate = deferred<ReconcileResult>();
    const { queue, workers, runs } = setup((key) => (key === 'inflight' ? gate.promise : DONE), 2);
    let stopped = false;
    void workers.stopped.then(() => {
      stopped = true;
    });
    queue.add('inflight');
    await settle();
    queue.add('inflight'); // dirty: would run again if not shut down
    queue.shutDown();
    queue.add('new');
    await settle();
    assert.equal(stopped, false, 'waits for the in-flight reconcile');
    assert.equal(queue.processing(), 1);
    let drained = false;
    void queue.drained().then(() => {
      drained = true;
    });
    gate.resolve(failed('transient')); // its retry is dropped by the shut-down queue
    await workers.stopped;
    assert.equal(drained, true);
    assert.deepEqual(
      runs.map((r) => r.key),
      ['inflight'],
    );
    assert.equal(queue.processing(), 0);
  });

  test('count must be a positive integer', () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    const reconcile = async (): Promise<ReconcileResult> => DONE;
    assert.throws(() => startWorkers({ queue, count: 0, reconcile }), RangeError);
    assert.throws(() => startWorkers({ queue, count: 1.5, reconcile }), RangeError);
    queue.shutDown();
  });
});
