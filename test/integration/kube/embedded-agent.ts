// A node agent of `plugctl run --kube` assembled in-process from real parts, as the command does
// (cli/run-kube.ts's createAgent, and the fleet side with the agent's informer): its own KubeClient,
// KubeSource and embedded store on temp roots running plugins with runc. Several of them stand for
// several nodes against one API server.
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createAgent } from '../../../controller/cli/run-kube.ts';
import type { Agent } from '../../../controller/cli/run-kube.ts';
import { KubeClient } from '../../../controller/kube/client.ts';
import { loadClusterConnection } from '../../../controller/kube/config.ts';
import { startFleetLeader } from '../../../controller/kube/fleet.ts';
import type { FleetHandle } from '../../../controller/kube/fleet.ts';
import { createMetrics } from '../../../controller/observe/metrics.ts';
import { RegistryClient } from '../../../controller/registry/client.ts';
import { resolveCredentials } from '../../../controller/registry/credentials.ts';
import { createRemoteInspector } from '../../../controller/registry/inspect.ts';
import { systemClock } from '../../../controller/runtime/clock.ts';
import { KubeSource } from '../../../controller/sources/kube.ts';
import { PullSecretCredentials } from '../../../controller/sources/pull-secrets.ts';
import { RuncRuntime } from '../../../controller/store/embedded/runc.ts';
import { openEmbeddedStore } from '../../../controller/store/embedded/store.ts';
import type { EmbeddedStore } from '../../../controller/store/embedded/store.ts';

/** Options of startEmbeddedAgent. */
export interface EmbeddedAgentOptions {
  nodeName: string;
  kubeconfig: string;
  namespace: string;
  /** a directory the agent's state and store root go under */
  work: string;
  logger: Logger;
  /** also run the fleet side (heartbeat, leader campaign), as `run --kube` does */
  fleet?: boolean;
  /** registry credentials from the pull Secrets of the DockerPlugins, as `run --kube` does */
  pullSecrets?: boolean;
  /** the source's watch silence limit (ms) */
  silenceMs?: number;
  slotTtlSeconds?: number;
  slotRetryMs?: number;
}

/** A running agent and what it runs on. */
export interface EmbeddedAgent {
  nodeName: string;
  agent: Agent;
  store: EmbeddedStore;
  /** its --state-dir: the inventory, the salt */
  stateDir: string;
  /** the embedded store's root: <root>/<plugin id>/rootfs */
  root: string;
  fleet: FleetHandle | undefined;
  /** Stops the agent as SIGTERM does (rollout slots given back), removes its plugins, closes everything. */
  stop(): Promise<void>;
  /**
   * Stops the agent as a crash does, as far as the cluster can tell: its connection to the API server
   * goes first, so nothing it holds there (rollout slots, heartbeat) is given back or renewed again.
   * Then it is torn down like stop().
   */
  kill(): Promise<void>;
}

/** Starts an agent on a fresh embedded store; resolves once its first sync is done. */
export async function startEmbeddedAgent(o: EmbeddedAgentOptions): Promise<EmbeddedAgent> {
  // runc's and the sockets' paths must stay short (sun_path), so they live under /run.
  const short = await mkdtemp('/run/pct-');
  const dir = await mkdtemp(join(o.work, `agent-${o.nodeName}-`));
  const logger = o.logger.child({ node: o.nodeName });
  const connection = await loadClusterConnection({ kubeconfig: o.kubeconfig, env: {}, clock: systemClock });
  const client = await KubeClient.open(connection, { timeoutMs: 5000 });
  const source = new KubeSource({
    client,
    nodeName: o.nodeName,
    clock: systemClock,
    logger,
    ...(o.silenceMs !== undefined ? { silenceMs: o.silenceMs } : {}),
  });
  const secrets =
    o.pullSecrets === true
      ? new PullSecretCredentials({
          client,
          namespace: o.namespace,
          secretsFor: (host) => source.pullSecretsFor(host),
          // a HOME of its own: no Docker client configuration of the machine is read
          fallback: (host) => resolveCredentials(host, { env: { HOME: dir } }),
          logger,
        })
      : undefined;
  const registryClient = new RegistryClient({ credentials: secrets?.lookup ?? (async () => undefined) });
  const runtime = new RuncRuntime({
    logger,
    runcRoot: join(short, 'runc'),
    socketsRoot: join(short, 's'),
    discoveryDir: join(short, 'd'),
    pollMs: 100,
  });
  const store = await openEmbeddedStore({
    root: join(dir, 'root'),
    runtime,
    registry: registryClient,
    logger,
    runDir: join(short, 'r'),
    stopGraceMs: 5000,
  });
  const agent = await createAgent({
    client,
    source,
    nodeName: o.nodeName,
    namespace: o.namespace,
    store,
    inspector: createRemoteInspector(registryClient, {
      acceptsDigests: store.acceptsDigestReferences(),
      description: store.describe(),
    }),
    stateDir: join(dir, 'state'),
    logger,
    metrics: createMetrics(),
    resyncMs: 600_000,
    workers: 2,
    statusDelayMs: 100,
    ...(o.slotTtlSeconds !== undefined ? { slotTtlSeconds: o.slotTtlSeconds } : {}),
    ...(o.slotRetryMs !== undefined ? { slotRetryMs: o.slotRetryMs } : {}),
  });
  const fleet =
    o.fleet === true
      ? startFleetLeader({
          client,
          namespace: o.namespace,
          identity: o.nodeName,
          logger: logger.child({ component: 'fleet' }),
          plugins: source.informers.plugins,
          leaseDurationSeconds: 3,
          renewDeadlineMs: 2000,
          retryPeriodMs: 200,
          heartbeat: { renewMs: 1000, leaseDurationSeconds: 10 },
        })
      : undefined;
  await agent.start();
  let stopped = false;
  const teardown = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    try {
      await agent.stop(10_000);
      await fleet?.stop();
      for (const plugin of await store.list().catch(() => [])) await store.remove(plugin.id, true);
    } finally {
      await store.close();
      await runtime.close();
      await registryClient.close();
      await client.close();
      await rm(short, { recursive: true, force: true });
    }
  };
  return {
    nodeName: o.nodeName,
    agent,
    store,
    stateDir: join(dir, 'state'),
    root: join(dir, 'root'),
    fleet,
    stop: teardown,
    async kill() {
      await client.close();
      await teardown();
    },
  };
}
