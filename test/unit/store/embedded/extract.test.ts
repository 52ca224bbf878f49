/**
 * Safe extraction, against real files in temp directories: every hostile entry is refused with its
 * name and nothing lands outside the rootfs; whiteouts, opaque directories, modes, links, device
 * nodes and decompression bombs behave as documented in extract.ts.
 */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { LayerError } from '../../../../controller/store/embedded/errors.ts';
import { applyLayer, entryComponents } from '../../../../controller/store/embedded/extract.ts';
import type { ExtractLimits } from '../../../../controller/store/embedded/extract.ts';
import { chunked, tarOf, tempDir, tgzOf, tree } from './helpers.ts';
import type { TarEntry } from './helpers.ts';

let dir: { path: string; remove: () => Promise<void> };
let rootfs: string;
let outside: string;

beforeEach(async () => {
  dir = await tempDir('extract');
  // the rootfs sits two levels down so that escapes of one or two `..` land somewhere visible
  outside = join(dir.path, 'host');
  rootfs = join(outside, 'plugin', 'rootfs');
  await mkdir(rootfs, { recursive: true });
  await writeFile(join(outside, 'secret'), 'host file');
});

afterEach(async () => {
  await dir.remove();
});

async function apply(entries: readonly TarEntry[], options: { gzip?: boolean; limits?: ExtractLimits } = {}) {
  const bytes = options.gzip === false ? await tarOf(entries) : await tgzOf(entries);
  return applyLayer(chunked(bytes), rootfs, {
    layer: 'sha256:test',
    ...(options.limits !== undefined ? { limits: options.limits } : {}),
  });
}

