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
  /** the write waiting to start, if any: later changes ride along with it */
  #queued: Promise<void> | undefined;
  /** document key -> local names it owns, so one key's slice costs nothing however large the inventory */
  readonly #byKey = new Map<string, Set<string>>();

  /** Wraps an inventory already read from `stateDir`; the ledger owns it from now on. */
  constructor(stateDir: string, inventory: Inventory) {
    this.#stateDir = stateDir;
    this.#inventory = inventory;
    for (const [name, owned] of Object.entries(inventory.plugins)) this.#index(owned.key, name);
  }

  /** A copy of the current inventory, safe to keep. */
  snapshot(): Inventory {
    return structuredClone(this.#inventory);
  }

  /** The current inventory itself, without copying: read it now, do not keep or change it. */
  view(): Readonly<Inventory> {
    return this.#inventory;
  }

  /** Local names owned on behalf of document `key`. */
  namesOwnedBy(key: string): readonly string[] {
    return [...(this.#byKey.get(key) ?? [])];
  }

  #index(key: string, name: string): void {
    let names = this.#byKey.get(key);
    if (names === undefined) this.#byKey.set(key, (names = new Set()));
    names.add(name);
  }

  #unindex(key: string, name: string): void {
    const names = this.#byKey.get(key);
    names?.delete(name);
    if (names?.size === 0) this.#byKey.delete(key);
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
    if (current !== undefined) this.#unindex(current.key, name);
    this.#index(desired.key, name);
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
    this.#unindex(this.#inventory.plugins[name]!.key, name);
    delete this.#inventory.plugins[name];
    return this.#persist();
  }

  #persist(): Promise<void> {
    // Group commit: changes made while a write is in flight share the one write queued after it,
    // which serialises the state when it starts, so it holds every change made before it.
    // A failed write must not poison later ones: each starts after the previous settles either way.
    if (this.#queued !== undefined) return this.#queued;
    const queued = this.#writes
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return writeInventory(this.#stateDir, this.#inventory);
      });
    this.#queued = queued;
    this.#writes = queued;
    return queued;
  }
}
