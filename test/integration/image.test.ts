// The container image. No base image can be pulled here, so the test builds the image the
// Dockerfile describes by the Dockerfile's own means: the root filesystem from image/rootfs.sh (the
// pinned Node binary, its shared libraries, the packed package with its dependencies), imported with
// `docker import` and the runtime settings of the Dockerfile's final stage (user, entrypoint,
// environment, OCI labels). It then runs on the test dockerd as the non-root user with the engine's
// socket mounted: `plugctl version` sees the engine, and `plugctl apply` converges a plugin.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { promisify } from 'node:util';
import { packPlugctl, PINNED_NODE_ENV, ROOT } from '../package/pack.ts';
import { describeIntegration, docker, useEnv } from './harness.ts';

const run = promisify(execFile);
const IMAGE = 'plugctl-image-test:latest';
/** The image's user (image/rootfs.sh). */
const UID = 65532;

/** One instruction of a Dockerfile stage, continuation lines joined. */
interface Instruction {
  keyword: string;
  args: string;
}

/** The instructions of the Dockerfile's last stage (after its last FROM). */
function finalStage(dockerfile: string): Instruction[] {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const from = lines.findLastIndex((line) => /^FROM\s/i.test(line));
  return lines.slice(from + 1).map((line) => {
    const space = line.search(/\s/);
    return { keyword: line.slice(0, space).toUpperCase(), args: line.slice(space + 1).trim() };
  });
}

/**
 * The final stage as `docker import --change` options, ARGs substituted (`args` overrides their
 * defaults). Its COPY must be the whole root filesystem from the build stage, which is what the
 * imported tarball stands for; anything else in the stage would make the two images differ.
 */
function importChanges(stage: Instruction[], args: Record<string, string>): string[] {
  const values: Record<string, string> = {};
  const changes: string[] = [];
  for (const { keyword, args: text } of stage) {
    if (keyword === 'ARG') {
      const [name, value = ''] = text.split('=', 2) as [string, string?];
      values[name] = args[name] ?? value;
    } else if (keyword === 'COPY') {
      assert.equal(
        text,
        '--from=build /rootfs/ /',
        'the runtime stage copies only the assembled root filesystem',
      );
    } else if (['ENV', 'USER', 'WORKDIR', 'ENTRYPOINT', 'CMD', 'LABEL'].includes(keyword)) {
      changes.push(
        '--change',
        `${keyword} ${text.replace(/\$\{(\w+)\}/g, (_, name: string) => values[name] ?? '')}`,
      );
    } else {
      assert.fail(`the runtime stage has a ${keyword}, which docker import cannot reproduce`);
    }
  }
  return changes;
}

