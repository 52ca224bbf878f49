// The idle trim of `plugctl run`: when a memory-reducing GC is due, and that running one shrinks the
// young generation without leaving a `gc` global behind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getHeapSpaceStatistics } from 'node:v8';
import {
  IDLE_TRIM_DEFAULTS,
  memoryReducingGc,
  shouldTrim,
  startIdleTrim,
} from '../../../controller/observe/memory.ts';

const MB = 1024 * 1024;

test('the first trim comes after a short quiet spell', () => {
  const first = (quietIntervals: number): boolean =>
    shouldTrim({ quietIntervals, heapAfterTrim: undefined }, 0, IDLE_TRIM_DEFAULTS);
  assert.equal(first(0), false);
  assert.equal(first(IDLE_TRIM_DEFAULTS.firstQuietIntervals - 1), false);
  assert.equal(first(IDLE_TRIM_DEFAULTS.firstQuietIntervals), true);
});

test('later trims need a long quiet spell and a heap that has grown since the previous one', () => {
  const later = (quietIntervals: number, heapBytes: number): boolean =>
    shouldTrim({ quietIntervals, heapAfterTrim: 10 * MB }, heapBytes, IDLE_TRIM_DEFAULTS);
  const grown = 10 * MB + IDLE_TRIM_DEFAULTS.growthBytes;
  assert.equal(later(IDLE_TRIM_DEFAULTS.firstQuietIntervals, grown), false);
  assert.equal(later(IDLE_TRIM_DEFAULTS.laterQuietIntervals - 1, grown), false);
  assert.equal(later(IDLE_TRIM_DEFAULTS.laterQuietIntervals, grown - 1), false);
  assert.equal(later(IDLE_TRIM_DEFAULTS.laterQuietIntervals, grown), true);
});

test('a large heap is never trimmed: the GC would cost more than the fixed amount it gives back', () => {
  const big = IDLE_TRIM_DEFAULTS.maxHeapBytes + 1;
  assert.equal(
    shouldTrim({ quietIntervals: 1000, heapAfterTrim: undefined }, big, IDLE_TRIM_DEFAULTS),
    false,
  );
  assert.equal(shouldTrim({ quietIntervals: 1000, heapAfterTrim: 0 }, big, IDLE_TRIM_DEFAULTS), false);
});

test('memoryReducingGc shrinks the young generation and leaves no gc global', () => {
  const newSpace = (): number =>
    getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
  let keep: unknown[] = [];
  for (let i = 0; i < 300_000; i++) keep.push({ i, text: `value ${i}` });
  keep = [];
  void keep;
  const before = newSpace();
  memoryReducingGc();
  assert.ok(newSpace() <= before, `new space grew from ${before} to ${newSpace()}`);
  assert.ok(newSpace() <= 2 * MB, `new space is still ${newSpace()} bytes`);
  assert.equal('gc' in globalThis, false);
});

test('startIdleTrim trims a quiet process and stops when asked', async () => {
  const stop = startIdleTrim({ intervalMs: 5, quietFraction: 1e6, firstQuietIntervals: 1 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  stop();
  assert.equal('gc' in globalThis, false);
});
