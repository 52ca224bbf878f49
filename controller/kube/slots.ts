/**
 * Rollout slots: at most N nodes may disrupt one DockerPlugin at a time (spec.rollout.maxUnavailable),
 * across the cluster, coordinated only through the API server. Slot i of a plugin is a Lease named
 * `plugctl-slot-<plugin>-<i>` (i < N), held by one agent. A Lease name can exist once, and replacing
 * one carries its resourceVersion, so two agents never hold the same slot. A holder renews its slot
 * while it disrupts the plugin and deletes it when done; a slot whose holder stopped renewing (a dead
 * agent) expires after its TTL and can be taken.
 *
 * When N shrinks, slots numbered N or above may still be held: no new slot is handed out until they
 * are released or expire, so the bound is exceeded only by what was already disrupting.
 */
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { KubeClient } from './client.ts';
import {
  LeaseObserver,
  createLease,
  deleteLease,
  getLease,
  listLeases,
  microTime,
  replaceLease,
} from './lease.ts';
import type { Lease } from './lease.ts';

/** Label naming the DockerPlugin a slot belongs to. */
export const SLOT_PLUGIN_LABEL = 'plugctl.dev/rollout-slot';
/** Label holding the slot's number. */
export const SLOT_INDEX_LABEL = 'plugctl.dev/slot-index';

/** Options of RolloutSlots. */
export interface SlotOptions {
  client: KubeClient;
  /** the agents' namespace */
  namespace: string;
  /** this agent (its node name) */
  identity: string;
  clock: Clock;
  logger: Logger;
  /** a slot not renewed for this long is free (default 30 s); it is renewed every third of it */
  ttlSeconds?: number;
  /** allowance for wall-clock differences between nodes when judging renewTime (default 5 s) */
  maxClockSkewMs?: number;
}

/** A slot this agent holds. Renewed automatically until released or lost. */
export interface HeldSlot {
  readonly plugin: string;
  readonly index: number;
  /** true once the slot was taken by another agent or could not be renewed within its TTL */
  readonly lost: boolean;
  /** Calls `listener` once if the slot is lost. */
  onLost(listener: () => void): void;
  /** Stops renewing and deletes the slot's Lease. */
  release(): Promise<void>;
}

/**
 * The number of slots `spec.rollout.maxUnavailable` allows for `selected` nodes, as DaemonSets resolve
 * it: a count as is, a percentage of the selected nodes rounded down; at least 1 either way, so a
 * rollout can always proceed. `value` has passed the schema (a count >= 1 or "1%".."100%").
 */
export function resolveMaxUnavailable(value: number | string, selected: number): number {
  const count = typeof value === 'number' ? value : Math.floor((selected * Number.parseInt(value, 10)) / 100);
  return Math.max(1, count);
}

/** The Lease name of slot `index` of `plugin`. */
export function slotName(plugin: string, index: number): string {
  return `plugctl-slot-${plugin}-${index}`;
}

/** Hands out rollout slots to this agent. */
export class RolloutSlots {
  readonly #o: Required<SlotOptions>;
  readonly #observer: LeaseObserver;
  readonly #held = new Map<string, Slot>();
  /** per plugin, the other live holders the last refused acquire saw */
  readonly #holders = new Map<string, string[]>();

  constructor(options: SlotOptions) {
    this.#o = { ttlSeconds: 30, maxClockSkewMs: 5_000, ...options };
    this.#observer = new LeaseObserver(this.#o.clock, this.#o.maxClockSkewMs);
  }

