// Writing to the cluster, against a real API server: server-side apply of objects and status with
// field managers; the Lease-based leader (acquire, renew, release, loss, crash); rollout slots (the
// bound holds, a dead holder's slot expires); and Events deduplicated into series and rate-limited.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverSideApply } from '../../../controller/kube/apply.ts';
import type { KubeClient } from '../../../controller/kube/client.ts';
import { KubeError } from '../../../controller/kube/errors.ts';
import { EventRecorder } from '../../../controller/kube/events.ts';
import { LeaderElector } from '../../../controller/kube/leader.ts';
import { getLease, microTime, replaceLease } from '../../../controller/kube/lease.ts';
import {
  DOCKER_PLUGINS,
  DOCKER_PLUGIN_NODES,
  EVENTS,
  LEASES,
  collectionPath,
  objectPath,
} from '../../../controller/kube/resources.ts';
import type { KubeList, KubeObject } from '../../../controller/kube/resources.ts';
import { RolloutSlots, SLOT_PLUGIN_LABEL } from '../../../controller/kube/slots.ts';
import type { HeldSlot } from '../../../controller/kube/slots.ts';
import { systemClock } from '../../../controller/runtime/clock.ts';
import { describeKube, eventually, openClient, testLogger, useKube } from '../../kube/harness.ts';

const NS = 'plugctl-system';
/** Names unique to this run, so objects a crashed earlier run left in a reused server do not count. */
const RUN = Date.now().toString(36);

interface NodeStatus {
  status?: { plugins?: { name: string; pluginID?: string; enabled?: boolean }[] };
}

async function getObject<T>(client: KubeClient, path: string): Promise<T> {
  return client.request<T>({ method: 'GET', path });
}

