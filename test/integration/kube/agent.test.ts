// The node agent of `plugctl run --kube`, assembled in-process from real parts (cli/run-kube.ts's
// createAgent, through embedded-agent.ts): a real kube-apiserver (test/env/kube-env.sh) with the
// CRDs, the embedded store on temp roots running plugins with runc, and real registries (one
// anonymous, one with htpasswd behind a pull Secret) holding a fixture plugin that plugctl itself
// built and pushed. Every check reads the world: what the store has installed, and the node's
// DockerPluginNode on the API server.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { NodePluginStatus } from '../../../controller/api/status.ts';
import {
  DOCKER_PLUGIN_NODES,
  DOCKER_PLUGINS,
  EVENTS,
  NODES,
  SECRETS,
  collectionPath,
  objectPath,
} from '../../../controller/kube/resources.ts';
import type { KubeObject } from '../../../controller/kube/resources.ts';
import { RegistryClient } from '../../../controller/registry/client.ts';
import { Credentials } from '../../../controller/registry/credentials.ts';
import { openEmbeddedStore } from '../../../controller/store/embedded/store.ts';
import type { EmbeddedStore } from '../../../controller/store/embedded/store.ts';
import type { InstalledPlugin } from '../../../controller/store/store.ts';
import { buildPlugind, makeVolContext } from '../../conformance/fixtures.ts';
import { idleRuntime } from '../../idle-runtime.ts';
import {
  capturingLogger,
  eventually,
  killApiserver,
  kubectl,
  startApiserver,
  useKube,
  writeKubeconfig,
} from '../../kube/harness.ts';
import { startTcpProxy } from '../../kube/proxy.ts';
import type { TcpProxy } from '../../kube/proxy.ts';
import { KUBE, REGISTRY, RUNC, describeWith } from '../../prerequisites.ts';
import { startRegistry } from '../registry-harness.ts';
import type { RunningRegistry } from '../registry-harness.ts';
import { startEmbeddedAgent } from './embedded-agent.ts';
import type { EmbeddedAgent } from './embedded-agent.ts';

const OPEN_PORT = 5286;
const PRIVATE_PORT = 5287;
const NODE = 'node-a';
/** a second agent, on its own embedded store root, talking to the API server directly */
const NODE_B = 'node-b';
const NAMESPACE = 'default';
const USER = 'puller';
const PASSWORD = 'pr1vate-pa55word';
/** the agent's watchdog restarts a watch silent for this long */
const SILENCE_MS = 4000;
const PULL_MS = 90_000;

const { logger, lines: logLines } = capturingLogger();

/** The fields of an events.k8s.io/v1 Event a test reads. */
interface AgentEvent extends KubeObject {
  type?: string;
  reason?: string;
  action?: string;
  note?: string;
  eventTime?: string;
  reportingController?: string;
  reportingInstance?: string;
  regarding?: { kind?: string; name?: string; uid?: string };
  series?: { count?: number };
}

function dockerPlugin(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'plugctl.dev/v1alpha1',
    kind: 'DockerPlugin',
    metadata: { name },
    spec,
  });
}

