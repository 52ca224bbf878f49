import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSelector, matchesSelector } from '../../../controller/api/selector.ts';
import type { LabelSelector } from '../../../controller/api/types.ts';

const labels = { 'kubernetes.io/hostname': 'host-a', role: 'storage', zone: 'a' };

const cases: [string, LabelSelector | undefined, boolean][] = [
  ['no selector matches every host', undefined, true],
  ['empty selector matches every host', {}, true],
  ['matchLabels equal', { matchLabels: { role: 'storage' } }, true],
  ['matchLabels differ', { matchLabels: { role: 'web' } }, false],
  ['matchLabels on hostname', { matchLabels: { 'kubernetes.io/hostname': 'host-a' } }, true],
  ['In', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }, true],
  ['In, absent key', { matchExpressions: [{ key: 'rack', operator: 'In', values: ['1'] }] }, false],
  ['NotIn', { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, false],
  [
    'NotIn, absent key matches',
    { matchExpressions: [{ key: 'rack', operator: 'NotIn', values: ['1'] }] },
    true,
  ],
  ['Exists', { matchExpressions: [{ key: 'role', operator: 'Exists' }] }, true],
  ['DoesNotExist', { matchExpressions: [{ key: 'role', operator: 'DoesNotExist' }] }, false],
  [
    'all terms must hold',
    { matchLabels: { role: 'storage' }, matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] },
    false,
  ],
];

for (const [name, selector, expected] of cases) {
  test(`matchesSelector: ${name}`, () => assert.equal(matchesSelector(selector, labels), expected));
}

test('formatSelector writes the API server label-selector syntax; empty selects everything', () => {
  assert.equal(formatSelector(undefined), '');
  assert.equal(formatSelector({}), '');
  assert.equal(
    formatSelector({
      matchLabels: { role: 'storage' },
      matchExpressions: [
        { key: 'zone', operator: 'In', values: ['a', 'b'] },
        { key: 'rack', operator: 'NotIn', values: ['1'] },
        { key: 'gpu', operator: 'Exists' },
        { key: 'spot', operator: 'DoesNotExist' },
      ],
    }),
    'role=storage,zone in (a,b),rack notin (1),gpu,!spot',
  );
});