describeKube('writing to the cluster: apply, leader, rollout slots, events', () => {
  const kube = useKube({ crds: true });

  test('server-side apply: status entries of two managers merge by name; what a manager drops goes', async () => {
    const { client } = kube();
    await serverSideApply(
      client,
      DOCKER_PLUGIN_NODES,
      { metadata: { name: `node-a-${RUN}` } },
      { fieldManager: 'agent' },
    );
    const entry = (name: string, pluginID: string) => ({ name, pluginID, enabled: true });
    const status = (plugins: unknown[]) => ({ metadata: { name: `node-a-${RUN}` }, status: { plugins } });
    await serverSideApply(client, DOCKER_PLUGIN_NODES, status([entry('a', 'id-a'), entry('b', 'id-b')]), {
      fieldManager: 'agent',
      subresource: 'status',
    });
    await serverSideApply(client, DOCKER_PLUGIN_NODES, status([entry('c', 'id-c')]), {
      fieldManager: 'other',
      subresource: 'status',
    });
    const path = objectPath(DOCKER_PLUGIN_NODES, `node-a-${RUN}`);
    let node = await getObject<NodeStatus>(client, path);
    assert.deepEqual(node.status?.plugins?.map((p) => p.name).sort(), ['a', 'b', 'c']);

    // the agent now applies only "a": its "b" goes, the other manager's "c" stays
    await serverSideApply(client, DOCKER_PLUGIN_NODES, status([entry('a', 'id-a2')]), {
      fieldManager: 'agent',
      subresource: 'status',
    });
    node = await getObject<NodeStatus>(client, path);
    assert.deepEqual(node.status?.plugins?.map((p) => [p.name, p.pluginID]).sort(), [
      ['a', 'id-a2'],
      ['c', 'id-c'],
    ]);

    // a field owned by another manager: a conflict unless forced
    await assert.rejects(
      serverSideApply(client, DOCKER_PLUGIN_NODES, status([entry('c', 'mine')]), {
        fieldManager: 'agent',
        subresource: 'status',
      }),
      (error: unknown) =>
        error instanceof KubeError && error.code === 'KUBE_CONFLICT' && /conflict/i.test(error.message),
    );
    await serverSideApply(client, DOCKER_PLUGIN_NODES, status([entry('a', 'id-a2'), entry('c', 'mine')]), {
      fieldManager: 'agent',
      subresource: 'status',
      force: true,
    });
    node = await getObject<NodeStatus>(client, path);
    assert.equal(node.status?.plugins?.find((p) => p.name === 'c')?.pluginID, 'mine');

    // the status subresource never changes the spec, and the object endpoint never the status
    await client.request({
      method: 'POST',
      path: collectionPath(DOCKER_PLUGINS),
      body: {
        apiVersion: 'plugctl.dev/v1alpha1',
        kind: 'DockerPlugin',
        metadata: { name: `x-${RUN}` },
        spec: { remote: 'a' },
      },
    });
    await serverSideApply(
      client,
      DOCKER_PLUGINS,
      { metadata: { name: `x-${RUN}` }, spec: { remote: 'changed' }, status: { ready: '1/1' } },
      // force: spec.remote belongs to the creator; the status endpoint drops it anyway
      { fieldManager: 'leader', subresource: 'status', force: true },
    );
    const stored = await getObject<KubeObject & { spec: { remote: string }; status?: { ready?: string } }>(
      client,
      objectPath(DOCKER_PLUGINS, `x-${RUN}`),
    );
    assert.equal(stored.spec.remote, 'a');
    assert.equal(stored.status?.ready, '1/1');
  });

  test('leader election: one leader; a clean shutdown hands over at once; a crash after the lease duration', async () => {
    const { client } = kube();
    await client.request({
      method: 'POST',
      path: '/api/v1/namespaces',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
    });
    const candidates = await Promise.all(
      ['a', 'b', 'c'].map(async (id) => ({ id, client: await openClient(), stop: new AbortController() })),
    );
    const electors = candidates.map(
      (c) =>
        new LeaderElector({
          client: c.client,
          namespace: NS,
          name: `plugctl-leader-${RUN}`,
          identity: c.id,
          clock: systemClock,
          logger: testLogger(),
          leaseDurationSeconds: 3,
          renewDeadlineMs: 2_000,
          retryPeriodMs: 200,
        }),
    );
    const runs = electors.map((e, i) => e.run(candidates[i]!.stop.signal));
    const leaders = () => electors.filter((e) => e.isLeader());
    try {
      await eventually('a leader', () => leaders().length === 1);
      let first = electors.indexOf(leaders()[0]!);
      const lease = await getLease(client, NS, `plugctl-leader-${RUN}`);
      assert.equal(lease?.spec?.holderIdentity, candidates[first]!.id);

      // several renewals later still exactly one leader, and the same one
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.deepEqual(leaders(), [electors[first]]);

      // clean shutdown: the lease is released, another takes over well within the lease duration
      const started = Date.now();
      candidates[first]!.stop.abort();
      await runs[first];
      await eventually('a new leader after release', () => leaders().length === 1, 2_000);
      assert.ok(Date.now() - started < 2_000, 'no wait for the lease to expire');
      const second = electors.indexOf(leaders()[0]!);
      assert.notEqual(second, first);

      // crash: the leader's connection dies without a release; another waits out the lease, then leads
      let lostAt = 0;
      electors[second]!.onChange((leading) => {
        if (!leading) lostAt = Date.now();
      });
      const crashAt = Date.now();
      await candidates[second]!.client.close();
      await eventually('the crashed leader to step down', () => lostAt > 0, 5_000);
      await eventually(
        'the third candidate to lead',
        () => electors.filter((e, i) => i !== second && e.isLeader()).length === 1,
        10_000,
      );
      const third = electors.findIndex((e, i) => i !== second && e.isLeader());
      assert.ok(Date.now() - crashAt >= 2_500, 'not before the lease expired');
      first = third;

      // loss observed: someone else takes the lease over (by hand here); the leader steps down
      const current = await getLease(client, NS, `plugctl-leader-${RUN}`);
      assert.ok(current !== undefined);
      await replaceLease(client, current, {
        ...current.spec,
        holderIdentity: 'intruder',
        renewTime: microTime(Date.now()),
        leaseDurationSeconds: 60,
      });
      await eventually('the leader to notice', () => !electors[first]!.isLeader(), 3_000);
    } finally {
      for (const c of candidates) c.stop.abort();
      await Promise.all(runs);
      await Promise.all(candidates.map((c) => c.client.close()));
    }
  });

  test("rollout slots: never more holders than the limit; a dead holder's slot expires; a shrunk limit drains", async () => {
    const clients = await Promise.all([0, 1, 2].map(() => openClient()));
    const agents = clients.map(
      (client, i) =>
        new RolloutSlots({
          client,
          namespace: NS,
          identity: `node-${i}`,
          clock: systemClock,
          logger: testLogger(),
          ttlSeconds: 3,
          maxClockSkewMs: 1_000,
        }),
    );
    const held: (HeldSlot | undefined)[] = [];
    try {
      // limit 1: one agent gets it, the others are refused, concurrently
      const attempts = await Promise.all(agents.map((a) => a.acquire(`sshfs-${RUN}`, 1)));
      assert.equal(attempts.filter((s) => s !== undefined).length, 1);
      const winner = attempts.findIndex((s) => s !== undefined);
      held[winner] = attempts[winner];
      // it stays held while renewed (past its TTL)
      await new Promise((resolve) => setTimeout(resolve, 3_500));
      assert.equal(held[winner]?.lost, false);
      assert.equal(await agents[(winner + 1) % 3]!.acquire(`sshfs-${RUN}`, 1), undefined);
      // released: the next agent gets it at once
      await held[winner]!.release();
      const next = (winner + 1) % 3;
      held[next] = await agents[next]!.acquire(`sshfs-${RUN}`, 1);
      assert.ok(held[next] !== undefined);

      // limit 2: a second holder fits, a third does not
      const third = (winner + 2) % 3;
      held[third] = await agents[third]!.acquire(`sshfs-${RUN}`, 2);
      assert.ok(held[third] !== undefined);
      assert.equal(await agents[winner]!.acquire(`sshfs-${RUN}`, 2), undefined);

      // the holder of slot 1 dies (its connection is gone, no release): after the TTL it is free
      const dead = held[third]!.index === 1 ? third : next;
      let lostNoticed = false;
      held[dead]!.onLost(() => (lostNoticed = true));
      await clients[dead]!.close();
      const diedAt = Date.now();
      await eventually(
        "the dead holder's slot to be taken",
        async () => (await agents[winner]!.acquire(`sshfs-${RUN}`, 2)) !== undefined,
        15_000,
      );
      assert.ok(Date.now() - diedAt >= 2_000, 'not before its TTL');
      await eventually('the dead holder to notice it lost its slot', () => lostNoticed, 5_000);

      // a dead holder's Lease stays until taken over; the live ones' are deleted on release below
      const alive = [0, 1, 2].filter((i) => i !== dead);
      for (const i of alive) await agents[i]!.releaseAll();

      // the limit shrinks from 2 to 1 while slot 1 is held: slot 0 is not handed out until slot 1 is free
      const [x, y] = alive as [number, number];
      const zero = await agents[x]!.acquire(`nfs-${RUN}`, 2);
      const one = await agents[y]!.acquire(`nfs-${RUN}`, 2);
      assert.deepEqual([zero?.index, one?.index], [0, 1]);
      await zero!.release();
      assert.equal(
        await agents[x]!.acquire(`nfs-${RUN}`, 1),
        undefined,
        'slot 1 still disrupts: no new holder',
      );
      await one!.release();
      const after = await agents[x]!.acquire(`nfs-${RUN}`, 1);
      assert.equal(after?.index, 0);
      await after!.release();
    } finally {
      await Promise.all(agents.map((a) => a.releaseAll()));
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    }
    const remaining = await kube().client.request<KubeList>({
      method: 'GET',
      path: collectionPath(LEASES, NS),
      query: { labelSelector: `${SLOT_PLUGIN_LABEL}=sshfs-${RUN}` },
    });
    assert.ok(
      remaining.items.length <= 1,
      "released slots leave no Lease behind (only the dead agent's may remain)",
    );
  });

  test('events: a repeated event becomes one Event with a series; the rate limit drops a flood', async () => {
    const { client } = kube();
    const created = await client.request<KubeObject>({
      method: 'POST',
      path: collectionPath(DOCKER_PLUGINS),
      body: {
        apiVersion: 'plugctl.dev/v1alpha1',
        kind: 'DockerPlugin',
        metadata: { name: `evented-${RUN}` },
        spec: { remote: 'a' },
      },
    });
    const regarding = {
      apiVersion: 'plugctl.dev/v1alpha1',
      kind: 'DockerPlugin',
      name: `evented-${RUN}`,
      uid: created.metadata.uid!,
    };
    const recorder = new EventRecorder({
      client,
      reportingController: 'plugctl.dev/agent',
      reportingInstance: 'node-a',
      clock: systemClock,
      logger: testLogger(),
      burst: 4,
      perMinute: 1,
      seriesFlushMs: 200,
    });
    for (let i = 0; i < 5; i++) {
      recorder.record({
        regarding,
        type: 'Warning',
        reason: 'PullFailed',
        action: 'Pull',
        note: 'registry unreachable',
      });
    }
    recorder.record({
      regarding,
      type: 'Normal',
      reason: 'Pulled',
      action: 'Pull',
      note: 'pulled test/a:1.0',
    });
    await recorder.close();

    type Ev = KubeObject & {
      reason: string;
      reportingController: string;
      reportingInstance: string;
      regarding: { name: string; uid: string };
      series?: { count: number };
    };
    const list = await client.request<KubeList<Ev>>({
      method: 'GET',
      path: collectionPath(EVENTS, 'kube-system'),
    });
    const mine = list.items.filter((e) => e.regarding.name === `evented-${RUN}`);
    assert.deepEqual(mine.map((e) => e.reason).sort(), ['PullFailed', 'Pulled']);
    const failed = mine.find((e) => e.reason === 'PullFailed')!;
    assert.equal(failed.series?.count, 5);
    assert.equal(failed.reportingController, 'plugctl.dev/agent');
    assert.equal(failed.reportingInstance, 'node-a');
    assert.equal(failed.regarding.uid, regarding.uid);

    // a flood of distinct events: the burst left (4 - 2 creates - 1 series update = 1) passes, the rest is dropped
    for (let i = 0; i < 10; i++) {
      recorder.record({
        regarding,
        type: 'Warning',
        reason: 'EnableFailed',
        action: 'Enable',
        note: `attempt ${i}`,
      });
    }
    await recorder.close();
    const after = await client.request<KubeList<Ev>>({
      method: 'GET',
      path: collectionPath(EVENTS, 'kube-system'),
    });
    const flood = after.items.filter(
      (e) => e.reason === 'EnableFailed' && e.regarding.name === `evented-${RUN}`,
    );
    assert.equal(flood.length, 1);
    assert.equal(recorder.stats.dropped, 9);
    assert.equal(recorder.stats.failed, 0);
  });
});
