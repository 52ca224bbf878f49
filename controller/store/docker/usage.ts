/**
 * What uses each plugin, asked of the engine itself, because the engine's own answer ("plugin is in
 * use") comes from a reference count it loses across restarts (moby#32609) and cannot say who.
 *
 * A user can only exist where the plugin's interface allows one, so only those lists are read:
 * volumes (GET /volumes) for volume drivers, networks (GET /networks, driver or IPAM driver) for
 * network and IPAM drivers, containers (GET /containers/json?all=1, then one inspect per container
 * never seen) for log drivers. One listing of each kind serves every plugin: the engine's driver
 * filters match the name as recorded, which for networks and log drivers is whatever the user typed
 * (`vol`, `vol:latest`, a registry-qualified name), so names are normalised here. Listings are kept
 * for `ttlMs` (2 s); a container's log driver cannot change after it is created, so it is kept for
 * as long as the container exists. At most `maxInspects` containers are inspected per lookup, so a
 * lookup costs at most three listings plus that bound; the rest are checked by later lookups and the
 * answer says it is not complete meanwhile.
 */
import { formatReference, parseReference } from '../../api/reference.ts';
import type { Clock } from '../../runtime/clock.ts';
import { array, record, str, strings } from '../plugin-json.ts';
import type { InstalledPlugin, PluginUsage } from '../store.ts';
import type { EngineClient } from './client.ts';

/** Tunables of an EngineUsage. */
export interface EngineUsageOptions {
  /** how long a listing is reused, ms; default 2000 */
  ttlMs?: number;
  /** containers inspected at most per lookup; default 16 */
  maxInspects?: number;
  clock: Pick<Clock, 'now'>;
}

interface Listing<T> {
  at: number;
  generation: number;
  value: Promise<T>;
}

interface ContainerSummary {
  id: string;
  name: string;
}

/** Cached usage lookups against one engine. */
export class EngineUsage {
  readonly #engine: Pick<EngineClient, 'json'>;
  readonly #ttlMs: number;
  readonly #maxInspects: number;
  readonly #clock: Pick<Clock, 'now'>;
  #generation = 0;
  readonly #listings = new Map<string, Listing<unknown>>();
  /** container ID -> its log driver type as recorded (immutable for the container's life) */
  readonly #logDrivers = new Map<string, string>();

  /** Reads through `engine`; no I/O until the first lookup. */
  constructor(engine: Pick<EngineClient, 'json'>, options: EngineUsageOptions) {
    this.#engine = engine;
    this.#ttlMs = options.ttlMs ?? 2000;
    this.#maxInspects = options.maxInspects ?? 16;
    this.#clock = options.clock;
  }

  /** Forgets the listings (kept log drivers stay: they cannot change). */
  invalidate(): void {
    this.#generation++;
    this.#listings.clear();
  }

  /** See PluginUsageReader.usage. */
  async usage(
    plugins: readonly InstalledPlugin[],
    options: { fresh?: boolean } = {},
  ): Promise<Map<string, PluginUsage>> {
    if (options.fresh === true) this.invalidate();
    const has = (capability: string): boolean => plugins.some((p) => p.capabilities.includes(capability));
    const [volumes, networks, containers] = await Promise.all([
      has('volumedriver') ? this.#volumes() : [],
      has('networkdriver') || has('ipamdriver') ? this.#networks() : [],
      has('logdriver') ? this.#containers() : undefined,
    ]);
    let logDrivers: { byContainer: ReadonlyMap<string, string>; complete: boolean } = {
      byContainer: new Map(),
      complete: true,
    };
    if (containers !== undefined) logDrivers = await this.#logDriversOf(containers);
    const result = new Map<string, PluginUsage>();
    for (const plugin of plugins) {
      const mine = (driver: string | undefined): boolean => driver !== undefined && names(plugin, driver);
      const logs = plugin.capabilities.includes('logdriver');
      result.set(plugin.name, {
        volumes: volumes.filter((v) => mine(v.driver)).map((v) => v.name),
        networks: networks.filter((n) => mine(n.driver) || mine(n.ipam)).map((n) => n.name),
        logContainers: logs
          ? (containers ?? []).filter((c) => mine(logDrivers.byContainer.get(c.id))).map((c) => c.name)
          : [],
        complete: !logs || logDrivers.complete,
      });
    }
    return result;
  }

