import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, parseDuration } from '../../../controller/cli/duration.ts';

for (const [text, ms] of [
  ['500ms', 500],
  ['30s', 30_000],
  ['90s', 90_000],
  ['5m', 300_000],
  ['1h', 3_600_000],
  ['1m30s', 90_000],
  ['1h30m', 5_400_000],
  ['1.5s', 1500],
] as const) {
  test(`parseDuration ${text}`, () => assert.equal(parseDuration(text, '--resync'), ms));
}

for (const bad of ['', '5', '300000', 'm', '5 m', '5x', '-5s', '5s!', '1h 30m']) {
  test(`parseDuration rejects ${JSON.stringify(bad)}`, () =>
    assert.throws(() => parseDuration(bad, '--resync'), /--resync: .* is not a duration/));
}

test('parseDuration enforces a minimum and names it', () => {
  assert.throws(() => parseDuration('0s', '--resync', 1000), /--resync: 0s is below the minimum of 1s/);
  assert.throws(() => parseDuration('500ms', '--resync', 1000), /minimum of 1s/);
  assert.equal(parseDuration('1s', '--resync', 1000), 1000);
});

for (const [ms, text] of [
  [0, '0s'],
  [500, '500ms'],
  [1000, '1s'],
  [90_000, '1m30s'],
  [300_000, '5m'],
  [5_400_000, '1h30m'],
] as const) {
  test(`formatDuration ${ms} -> ${text}, which parses back`, () => {
    assert.equal(formatDuration(ms), text);
    assert.equal(parseDuration(text, '--x'), ms);
  });
}
