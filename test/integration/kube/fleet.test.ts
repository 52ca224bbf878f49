// The fleet side on a real API server: the elected leader turns DockerPluginNode reports (written here
// as agents write them, with server-side apply under their own field managers) into each DockerPlugin's
// status, which `kubectl get` shows and `kubectl wait --for=condition=Ready` waits on; its writes are
// coalesced; it keeps the finalizer and releases it once no live node lists the plugin, skipping a node
// whose agent is gone past the grace period (and saying so in an Event); and when the leader process is
// killed, another agent takes the Lease over and keeps the summaries going. A node whose agent is
// uninstalled loses its DockerPluginNode (the leader, or the CRD's deletion when everything goes).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { REMOVED_REASON } from '../../../controller/api/status.ts';
import type { DockerPluginStatus, NodePluginStatus } from '../../../controller/api/status.ts';
import { serverSideApply } from '../../../controller/kube/apply.ts';
import type { KubeClient } from '../../../controller/kube/client.ts';
import { hasStatus } from '../../../controller/kube/errors.ts';
import { FINALIZER, startFleetLeader } from '../../../controller/kube/fleet.ts';
import type { FleetHandle, FleetOptions } from '../../../controller/kube/fleet.ts';
import { NodeHeartbeat } from '../../../controller/kube/heartbeat.ts';
import { getLease } from '../../../controller/kube/lease.ts';
import {
  DOCKER_PLUGINS,
  DOCKER_PLUGIN_NODES,
  EVENTS,
  NODES,
  collectionPath,
  objectPath,
} from '../../../controller/kube/resources.ts';
import type { KubeList, KubeObject } from '../../../controller/kube/resources.ts';
import { systemClock } from '../../../controller/runtime/clock.ts';
import { KubeSource } from '../../../controller/sources/kube.ts';
import {
  CRDS_DIR,
  describeKube,
  eventually,
  installCrds,
  kubectl,
  testLogger,
  useKube,
} from '../../kube/harness.ts';

const NS = 'plugctl-system';
const DRIVER = fileURLToPath(new URL('../../kube/fleet-driver.ts', import.meta.url));

interface PluginObject extends KubeObject {
  spec: Record<string, unknown>;
  status?: DockerPluginStatus;
}

async function ensureNamespace(client: KubeClient): Promise<void> {
  try {
    await client.request({
      method: 'POST',
      path: '/api/v1/namespaces',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
    });
  } catch (error) {
    if (!hasStatus(error, 409)) throw error;
  }
}

async function createNode(client: KubeClient, name: string, labels: Record<string, string>): Promise<void> {
  await client.request({
    method: 'POST',
    path: collectionPath(NODES),
    body: { apiVersion: 'v1', kind: 'Node', metadata: { name, labels } },
  });
}

/** What a node's agent does: apply its DockerPluginNode's status under its own field manager. */
async function report(client: KubeClient, node: string, plugins: NodePluginStatus[]): Promise<void> {
  const fieldManager = `plugctl-agent/${node}`;
  await serverSideApply(client, DOCKER_PLUGIN_NODES, { metadata: { name: node } }, { fieldManager });
  const ready = plugins.filter((p) => p.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  await serverSideApply(
    client,
    DOCKER_PLUGIN_NODES,
    { metadata: { name: node }, status: { declared: plugins.length, ready: ready.length, plugins } },
    { fieldManager, subresource: 'status', force: true },
  );
}

function entry(name: string, generation: number, ready: boolean): NodePluginStatus {
  return {
    name,
    pluginID: `id-${name}`,
    reference: 'docker.io/vieux/sshfs:1.2',
    enabled: ready,
    observedGeneration: generation,
    conditions: [
      {
        type: 'Ready',
        status: ready ? 'True' : 'False',
        reason: ready ? 'Converged' : 'Upgrading',
        lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        observedGeneration: generation,
      },
    ],
  };
}

/** An agent's entry for a DockerPlugin being deleted: still to remove it, or nothing of it left. */
function removal(name: string, removed: boolean): NodePluginStatus {
  return {
    name,
    enabled: false,
    observedGeneration: 1,
    lastAction: 'remove',
    conditions: [
      {
        type: 'Ready',
        status: 'False',
        reason: removed ? REMOVED_REASON : 'Removing',
        lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        observedGeneration: 1,
      },
    ],
  };
}

async function getPlugin(client: KubeClient, name: string): Promise<PluginObject | undefined> {
  try {
    return await client.request<PluginObject>({ method: 'GET', path: objectPath(DOCKER_PLUGINS, name) });
  } catch (error) {
    if (hasStatus(error, 404)) return undefined;
    throw error;
  }
}

async function applyPlugin(name: string, spec: Record<string, unknown>): Promise<void> {
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'plugctl.dev/v1alpha1',
      kind: 'DockerPlugin',
      metadata: { name },
      spec,
    }),
  });
}

