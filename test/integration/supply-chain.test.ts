/**
 * Supply-chain behaviour against a real dockerd 20.10 and a real registry: a tag that moves under
 * TrackTag, an upgrade whose new version cannot start (rolled back), a multi-platform index (refused
 * on this engine without crashing it), and a lying registry next to an honest one.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, it } from 'node:test';
import { runPlugctl, type CliResult } from './cli.ts';
import { describeIntegration, docker, envScript, useEnv } from './harness.ts';

const SCHEMA2 = 'application/vnd.docker.distribution.manifest.v2+json';
const MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

interface PluginJson {
  Id: string;
  Enabled: boolean;
  PluginReference: string;
  Settings: { Env: string[] };
  Config: { rootfs: { diff_ids: string[] } };
}

describeIntegration('supply chain against a real dockerd and registry', () => {
  const env = useEnv();
  let state: string;
  let docs: string;

  beforeEach(async () => {
    state = await mkdtemp(join(tmpdir(), 'plugctl-sc-state-'));
    docs = await mkdtemp(join(tmpdir(), 'plugctl-sc-docs-'));
  });

  afterEach(async () => {
    await envScript('reset');
    await rm(state, { recursive: true, force: true });
    await rm(docs, { recursive: true, force: true });
  });

  const plugctl = (...args: string[]): Promise<CliResult> => runPlugctl(state, env().dockerHost, args);

  function doc(name: string, remote: string, extra = ''): string {
    return [
      'apiVersion: plugctl.dev/v1alpha1',
      'kind: DockerPlugin',
      `metadata: { name: ${name} }`,
      'spec:',
      `  remote: ${remote}`,
      `  alias: ${name}`,
      '  grantAllPrivileges: true',
      extra,
    ].join('\n');
  }

  async function inspect(name: string): Promise<PluginJson | undefined> {
    const result = await docker(['plugin', 'inspect', `${name}:latest`], { check: false });
    return result.code === 0 ? (JSON.parse(result.stdout) as PluginJson[])[0] : undefined;
  }

  const registryUrl = (): string => `http://${env().registry}`;

  async function getManifest(repo: string, tag: string): Promise<{ bytes: Buffer; digest: string }> {
    const response = await fetch(`${registryUrl()}/v2/${repo}/manifests/${tag}`, {
      headers: { accept: SCHEMA2 },
    });
    assert.equal(response.status, 200, `${repo}:${tag} exists`);
    const bytes = Buffer.from(await response.arrayBuffer());
    return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
  }

  async function putManifest(repo: string, tag: string, bytes: Buffer, mediaType: string): Promise<void> {
    const response = await fetch(`${registryUrl()}/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    assert.equal(response.status, 201, `PUT ${repo}:${tag}: ${await response.text()}`);
  }

  /** Points `to` at the content of `from` (blobs mounted across repositories, then the manifest). */
  async function copyTag(from: string, to: string): Promise<string> {
    const [fromRepo, fromTag] = from.split(':') as [string, string];
    const [toRepo, toTag] = to.split(':') as [string, string];
    const { bytes, digest } = await getManifest(fromRepo, fromTag);
    await mountBlobs(fromRepo, toRepo, bytes);
    await putManifest(toRepo, toTag, bytes, SCHEMA2);
    return digest;
  }

  async function mountBlobs(fromRepo: string, toRepo: string, manifest: Buffer): Promise<void> {
    const parsed = JSON.parse(manifest.toString()) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    for (const digest of [parsed.config.digest, ...parsed.layers.map((l) => l.digest)]) {
      const response = await fetch(
        `${registryUrl()}/v2/${toRepo}/blobs/uploads/?mount=${digest}&from=${fromRepo}`,
        {
          method: 'POST',
        },
      );
      assert.equal(response.status, 201, `mount ${digest} into ${toRepo}`);
    }
  }

  it('follows a moved tag with TrackTag: upgrades, keeps settings, and is enabled again', async () => {
    const repo = `${env().registry}/test/moving`;
    await copyTag('test/vol:1.0', 'test/moving:1.0');
    const settings = '  upgrade: { policy: TrackTag }\n  settings: { env: { GREETING: kept } }';
    await writeFile(join(docs, 'm.yaml'), doc('mover', `${repo}:1.0`, settings));
    assert.equal((await plugctl('apply', '-f', docs)).code, 0);
    const before = await inspect('mover');
    assert.equal(before?.Enabled, true);
    assert.equal((await plugctl('diff', '-f', docs)).code, 0, 'unchanged tag: nothing to do');

    await copyTag('test/vol:2.0', 'test/moving:1.0'); // the same tag, new content
    const diff = await plugctl('diff', '-f', docs);
    assert.equal(diff.code, 1);
    assert.match(diff.out, /the tag moved/);
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 0, result.out + result.err);
    const after = await inspect('mover');
    assert.equal(after?.Id, before?.Id, 'upgraded in place');
    assert.notDeepEqual(
      after?.Config.rootfs.diff_ids,
      before?.Config.rootfs.diff_ids,
      'new content installed',
    );
    assert.equal(after?.Enabled, true);
    assert.ok(after?.Settings.Env.includes('GREETING=kept'), 'settings kept across the upgrade');
    assert.equal((await plugctl('diff', '-f', docs)).code, 0, 'converged on the new content');
    const inventory = JSON.parse(
      await import('node:fs/promises').then((fs) => fs.readFile(join(state, 'inventory.json'), 'utf8')),
    ) as {
      plugins: Record<string, { digest?: string }>;
    };
    assert.equal(inventory.plugins['mover:latest']?.digest, (await getManifest('test/moving', '1.0')).digest);
  });

  it('rolls back an upgrade whose new version cannot start, ending enabled on the old one and stalled', async () => {
    const repo = `${env().registry}/test/rollme`;
    await copyTag('test/vol:1.0', 'test/rollme:1.0');
    await copyTag('test/bad:1.0', 'test/rollme:2.0'); // exits at start
    await writeFile(join(docs, 'r.yaml'), doc('rollme', `${repo}:1.0`, '  enableTimeoutSeconds: 5'));
    assert.equal((await plugctl('apply', '-f', docs)).code, 0);
    const before = await inspect('rollme');

    await writeFile(join(docs, 'r.yaml'), doc('rollme', `${repo}:2.0`, '  enableTimeoutSeconds: 5'));
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 1);
    assert.match(result.out, /\[stalled UPGRADE_ROLLED_BACK\]/);
    assert.match(result.out, new RegExp(`rolled back to ${repo}:1\\.0`));
    const after = await inspect('rollme');
    assert.equal(after?.PluginReference, `${repo}:1.0`, 'the old version is back');
    assert.deepEqual(after?.Config.rootfs.diff_ids, before?.Config.rootfs.diff_ids);
    assert.equal(after?.Enabled, true, 'and running');
  });

  it('refuses a multi-platform index on this engine, and the daemon stays up', async () => {
    const amd = await getManifest('test/vol', '1.0');
    const arm = await getManifest('test/vol', '2.0');
    await mountBlobs('test/vol', 'test/multi', amd.bytes);
    await mountBlobs('test/vol', 'test/multi', arm.bytes);
    await putManifest('test/multi', amd.digest, amd.bytes, SCHEMA2);
    await putManifest('test/multi', arm.digest, arm.bytes, SCHEMA2);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST_LIST,
        manifests: [
          {
            mediaType: SCHEMA2,
            digest: amd.digest,
            size: amd.bytes.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
          {
            mediaType: SCHEMA2,
            digest: arm.digest,
            size: arm.bytes.length,
            platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          },
        ],
      }),
    );
    await putManifest('test/multi', '1.0', index, MANIFEST_LIST);
    await writeFile(join(docs, 'multi.yaml'), doc('multi', `${env().registry}/test/multi:1.0`));
    const result = await plugctl('apply', '-f', docs);
    assert.equal(result.code, 1);
    assert.match(result.out, /MULTI_ARCH_UNSUPPORTED_BY_ENGINE/);
    assert.match(result.out, /linux\/amd64, linux\/arm64\/v8/);
    assert.match(result.out, new RegExp(env().engineVersion.split('+')[0]!.replace(/\./g, '\\.')));
    assert.equal((await docker(['version'])).code, 0, 'dockerd is still alive');
    assert.equal(await inspect('multi'), undefined);

    // The embedded store takes digests: the same document installs the host platform's manifest.
    const root = await mkdtemp(join(tmpdir(), 'plugctl-sc-root-'));
    const embedded = (...args: string[]): Promise<{ code: number; out: string; err: string }> =>
      plugctl('--store', 'embedded', '--root', root, ...args);
    try {
      const applied = await embedded('apply', '-f', docs);
      assert.equal(applied.code, 0, applied.out + applied.err);
      const rows = (
        JSON.parse((await embedded('get', '-o', 'json')).out) as {
          items: { status: { plugin: string; reference?: string; enabled?: boolean } }[];
        }
      ).items.map((o) => o.status);
      const multi = rows.find((r) => r.plugin === 'multi:latest');
      const host = process.arch === 'arm64' ? arm : amd;
      assert.equal(
        multi?.reference,
        `${env().registry}/test/multi@${host.digest}`,
        'the host platform, by digest',
      );
      assert.equal(multi?.enabled, true);
      assert.equal((await embedded('diff', '-f', docs)).code, 0, 'converged');
    } finally {
      // The apply set of -f docs: removing it stops and deletes what the embedded store runs.
      await embedded('prune', '--set', `files:${await realpath(docs)}`);
      await rm(root, { recursive: true, force: true });
    }
  });

  describeIntegration('a registry that lies', () => {
    let liar: Server;
    let liarAddress: string;
    before(async () => {
      // Serves a manifest whose bytes do not match the digest it claims.
      liar = createServer((request, response) => {
        if (request.url === '/v2/' || request.url === '/v2') return void response.writeHead(200).end('{}');
        if (request.url?.includes('/manifests/')) {
          const body = JSON.stringify({ schemaVersion: 2, mediaType: SCHEMA2, config: {}, layers: [] });
          return void response
            .writeHead(200, {
              'content-type': SCHEMA2,
              'docker-content-digest': `sha256:${'0'.repeat(64)}`,
              'content-length': Buffer.byteLength(body),
            })
            .end(request.method === 'HEAD' ? undefined : body);
        }
        response.writeHead(404).end();
      });
      await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
      liarAddress = `127.0.0.1:${(liar.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((resolve) => liar.close(() => resolve())));

    it('reports the lie, installs nothing from it, and the honest plugin converges', async () => {
      await writeFile(join(docs, 'bad.yaml'), doc('liar', `${liarAddress}/evil/plugin:1.0`));
      await writeFile(join(docs, 'good.yaml'), doc('honest', `${env().registry}/test/vol:1.0`));
      const result = await plugctl('apply', '-f', docs);
      assert.equal(result.code, 1);
      assert.match(result.out, /dockerplugin\/liar failed \[stalled DIGEST_MISMATCH\]/);
      assert.match(result.out, /dockerplugin\/honest created/);
      assert.equal(await inspect('liar'), undefined);
      assert.equal((await inspect('honest'))?.Enabled, true);
    });
  });
});
