// The shipped install on a real API server (1.20, with kubectl 1.20's own validation on): crds/ and the
// kustomize base in manifests/ pass `kubectl apply --dry-run=server` and then apply for real; and the
// shipped RBAC is exactly enough: with a token of the shipped ServiceAccount, every call the agent and
// the elected leader make succeeds (a forbidden one would fail the test), and what they must not do
// (Secrets outside their namespace, changing DockerPlugin specs, Nodes) is refused.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { REMOVED_REASON } from '../../../controller/api/status.ts';
import { serverSideApply } from '../../../controller/kube/apply.ts';
import { KubeClient } from '../../../controller/kube/client.ts';
import { loadClusterConnection } from '../../../controller/kube/config.ts';
import { KubeError, hasStatus } from '../../../controller/kube/errors.ts';
import { EventRecorder } from '../../../controller/kube/events.ts';
import { FINALIZER, startFleetLeader } from '../../../controller/kube/fleet.ts';
import { Informer } from '../../../controller/kube/informer.ts';
import {
  DOCKER_PLUGINS,
  DOCKER_PLUGIN_NODES,
  NODES,
  SECRETS,
  collectionPath,
  objectPath,
} from '../../../controller/kube/resources.ts';
import type { KubeObject } from '../../../controller/kube/resources.ts';
import { countNodes } from '../../../controller/kube/rollout-gate.ts';
import { RolloutSlots } from '../../../controller/kube/slots.ts';
import { systemClock } from '../../../controller/runtime/clock.ts';
import {
  CRDS_DIR,
  describeKube,
  eventually,
  installCrds,
  kubectl,
  testLogger,
  useKube,
  writeKubeconfig,
} from '../../kube/harness.ts';

const MANIFESTS = fileURLToPath(new URL('../../../manifests/', import.meta.url));
const NS = 'plugctl-system';
const SA = `system:serviceaccount:${NS}:plugctl`;

interface PluginObject extends KubeObject {
  status?: { ready?: string; conditions?: { type: string; status: string }[] };
}

async function getPlugin(client: KubeClient, name: string): Promise<PluginObject | undefined> {
  try {
    return await client.request<PluginObject>({ method: 'GET', path: objectPath(DOCKER_PLUGINS, name) });
  } catch (error) {
    if (hasStatus(error, 404)) return undefined;
    throw error;
  }
}

async function forbidden(call: Promise<unknown>): Promise<void> {
  await assert.rejects(
    call,
    (error: unknown) => error instanceof KubeError && error.code === 'KUBE_FORBIDDEN',
  );
}