describeWith(
  'node agent against a real API server',
  { needs: [...KUBE, ...REGISTRY, ...RUNC], concurrency: false },
  () => {
    const kube = useKube({ crds: true });
    let work: string;
    let open: RunningRegistry;
    let privateRegistry: RunningRegistry;
    let proxy: TcpProxy;
    let agentA: EmbeddedAgent;
    let agentB: EmbeddedAgent;
    let remote: string;

    function startAgent(nodeName: string, kubeconfig: string): Promise<EmbeddedAgent> {
      return startEmbeddedAgent({
        nodeName,
        kubeconfig,
        namespace: NAMESPACE,
        work,
        logger,
        pullSecrets: true,
        silenceMs: SILENCE_MS,
      });
    }

    async function nodeStatus(
      node = NODE,
    ): Promise<{ declared?: number; ready?: number; plugins: NodePluginStatus[] }> {
      const object = await kube()
        .client.request<
          KubeObject & { status?: { declared?: number; ready?: number; plugins?: NodePluginStatus[] } }
        >({
          method: 'GET',
          path: objectPath(DOCKER_PLUGIN_NODES, node),
        })
        .catch(() => undefined);
      return { ...object?.status, plugins: object?.status?.plugins ?? [] };
    }

    /** eventually() for the DockerPluginNode: on a timeout, says what it held and what the sink logged. */
    async function statusEventually(
      what: string,
      check: () => Promise<boolean>,
      timeoutMs = 60_000,
    ): Promise<void> {
      try {
        await eventually(what, check, timeoutMs);
      } catch (error) {
        const held = JSON.stringify(await nodeStatus());
        const sink = logLines
          .filter((l) => l.includes('dockerpluginnode'))
          .slice(-5)
          .join('');
        throw new Error(`${(error as Error).message}\nDockerPluginNode status: ${held}\nsink log: ${sink}`, {
          cause: error,
        });
      }
    }

    async function entry(name: string, node = NODE): Promise<NodePluginStatus | undefined> {
      return (await nodeStatus(node)).plugins.find((p) => p.name === name);
    }

    function condition(
      e: NodePluginStatus | undefined,
      type: string,
    ): { status: string; reason: string } | undefined {
      return e?.conditions?.find((c) => c.type === type);
    }

    async function installed(name: string, store = agentA.store): Promise<InstalledPlugin | undefined> {
      return (await store.list()).find((p) => p.name === name);
    }

    /** The agents' Events (events.k8s.io/v1) regarding DockerPlugin `name`, oldest first. */
    async function agentEvents(name: string): Promise<AgentEvent[]> {
      const list = await kube().client.request<{ items: AgentEvent[] }>({
        method: 'GET',
        path: collectionPath(EVENTS, 'kube-system'),
      });
      return list.items
        .filter(
          (e) =>
            e.regarding?.kind === 'DockerPlugin' &&
            e.regarding.name === name &&
            e.reportingController === 'plugctl.dev/agent',
        )
        .sort((a, b) => (a.eventTime ?? '').localeCompare(b.eventTime ?? ''));
    }

    async function uidOf(name: string): Promise<string | undefined> {
      const object = await kube().client.request<KubeObject>({
        method: 'GET',
        path: objectPath(DOCKER_PLUGINS, name),
      });
      return object.metadata.uid;
    }

    async function generation(name: string): Promise<number> {
      const got = await kubectl(['get', 'dockerplugin', name, '-o', 'jsonpath={.metadata.generation}']);
      return Number(got.stdout);
    }

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'plugctl-kube-agent-'));
      open = await startRegistry(OPEN_PORT);
      privateRegistry = await startRegistry(PRIVATE_PORT, { kind: 'htpasswd', users: { [USER]: PASSWORD } });
      remote = `${open.host}/test/vol:1.0`;
      // The fixture is built by plugctl itself and pushed to both registries.
      const plugind = await buildPlugind(join(work, 'plugind'));
      const context = await makeVolContext(join(work, 'ctx'), plugind, '1.0');
      const pusher = new RegistryClient({
        credentials: async (host) =>
          host === privateRegistry.host
            ? new Credentials({ serverAddress: host, username: USER, password: PASSWORD })
            : undefined,
      });
      let builder: EmbeddedStore | undefined;
      try {
        builder = await openEmbeddedStore({
          root: join(work, 'builder'),
          runtime: idleRuntime,
          registry: pusher,
          logger,
          runDir: join(work, 'builder-run'),
        });
        await builder.createPlugin(remote, context);
        await builder.pushPlugin(remote);
        const privateRemote = `${privateRegistry.host}/test/vol:1.0`;
        await builder.createPlugin(privateRemote, context);
        await builder.pushPlugin(privateRemote);
      } finally {
        await builder?.close();
        await pusher.close();
      }
      await kube().client.request({
        method: 'POST',
        path: collectionPath(NODES),
        body: { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE, labels: { role: 'storage' } } },
      });
      await kube().client.request({
        method: 'POST',
        path: collectionPath(NODES),
        body: { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE_B, labels: { role: 'storage' } } },
      });
      // The agent talks to the API server through a proxy that can black-hole its connections.
      proxy = await startTcpProxy(Number(new URL(kube().server).port));
      const kubeconfig = await writeKubeconfig(work, { server: `https://127.0.0.1:${proxy.port}` });
      agentA = await startAgent(NODE, kubeconfig);
      agentB = await startAgent(NODE_B, kube().kubeconfig);
    });

    after(async () => {
      await agentA?.stop();
      await agentB?.stop();
      await proxy?.close();
      await open?.stop();
      await privateRegistry?.stop();
      if (work !== undefined) await rm(work, { recursive: true, force: true });
    });

    it('kubectl apply: the plugin is installed and enabled on the node, and its DockerPluginNode says Ready', async () => {
      assert.equal(agentA.agent.ready(), true, 'ready once synced and the first keys are reconciled');
      await kubectl(['apply', '-f', '-'], {
        input: dockerPlugin('vol', {
          remote,
          privileges: [{ name: 'network', value: ['host'] }],
          settings: { env: { GREETING: 'hello' } },
          nodeSelector: { matchLabels: { role: 'storage' } },
        }),
      });
      await eventually(
        'vol enabled on the node',
        async () => (await installed(remote))?.enabled === true,
        PULL_MS,
      );
      const plugin = (await installed(remote))!;
      assert.equal(plugin.settings.env['GREETING'], 'hello');
      await statusEventually(
        'vol Ready in the DockerPluginNode',
        async () => condition(await entry('vol'), 'Ready')?.status === 'True',
      );
      const reported = (await entry('vol'))!;
      assert.equal(reported.pluginID, plugin.id);
      assert.equal(reported.reference, remote);
      assert.match(reported.digest ?? '', /^sha256:[0-9a-f]{64}$/);
      assert.equal(reported.enabled, true);
      assert.equal(reported.observedGeneration, await generation('vol'));
      assert.match(reported.lastAction ?? '', /pull/);
      const status = await nodeStatus();
      assert.equal(status.declared, 1);
      assert.equal(status.ready, 1);
      // owned by the Node, so the cluster deletes it with the node
      const object = await kube().client.request<KubeObject>({
        method: 'GET',
        path: objectPath(DOCKER_PLUGIN_NODES, NODE),
      });
      assert.deepEqual(
        object.metadata.ownerReferences?.map((o) => [o['kind'], o['name']]),
        [['Node', NODE]],
      );
      // the second agent converged its own node and reports it in its own object
      await eventually(
        'vol enabled on node-b',
        async () => (await installed(remote, agentB.store))?.enabled === true,
        PULL_MS,
      );
      await statusEventually(
        'vol Ready on node-b',
        async () => condition(await entry('vol', NODE_B), 'Ready')?.status === 'True',
      );
      assert.equal((await entry('vol', NODE_B))?.pluginID, (await installed(remote, agentB.store))?.id);
      const table = await kubectl(['get', 'dockerpluginnodes']);
      assert.match(table.stdout, new RegExp(`${NODE}\\s+1\\s+1\\s`));
      assert.match(table.stdout, new RegExp(`${NODE_B}\\s+1\\s+1\\s`));
      // each node recorded its install as an Event on the DockerPlugin, with itself as reportingInstance
      const uid = await uidOf('vol');
      for (const node of [NODE, NODE_B]) {
        await eventually(
          `a Pulled event from ${node}`,
          async () =>
            (await agentEvents('vol')).some((e) => e.reportingInstance === node && e.reason === 'Pulled'),
          30_000,
        );
      }
      const pulled = (await agentEvents('vol')).find(
        (e) => e.reportingInstance === NODE && e.reason === 'Pulled',
      )!;
      assert.equal(pulled.type, 'Normal');
      assert.equal(pulled.action, 'Pull');
      assert.equal(pulled.regarding?.uid, uid);
      assert.match(pulled.note ?? '', new RegExp(`^pulled ${remote.replaceAll('.', '\\.')}@sha256:`));
      assert.match(pulled.note ?? '', /set env GREETING/);
      assert.ok(!(pulled.note ?? '').includes('hello'), 'settings named, never valued');
      const described = await kubectl(['describe', 'dockerplugin', 'vol']);
      assert.match(described.stdout, /Pulled/, 'kubectl describe shows the events');
    });

    it('settings edited: the plugin is reconfigured and observedGeneration follows', async () => {
      const before = await generation('vol');
      await kubectl([
        'patch',
        'dockerplugin',
        'vol',
        '--type=merge',
        '-p',
        '{"spec":{"settings":{"env":{"GREETING":"bonjour"}}}}',
      ]);
      const after = await generation('vol');
      assert.equal(after, before + 1);
      await eventually(
        'GREETING=bonjour on the node, enabled again',
        async () => {
          const plugin = await installed(remote);
          return plugin?.settings.env['GREETING'] === 'bonjour' && plugin.enabled;
        },
        30_000,
      );
      await statusEventually('the entry at the new generation', async () => {
        const e = await entry('vol');
        return e?.observedGeneration === after && condition(e, 'Ready')?.status === 'True';
      });
      await eventually(
        'a Reconfigured event from the node',
        async () =>
          (await agentEvents('vol')).some((e) => e.reportingInstance === NODE && e.reason === 'Reconfigured'),
        30_000,
      );
      const reconfigured = (await agentEvents('vol')).find(
        (e) => e.reportingInstance === NODE && e.reason === 'Reconfigured',
      )!;
      assert.equal(reconfigured.action, 'Configure');
      assert.match(reconfigured.note ?? '', /GREETING/);
      assert.ok(!(reconfigured.note ?? '').includes('bonjour'), 'settings named, never valued');
    });

    it('the node relabelled out of the selector: the plugin is removed, and back in: installed again', async () => {
      await kubectl(['label', 'node', NODE, 'role=compute', '--overwrite']);
      await eventually(
        'vol removed from the node',
        async () => (await installed(remote)) === undefined,
        30_000,
      );
      await statusEventually('vol no longer declared for the node', async () => {
        const status = await nodeStatus();
        return status.declared === 0 && status.plugins.every((p) => p.name !== 'vol');
      });
      assert.equal((await installed(remote, agentB.store))?.enabled, true, 'node-b keeps it');
      await kubectl(['label', 'node', NODE, 'role=storage', '--overwrite']);
      await eventually(
        'vol installed again',
        async () => (await installed(remote))?.enabled === true,
        PULL_MS,
      );
      assert.equal((await installed(remote))?.settings.env['GREETING'], 'bonjour');
    });

    it('API server restarted: nothing is pruned meanwhile, and the agent follows changes afterwards', async () => {
      const id = (await installed(remote))?.id;
      assert.ok(id !== undefined);
      await killApiserver();
      try {
        // the watches fail and reconnect with backoff; the cache, and so the plugin, must stay
        for (let i = 0; i < 10; i++) {
          await new Promise((resolve) => setTimeout(resolve, 300));
          const plugin = await installed(remote);
          assert.equal(plugin?.id, id, 'the plugin stays installed while the API server is down');
          assert.equal(plugin?.enabled, true);
        }
      } finally {
        await startApiserver();
      }
      await kubectl([
        'patch',
        'dockerplugin',
        'vol',
        '--type=merge',
        '-p',
        '{"spec":{"settings":{"env":{"GREETING":"again"}}}}',
      ]);
      await eventually(
        'GREETING=again after the restart',
        async () => (await installed(remote))?.settings.env['GREETING'] === 'again',
        60_000,
      );
      assert.equal((await installed(remote))?.id, id, 'never removed and installed again');
      const generationNow = await generation('vol');
      await statusEventually(
        'status written again after the restart',
        async () => (await entry('vol'))?.observedGeneration === generationNow,
        30_000,
      );
    });

    it('a watch that silently stops delivering is detected and restarted; the change it missed is applied', async () => {
      const informer = agentA.agent.source.informers.plugins;
      const restartsBefore = informer.stats.silenceRestarts;
      proxy.blackhole();
      await kubectl([
        'patch',
        'dockerplugin',
        'vol',
        '--type=merge',
        '-p',
        '{"spec":{"settings":{"env":{"GREETING":"silence"}}}}',
      ]);
      await eventually(
        'GREETING=silence through a new watch',
        async () => (await installed(remote))?.settings.env['GREETING'] === 'silence',
        SILENCE_MS * 3 + 20_000,
      );
      assert.ok(
        informer.stats.silenceRestarts > restartsBefore || informer.stats.failures > 0,
        `the watchdog restarted the silent watch (stats ${JSON.stringify(informer.stats)})`,
      );
    });

    it('a private registry through a pull Secret in the agent namespace; the password appears nowhere', async () => {
      const privateRemote = `${privateRegistry.host}/test/vol:1.0`;
      await kubectl([
        'create',
        'secret',
        'docker-registry',
        'regcred',
        '-n',
        NAMESPACE,
        `--docker-server=${privateRegistry.host}`,
        `--docker-username=${USER}`,
        `--docker-password=${PASSWORD}`,
      ]);
      await kubectl(['apply', '-f', '-'], {
        input: dockerPlugin('private', {
          remote: privateRemote,
          alias: 'private-vol:1.0',
          pullSecretName: 'regcred',
          privileges: [{ name: 'network', value: ['host'] }],
        }),
      });
      await eventually(
        'the private plugin enabled',
        async () => (await installed('private-vol:1.0'))?.enabled === true,
        PULL_MS,
      );
      await statusEventually(
        'private Ready in the DockerPluginNode',
        async () => condition(await entry('private'), 'Ready')?.status === 'True',
      );
      const object = await kubectl(['get', 'dockerpluginnode', NODE, '-o', 'json']);
      assert.ok(!object.stdout.includes(PASSWORD), 'the status holds no secret');
      assert.ok(!logLines.join('').includes(PASSWORD), 'the logs hold no secret');
      const encoded = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
      assert.ok(!logLines.join('').includes(encoded));
    });

    it('settings from a Secret (secretKeyRef): waits naming it, configured once it exists, reconfigured when it changes; the value appears nowhere', async () => {
      const values = [1, 2].map(() => `kube-secret-${randomBytes(12).toString('hex')}`);
      await kubectl(['apply', '-f', '-'], {
        input: dockerPlugin('secretive', {
          remote,
          alias: 'secret-vol:1.0',
          privileges: [{ name: 'network', value: ['host'] }],
          settings: {
            env: { DEBUG: { valueFrom: { secretKeyRef: { name: 'plugin-token', key: 'debug' } } } },
          },
          nodeSelector: { matchLabels: { role: 'storage' } },
        }),
      });
      // no Secret yet: nothing installed, and the status names the Secret and the key
      await statusEventually('secretive waiting for its Secret', async () => {
        const ready = condition(await entry('secretive'), 'Ready') as { message?: string } | undefined;
        return /Secret default\/plugin-token .*debug|Secret default\/plugin-token does not exist/.test(
          ready?.message ?? '',
        );
      });
      assert.equal(await installed('secret-vol:1.0'), undefined, 'nothing installed without its secret');
      // the wait is a Warning naming Secret and key; its retries count into that one Event's series
      await eventually(
        'a SECRET_UNAVAILABLE Warning from the node',
        async () =>
          (await agentEvents('secretive')).some(
            (e) => e.reportingInstance === NODE && e.reason === 'SECRET_UNAVAILABLE',
          ),
        30_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 6000)); // a retry or two (backoff from 5 s)
      const secretBody = (value: string): Record<string, unknown> => ({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'plugin-token', namespace: NAMESPACE },
        data: { debug: Buffer.from(value).toString('base64') },
      });
      await kube().client.request({
        method: 'POST',
        path: collectionPath(SECRETS, NAMESPACE),
        body: secretBody(values[0]!),
      });
      const waits = (await agentEvents('secretive')).filter(
        (e) => e.reportingInstance === NODE && e.reason === 'SECRET_UNAVAILABLE',
      );
      assert.equal(waits.length, 1, `one Event for the repeated wait: ${JSON.stringify(waits)}`);
      assert.equal(waits[0]?.type, 'Warning');
      assert.match(waits[0]?.note ?? '', /Secret default\/plugin-token/);
      // the Secret's watch re-queues the plugin reading it
      await eventually(
        'the secret reaches the plugin, enabled',
        async () => {
          const plugin = await installed('secret-vol:1.0');
          return plugin?.settings.env['DEBUG'] === values[0] && plugin?.enabled === true;
        },
        PULL_MS,
      );
      await statusEventually(
        'secretive Ready',
        async () => condition(await entry('secretive'), 'Ready')?.status === 'True',
      );
      await kube().client.request({
        method: 'PUT',
        path: objectPath(SECRETS, 'plugin-token', NAMESPACE),
        body: secretBody(values[1]!),
      });
      await eventually(
        'the changed secret reconfigures the plugin',
        async () => {
          const plugin = await installed('secret-vol:1.0');
          return plugin?.settings.env['DEBUG'] === values[1] && plugin?.enabled === true;
        },
        30_000,
      );
      await eventually(
        'node-b reconfigured too',
        async () => (await installed('secret-vol:1.0', agentB.store))?.settings.env['DEBUG'] === values[1],
        PULL_MS,
      );
      await eventually(
        'a Reconfigured event for the secret change',
        async () =>
          (await agentEvents('secretive')).some(
            (e) => e.reportingInstance === NODE && e.reason === 'Reconfigured' && /DEBUG/.test(e.note ?? ''),
          ),
        30_000,
      );
      // give the status sink its write, then grep everything the agents published or wrote
      await new Promise((resolve) => setTimeout(resolve, 500));
      const places: [string, string][] = [];
      for (const node of [NODE, NODE_B]) {
        places.push([
          `DockerPluginNode ${node}`,
          (await kubectl(['get', 'dockerpluginnode', node, '-o', 'json'])).stdout,
        ]);
      }
      places.push(['Events', (await kubectl(['get', 'events.events.k8s.io', '-A', '-o', 'json'])).stdout]);
      places.push([
        'DockerPlugin',
        (await kubectl(['get', 'dockerplugin', 'secretive', '-o', 'json'])).stdout,
      ]);
      for (const agent of [agentA, agentB]) {
        for (const file of await readdir(agent.stateDir, { recursive: true })) {
          const path = join(agent.stateDir, file);
          const text = await readFile(path, 'utf8').catch(() => '');
          places.push([path, text]);
        }
      }
      places.push(['log', logLines.join('')]);
      assert.ok(
        places.some(([where, text]) => where.endsWith('inventory.json') && text.includes('hmac-sha256:')),
        'the inventory keeps the salted hash',
      );
      for (const value of values) {
        for (const [where, text] of places) {
          assert.ok(!text.includes(value), `the secret leaked into ${where}`);
          assert.ok(
            !text.includes(Buffer.from(value).toString('base64')),
            `the secret leaked (base64) into ${where}`,
          );
        }
      }
      await kubectl(['delete', 'dockerplugin', 'secretive']);
      await eventually(
        'secretive removed',
        async () =>
          (await installed('secret-vol:1.0')) === undefined &&
          (await installed('secret-vol:1.0', agentB.store)) === undefined,
        30_000,
      );
    });

    it('a plugin that stops answering is restarted, and the node records an Unresponsive Warning', async () => {
      await kubectl(['apply', '-f', '-'], {
        input: dockerPlugin('probed', {
          remote,
          alias: 'probed-vol:1.0',
          privileges: [{ name: 'network', value: ['host'] }],
          healthCheck: { periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 2 },
          nodeSelector: { matchLabels: { role: 'storage' } },
        }),
      });
      await eventually(
        'probed enabled on the node',
        async () => (await installed('probed-vol:1.0'))?.enabled === true,
        PULL_MS,
      );
      await statusEventually(
        'probed Ready',
        async () => condition(await entry('probed'), 'Ready')?.status === 'True',
      );
      // plugind stops answering while this file exists, and removes it when it starts again
      const plugin = (await installed('probed-vol:1.0'))!;
      const hang = join(agentA.root, plugin.id, 'rootfs', 'var/lib/plugind/hang');
      await writeFile(hang, '');
      await eventually('the unresponsive plugin restarted', async () => !existsSync(hang), 30_000);
      await eventually(
        'an Unresponsive Warning from the node',
        async () =>
          (await agentEvents('probed')).some(
            (e) => e.reportingInstance === NODE && e.reason === 'Unresponsive' && e.type === 'Warning',
          ),
        30_000,
      );
      const warning = (await agentEvents('probed')).find((e) => e.reason === 'Unresponsive')!;
      assert.equal(warning.action, 'Restart');
      assert.match(warning.note ?? '', /did not answer Plugin\.Activate/);
      assert.ok(
        !(await agentEvents('probed')).some(
          (e) => e.reportingInstance === NODE_B && e.reason === 'Unresponsive',
        ),
        'only the node whose plugin hung reports it',
      );
      await kubectl(['delete', 'dockerplugin', 'probed']);
      await eventually(
        'probed removed',
        async () =>
          (await installed('probed-vol:1.0')) === undefined &&
          (await installed('probed-vol:1.0', agentB.store)) === undefined,
        30_000,
      );
    });

    it('deletion: the node removes the plugin it owns and reports it until the finalizer is released', async () => {
      // the leader adds and removes the finalizer; here the test plays the leader
      await kubectl([
        'patch',
        'dockerplugin',
        'vol',
        '--type=merge',
        '-p',
        '{"metadata":{"finalizers":["plugctl.dev/test-hold"]}}',
      ]);
      await kubectl(['delete', 'dockerplugin', 'vol', '--wait=false']);
      await eventually(
        'vol removed from the node',
        async () => (await installed(remote)) === undefined,
        30_000,
      );
      await statusEventually(
        'the removal reported',
        async () => condition(await entry('vol'), 'Ready')?.reason === 'Removed',
      );
      await eventually(
        'vol removed from node-b',
        async () => (await installed(remote, agentB.store)) === undefined,
        30_000,
      );
      await statusEventually(
        'node-b reports the removal',
        async () => condition(await entry('vol', NODE_B), 'Ready')?.reason === 'Removed',
      );
      const report = (await entry('vol'))!;
      assert.equal(report.pluginID, undefined);
      assert.equal(report.enabled, false);
      assert.equal(report.observedGeneration, await generation('vol'));
      // the private plugin, which is not being deleted, is untouched
      assert.equal((await installed('private-vol:1.0'))?.enabled, true);
      await kubectl([
        'patch',
        'dockerplugin',
        'vol',
        '--type=merge',
        '-p',
        '{"metadata":{"finalizers":null}}',
      ]);
      await statusEventually(
        'the entry goes with the object',
        async () => (await entry('vol')) === undefined,
      );
      assert.equal((await nodeStatus()).declared, 1);
    });
  },
);
