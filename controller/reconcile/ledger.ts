/**
 * The InventoryLedger is the single writer of the ownership inventory while plugins are applied
 * concurrently: changes are made in memory and persisted one at a time, in order, so two plugins
 * finishing together can never lose each other's entry.
 */
import type { DesiredPlugin } from './desired.ts';
import { type Inventory, writeInventory } from './inventory.ts';

/** Serialised, persisted changes to the ownership inventory. */
export class InventoryLedger {
  readonly #stateDir: string;
  readonly #inventory: Inventory;
  #writes: Promise<void> = Promise.resolve();

  /** Wraps an inventory already read from `stateDir`; the ledger owns it from now on. */
  constructor(stateDir: string, inventory: Inventory) {
    this.#stateDir = stateDir;
    this.#inventory = inventory;
  }

  /** A read-only view of the current inventory. */
  snapshot(): Inventory {
    return structuredClone(this.#inventory);
  }

  /** Records that plugctl owns `name`, declared by `desired`; resolves once persisted. */
  own(name: string, desired: DesiredPlugin): Promise<void> {
    const current = this.#inventory.plugins[name];
    if (
      current?.key === desired.key &&
      current.remote === desired.remote &&
      current.inUse === desired.inUse
    ) {
      return this.#writes;
    }
    this.#inventory.plugins[name] = {
      ...current,
      key: desired.key,
      remote: desired.remote,
      inUse: desired.inUse,
    };
    return this.#persist();
  }

  /** Records the manifest digest just installed for an owned plugin; resolves once persisted. */
  setDigest(name: string, digest: string): Promise<void> {
    const current = this.#inventory.plugins[name];
    if (current === undefined || !Object.hasOwn(this.#inventory.plugins, name) || current.digest === digest) {
      return this.#writes;
    }
    current.digest = digest;
    return this.#persist();
  }

  /** Forgets `name` (after it was removed); resolves once persisted. */
  disown(name: string): Promise<void> {
    if (!Object.hasOwn(this.#inventory.plugins, name)) return this.#writes;
    delete this.#inventory.plugins[name];
    return this.#persist();
  }

  #persist(): Promise<void> {
    // Each write snapshots the state at its turn, so the last write always holds every change.
    // A failed write must not poison later ones: each starts after the previous settles either way.
    this.#writes = this.#writes
      .catch(() => undefined)
      .then(() => writeInventory(this.#stateDir, this.#inventory));
    return this.#writes;
  }
}
