// Expected values follow distribution/reference v0.6.0 (vendored by moby) and moby's plugin router
// (getName); several rows are lifted from that package's own test tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpecError } from '../../../controller/errors.ts';
import {
  defaultLocalName,
  familiarName,
  familiarString,
  formatReference,
  hasDigest,
  parseReference,
  withoutDigest,
} from '../../../controller/api/reference.ts';
import type { Reference } from '../../../controller/api/reference.ts';

const D = 'sha256:' + 'f'.repeat(64);
const D2 = 'sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa';
const D512 = 'sha512:' + 'f'.repeat(128);

interface ValidCase {
  input: string;
  ref: Reference;
  full: string;
  familiar: string;
  name: string;
  local: string;
}

const valid: ValidCase[] = [
  {
    input: 'busybox',
    ref: { domain: 'docker.io', path: 'library/busybox', tag: 'latest' },
    full: 'docker.io/library/busybox:latest',
    familiar: 'busybox:latest',
    name: 'busybox',
    local: 'busybox:latest',
  },
  {
    input: 'busybox:1.36',
    ref: { domain: 'docker.io', path: 'library/busybox', tag: '1.36' },
    full: 'docker.io/library/busybox:1.36',
    familiar: 'busybox:1.36',
    name: 'busybox',
    local: 'busybox:1.36',
  },
  {
    input: 'vieux/sshfs:1.2',
    ref: { domain: 'docker.io', path: 'vieux/sshfs', tag: '1.2' },
    full: 'docker.io/vieux/sshfs:1.2',
    familiar: 'vieux/sshfs:1.2',
    name: 'vieux/sshfs',
    local: 'vieux/sshfs:1.2',
  },
  {
    input: 'vieux/sshfs',
    ref: { domain: 'docker.io', path: 'vieux/sshfs', tag: 'latest' },
    full: 'docker.io/vieux/sshfs:latest',
    familiar: 'vieux/sshfs:latest',
    name: 'vieux/sshfs',
    local: 'vieux/sshfs:latest',
  },
  {
    input: 'library/busybox',
    ref: { domain: 'docker.io', path: 'library/busybox', tag: 'latest' },
    full: 'docker.io/library/busybox:latest',
    familiar: 'busybox:latest',
    name: 'busybox',
    local: 'busybox:latest',
  },
  {
    input: 'docker.io/busybox',
    ref: { domain: 'docker.io', path: 'library/busybox', tag: 'latest' },
    full: 'docker.io/library/busybox:latest',
    familiar: 'busybox:latest',
    name: 'busybox',
    local: 'busybox:latest',
  },
  {
    input: 'docker.io/library/busybox:latest',
    ref: { domain: 'docker.io', path: 'library/busybox', tag: 'latest' },
    full: 'docker.io/library/busybox:latest',
    familiar: 'busybox:latest',
    name: 'busybox',
    local: 'busybox:latest',
  },
  {
    input: 'index.docker.io/vieux/sshfs',
    ref: { domain: 'docker.io', path: 'vieux/sshfs', tag: 'latest' },
    full: 'docker.io/vieux/sshfs:latest',
    familiar: 'vieux/sshfs:latest',
    name: 'vieux/sshfs',
    local: 'vieux/sshfs:latest',
  },
  {
    input: 'index.docker.io/busybox',
    ref: { domain: 'docker.io', path: 'library/busybox', tag: 'latest' },
    full: 'docker.io/library/busybox:latest',
    familiar: 'busybox:latest',
    name: 'busybox',
    local: 'busybox:latest',
  },
  {
    // 'library/' is only dropped when a single component follows it
    input: 'docker.io/library/foo/bar',
    ref: { domain: 'docker.io', path: 'library/foo/bar', tag: 'latest' },
    full: 'docker.io/library/foo/bar:latest',
    familiar: 'library/foo/bar:latest',
    name: 'library/foo/bar',
    local: 'library/foo/bar:latest',
  },
  {
    input: 'host:5000/repo',
    ref: { domain: 'host:5000', path: 'repo', tag: 'latest' },
    full: 'host:5000/repo:latest',
    familiar: 'host:5000/repo:latest',
    name: 'host:5000/repo',
    local: 'host:5000/repo:latest',
  },
  {
    // no '/': the part after ':' is a tag, not a port
    input: 'host:5000',
    ref: { domain: 'docker.io', path: 'library/host', tag: '5000' },
    full: 'docker.io/library/host:5000',
    familiar: 'host:5000',
    name: 'host',
    local: 'host:5000',
  },
  {
    input: '127.0.0.1:5000/test/vol:1.0',
    ref: { domain: '127.0.0.1:5000', path: 'test/vol', tag: '1.0' },
    full: '127.0.0.1:5000/test/vol:1.0',
    familiar: '127.0.0.1:5000/test/vol:1.0',
    name: '127.0.0.1:5000/test/vol',
    local: '127.0.0.1:5000/test/vol:1.0',
  },
  {
    // other registries never get 'library/'
    input: 'ghcr.io/busybox',
    ref: { domain: 'ghcr.io', path: 'busybox', tag: 'latest' },
    full: 'ghcr.io/busybox:latest',
    familiar: 'ghcr.io/busybox:latest',
    name: 'ghcr.io/busybox',
    local: 'ghcr.io/busybox:latest',
  },
  {
    input: 'ghcr.io/org/team/plugin:v2',
    ref: { domain: 'ghcr.io', path: 'org/team/plugin', tag: 'v2' },
    full: 'ghcr.io/org/team/plugin:v2',
    familiar: 'ghcr.io/org/team/plugin:v2',
    name: 'ghcr.io/org/team/plugin',
    local: 'ghcr.io/org/team/plugin:v2',
  },
  {
    input: 'localhost/foo',
    ref: { domain: 'localhost', path: 'foo', tag: 'latest' },
    full: 'localhost/foo:latest',
    familiar: 'localhost/foo:latest',
    name: 'localhost/foo',
    local: 'localhost/foo:latest',
  },
  {
    input: 'localhost:5000/foo:dev',
    ref: { domain: 'localhost:5000', path: 'foo', tag: 'dev' },
    full: 'localhost:5000/foo:dev',
    familiar: 'localhost:5000/foo:dev',
    name: 'localhost:5000/foo',
    local: 'localhost:5000/foo:dev',
  },
  {
    // a lone 'localhost' is an official image name, not a domain
    input: 'localhost',
    ref: { domain: 'docker.io', path: 'library/localhost', tag: 'latest' },
    full: 'docker.io/library/localhost:latest',
    familiar: 'localhost:latest',
    name: 'localhost',
    local: 'localhost:latest',
  },
  {
    input: 'example.com',
    ref: { domain: 'docker.io', path: 'library/example.com', tag: 'latest' },
    full: 'docker.io/library/example.com:latest',
    familiar: 'example.com:latest',
    name: 'example.com',
    local: 'example.com:latest',
  },
  {
    input: '[::1]:5000/repo',
    ref: { domain: '[::1]:5000', path: 'repo', tag: 'latest' },
    full: '[::1]:5000/repo:latest',
    familiar: '[::1]:5000/repo:latest',
    name: '[::1]:5000/repo',
    local: '[::1]:5000/repo:latest',
  },
  {
    input: `[2001:db8::1]:5000/repo:tag@${D}`,
    ref: { domain: '[2001:db8::1]:5000', path: 'repo', tag: 'tag', digest: D },
    full: `[2001:db8::1]:5000/repo:tag@${D}`,
    familiar: `[2001:db8::1]:5000/repo:tag@${D}`,
    name: '[2001:db8::1]:5000/repo',
    local: '[2001:db8::1]:5000/repo:tag',
  },
  {
    // upper case makes the first component a domain, whatever else it looks like
    input: 'Foo/bar',
    ref: { domain: 'Foo', path: 'bar', tag: 'latest' },
    full: 'Foo/bar:latest',
    familiar: 'Foo/bar:latest',
    name: 'Foo/bar',
    local: 'Foo/bar:latest',
  },
  {
    input: 'lowercase:Uppercase',
    ref: { domain: 'docker.io', path: 'library/lowercase', tag: 'Uppercase' },
    full: 'docker.io/library/lowercase:Uppercase',
    familiar: 'lowercase:Uppercase',
    name: 'lowercase',
    local: 'lowercase:Uppercase',
  },
  {
    input: 'dock__er/a.b_c-d--e:x_Y.z-1',
    ref: { domain: 'docker.io', path: 'dock__er/a.b_c-d--e', tag: 'x_Y.z-1' },
    full: 'docker.io/dock__er/a.b_c-d--e:x_Y.z-1',
    familiar: 'dock__er/a.b_c-d--e:x_Y.z-1',
    name: 'dock__er/a.b_c-d--e',
    local: 'dock__er/a.b_c-d--e:x_Y.z-1',
  },
  {
    input: `busybox:${'t'.repeat(128)}`,
    ref: { domain: 'docker.io', path: 'library/busybox', tag: 't'.repeat(128) },
    full: `docker.io/library/busybox:${'t'.repeat(128)}`,
    familiar: `busybox:${'t'.repeat(128)}`,
    name: 'busybox',
    local: `busybox:${'t'.repeat(128)}`,
  },
  {
    // digest only: no tag is added, and dockerd names the plugin ':latest'
    input: `busybox@${D2}`,
    ref: { domain: 'docker.io', path: 'library/busybox', digest: D2 },
    full: `docker.io/library/busybox@${D2}`,
    familiar: `busybox@${D2}`,
    name: 'busybox',
    local: 'busybox:latest',
  },
  {
    // tag and digest: both kept; dockerd pulls by digest and names the plugin with the tag
    input: `busybox:1.36@${D2}`,
    ref: { domain: 'docker.io', path: 'library/busybox', tag: '1.36', digest: D2 },
    full: `docker.io/library/busybox:1.36@${D2}`,
    familiar: `busybox:1.36@${D2}`,
    name: 'busybox',
    local: 'busybox:1.36',
  },
  {
    input: `vieux/sshfs@${D}`,
    ref: { domain: 'docker.io', path: 'vieux/sshfs', digest: D },
    full: `docker.io/vieux/sshfs@${D}`,
    familiar: `vieux/sshfs@${D}`,
    name: 'vieux/sshfs',
    local: 'vieux/sshfs:latest',
  },
  {
    input: `host:5000/repo@${D}`,
    ref: { domain: 'host:5000', path: 'repo', digest: D },
    full: `host:5000/repo@${D}`,
    familiar: `host:5000/repo@${D}`,
    name: 'host:5000/repo',
    local: 'host:5000/repo:latest',
  },
  {
    input: `xn--7o8h.com/myimage:xn--7o8h.com@${D512}`,
    ref: { domain: 'xn--7o8h.com', path: 'myimage', tag: 'xn--7o8h.com', digest: D512 },
    full: `xn--7o8h.com/myimage:xn--7o8h.com@${D512}`,
    familiar: `xn--7o8h.com/myimage:xn--7o8h.com@${D512}`,
    name: 'xn--7o8h.com/myimage',
    local: 'xn--7o8h.com/myimage:xn--7o8h.com',
  },
  {
    // 64 hex is only refused on its own: with a domain it is an ordinary name
    input: `docker.io/${'a'.repeat(64)}`,
    ref: { domain: 'docker.io', path: `library/${'a'.repeat(64)}`, tag: 'latest' },
    full: `docker.io/library/${'a'.repeat(64)}:latest`,
    familiar: `${'a'.repeat(64)}:latest`,
    name: 'a'.repeat(64),
    local: `${'a'.repeat(64)}:latest`,
  },
  {
    // the 255 limit counts the path only (reference v0.6.0), not the domain
    input: `example.com/${'a'.repeat(255)}:tag`,
    ref: { domain: 'example.com', path: 'a'.repeat(255), tag: 'tag' },
    full: `example.com/${'a'.repeat(255)}:tag`,
    familiar: `example.com/${'a'.repeat(255)}:tag`,
    name: `example.com/${'a'.repeat(255)}`,
    local: `example.com/${'a'.repeat(255)}:tag`,
  },
  {
    // 'library/' counts towards the limit: 8 + 247 = 255
    input: 'a'.repeat(247),
    ref: { domain: 'docker.io', path: `library/${'a'.repeat(247)}`, tag: 'latest' },
    full: `docker.io/library/${'a'.repeat(247)}:latest`,
    familiar: `${'a'.repeat(247)}:latest`,
    name: 'a'.repeat(247),
    local: `${'a'.repeat(247)}:latest`,
  },
];

