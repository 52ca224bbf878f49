// spec.rollout.maxUnavailable and spec.suspend across nodes, on a real API server: three node agents
// in-process (test/integration/kube/embedded-agent.ts: real KubeSource, controller, rollout slots and
// fleet side), each on its own embedded store running plugins with runc, and a real registry holding
// two versions of a fixture plugin whose start takes as long as its START_DELAY setting says (so that
// a disruption lasts long enough to be seen). The test samples what the three stores run every
// 100 ms: never two nodes without the plugin enabled at once.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { NodePluginStatus } from '../../../controller/api/status.ts';
import { getLease } from '../../../controller/kube/lease.ts';
import {
  DOCKER_PLUGIN_NODES,
  DOCKER_PLUGINS,
  NODES,
  collectionPath,
  objectPath,
} from '../../../controller/kube/resources.ts';
import type { KubeObject } from '../../../controller/kube/resources.ts';
import { slotName } from '../../../controller/kube/slots.ts';
import { RegistryClient } from '../../../controller/registry/client.ts';
import { openEmbeddedStore } from '../../../controller/store/embedded/store.ts';
import type { EmbeddedStore } from '../../../controller/store/embedded/store.ts';
import type { InstalledPlugin } from '../../../controller/store/store.ts';
import { buildPlugind, makeContext, volConfig } from '../../conformance/fixtures.ts';
import { idleRuntime } from '../../idle-runtime.ts';
import { capturingLogger, eventually, kubectl, useKube } from '../../kube/harness.ts';
import { KUBE, REGISTRY, RUNC, describeWith } from '../../prerequisites.ts';
import { startRegistry } from '../registry-harness.ts';
import type { RunningRegistry } from '../registry-harness.ts';
import { startEmbeddedAgent } from './embedded-agent.ts';
import type { EmbeddedAgent } from './embedded-agent.ts';

const PORT = 5296;
const NAMESPACE = 'default';
const NODES_NAMES = ['node-r1', 'node-r2', 'node-r3'];
const PLUGIN = 'roll';
/** short, so that a killed holder's slot frees quickly; renewed every third of it */
const SLOT_TTL_SECONDS = 3;
const SLOT_RETRY_MS = 500;
const PULL_MS = 90_000;

const { logger, lines: logLines } = capturingLogger();

/** The fixture plugin, started through a shell that first sleeps START_DELAY seconds. */
function slowConfig(label: string): Record<string, unknown> {
  const base = volConfig(label);
  return {
    ...base,
    Description: `plugctl rollout test plugin ${label}`,
    Entrypoint: ['/bin/sh', '-c', 'sleep "$START_DELAY"; exec /bin/plugind /run/docker/plugins/plugind.sock'],
    Env: [
      ...(base['Env'] as unknown[]),
      { Name: 'START_DELAY', Description: 'seconds before it listens', Settable: ['value'], Value: '0' },
    ],
  };
}

/** One sample: per node, whether the plugin is disrupted (installed but not enabled, or gone). */
type Sample = { at: number; disrupted: string[]; holder: string | undefined };

