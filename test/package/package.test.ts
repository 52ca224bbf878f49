// The npm package as a user gets it: `npm pack` (pack.ts), the tarball's contents, then
// `npm install -g` into a temporary prefix, offline (the dependencies come from the npm cache
// `make deps` filled), and the installed `plugctl` run.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { packPlugctl, PINNED_NODE_ENV as ENV, ROOT } from './pack.ts';

const run = promisify(execFile);
const MANIFEST = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
/** What a package of compiled JavaScript may hold, path by path inside the tarball. */
const ALLOWED =
  /^package\/(package\.json|README\.md|LICENSE|bin\/(plugctl|launch)\.js|dist\/controller\/.+\.(js|json)|schema\/[^/]+\.json)$/;

describe('the npm package', { timeout: 600_000 }, () => {
  let work: string;
  let tarball: string;
  let prefix: string;
  let installed: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'plugctl-package-'));
    tarball = await packPlugctl(work);
    prefix = join(work, 'prefix');
    await run(
      'npm',
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        tarball,
      ],
      {
        cwd: work,
        env: ENV,
      },
    );
    installed = join(prefix, 'lib/node_modules/plugctl');
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('holds the compiled program and nothing else: no sources, tests, fixtures, benchmarks or CI', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const entries = stdout.trim().split('\n');
    assert.deepEqual(
      entries.filter((entry) => !ALLOWED.test(entry)),
      [],
    );
    for (const needed of [
      'package/bin/plugctl.js',
      'package/bin/launch.js',
      'package/dist/controller/main.js',
      'package/dist/controller/cli/global-options.json',
    ]) {
      assert.ok(entries.includes(needed), `${needed} is packed`);
    }
  });

  it('installs with its dependencies and runs `plugctl version`, with the version of its package.json', async () => {
    const { stdout } = await run(join(prefix, 'bin/plugctl'), ['version', '--store', 'embedded'], {
      env: ENV,
    });
    assert.match(stdout, new RegExp(`^plugctl: +${MANIFEST.version.replaceAll('.', '\\.')}$`, 'm'));
    assert.match(stdout, new RegExp(`^Node\\.js: +${process.versions.node.replaceAll('.', '\\.')}$`, 'm'));
    assert.ok(!existsSync(join(installed, 'controller')), 'no TypeScript sources are installed');
    const short = await run(join(prefix, 'bin/plugctl'), ['--version'], { env: ENV });
    assert.equal(short.stdout.trim(), MANIFEST.version);
  });

  it('runs `plugctl run` from the compiled code: logs at info as JSON, serves health and metrics, stops on SIGTERM', async () => {
    const docs = join(work, 'docs');
    const state = join(work, 'state');
    mkdirSync(docs);
    const args = ['--state-dir', state, '--store', 'embedded', '--root', join(state, 'plugins')];
    const child = spawn(
      join(prefix, 'bin/plugctl'),
      [...args, 'run', '-f', docs, '--listen', '127.0.0.1:0'],
      {
        env: ENV,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const lines: Array<Record<string, unknown>> = [];
      await new Promise<void>((resolve, reject) => {
        let buffer = '';
        child.stderr.on('data', (chunk: Buffer) => {
          buffer += chunk.toString();
          const complete = buffer.split('\n');
          buffer = complete.pop()!;
          for (const line of complete) lines.push(JSON.parse(line) as Record<string, unknown>);
          if (lines.some((l) => l['msg'] === 'watching')) resolve();
        });
        void exited.then((code) => reject(new Error(`plugctl run exited ${code}: ${JSON.stringify(lines)}`)));
      });
      const starting = lines.find((l) => l['msg'] === 'plugctl run starting');
      assert.equal(starting?.['level'], 30);
      assert.equal(starting?.['version'], MANIFEST.version);
      const address = String(starting?.['listen']);
      assert.equal((await fetch(`http://${address}/healthz`)).status, 200);
      const metrics = await (await fetch(`http://${address}/metrics`)).text();
      assert.match(
        metrics,
        new RegExp(
          `^plugctl_build_info\\{version="${MANIFEST.version.replaceAll('.', '\\.')}",node="[^"]+"\\} 1$`,
          'm',
        ),
      );
      assert.match(metrics, /^process_resident_memory_bytes [1-9]\d*$/m);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  it('reads its version from the installed package.json at run time', async () => {
    const manifestPath = join(installed, 'package.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, version: '9.8.7-test' }));
    try {
      const { stdout } = await run(
        join(prefix, 'bin/plugctl'),
        ['version', '-o', 'json', '--store', 'embedded'],
        { env: ENV },
      );
      assert.deepEqual(JSON.parse(stdout), {
        plugctl: { version: '9.8.7-test', node: process.versions.node },
        store: 'embedded',
      });
    } finally {
      writeFileSync(manifestPath, JSON.stringify(manifest));
    }
  });

  it('reports an engine that does not answer, and exits 1', async () => {
    const socket = join(work, 'no-dockerd.sock');
    const result = await run(join(prefix, 'bin/plugctl'), ['version', '-o', 'json'], {
      env: { ...ENV, DOCKER_HOST: `unix://${socket}` },
    }).then(
      () => assert.fail('exit 0 without an engine'),
      (error: { code: number; stdout: string }) => error,
    );
    assert.equal(result.code, 1);
    const report = JSON.parse(result.stdout) as {
      store: string;
      engine: { reachable: boolean; error: { code: string } };
    };
    assert.equal(report.store, 'docker');
    assert.equal(report.engine.reachable, false);
    assert.equal(report.engine.error.code, 'ENGINE_UNREACHABLE');
  });

  it('on an unsupported Node, exits 2 with one line naming the Node found and the one needed', async () => {
    // the pinned Node made to report 20.20.2, and the machine's own Node when it is an old one
    const olds: Array<{ node: string; args: string[]; version: string }> = [
      {
        node: process.execPath,
        args: [
          '--import',
          'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.20.2"})',
        ],
        version: '20.20.2',
      },
    ];
    for (const system of ['/usr/bin/node', '/usr/local/bin/node']) {
      if (!existsSync(system)) continue;
      const { stdout } = await run(system, ['-p', 'process.versions.node']);
      if (Number(stdout.split('.')[0]) < 24) olds.push({ node: system, args: [], version: stdout.trim() });
    }
    for (const old of olds) {
      const result = await run(old.node, [...old.args, join(installed, 'bin/plugctl.js'), 'version'], {
        env: ENV,
      }).then(
        () => assert.fail(`${old.node} ran plugctl`),
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
      assert.equal(result.code, 2, `${old.node}: ${result.stderr}`);
      assert.equal(result.stdout, '');
      const lines = result.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(
        lines[0]!,
        new RegExp(`Node\\.js ${old.version.replaceAll('.', '\\.')} .* needs Node\\.js >=24$`),
      );
    }
  });
});
