/**
 * `plugctl run --kube`: the node agent of Kubernetes mode. The same controller as `plugctl run -f`
 * (workqueue, plan, apply, the store, the ownership inventory in --state-dir), fed by the cluster:
 * the DockerPlugins selecting this node's labels (sources/kube.ts), with status published to the
 * node's DockerPluginNode (reconcile/status-node.ts), what it does recorded as Events on the
 * DockerPlugins (reconcile/report.ts, kube/events.ts), registry credentials from pull Secrets in the
 * agent's namespace (sources/pull-secrets.ts) and secret-valued settings from Secrets there too
 * (sources/kube-secrets.ts).
 *
 * main.ts imports this module only for `run --kube`, so no other command loads the cluster side.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { KubeClient } from '../kube/client.ts';
import { EventRecorder } from '../kube/events.ts';
import type { EventRef } from '../kube/events.ts';
import type { FleetHandle } from '../kube/fleet.ts';
import { loadClusterConnection } from '../kube/config.ts';
import { RolloutGate } from '../kube/rollout-gate.ts';
import { RolloutSlots } from '../kube/slots.ts';
import { DOCKER_PLUGINS, apiVersionOf } from '../kube/resources.ts';
import { createMetrics, recordDockerRequest, registerApiClientMetrics } from '../observe/metrics.ts';
import type { Metrics } from '../observe/metrics.ts';
import { startHealthServer } from '../observe/health.ts';
import { Controller } from '../reconcile/controller.ts';
import { readInventory } from '../reconcile/inventory.ts';
import { InventoryLedger } from '../reconcile/ledger.ts';
import { eventsOf, restartEvent } from '../reconcile/report.ts';
import type { ReportedEvent } from '../reconcile/report.ts';
import { SecretKeeper } from '../reconcile/secrets.ts';
import { NodeStatusSink } from '../reconcile/status-node.ts';
import type { RemoteInspector } from '../registry/inspect.ts';
import { systemClock } from '../runtime/clock.ts';
import type { Clock } from '../runtime/clock.ts';
import { EngineEventsTrigger } from '../sources/engine-events.ts';
import { BuildContextTrigger } from '../sources/contexts.ts';
import { KubeSource } from '../sources/kube.ts';
import { KubeSecrets } from '../sources/kube-secrets.ts';
import { PullSecretCredentials } from '../sources/pull-secrets.ts';
import { ResyncTrigger } from '../sources/resync.ts';
import type { Store } from '../store/store.ts';
import type { CommandContext } from './context.ts';

/** The apply set of everything the cluster declares: ownership on a node is recorded under it. */
export const KUBE_SET = 'kube';

/** Options of `run --kube`. */
export interface RunKubeOptions {
  nodeName?: string;
  kubeconfig?: string;
  namespace?: string;
  resync: number;
  listen: string;
  workers: number;
  shutdownTimeout: number;
  /** restart a watch that delivered nothing, not even a bookmark, for this long (ms) */
  watchSilence: number;
  /** list everything again this often (ms) */
  relist: number;
}

