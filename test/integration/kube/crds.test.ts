// The generated CRDs on a real API server (1.20, the oldest plugctl supports): they pass kubectl's own
// validation and install; the server enforces the same rules as plugctl's file validation (no CEL:
// junctors, enums, patterns and bounds); the status subresource takes the status plugctl writes and
// the printer columns show it.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { validateDocument } from '../../../controller/api/validate.ts';
import { serverSideApply } from '../../../controller/kube/apply.ts';
import type { KubeClient } from '../../../controller/kube/client.ts';
import { KubeError } from '../../../controller/kube/errors.ts';
import { DOCKER_PLUGINS, DOCKER_PLUGIN_NODES, collectionPath } from '../../../controller/kube/resources.ts';
import { CRDS_DIR, describeKube, installCrds, kubectl, useKube } from '../../kube/harness.ts';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));

const doc = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'plugctl.dev/v1alpha1',
  kind: 'DockerPlugin',
  metadata: { name },
  spec,
});

/** Specs on both sides of every cross-field rule, bound and pattern that the CRD carries. */
const CASES: [string, Record<string, unknown>][] = [
  ['remote only', { remote: 'vieux/sshfs:1.2' }],
  ['build only', { build: { context: './ctx' } }],
  ['neither remote nor build', { enabled: true }],
  ['both remote and build', { remote: 'a', build: { context: './ctx' } }],
  ['maxUnavailable 2', { remote: 'a', rollout: { maxUnavailable: 2 } }],
  ['maxUnavailable "25%"', { remote: 'a', rollout: { maxUnavailable: '25%' } }],
  ['maxUnavailable "100%"', { remote: 'a', rollout: { maxUnavailable: '100%' } }],
  ['maxUnavailable 0', { remote: 'a', rollout: { maxUnavailable: 0 } }],
  ['maxUnavailable "0%"', { remote: 'a', rollout: { maxUnavailable: '0%' } }],
  ['maxUnavailable "150%"', { remote: 'a', rollout: { maxUnavailable: '150%' } }],
  ['maxUnavailable "two"', { remote: 'a', rollout: { maxUnavailable: 'two' } }],
  [
    'grantAll with privileges',
    { remote: 'a', grantAllPrivileges: true, privileges: [{ name: 'network', value: ['host'] }] },
  ],
  ['grantAll with empty privileges', { remote: 'a', grantAllPrivileges: true, privileges: [] }],
  ['privileges without grantAll', { remote: 'a', privileges: [{ name: 'network', value: ['host'] }] }],
  [
    'duplicate privilege names',
    {
      remote: 'a',
      privileges: [
        { name: 'network', value: ['host'] },
        { name: 'network', value: [] },
      ],
    },
  ],
  ['In without values', { remote: 'a', nodeSelector: { matchExpressions: [{ key: 'k', operator: 'In' }] } }],
  [
    'In with values',
    { remote: 'a', nodeSelector: { matchExpressions: [{ key: 'k', operator: 'In', values: ['v'] }] } },
  ],
  [
    'Exists with values',
    { remote: 'a', nodeSelector: { matchExpressions: [{ key: 'k', operator: 'Exists', values: ['v'] }] } },
  ],
  [
    'Exists without values',
    { remote: 'a', nodeSelector: { matchExpressions: [{ key: 'k', operator: 'Exists' }] } },
  ],
  ['inUse "force"', { remote: 'a', inUse: 'force' }],
  ['enableTimeoutSeconds 0', { remote: 'a', enableTimeoutSeconds: 0 }],
  ['relative mount source', { remote: 'a', settings: { mounts: { state: 'var/x' } } }],
  ['pullSecretName "Reg_Cred"', { remote: 'a', pullSecretName: 'Reg_Cred' }],
  ['pullSecretName "regcred.team-a"', { remote: 'a', pullSecretName: 'regcred.team-a' }],
  ['duplicate dependsOn', { remote: 'a', dependsOn: ['x', 'x'] }],
  ['alias with a digest', { remote: 'a', alias: 'a@sha256:0000' }],
];

async function serverAccepts(client: KubeClient, body: unknown): Promise<{ ok: boolean; message: string }> {
  try {
    await client.request({
      method: 'POST',
      path: collectionPath(DOCKER_PLUGINS),
      query: { dryRun: 'All' },
      body,
    });
    return { ok: true, message: '' };
  } catch (error) {
    assert.ok(error instanceof KubeError, String(error));
    assert.equal(error.status, 422, error.message);
    return { ok: false, message: error.message };
  }
}

