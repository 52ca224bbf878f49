// `plugctl run --kube` as a real process on the docker store (the private dockerd of
// test/env/plugin-env.sh) against a real kube-apiserver: not ready while its Node does not exist,
// then converges a DockerPlugin selecting the node, reports it in the node's DockerPluginNode, and
// stops on SIGTERM. Beside it, a second node's agent on the embedded store (in-process): one
// DockerPlugin selecting both converges on dockerd and on the embedded store, and the fleet summary
// the CLI agent's leader keeps lets kubectl wait return. Assertions read the engine (docker plugin
// inspect), the embedded store and the API server.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { NodePluginStatus } from '../../../controller/api/status.ts';
import {
  DOCKER_PLUGIN_NODES,
  NODES,
  collectionPath,
  objectPath,
} from '../../../controller/kube/resources.ts';
import type { KubeObject } from '../../../controller/kube/resources.ts';
import { pino } from 'pino';
import { eventually, kubectl, useKube } from '../../kube/harness.ts';
import { KUBE, PLUGIN_ENV, RUNC, describeWith } from '../../prerequisites.ts';
import { docker, useEnv } from '../harness.ts';
import { startEmbeddedAgent } from './embedded-agent.ts';

const ROOT = new URL('../../..', import.meta.url).pathname;
const NODE = 'node-cli';
/** a second node beside it, whose agent runs in-process on the embedded store */
const EMBEDDED_NODE = 'node-embedded';

interface PluginJson {
  Id: string;
  Enabled: boolean;
  Settings: { Env: string[] };
}

interface AgentEvent {
  reason?: string;
  reportingController?: string;
  reportingInstance?: string;
  regarding?: { name?: string };
}