  #cached<T>(kind: string, read: () => Promise<T>): Promise<T> {
    const now = this.#clock.now();
    const hit = this.#listings.get(kind) as Listing<T> | undefined;
    if (hit !== undefined && hit.generation === this.#generation && now - hit.at < this.#ttlMs)
      return hit.value;
    const value = read();
    const listing: Listing<T> = { at: now, generation: this.#generation, value };
    this.#listings.set(kind, listing);
    // A failed listing is not kept: the next lookup asks again.
    value.catch(() => {
      if (this.#listings.get(kind) === listing) this.#listings.delete(kind);
    });
    return value;
  }

  #volumes(): Promise<{ name: string; driver: string | undefined }[]> {
    return this.#cached('volumes', async () => {
      const raw = record(await this.#engine.json('GET', '/volumes'));
      return array(raw['Volumes']).map((entry) => {
        const v = record(entry);
        return { name: str(v['Name']) ?? '', driver: str(v['Driver']) };
      });
    });
  }

  #networks(): Promise<{ name: string; driver: string | undefined; ipam: string | undefined }[]> {
    return this.#cached('networks', async () =>
      array(await this.#engine.json('GET', '/networks')).map((entry) => {
        const n = record(entry);
        return {
          name: str(n['Name']) ?? '',
          driver: str(n['Driver']),
          ipam: str(record(n['IPAM'])['Driver']),
        };
      }),
    );
  }

  #containers(): Promise<ContainerSummary[]> {
    return this.#cached('containers', async () =>
      array(await this.#engine.json('GET', '/containers/json', { query: { all: 1 } })).map((entry) => {
        const c = record(entry);
        const name = strings(c['Names'])[0]?.replace(/^\//, '');
        const id = str(c['Id']) ?? '';
        return { id, name: name ?? id.slice(0, 12) };
      }),
    );
  }

  async #logDriversOf(
    containers: readonly ContainerSummary[],
  ): Promise<{ byContainer: ReadonlyMap<string, string>; complete: boolean }> {
    const present = new Set(containers.map((c) => c.id));
    for (const id of this.#logDrivers.keys()) if (!present.has(id)) this.#logDrivers.delete(id);
    const unknown = containers.filter((c) => !this.#logDrivers.has(c.id));
    const batch = unknown.slice(0, this.#maxInspects);
    await Promise.all(
      batch.map(async (c) => {
        try {
          const raw = record(await this.#engine.json('GET', `/containers/${encodeURIComponent(c.id)}/json`));
          const type = str(record(record(raw['HostConfig'])['LogConfig'])['Type']);
          this.#logDrivers.set(c.id, type ?? '');
        } catch {
          // removed since the listing, or a transient failure: the next lookup tries again
        }
      }),
    );
    const complete = containers.every((c) => this.#logDrivers.has(c.id));
    return { byContainer: this.#logDrivers, complete };
  }
}

/**
 * True when `driver` (as a volume, network or container records it) names `plugin`: its name in
 * any spelling the engine resolves (`vol`, `vol:latest`, `docker.io/library/vol:latest`) or its ID.
 */
export function names(plugin: Pick<InstalledPlugin, 'name' | 'id'>, driver: string): boolean {
  if (driver === '') return false;
  if (driver === plugin.name || driver === plugin.id) return true;
  return normalise(driver) === normalise(plugin.name);
}

function normalise(name: string): string {
  try {
    return formatReference(parseReference(name));
  } catch {
    return name;
  }
}
