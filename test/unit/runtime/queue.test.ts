// WorkQueue semantics (client-go util/workqueue): dedup, never the same key twice at once, FIFO,
// delayed adds, per-key backoff under a global token bucket, shutdown. Time is a FakeClock throughout.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WorkQueue, type WorkQueueOptions } from '../../../controller/runtime/queue.ts';
import { FakeClock, settle } from './fake-clock.ts';

function setup(options: WorkQueueOptions = {}): { clock: FakeClock; queue: WorkQueue } {
  const clock = new FakeClock();
  return { clock, queue: new WorkQueue({ clock, ...options }) };
}

/** Takes every key waiting right now, in order, marking them processing. */
async function takeAll(queue: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.len() > 0) {
    const key = await queue.get();
    assert.ok(key !== undefined);
    keys.push(key);
  }
  return keys;
}

/** Where a promise stands once every pending continuation has run. */
async function peek<T>(promise: Promise<T>): Promise<{ settled: false } | { settled: true; value: T }> {
  let state: { settled: false } | { settled: true; value: T } = { settled: false };
  void promise.then((value) => {
    state = { settled: true, value };
  });
  await settle();
  return state;
}

describe('add and get', () => {
  test('a key added three times before it is taken is handed out once', async () => {
    const { queue } = setup();
    queue.add('a');
    queue.add('a');
    queue.add('a');
    assert.equal(queue.len(), 1);
    assert.equal(await queue.get(), 'a');
    assert.equal(queue.len(), 0);
    assert.deepEqual(await peek(queue.get()), { settled: false });
  });

  test('waiting keys are handed out first in, first out', async () => {
    const { queue } = setup();
    for (const key of ['c', 'a', 'b', 'a', 'd']) queue.add(key);
    assert.deepEqual(await takeAll(queue), ['c', 'a', 'b', 'd']);
  });

  test('FIFO order holds across many keys and interleaved adds', async () => {
    const { queue } = setup();
    const expected: string[] = [];
    for (let i = 0; i < 3000; i++) {
      queue.add(`k${i}`);
      expected.push(`k${i}`);
    }
    const got: string[] = [];
    for (let i = 0; i < 2000; i++) got.push((await queue.get()) as string);
    for (let i = 3000; i < 4000; i++) {
      queue.add(`k${i}`);
      expected.push(`k${i}`);
    }
    got.push(...(await takeAll(queue)));
    assert.deepEqual(got, expected);
  });

  test('a key added while it is processed is not handed out until done, then exactly once more', async () => {
    const { queue } = setup();
    queue.add('a');
    assert.equal(await queue.get(), 'a');
    queue.add('a');
    queue.add('a');
    queue.add('a');
    assert.equal(queue.len(), 0, 'not waiting while processing');
    assert.equal(queue.processing(), 1);
    assert.deepEqual(await peek(queue.get()), { settled: false });

    const { queue: q2 } = setup();
    q2.add('a');
    q2.add('b');
    assert.equal(await q2.get(), 'a');
    q2.add('a');
    q2.done('a');
    assert.deepEqual(await takeAll(q2), ['b', 'a'], 're-queued at the tail');
    q2.done('a');
    q2.done('b');
    assert.equal(q2.len(), 0);
    assert.equal(q2.processing(), 0);
  });

  test('a key not re-added while processing is not re-queued by done', async () => {
    const { queue } = setup();
    queue.add('a');
    await queue.get();
    queue.done('a');
    queue.done('a'); // a second done is a no-op
    assert.equal(queue.len(), 0);
    assert.equal(queue.processing(), 0);
  });

  test('a waiting get resolves with the next key added, and that key counts as processing', async () => {
    const { queue } = setup();
    const first = queue.get();
    const second = queue.get();
    queue.add('a');
    assert.equal(queue.processing(), 1);
    queue.add('a'); // handed out already: marks it dirty instead of queueing a copy
    queue.add('b');
    assert.equal(await first, 'a');
    assert.equal(await second, 'b');
    assert.equal(queue.len(), 0);
    queue.done('a');
    assert.equal(queue.len(), 1);
  });

  test('property: no key is handed out twice at once, and every add is followed by a hand-out', async () => {
    const op = fc.oneof(
      fc.record({ op: fc.constant('add' as const), key: fc.constantFrom('a', 'b', 'c') }),
      fc.record({ op: fc.constant('get' as const) }),
      fc.record({ op: fc.constant('done' as const), index: fc.nat() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const { queue } = setup();
        const held: string[] = [];
        // Keys added since they were last handed out: each must be handed out again eventually.
        const owed = new Set<string>();
        const take = async (): Promise<void> => {
          const key = (await queue.get()) as string;
          assert.ok(!held.includes(key), `${key} handed out while held`);
          held.push(key);
          owed.delete(key);
        };
        for (const step of ops) {
          if (step.op === 'add') {
            queue.add(step.key);
            owed.add(step.key);
          } else if (step.op === 'get' && queue.len() > 0) {
            await take();
          } else if (step.op === 'done' && held.length > 0) {
            const [key] = held.splice(step.index % held.length, 1);
            queue.done(key as string);
          }
        }
        while (held.length > 0 || queue.len() > 0) {
          if (queue.len() > 0) await take();
          else queue.done(held.shift() as string);
        }
        assert.deepEqual([...owed], []);
      }),
      { numRuns: 200 },
    );
  });
});

