// ActualState maps engine events (by plugin ID) to names: an ID is known while one of the latest two
// listings had it, so a long-running controller does not keep every ID it ever saw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ActualState } from '../../../controller/reconcile/actual.ts';
import type { InstalledPlugin, PluginReader } from '../../../controller/store/store.ts';
import { installed } from './fixtures.ts';

function hostWith(plugins: InstalledPlugin[][]): { store: PluginReader; next: () => void } {
  let round = 0;
  const store = {
    list: async () => plugins[round]!,
    inspect: async (name: string) => plugins[round]!.find((p) => p.name === name),
  } as unknown as PluginReader;
  return { store, next: () => round++ };
}

const a = installed({ id: 'a'.repeat(64), name: 'a:latest' });
const b = installed({ id: 'b'.repeat(64), name: 'b:latest' });
const c = installed({ id: 'c'.repeat(64), name: 'c:latest' });

test('an ID is known while one of the latest two listings had it', async () => {
  const host = hostWith([[a, b], [a], [a, c]]);
  const actual = new ActualState(host.store);
  await actual.list();
  assert.equal(actual.nameOfId(b.id), 'b:latest');
  host.next();
  actual.invalidate();
  await actual.list();
  // b was removed: an event about it that arrives after this listing still finds its name
  assert.equal(actual.nameOfId(b.id), 'b:latest');
  host.next();
  actual.invalidate();
  await actual.list();
  assert.equal(actual.nameOfId(b.id), undefined);
  assert.equal(actual.nameOfId(a.id), 'a:latest');
  assert.equal(actual.nameOfId(c.id), 'c:latest');
});

test('a refresh makes a new plugin known before the next listing', async () => {
  const host = hostWith([[a], [a, c]]);
  const actual = new ActualState(host.store);
  await actual.list();
  host.next();
  await actual.refresh('c:latest');
  assert.equal(actual.nameOfId(c.id), 'c:latest');
});

test('the IDs kept stay bounded however many plugins came and went', async () => {
  const rounds = Array.from({ length: 200 }, (_, i) => [
    installed({ id: i.toString(16).padStart(64, '0'), name: `p${i}:latest` }),
  ]);
  const host = hostWith(rounds);
  const actual = new ActualState(host.store);
  for (let i = 0; i < rounds.length; i++) {
    actual.invalidate();
    await actual.list();
    if (i < rounds.length - 1) host.next();
  }
  const known = rounds.filter(([p]) => actual.nameOfId(p!.id) !== undefined).length;
  assert.equal(known, 2);
});
