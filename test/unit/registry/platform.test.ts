/** Host platform mapping, normalisation and selection of an index entry. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectPlatform,
} from '../../../controller/registry/platform.ts';
import type { Platform } from '../../../controller/registry/platform.ts';

describe('hostPlatform', () => {
  const table: [string, string, string | undefined, boolean, Platform][] = [
    ['linux', 'x64', undefined, true, { os: 'linux', architecture: 'amd64' }],
    ['linux', 'arm64', undefined, true, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['linux', 'arm', '7', true, { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux', 'arm', '6', true, { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['linux', 'ia32', undefined, true, { os: 'linux', architecture: '386' }],
    ['linux', 'ppc64', undefined, true, { os: 'linux', architecture: 'ppc64le' }],
    ['linux', 'ppc64', undefined, false, { os: 'linux', architecture: 'ppc64' }],
    ['linux', 's390x', undefined, true, { os: 'linux', architecture: 's390x' }],
    ['linux', 'riscv64', undefined, true, { os: 'linux', architecture: 'riscv64' }],
    ['win32', 'x64', undefined, true, { os: 'windows', architecture: 'amd64' }],
    ['darwin', 'arm64', undefined, true, { os: 'darwin', architecture: 'arm64', variant: 'v8' }],
  ];
  for (const [os, arch, armVersion, le, expected] of table) {
    it(`${os}/${arch}${armVersion !== undefined ? ` (arm v${armVersion})` : ''}${le ? '' : ' big-endian'} -> ${formatPlatform(expected)}`, () => {
      assert.deepEqual(hostPlatform(os, arch, armVersion, le), expected);
    });
  }
  it('defaults to this process', () => {
    const platform = hostPlatform();
    assert.equal(platform.os, process.platform === 'win32' ? 'windows' : process.platform);
    if (process.arch === 'x64') assert.equal(platform.architecture, 'amd64');
  });
});

describe('normalizePlatform / platformMatches', () => {
  it('treats arm64 without a variant as arm64/v8', () => {
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm64' }), {
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8',
    });
    assert.ok(
      platformMatches(
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
        { os: 'linux', architecture: 'arm64' },
      ),
    );
  });
  it('treats arm without a variant as arm/v7, and amd64/v1 as amd64', () => {
    assert.ok(
      platformMatches(
        { os: 'linux', architecture: 'arm' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
      ),
    );
    assert.ok(
      !platformMatches(
        { os: 'linux', architecture: 'arm', variant: 'v6' },
        { os: 'linux', architecture: 'arm' },
      ),
    );
    assert.ok(
      platformMatches(
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'amd64', variant: 'v1' },
      ),
    );
  });
  it('maps aarch64 and x86_64 aliases', () => {
    assert.ok(
      platformMatches({ os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'arm64' }),
    );
    assert.ok(
      platformMatches({ os: 'Linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' }),
    );
  });
  it('never matches another os or architecture', () => {
    assert.ok(
      !platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' }),
    );
    assert.ok(
      !platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }),
    );
    assert.ok(
      !platformMatches(
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'amd64', variant: 'v3' },
      ),
    );
  });
});

describe('selectPlatform', () => {
  const entries: (Platform | undefined)[] = [
    undefined,
    { os: 'unknown', architecture: 'unknown' },
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
    { os: 'linux', architecture: 'amd64' },
  ];
  it('picks the first matching entry', () => {
    assert.equal(selectPlatform({ os: 'linux', architecture: 'amd64' }, entries), 2);
    assert.equal(selectPlatform({ os: 'linux', architecture: 'arm64' }, entries), 3);
  });
  it('returns -1 when nothing matches, and never picks an entry without a platform', () => {
    assert.equal(selectPlatform({ os: 'linux', architecture: 's390x' }, entries), -1);
    assert.equal(selectPlatform({ os: 'linux', architecture: 'amd64' }, [undefined]), -1);
  });
});

describe('parsePlatform / formatPlatform', () => {
  it('round-trips', () => {
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
  });
  it('refuses malformed text', () => {
    for (const text of ['linux', 'linux/', '/amd64', 'a/b/c/d', ''])
      assert.equal(parsePlatform(text), undefined, text);
  });
});