function leader(client: KubeClient, over: Partial<FleetOptions>): FleetHandle {
  return startFleetLeader({
    client,
    namespace: NS,
    identity: 'leader',
    logger: testLogger(),
    clock: systemClock,
    heartbeat: false,
    leaseDurationSeconds: 3,
    renewDeadlineMs: 2_000,
    retryPeriodMs: 200,
    ...over,
  });
}

/** Heartbeats for `nodes`, renewed every 300 ms until the returned stop is called. */
function heartbeats(client: KubeClient, nodes: string[]): () => Promise<void> {
  const stop = new AbortController();
  const runs = nodes.map((node) =>
    new NodeHeartbeat({
      client,
      namespace: NS,
      node,
      clock: systemClock,
      logger: testLogger(),
      renewMs: 300,
    }).run(stop.signal),
  );
  return async () => {
    stop.abort();
    await Promise.all(runs);
  };
}

describeKube('fleet: summary, finalizer, leader failover', () => {
  const kube = useKube({ crds: true });

  test('the summary follows the node reports; kubectl get shows it and kubectl wait returns on convergence; writes are coalesced', async () => {
    const { client } = kube();
    await ensureNamespace(client);
    const blue = ['s-a', 's-b', 's-c'];
    for (const node of blue) await createNode(client, node, { pool: 'blue' });
    await createNode(client, 's-d', { pool: 'red' });
    const stopBeats = heartbeats(client, [...blue, 's-d']);
    const fleet = leader(client, { leaseName: 'fleet-summary', identity: 's-a' });
    try {
      await applyPlugin('sum-p', {
        remote: 'vieux/sshfs:1.2',
        nodeSelector: { matchLabels: { pool: 'blue' } },
      });
      await eventually('the leader to lead and summarise', async () => {
        const p = await getPlugin(client, 'sum-p');
        return p?.status?.ready === '0/3' && (p.metadata.finalizers ?? []).includes(FINALIZER);
      });
      assert.ok(fleet.isLeader());
      let plugin = await getPlugin(client, 'sum-p');
      assert.equal(plugin?.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
      assert.match(
        plugin?.status?.conditions?.find((c) => c.type === 'Reconciling')?.message ?? '',
        /waiting for 3 nodes: s-a, s-b, s-c/,
      );

      for (const node of blue) await report(client, node, [entry('sum-p', 1, true)]);
      const waited = await kubectl(['wait', '--for=condition=Ready', '--timeout=30s', 'dockerplugin/sum-p']);
      assert.match(waited.stdout, /condition met/);
      plugin = await getPlugin(client, 'sum-p');
      assert.deepEqual(plugin?.status?.nodes, { selected: 3, ready: 3, updated: 3, unavailable: 0 });
      assert.equal(plugin?.status?.observedGeneration, 1);

      const table = await kubectl(['get', 'dockerplugins', 'sum-p']);
      const [header, row] = table.stdout.trim().split('\n');
      assert.match(header ?? '', /^NAME\s+REMOTE\s+READY\s+UP-TO-DATE\s+AGE$/);
      assert.match(row ?? '', /^sum-p\s+vieux\/sshfs:1\.2\s+3\/3\s+3\s+\S+$/);
      const nodesTable = await kubectl(['get', 'dockerpluginnodes', 's-a']);
      assert.match(nodesTable.stdout, /^NAME\s+READY\s+DECLARED\s+AGE\n/);
      assert.match(nodesTable.stdout, /s-a\s+1\s+1\s+/);

      // a new generation: nobody has applied it yet
      await kubectl(['patch', 'dockerplugin', 'sum-p', '--type=merge', '-p', '{"spec":{"enabled":false}}']);
      await eventually(
        'observedGeneration 2',
        async () => (await getPlugin(client, 'sum-p'))?.status?.observedGeneration === 2,
      );
      plugin = await getPlugin(client, 'sum-p');
      assert.deepEqual(plugin?.status?.nodes, { selected: 3, ready: 0, updated: 0, unavailable: 0 });
      const notYet = await kubectl(['wait', '--for=condition=Ready', '--timeout=1s', 'dockerplugin/sum-p'], {
        check: false,
      });
      assert.notEqual(notYet.code, 0, 'not Ready while no node runs generation 2');

      // the nodes roll one at a time; kubectl wait returns only after the last
      const waiting = kubectl(['wait', '--for=condition=Ready', '--timeout=60s', 'dockerplugin/sum-p']);
      let settled = false;
      void waiting.then(() => (settled = true));
      for (const node of blue) {
        await report(client, node, [entry('sum-p', 2, false)]);
        await report(client, node, [entry('sum-p', 2, true)]);
        await new Promise((resolve) => setTimeout(resolve, 300));
        if (node !== 's-c') assert.equal(settled, false, `kubectl wait returned before ${node} was the last`);
      }
      assert.equal((await waiting).code, 0);

      // coalescing: 30 flaps of one node within ~1.5 s are at most one write per second
      await eventually(
        'converged at generation 2',
        async () => (await getPlugin(client, 'sum-p'))?.status?.ready === '3/3',
      );
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const before = fleet.stats.statusWrites;
      const burstStart = Date.now();
      for (let i = 0; i < 30; i++) await report(client, 's-a', [entry('sum-p', 2, i % 2 === 1)]);
      const burstSeconds = (Date.now() - burstStart) / 1000;
      await eventually(
        'the flaps to settle Ready',
        async () => (await getPlugin(client, 'sum-p'))?.status?.ready === '3/3',
      );
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const burstWrites = fleet.stats.statusWrites - before;
      assert.ok(
        burstWrites <= Math.ceil(burstSeconds) + 2,
        `${burstWrites} status writes for 30 changes in ${burstSeconds.toFixed(1)} s`,
      );

      // nothing changed: no write (the reports are applied again, unchanged)
      const quiet = fleet.stats.statusWrites;
      const rv = (await getPlugin(client, 'sum-p'))?.metadata.resourceVersion;
      for (const node of blue) await report(client, node, [entry('sum-p', 2, true)]);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      assert.equal(fleet.stats.statusWrites, quiet, 'no write when nothing changed');
      assert.equal((await getPlugin(client, 'sum-p'))?.metadata.resourceVersion, rv);

      // a node relabelled into the selector counts at once
      await kubectl(['label', 'node', 's-d', 'pool=blue', '--overwrite']);
      await eventually(
        's-d selected',
        async () => (await getPlugin(client, 'sum-p'))?.status?.ready === '3/4',
      );
    } finally {
      await fleet.stop();
      await stopBeats();
    }
  });

  test('the finalizer waits for live nodes and is released without a node whose agent is gone past the grace period; an Event names it', async () => {
    const { client } = kube();
    await ensureNamespace(client);
    const GRACE = 3_000;
    // f-none is selected but never had an agent (no heartbeat): it holds nothing
    for (const node of ['f-live', 'f-dead', 'f-none']) await createNode(client, node, { role: 'fin' });
    const stopLive = heartbeats(client, ['f-live']);
    const fleet = leader(client, { leaseName: 'fleet-finalizer', identity: 'f-live', graceMs: GRACE });
    try {
      for (const name of ['fin-p', 'fin-q'])
        await applyPlugin(name, {
          remote: 'vieux/sshfs:1.2',
          nodeSelector: { matchLabels: { role: 'fin' } },
        });
      await report(client, 'f-live', [entry('fin-p', 1, true), entry('fin-q', 1, true)]);
      await report(client, 'f-dead', [entry('fin-p', 1, true)]);
      await eventually('finalizers on both', async () =>
        (await Promise.all(['fin-p', 'fin-q'].map((n) => getPlugin(client, n)))).every((p) =>
          (p?.metadata.finalizers ?? []).includes(FINALIZER),
        ),
      );

      // a plain deletion: held while the live node is removing the plugin, released once it is removed
      await kubectl(['delete', 'dockerplugin', 'fin-q', '--wait=false']);
      await report(client, 'f-live', [entry('fin-p', 1, true), removal('fin-q', false)]);
      await eventually('Terminating shown', async () => {
        const p = await getPlugin(client, 'fin-q');
        return (
          p?.status?.conditions?.find((c) => c.type === 'Reconciling')?.message ===
          'deleting: waiting for 1 node to remove the plugin: f-live'
        );
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.ok((await getPlugin(client, 'fin-q')) !== undefined, 'held while f-live is removing it');
      await report(client, 'f-live', [entry('fin-p', 1, true), removal('fin-q', true)]);
      const removedAt = Date.now();
      await eventually('fin-q released', async () => (await getPlugin(client, 'fin-q')) === undefined, 5_000);
      assert.ok(Date.now() - removedAt < 3_000, 'fin-q did not wait for anything else');

      // f-dead's agent beats once, now, and never again; f-live removes fin-p at once
      await new NodeHeartbeat({
        client,
        namespace: NS,
        node: 'f-dead',
        clock: systemClock,
        logger: testLogger(),
      }).beat();
      const lastBeat = Date.now();
      await kubectl(['delete', 'dockerplugin', 'fin-p', '--wait=false']);
      await report(client, 'f-live', [removal('fin-p', true)]);
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, GRACE - 1_000 - (Date.now() - lastBeat))),
      );
      const held = await getPlugin(client, 'fin-p');
      assert.ok(held !== undefined, 'fin-p is held by f-dead within the grace period');
      assert.match(
        held.status?.conditions?.find((c) => c.type === 'Reconciling')?.message ?? '',
        /waiting for 1 node to remove the plugin: f-dead/,
      );
      await eventually(
        'fin-p released',
        async () => (await getPlugin(client, 'fin-p')) === undefined,
        15_000,
      );
      assert.ok(Date.now() - lastBeat >= GRACE, 'not before the grace period');
      assert.equal(fleet.stats.nodesSkipped, 1);

      const events = await client.request<
        KubeList<KubeObject & { reason?: string; note?: string; regarding?: { name?: string } }>
      >({
        method: 'GET',
        path: collectionPath(EVENTS, 'kube-system'),
      });
      const skipped = events.items.filter((e) => e.reason === 'NodeSkipped' && e.regarding?.name === 'fin-p');
      assert.equal(skipped.length, 1);
      assert.match(skipped[0]?.note ?? '', /node f-dead was skipped .*grace period/);
      assert.ok(
        events.items.some((e) => e.reason === 'Removed' && e.regarding?.name === 'fin-q'),
        'a Normal event for the clean release',
      );
    } finally {
      await fleet.stop();
      await stopLive();
    }
  });

  test('leader failover: the leader process is killed; the other takes the Lease over and keeps the summary', async () => {
    const env = kube();
    const { client } = env;
    await ensureNamespace(client);
    await createNode(client, 'l-a', { role: 'failover' });
    await createNode(client, 'l-b', { role: 'failover' });
    await applyPlugin('fo-p', {
      remote: 'vieux/sshfs:1.2',
      nodeSelector: { matchLabels: { role: 'failover' } },
    });
    const children: ChildProcess[] = [];
    const leading = new Map<string, boolean>();
    const start = (identity: string): ChildProcess => {
      const child = spawn(
        process.execPath,
        [
          DRIVER,
          JSON.stringify({
            kubeconfig: env.kubeconfig,
            identity,
            namespace: NS,
            leaseName: 'fleet-failover',
            leaseDurationSeconds: 3,
            renewDeadlineMs: 2_000,
            retryPeriodMs: 200,
            heartbeatRenewMs: 500,
          }),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const message = JSON.parse(line) as { identity: string; leading?: boolean };
        if (message.leading !== undefined) leading.set(message.identity, message.leading);
      });
      children.push(child);
      return child;
    };
    const byIdentity = { 'l-a': start('l-a'), 'l-b': start('l-b') };
    try {
      await eventually('one leader', () => [...leading.values()].filter(Boolean).length === 1, 30_000);
      const first = [...leading].find(([, v]) => v)?.[0] as 'l-a' | 'l-b';
      const second = first === 'l-a' ? 'l-b' : 'l-a';
      await report(client, 'l-a', [entry('fo-p', 1, true)]);
      await eventually(
        '1/2 by the first leader',
        async () => (await getPlugin(client, 'fo-p'))?.status?.ready === '1/2',
      );

      const killedAt = Date.now();
      byIdentity[first].kill('SIGKILL');
      await report(client, 'l-b', [entry('fo-p', 1, true)]);
      await eventually('the other to lead', () => leading.get(second) === true, 15_000);
      const lease = await getLease(client, NS, 'fleet-failover');
      assert.equal(lease?.spec?.holderIdentity, second);
      assert.ok((lease?.spec?.leaseTransitions ?? 0) >= 1);
      await eventually(
        '2/2 by the new leader',
        async () => (await getPlugin(client, 'fo-p'))?.status?.ready === '2/2',
        15_000,
      );
      assert.ok(Date.now() - killedAt >= 2_500, 'the new leader waited out the lease');
      const ready = (await getPlugin(client, 'fo-p'))?.status?.conditions?.find((c) => c.type === 'Ready');
      assert.equal(ready?.status, 'True');
    } finally {
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await Promise.all(
        children.map((child) =>
          child.exitCode !== null || child.signalCode !== null
            ? Promise.resolve()
            : new Promise((resolve) => child.once('exit', resolve)),
        ),
      );
    }
  });

  test("sharing the agent's DockerPlugin cache (status dropped), a converged fleet's leader writes no more status", async () => {
    const { client } = kube();
    await ensureNamespace(client);
    await createNode(client, 'w-a', { role: 'shared' });
    const stopBeats = heartbeats(client, ['w-a']);
    // the cache `plugctl run --kube` hands its leader: the agent's own, without status
    const source = new KubeSource({ client, nodeName: 'w-a', clock: systemClock, logger: testLogger() });
    const fleet = leader(client, {
      leaseName: 'fleet-shared',
      identity: 'w-a',
      plugins: source.informers.plugins,
    });
    try {
      await applyPlugin('shared-p', {
        remote: 'vieux/sshfs:1.2',
        nodeSelector: { matchLabels: { role: 'shared' } },
      });
      await report(client, 'w-a', [entry('shared-p', 1, true)]);
      await eventually(
        'shared-p Ready',
        async () => (await getPlugin(client, 'shared-p'))?.status?.ready === '1/1',
      );
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const settled = fleet.stats.statusWrites;
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      assert.equal(fleet.stats.statusWrites - settled, 0, 'no status write while nothing changes');
    } finally {
      await fleet.stop();
      await source.close();
      await stopBeats();
    }
  });

  test("a node's DockerPluginNode is removed once its agent is uninstalled (gone past the grace period, no agent pod); a down node's agent pod keeps it; a live agent keeps it", async () => {
    const { client } = kube();
    await ensureNamespace(client);
    // pods need their ServiceAccount (nothing creates `default` here: no controller-manager)
    await client
      .request({
        method: 'POST',
        path: `/api/v1/namespaces/${NS}/serviceaccounts`,
        body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } },
      })
      .catch((error: unknown) => {
        if (!hasStatus(error, 409)) throw error;
      });
    const GRACE = 3_000;
    for (const node of ['u-live', 'u-down', 'u-gone']) {
      await createNode(client, node, { role: 'uninstall' });
      await report(client, node, [entry('u-p', 1, true)]);
    }
    // u-down's agent pod stays (the node is down; the DaemonSet's pod is never evicted), u-gone's is gone
    await client.request({
      method: 'POST',
      path: `/api/v1/namespaces/${NS}/pods`,
      body: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'plugctl-agent-u-down',
          labels: { 'app.kubernetes.io/name': 'plugctl', 'app.kubernetes.io/component': 'agent' },
        },
        spec: {
          nodeName: 'u-down',
          automountServiceAccountToken: false,
          containers: [{ name: 'agent', image: 'plugctl' }],
        },
      },
    });
    for (const node of ['u-down', 'u-gone'])
      await new NodeHeartbeat({
        client,
        namespace: NS,
        node,
        clock: systemClock,
        logger: testLogger(),
      }).beat();
    const lastBeat = Date.now();
    const stopLive = heartbeats(client, ['u-live']);
    const fleet = leader(client, {
      leaseName: 'fleet-uninstall',
      identity: 'u-live',
      graceMs: GRACE,
      nodeReports: { recheckMs: 500 },
    });
    const exists = async (node: string): Promise<boolean> => {
      try {
        await client.request({ method: 'GET', path: objectPath(DOCKER_PLUGIN_NODES, node) });
        return true;
      } catch (error) {
        if (hasStatus(error, 404)) return false;
        throw error;
      }
    };
    try {
      await new Promise((resolve) => setTimeout(resolve, GRACE - 1_000));
      assert.ok(await exists('u-gone'), 'kept within the grace period');
      await eventually('u-gone removed', async () => !(await exists('u-gone')), 15_000);
      assert.ok(Date.now() - lastBeat >= GRACE, 'not before the grace period');
      assert.ok(fleet.stats.nodeReportsRemoved >= 1);
      // the heartbeat Lease stays: the node is still known to have had an agent
      assert.ok((await getLease(client, NS, 'plugctl-node-u-gone')) !== undefined);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      assert.ok(await exists('u-down'), "its agent pod keeps a down node's report");
      assert.ok(await exists('u-live'), 'a live agent keeps its report');

      // the DaemonSet no longer targets u-down: its pod is deleted, and the report follows
      await client.request({
        method: 'DELETE',
        path: `/api/v1/namespaces/${NS}/pods/plugctl-agent-u-down`,
        body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 },
      });
      await eventually(
        'u-down removed once its agent pod is gone',
        async () => !(await exists('u-down')),
        15_000,
      );
      assert.ok(await exists('u-live'), 'a live agent keeps its report');
    } finally {
      await fleet.stop();
      await stopLive();
    }
  });

  test('uninstalling (kubectl delete -f crds/) removes every DockerPluginNode with their CRD', async () => {
    const { client } = kube();
    await report(client, 'crd-a', [entry('c-p', 1, true)]);
    await report(client, 'crd-b', [entry('c-p', 1, true)]);
    await kubectl(['delete', '-f', `${CRDS_DIR}dockerpluginnodes.plugctl.dev.yaml`, '--wait=true']);
    // reinstalled (as a later install would): none of the old reports is back
    await installCrds();
    const list = await client.request<KubeList>({ method: 'GET', path: collectionPath(DOCKER_PLUGIN_NODES) });
    assert.deepEqual(
      list.items.map((i) => i.metadata.name),
      [],
    );
  });
});