describe('addAfter', () => {
  test('adds the key once its delay has passed, not before; ms <= 0 adds at once', () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 100);
    queue.addAfter('now', 0);
    queue.addAfter('negative', -5);
    assert.equal(queue.len(), 2);
    clock.advance(99);
    assert.equal(queue.len(), 2);
    clock.advance(1);
    assert.equal(queue.len(), 3);
  });

  test('keys come out in deadline order, ties in the order they were scheduled', async () => {
    const { clock, queue } = setup();
    queue.addAfter('c', 30);
    queue.addAfter('a', 10);
    queue.addAfter('b1', 20);
    queue.addAfter('b2', 20);
    clock.advance(100);
    assert.deepEqual(await takeAll(queue), ['a', 'b1', 'b2', 'c']);
  });

  test('an earlier deadline wins over a later one, whichever was asked first', async () => {
    const { clock, queue } = setup();
    queue.addAfter('early-first', 10);
    queue.addAfter('early-first', 100);
    queue.addAfter('late-first', 100);
    queue.addAfter('late-first', 10);
    clock.advance(10);
    assert.deepEqual(await takeAll(queue), ['early-first', 'late-first']);
    queue.done('early-first');
    queue.done('late-first');
    clock.advance(1000);
    assert.equal(queue.len(), 0, 'the superseded later deadline does not fire as well');
    assert.equal(clock.pending(), 0, 'no timer left armed');
  });

  test('a delayed add that fires while the key is processed runs it once more after done', async () => {
    const { clock, queue } = setup();
    queue.add('a');
    await queue.get();
    queue.addAfter('a', 50);
    clock.advance(50);
    assert.equal(queue.len(), 0);
    queue.done('a');
    assert.deepEqual(await takeAll(queue), ['a']);
  });

  test('a delayed add stays scheduled when the key is also added now (it may run twice)', async () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 50);
    queue.add('a');
    assert.deepEqual(await takeAll(queue), ['a']);
    queue.done('a');
    clock.advance(50);
    assert.deepEqual(await takeAll(queue), ['a']);
  });
});