describeKube(
  'manifests: the CRDs and the kustomize base install; the shipped RBAC is what the agent needs',
  () => {
    const kube = useKube();
    let saKubeconfig = '';
    let dir = '';

    test('the generated CRDs use no CEL and pass a server-side dry run with validation', async () => {
      for (const file of await readdir(CRDS_DIR)) {
        const text = await readFile(join(CRDS_DIR, file), 'utf8');
        assert.doesNotMatch(text, /x-kubernetes-validations/, `${file} must not use CEL (1.20 rejects it)`);
      }
      const dry = await kubectl(['apply', '--dry-run=server', '--validate=true', '-f', CRDS_DIR]);
      assert.match(dry.stdout, /dockerplugins\.plugctl\.dev created \(server dry run\)/);
      assert.match(dry.stdout, /dockerpluginnodes\.plugctl\.dev created \(server dry run\)/);
      await installCrds();
    });

    test('kubectl apply -k manifests/: a server-side dry run with validation, then for real, then unchanged', async () => {
      // a dry run persists nothing, so the namespaced objects need their namespace to exist already
      await kubectl(['apply', '-f', join(MANIFESTS, 'namespace.yaml')]);
      const dry = await kubectl(['apply', '--dry-run=server', '--validate=true', '-k', MANIFESTS]);
      for (const object of [
        'serviceaccount/plugctl',
        'clusterrole.rbac.authorization.k8s.io/plugctl-agent',
        'clusterrolebinding.rbac.authorization.k8s.io/plugctl-agent',
        'role.rbac.authorization.k8s.io/plugctl-agent',
        'rolebinding.rbac.authorization.k8s.io/plugctl-agent',
        'daemonset.apps/plugctl-agent',
      ])
        assert.match(dry.stdout, new RegExp(`${object.replace(/\./g, '\\.')} created \\(server dry run\\)`));
      await kubectl(['apply', '-k', MANIFESTS]);
      const again = await kubectl(['apply', '-k', MANIFESTS]);
      assert.doesNotMatch(again.stdout, /configured|created/, again.stdout);

      const ds = JSON.parse(
        (await kubectl(['-n', NS, 'get', 'daemonset', 'plugctl-agent', '-o', 'json'])).stdout,
      ) as {
        spec: {
          updateStrategy: { type: string };
          template: {
            spec: {
              serviceAccountName: string;
              tolerations: { operator: string; key?: string }[];
              containers: {
                image: string;
                env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
                livenessProbe: { httpGet: { path: string } };
                readinessProbe: { httpGet: { path: string } };
                resources: { requests: { memory: string }; limits: { memory: string } };
                ports: { name: string }[];
              }[];
            };
          };
        };
      };
      const pod = ds.spec.template.spec;
      const [agent] = pod.containers;
      assert.equal(ds.spec.updateStrategy.type, 'RollingUpdate');
      assert.equal(pod.serviceAccountName, 'plugctl');
      assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }], 'tolerates every taint');
      assert.equal(agent?.image, 'plugctl:0.1.0');
      const fieldOf = (name: string) =>
        agent?.env.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
      assert.equal(fieldOf('NODE_NAME'), 'spec.nodeName');
      assert.equal(fieldOf('POD_NAMESPACE'), 'metadata.namespace');
      assert.equal(agent?.livenessProbe.httpGet.path, '/healthz');
      assert.equal(agent?.readinessProbe.httpGet.path, '/readyz');
      assert.deepEqual(
        agent?.ports.map((p) => p.name),
        ['metrics'],
      );
      assert.equal(agent?.resources.requests.memory, '96Mi');
      assert.equal(agent?.resources.limits.memory, '384Mi');

      // a token of the shipped ServiceAccount (TokenRequest: there is no token controller here)
      const { client } = kube();
      const token = await client.request<{ status: { token: string } }>({
        method: 'POST',
        path: `/api/v1/namespaces/${NS}/serviceaccounts/plugctl/token`,
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 3600 },
        },
      });
      dir = await mkdtemp(join(tmpdir(), 'plugctl-manifests-'));
      saKubeconfig = await writeKubeconfig(dir, { token: token.status.token });
      const whoami = await kubectl(['auth', 'can-i', 'list', 'dockerplugins.plugctl.dev'], {
        kubeconfig: saKubeconfig,
        check: false,
      });
      assert.equal(whoami.stdout.trim(), 'yes');
    });

    test('kubectl auth can-i: what the ServiceAccount may and may not do', async () => {
      const allowed: string[][] = [
        ['watch', 'dockerplugins.plugctl.dev'],
        ['patch', 'dockerplugins.plugctl.dev', '--subresource=status'],
        ['patch', 'dockerplugins.plugctl.dev'],
        ['create', 'dockerpluginnodes.plugctl.dev'],
        ['patch', 'dockerpluginnodes.plugctl.dev', '--subresource=status'],
        ['watch', 'nodes'],
        ['create', 'events.events.k8s.io', '-n', 'kube-system'],
        ['get', 'secrets', '-n', NS],
        ['list', 'secrets', '-n', NS],
        ['watch', 'secrets', '-n', NS],
        ['update', 'leases.coordination.k8s.io', '-n', NS],
        ['delete', 'leases.coordination.k8s.io', '-n', NS],
        ['delete', 'dockerpluginnodes.plugctl.dev'],
        ['list', 'pods', '-n', NS],
      ];
      const refused: string[][] = [
        ['get', 'secrets', '-n', 'default'],
        ['get', 'secrets', '-n', 'kube-system'],
        ['list', 'secrets', '-n', 'default'],
        ['watch', 'secrets', '-n', 'default'],
        ['create', 'secrets', '-n', NS],
        ['update', 'secrets', '-n', NS],
        ['update', 'dockerplugins.plugctl.dev'],
        ['delete', 'dockerplugins.plugctl.dev'],
        ['create', 'dockerplugins.plugctl.dev'],
        ['patch', 'nodes'],
        ['list', 'pods', '-n', 'default'],
        ['get', 'pods', '-n', NS],
        ['update', 'leases.coordination.k8s.io', '-n', 'default'],
        ['create', 'pods', '-n', NS],
        ['create', 'events', '-n', 'kube-system'], // only events.k8s.io/v1
      ];
      for (const args of allowed) {
        const r = await kubectl(['auth', 'can-i', ...args, `--as=${SA}`], { check: false });
        assert.equal(r.stdout.trim(), 'yes', `${args.join(' ')} must be allowed`);
      }
      for (const args of refused) {
        const r = await kubectl(['auth', 'can-i', ...args, `--as=${SA}`], { check: false });
        assert.equal(r.stdout.trim(), 'no', `${args.join(' ')} must be refused`);
      }
    });

    test("the agent's and the leader's calls succeed with the ServiceAccount's token; Secrets elsewhere are refused", async () => {
      const { client: admin } = kube();
      const connection = await loadClusterConnection({
        kubeconfig: saKubeconfig,
        env: {},
        clock: systemClock,
      });
      const sa = await KubeClient.open(connection);
      const logger = testLogger();
      const node = 'rbac-node';
      let fleet: ReturnType<typeof startFleetLeader> | undefined;
      const informers: Informer[] = [];
      try {
        await admin.request({
          method: 'POST',
          path: collectionPath(NODES),
          body: { apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { rbac: 'yes' } } },
        });
        await admin.request({
          method: 'POST',
          path: collectionPath(SECRETS, NS),
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: 'pull' },
            type: 'kubernetes.io/dockerconfigjson',
            data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
          },
        });
        await admin.request({
          method: 'POST',
          path: collectionPath(SECRETS, 'default'),
          body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'elsewhere' }, stringData: { a: 'b' } },
        });

        // the agent: its own Node by field selector, the DockerPlugins, a pull Secret in its namespace
        const own = new Informer({
          client: sa,
          type: NODES,
          fieldSelector: `metadata.name=${node}`,
          clock: systemClock,
          logger,
        });
        const plugins = new Informer({ client: sa, type: DOCKER_PLUGINS, clock: systemClock, logger });
        informers.push(own, plugins);
        await Promise.all([own.start(), plugins.start()]);
        assert.equal(own.get(node)?.metadata.labels?.['rbac'], 'yes');
        await sa.request({ method: 'GET', path: objectPath(SECRETS, 'pull', NS) });
        await forbidden(sa.request({ method: 'GET', path: objectPath(SECRETS, 'elsewhere', 'default') }));
        await forbidden(sa.request({ method: 'GET', path: collectionPath(SECRETS, 'default') }));
        // the Secrets that settings read (secretKeyRef): list+watch in its namespace only
        const secrets = new Informer({
          client: sa,
          type: SECRETS,
          namespace: NS,
          clock: systemClock,
          logger,
        });
        informers.push(secrets);
        await secrets.start();
        assert.ok(secrets.get(`${NS}/pull`) !== undefined);

        // the agent's report: server-side apply creates the DockerPluginNode, then its status
        const fieldManager = `plugctl-agent/${node}`;
        await serverSideApply(
          sa,
          DOCKER_PLUGIN_NODES,
          { metadata: { name: node } },
          { fieldManager, force: true },
        );
        const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
        await serverSideApply(
          sa,
          DOCKER_PLUGIN_NODES,
          {
            metadata: { name: node },
            status: {
              declared: 1,
              ready: 1,
              plugins: [
                {
                  name: 'rbac-p',
                  observedGeneration: 1,
                  enabled: true,
                  conditions: [
                    { type: 'Ready', status: 'True', reason: 'Converged', lastTransitionTime: now },
                  ],
                },
              ],
            },
          },
          { fieldManager, subresource: 'status', force: true },
        );
        await sa.request({ method: 'GET', path: objectPath(DOCKER_PLUGIN_NODES, node) });

        // a rollout slot and an Event, as the agent takes them
        const slots = new RolloutSlots({
          client: sa,
          namespace: NS,
          identity: node,
          clock: systemClock,
          logger,
        });
        const slot = await slots.acquire('rbac-p', 1);
        assert.ok(slot !== undefined);
        await slot.release();
        // a percentage of maxUnavailable counts the selected Nodes (metadata only)
        assert.equal(await countNodes(sa, 'rbac=yes'), 1);
        const events = new EventRecorder({
          client: sa,
          reportingController: 'plugctl.dev/agent',
          reportingInstance: node,
          clock: systemClock,
          logger,
          seriesFlushMs: 100,
        });
        const regarding = { apiVersion: 'plugctl.dev/v1alpha1', kind: 'DockerPlugin', name: 'rbac-p' };
        events.record({ regarding, type: 'Normal', reason: 'Pulled', action: 'Pull', note: 'pulled' });
        events.record({ regarding, type: 'Normal', reason: 'Pulled', action: 'Pull', note: 'pulled' });
        await events.close();
        assert.deepEqual(events.stats, { created: 1, seriesUpdates: 1, dropped: 0, failed: 0 });

        // the leader: its Lease, the heartbeat, every cache, the summary, the finalizer (added, released)
        await kubectl(['apply', '-f', '-'], {
          input: JSON.stringify({
            apiVersion: 'plugctl.dev/v1alpha1',
            kind: 'DockerPlugin',
            metadata: { name: 'rbac-p' },
            spec: { remote: 'vieux/sshfs:1.2', nodeSelector: { matchLabels: { rbac: 'yes' } } },
          }),
        });
        fleet = startFleetLeader({
          client: sa,
          namespace: NS,
          identity: node,
          logger,
          graceMs: 60_000,
          leaseDurationSeconds: 3,
          renewDeadlineMs: 2_000,
          retryPeriodMs: 200,
          heartbeat: { renewMs: 500 },
        });
        await eventually('the summary and the finalizer, written with the ServiceAccount', async () => {
          const p = await getPlugin(admin, 'rbac-p');
          return p?.status?.ready === '1/1' && (p.metadata.finalizers ?? []).includes(FINALIZER);
        });
        await kubectl(['delete', 'dockerplugin', 'rbac-p', '--wait=false']);
        await serverSideApply(
          sa,
          DOCKER_PLUGIN_NODES,
          {
            metadata: { name: node },
            status: {
              declared: 0,
              ready: 0,
              plugins: [
                {
                  name: 'rbac-p',
                  observedGeneration: 1,
                  enabled: false,
                  conditions: [
                    { type: 'Ready', status: 'False', reason: REMOVED_REASON, lastTransitionTime: now },
                  ],
                },
              ],
            },
          },
          { fieldManager, subresource: 'status', force: true },
        );
        await eventually(
          'the finalizer released with the ServiceAccount',
          async () => (await getPlugin(admin, 'rbac-p')) === undefined,
        );
        assert.equal(fleet.stats.failures, 0, 'no call of the leader failed');
        assert.ok(fleet.stats.statusWrites >= 1);
        assert.equal(fleet.stats.finalizersRemoved, 1);

        // not allowed: changing a DockerPlugin's spec, a Node, a Lease elsewhere
        await forbidden(
          sa.request({
            method: 'PATCH',
            path: objectPath(NODES, node),
            contentType: 'application/merge-patch+json',
            body: { metadata: { labels: { rbac: 'no' } } },
          }),
        );
        await forbidden(sa.request({ method: 'GET', path: '/api/v1/namespaces/default/pods' }));
      } finally {
        await fleet?.stop();
        await Promise.all(informers.map((i) => i.close()));
        await sa.close();
        if (dir !== '') await rm(dir, { recursive: true, force: true });
      }
    });
  },
);
