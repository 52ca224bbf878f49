/**
 * Whether a node's agent is alive: each agent renews a heartbeat Lease of its own in the agents'
 * namespace (as kubelets renew their Lease in kube-node-lease), and the fleet leader judges from those
 * Leases which agents are gone. An agent gone longer than the grace period no longer holds a
 * DockerPlugin's deletion, and its node counts as unavailable in the summary.
 *
 * Gone is judged without trusting other nodes' clocks alone: a heartbeat is stale when this process
 * has seen it unchanged for the grace period (monotonic clock), or when its renewTime is older than
 * the grace period plus a clock-skew allowance by this node's wall clock (so a leader that just took
 * over does not wait a whole grace period again for a node that died long ago). A node that has no
 * heartbeat at all is gone once this process has seen it without one for the grace period.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import { jittered, sleep } from '../runtime/backoff.ts';
import type { Clock } from '../runtime/clock.ts';
import type { KubeClient } from './client.ts';
import { createLease, getLease, microTime, replaceLease } from './lease.ts';
import type { Lease } from './lease.ts';

/** Label carried by every heartbeat Lease; its value is empty (node names may exceed 63 characters). */
export const HEARTBEAT_LABEL = 'plugctl.dev/heartbeat';

/** The heartbeat Lease name of `node`: `plugctl-node-<node>`, hashed when that would be too long. */
export function heartbeatLeaseName(node: string): string {
  const name = `plugctl-node-${node}`;
  if (name.length <= 253) return name;
  // the Lease's holderIdentity still names the node
  return `plugctl-node-${createHash('sha256').update(node).digest('hex').slice(0, 32)}`;
}

/** Options of a NodeHeartbeat. */
export interface HeartbeatOptions {
  client: KubeClient;
  /** the agents' namespace */
  namespace: string;
  /** this node's name: the Lease's holderIdentity */
  node: string;
  clock: Clock;
  logger: Logger;
  /** renew this often (default 10 s, jittered) */
  renewMs?: number;
  /** the Lease's duration (default 40 s, as kubelets' node leases) */
  leaseDurationSeconds?: number;
  random?: () => number;
}

/** Renews this node's heartbeat Lease while run() runs. The Lease is left behind at shutdown. */
export class NodeHeartbeat {
  readonly #o: Required<HeartbeatOptions>;
  #lease: Lease | undefined;
  /** renewals that reached the server */
  renewals = 0;

  constructor(options: HeartbeatOptions) {
    this.#o = { renewMs: 10_000, leaseDurationSeconds: 40, random: Math.random, ...options };
  }

  /**
   * Renews until `signal` aborts. Never throws: failures are logged and retried at the next period.
   * The Lease is not deleted at shutdown: an agent restarting (a rolling update) must not look gone.
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.beat();
      } catch (error) {
        this.#o.logger.warn({ node: this.#o.node }, `node heartbeat: ${describeError(error)}`);
        this.#lease = undefined; // read it again next time
      }
      await sleep(this.#o.clock, jittered(this.#o.renewMs, 0.2, this.#o.random), signal);
    }
  }

  /** Renews (or creates) the Lease once. */
  async beat(): Promise<void> {
    const { client, namespace, node, leaseDurationSeconds } = this.#o;
    const name = heartbeatLeaseName(node);
    const spec = { holderIdentity: node, leaseDurationSeconds, renewTime: microTime(Date.now()) };
    this.#lease ??= await getLease(client, namespace, name);
    if (this.#lease === undefined) {
      this.#lease = await createLease(client, namespace, { name, labels: { [HEARTBEAT_LABEL]: '' } }, spec);
    } else {
      this.#lease = await replaceLease(client, this.#lease, { ...this.#lease.spec, ...spec });
    }
    if (this.#lease !== undefined) this.renewals++;
    // undefined: someone else changed or created it meanwhile; read it again at the next beat
  }
}

/** Options of a LivenessTracker. */
export interface LivenessOptions {
  clock: Clock;
  /** an agent silent this long is gone */
  graceMs: number;
  /** allowance for wall-clock differences between nodes when reading renewTime (default 5 s) */
  maxClockSkewMs?: number;
  /** the wall clock, in Unix milliseconds (default Date.now) */
  wallNow?: () => number;
}

interface Sighting {
  resourceVersion: string;
  /** monotonic time the Lease was first seen at this resourceVersion */
  at: number;
  /** renewTime in Unix milliseconds, NaN when absent */
  renewed: number;
}

/** Judges from heartbeat Leases which agents are gone (see the module comment). */
export class LivenessTracker {
  readonly #o: Required<LivenessOptions>;
  readonly #seen = new Map<string, Sighting>();
  readonly #missingSince = new Map<string, number>();

  constructor(options: LivenessOptions) {
    this.#o = { maxClockSkewMs: 5_000, wallNow: Date.now, ...options };
  }

  /** Records the current heartbeat Leases (all of them: a node missing here has none). */
  observe(leases: Iterable<Lease>): void {
    const now = this.#o.clock.now();
    const present = new Set<string>();
    for (const lease of leases) {
      const node = lease.spec?.holderIdentity;
      if (node === undefined || node === '') continue;
      present.add(node);
      const rv = lease.metadata.resourceVersion ?? '';
      if (this.#seen.get(node)?.resourceVersion === rv) continue;
      const renewed = Date.parse(lease.spec?.renewTime ?? '');
      this.#seen.set(node, { resourceVersion: rv, at: now, renewed });
    }
    for (const node of this.#seen.keys()) if (!present.has(node)) this.#seen.delete(node);
  }

  /** Whether `node` has a heartbeat Lease (an agent runs there, or did). */
  known(node: string): boolean {
    return this.#seen.has(node);
  }

  /**
   * The nodes among `nodes` whose agent is gone, with why. Also remembers since when a node has had
   * no heartbeat, so call it regularly with every node of interest.
   */
  gone(nodes: Iterable<string>): Map<string, string> {
    const now = this.#o.clock.now();
    const wall = this.#o.wallNow();
    const grace = this.#o.graceMs;
    const result = new Map<string, string>();
    const asked = new Set<string>();
    for (const node of nodes) {
      asked.add(node);
      const seen = this.#seen.get(node);
      if (seen === undefined) {
        const since = this.#missingSince.get(node) ?? now;
        this.#missingSince.set(node, since);
        if (now - since >= grace)
          result.set(node, `no agent heartbeat for the grace period (${seconds(grace)})`);
        continue;
      }
      this.#missingSince.delete(node);
      const silentFor = Math.max(
        now - seen.at,
        Number.isFinite(seen.renewed) ? wall - seen.renewed - this.#o.maxClockSkewMs : 0,
      );
      // the message stays the same while the node stays gone: it ends up in status, written on change
      if (silentFor >= grace)
        result.set(node, `agent heartbeat not renewed within the grace period (${seconds(grace)})`);
    }
    for (const node of this.#missingSince.keys()) if (!asked.has(node)) this.#missingSince.delete(node);
    return result;
  }
}

function seconds(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s >= 120 ? `${Math.floor(s / 60)}m${s % 60 === 0 ? '' : `${s % 60}s`}` : `${s}s`;
}