interface InvalidCase {
  input: string;
  message: string;
}

const invalid: InvalidCase[] = [
  { input: '', message: 'the reference is empty' },
  { input: ' busybox', message: 'contains whitespace' },
  { input: 'busybox ', message: 'contains whitespace' },
  { input: 'busy box', message: 'contains whitespace' },
  { input: 'busybox\n', message: 'contains whitespace' },
  { input: 'busybox:', message: "the tag after ':' is empty" },
  { input: 'host:5000/repo:', message: "the tag after ':' is empty" },
  { input: 'busybox@', message: "'@' must be followed by a digest" },
  { input: 'busybox:1.0@', message: "'@' must be followed by a digest" },
  { input: 'busybox@sha256', message: "'@' must be followed by a digest" },
  { input: 'busybox@sha256:abc', message: "'@' must be followed by a digest" },
  { input: `busybox@${D}@${D}`, message: "'@' must be followed by a digest" },
  { input: `busybox@sha256:${'f'.repeat(63)}`, message: 'sha256 needs 64 hex characters, got 63' },
  { input: `busybox@sha256:${'f'.repeat(65)}`, message: 'invalid checksum digest length' },
  { input: `busybox@sha256:${'F'.repeat(64)}`, message: 'hex must be lowercase' },
  {
    input: `validname@invaliddigest:${'f'.repeat(64)}`,
    message: 'unsupported digest algorithm "invaliddigest"',
  },
  { input: 'busybox:-dev', message: 'invalid tag "-dev"' },
  { input: 'busybox:.dev', message: 'invalid tag ".dev"' },
  { input: 'busybox:a+b', message: 'invalid tag "a+b"' },
  { input: `busybox:${'t'.repeat(129)}`, message: 'expected 1 to 128 characters' },
  { input: 'a'.repeat(64), message: '64-character hexadecimal string' },
  { input: 'Busybox', message: 'repository name (library/Busybox) must be lowercase' },
  { input: 'Uppercase:tag', message: 'repository name (library/Uppercase) must be lowercase' },
  { input: 'vieux/SSHFS:1.2', message: 'repository name (vieux/SSHFS) must be lowercase' },
  { input: 'ghcr.io/Org/plugin', message: 'repository name (Org/plugin) must be lowercase' },
  { input: 'test:5000/Uppercase/lowercase:tag', message: 'must be lowercase' },
  { input: 'docker///docker', message: 'invalid reference format' },
  { input: 'docker/', message: 'invalid reference format' },
  { input: '-docker', message: 'invalid reference format' },
  { input: 'docker-/docker', message: 'invalid reference format' },
  { input: 'dock..er/docker', message: 'invalid reference format' },
  { input: 'dock_.er/docker', message: 'invalid reference format' },
  { input: '____/____', message: 'invalid reference format' },
  { input: 'aa/asdf$$^/aa', message: 'invalid reference format' },
  { input: 'https://github.com/docker/docker', message: 'invalid reference format' },
  { input: ':justtag', message: 'invalid reference format' },
  { input: `@${D}`, message: 'invalid reference format' },
  { input: 'fc00::1:5000/debian', message: 'invalid reference format' },
  { input: '[fe80::1%eth0]:5000/debian', message: 'invalid reference format' },
  { input: '[::1]:5000', message: 'IPv6 registry host must be followed by /PATH' },
  { input: '[2001:db8::1]', message: 'IPv6 registry host must be followed by /PATH' },
  { input: 'a'.repeat(248), message: 'repository name must not be more than 255 characters' },
  { input: `domain/${'a'.repeat(256)}:tag`, message: 'must not be more than 255 characters' },
  { input: 'my_registry.local/plugin', message: '"my_registry.local" is taken as a registry host' },
];

