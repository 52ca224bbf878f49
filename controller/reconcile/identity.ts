/**
 * The declared remote is a plugin's identity, wherever its content came from. The docker store keeps
 * the reference it pulled, which for content from a registry mirror is the mirror's; the inventory
 * remembers that reference (OwnedPlugin.mirrorReference), and this maps it back before anything
 * compares references, so a mirrored plugin is neither drift nor a changed remote, and is not pulled
 * again when the upstream comes back.
 */
import type { InstalledPlugin } from '../store/store.ts';
import type { Inventory } from './inventory.ts';

/** `plugins` with every mirror reference recorded in `inventory` replaced by its declared remote. */
export function withDeclaredIdentity(
  plugins: readonly InstalledPlugin[],
  inventory: Inventory,
): InstalledPlugin[] {
  let changed = false;
  const out = plugins.map((plugin) => {
    const owned = Object.hasOwn(inventory.plugins, plugin.name) ? inventory.plugins[plugin.name] : undefined;
    if (owned?.mirrorReference === undefined || owned.mirrorReference !== plugin.reference) return plugin;
    if (owned.id !== undefined && owned.id !== plugin.id) return plugin;
    changed = true;
    return { ...plugin, reference: owned.remote };
  });
  return changed ? out : (plugins as InstalledPlugin[]);
}