async function refused(
  entries: readonly TarEntry[],
  code: string,
  entry: string | RegExp,
): Promise<LayerError> {
  try {
    await apply(entries);
  } catch (error) {
    assert.ok(error instanceof LayerError, `expected a LayerError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (typeof entry === 'string') assert.ok(error.message.includes(JSON.stringify(entry)), error.message);
    else assert.match(error.message, entry);
    return error;
  }
  assert.fail(`expected ${code}`);
}

/** Everything outside the rootfs is as the test left it. */
async function hostUntouched(): Promise<void> {
  assert.deepEqual(
    (await tree(outside)).filter((line) => !line.includes('plugin/rootfs/') && line !== 'd plugin/rootfs'),
    ['d plugin', 'f secret'],
  );
  assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'host file');
}

describe('entry names', () => {
  const cases: [string, string[] | 'unsafe'][] = [
    ['a/b', ['a', 'b']],
    ['./a//b/', ['a', 'b']],
    ['.', []],
    ['./', []],
    ['../x', 'unsafe'],
    ['a/../../x', 'unsafe'],
    ['a/../b', 'unsafe'],
    ['/etc/passwd', 'unsafe'],
    ['//x', 'unsafe'],
  ];
  for (const [name, expected] of cases) {
    it(`${JSON.stringify(name)} -> ${JSON.stringify(expected)}`, () => {
      if (expected === 'unsafe') {
        assert.throws(
          () => entryComponents(name, 'L'),
          (error: unknown) =>
            error instanceof LayerError && error.code === 'LAYER_UNSAFE' && error.entry === name,
        );
      } else {
        assert.deepEqual(entryComponents(name, 'L'), expected);
      }
    });
  }
});

describe('applyLayer: ordinary content', () => {
  it('writes files, directories, symlinks and hardlinks with modes, owners and times', async () => {
    const report = await apply([
      { name: 'bin/', type: 'directory', mode: 0o755 },
      { name: 'bin/tool', content: '#!/bin/sh\n', mode: 0o4755, uid: 1234, gid: 5678 },
      { name: 'bin/sh', type: 'symlink', linkname: 'tool' },
      { name: 'bin/tool2', type: 'link', linkname: 'bin/tool' },
      { name: 'etc/conf', content: 'x=1', mode: 0o600, mtime: new Date('2020-01-02T03:04:05Z') },
      { name: 'ro/', type: 'directory', mode: 0o555 },
      { name: 'ro/inside', content: 'written before the dir became read-only' },
    ]);
    assert.equal(report.entries, 7);
    assert.deepEqual(await tree(rootfs), [
      'd bin',
      'l bin/sh -> tool',
      'f bin/tool',
      'f bin/tool2',
      'd etc',
      'f etc/conf',
      'd ro',
      'f ro/inside',
    ]);
    const tool = await stat(join(rootfs, 'bin/tool'));
    assert.equal(tool.mode & 0o7777, 0o4755, 'set-uid kept (moby keeps it)');
    if (process.getuid?.() === 0) {
      assert.equal(tool.uid, 1234);
      assert.equal(tool.gid, 5678);
    }
    assert.equal((await stat(join(rootfs, 'bin/tool2'))).ino, tool.ino, 'hardlink shares the inode');
    assert.equal((await stat(join(rootfs, 'etc/conf'))).mtime.toISOString(), '2020-01-02T03:04:05.000Z');
    assert.equal((await stat(join(rootfs, 'ro'))).mode & 0o777, 0o555);
    await hostUntouched();
    await chmod(join(rootfs, 'ro'), 0o755); // so that the cleanup can delete ro/inside without root
  });

  it('reads an uncompressed tar as well as a gzip one', async () => {
    await apply([{ name: 'plain', content: 'p' }], { gzip: false });
    assert.equal(await readFile(join(rootfs, 'plain'), 'utf8'), 'p');
  });

  it('follows an in-rootfs symlink in a parent, taking an absolute target relative to the rootfs', async () => {
    await apply([
      { name: 'usr/lib/', type: 'directory' },
      { name: 'lib', type: 'symlink', linkname: '/usr/lib' },
      { name: 'lib/libc.so', content: 'c' },
      { name: 'rel', type: 'symlink', linkname: 'usr/./lib/../lib' },
      { name: 'rel/libm.so', content: 'm' },
    ]);
    assert.equal(await readFile(join(rootfs, 'usr/lib/libc.so'), 'utf8'), 'c');
    assert.equal(await readFile(join(rootfs, 'usr/lib/libm.so'), 'utf8'), 'm');
    await hostUntouched();
  });

  it('replaces an existing symlink instead of writing through it, even one pointing outside', async () => {
    await apply([
      { name: 'out', type: 'symlink', linkname: '../../secret' },
      { name: 'out', content: 'replaced' },
    ]);
    assert.ok((await lstat(join(rootfs, 'out'))).isFile());
    assert.equal(await readFile(join(rootfs, 'out'), 'utf8'), 'replaced');
    await hostUntouched();
  });

  it('keeps a symlink whose target is outside: a link target is only a name', async () => {
    await apply([{ name: 'etc/passwd', type: 'symlink', linkname: '/../../../etc/passwd' }]);
    assert.equal(await readlink(join(rootfs, 'etc/passwd')), '/../../../etc/passwd');
    await hostUntouched();
  });

  it('replaces a file by a directory and a directory by a file', async () => {
    await apply([
      { name: 'x', content: 'file' },
      { name: 'x/', type: 'directory' },
      { name: 'x/y', content: 'in dir' },
      { name: 'z/', type: 'directory' },
      { name: 'z/w', content: 'w' },
      { name: 'z', content: 'now a file' },
    ]);
    assert.deepEqual(await tree(rootfs), ['d x', 'f x/y', 'f z']);
  });

  it('creates FIFOs and skips device nodes, reporting them', async () => {
    const report = await apply([
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 },
      { name: 'caps', content: 'x', pax: { 'SCHILY.xattr.security.capability': 'abc' } },
    ]);
    assert.deepEqual(await tree(rootfs), ['f caps', 'd dev', 'd run', 'p run/fifo']);
    assert.equal(report.skipped.length, 3);
    assert.match(report.skipped.join('\n'), /dev\/null: character-device 1:3 not created/);
    assert.match(report.skipped.join('\n'), /caps: extended attributes not applied \(security.capability\)/);
  });
});

describe('applyLayer: hostile entries are refused with their name', () => {
  it('a ../ entry', async () => {
    await refused(
      [
        { name: 'ok', content: 'a' },
        { name: '../../escaped', content: 'x' },
      ],
      'LAYER_UNSAFE',
      '../../escaped',
    );
    await hostUntouched();
  });

  it('an absolute entry', async () => {
    await refused([{ name: '/abs/file', content: 'x' }], 'LAYER_UNSAFE', '/abs/file');
  });

  it('a ../ inside a longer name', async () => {
    await refused([{ name: 'a/b/../../../x', content: 'x' }], 'LAYER_UNSAFE', 'a/b/../../../x');
    await hostUntouched();
  });

  it('a write through a symlink that climbs out', async () => {
    await refused(
      [
        { name: 'evil', type: 'symlink', linkname: '../..' },
        { name: 'evil/secret', content: 'overwritten' },
      ],
      'LAYER_UNSAFE',
      'evil/secret',
    );
    await hostUntouched();
  });

  it('a write through a chain of symlinks that climbs out', async () => {
    await refused(
      [
        { name: 'a/', type: 'directory' },
        { name: 'a/up', type: 'symlink', linkname: '..' },
        { name: 'b', type: 'symlink', linkname: 'a/up/a/up/..' },
        { name: 'b/x', content: 'x' },
      ],
      'LAYER_UNSAFE',
      'b/x',
    );
    await hostUntouched();
  });

  it('a symlink loop', async () => {
    await refused(
      [
        { name: 'l1', type: 'symlink', linkname: 'l2' },
        { name: 'l2', type: 'symlink', linkname: 'l1' },
        { name: 'l1/x', content: 'x' },
      ],
      'LAYER_UNSAFE',
      /more than 40 symlinks/,
    );
  });

  it('a hardlink to a path outside', async () => {
    await refused(
      [{ name: 'h', type: 'link', linkname: '../../secret' }],
      'LAYER_UNSAFE',
      /hardlink target of "h"/,
    );
    await refused(
      [{ name: 'h', type: 'link', linkname: '/etc/passwd' }],
      'LAYER_UNSAFE',
      /hardlink target of "h"/,
    );
    await hostUntouched();
  });

  it('a hardlink through a symlink that climbs out', async () => {
    await refused(
      [
        { name: 'up', type: 'symlink', linkname: '../..' },
        { name: 'h', type: 'link', linkname: 'up/secret' },
      ],
      'LAYER_UNSAFE',
      'h',
    );
    await hostUntouched();
  });

  it('a hardlink to a directory or to nothing', async () => {
    await refused(
      [
        { name: 'd/', type: 'directory' },
        { name: 'h', type: 'link', linkname: 'd' },
      ],
      'LAYER_UNSAFE',
      'h',
    );
    await refused([{ name: 'h2', type: 'link', linkname: 'missing' }], 'LAYER_INVALID', 'h2');
  });

  it('a whiteout of ..', async () => {
    await refused([{ name: 'a/.wh...', content: '' }], 'LAYER_UNSAFE', /climbs out|invalid name/);
    await hostUntouched();
  });
});

describe('applyLayer: layers in order with whiteouts', () => {
  it('.wh.NAME removes files and directories of lower layers, through in-rootfs symlinks too', async () => {
    await apply([
      { name: 'a/b', content: 'b' },
      { name: 'a/c', content: 'c' },
      { name: 'd/e', content: 'e' },
      { name: 'link', type: 'symlink', linkname: 'a' },
    ]);
    await apply([
      { name: 'a/.wh.b', content: '' },
      { name: '.wh.d', content: '' },
      { name: 'link/.wh.c', content: '' },
      { name: '.wh.never-existed', content: '' },
    ]);
    assert.deepEqual(await tree(rootfs), ['d a', 'l link -> a']);
  });

  it('an opaque directory keeps only what its own layer wrote, whatever the entry order', async () => {
    await apply([
      { name: 'x/1', content: '1' },
      { name: 'x/sub/2', content: '2' },
      { name: 'y/keep', content: 'y' },
    ]);
    await apply([
      { name: 'x/3', content: '3' },
      { name: 'x/.wh..wh..opq', content: '' },
      { name: 'x/sub2/4', content: '4' },
    ]);
    assert.deepEqual(await tree(rootfs), ['d x', 'f x/3', 'd x/sub2', 'f x/sub2/4', 'd y', 'f y/keep']);
  });

  it('keeps directories this layer created implicitly when its opaque marker comes after them', async () => {
    await apply([{ name: 'x/old', content: 'o' }]);
    await apply([
      { name: 'x/new/deep', content: 'n' },
      { name: 'x/.wh..wh..opq', content: '' },
    ]);
    assert.deepEqual(await tree(rootfs), ['d x', 'd x/new', 'f x/new/deep']);
  });

  it('applies an opaque marker at the top of the rootfs', async () => {
    await apply([
      { name: 'a', content: 'a' },
      { name: 'b/c', content: 'c' },
    ]);
    await apply([
      { name: '.wh..wh..opq', content: '' },
      { name: 'd', content: 'd' },
    ]);
    assert.deepEqual(await tree(rootfs), ['f d']);
  });

  it('ignores aufs metadata whiteouts', async () => {
    await apply([
      { name: '.wh..wh.plnk/1234', content: '' },
      { name: 'f', content: 'f' },
    ]);
    assert.deepEqual(await tree(rootfs), ['f f']);
  });
});

describe('applyLayer: bounded decompression and bad input', () => {
  it('refuses a layer that inflates beyond the ratio cap as GZIP_BOMB', async () => {
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const tar = await tarOf([{ name: 'zeros', content: zeros }]);
    const bomb = gzipSync(tar, { level: 9 });
    assert.ok(tar.byteLength / bomb.byteLength > 500);
    await assert.rejects(
      applyLayer(chunked(bomb), rootfs, { layer: 'sha256:bomb' }),
      (error: unknown) =>
        error instanceof LayerError &&
        error.code === 'GZIP_BOMB' &&
        /sha256:bomb/.test(error.message) &&
        /100:1/.test(error.message),
    );
  });

  it('refuses a layer beyond the size cap even at a plausible ratio', async () => {
    const limits: ExtractLimits = { maxBytes: 100_000, maxRatio: 100, ratioGraceBytes: 16 * 1024 * 1024 };
    const random = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 2654435761) >>> 24));
    await assert.rejects(
      apply([{ name: 'big', content: random }], { limits }),
      (error: unknown) =>
        error instanceof LayerError && error.code === 'GZIP_BOMB' && /100000 bytes/.test(error.message),
    );
  });

  it('accepts a well-compressing layer under the grace size', async () => {
    await apply([{ name: 'zeros', content: Buffer.alloc(8 * 1024 * 1024) }]);
    assert.equal((await stat(join(rootfs, 'zeros'))).size, 8 * 1024 * 1024);
  });

  it('refuses zstd layers as LAYER_UNSUPPORTED and garbage as LAYER_INVALID', async () => {
    await assert.rejects(
      applyLayer(chunked(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0])), rootfs, { layer: 'z' }),
      (error: unknown) => error instanceof LayerError && error.code === 'LAYER_UNSUPPORTED',
    );
    await assert.rejects(
      applyLayer(chunked(Buffer.alloc(1000, 7)), rootfs, { layer: 'g' }),
      (error: unknown) => error instanceof LayerError && error.code === 'LAYER_INVALID',
    );
  });

  it('reports a truncated gzip stream as LAYER_INVALID', async () => {
    const good = await tgzOf([{ name: 'f', content: 'x'.repeat(100_000) }]);
    await assert.rejects(
      applyLayer(chunked(good.subarray(0, good.byteLength - 20)), rootfs, { layer: 'sha256:cut' }),
      (error: unknown) =>
        error instanceof LayerError && error.code === 'LAYER_INVALID' && /sha256:cut/.test(error.message),
    );
  });

  it('passes the source error through (a digest mismatch from the registry stream)', async () => {
    const good = await tgzOf([{ name: 'f', content: 'x' }]);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield* chunked(good);
      throw Object.assign(new Error('digest mismatch'), { code: 'DIGEST_MISMATCH' });
    }
    await assert.rejects(applyLayer(failing(), rootfs, { layer: 'l' }), /digest mismatch/);
  });
});
