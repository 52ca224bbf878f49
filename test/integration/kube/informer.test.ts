// The list+watch cache against a real API server, including the failures it exists for: a restarted
// API server, a watch that silently stops delivering (a proxy that black-holes the connection), and a
// watch whose resourceVersion expired (410 Gone). After each, the cache must equal the server's state,
// and it must never have been emptied meanwhile.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { serverSideApply } from '../../../controller/kube/apply.ts';
import type { KubeClient } from '../../../controller/kube/client.ts';
import { Informer } from '../../../controller/kube/informer.ts';
import type { InformerOptions } from '../../../controller/kube/informer.ts';
import { DOCKER_PLUGINS, NODES, collectionPath, objectPath } from '../../../controller/kube/resources.ts';
import type { KubeList, KubeObject } from '../../../controller/kube/resources.ts';
import { systemClock } from '../../../controller/runtime/clock.ts';
import {
  describeKube,
  eventually,
  killApiserver,
  openClient,
  startApiserver,
  testLogger,
  useKube,
  writeKubeconfig,
} from '../../kube/harness.ts';
import { startTcpProxy } from '../../kube/proxy.ts';

const plugin = (name: string, labels: Record<string, string> = {}, remote = `test/${name}:1.0`) => ({
  apiVersion: 'plugctl.dev/v1alpha1',
  kind: 'DockerPlugin',
  metadata: { name, labels },
  spec: { remote },
});

async function createPlugin(
  client: KubeClient,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await client.request({ method: 'POST', path: collectionPath(DOCKER_PLUGINS), body: plugin(name, labels) });
}

async function deletePlugin(client: KubeClient, name: string): Promise<void> {
  await client.request({ method: 'DELETE', path: objectPath(DOCKER_PLUGINS, name) });
}

async function setRemote(client: KubeClient, name: string, remote: string): Promise<void> {
  await serverSideApply(
    client,
    DOCKER_PLUGINS,
    { metadata: { name }, spec: { remote } },
    { fieldManager: 'test', force: true },
  );
}

/** name -> spec.remote on the server. */
async function serverState(client: KubeClient, labelSelector?: string): Promise<Map<string, string>> {
  const list = await client.request<KubeList>({
    method: 'GET',
    path: collectionPath(DOCKER_PLUGINS),
    query: { labelSelector },
  });
  return new Map(
    list.items.map((item) => [item.metadata.name, String((item['spec'] as { remote: string }).remote)]),
  );
}

function cacheState(informer: Informer): Map<string, string> {
  return new Map(
    informer
      .values()
      .map((item) => [item.metadata.name, String((item['spec'] as { remote: string }).remote)]),
  );
}

async function deleteAll(client: KubeClient): Promise<void> {
  await client.request({ method: 'DELETE', path: collectionPath(DOCKER_PLUGINS) });
}