describeWith(
  'plugctl run --kube on the docker store',
  { needs: [...KUBE, ...PLUGIN_ENV, ...RUNC], concurrency: false },
  () => {
    const env = useEnv();
    const kube = useKube({ crds: true });
    let state: string;
    let child: ChildProcess | undefined;
    let exited: Promise<number | null>;
    const logs: string[] = [];
    let address = '';

    async function readyz(): Promise<number> {
      const response = await fetch(`http://${address}/readyz`).catch(() => undefined);
      await response?.arrayBuffer();
      return response?.status ?? 0;
    }

    async function inspect(name: string): Promise<PluginJson | undefined> {
      const result = await docker(['plugin', 'inspect', name], { check: false });
      if (result.code !== 0) return undefined;
      return (JSON.parse(result.stdout) as PluginJson[])[0];
    }

    before(async () => {
      state = await mkdtemp(join(tmpdir(), 'plugctl-kube-cli-'));
      child = spawn(
        process.execPath,
        [
          join(ROOT, 'bin/plugctl.js'),
          '--state-dir',
          state,
          '--log-level',
          'debug',
          'run',
          '--kube',
          '--kubeconfig',
          kube().kubeconfig,
          '--node-name',
          NODE,
          '--namespace',
          'default',
          '--listen',
          '127.0.0.1:0',
        ],
        { env: { ...process.env, DOCKER_HOST: env().dockerHost }, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      exited = new Promise((resolve) => child!.once('exit', (code) => resolve(code)));
      let buffer = '';
      child.stderr!.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        for (const line of lines) {
          logs.push(line);
          const listen = /"listen":"([^"]+)"/.exec(line);
          if (listen) address = listen[1]!;
        }
      });
      await eventually('the agent serves /readyz', () => address !== '', 30_000);
    });

    after(async () => {
      if (child !== undefined && child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      await rm(state, { recursive: true, force: true });
    });

    it('is not ready while its Node does not exist, and says why', async () => {
      await eventually(
        'KUBE_NODE_NOT_FOUND logged',
        () => logs.some((l) => l.includes('KUBE_NODE_NOT_FOUND')),
        30_000,
      );
      assert.equal(await readyz(), 503);
      await kube().client.request({
        method: 'POST',
        path: collectionPath(NODES),
        body: { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE, labels: { role: 'cli' } } },
      });
      await eventually('/readyz 200 once the Node exists', async () => (await readyz()) === 200, 30_000);
    });

    it('converges a DockerPlugin selecting the node on dockerd and reports it', async () => {
      await kubectl(['apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'plugctl.dev/v1alpha1',
          kind: 'DockerPlugin',
          metadata: { name: 'cli-vol' },
          spec: {
            remote: `${env().registry}/test/vol:1.0`,
            alias: 'cli-vol',
            privileges: [{ name: 'network', value: ['host'] }],
            settings: { env: { GREETING: 'from-the-cluster' } },
            nodeSelector: { matchLabels: { role: 'cli' } },
          },
        }),
      });
      await eventually(
        'cli-vol enabled on dockerd',
        async () => (await inspect('cli-vol'))?.Enabled === true,
        90_000,
      );
      const plugin = (await inspect('cli-vol'))!;
      assert.ok(plugin.Settings.Env.includes('GREETING=from-the-cluster'));
      let reported: NodePluginStatus | undefined;
      await eventually(
        'cli-vol Ready in the DockerPluginNode',
        async () => {
          const object = await kube()
            .client.request<KubeObject & { status?: { plugins?: NodePluginStatus[] } }>({
              method: 'GET',
              path: objectPath(DOCKER_PLUGIN_NODES, NODE),
            })
            .catch(() => undefined);
          reported = object?.status?.plugins?.find((p) => p.name === 'cli-vol');
          return reported?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
        },
        30_000,
      );
      assert.equal(reported?.pluginID, plugin.Id);
      // and records it as an Event on the DockerPlugin, from this node
      await eventually(
        'a Pulled event about cli-vol from the node',
        async () => {
          const got = await kubectl(['get', 'events.events.k8s.io', '-n', 'kube-system', '-o', 'json']);
          const items = (JSON.parse(got.stdout) as { items: AgentEvent[] }).items;
          return items.some(
            (e) =>
              e.regarding?.name === 'cli-vol' &&
              e.reportingController === 'plugctl.dev/agent' &&
              e.reportingInstance === NODE &&
              e.reason === 'Pulled',
          );
        },
        30_000,
      );
    });

    it('with a second node on the embedded store, one DockerPlugin converges on both and kubectl wait returns', async () => {
      await kube().client.request({
        method: 'POST',
        path: collectionPath(NODES),
        body: { apiVersion: 'v1', kind: 'Node', metadata: { name: EMBEDDED_NODE, labels: { role: 'cli' } } },
      });
      const embedded = await startEmbeddedAgent({
        nodeName: EMBEDDED_NODE,
        kubeconfig: kube().kubeconfig,
        namespace: 'default',
        work: state,
        logger: pino({ level: 'warn' }),
      });
      try {
        await kubectl(['apply', '-f', '-'], {
          input: JSON.stringify({
            apiVersion: 'plugctl.dev/v1alpha1',
            kind: 'DockerPlugin',
            metadata: { name: 'both-vol' },
            spec: {
              remote: `${env().registry}/test/vol:1.0`,
              alias: 'both-vol',
              privileges: [{ name: 'network', value: ['host'] }],
              nodeSelector: { matchLabels: { role: 'cli' } },
            },
          }),
        });
        // the fleet summary (kept by the leader the CLI agent campaigns for) says Ready only when
        // both nodes run the current generation
        await kubectl(['wait', '--for=condition=Ready', 'dockerplugin/both-vol', '--timeout=120s']);
        assert.equal((await inspect('both-vol'))?.Enabled, true, 'enabled on dockerd');
        const onEmbedded = (await embedded.store.list()).find((p) => p.name === 'both-vol:latest');
        assert.equal(onEmbedded?.enabled, true, 'enabled on the embedded store');
        const summary = await kubectl(['get', 'dockerplugin/both-vol', '-o', 'json']);
        const nodes = (
          JSON.parse(summary.stdout) as { status?: { nodes?: { selected?: number; ready?: number } } }
        ).status?.nodes;
        assert.equal(nodes?.selected, 2);
        assert.equal(nodes?.ready, 2);
      } finally {
        await embedded.stop();
      }
    });

    it('stops on SIGTERM with exit code 0', async () => {
      child!.kill('SIGTERM');
      assert.equal(await exited, 0);
      // stopping the agent removes nothing
      assert.equal((await inspect('cli-vol'))?.Enabled, true);
    });
  },
);
