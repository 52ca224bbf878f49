/** Manifest parsing and digests. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  digestOf,
  isDigest,
  ManifestShapeError,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_PLUGIN_CONFIG,
  parseManifest,
} from '../../../controller/registry/manifest.ts';

const D = `sha256:${'a'.repeat(64)}`;
const bytes = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));

describe('digests', () => {
  it('computes sha256 (and the algorithm of a given digest)', () => {
    assert.equal(
      digestOf(Buffer.from('')),
      'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    assert.match(digestOf(Buffer.from(''), `sha512:${'0'.repeat(128)}`), /^sha512:[0-9a-f]{128}$/);
  });
  it('accepts only well-formed digests of known algorithms', () => {
    assert.ok(isDigest(D));
    for (const bad of ['sha256:abc', `md5:${'a'.repeat(32)}`, `sha256:${'A'.repeat(64)}`, D.slice(1)])
      assert.ok(!isDigest(bad), bad);
  });
});

describe('parseManifest', () => {
  const config = { mediaType: MEDIA_TYPE_PLUGIN_CONFIG, digest: D, size: 10 };
  it('parses a Docker plugin manifest', () => {
    const manifest = parseManifest(
      bytes({ schemaVersion: 2, mediaType: MEDIA_TYPE_DOCKER_MANIFEST, config, layers: [config] }),
      undefined,
    );
    assert.equal(manifest.kind, 'manifest');
    assert.equal(manifest.mediaType, MEDIA_TYPE_DOCKER_MANIFEST);
    if (manifest.kind === 'manifest') assert.deepEqual(manifest.config, config);
  });
  it('takes the media type from Content-Type, or infers it, when the body has none', () => {
    assert.equal(
      parseManifest(
        bytes({ schemaVersion: 2, config, layers: [] }),
        `${MEDIA_TYPE_OCI_MANIFEST}; charset=utf-8`,
      ).mediaType,
      MEDIA_TYPE_OCI_MANIFEST,
    );
    assert.equal(
      parseManifest(bytes({ schemaVersion: 2, manifests: [] }), 'application/json').mediaType,
      MEDIA_TYPE_OCI_INDEX,
    );
    assert.equal(
      parseManifest(bytes({ schemaVersion: 2, config, layers: [] }), undefined).mediaType,
      MEDIA_TYPE_OCI_MANIFEST,
    );
  });
  it('parses indexes and manifest lists with platforms', () => {
    const index = parseManifest(
      bytes({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_DOCKER_MANIFEST_LIST,
        manifests: [
          {
            mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
            digest: D,
            size: 5,
            platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          },
        ],
      }),
      undefined,
    );
    assert.equal(index.kind, 'index');
    if (index.kind === 'index')
      assert.deepEqual(index.manifests[0]?.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  });
  for (const [name, value, pattern] of [
    ['not JSON', 'nope', /not valid JSON/],
    ['schema 1', { schemaVersion: 1 }, /schemaVersion 1/],
    [
      'an unknown media type',
      { schemaVersion: 2, mediaType: 'application/x-nope' },
      /not a manifest plugctl understands/,
    ],
    [
      'a bad digest',
      {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
        config: { ...config, digest: 'sha256:1' },
        layers: [],
      },
      /config.digest/,
    ],
    [
      'a negative size',
      {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
        config: { ...config, size: -1 },
        layers: [],
      },
      /config.size/,
    ],
    ['no layers', { schemaVersion: 2, mediaType: MEDIA_TYPE_DOCKER_MANIFEST, config }, /no layers/],
    ['an index without manifests', { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX }, /no manifests/],
  ] as const) {
    it(`refuses ${name}`, () => {
      const raw = typeof value === 'string' ? Buffer.from(value) : bytes(value);
      assert.throws(
        () => parseManifest(raw, undefined),
        (error: unknown) => error instanceof ManifestShapeError && pattern.test(error.message),
      );
    });
  }
});