  /**
   * Takes a free slot of `plugin` among the first `limit` (the resolved maxUnavailable, at least 1),
   * or returns the one this agent already holds. Undefined when all are held by live agents: try
   * again later (with backoff). Throws KubeError when the API server cannot be asked.
   */
  async acquire(plugin: string, limit: number): Promise<HeldSlot | undefined> {
    const already = this.#held.get(plugin);
    if (already !== undefined && !already.lost) return already;
    const { client, namespace, identity } = this.#o;
    const leases = await listLeases(client, namespace, `${SLOT_PLUGIN_LABEL}=${plugin}`);
    const byIndex = new Map<number, Lease>();
    for (const lease of leases) {
      const index = Number(lease.metadata.labels?.[SLOT_INDEX_LABEL]);
      if (Number.isInteger(index)) byIndex.set(index, lease);
    }
    const refused = (): undefined => {
      const holders = [...byIndex.values()]
        .filter((lease) => lease.spec?.holderIdentity !== identity && !this.#observer.expired(lease))
        .map((lease) => lease.spec?.holderIdentity ?? '');
      this.#holders.set(plugin, holders.sort());
      return undefined;
    };
    for (const [index, lease] of byIndex) {
      if (index >= limit && lease.spec?.holderIdentity !== identity && !this.#observer.expired(lease))
        return refused();
    }
    for (let index = 0; index < Math.max(1, limit); index++) {
      const lease = byIndex.get(index);
      const taken = lease === undefined ? await this.#create(plugin, index) : await this.#takeOver(lease);
      if (taken !== undefined) {
        const slot = new Slot(this.#o, plugin, index, taken, () => this.#held.delete(plugin));
        this.#held.set(plugin, slot);
        this.#holders.delete(plugin);
        this.#o.logger.info({ plugin, slot: index, limit }, 'took a rollout slot');
        return slot;
      }
    }
    return refused();
  }

  /**
   * The other agents that held `plugin`'s slots when this agent was last refused one (as listed then;
   * a slot created by a faster agent meanwhile is not named). Empty when the last acquire succeeded.
   */
  holders(plugin: string): readonly string[] {
    return this.#holders.get(plugin) ?? [];
  }

  async #create(plugin: string, index: number): Promise<Lease | undefined> {
    const now = microTime(this.#o.clock.now());
    return createLease(
      this.#o.client,
      this.#o.namespace,
      {
        name: slotName(plugin, index),
        labels: { [SLOT_PLUGIN_LABEL]: plugin, [SLOT_INDEX_LABEL]: String(index) },
      },
      {
        holderIdentity: this.#o.identity,
        leaseDurationSeconds: this.#o.ttlSeconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      },
    );
  }

  async #takeOver(lease: Lease): Promise<Lease | undefined> {
    const spec = lease.spec ?? {};
    const mine = spec.holderIdentity === this.#o.identity;
    if (!mine && !this.#observer.expired(lease)) return undefined;
    if (!mine) {
      this.#o.logger.info(
        { slot: lease.metadata.name, holder: spec.holderIdentity },
        'taking over an expired rollout slot',
      );
    }
    const now = microTime(this.#o.clock.now());
    return replaceLease(this.#o.client, lease, {
      holderIdentity: this.#o.identity,
      leaseDurationSeconds: this.#o.ttlSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
    });
  }

  /** Releases every held slot (at shutdown). */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.#held.values()].map((slot) => slot.release()));
  }
}

class Slot implements HeldSlot {
  readonly plugin: string;
  readonly index: number;
  #lost = false;
  #released = false;
  #lease: Lease;
  #timer: TimerHandle | undefined;
  #lastRenew: number;
  readonly #listeners: (() => void)[] = [];
  readonly #o: Required<SlotOptions>;
  readonly #forget: () => void;

  constructor(o: Required<SlotOptions>, plugin: string, index: number, lease: Lease, forget: () => void) {
    this.#o = o;
    this.plugin = plugin;
    this.index = index;
    this.#lease = lease;
    this.#forget = forget;
    this.#lastRenew = o.clock.now();
    this.#schedule();
  }

  get lost(): boolean {
    return this.#lost;
  }

  onLost(listener: () => void): void {
    if (this.#lost) listener();
    else this.#listeners.push(listener);
  }

  #schedule(): void {
    this.#timer = this.#o.clock.setTimeout(() => void this.#renew(), (this.#o.ttlSeconds * 1000) / 3);
  }

  #lose(why: string): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#forget();
    this.#o.logger.warn({ plugin: this.plugin, slot: this.index }, `lost the rollout slot: ${why}`);
    for (const listener of this.#listeners.splice(0)) listener();
  }

  async #renew(): Promise<void> {
    if (this.#released || this.#lost) return;
    const { client, clock, identity } = this.#o;
    try {
      let updated = await replaceLease(client, this.#lease, {
        ...this.#lease.spec,
        renewTime: microTime(clock.now()),
      });
      if (updated === undefined) {
        // Changed since our last write: still ours only if nobody else holds it now.
        const current = await getLease(
          client,
          this.#lease.metadata.namespace ?? '',
          this.#lease.metadata.name,
        );
        if (current?.spec?.holderIdentity !== identity) {
          this.#lose(
            current === undefined
              ? 'its Lease was deleted'
              : `taken by ${current.spec?.holderIdentity ?? 'nobody'}`,
          );
          return;
        }
        updated = await replaceLease(client, current, { ...current.spec, renewTime: microTime(clock.now()) });
      }
      if (updated !== undefined) {
        this.#lease = updated;
        this.#lastRenew = clock.now();
      }
    } catch (error) {
      this.#o.logger.warn(
        { plugin: this.plugin, slot: this.index },
        `renewing the rollout slot failed: ${describeError(error)}`,
      );
    }
    if (clock.now() - this.#lastRenew >= this.#o.ttlSeconds * 1000) {
      this.#lose('not renewed within its TTL');
      return;
    }
    if (!this.#released && !this.#lost) this.#schedule();
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#forget();
    if (this.#lost) return;
    try {
      await deleteLease(this.#o.client, this.#lease);
    } catch (error) {
      // It expires on its own after the TTL.
      this.#o.logger.warn(
        { plugin: this.plugin, slot: this.index },
        `releasing the rollout slot failed: ${describeError(error)}`,
      );
    }
  }
}