describeWith(
  'rollouts across nodes: maxUnavailable, a killed slot holder, suspend',
  { needs: [...KUBE, ...REGISTRY, ...RUNC], concurrency: false },
  () => {
    const kube = useKube({ crds: true });
    let work: string;
    let registry: RunningRegistry;
    let remoteV1: string;
    let remoteV2: string;
    const agents: EmbeddedAgent[] = [];

    function patch(body: Record<string, unknown>): Promise<unknown> {
      return kubectl(['patch', 'dockerplugin', PLUGIN, '--type=merge', '-p', JSON.stringify(body)]);
    }

    async function installed(agent: EmbeddedAgent): Promise<InstalledPlugin | undefined> {
      return (await agent.store.list()).find((p) => p.name === 'roll:1');
    }

    async function entry(node: string): Promise<NodePluginStatus | undefined> {
      const object = await kube()
        .client.request<KubeObject & { status?: { plugins?: NodePluginStatus[] } }>({
          method: 'GET',
          path: objectPath(DOCKER_PLUGIN_NODES, node),
        })
        .catch(() => undefined);
      return object?.status?.plugins?.find((p) => p.name === PLUGIN);
    }

    function condition(e: NodePluginStatus | undefined, type: string): { status: string; reason: string } {
      const found = e?.conditions?.find((c) => c.type === type);
      return { status: found?.status ?? 'Unknown', reason: found?.reason ?? '' };
    }

    async function generation(): Promise<number> {
      const got = await kubectl(['get', 'dockerplugin', PLUGIN, '-o', 'jsonpath={.metadata.generation}']);
      return Number(got.stdout);
    }

    async function slotHolder(): Promise<string | undefined> {
      const lease = await getLease(kube().client, NAMESPACE, slotName(PLUGIN, 0));
      return lease?.spec?.holderIdentity;
    }

    /** Every node of `live` runs `check`'s plugin and reports it Ready at the current generation. */
    async function converged(
      live: readonly EmbeddedAgent[],
      check: (p: InstalledPlugin) => boolean,
    ): Promise<boolean> {
      const wanted = await generation();
      for (const agent of live) {
        const plugin = await installed(agent);
        if (plugin === undefined || !plugin.enabled || !check(plugin)) return false;
        const e = await entry(agent.nodeName);
        if (e?.observedGeneration !== wanted || condition(e, 'Ready').status !== 'True') return false;
      }
      return true;
    }

    /** Samples the stores (and the slot's holder) every 100 ms until `done` resolves or rejects. */
    async function sampleWhile(live: readonly EmbeddedAgent[], done: Promise<void>): Promise<Sample[]> {
      const samples: Sample[] = [];
      let finished = false;
      const ended = done.finally(() => {
        finished = true;
      });
      while (!finished) {
        const disrupted: string[] = [];
        for (const agent of live) {
          const plugin = await installed(agent);
          if (plugin?.enabled !== true) disrupted.push(agent.nodeName);
        }
        samples.push({ at: Date.now(), disrupted, holder: await slotHolder() });
        await Promise.race([ended.catch(() => undefined), new Promise((r) => setTimeout(r, 100))]);
      }
      await ended;
      return samples;
    }

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'plugctl-kube-rollout-'));
      registry = await startRegistry(PORT);
      remoteV1 = `${registry.host}/test/roll:1`;
      remoteV2 = `${registry.host}/test/roll:2`;
      const plugind = await buildPlugind(join(work, 'plugind'));
      const pusher = new RegistryClient({ credentials: async () => undefined });
      let builder: EmbeddedStore | undefined;
      try {
        builder = await openEmbeddedStore({
          root: join(work, 'builder'),
          runtime: idleRuntime,
          registry: pusher,
          logger,
          runDir: join(work, 'builder-run'),
        });
        for (const [remote, label] of [
          [remoteV1, '1'],
          [remoteV2, '2'],
        ] as const) {
          await builder.createPlugin(
            remote,
            await makeContext(join(work, `ctx-${label}`), plugind, label, slowConfig(label)),
          );
          await builder.pushPlugin(remote);
        }
      } finally {
        await builder?.close();
        await pusher.close();
      }
      for (const name of NODES_NAMES) {
        await kube().client.request({
          method: 'POST',
          path: collectionPath(NODES),
          body: { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { role: 'rollout' } } },
        });
      }
      // A Node the selector leaves out: a percentage counts only the selected nodes.
      await kube().client.request({
        method: 'POST',
        path: collectionPath(NODES),
        body: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-other', labels: { role: 'other' } } },
      });
      for (const nodeName of NODES_NAMES) {
        agents.push(
          await startEmbeddedAgent({
            nodeName,
            kubeconfig: kube().kubeconfig,
            namespace: NAMESPACE,
            work,
            logger,
            fleet: true,
            slotTtlSeconds: SLOT_TTL_SECONDS,
            slotRetryMs: SLOT_RETRY_MS,
          }),
        );
      }
    });

    after(async () => {
      for (const agent of agents) await agent.stop().catch(() => undefined);
      await registry?.stop();
      if (work !== undefined) await rm(work, { recursive: true, force: true });
    });

    it('a first install is no disruption: every node installs at once, no slot is taken', async () => {
      await kubectl(['apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'plugctl.dev/v1alpha1',
          kind: 'DockerPlugin',
          metadata: { name: PLUGIN },
          spec: {
            remote: remoteV1,
            alias: 'roll:1',
            privileges: [{ name: 'network', value: ['host'] }],
            settings: { env: { GREETING: 'v1' } },
            nodeSelector: { matchLabels: { role: 'rollout' } },
            rollout: { maxUnavailable: 1 },
          },
        }),
      });
      await eventually(
        'roll enabled and Ready on the three nodes',
        () => converged(agents, (p) => p.reference === remoteV1),
        PULL_MS,
      );
      assert.equal(await slotHolder(), undefined, 'no rollout slot for a first install');
      assert.ok(
        !logLines.some((l) => l.includes('took a rollout slot')),
        'no agent took a rollout slot to install',
      );
    });

    it('an upgrade with maxUnavailable 1 never has two nodes disrupted at once, and finishes everywhere', async (t) => {
      const started = Date.now();
      await patch({ spec: { remote: remoteV2, settings: { env: { GREETING: 'v2', START_DELAY: '2' } } } });
      const waiting = new Set<string>();
      const done = eventually(
        'the upgrade converged on the three nodes',
        async () => {
          for (const agent of agents) {
            const reconciling = (await entry(agent.nodeName))?.conditions?.find(
              (c) => c.type === 'Reconciling',
            );
            if (reconciling?.reason === 'ROLLOUT_WAITING') waiting.add(reconciling.message ?? '');
          }
          return converged(agents, (p) => p.reference === remoteV2 && p.settings.env['START_DELAY'] === '2');
        },
        120_000,
      );
      const samples = await sampleWhile(agents, done);
      const elapsed = Date.now() - started;
      const worst = samples.reduce((max, s) => (s.disrupted.length > max.disrupted.length ? s : max));
      assert.ok(
        worst.disrupted.length <= 1,
        `at most one node disrupted at a time; at +${worst.at - started} ms: ${worst.disrupted.join(', ')}`,
      );
      // Each node was seen disrupted (the samples did see the rollout), one after the other.
      const seen = new Set(samples.flatMap((s) => s.disrupted));
      assert.deepEqual(
        [...seen].sort(),
        NODES_NAMES,
        `every node was disrupted in turn (${samples.length} samples)`,
      );
      const holders = new Set(samples.map((s) => s.holder).filter((h) => h !== undefined));
      assert.deepEqual([...holders].sort(), NODES_NAMES, 'the slot went to every node in turn');
      assert.ok(
        waiting.size > 0,
        'a node that had to wait said so in its DockerPluginNode (ROLLOUT_WAITING)',
      );
      assert.ok(
        [...waiting].some((m) =>
          /maxUnavailable allows 1 node\(s\) to change roll at a time, held by node-r\d$/.test(m),
        ),
        `the wait names the holder: ${[...waiting].join(' | ')}`,
      );
      // with one node at a time, the three 2 s starts cannot overlap
      assert.ok(
        elapsed >= 6000,
        `the rollout took ${elapsed} ms: three disruptions of at least 2 s in a row`,
      );
      await eventually('the slot given back', async () => (await slotHolder()) === undefined, 10_000);
      t.diagnostic(`rollout of 3 nodes, 1 at a time: ${elapsed} ms, ${samples.length} samples`);
    });

    it('spec.suspend: nothing changes, each node and the fleet summary say Suspended', async () => {
      await patch({
        spec: { suspend: true, settings: { env: { GREETING: 'while-suspended', START_DELAY: '2' } } },
      });
      const wanted = await generation();
      for (const agent of agents) {
        await eventually(
          `${agent.nodeName} reports Suspended`,
          async () => {
            const e = await entry(agent.nodeName);
            return e?.observedGeneration === wanted && condition(e, 'Ready').reason === 'Suspended';
          },
          30_000,
        );
      }
      const summary = async (): Promise<{ type: string; status: string; reason: string }[]> => {
        const object = await kube().client.request<
          KubeObject & {
            status?: {
              observedGeneration?: number;
              conditions?: { type: string; status: string; reason: string }[];
            };
          }
        >({ method: 'GET', path: objectPath(DOCKER_PLUGINS, PLUGIN) });
        return object.status?.observedGeneration === wanted ? (object.status.conditions ?? []) : [];
      };
      await eventually(
        'the fleet summary says Suspended',
        async () => {
          const conditions = await summary();
          return (
            conditions.find((c) => c.type === 'Ready')?.reason === 'Suspended' &&
            conditions.find((c) => c.type === 'Reconciling')?.status === 'False'
          );
        },
        30_000,
      );
      for (const agent of agents) {
        const plugin = await installed(agent);
        assert.equal(plugin?.enabled, true);
        assert.equal(plugin?.settings.env['GREETING'], 'v2', 'nothing is changed while suspended');
      }
      assert.equal(await slotHolder(), undefined, 'a suspended plugin takes no slot');
      // resumed as it was: nothing to do
      await patch({ spec: { suspend: false, settings: { env: { GREETING: 'v2', START_DELAY: '2' } } } });
      await eventually(
        'Ready again after resuming',
        () => converged(agents, (p) => p.settings.env['GREETING'] === 'v2'),
        30_000,
      );
    });

    it('an agent killed while holding the slot does not block the rollout past the slot TTL', async (t) => {
      // 50% of the 3 selected nodes is 1 slot (node-other is not selected: counted, it would make 2,
      // and a survivor would not have to wait for the dead agent's slot)
      await patch({
        spec: {
          rollout: { maxUnavailable: '50%' },
          settings: { env: { GREETING: 'after-kill', START_DELAY: '3' } },
        },
      });
      let victim: EmbeddedAgent | undefined;
      await eventually(
        'a node takes the slot',
        async () => {
          const holder = await slotHolder();
          victim = agents.find((a) => a.nodeName === holder);
          return victim !== undefined;
        },
        30_000,
      );
      const killedAt = Date.now();
      // the cluster side of the crash is immediate; the rest of the teardown runs meanwhile
      const killing = victim!.kill();
      const survivors = agents.filter((a) => a !== victim);
      const before = (await getLease(kube().client, NAMESPACE, slotName(PLUGIN, 0)))?.spec;
      assert.equal(before?.holderIdentity, victim!.nodeName, 'the dead agent still holds the slot');
      const done = eventually(
        'the survivors converged',
        () => converged(survivors, (p) => p.settings.env['GREETING'] === 'after-kill'),
        SLOT_TTL_SECONDS * 1000 + 40_000,
      );
      const samples = await sampleWhile(survivors, done);
      const worst = Math.max(...samples.map((s) => s.disrupted.length));
      assert.ok(worst <= 1, `never both survivors disrupted at once (${worst})`);
      const took = Date.now() - killedAt;
      await killing;
      assert.ok(
        took < SLOT_TTL_SECONDS * 1000 + 30_000,
        `the survivors finished ${took} ms after the kill (slot TTL ${SLOT_TTL_SECONDS} s)`,
      );
      assert.ok(
        logLines.some(
          (l) => l.includes('taking over an expired rollout slot') && l.includes(victim!.nodeName),
        ),
        "a survivor took the dead agent's slot over once it expired",
      );
      agents.splice(agents.indexOf(victim!), 1);
      t.diagnostic(
        `2 survivors converged ${took} ms after the slot holder was killed (TTL ${SLOT_TTL_SECONDS} s)`,
      );
    });
  },
);
