/**
 * The ownership inventory: which local plugins plugctl manages, and for which apply set. Only
 * plugins listed here are ever pruned, and only by the set that declared them; everything else on
 * the host is left alone. An entry also records the plugin's ID, so a plugin someone installed by
 * hand under an owned name is recognised as theirs. Persisted as JSON in the state directory and
 * always replaced atomically.
 *
 * Version 1 (before apply sets) is read and migrated without losing ownership: its entries have no
 * set, so no set prunes them; the first apply that declares one of them claims it for its set.
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
  /**
   * the plugin's ID as plugctl installed, built or adopted it (an upgrade keeps it); absent until
   * known (migrated entries, an install interrupted before its ID was read)
   */
  id?: string;
  /** the apply set that declared it; absent only for entries migrated from version 1 */
  set?: string;
  /**
   * `override` when the document selected this host only thanks to a `--node-labels` override: a
   * plugin installed that way is never removed because the host stopped matching
   */
  selectedBy?: 'labels' | 'override';
  /**
   * env name -> salted hash (`hmac-sha256:…`, salt of the state directory) of each secret the
   * declaration sets; never the secret itself
   */
  secrets?: Record<string, string>;
  /**
   * the reference the store recorded when the content came from a registry mirror (the docker store
   * keeps the reference it pulled): it stands for `remote`, so it is neither drift nor a changed remote
   */
  mirrorReference?: string;
}

/** The whole inventory. */
export interface Inventory {
  version: 2;
  plugins: Record<string, OwnedPlugin>;
}

/** An empty inventory. */
export function emptyInventory(): Inventory {
  return { version: 2, plugins: {} };
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
    const parsed = JSON.parse(text) as { version?: unknown; plugins?: unknown };
    if ((parsed.version !== 1 && parsed.version !== 2) || !isRecord(parsed.plugins)) {
      throw new Error('unexpected shape');
    }
    for (const [name, entry] of Object.entries(parsed.plugins)) {
      if (!isRecord(entry) || typeof entry['key'] !== 'string' || typeof entry['remote'] !== 'string') {
        throw new Error(`entry ${JSON.stringify(name)} has no key or remote`);
      }
    }
    // Version 1 entries carry no set; they stay without one until a set claims them.
    return { version: 2, plugins: parsed.plugins as Record<string, OwnedPlugin> };
  } catch (error) {
    throw new PlugctlError(
      'STATE_CORRUPT',
      `${file} is not a valid plugctl inventory (${(error as Error).message}); ` +
        'restore it from a backup or remove it (plugctl then stops pruning the plugins it listed)',
      { kind: 'stalled', cause: error },
    );
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Persists the inventory atomically. */
export async function writeInventory(stateDir: string, inventory: Inventory): Promise<void> {
  const sorted: Inventory = { version: 2, plugins: {} };
  for (const name of Object.keys(inventory.plugins).sort()) sorted.plugins[name] = inventory.plugins[name]!;
  await writeFileAtomic(inventoryPath(stateDir), `${JSON.stringify(sorted, null, 2)}\n`, { createDir: true });
}
