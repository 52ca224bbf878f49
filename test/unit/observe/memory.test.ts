// The idle trim of `plugctl run`: when a memory-reducing GC is due, and that running one shrinks the
// young generation without leaving a `gc` global behind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getHeapSpaceStatistics } from 'node:v8';
import {
  IDLE_TRIM_DEFAULTS,
  heapSize,
  memoryReducingGc,
  shouldTrim,
  startIdleTrim,
} from '../../../controller/observe/memory.ts';

const MB = 1024 * 1024;
/** A heap of `totalBytes` with no young generation. */
const heap = (totalBytes: number, youngBytes = 0) => ({ totalBytes, youngBytes });

test('the first trim comes after a short quiet spell', () => {
  const first = (quietIntervals: number): boolean =>
    shouldTrim({ quietIntervals, heapAfterTrim: undefined }, heap(0), IDLE_TRIM_DEFAULTS);
  assert.equal(first(0), false);
  assert.equal(first(IDLE_TRIM_DEFAULTS.firstQuietIntervals - 1), false);
  assert.equal(first(IDLE_TRIM_DEFAULTS.firstQuietIntervals), true);
});

test('later trims need a long quiet spell and a heap that has grown since the previous one', () => {
  const later = (quietIntervals: number, heapBytes: number): boolean =>
    shouldTrim({ quietIntervals, heapAfterTrim: 10 * MB }, heap(heapBytes), IDLE_TRIM_DEFAULTS);
  const grown = 10 * MB + IDLE_TRIM_DEFAULTS.growthBytes;
  assert.equal(later(IDLE_TRIM_DEFAULTS.firstQuietIntervals, grown), false);
  assert.equal(later(IDLE_TRIM_DEFAULTS.laterQuietIntervals - 1, grown), false);
  assert.equal(later(IDLE_TRIM_DEFAULTS.laterQuietIntervals, grown - 1), false);
  assert.equal(later(IDLE_TRIM_DEFAULTS.laterQuietIntervals, grown), true);
});

test('a large heap is never trimmed: the GC would cost more than the fixed amount it gives back', () => {
  const big = IDLE_TRIM_DEFAULTS.maxHeapBytes + 1;
  assert.equal(
    shouldTrim({ quietIntervals: 1000, heapAfterTrim: undefined }, heap(big), IDLE_TRIM_DEFAULTS),
    false,
  );
  assert.equal(shouldTrim({ quietIntervals: 1000, heapAfterTrim: 0 }, heap(big), IDLE_TRIM_DEFAULTS), false);
  // a large old generation beside a young one: still too large
  assert.equal(
    shouldTrim(
      { quietIntervals: 1000, heapAfterTrim: undefined },
      heap(big + 64 * MB, 64 * MB),
      IDLE_TRIM_DEFAULTS,
    ),
    false,
  );
});

test('a large young generation does not stop the trim: it is what the trim gives back', () => {
  // measured in an idle run --kube with 200 DockerPlugins: 64 MB of new space beside 29 MB of the rest
  const young = heap(93 * MB, 64 * MB);
  assert.equal(
    shouldTrim(
      { quietIntervals: IDLE_TRIM_DEFAULTS.firstQuietIntervals, heapAfterTrim: undefined },
      young,
      IDLE_TRIM_DEFAULTS,
    ),
    true,
  );
  // and when it grows back after a trim, that growth counts toward the next one
  assert.equal(
    shouldTrim(
      { quietIntervals: IDLE_TRIM_DEFAULTS.laterQuietIntervals, heapAfterTrim: 30 * MB },
      young,
      IDLE_TRIM_DEFAULTS,
    ),
    true,
  );
});

test('heapSize counts the young generation inside the whole heap', () => {
  const { totalBytes, youngBytes } = heapSize();
  assert.ok(youngBytes > 0, 'no young generation found');
  assert.ok(youngBytes < totalBytes, `young ${youngBytes} of ${totalBytes}`);
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