describeKube('CRDs on a real API server', () => {
  const kube = useKube();

  test('kubectl apply --dry-run=server -f crds/ passes with kubectl validation on, then the CRDs install', async () => {
    const dry = await kubectl(['apply', '--dry-run=server', '--validate=true', '-f', CRDS_DIR]);
    assert.match(dry.stdout, /dockerplugins\.plugctl\.dev (created|configured|unchanged) \(server dry run\)/);
    assert.match(
      dry.stdout,
      /dockerpluginnodes\.plugctl\.dev (created|configured|unchanged) \(server dry run\)/,
    );
    await installCrds();
    const names = await kubectl(['get', 'crd', '-o', 'jsonpath={.items[*].metadata.name}']);
    assert.deepEqual(names.stdout.split(' ').sort(), [
      'dockerpluginnodes.plugctl.dev',
      'dockerplugins.plugctl.dev',
    ]);
  });

  test('the examples apply with kubectl validation on: one document works in both modes', async () => {
    const result = await kubectl(['apply', '--dry-run=server', '--validate=true', '-f', EXAMPLES]);
    assert.match(result.stdout, /(created|configured|unchanged) \(server dry run\)/);
  });

  test('the API server accepts exactly what plugctl accepts', async () => {
    const disagreements: string[] = [];
    for (const [what, spec] of CASES) {
      const body = doc('case', spec);
      const mine = validateDocument(body).ok;
      const server = await serverAccepts(kube().client, body);
      if (mine !== server.ok) {
        disagreements.push(
          `${what}: plugctl ${mine ? 'accepts' : 'rejects'}, server ${server.ok ? 'accepts' : `rejects (${server.message})`}`,
        );
      }
    }
    assert.deepEqual(disagreements, []);
  });

  test('an invalid resource is rejected with a message that names the field and the rule', async () => {
    const inUse = await kubectl(['apply', '-f', '-'], {
      check: false,
      input: JSON.stringify(doc('bad-inuse', { remote: 'a', inUse: 'force' })),
    });
    assert.notEqual(inUse.code, 0, `kubectl apply accepted it: ${inUse.stdout}`);
    assert.match(inUse.stderr, /spec\.inUse: Unsupported value: "force": supported values: "Wait", "Force"/);

    const rollout = await serverAccepts(
      kube().client,
      doc('bad-rollout', { remote: 'a', rollout: { maxUnavailable: '150%' } }),
    );
    assert.match(rollout.message, /spec\.rollout\.maxUnavailable in body should match/);

    const neither = await serverAccepts(kube().client, doc('neither', {}));
    assert.match(neither.message, /spec\.(remote|build)/);

    // kubectl's own (client-side) validation rejects unknown fields, which the server would prune
    const typo = await kubectl(['apply', '--validate=true', '-f', '-'], {
      check: false,
      input: JSON.stringify(doc('typo', { remote: 'a', enable: true })),
    });
    assert.notEqual(typo.code, 0);
    assert.match(typo.stderr, /unknown field "enable"/);
    const listed = await kubectl(['get', 'dockerplugins', '-o', 'name']);
    assert.doesNotMatch(listed.stdout, /\/(typo|bad-inuse)$/m, 'nothing invalid was stored');
  });

  test('status: the subresource takes the fleet summary plugctl writes, and the columns and kubectl wait read it', async () => {
    const { client } = kube();
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify(doc('sshfs', { remote: 'vieux/sshfs:1.2' })),
    });
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await serverSideApply(
      client,
      DOCKER_PLUGINS,
      {
        metadata: { name: 'sshfs' },
        status: {
          observedGeneration: 1,
          nodes: { selected: 3, ready: 3, updated: 3, unavailable: 0 },
          ready: '3/3',
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'Converged',
              message: '3/3 nodes ready',
              lastTransitionTime: now,
              observedGeneration: 1,
            },
            { type: 'Reconciling', status: 'False', reason: 'Idle', message: '', lastTransitionTime: now },
            { type: 'Stalled', status: 'False', reason: 'NotStalled', message: '', lastTransitionTime: now },
          ],
        },
      },
      { fieldManager: 'plugctl-leader', subresource: 'status', force: true },
    );
    const table = await kubectl(['get', 'dockerplugins']);
    const [header, row] = table.stdout.trim().split('\n');
    assert.match(header ?? '', /^NAME\s+REMOTE\s+READY\s+UP-TO-DATE\s+AGE$/);
    assert.match(row ?? '', /^sshfs\s+vieux\/sshfs:1\.2\s+3\/3\s+3\s+\S+$/);
    await kubectl(['wait', '--for=condition=Ready', '--timeout=10s', 'dockerplugin/sshfs']);

    await assert.rejects(
      serverSideApply(
        client,
        DOCKER_PLUGINS,
        {
          metadata: { name: 'sshfs' },
          status: {
            conditions: [
              { type: 'Ready', status: 'Maybe', reason: 'Converged', message: '', lastTransitionTime: now },
            ],
          },
        },
        { fieldManager: 'plugctl-leader', subresource: 'status', force: true },
      ),
      (error: unknown) =>
        error instanceof KubeError &&
        error.code === 'KUBE_INVALID' &&
        /status\.conditions(\[0\])?\.status: Unsupported value: "Maybe"/.test(error.message),
    );
  });

  test('DockerPluginNode: each plugin entry merges by name; the columns show ready and declared counts', async () => {
    const { client } = kube();
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const ready = (name: string) => ({
      name,
      pluginID: `${name}-id`,
      reference: `docker.io/test/${name}:1.0`,
      digest: 'sha256:' + '0'.repeat(64),
      enabled: true,
      observedGeneration: 1,
      lastAction: 'pull, enable',
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Converged', message: '', lastTransitionTime: now },
      ],
    });
    await serverSideApply(
      client,
      DOCKER_PLUGIN_NODES,
      { metadata: { name: 'host-a' } },
      { fieldManager: 'plugctl-agent' },
    );
    await serverSideApply(
      client,
      DOCKER_PLUGIN_NODES,
      {
        metadata: { name: 'host-a' },
        status: { declared: 3, ready: 2, plugins: [ready('sshfs'), ready('vol')] },
      },
      { fieldManager: 'plugctl-agent', subresource: 'status', force: true },
    );
    const table = await kubectl(['get', 'dockerpluginnodes']);
    const [header, row] = table.stdout.trim().split('\n');
    assert.match(header ?? '', /^NAME\s+READY\s+DECLARED\s+AGE$/);
    assert.match(row ?? '', /^host-a\s+2\s+3\s+\S+$/);

    const duplicate = await serverSideApply(
      client,
      DOCKER_PLUGIN_NODES,
      { metadata: { name: 'host-a' }, status: { plugins: [ready('x'), ready('x')] } },
      { fieldManager: 'plugctl-agent', subresource: 'status', force: true, dryRun: true },
    ).catch((error: unknown) => error);
    assert.ok(duplicate instanceof KubeError, 'a list-map with a duplicate key is refused');
  });
});