describeKube('informer: list+watch that does not trust the watch', () => {
  const kube = useKube({ crds: true });
  const informers: Informer[] = [];
  let dir = '';

  const informer = (
    options: Partial<InformerOptions<KubeObject>> & { client?: KubeClient } = {},
  ): Informer => {
    const created = new Informer({
      client: kube().client,
      type: DOCKER_PLUGINS,
      clock: systemClock,
      logger: testLogger(),
      ...options,
    });
    informers.push(created);
    return created;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-informer-'));
  });
  after(async () => {
    await Promise.all(informers.map((i) => i.close()));
    await rm(dir, { recursive: true, force: true });
  });

  test('synced only after the first complete list (in pages); then every change arrives as changed keys', async () => {
    const { client } = kube();
    await deleteAll(client);
    for (let i = 0; i < 7; i++) await createPlugin(client, `p${i}`);
    const cache = informer({ pageSize: 3 });
    assert.equal(cache.synced, false);
    const seen = new Set<string>();
    cache.onChange((keys) => keys.forEach((k) => seen.add(k)));
    await cache.start();
    assert.equal(cache.synced, true);
    assert.equal(cache.values().length, 7);
    assert.deepEqual(cacheState(cache), await serverState(client));
    assert.equal(cache.get('p0')?.metadata.managedFields, undefined, 'managedFields are not kept');

    seen.clear();
    await createPlugin(client, 'added');
    await setRemote(client, 'p1', 'test/p1:2.0');
    await deletePlugin(client, 'p2');
    await eventually('the three changes', () => seen.has('added') && seen.has('p1') && seen.has('p2'));
    assert.deepEqual(cacheState(cache), await serverState(client));
    await cache.close();
  });

  test('label and field selectors: only the selected objects are cached', async () => {
    const { client } = kube();
    await deleteAll(client);
    await createPlugin(client, 'storage', { role: 'storage' });
    await createPlugin(client, 'web', { role: 'web' });
    const labelled = informer({ labelSelector: 'role=storage' });
    await labelled.start();
    assert.deepEqual(labelled.keys(), ['storage']);

    for (const name of ['node-a', 'node-b']) {
      await client.request({
        method: 'POST',
        path: collectionPath(NODES),
        body: { apiVersion: 'v1', kind: 'Node', metadata: { name } },
      });
    }
    const own = informer({ type: NODES, fieldSelector: 'metadata.name=node-a' });
    await own.start();
    assert.deepEqual(own.keys(), ['node-a']);
    const changed: string[] = [];
    own.onChange((keys) => changed.push(...keys));
    await serverSideApply(
      client,
      NODES,
      { metadata: { name: 'node-b', labels: { role: 'x' } } },
      { fieldManager: 'test' },
    );
    await serverSideApply(
      client,
      NODES,
      { metadata: { name: 'node-a', labels: { role: 'storage' } } },
      { fieldManager: 'test' },
    );
    await eventually(
      "node-a's label change",
      () => own.get('node-a')?.metadata.labels?.['role'] === 'storage',
    );
    assert.deepEqual(changed, ['node-a'], 'a label change on another node is not seen');
    await labelled.close();
    await own.close();
  });

  test('a periodic relist that finds nothing new announces nothing', async () => {
    const { client } = kube();
    await deleteAll(client);
    await createPlugin(client, 'steady');
    const cache = informer({ relistMs: 300 });
    await cache.start();
    let announced = 0;
    cache.onChange(() => announced++);
    await eventually('three relists', () => cache.stats.lists >= 4);
    assert.equal(announced, 0);
    assert.deepEqual(cacheState(cache), await serverState(client));
    await cache.close();
  });

  test('the API server restarted: the cache is kept meanwhile, then catches up', async () => {
    const { client } = kube();
    await deleteAll(client);
    for (const name of ['keep', 'gone-later']) await createPlugin(client, name);
    const cache = informer({ backoff: { initialMs: 100, maxMs: 1_000 } });
    await cache.start();
    await killApiserver();
    await eventually('a failed reconnect', () => cache.stats.failures >= 1);
    assert.equal(cache.synced, true);
    assert.deepEqual(
      [...cacheState(cache).keys()].sort(),
      ['gone-later', 'keep'],
      'nothing vanished while the server was away',
    );
    await startApiserver();
    const fresh = await openClient();
    try {
      await createPlugin(fresh, 'new-after-restart');
      await deletePlugin(fresh, 'gone-later');
      await eventually('the cache to equal the server', async () => {
        const server = await serverState(fresh);
        return JSON.stringify([...cacheState(cache)].sort()) === JSON.stringify([...server].sort());
      });
    } finally {
      await fresh.close();
    }
    await cache.close();
  });

  test('a watch that silently stops delivering is detected and restarted on a new connection', async () => {
    const { client, server } = kube();
    await deleteAll(client);
    await createPlugin(client, 'before');
    const proxy = await startTcpProxy(Number(new URL(server).port));
    const viaProxy = await openClient(
      await writeKubeconfig(dir, { server: `https://127.0.0.1:${proxy.port}` }),
    );
    try {
      // The server would end each watch after 5 min: only the watchdog can notice the dead one.
      const cache = informer({ client: viaProxy, silenceMs: 1_500, watchTimeoutSeconds: 300 });
      await cache.start();
      await eventually('the watch to be open', () => viaProxy.stats.streams >= 1);
      const connectionsBefore = proxy.accepted;
      proxy.blackhole();
      await createPlugin(client, 'during-silence');
      await eventually('the silent watch to be restarted', () => cache.stats.silenceRestarts >= 1, 10_000);
      await eventually(
        'the object created while the watch was silent',
        () => cache.get('during-silence') !== undefined,
        10_000,
      );
      assert.ok(proxy.accepted > connectionsBefore, 'the restarted watch came over a new connection');
      assert.deepEqual(cacheState(cache), await serverState(client));
      await cache.close();
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });

  test('410 Gone (the resourceVersion expired while the watch was dead): relists and ends equal to the server', async () => {
    const { client, server } = kube();
    await deleteAll(client);
    for (let i = 0; i < 5; i++) await createPlugin(client, `g${i}`);
    const proxy = await startTcpProxy(Number(new URL(server).port));
    const viaProxy = await openClient(
      await writeKubeconfig(dir, { server: `https://127.0.0.1:${proxy.port}` }),
    );
    try {
      const cache = informer({
        client: viaProxy,
        silenceMs: 3_000,
        watchTimeoutSeconds: 300,
        backoff: { initialMs: 100, maxMs: 1_000 },
      });
      await cache.start();
      await eventually('the watch to be open', () => viaProxy.stats.streams >= 1);
      proxy.blackhole();
      for (let i = 0; i < 20; i++) await setRemote(client, `g${i % 5}`, `test/g:${i}`);
      await deletePlugin(client, 'g4');
      // A restarted API server's watch cache starts at the current resourceVersion: resuming from the
      // informer's older one is refused with 410 Gone (as after etcd compaction, only sooner).
      await killApiserver();
      await startApiserver();
      const fresh = await openClient();
      try {
        await createPlugin(fresh, 'g-new');
        await eventually('a relist forced by 410 Gone', () => cache.stats.goneRelists >= 1, 20_000);
        await eventually('the cache to equal the server', async () => {
          const serverNow = await serverState(fresh);
          return JSON.stringify([...cacheState(cache)].sort()) === JSON.stringify([...serverNow].sort());
        });
      } finally {
        await fresh.close();
      }
      await cache.close();
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });
});
