/**
 * The disruption gate of Kubernetes mode (reconcile/disruption.ts): a node may take a DockerPlugin's
 * working plugin down only while it holds one of the plugin's rollout slots (slots.ts), of which there
 * are spec.rollout.maxUnavailable, resolved as DaemonSets do (a count, or a percentage of the selected
 * nodes rounded down, at least 1).
 *
 * For a percentage the selected nodes are counted by listing the Nodes the plugin's nodeSelector
 * matches, metadata only (a Node's status is large) and only when a node is about to disrupt it; the
 * count is reused for a while, as a rollout asks many times. The agent watches only its own Node, and
 * the fleet summary is not relied on (it is written by whichever agent leads, and may lag).
 */
import type { Logger } from 'pino';
import { formatSelector } from '../api/selector.ts';
import { SPEC_DEFAULTS } from '../api/schema.ts';
import type { DockerPluginSpec, LabelSelector } from '../api/types.ts';
import { describeError } from '../errors.ts';
import { jittered } from '../runtime/backoff.ts';
import type { Clock } from '../runtime/clock.ts';
import type { KubeClient } from './client.ts';
import { NODES, collectionPath } from './resources.ts';
import type { KubeList, KubeObject } from './resources.ts';
import { resolveMaxUnavailable } from './slots.ts';
import type { HeldSlot, RolloutSlots } from './slots.ts';

/** What the gate answers (structurally reconcile/disruption.ts's DisruptionDecision). */
export type GateDecision = { granted: true } | { granted: false; message: string; retryMs: number };

/** Options of RolloutGate. */
export interface RolloutGateOptions {
  slots: RolloutSlots;
  client: KubeClient;
  clock: Clock;
  logger: Logger;
  /** a node waiting for a slot asks again after this long, minus up to 30% jitter (default 2000 ms) */
  retryMs?: number;
  /** a count of selected nodes is reused for this long (default 30 s) */
  nodeCountTtlMs?: number;
  random?: () => number;
}

/** The Accept header of a metadata-only list (PartialObjectMetadataList), with plain JSON as fallback. */
export const METADATA_LIST_ACCEPT =
  'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';

/** How many slot holders a waiting message names. */
const NAMED_HOLDERS = 3;

/** Nodes listed per page when counting. */
const PAGE = 500;

/** Counts the Nodes matching `labelSelector` (empty: every Node), reading only their metadata. */
export async function countNodes(client: KubeClient, labelSelector: string): Promise<number> {
  let count = 0;
  let next: string | undefined;
  do {
    const page: KubeList<KubeObject> = await client.request<KubeList<KubeObject>>({
      method: 'GET',
      path: collectionPath(NODES),
      query: { labelSelector: labelSelector === '' ? undefined : labelSelector, limit: PAGE, continue: next },
      accept: METADATA_LIST_ACCEPT,
    });
    count += page.items.length;
    next = page.metadata.continue === '' ? undefined : page.metadata.continue;
  } while (next !== undefined);
  return count;
}

/** Hands out permission to disrupt through rollout slots; one slot per DockerPlugin at most. */
export class RolloutGate {
  readonly #o: Required<RolloutGateOptions>;
  readonly #held = new Map<string, HeldSlot>();
  readonly #counts = new Map<string, { count: number; at: number }>();

  constructor(options: RolloutGateOptions) {
    this.#o = { retryMs: 2000, nodeCountTtlMs: 30_000, random: Math.random, ...options };
  }

  /**
   * Takes one of the slots of DockerPlugin `key`, or says to wait. Never throws: when the API server
   * cannot be asked the answer is to wait, since a disruption must not go unaccounted.
   */
  async acquire(key: string, spec: DockerPluginSpec): Promise<GateDecision> {
    const value = spec.rollout?.maxUnavailable ?? SPEC_DEFAULTS.maxUnavailable;
    const retryMs = jittered(this.#o.retryMs, 0.3, this.#o.random);
    try {
      const selected = typeof value === 'number' ? 0 : await this.#selectedNodes(spec.nodeSelector);
      const limit = resolveMaxUnavailable(value, selected);
      const slot = await this.#o.slots.acquire(key, limit);
      if (slot === undefined) {
        const of = typeof value === 'number' ? '' : ` (${value} of ${selected} selected nodes)`;
        const holders = this.#o.slots.holders(key);
        const named = holders.slice(0, NAMED_HOLDERS).join(', ');
        const more = holders.length > NAMED_HOLDERS ? ` and ${holders.length - NAMED_HOLDERS} more` : '';
        const by = holders.length === 0 ? 'and that many are changing it now' : `held by ${named}${more}`;
        return {
          granted: false,
          message: `waiting for a rollout slot: spec.rollout.maxUnavailable allows ${limit} node(s)${of} to change ${key} at a time, ${by}`,
          retryMs,
        };
      }
      if (this.#held.get(key) !== slot) {
        this.#held.set(key, slot);
        slot.onLost(() => {
          if (this.#held.get(key) === slot) this.#held.delete(key);
        });
      }
      return { granted: true };
    } catch (error) {
      this.#o.logger.warn({ plugin: key }, `cannot take a rollout slot: ${describeError(error)}`);
      return {
        granted: false,
        message: `waiting for a rollout slot: the API server could not be asked (${describeError(error)})`,
        retryMs,
      };
    }
  }

  /** Gives back the slot of `key`, if this node holds one (deletes its Lease). */
  async release(key: string): Promise<void> {
    const slot = this.#held.get(key);
    if (slot === undefined) return;
    this.#held.delete(key);
    await slot.release();
    this.#o.logger.info({ plugin: key, slot: slot.index }, 'released the rollout slot');
  }

  /** Gives back every slot (at shutdown). */
  async releaseAll(): Promise<void> {
    this.#held.clear();
    await this.#o.slots.releaseAll();
  }

  async #selectedNodes(selector: LabelSelector | undefined): Promise<number> {
    const labelSelector = formatSelector(selector);
    const now = this.#o.clock.now();
    const cached = this.#counts.get(labelSelector);
    if (cached !== undefined && now - cached.at < this.#o.nodeCountTtlMs) return cached.count;
    const count = await countNodes(this.#o.client, labelSelector);
    // Few distinct selectors exist; stale ones are dropped as they are passed over.
    for (const [k, v] of this.#counts) if (now - v.at >= this.#o.nodeCountTtlMs) this.#counts.delete(k);
    this.#counts.set(labelSelector, { count, at: now });
    return count;
  }
}
