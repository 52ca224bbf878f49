/**
 * Registry mirrors on real docker-registry instances on loopback, a real dockerd and the embedded
 * store: with the upstream down and a mirror holding the plugin, it is installed and enabled under
 * its declared reference; the upstream coming back changes nothing; with the mirror down too, the
 * error names both.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { runPlugctl, type CliResult } from './cli.ts';
import { describeIntegration, docker, useEnv } from './harness.ts';
import { startRegistry, type RunningRegistry } from './registry-harness.ts';

const UPSTREAM_PORT = 5360;
const MIRROR_PORT = 5361;
const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

interface Row {
  plugin: string;
  pluginID: string;
  reference: string;
  enabled: boolean | null;
}

/** Copies `repo:tag` with its blobs from one plain-http loopback registry to another. */
async function copyPlugin(from: string, to: string, repo: string, tag: string): Promise<void> {
  const manifest = await fetch(`http://${from}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: MANIFEST_V2 },
  });
  assert.equal(manifest.status, 200, `${from}/${repo}:${tag}`);
  const bytes = Buffer.from(await manifest.arrayBuffer());
  const parsed = JSON.parse(bytes.toString('utf8')) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  for (const digest of [parsed.config.digest, ...parsed.layers.map((l) => l.digest)]) {
    const blob = Buffer.from(await (await fetch(`http://${from}/v2/${repo}/blobs/${digest}`)).arrayBuffer());
    const start = await fetch(`http://${to}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.get('location')!, `http://${to}`);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, {
      method: 'PUT',
      body: blob,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(put.status, 201, `upload of ${digest}`);
  }
  const put = await fetch(`http://${to}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: bytes,
    headers: { 'content-type': MANIFEST_V2 },
  });
  assert.equal(put.status, 201);
}

describeIntegration('registry mirrors', () => {
  const env = useEnv();
  let dir: string;
  let upstream: RunningRegistry | undefined;
  let mirror: RunningRegistry | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-mirrors-'));
    await mkdir(join(dir, 'docs'));
  });

  afterEach(async () => {
    await upstream?.stop();
    await mirror?.stop();
    upstream = mirror = undefined;
    const ids = (await docker(['plugin', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await docker(['plugin', 'rm', '-f', ...ids]);
    await rm(dir, { recursive: true, force: true });
  });

  function doc(name: string, remote: string): string {
    return [
      'apiVersion: plugctl.dev/v1alpha1',
      'kind: DockerPlugin',
      `metadata: { name: ${name} }`,
      'spec:',
      `  remote: ${remote}`,
      `  alias: ${name}`,
      '  privileges: [{ name: network, value: [host] }]',
      '',
    ].join('\n');
  }

  /** The upstream and its mirror, both holding test/vol:1.0, and the upstream then stopped. */
  async function airGapped(): Promise<{ declared: string; upstreamHost: string; mirrorHost: string }> {
    upstream = await startRegistry(UPSTREAM_PORT);
    mirror = await startRegistry(MIRROR_PORT);
    await copyPlugin(env().registry, upstream.host, 'test/vol', '1.0');
    await copyPlugin(env().registry, mirror.host, 'test/vol', '1.0');
    const upstreamHost = upstream.host;
    await upstream.stop();
    upstream = undefined;
    return { declared: `${upstreamHost}/test/vol:1.0`, upstreamHost, mirrorHost: mirror.host };
  }

  async function scenario(global: readonly string[], engine: boolean): Promise<void> {
    const { declared, upstreamHost, mirrorHost } = await airGapped();
    const state = join(dir, 'state');
    const docs = join(dir, 'docs');
    const flags = [...global, '--registry-mirror', `${upstreamHost}=${mirrorHost}`];
    const plugctl = (...args: string[]): Promise<CliResult> =>
      runPlugctl(state, env().dockerHost, [...flags, ...args]);
    await writeFile(join(docs, 'mvol.yaml'), doc('mvol', declared));

    const diff = await plugctl('diff', '-f', docs);
    assert.equal(diff.code, 1, diff.out + diff.err);
    assert.match(diff.out, new RegExp(`pull ${declared} from ${mirrorHost}/test/vol`));
    assert.match(diff.out, new RegExp(`not verified: ${upstreamHost} was unreachable`));

    const applied = await plugctl('apply', '-f', docs);
    assert.equal(applied.code, 0, applied.out + applied.err);
    assert.match(applied.out, /dockerplugin\/mvol created/);

    // `get -o json` prints a List of DockerPlugin objects; this host's view is each one's status
    const rows = (): Promise<Row[]> =>
      plugctl('get', '-o', 'json').then((r) =>
        (JSON.parse(r.out) as { items: { status: Row }[] }).items.map((o) => o.status),
      );
    const [row] = (await rows()).filter((r) => r.plugin === 'mvol:latest');
    assert.equal(row?.enabled, true, 'installed and enabled from the mirror');
    assert.equal(row?.reference, declared, 'shown by its declared reference');
    if (engine) {
      const inspected = JSON.parse((await docker(['plugin', 'inspect', 'mvol'])).stdout) as {
        Enabled: boolean;
        PluginReference: string;
      }[];
      assert.equal(inspected[0]?.Enabled, true);
      assert.equal(inspected[0]?.PluginReference, `${mirrorHost}/test/vol:1.0`, 'dockerd pulled the mirror');
    }

    // No drift: a second pass plans nothing, and so does one after the upstream is back.
    const again = await plugctl('apply', '-f', docs);
    assert.match(again.out, /dockerplugin\/mvol unchanged/, again.out);
    upstream = await startRegistry(UPSTREAM_PORT);
    await copyPlugin(env().registry, upstream.host, 'test/vol', '1.0');
    const back = await plugctl('apply', '-f', docs);
    assert.match(back.out, /dockerplugin\/mvol unchanged/, back.out);
    const [after] = (await rows()).filter((r) => r.plugin === 'mvol:latest');
    assert.equal(after?.pluginID, row?.pluginID, 'not pulled again');

    // Upstream and mirror down: a new plugin fails naming both; the installed one is untouched.
    await upstream.stop();
    upstream = undefined;
    await mirror?.stop();
    mirror = undefined;
    await writeFile(join(docs, 'other.yaml'), doc('other', declared));
    const failed = await plugctl('apply', '-f', docs);
    assert.equal(failed.code, 1, failed.out);
    assert.match(failed.out, /dockerplugin\/other failed.*MIRRORS_UNAVAILABLE/);
    assert.match(failed.out, new RegExp(`upstream ${upstreamHost}: `));
    assert.match(failed.out, new RegExp(`mirror ${mirrorHost}: `));
    assert.match(failed.out, /dockerplugin\/mvol unchanged/);
  }

  it('docker store: upstream down, the mirror holds the plugin -> installed and enabled; both down -> an error naming both', async () => {
    await scenario([], true);
  });

  it('embedded store: the same, fetched by plugctl itself from the mirror', async () => {
    const root = join(dir, 'root');
    const global = ['--store', 'embedded', '--root', root];
    try {
      await scenario(global, false);
    } finally {
      // the embedded store's plugins run under runc until removed
      await runPlugctl(join(dir, 'state'), env().dockerHost, [
        ...global,
        'prune',
        '--set',
        `files:${await realpath(join(dir, 'docs'))}`,
      ]);
    }
  });
});