/** The node name: --node-name, else $NODE_NAME (the downward API's spec.nodeName), else the hostname. */
export function resolveNodeName(flag: string | undefined, env: NodeJS.ProcessEnv, host = hostname()): string {
  if (flag !== undefined && flag !== '') return flag;
  const fromEnv = env['NODE_NAME'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  // Kubernetes lower-cases a hostname when it names the Node after it.
  return host.toLowerCase();
}

/** What an agent is assembled from; the source is built by the caller, as the store's credentials need it. */
export interface AgentParts {
  client: KubeClient;
  source: KubeSource;
  nodeName: string;
  /**
   * the agent's namespace: Secrets (secretKeyRef) are read there and nowhere else; the rollout slots'
   * Leases live there
   */
  namespace: string;
  store: Store;
  inspector: RemoteInspector;
  stateDir: string;
  logger: Logger;
  metrics: Metrics;
  resyncMs: number;
  workers: number;
  /** coalescing delay of the DockerPluginNode's writes (default 500 ms) */
  statusDelayMs?: number;
  /**
   * the node's Events recorder (default: one of its own, reportingController plugctl.dev/agent, whose
   * pending series the agent writes when it stops)
   */
  events?: EventRecorder;
  clock?: Clock;
  /** a rollout slot not renewed for this long is free (default 30 s) */
  slotTtlSeconds?: number;
  /** a node waiting for a rollout slot asks again after about this long (default 2000 ms) */
  slotRetryMs?: number;
}

/** The reportingController of the node agents' Events. */
export const AGENT_CONTROLLER = 'plugctl.dev/agent';

/** A node agent: its controller, source and status sink, started and stopped together. */
export interface Agent {
  controller: Controller;
  source: KubeSource;
  status: NodeStatusSink;
  /** records what the agent does as Events on the DockerPlugins, with the node as reportingInstance */
  events: EventRecorder;
  /** the source is synced and every key of the first full sync was reconciled once */
  ready(): boolean;
  /** Waits for the cluster source's first sync, then reconciles; resolves once started. */
  start(): Promise<void>;
  /**
   * Stops taking work, lets reconciles finish (at most `timeoutMs`), writes the last status and
   * gives back the rollout slots it holds.
   */
  stop(timeoutMs: number): Promise<void>;
}

/** Assembles a node agent from its parts; nothing runs until start(). */
export async function createAgent(parts: AgentParts): Promise<Agent> {
  const clock = parts.clock ?? systemClock;
  const ledger = new InventoryLedger(parts.stateDir, await readInventory(parts.stateDir));
  const status = new NodeStatusSink({
    client: parts.client,
    nodeName: parts.nodeName,
    cluster: parts.source,
    owns: (key) => ledger.namesOwnedBy(key).length > 0,
    clock,
    logger: parts.logger.child({ sink: 'dockerpluginnode' }),
    ...(parts.statusDelayMs !== undefined ? { delayMs: parts.statusDelayMs } : {}),
  });
  const rollout = new RolloutGate({
    slots: new RolloutSlots({
      client: parts.client,
      namespace: parts.namespace,
      identity: parts.nodeName,
      clock,
      logger: parts.logger.child({ component: 'rollout' }),
      ...(parts.slotTtlSeconds !== undefined ? { ttlSeconds: parts.slotTtlSeconds } : {}),
    }),
    client: parts.client,
    clock,
    logger: parts.logger.child({ component: 'rollout' }),
    ...(parts.slotRetryMs !== undefined ? { retryMs: parts.slotRetryMs } : {}),
  });
  const events =
    parts.events ??
    new EventRecorder({
      client: parts.client,
      reportingController: AGENT_CONTROLLER,
      reportingInstance: parts.nodeName,
      clock,
      logger: parts.logger.child({ sink: 'events' }),
    });
  const secrets = new KubeSecrets({
    client: parts.client,
    namespace: parts.namespace,
    clock,
    logger: parts.logger.child({ source: 'secrets' }),
  });
  const record = (key: string, event: ReportedEvent): void =>
    events.record({ regarding: regardingOf(parts.source, key), ...event });
  const controller = new Controller({
    store: parts.store,
    inspector: parts.inspector,
    source: parts.source,
    status,
    ledger,
    secrets: new SecretKeeper(parts.stateDir, secrets),
    triggers: [
      secrets,
      new EngineEventsTrigger(parts.store, parts.logger),
      new BuildContextTrigger(parts.logger),
      new ResyncTrigger(parts.resyncMs, clock),
    ],
    logger: parts.logger,
    metrics: parts.metrics,
    labels: parts.source,
    set: KUBE_SET,
    workers: parts.workers,
    clock,
    disruptionGate: rollout,
    // Ready means the plugin answers, as in file mode; in-use accounting for spec.inUse Wait
    prober: parts.store,
    usage: parts.store,
    onReconciled: (report) => {
      for (const event of eventsOf(report)) record(report.key, event);
    },
    onPluginRestarted: (key, plugin, lastError) => record(key, restartEvent(plugin, lastError)),
  });
  return {
    controller,
    source: parts.source,
    status,
    events,
    ready: () => parts.source.synced && controller.ready(),
    start: () => controller.start(),
    stop: async (timeoutMs) => {
      await controller.stop(timeoutMs);
      await rollout.releaseAll();
      if (parts.events === undefined) await events.close();
    },
  };
}

/** The DockerPlugin `key` as an Event's regarding, with its uid while the cache has the object. */
function regardingOf(source: KubeSource, key: string): EventRef {
  const uid = source.informers.plugins.get(key)?.metadata.uid;
  return {
    apiVersion: apiVersionOf(DOCKER_PLUGINS),
    kind: DOCKER_PLUGINS.kind,
    name: key,
    ...(uid !== undefined ? { uid } : {}),
  };
}

/** Runs the agent until SIGTERM or SIGINT; returns the exit code. */
export async function runKubeCommand(options: RunKubeOptions, ctx: CommandContext): Promise<number> {
  const log = ctx.logger;
  const env = process.env;
  const nodeName = resolveNodeName(options.nodeName, env);
  const connection = await loadClusterConnection({
    ...(options.kubeconfig !== undefined ? { kubeconfig: options.kubeconfig } : {}),
    env,
    clock: systemClock,
  });
  const namespace = options.namespace ?? (env['POD_NAMESPACE'] || undefined) ?? connection.namespace;
  const client = await KubeClient.open(connection);
  const source = new KubeSource({
    client,
    nodeName,
    clock: systemClock,
    logger: log.child({ source: 'kube' }),
    silenceMs: options.watchSilence,
    relistMs: options.relist,
  });
  const { resolveCredentials } = await import('../registry/credentials.ts');
  const secrets = new PullSecretCredentials({
    client,
    namespace,
    secretsFor: (host) => source.pullSecretsFor(host),
    fallback: (host) => resolveCredentials(host, { env }),
    logger: log.child({ source: 'pull-secrets' }),
  });
  const metrics = createMetrics();
  registerApiClientMetrics(metrics.registry, () => client.stats);
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  let agent: Agent | undefined;
  let fleet: FleetHandle | undefined;
  let server: Awaited<ReturnType<typeof startHealthServer>> | undefined;
  try {
    const store = await ctx.openStore({
      onRequest: (method, path, outcome) => recordDockerRequest(metrics, method, path, outcome),
      credentials: secrets.lookup,
    });
    agent = await createAgent({
      client,
      source,
      nodeName,
      namespace,
      store,
      inspector: await ctx.openInspector(),
      stateDir: ctx.options.stateDir,
      logger: log,
      metrics,
      resyncMs: options.resync,
      workers: options.workers,
    });
    const running = agent;
    // Every agent heartbeats and campaigns for the fleet Lease; the one elected keeps each
    // DockerPlugin's summary and its finalizer (kube/fleet.ts), sharing this agent's cache.
    const { startFleetLeader } = await import('../kube/fleet.ts');
    fleet = startFleetLeader({
      client,
      namespace,
      identity: nodeName,
      logger: log.child({ component: 'fleet' }),
      plugins: source.informers.plugins,
    });
    server = await startHealthServer(options.listen, {
      ready: () => running.ready(),
      registry: metrics.registry,
    });
    log.info(
      {
        listen: server.address,
        store: store.describe(),
        node: nodeName,
        namespace,
        cluster: connection.origin,
      },
      'plugctl run --kube starting',
    );
    // The first sync waits for the Node and the lists; a signal meanwhile must still stop the agent.
    const first = await Promise.race([running.start().then(() => undefined), stopped]);
    const signal = first ?? (await stopped);
    log.info({ signal }, 'shutting down');
  } finally {
    await agent?.stop(options.shutdownTimeout);
    await fleet?.stop();
    await server?.close();
    await source.close();
    await client.close();
  }
  return 0;
}
