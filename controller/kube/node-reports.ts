/**
 * A node's DockerPluginNode is removed when the node's agent is uninstalled. Two mechanisms cover the
 * two ways that happens:
 *
 * - The whole agent is uninstalled (`kubectl delete -k manifests/`, then `kubectl delete -f crds/`):
 *   no agent is left to do anything, and deleting the DockerPluginNode CRD makes the API server
 *   delete every DockerPluginNode. The Node owner reference cannot do this (Kubernetes garbage-
 *   collects a dependent only once ALL its owners are gone, so a second owner such as the DaemonSet
 *   would also stop the Node's deletion from removing it).
 * - The agent is removed from some nodes while it runs on others (the DaemonSet no longer targets
 *   them): the fleet leader deletes such a node's DockerPluginNode, here, once both hold:
 *   1. the node's agent is gone — its heartbeat Lease not renewed (or absent) for the grace period
 *      (heartbeat.ts), so a restart or a rolling update never looks uninstalled; and
 *   2. no agent pod exists on the node (pods of the agents' namespace with the agent's labels,
 *      `spec.nodeName` the node): a node that is down or unreachable keeps its agent pod (the
 *      DaemonSet tolerates every taint, so it is never evicted) and so keeps its report, showing
 *      its last state while the summary counts it unavailable.
 *   The delete carries the report's resourceVersion as a precondition: a report written since the
 *   leader read it is not stale, and stays. The heartbeat Lease stays too: the node is still known to
 *   have had an agent, so a DockerPlugin deleted later is released without it with the NodeSkipped
 *   Event (its plugins may still be installed there), as for any gone node. A report of a Node that
 *   no longer exists is removed the same way (the owner reference's garbage collection does it in a
 *   cluster that runs one).
 *
 * When listing pods is refused (RBAC without it), nothing is deleted: the safe answer to "is the
 * agent still installed there?" is "maybe".
 */
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import type { Clock } from '../runtime/clock.ts';
import type { KubeClient } from './client.ts';
import { hasStatus } from './errors.ts';
import { DOCKER_PLUGIN_NODES, collectionPath, objectPath } from './resources.ts';
import type { KubeList, KubeObject, ResourceType } from './resources.ts';

/** The labels of the agent's pods, as manifests/daemonset.yaml sets them. */
export const AGENT_POD_SELECTOR = 'app.kubernetes.io/name=plugctl,app.kubernetes.io/component=agent';

const PODS: ResourceType = { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true };

/** Options of a NodeReportSweeper. */
export interface NodeReportSweeperOptions {
  client: KubeClient;
  /** the agents' namespace: their pods and heartbeat Leases are there */
  namespace: string;
  clock: Clock;
  logger: Logger;
  /** label selector of the agent's pods (default AGENT_POD_SELECTOR) */
  agentSelector?: string;
  /** a node whose agent pod was found is asked about again after this long (default 60 s) */
  recheckMs?: number;
  /** told of each DockerPluginNode deleted */
  onRemoved?: (node: string) => void;
}

/** A node the leader judged gone, with its report as cached. */
export interface GoneNode {
  node: string;
  report: KubeObject;
}

/** Deletes the DockerPluginNodes of nodes whose agent was uninstalled (see the module comment). */
export class NodeReportSweeper {
  readonly #o: NodeReportSweeperOptions;
  /** node -> when it may be asked about again (monotonic) */
  readonly #checkedAt = new Map<string, number>();
  #running: Promise<void> | undefined;
  #refused = false;
  /** DockerPluginNodes deleted */
  removed = 0;

  constructor(options: NodeReportSweeperOptions) {
    this.#o = options;
  }

  /**
   * Looks at `gone` (one sweep at a time: a call while one runs is dropped, the next tick comes) and
   * deletes the reports of those with no agent pod. Never throws.
   */
  sweep(gone: readonly GoneNode[]): void {
    if (this.#running !== undefined || this.#refused) return;
    const now = this.#o.clock.now();
    const due = gone.filter((g) => (this.#checkedAt.get(g.node) ?? 0) <= now);
    const names = new Set(gone.map((g) => g.node));
    for (const node of this.#checkedAt.keys()) if (!names.has(node)) this.#checkedAt.delete(node);
    if (due.length === 0) return;
    this.#running = this.#sweep(due).finally(() => (this.#running = undefined));
  }

  /** Waits for the sweep in flight, if any. */
  async idle(): Promise<void> {
    await this.#running;
  }

  async #sweep(due: readonly GoneNode[]): Promise<void> {
    for (const candidate of due) {
      try {
        if (await this.#hasAgentPod(candidate.node)) {
          this.#checkedAt.set(candidate.node, this.#o.clock.now() + (this.#o.recheckMs ?? 60_000));
          continue;
        }
        await this.#remove(candidate);
      } catch (error) {
        if (hasStatus(error, 403)) {
          this.#refused = true;
          this.#o.logger.warn(
            `fleet leader: listing the agent's pods is refused, so no DockerPluginNode of an uninstalled agent is removed: ${describeError(error)}`,
          );
          return;
        }
        this.#o.logger.warn({ node: candidate.node }, `fleet leader: ${describeError(error)}`);
      }
    }
  }

  async #hasAgentPod(node: string): Promise<boolean> {
    const pods = await this.#o.client.request<KubeList>({
      method: 'GET',
      path: collectionPath(PODS, this.#o.namespace),
      query: {
        labelSelector: this.#o.agentSelector ?? AGENT_POD_SELECTOR,
        fieldSelector: `spec.nodeName=${node}`,
        limit: 1,
      },
    });
    return pods.items.length > 0;
  }

  async #remove({ node, report }: GoneNode): Promise<void> {
    try {
      await this.#o.client.request({
        method: 'DELETE',
        path: objectPath(DOCKER_PLUGIN_NODES, node),
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          preconditions: { uid: report.metadata.uid, resourceVersion: report.metadata.resourceVersion },
        },
      });
    } catch (error) {
      // gone already, or written since it was read: then it is not stale; the next tick decides
      if (hasStatus(error, 404) || hasStatus(error, 409)) return;
      throw error;
    }
    this.removed++;
    this.#checkedAt.delete(node);
    this.#o.onRemoved?.(node);
    this.#o.logger.info(
      { node },
      'fleet leader: removed the DockerPluginNode of a node whose agent is uninstalled (heartbeat gone past the grace period, no agent pod)',
    );
  }
}
