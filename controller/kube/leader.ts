/**
 * Leader election over one coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: an
 * agent takes the lease when it is free or its holder has not renewed it within its duration (judged
 * by this process's own clock), renews it every retry period, gives leadership up when it could not
 * renew within the renew deadline or sees another holder, and on shutdown releases the lease so
 * another agent takes over at once instead of after the lease duration.
 */
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import { jittered, sleep } from '../runtime/backoff.ts';
import type { Clock } from '../runtime/clock.ts';
import type { KubeClient } from './client.ts';
import { LeaseObserver, createLease, getLease, microTime, replaceLease } from './lease.ts';
import type { Lease } from './lease.ts';

/** Options of a LeaderElector. */
export interface LeaderOptions {
  client: KubeClient;
  namespace: string;
  /** the Lease's name, e.g. `plugctl-leader` */
  name: string;
  /** this agent, e.g. its node name; must be unique among the candidates */
  identity: string;
  clock: Clock;
  logger: Logger;
  /** how long a lease stays valid without renewal (default 15 s) */
  leaseDurationSeconds?: number;
  /** a leader that could not renew for this long steps down (default 10 s; below the duration) */
  renewDeadlineMs?: number;
  /** how often to renew, or to try to acquire (default 2 s, jittered) */
  retryPeriodMs?: number;
  random?: () => number;
}

/** Campaigns for a Lease while run() runs. */
export class LeaderElector {
  readonly #o: Required<LeaderOptions>;
  readonly #observer: LeaseObserver;
  readonly #listeners = new Set<(leading: boolean) => void>();
  #leading = false;
  #holder: string | undefined;
  #lease: Lease | undefined;

  constructor(options: LeaderOptions) {
    this.#o = {
      leaseDurationSeconds: 15,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      random: Math.random,
      ...options,
    };
    if (this.#o.renewDeadlineMs >= this.#o.leaseDurationSeconds * 1000) {
      throw new RangeError('renewDeadlineMs must be shorter than the lease duration');
    }
    this.#observer = new LeaseObserver(this.#o.clock);
  }

  /** Whether this agent leads now. */
  isLeader(): boolean {
    return this.#leading;
  }

  /** The holder last seen on the lease (this agent's identity while it leads). */
  leader(): string | undefined {
    return this.#holder;
  }

  /** Calls `listener(true)` when this agent starts leading and `listener(false)` when it stops. */
  onChange(listener: (leading: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #set(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#o.logger.info(
      { lease: this.#o.name, identity: this.#o.identity },
      leading ? 'became leader' : 'stopped leading',
    );
    for (const listener of this.#listeners) listener(leading);
  }

  /** Campaigns and leads until `signal` aborts, then releases the lease if held. Never throws. */
  async run(signal: AbortSignal): Promise<void> {
    let lastRenew = -Infinity;
    while (!signal.aborted) {
      let renewed = false;
      try {
        renewed = await this.#tryAcquireOrRenew();
      } catch (error) {
        this.#o.logger.warn({ lease: this.#o.name }, `leader lease: ${describeError(error)}`);
      }
      const now = this.#o.clock.now();
      if (renewed) {
        lastRenew = now;
        this.#set(true);
      } else if (
        this.#leading &&
        (this.#holder !== this.#o.identity || now - lastRenew >= this.#o.renewDeadlineMs)
      ) {
        this.#set(false); // lost: another holder, or no renewal within the deadline
      }
      await sleep(this.#o.clock, jittered(this.#o.retryPeriodMs, 0.2, this.#o.random), signal);
    }
    await this.#release();
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, identity, clock, leaseDurationSeconds } = this.#o;
    const now = microTime(clock.now());
    const lease = await getLease(client, namespace, name);
    if (lease === undefined) {
      const created = await createLease(
        client,
        namespace,
        { name },
        {
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        },
      );
      if (created !== undefined) {
        this.#lease = created;
        this.#holder = identity;
      }
      return created !== undefined;
    }
    this.#observer.observe(lease);
    const spec = lease.spec ?? {};
    this.#holder = spec.holderIdentity || undefined;
    const mine = spec.holderIdentity === identity;
    if (!mine && !this.#observer.expired(lease)) return false;
    const updated = await replaceLease(client, lease, {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: mine && spec.acquireTime !== undefined ? spec.acquireTime : now,
      renewTime: now,
      leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
    });
    if (updated === undefined) return false;
    this.#lease = updated;
    this.#holder = identity;
    return true;
  }

  async #release(): Promise<void> {
    if (!this.#leading || this.#lease === undefined) {
      this.#set(false);
      return;
    }
    const spec = this.#lease.spec ?? {};
    try {
      // No holder and a 1 s duration: the next candidate takes it at its next try.
      await replaceLease(this.#o.client, this.#lease, {
        leaseDurationSeconds: 1,
        renewTime: microTime(this.#o.clock.now()),
        ...(spec.acquireTime !== undefined ? { acquireTime: spec.acquireTime } : {}),
        leaseTransitions: spec.leaseTransitions ?? 0,
      });
    } catch (error) {
      this.#o.logger.warn(
        { lease: this.#o.name },
        `releasing the leader lease failed: ${describeError(error)}`,
      );
    }
    this.#holder = undefined;
    this.#set(false);
  }
}
