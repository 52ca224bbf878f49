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
import { desired } from './fixtures.ts';

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
    await Promise.all(names.map((name, i) => ledger.own(name, desired({ key: `p${i}`, name }))));
    await Promise.all(names.slice(0, 10).map((name) => ledger.disown(name)));
    const onDisk = await readInventory(dir);
    assert.deepEqual(Object.keys(onDisk.plugins).sort(), names.slice(10).sort());
    assert.deepEqual(onDisk, ledger.snapshot());
  });

  test('owning an unchanged entry writes nothing', async () => {
    const inv = emptyInventory();
    const d = desired({ key: 'a', name: 'a:latest' });
    inv.plugins['a:latest'] = { key: d.key, remote: d.remote, inUse: d.inUse };
    const ledger = new InventoryLedger(dir, inv);
    await ledger.own('a:latest', d);
    assert.deepEqual(await readdir(dir), [], 'no file was written');
  });
});
