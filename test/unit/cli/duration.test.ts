import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../../../controller/cli/duration.ts';

for (const [text, ms] of [
  ['500ms', 500],
  ['30s', 30_000],
  ['5m', 300_000],
  ['1h', 3_600_000],
  ['1m30s', 90_000],
  ['1.5s', 1500],
] as const) {
  test(`parseDuration ${text}`, () => assert.equal(parseDuration(text, '--resync'), ms));
}

for (const bad of ['', '5', 'm', '5 m', '5x', '-5s', '5s!']) {
  test(`parseDuration rejects ${JSON.stringify(bad)}`, () =>
    assert.throws(() => parseDuration(bad, '--resync'), /--resync: .* is not a duration/));
}
