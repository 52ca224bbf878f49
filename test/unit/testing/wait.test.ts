// waitFor and within (test/wait.ts): they wait for a state, and refuse deadlines short enough to
// be speed checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MIN_DEADLINE_MS, waitFor, within } from '../../wait.ts';

test('waitFor returns the first value that is neither undefined nor false', async () => {
  let calls = 0;
  const value = await waitFor(() => (++calls >= 3 ? `after ${calls}` : false), { what: 'three calls' });
  assert.equal(value, 'after 3');
});

test('waitFor passes on what the condition throws', async () => {
  await assert.rejects(
    waitFor(
      () => {
        throw new Error('probe broke');
      },
      { what: 'nothing' },
    ),
    /probe broke/,
  );
});

test('a deadline under 10 s is refused as a speed check', async () => {
  await assert.rejects(
    waitFor(() => true, { what: 'x', timeoutMs: MIN_DEADLINE_MS - 1 }),
    RangeError,
  );
  await assert.rejects(within(Promise.resolve(1), { what: 'y', timeoutMs: 1000 }), /is a speed check/);
});

test('within returns what the promise settles with', async () => {
  assert.equal(await within(Promise.resolve(7), { what: 'seven' }), 7);
  await assert.rejects(within(Promise.reject(new Error('no')), { what: 'a rejection' }), /^Error: no$/);
});
