// Backoff delays and the clock-driven sleep: exact with a manual clock and a fixed random source.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Backoff, jittered, sleep } from '../../../controller/runtime/backoff.ts';
import { FakeClock } from './fake-clock.ts';

describe('Backoff', () => {
  test('doubles from the initial delay to the cap, each delay in [d/2, d]', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1_000 }, () => 0);
    assert.deepEqual(
      Array.from({ length: 6 }, () => low.next()),
      [50, 100, 200, 400, 500, 500],
    );
    const high = new Backoff({ initialMs: 100, maxMs: 1_000 }, () => 1);
    assert.deepEqual(
      Array.from({ length: 6 }, () => high.next()),
      [100, 200, 400, 800, 1_000, 1_000],
    );
  });

  test('reset() starts again from the bottom', () => {
    const backoff = new Backoff({ initialMs: 10, maxMs: 1_000 }, () => 1);
    backoff.next();
    backoff.next();
    backoff.reset();
    assert.equal(backoff.next(), 10);
  });

  test('jittered() takes up to `spread` off, never adds', () => {
    assert.equal(
      jittered(1_000, 0.1, () => 0),
      1_000,
    );
    assert.equal(
      jittered(1_000, 0.1, () => 1),
      900,
    );
  });
});

describe('sleep', () => {
  test('resolves after the delay on the given clock, or at once when aborted', async () => {
    const clock = new FakeClock();
    let done = false;
    const slept = sleep(clock, 500).then(() => (done = true));
    clock.advance(499);
    await Promise.resolve();
    assert.equal(done, false);
    clock.advance(1);
    await slept;
    assert.equal(done, true);

    const abort = new AbortController();
    const early = sleep(clock, 10_000, abort.signal);
    abort.abort();
    await early;
    assert.equal(clock.pending(), 0, 'the timer is cleared');
  });
});
