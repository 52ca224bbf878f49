import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import {
  emptyInventory,
  inventoryPath,
  readInventory,
  writeInventory,
} from '../../../controller/reconcile/inventory.ts';
import { InventoryLedger } from '../../../controller/reconcile/ledger.ts';
import { desired, SET } from './fixtures.ts';

const CLAIM = { set: SET, selectedBy: 'labels' as const };

describe('inventory persistence', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-inv-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a missing file reads as an empty inventory', async () => {
    assert.deepEqual(await readInventory(join(dir, 'nope')), emptyInventory());
  });

  test('round-trips, leaves no temp files, and is mode 0600', async () => {
    const inv = emptyInventory();
    inv.plugins['b:latest'] = { key: 'b', remote: 'docker.io/x/b:latest', inUse: 'Wait' };
    inv.plugins['a:latest'] = { key: 'a', remote: 'docker.io/x/a:latest', inUse: 'Force' };
    await writeInventory(dir, inv);
    assert.deepEqual(await readInventory(dir), inv);
    assert.deepEqual(await readdir(dir), ['inventory.json']);
    const { stat } = await import('node:fs/promises');
    assert.equal((await stat(inventoryPath(dir))).mode & 0o777, 0o600);
    const text = await readFile(inventoryPath(dir), 'utf8');
    assert.ok(text.indexOf('a:latest') < text.indexOf('b:latest'), 'keys are written sorted');
  });

  test('a corrupt file is an error that says what to do, never an empty inventory', async () => {
    await writeFile(inventoryPath(dir), '{"version": 1, "plugins": ');
    await assert.rejects(readInventory(dir), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'STATE_CORRUPT');
      assert.match(error.message, /inventory\.json/);
      assert.match(error.message, /restore it/);
      return true;
    });
  });

  test('the ledger keeps every change when many plugins finish at once', async () => {
    const ledger = new InventoryLedger(dir, emptyInventory());
    const names = Array.from({ length: 50 }, (_, i) => `p${i}:latest`);
    await Promise.all(names.map((name, i) => ledger.own(name, desired({ key: `p${i}`, name }), CLAIM)));
    await Promise.all(names.slice(0, 10).map((name) => ledger.disown(name)));
    const onDisk = await readInventory(dir);
    assert.deepEqual(Object.keys(onDisk.plugins).sort(), names.slice(10).sort());
    assert.deepEqual(onDisk, ledger.snapshot());
  });

  test('owning an unchanged entry writes nothing', async () => {
    const inv = emptyInventory();
    const d = desired({ key: 'a', name: 'a:latest' });
    inv.plugins['a:latest'] = { key: d.key, remote: d.remote, inUse: d.inUse, ...CLAIM, id: 'i'.repeat(64) };
    const ledger = new InventoryLedger(dir, inv);
    await ledger.own('a:latest', d, CLAIM);
    await ledger.own('a:latest', d, { ...CLAIM, id: 'i'.repeat(64) });
    assert.deepEqual(await readdir(dir), [], 'no file was written');
  });

  test('migrates a version 1 inventory without losing ownership: its entries have no set yet', async () => {
    const v1 = {
      version: 1,
      plugins: { 'a:latest': { key: 'a', remote: 'docker.io/x/a:1', inUse: 'Wait', digest: 'sha256:aa' } },
    };
    await writeFile(inventoryPath(dir), JSON.stringify(v1));
    const migrated = await readInventory(dir);
    assert.deepEqual(migrated, { version: 2, plugins: v1.plugins });
    // the first set that declares it claims it, keeping what was recorded
    const ledger = new InventoryLedger(dir, migrated);
    await ledger.own('a:latest', desired({ key: 'a', name: 'a:latest', remote: 'docker.io/x/a:1' }), {
      ...CLAIM,
      id: 'f'.repeat(64),
    });
    const claimed = (await readInventory(dir)).plugins['a:latest'];
    assert.equal(claimed?.set, SET);
    assert.equal(claimed?.id, 'f'.repeat(64));
    assert.equal(claimed?.digest, 'sha256:aa');
    assert.equal(JSON.parse(await readFile(inventoryPath(dir), 'utf8')).version, 2);
  });

  test('refuses an entry without key or remote as corrupt rather than guessing', async () => {
    await writeFile(
      inventoryPath(dir),
      JSON.stringify({ version: 2, plugins: { 'a:latest': { key: 'a' } } }),
    );
    await assert.rejects(readInventory(dir), { code: 'STATE_CORRUPT' });
  });
});
