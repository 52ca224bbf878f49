/**
 * Hostile build contexts for `plugctl create` (EmbeddedStore.createPlugin, what the command runs)
 * and for the planner's and the docker store's reading of contexts (inspectContext): symlinks out
 * of the context, a rootfs that is a symlink, a config.json that is not JSON. Nothing outside the
 * context is read, no error quotes a file's content, and symlinks inside rootfs/ are stored as
 * symlinks, as `docker plugin create` stores them.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, afterEach, before, describe, it } from 'node:test';
import { volConfig } from '../conformance/fixtures.ts';
import { inspectContext } from '../../controller/store/context.ts';
import type { EmbeddedStore } from '../../controller/store/embedded/store.ts';
import { rejectsWith } from '../errors.ts';
import { tarOf, tree } from '../unit/store/embedded/helpers.ts';
import { REACHABLE, fingerprint, hostileClient, openStore, sandbox } from './harness.ts';
import type { Sandbox } from './harness.ts';

let box: Sandbox;
let world: string;
let store: EmbeddedStore;
let client: ReturnType<typeof hostileClient>;
let contexts = 0;
/** the decoy's secret, which no message may quote */
let secret: string;

before(async () => {
  box = await sandbox('contexts');
  secret = await readFile(join(box.outside, 'etc', 'shadow'), 'utf8');
  world = await fingerprint([...REACHABLE, box.outside]);
  client = hostileClient();
  store = await openStore(box.root, client);
});

afterEach(async () => {
  assert.deepEqual(await readFileOrEmpty(join(box.root, 'tmp')), [], 'no staging left');
});

after(async () => {
  await store.close();
  await client.close();
  assert.equal(
    await fingerprint([...REACHABLE, box.outside]),
    world,
    'nothing outside the store root changed',
  );
  await box.remove();
});

async function readFileOrEmpty(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return readdir(dir).catch(() => []);
}

/** A context directory with a valid config.json and rootfs/bin/plugind, then `tweak` applied. */
async function context(tweak: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(box.dir, `ctx-${++contexts}`);
  await mkdir(join(dir, 'rootfs', 'bin'), { recursive: true });
  await writeFile(join(dir, 'rootfs', 'bin', 'plugind'), '#!/bin/sh\n', { mode: 0o755 });
  await writeFile(join(dir, 'config.json'), JSON.stringify(volConfig('ctx')));
  await tweak(dir);
  return dir;
}

/** Neither the message nor anything the error carries quotes `content`. */
function quotesNothing(error: Error, ...contents: string[]): void {
  const everything = inspect(error, { depth: 10 });
  for (const content of contents) {
    for (const line of content.split('\n').filter((l) => l.length > 8)) {
      assert.ok(!everything.includes(line.slice(0, 16)), `the error quotes file content: ${error.message}`);
    }
  }
}

describe('config.json that leaves the context', () => {
  for (const target of ['/etc/shadow', 'decoy']) {
    it(`a config.json symlink to ${target === 'decoy' ? 'a file outside the context' : target} is CONTEXT_INVALID, quoting nothing`, async () => {
      const ctx = await context(async (dir) => {
        const { rm } = await import('node:fs/promises');
        await rm(join(dir, 'config.json'));
        await symlink(
          target === 'decoy' ? join(box.outside, 'etc', 'shadow') : target,
          join(dir, 'config.json'),
        );
      });
      const created = await rejectsWith(
        store.createPlugin('hostile/link:1', ctx),
        'CONTEXT_INVALID',
        'stalled',
      );
      assert.match(created.message, /config\.json is a symlink to a file outside the context/);
      quotesNothing(created, secret, await readFile('/etc/shadow', 'utf8').catch(() => ''));
      const inspected = await rejectsWith(inspectContext(ctx), 'CONTEXT_INVALID', 'stalled');
      quotesNothing(inspected, secret);
      assert.deepEqual(await store.list(), []);
    });
  }

  it('a config.json symlink inside the context is followed', async () => {
    const ctx = await context(async (dir) => {
      const { rename } = await import('node:fs/promises');
      await mkdir(join(dir, 'configs'));
      await rename(join(dir, 'config.json'), join(dir, 'configs', 'v1.json'));
      await symlink('configs/v1.json', join(dir, 'config.json'));
    });
    const report = await store.createPlugin('hostile/inside:1', ctx);
    assert.equal(report.name, 'hostile/inside:1');
    await store.remove('hostile/inside:1', false);
  });

  it('a config.json that is not JSON is CONTEXT_INVALID, never quoting its content', async () => {
    const ctx = await context((dir) =>
      writeFile(join(dir, 'config.json'), `not json: TOP-SECRET-${'x'.repeat(40)}\n`),
    );
    const error = await rejectsWith(store.createPlugin('hostile/json:1', ctx), 'CONTEXT_INVALID', 'stalled');
    assert.match(error.message, /config\.json is not valid JSON \(syntax error( at byte \d+)?\)/);
    assert.ok(!inspect(error, { depth: 10 }).includes('TOP-SECRET'), error.message);
  });

  it('a tar context whose config.json is a symlink is CONTEXT_INVALID', async () => {
    const tar = join(box.dir, 'link-config.tar');
    await writeFile(
      tar,
      await tarOf([
        { name: 'config.json', type: 'symlink', linkname: '/etc/shadow' },
        { name: 'rootfs/', type: 'directory' },
        { name: 'rootfs/bin/plugind', content: '#!/bin/sh\n' },
      ]),
    );
    const error = await rejectsWith(store.createPlugin('hostile/tar:1', tar), 'CONTEXT_INVALID', 'stalled');
    assert.match(error.message, /config\.json in the archive is a symlink, not a file/);
    await rejectsWith(inspectContext(tar), 'CONTEXT_INVALID', 'stalled');
  });
});

describe('symlinks in rootfs', () => {
  it('rootfs/etc -> /etc is stored as a symlink; nothing of the host /etc is copied', async () => {
    const ctx = await context((dir) => symlink('/etc', join(dir, 'rootfs', 'etc')));
    const report = await store.createPlugin('hostile/etc:1', ctx);
    const installed = await tree(store.layout.rootfs(report.id));
    assert.deepEqual(installed, ['d bin', 'f bin/plugind', 'l etc -> /etc']);
    const info = await inspectContext(ctx);
    assert.match(info.digest, /^sha256:/);
    await store.remove('hostile/etc:1', false);
  });

  it('a rootfs that is itself a symlink (to /etc) is CONTEXT_INVALID', async () => {
    const ctx = await context(async (dir) => {
      const { rm } = await import('node:fs/promises');
      await rm(join(dir, 'rootfs'), { recursive: true });
      await symlink('/etc', join(dir, 'rootfs'));
    });
    const error = await rejectsWith(
      store.createPlugin('hostile/rootfs:1', ctx),
      'CONTEXT_INVALID',
      'stalled',
    );
    assert.match(error.message, /rootfs is a symlink; it must be a directory inside the context/);
    await rejectsWith(inspectContext(ctx), 'CONTEXT_INVALID', 'stalled');
    assert.deepEqual(await store.list(), []);
  });
});
