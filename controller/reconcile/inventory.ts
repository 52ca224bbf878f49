/**
 * The ownership inventory: which local plugins plugctl manages. Only plugins listed here are ever
 * pruned; everything else on the host is left alone. Persisted as JSON in the state directory and
 * always replaced atomically (temp file, fsync, rename, fsync of the directory).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PlugctlError } from '../errors.ts';
import { writeFileAtomic } from '../runtime/atomic-file.ts';
import type { InUsePolicy } from '../api/types.ts';

/** One owned plugin, keyed by its local name in Inventory.plugins. */
export interface OwnedPlugin {
  /** metadata.name of the document that declared it */
  key: string;
  /** normalised remote it was declared with */
  remote: string;
  /** the declaration's inUse policy, remembered so a prune respects it after the document is gone */
  inUse: InUsePolicy;
  /**
   * manifest digest of the content plugctl last installed (the engine does not report it), or for
   * a plugin built from a context (spec.build) the digest of that context
   */
  digest?: string;
}

/** The whole inventory. */
export interface Inventory {
  version: 1;
  plugins: Record<string, OwnedPlugin>;
}

/** An empty inventory. */
export function emptyInventory(): Inventory {
  return { version: 1, plugins: {} };
}

/** Path of the inventory file inside a state directory. */
export function inventoryPath(stateDir: string): string {
  return join(stateDir, 'inventory.json');
}

/** Reads the inventory; a missing file is an empty inventory, a corrupt one is an error (never guessed). */
export async function readInventory(stateDir: string): Promise<Inventory> {
  const file = inventoryPath(stateDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyInventory();
    throw new PlugctlError('STATE_UNREADABLE', `cannot read ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    const parsed = JSON.parse(text) as Inventory;
    if (parsed.version !== 1 || typeof parsed.plugins !== 'object' || parsed.plugins === null) {
      throw new Error('unexpected shape');
    }
    return parsed;
  } catch (error) {
    throw new PlugctlError(
      'STATE_CORRUPT',
      `${file} is not a valid plugctl inventory (${(error as Error).message}); ` +
        'restore it from a backup or remove it (plugctl then stops pruning the plugins it listed)',
      { kind: 'stalled', cause: error },
    );
  }
}

/** Persists the inventory atomically. */
export async function writeInventory(stateDir: string, inventory: Inventory): Promise<void> {
  const sorted: Inventory = { version: 1, plugins: {} };
  for (const name of Object.keys(inventory.plugins).sort()) sorted.plugins[name] = inventory.plugins[name]!;
  await writeFileAtomic(inventoryPath(stateDir), `${JSON.stringify(sorted, null, 2)}\n`, { createDir: true });
}
