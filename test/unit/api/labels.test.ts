import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  hostLabelsOf,
  labelProblem,
  parseLabelPairs,
  parseLabelsFile,
  selectHost,
  wellKnownLabels,
} from '../../../controller/api/labels.ts';

test('parseLabelPairs reads k=v pairs and names a bad one', () => {
  assert.deepEqual(parseLabelPairs('role=storage, zone=a'), { role: 'storage', zone: 'a' });
  assert.deepEqual(parseLabelPairs(undefined), {});
  assert.deepEqual(parseLabelPairs('gpu='), { gpu: '' });
  assert.throws(() => parseLabelPairs('role'), /--node-labels: "role" is not key=value/);
  assert.throws(() => parseLabelPairs('role=a b'), /"role=a b": the value "a b"/);
});

test('labelProblem follows the Kubernetes label syntax', () => {
  for (const [key, value] of [
    ['role', 'storage'],
    ['example.com/zone', 'eu-1'],
    ['kubernetes.io/hostname', 'host-a'],
    ['a', ''],
  ] as const) {
    assert.equal(labelProblem(key, value), undefined, `${key}=${value}`);
  }
  for (const [key, value] of [
    ['-role', 'x'],
    ['Example.com/zone', 'x'],
    ['role', '-x'],
    ['role', 'x'.repeat(64)],
    ['/role', 'x'],
  ] as const) {
    assert.notEqual(labelProblem(key, value), undefined, `${key}=${value}`);
  }
});

test('parseLabelsFile skips comments and blank lines and names file:line for a bad line', () => {
  const text = '# host labels\n\nrole = storage\nzone=eu-1\n';
  assert.deepEqual(parseLabelsFile(text, '/etc/plugctl/labels'), { role: 'storage', zone: 'eu-1' });
  assert.throws(
    () => parseLabelsFile('role=storage\njunk\n', '/etc/plugctl/labels'),
    /\/etc\/plugctl\/labels:2: expected key=value/,
  );
});

test('wellKnownLabels names the host as a Kubernetes Node is named', () => {
  assert.deepEqual(wellKnownLabels('Host-A', 'linux', 'x64'), {
    'kubernetes.io/hostname': 'host-a',
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': 'amd64',
  });
  assert.equal(wellKnownLabels('h', 'linux', 'arm64')['kubernetes.io/arch'], 'arm64');
});

test('later persistent sources win, and overrides apply only to the effective labels', () => {
  const host = hostLabelsOf([{ zone: 'a', role: 'web' }, { role: 'storage' }], { role: 'db', extra: '1' });
  assert.deepEqual(host.persistent, { zone: 'a', role: 'storage' });
  assert.deepEqual(host.effective, { zone: 'a', role: 'db', extra: '1' });
});

test('selectHost tells selection by persistent labels from selection by an override', () => {
  const storage = { matchLabels: { role: 'storage' } };
  const persistent = hostLabelsOf([{ role: 'storage' }], {});
  assert.deepEqual(selectHost(storage, persistent), { selected: true, by: 'labels' });
  assert.deepEqual(selectHost(undefined, persistent), { selected: true, by: 'labels' });
  // only the override selects it
  assert.deepEqual(selectHost(storage, hostLabelsOf([{}], { role: 'storage' })), {
    selected: true,
    by: 'override',
  });
  // only the override deselects it: never a reason to delete
  assert.deepEqual(selectHost(storage, hostLabelsOf([{ role: 'storage' }], { role: 'web' })), {
    selected: false,
    byOverride: true,
  });
  // the persistent labels deselect it
  assert.deepEqual(selectHost(storage, hostLabelsOf([{ role: 'web' }], {})), {
    selected: false,
    byOverride: false,
  });
});
