/**
 * The InventoryLedger is the single writer of the ownership inventory while plugins are applied
 * concurrently: changes are made in memory and persisted one at a time, in order, so two plugins
 * finishing together can never lose each other's entry.
 */
import { secretHashes } from './secrets.ts';
import type { DesiredPlugin } from './desired.ts';
import { type Inventory, type OwnedPlugin, writeInventory } from './inventory.ts';

/** How a plan claims a plugin: for which apply set, how its document selected the host, with which ID. */
export interface OwnershipClaim {
  set: string;
  selectedBy: 'labels' | 'override';
  /** the installed plugin's ID when it is known now (an adoption, a migrated entry, a take-over) */
  id?: string;
}

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

  /** The state directory the inventory is persisted in (its salt hashes secrets, reconcile/secrets.ts). */
  get stateDir(): string {
    return this.#stateDir;
  }

  /** The local name of the owned plugin with ID `id`, if plugctl owns one. */
  nameOfId(id: string): string | undefined {
    for (const [name, owned] of Object.entries(this.#inventory.plugins)) if (owned.id === id) return name;
    return undefined;
  }

  /**
   * Records that plugctl owns `name` for `claim.set`, declared by `desired`; resolves once
   * persisted. A claim with an ID replaces the recorded one (a take-over); without one the recorded
   * ID is kept.
   */
  own(name: string, desired: DesiredPlugin, claim: OwnershipClaim): Promise<void> {
    const current = this.#inventory.plugins[name];
    const next: OwnedPlugin = {
      ...current,
      key: desired.key,
      remote: desired.remote,
      inUse: desired.inUse,
      set: claim.set,
      selectedBy: claim.selectedBy,
      ...(claim.id !== undefined ? { id: claim.id } : {}),
    };
    const secrets = secretHashes(desired);
    if (secrets !== undefined) next.secrets = secrets;
    else delete next.secrets;
    if (current !== undefined && sameEntry(current, next)) return this.#writes;
    if (current !== undefined) this.#unindex(current.key, name);
    this.#index(desired.key, name);
    this.#inventory.plugins[name] = next;
    return this.#persist();
  }

  /** Records the ID of an owned plugin (after plugctl installed or built it); resolves once persisted. */
  setId(name: string, id: string): Promise<void> {
    const current = Object.hasOwn(this.#inventory.plugins, name) ? this.#inventory.plugins[name] : undefined;
    if (current === undefined || current.id === id) return this.#writes;
    current.id = id;
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

  /**
   * Records the reference the store keeps for content fetched from a registry mirror (undefined:
   * fetched from the declared remote itself); resolves once persisted.
   */
  setMirrorReference(name: string, reference: string | undefined): Promise<void> {
    const current = Object.hasOwn(this.#inventory.plugins, name) ? this.#inventory.plugins[name] : undefined;
    if (current === undefined || current.mirrorReference === reference) return this.#writes;
    if (reference === undefined) delete current.mirrorReference;
    else current.mirrorReference = reference;
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

function sameEntry(a: OwnedPlugin, b: OwnedPlugin): boolean {
  return (
    a.key === b.key &&
    a.remote === b.remote &&
    a.inUse === b.inUse &&
    a.set === b.set &&
    a.selectedBy === b.selectedBy &&
    a.id === b.id &&
    a.digest === b.digest &&
    JSON.stringify(a.secrets) === JSON.stringify(b.secrets) &&
    a.mirrorReference === b.mirrorReference
  );
}
