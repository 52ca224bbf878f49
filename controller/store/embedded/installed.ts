/**
 * The InstalledPlugin of a plugin the embedded store holds. moby keeps the same types.Plugin JSON
 * on disk that the Engine API answers, so this is the shared mapping of ../plugin-json.ts (which
 * does not load the engine client, so the embedded store never pays for undici's engine parts).
 */
import { toInstalledPlugin, type Json } from '../plugin-json.ts';
import type { InstalledPlugin } from '../store.ts';

export { capabilityOf } from '../plugin-json.ts';

/**
 * The InstalledPlugin of a types.Plugin object that has passed parseStoredPlugin (so it has an Id
 * and a Name); `inUse` is left unknown, the embedded store does not track users of plugins.
 */
export function installedPlugin(plugin: Json): InstalledPlugin {
  return toInstalledPlugin(plugin);
}
