import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { inventoryFor } from '../../../controller/reconcile/controller.ts';
import { FileStatusSink, readStatuses, statusPath } from '../../../controller/reconcile/status-file.ts';
import { conditionsFor, phaseOf, StatusBook } from '../../../controller/reconcile/status.ts';
import { desired } from './fixtures.ts';

test('conditionsFor: ready sets Ready True and the others False (kstatus)', () => {
  const c = conditionsFor({ phase: 'ready', reason: 'Converged', message: 'ok' }, [], 't0');
  assert.deepEqual(
    c.map((x) => [x.type, x.status, x.reason]),
    [
      ['Ready', 'True', 'Converged'],
      ['Reconciling', 'False', 'Idle'],
      ['Stalled', 'False', 'NotStalled'],
    ],
  );
});

test('conditionsFor: stalled carries the reason on Stalled and on Ready', () => {
  const c = conditionsFor(
    { phase: 'stalled', reason: 'PRIVILEGES_MISMATCH', message: 'both lists' },
    [],
    't0',
  );
  assert.deepEqual(
    c.map((x) => [x.type, x.status, x.reason]),
    [
      ['Ready', 'False', 'PRIVILEGES_MISMATCH'],
      ['Reconciling', 'False', 'Idle'],
      ['Stalled', 'True', 'PRIVILEGES_MISMATCH'],
    ],
  );
});

test('conditionsFor: transition times change only when a status flips', () => {
  const first = conditionsFor({ phase: 'reconciling', reason: 'RetryingAfterError', message: 'x' }, [], 't0');
  const second = conditionsFor(
    { phase: 'reconciling', reason: 'RetryingAfterError', message: 'y' },
    first,
    't1',
  );
  assert.deepEqual(
    second.map((c) => c.lastTransitionTime),
    ['t0', 't0', 't0'],
  );
  const third = conditionsFor({ phase: 'ready', reason: 'Converged', message: '' }, second, 't2');
  assert.deepEqual(
    third.map((c) => c.lastTransitionTime),
    ['t2', 't2', 't0'],
  );
});

test('phaseOf reads the phase back', () => {
  for (const phase of ['ready', 'reconciling', 'stalled', 'suspended'] as const) {
    const conditions = conditionsFor({ phase, reason: 'r', message: 'm' }, [], 't');
    assert.equal(phaseOf({ key: 'k', plugin: 'p', lastReconcileTime: 't', conditions }), phase);
  }
});

test('a StatusBook on the file sink persists atomically and another reader sees it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'plugctl-status-'));
  try {
    const store = new StatusBook(new FileStatusSink(dir, 10_000));
    const conditions = conditionsFor({ phase: 'ready', reason: 'Converged', message: '' }, [], 't');
    store.set({ key: 'b', plugin: 'b:latest', lastReconcileTime: 't', conditions });
    store.set({ key: 'a', plugin: 'a:latest', lastReconcileTime: 't', conditions });
    store.delete('b');
    await store.flush();
    const read = await readStatuses(dir);
    assert.deepEqual(Object.keys(read), ['a']);
    assert.match(await readFile(statusPath(dir), 'utf8'), /"version": 1/);
    const again = new StatusBook(new FileStatusSink(dir));
    await again.load();
    assert.equal(again.get('a')?.plugin, 'a:latest');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a StatusBook publishes only changes other than the reconcile time', () => {
  const published: string[][] = [];
  const book = new StatusBook({
    load: async () => [],
    publish: (statuses) => published.push([...statuses.keys()]),
    flush: async () => undefined,
  });
  const conditions = conditionsFor({ phase: 'ready', reason: 'Converged', message: '' }, [], 't');
  book.set({ key: 'a', plugin: 'a:latest', lastReconcileTime: 't1', conditions });
  book.set({ key: 'a', plugin: 'a:latest', lastReconcileTime: 't2', conditions });
  assert.equal(book.get('a')?.lastReconcileTime, 't2', 'the time is kept in memory');
  book.set({ key: 'a', plugin: 'a:latest', enabled: false, lastReconcileTime: 't3', conditions });
  book.delete('nothing');
  book.delete('a');
  assert.deepEqual(published, [['a'], ['a'], []]);
});

test('inventoryFor: a key sees what it owns and the plugin it declares, never another key’s', () => {
  const inventory = {
    version: 2 as const,
    plugins: {
      'a:latest': { key: 'a', remote: 'r/a:1', inUse: 'Wait' as const },
      'old-a:latest': { key: 'a', remote: 'r/a:1', inUse: 'Wait' as const },
      'b:latest': { key: 'b', remote: 'r/b:1', inUse: 'Wait' as const },
      'moved:latest': { key: 'a', remote: 'r/m:1', inUse: 'Wait' as const },
    },
  };
  const declared = new Map([
    ['a:latest', 'a'],
    ['b:latest', 'b'],
    ['moved:latest', 'c'],
  ]);
  const slice = inventoryFor('a', desired({ key: 'a', name: 'a:latest' }), inventory, declared);
  assert.deepEqual(Object.keys(slice.plugins).sort(), ['a:latest', 'old-a:latest']);
  const forC = inventoryFor('c', desired({ key: 'c', name: 'moved:latest' }), inventory, declared);
  assert.deepEqual(Object.keys(forC.plugins), ['moved:latest'], 'a plugin now declared by c is c’s to keep');
  const gone = inventoryFor('b', undefined, inventory, new Map());
  assert.deepEqual(Object.keys(gone.plugins), ['b:latest']);
});
