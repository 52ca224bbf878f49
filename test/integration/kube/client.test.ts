// Client set-up against a real API server: a kubeconfig file, a $KUBECONFIG list merged as kubectl
// merges it, the in-cluster service account (token file re-read when it rotates), and errors that name
// what is wrong; and the requests' failures classified by stable codes.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { KubeClient } from '../../../controller/kube/client.ts';
import { loadClusterConnection } from '../../../controller/kube/config.ts';
import { KubeError } from '../../../controller/kube/errors.ts';
import { NODES, collectionPath, objectPath } from '../../../controller/kube/resources.ts';
import { systemClock } from '../../../controller/runtime/clock.ts';
import { describeKube, kubectl, useKube } from '../../kube/harness.ts';

type KubeconfigDoc = {
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string; user: Record<string, unknown> }[];
  contexts: { name: string; context: Record<string, unknown> }[];
  'current-context'?: string;
};

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KubeError, String(error));
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

/** A token of ServiceAccount `name` in `default` from the TokenRequest API. */
async function serviceAccountToken(client: KubeClient, name: string): Promise<string> {
  const reply = await client.request<{ status: { token: string } }>({
    method: 'POST',
    path: `/api/v1/namespaces/default/serviceaccounts/${name}/token`,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  });
  return reply.status.token;
}