describe('addRateLimited and forget', () => {
  test('per-key backoff doubles from 5 ms: the key is added at 5, then 10, 20, 40 ms later', async () => {
    const { clock, queue } = setup();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const delay = queue.addRateLimited('a');
      delays.push(delay);
      clock.advance(delay - 1);
      assert.equal(queue.len(), 0, `not before ${delay} ms`);
      clock.advance(1);
      assert.equal(queue.len(), 1, `at ${delay} ms`);
      queue.done((await queue.get()) as string);
    }
    assert.deepEqual(delays, [5, 10, 20, 40]);
    assert.equal(queue.failures('a'), 4);
  });

  test('backoff is per key and capped at maxDelayMs (default 1000 s)', () => {
    const { queue } = setup({ qps: Infinity });
    const delays = Array.from({ length: 22 }, () => queue.addRateLimited('a'));
    assert.deepEqual(delays.slice(0, 3), [5, 10, 20]);
    assert.equal(delays[17], 5 * 2 ** 17);
    assert.deepEqual(delays.slice(18), [1_000_000, 1_000_000, 1_000_000, 1_000_000]);
    assert.equal(queue.addRateLimited('b'), 5, 'another key starts from the base delay');

    const { queue: small } = setup({ baseDelayMs: 100, maxDelayMs: 300 });
    assert.deepEqual(
      Array.from({ length: 4 }, () => small.addRateLimited('a')),
      [100, 200, 300, 300],
    );
  });

  test("a registry's Retry-After lengthens the delay, capped at maxDelayMs; it never shortens it", () => {
    const { queue } = setup({ qps: Infinity, maxDelayMs: 300_000 });
    assert.equal(queue.addRateLimited('a', 86_400_000), 300_000, 'a day is capped at the backoff maximum');
    assert.equal(queue.failures('a'), 1);
    assert.equal(queue.addRateLimited('b', 2_000), 2_000);
    assert.equal(queue.addRateLimited('c', 1), 5, 'shorter than the backoff: the backoff');
  });

  test('forget resets the backoff to the base delay', () => {
    const { queue } = setup();
    queue.addRateLimited('a');
    queue.addRateLimited('a');
    queue.addRateLimited('a');
    assert.equal(queue.failures('a'), 3);
    queue.forget('a');
    assert.equal(queue.failures('a'), 0);
    assert.equal(queue.addRateLimited('a'), 5);
  });

  test('the global token bucket spreads retries past the burst at qps', () => {
    const { clock, queue } = setup({ qps: 10, burst: 100 });
    for (let i = 0; i < 100; i++) assert.equal(queue.addRateLimited(`k${i}`), 5, `within burst: k${i}`);
    // Past the burst each reservation waits 1/qps longer than the previous one.
    assert.equal(queue.addRateLimited('k100'), 100);
    assert.equal(queue.addRateLimited('k101'), 200);
    assert.equal(queue.addRateLimited('k102'), 300);
    clock.advance(300);
    assert.equal(queue.len(), 103);
    // The bucket refills at qps: 300 ms paid the debt of 3, 200 ms more bring 2 tokens.
    clock.advance(200);
    assert.equal(queue.addRateLimited('late1'), 5);
    assert.equal(queue.addRateLimited('late2'), 5);
    assert.equal(queue.addRateLimited('late3'), 100);
    // It never holds more than burst.
    clock.advance(1_000_000);
    for (let i = 0; i < 99; i++) queue.addRateLimited(`again${i}`);
    assert.equal(queue.addRateLimited('again99'), 5);
    assert.equal(queue.addRateLimited('again100'), 100);
  });
});

describe('shutDown and drained', () => {
  test('shutDown resolves waiting gets with undefined, drops waiting and delayed keys, ignores adds', async () => {
    const { clock, queue } = setup();
    const waiting = queue.get();
    queue.shutDown();
    assert.equal(await waiting, undefined);

    const { clock: c2, queue: q2 } = setup();
    q2.add('queued');
    q2.addAfter('delayed', 10);
    q2.addRateLimited('retried');
    q2.shutDown();
    assert.equal(q2.len(), 0);
    assert.equal(c2.pending(), 0, 'delayed adds cancelled');
    c2.advance(10_000);
    q2.add('late');
    q2.addAfter('late', 5);
    assert.equal(q2.addRateLimited('late'), 0);
    c2.advance(10_000);
    assert.equal(q2.len(), 0);
    assert.equal(await q2.get(), undefined);
    assert.equal(clock.pending(), 0);
    q2.shutDown(); // idempotent
  });

  test('a key re-added while processing is not re-queued by done after shutDown', async () => {
    const { queue } = setup();
    queue.add('a');
    await queue.get();
    queue.add('a');
    queue.shutDown();
    queue.done('a');
    assert.equal(queue.len(), 0);
    assert.equal(queue.processing(), 0);
  });

  test('drained resolves once every in-flight key is done, at once when none is', async () => {
    const { queue } = setup();
    await queue.drained();
    queue.add('a');
    queue.add('b');
    await queue.get();
    await queue.get();
    queue.shutDown();
    const drained = queue.drained();
    assert.deepEqual(await peek(drained), { settled: false });
    queue.done('a');
    assert.deepEqual(await peek(drained), { settled: false });
    queue.done('b');
    assert.deepEqual(await peek(drained), { settled: true, value: undefined });
  });

  test('invalid options are rejected', () => {
    assert.throws(() => new WorkQueue({ baseDelayMs: 0 }), RangeError);
    assert.throws(() => new WorkQueue({ maxDelayMs: -1 }), RangeError);
    assert.throws(() => new WorkQueue({ qps: Number.NaN }), RangeError);
    assert.throws(() => new WorkQueue({ burst: 1.5 }), RangeError);
  });
});