test('valid references parse, normalise and name like docker', async (t) => {
  for (const c of valid) {
    await t.test(c.input.length > 60 ? `${c.input.slice(0, 60)}...` : c.input, () => {
      const ref = parseReference(c.input);
      assert.deepEqual(ref, c.ref);
      assert.equal(formatReference(ref), c.full);
      assert.equal(familiarString(ref), c.familiar);
      assert.equal(familiarName(ref), c.name);
      assert.equal(defaultLocalName(ref), c.local);
      assert.equal(hasDigest(ref), c.ref.digest !== undefined);
    });
  }
});

test('normalised and familiar strings parse back to the same reference', () => {
  for (const c of valid) {
    const ref = parseReference(c.input);
    assert.deepEqual(parseReference(formatReference(ref)), ref, c.input);
    assert.deepEqual(parseReference(familiarString(ref)), ref, c.input);
  }
});

test('invalid references throw SpecError INVALID_REFERENCE naming the input', async (t) => {
  for (const c of invalid) {
    await t.test(JSON.stringify(c.input.length > 60 ? `${c.input.slice(0, 60)}...` : c.input), () => {
      assert.throws(
        () => parseReference(c.input),
        (error: unknown) => {
          assert.ok(error instanceof SpecError, `expected SpecError, got ${String(error)}`);
          assert.equal(error.code, 'INVALID_REFERENCE');
          assert.equal(error.kind, 'stalled');
          assert.ok(error.message.includes(JSON.stringify(c.input)), error.message);
          assert.ok(error.message.includes(c.message), `${error.message} should mention ${c.message}`);
          return true;
        },
      );
    });
  }
});