describeKube('Kubernetes client set-up', () => {
  const kube = useKube();
  let dir = '';
  let admin: KubeconfigDoc;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-kubecfg-'));
    admin = parse(await readFile(kube().kubeconfig, 'utf8')) as KubeconfigDoc;
    // two service accounts: one may list nodes, the other may not
    await kubectl(['create', 'serviceaccount', 'reader']);
    await kubectl(['create', 'serviceaccount', 'nobody']);
    await kubectl(['create', 'clusterrole', 'node-reader', '--verb=list,get', '--resource=nodes']);
    await kubectl([
      'create',
      'clusterrolebinding',
      'node-reader',
      '--clusterrole=node-reader',
      '--serviceaccount=default:reader',
    ]);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('--kubeconfig: a file with the CA inline and a bearer token reaches the server', async () => {
    const connection = await loadClusterConnection({
      kubeconfig: kube().kubeconfig,
      env: {},
      clock: systemClock,
    });
    assert.equal(connection.server, kube().server);
    assert.equal(connection.namespace, 'default');
    const client = await KubeClient.open(connection);
    try {
      const list = await client.request<{ items: unknown[] }>({ method: 'GET', path: collectionPath(NODES) });
      assert.ok(Array.isArray(list.items));
    } finally {
      await client.close();
    }
  });

  test("$KUBECONFIG: a list of files is merged, the first to set a value wins; relative paths are the file's", async () => {
    const cluster = admin.clusters[0]!;
    await writeFile(
      join(dir, 'ca.crt'),
      Buffer.from(String(cluster.cluster['certificate-authority-data']), 'base64'),
    );
    await writeFile(join(dir, 'token'), `${String(admin.users[0]!.user['token'])}\n`);
    // first file: only the current context, which the second file defines; the cluster refers to the
    // CA and the user to the token by paths relative to the second file
    const first = join(dir, 'first.yaml');
    const second = join(dir, 'second.yaml');
    await writeFile(first, stringify({ apiVersion: 'v1', kind: 'Config', 'current-context': 'merged' }));
    await writeFile(
      second,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'ignored',
        clusters: [{ name: 'c', cluster: { server: kube().server, 'certificate-authority': 'ca.crt' } }],
        users: [{ name: 'u', user: { 'token-file': 'token' } }],
        contexts: [{ name: 'merged', context: { cluster: 'c', user: 'u', namespace: 'team-a' } }],
      }),
    );
    const connection = await loadClusterConnection({
      env: { KUBECONFIG: `${first}:${second}` },
      clock: systemClock,
    });
    assert.equal(connection.namespace, 'team-a');
    assert.match(connection.origin, /context merged/);
    const client = await KubeClient.open(connection);
    try {
      await client.request({ method: 'GET', path: collectionPath(NODES) });
    } finally {
      await client.close();
    }
  });

  test('in-cluster: the service-account token is read again when the kubelet rotates it', async () => {
    const { client: adminClient, server, caFile } = kube();
    const sa = join(dir, 'serviceaccount');
    await rm(sa, { recursive: true, force: true });
    await (await import('node:fs/promises')).mkdir(sa);
    await writeFile(join(sa, 'ca.crt'), await readFile(caFile));
    await writeFile(join(sa, 'namespace'), 'plugctl-system\n');
    await writeFile(join(sa, 'token'), await serviceAccountToken(adminClient, 'nobody'));
    const url = new URL(server);
    const connection = await loadClusterConnection({
      env: { KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port },
      clock: systemClock,
      inClusterPaths: {
        tokenFile: join(sa, 'token'),
        caFile: join(sa, 'ca.crt'),
        namespaceFile: join(sa, 'namespace'),
      },
      tokenRecheckMs: 0,
    });
    assert.equal(connection.origin, 'in-cluster');
    assert.equal(connection.namespace, 'plugctl-system');
    const client = await KubeClient.open(connection);
    try {
      await rejectsWith(
        client.request({ method: 'GET', path: collectionPath(NODES) }),
        'KUBE_FORBIDDEN',
        /forbidden/,
      );
      // the kubelet replaces the file atomically, as it does for projected tokens
      await writeFile(join(sa, 'token.new'), await serviceAccountToken(adminClient, 'reader'));
      await rename(join(sa, 'token.new'), join(sa, 'token'));
      const list = await client.request<{ items: unknown[] }>({ method: 'GET', path: collectionPath(NODES) });
      assert.ok(Array.isArray(list.items));
    } finally {
      await client.close();
    }
  });

  test('a rejected token (401) is read again at once, even between rotation checks', async () => {
    const tokenFile = join(dir, 'rotating-token');
    await writeFile(tokenFile, 'not-a-valid-token');
    const path = join(dir, 'token-file.yaml');
    await writeFile(
      path,
      stringify({
        ...admin,
        users: [{ name: admin.users[0]!.name, user: { 'token-file': tokenFile } }],
      }),
    );
    const connection = await loadClusterConnection({
      kubeconfig: path,
      env: {},
      clock: systemClock,
      tokenRecheckMs: 3_600_000,
    });
    const client = await KubeClient.open(connection);
    try {
      await rejectsWith(
        client.request({ method: 'GET', path: collectionPath(NODES) }),
        'KUBE_UNAUTHORIZED',
        /HTTP 401/,
      );
      await writeFile(tokenFile, String(admin.users[0]!.user['token']));
      await client.request({ method: 'GET', path: collectionPath(NODES) });
    } finally {
      await client.close();
    }
  });

  test("failures carry stable codes and the server's message", async () => {
    const { client } = kube();
    await rejectsWith(
      client.request({ method: 'GET', path: objectPath(NODES, 'absent') }),
      'KUBE_NOT_FOUND',
      /nodes "absent" not found/,
    );
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'dup' } };
    await client.request({ method: 'POST', path: collectionPath(NODES), body: node });
    await rejectsWith(
      client.request({ method: 'POST', path: collectionPath(NODES), body: node }),
      'KUBE_CONFLICT',
      /already exists/,
    );
    await rejectsWith(
      client.request({
        method: 'POST',
        path: collectionPath(NODES),
        body: { ...node, metadata: { name: 'Bad_Name' } },
      }),
      'KUBE_INVALID',
      /Invalid value: "Bad_Name"/,
    );
    const closed = await KubeClient.open({
      ...(await loadClusterConnection({ kubeconfig: kube().kubeconfig, env: {}, clock: systemClock })),
      server: 'https://127.0.0.1:1',
    });
    try {
      await rejectsWith(
        closed.request({ method: 'GET', path: collectionPath(NODES) }),
        'KUBE_UNREACHABLE',
        /127\.0\.0\.1:1/,
      );
    } finally {
      await closed.close();
    }
  });

  test('no configuration, or a broken one, is a clear error naming the file', async () => {
    await rejectsWith(
      loadClusterConnection({ env: {}, clock: systemClock }),
      'KUBE_CONFIG_NOT_FOUND',
      /--kubeconfig/,
    );
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'clusters: [ {');
    await rejectsWith(
      loadClusterConnection({ kubeconfig: broken, env: {}, clock: systemClock }),
      'KUBE_CONFIG_INVALID',
      /broken\.yaml is not valid YAML/,
    );
    const noContext = join(dir, 'no-context.yaml');
    await writeFile(noContext, stringify({ ...admin, 'current-context': 'elsewhere' }));
    await rejectsWith(
      loadClusterConnection({ kubeconfig: noContext, env: {}, clock: systemClock }),
      'KUBE_CONFIG_INVALID',
      /no-context\.yaml: current-context "elsewhere" is not defined/,
    );
    await rejectsWith(
      loadClusterConnection({ kubeconfig: join(dir, 'absent.yaml'), env: {}, clock: systemClock }),
      'KUBE_CONFIG_INVALID',
      /cannot read kubeconfig .*absent\.yaml/,
    );
    const legacy = join(dir, 'legacy.yaml');
    await writeFile(
      legacy,
      stringify({
        ...admin,
        users: [{ name: admin.users[0]!.name, user: { 'auth-provider': { name: 'gcp' } } }],
      }),
    );
    await rejectsWith(
      loadClusterConnection({ kubeconfig: legacy, env: {}, clock: systemClock }),
      'KUBE_CONFIG_UNSUPPORTED',
      /exec credential plugin/,
    );
  });
});
