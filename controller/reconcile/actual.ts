/**
 * A cache of the host's plugins for the controller. A resync invalidates it, so a resync of N keys
 * costs one list call whatever N is; an engine event invalidates it too, because something changed
 * that plugctl did not do; after its own actions the controller refreshes single entries by inspect.
 */
import type { InstalledPlugin, PluginReader } from '../store/store.ts';

/** Cached, shared view of `store.list()`. */
export class ActualState {
  readonly #store: PluginReader;
  #entries: Map<string, InstalledPlugin> | undefined;
  #inflight: Promise<Map<string, InstalledPlugin>> | undefined;
  /** bumped by every invalidation, so a listing that started before one is not cached */
  #generation = 0;
  /**
   * plugin ID -> local name of the plugins of the latest listing and of the refreshes since; kept
   * across invalidations, since an event for a plugin (by ID) arrives just after the cache was
   * invalidated by another
   */
  #names = new Map<string, string>();
  /**
   * the same of the listing before: an event about a plugin just removed still finds its name when
   * a listing ran between the removal and the event. Two listings' worth, not every ID ever seen,
   * which would grow with every upgrade and reinstall for as long as the controller runs.
   */
  #previousNames = new Map<string, string>();

  /** Wraps `store`; nothing is read until the first list(). */
  constructor(store: PluginReader) {
    this.#store = store;
  }

  /** The plugins, from cache or from one list call shared by all concurrent callers. */
  async list(): Promise<InstalledPlugin[]> {
    return [...(await this.#map()).values()];
  }

  /** The installed plugins among `names` (one shared listing when the cache is cold). */
  async some(names: Iterable<string>): Promise<InstalledPlugin[]> {
    return pick(await this.#map(), names);
  }

  /**
   * The installed plugins among `names` when the cache is warm, else undefined: lets a caller skip
   * the promise round trip of some(), which a resync would otherwise pay once per key.
   */
  someCached(names: Iterable<string>): InstalledPlugin[] | undefined {
    return this.#entries === undefined ? undefined : pick(this.#entries, names);
  }

  /** The plugin with local name or ID `nameOrId`, if cached (no I/O). */
  peek(nameOrId: string): InstalledPlugin | undefined {
    if (this.#entries === undefined) return undefined;
    return this.#entries.get(nameOrId) ?? [...this.#entries.values()].find((p) => p.id === nameOrId);
  }

  /**
   * The local name of the plugin with ID `id`, as last seen (no I/O); undefined when no listing of
   * the latest two (nor a refresh since) had it.
   */
  nameOfId(id: string): string | undefined {
    return this.#names.get(id) ?? this.#previousNames.get(id);
  }

  /** Makes the next list() ask the store. */
  invalidate(): void {
    this.#generation++;
    this.#entries = undefined;
  }

  /** Re-reads one plugin after plugctl changed it. */
  async refresh(name: string): Promise<void> {
    const generation = this.#generation;
    const plugin = await this.#store.inspect(name);
    if (this.#entries === undefined || generation !== this.#generation) {
      // A listing may be in flight from before the change: make sure it is not cached.
      this.invalidate();
      return;
    }
    if (plugin === undefined) this.#entries.delete(name);
    else {
      this.#entries.set(name, plugin);
      this.#names.set(plugin.id, plugin.name);
    }
  }

  async #map(): Promise<Map<string, InstalledPlugin>> {
    if (this.#entries !== undefined) return this.#entries;
    if (this.#inflight !== undefined) return this.#inflight;
    const generation = this.#generation;
    const listing = this.#store.list().then((plugins) => {
      const map = new Map(plugins.map((p) => [p.name, p]));
      this.#previousNames = this.#names;
      this.#names = new Map(plugins.map((p) => [p.id, p.name]));
      if (generation === this.#generation) this.#entries = map;
      return map;
    });
    this.#inflight = listing;
    try {
      return await listing;
    } finally {
      if (this.#inflight === listing) this.#inflight = undefined;
    }
  }
}

function pick(map: ReadonlyMap<string, InstalledPlugin>, names: Iterable<string>): InstalledPlugin[] {
  const found: InstalledPlugin[] = [];
  for (const name of new Set(names)) {
    const plugin = map.get(name);
    if (plugin !== undefined) found.push(plugin);
  }
  return found;
}