test('withoutDigest keeps the tag and falls back to latest like TagNameOnly', () => {
  const tagged = parseReference(`vieux/sshfs:1.2@${D}`);
  assert.deepEqual(withoutDigest(tagged), { domain: 'docker.io', path: 'vieux/sshfs', tag: '1.2' });
  assert.equal(tagged.digest, D, 'the input is not modified');

  const digestOnly = parseReference(`host:5000/repo@${D}`);
  const stripped = withoutDigest(digestOnly);
  assert.deepEqual(stripped, { domain: 'host:5000', path: 'repo', tag: 'latest' });
  assert.equal(hasDigest(stripped), false);
  assert.equal(formatReference(stripped), 'host:5000/repo:latest');
  assert.equal(defaultLocalName(stripped), defaultLocalName(digestOnly));

  const plain = parseReference('busybox');
  assert.deepEqual(withoutDigest(plain), plain);
});

test('a digest-only install and a plain install get the same local name', () => {
  assert.equal(defaultLocalName(parseReference(`vieux/sshfs@${D}`)), 'vieux/sshfs:latest');
  assert.equal(defaultLocalName(parseReference('vieux/sshfs')), 'vieux/sshfs:latest');
  assert.equal(defaultLocalName(parseReference(`vieux/sshfs:1.2@${D}`)), 'vieux/sshfs:1.2');
});

test('pathological input fails without catastrophic backtracking', () => {
  const start = performance.now();
  for (const input of ['a'.repeat(100_000) + '!', 'a-'.repeat(50_000) + '/x!', 'A.'.repeat(50_000) + '/x!']) {
    assert.throws(() => parseReference(input), SpecError);
  }
  // a backtracking regular expression takes minutes or more on these inputs; the parser takes
  // milliseconds. The bound only separates the two, generously, on a busy machine.
  assert.ok(performance.now() - start < 10_000);
});