describeIntegration('the container image on the test dockerd', () => {
  // registered before useEnv(): after hooks run in order, and this one needs the environment up
  after(async () => {
    await docker(['rmi', '-f', IMAGE], { check: false });
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });
  const env = useEnv();
  let work: string | undefined;
  let version: string;
  /** `docker run` options for the engine's socket, with its group so the non-root user may use it */
  let socket: string[];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'plugctl-image-'));
    version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    assert.match(
      dockerfile,
      /bash image\/rootfs\.sh "\$\(command -v node\)" /,
      'the build stage runs image/rootfs.sh',
    );
    // the build stage's Node is the one the project pins, which the test's root filesystem gets
    const pinned = (
      JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
        devDependencies: { node: string };
      }
    ).devDependencies.node;
    assert.match(
      dockerfile,
      new RegExp(`^ARG NODE_IMAGE=node:${pinned.replaceAll('.', '\\.')}-bookworm-slim$`, 'm'),
    );
    const tarball = await packPlugctl(work);
    const rootfs = join(work, 'rootfs');
    await run(
      'bash',
      [join(ROOT, 'image/rootfs.sh'), join(ROOT, 'node_modules/node/bin/node'), tarball, rootfs],
      {
        env: { ...PINNED_NODE_ENV, NPM_OFFLINE: '1' },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    await run('tar', ['-C', rootfs, '-cf', join(work, 'rootfs.tar'), '.']);
    const changes = importChanges(finalStage(dockerfile), { VERSION: version, REVISION: 'test' });
    await docker(['import', ...changes, join(work, 'rootfs.tar'), IMAGE], { timeoutMs: 300_000 });
    await rm(rootfs, { recursive: true, force: true });
    const gid = (await stat(env().socketPath)).gid;
    socket = ['-v', `${env().socketPath}:/var/run/docker.sock`, '--group-add', String(gid)];
  });

  /** `docker run --rm` of the image with `options`, then plugctl's `args`. */
  const plugctl = (options: string[], args: string[]) =>
    docker(['run', '--rm', '--network', 'host', ...options, IMAGE, ...args], {
      check: false,
      timeoutMs: 300_000,
    });

  it("carries the Dockerfile's settings: a non-root user, the entrypoint, the OCI labels", async () => {
    const [inspect] = JSON.parse((await docker(['image', 'inspect', IMAGE])).stdout) as {
      Config: { User: string; Entrypoint: string[]; Labels: Record<string, string>; Env: string[] };
    }[];
    assert.equal(inspect?.Config.User, `${UID}:${UID}`);
    assert.deepEqual(inspect?.Config.Entrypoint, [
      '/usr/local/bin/node',
      '/usr/local/lib/node_modules/plugctl/bin/plugctl.js',
    ]);
    assert.equal(inspect?.Config.Labels['org.opencontainers.image.title'], 'plugctl');
    assert.equal(inspect?.Config.Labels['org.opencontainers.image.version'], version);
    assert.equal(inspect?.Config.Labels['org.opencontainers.image.licenses'], 'Apache-2.0');
    assert.ok(inspect?.Config.Env.includes('PLUGCTL_STATE_DIR=/var/lib/plugctl'));
  });

  it('runs `plugctl version` as the non-root user: the engine, its API version and its hazards, through the socket', async () => {
    const result = await plugctl(socket, ['version', '-o', 'json']);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      plugctl: { version: string; node: string };
      store: string;
      engine: { reachable: boolean; version: string; apiVersion: string; hazards: { id: string }[] };
    };
    assert.deepEqual(report.plugctl, { version, node: process.versions.node });
    assert.equal(report.store, 'docker');
    assert.equal(report.engine.reachable, true);
    assert.equal(report.engine.version, env().engineVersion);
    assert.match(report.engine.apiVersion, /^1\.\d+$/);
    const { engineHazards } = await import('../../controller/store/docker/engine-version.ts');
    assert.deepEqual(
      report.engine.hazards.map((h) => h.id),
      engineHazards(env().engineVersion).map((h) => h.id),
    );
  });

  it("is refused the socket without the socket's group: the user is not root", async () => {
    const mode = (await stat(env().socketPath)).mode;
    assert.equal(mode & 0o006, 0, 'the socket is closed to others');
    const result = await plugctl(
      ['-v', `${env().socketPath}:/var/run/docker.sock`],
      ['version', '-o', 'json'],
    );
    assert.equal(result.code, 1, result.stderr);
    const report = JSON.parse(result.stdout) as {
      engine: { reachable: boolean; error: { message: string } };
    };
    assert.equal(report.engine.reachable, false);
    assert.match(report.engine.error.message, /EACCES/);
  });

  it('converges a plugin through the mounted socket, and a second apply changes nothing', async () => {
    // the documents readable by the image's user, the state directory its own, as on a host
    const docs = await mkdtemp(join(work!, 'docs-'));
    await chmod(docs, 0o755);
    const state = await mkdtemp(join(work!, 'state-'));
    await chown(state, UID, UID);
    await writeFile(
      join(docs, 'vol.yaml'),
      [
        'apiVersion: plugctl.dev/v1alpha1',
        'kind: DockerPlugin',
        'metadata: { name: vol }',
        'spec:',
        `  remote: ${env().registry}/test/vol:1.0`,
        '  alias: vol',
        '  privileges: [{ name: network, value: [host] }]',
        '  settings: { env: { GREETING: "from the image" } }',
        '',
      ].join('\n'),
    );
    const mounts = [...socket, '-v', `${docs}:/etc/plugctl/plugins.d:ro`, '-v', `${state}:/var/lib/plugctl`];
    // a `vol` left on the shared engine by an earlier suite would be adopted rather than created
    await docker(['plugin', 'rm', '-f', 'vol'], { check: false });
    const first = await plugctl(mounts, ['apply', '-f', '/etc/plugctl/plugins.d']);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    // a non-root container without the host's /run/docker/plugins cannot probe the plugin: apply
    // says so instead of calling it Ready or Unresponsive
    assert.match(
      first.stdout,
      /^dockerplugin\/vol created \(Ready not checked: .*\/run\/docker\/plugins is not visible to plugctl/m,
    );

    // the state of the world, asked of the engine directly
    const [plugin] = JSON.parse((await docker(['plugin', 'inspect', 'vol'])).stdout) as {
      Enabled: boolean;
      PluginReference: string;
      Settings: { Env: string[] };
    }[];
    assert.equal(plugin?.Enabled, true);
    assert.equal(plugin?.PluginReference, `${env().registry}/test/vol:1.0`);
    assert.ok(plugin?.Settings.Env.includes('GREETING=from the image'));
    // the inventory the container wrote, as the non-root user
    assert.equal((await stat(join(state, 'inventory.json'))).uid, UID);

    const second = await plugctl(mounts, ['apply', '-f', '/etc/plugctl/plugins.d']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^dockerplugin\/vol unchanged$/m);
  });
});
