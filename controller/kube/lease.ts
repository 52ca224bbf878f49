/**
 * coordination.k8s.io/v1 Leases, shared by leader election and rollout slots: reading, creating and
 * replacing them with optimistic concurrency, and deciding whether another holder's lease has expired.
 *
 * Expiry is judged as client-go does, by how long the lease has gone unchanged on this process's
 * monotonic clock (immune to clock skew between nodes), and optionally also by its renewTime against
 * this node's wall clock with a skew allowance, so a lease left by a dead agent long ago is free at
 * once rather than after one more lease duration of watching it.
 */
import type { Clock } from '../runtime/clock.ts';
import type { KubeClient } from './client.ts';
import { hasStatus } from './errors.ts';
import { LEASES, apiVersionOf, collectionPath, objectPath } from './resources.ts';
import type { KubeList, KubeMetadata, KubeObject } from './resources.ts';

/** The spec of a Lease. Times are MicroTime strings (RFC 3339 with microseconds). */
export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** A Lease object. */
export interface Lease extends KubeObject {
  metadata: KubeMetadata;
  spec?: LeaseSpec;
}

/** A MicroTime: `2006-01-02T15:04:05.000000Z`, as the API server parses it. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Reads a Lease; undefined when it does not exist. */
export async function getLease(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<Lease | undefined> {
  try {
    return await client.request<Lease>({ method: 'GET', path: objectPath(LEASES, name, namespace) });
  } catch (error) {
    if (hasStatus(error, 404)) return undefined;
    throw error;
  }
}

/** Lists Leases by label selector. */
export async function listLeases(
  client: KubeClient,
  namespace: string,
  labelSelector: string,
): Promise<Lease[]> {
  const list = await client.request<KubeList<Lease>>({
    method: 'GET',
    path: collectionPath(LEASES, namespace),
    query: { labelSelector },
  });
  return list.items;
}

/** Creates a Lease; undefined when one of that name exists already (someone was faster). */
export async function createLease(
  client: KubeClient,
  namespace: string,
  metadata: Omit<KubeMetadata, 'namespace'>,
  spec: LeaseSpec,
): Promise<Lease | undefined> {
  try {
    return await client.request<Lease>({
      method: 'POST',
      path: collectionPath(LEASES, namespace),
      body: {
        apiVersion: apiVersionOf(LEASES),
        kind: LEASES.kind,
        metadata: { ...metadata, namespace },
        spec,
      },
    });
  } catch (error) {
    if (hasStatus(error, 409)) return undefined;
    throw error;
  }
}

/**
 * Replaces `lease`'s spec if nobody changed the lease since it was read (its resourceVersion is sent);
 * undefined when someone did (409) or it was deleted (404).
 */
export async function replaceLease(
  client: KubeClient,
  lease: Lease,
  spec: LeaseSpec,
): Promise<Lease | undefined> {
  const namespace = lease.metadata.namespace ?? '';
  try {
    return await client.request<Lease>({
      method: 'PUT',
      path: objectPath(LEASES, lease.metadata.name, namespace),
      body: { apiVersion: apiVersionOf(LEASES), kind: LEASES.kind, metadata: lease.metadata, spec },
    });
  } catch (error) {
    if (hasStatus(error, 409) || hasStatus(error, 404)) return undefined;
    throw error;
  }
}

/** Deletes `lease` if it is still the version that was read; false when it changed or is gone. */
export async function deleteLease(client: KubeClient, lease: Lease): Promise<boolean> {
  try {
    await client.request({
      method: 'DELETE',
      path: objectPath(LEASES, lease.metadata.name, lease.metadata.namespace ?? ''),
      body: {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { uid: lease.metadata.uid, resourceVersion: lease.metadata.resourceVersion },
      },
    });
    return true;
  } catch (error) {
    if (hasStatus(error, 409) || hasStatus(error, 404)) return false;
    throw error;
  }
}

/** Remembers when each lease was last seen to change, to judge expiry without trusting other clocks. */
export class LeaseObserver {
  readonly #clock: Clock;
  readonly #maxClockSkewMs: number | undefined;
  readonly #seen = new Map<string, { resourceVersion: string; at: number }>();

  /**
   * `maxClockSkewMs`: also treat a lease as expired when its renewTime is older than its duration plus
   * this allowance by this node's wall clock; undefined: judge only by observed change.
   */
  constructor(clock: Clock, maxClockSkewMs?: number) {
    this.#clock = clock;
    this.#maxClockSkewMs = maxClockSkewMs;
  }

  /** Records a sighting of `lease`. */
  observe(lease: Lease): void {
    const key = `${lease.metadata.namespace}/${lease.metadata.name}`;
    const rv = lease.metadata.resourceVersion ?? '';
    const seen = this.#seen.get(key);
    if (seen?.resourceVersion !== rv) this.#seen.set(key, { resourceVersion: rv, at: this.#clock.now() });
  }

  /** Forgets a lease (it was deleted). */
  forget(namespace: string, name: string): void {
    this.#seen.delete(`${namespace}/${name}`);
  }

  /** Whether `lease` has no holder, or its holder has not renewed it within its duration. */
  expired(lease: Lease): boolean {
    const spec = lease.spec ?? {};
    if (spec.holderIdentity === undefined || spec.holderIdentity === '') return true;
    const durationMs = (spec.leaseDurationSeconds ?? 0) * 1000;
    this.observe(lease);
    const seen = this.#seen.get(`${lease.metadata.namespace}/${lease.metadata.name}`);
    const now = this.#clock.now();
    if (seen !== undefined && now - seen.at >= durationMs) return true;
    if (this.#maxClockSkewMs !== undefined && spec.renewTime !== undefined) {
      const renewed = Date.parse(spec.renewTime);
      if (Number.isFinite(renewed) && renewed + durationMs + this.#maxClockSkewMs < now) return true;
    }
    return false;
  }
}
