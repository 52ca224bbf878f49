/** Transport rules: plain-http hosts, backoff, Retry-After, redirects and auth, retryable errors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  allowsPlainHttp,
  backoffDelay,
  errorCode,
  isLoopbackHost,
  isRetryableNetworkError,
  isTimeoutError,
  parseRetryAfter,
  redirectTarget,
  redirectRefusal,
  isLinkLocalOrMetadataHost,
} from '../../../controller/registry/http.ts';

describe('isLoopbackHost / allowsPlainHttp', () => {
  it('recognises loopback hosts with and without ports', () => {
    for (const host of [
      '127.0.0.1',
      '127.0.0.1:5000',
      '127.1.2.3:80',
      'localhost',
      'localhost:5000',
      '[::1]:5000',
      '::1',
      'LOCALHOST',
    ]) {
      assert.ok(isLoopbackHost(host), host);
    }
    for (const host of [
      '128.0.0.1',
      '10.0.0.1:5000',
      'registry.example.com',
      '[::2]:5000',
      'localhost.example.com',
      '127.0.0.1.example.com',
    ]) {
      assert.ok(!isLoopbackHost(host), host);
    }
  });
  it('allows listed insecure registries by host:port or by host', () => {
    assert.ok(allowsPlainHttp('reg.lan:5000', ['reg.lan:5000']));
    assert.ok(allowsPlainHttp('reg.lan:5000', ['reg.lan']));
    assert.ok(allowsPlainHttp('reg.lan:5000', ['http://reg.lan:5000/']));
    assert.ok(!allowsPlainHttp('reg.lan:5001', ['reg.lan:5000']));
    assert.ok(!allowsPlainHttp('ghcr.io', []));
    assert.ok(allowsPlainHttp('127.0.0.1:5100', []));
  });
});

describe('backoffDelay', () => {
  it('doubles from the base, caps, and jitters within [cap/2, cap]', () => {
    assert.equal(
      backoffDelay(0, 100, 10_000, () => 1),
      100,
    );
    assert.equal(
      backoffDelay(0, 100, 10_000, () => 0),
      50,
    );
    assert.equal(
      backoffDelay(3, 100, 10_000, () => 1),
      800,
    );
    assert.equal(
      backoffDelay(20, 100, 10_000, () => 1),
      10_000,
    );
    for (let i = 0; i < 100; i++) {
      const delay = backoffDelay(2, 100, 10_000);
      assert.ok(delay >= 200 && delay <= 400, String(delay));
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');
  it('reads delay-seconds, capped', () => {
    assert.equal(parseRetryAfter('2', now, 30_000), 2000);
    assert.equal(parseRetryAfter(' 0 ', now, 30_000), 0);
    assert.equal(parseRetryAfter('3600', now, 30_000), 30_000);
  });
  it('reads an HTTP date relative to now, capped and never negative', () => {
    assert.equal(parseRetryAfter('Wed, 21 Oct 2026 07:28:05 GMT', now, 30_000), 5000);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2026 08:28:00 GMT', now, 30_000), 30_000);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2026 07:00:00 GMT', now, 30_000), 0);
  });
  it('ignores absent and malformed values', () => {
    for (const value of [undefined, '', '-5', '1.5', 'soon', 'Mon, 99 Foo 2026']) {
      assert.equal(parseRetryAfter(value, now, 30_000), undefined, String(value));
    }
  });
});

describe('redirectTarget', () => {
  const from = new URL('https://registry.example.com/v2/a/blobs/sha256:abc');
  it('keeps Authorization on the same origin, relative or absolute', () => {
    assert.deepEqual(redirectTarget(from, '/v2/a/blobs/other'), {
      url: new URL('https://registry.example.com/v2/a/blobs/other'),
      keepAuthorization: true,
    });
    assert.equal(redirectTarget(from, 'https://registry.example.com:443/x').keepAuthorization, true);
  });
  it('drops Authorization for another host, port or scheme', () => {
    assert.equal(redirectTarget(from, 'https://s3.amazonaws.com/bucket/blob?sig=1').keepAuthorization, false);
    assert.equal(redirectTarget(from, 'https://registry.example.com:8443/x').keepAuthorization, false);
    assert.equal(redirectTarget(from, 'http://registry.example.com/x').keepAuthorization, false);
    assert.equal(redirectTarget(from, 'https://sub.registry.example.com/x').keepAuthorization, false);
  });
});

describe('error classification', () => {
  const undiciLike = (code: string): Error => Object.assign(new Error(code), { code });
  it('finds codes through cause chains', () => {
    const wrapped = Object.assign(new Error('fetch failed'), { cause: undiciLike('ECONNRESET') });
    assert.equal(errorCode(wrapped), 'ECONNRESET');
    assert.ok(isRetryableNetworkError(wrapped));
  });
  it('retries connection failures and header timeouts, not programming errors', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'UND_ERR_SOCKET',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_HEADERS_TIMEOUT',
    ]) {
      assert.ok(isRetryableNetworkError(undiciLike(code)), code);
    }
    for (const code of ['UND_ERR_INVALID_ARG', 'ERR_INVALID_URL'])
      assert.ok(!isRetryableNetworkError(undiciLike(code)), code);
    assert.ok(!isRetryableNetworkError(new TypeError('x')));
  });
  it('recognises timeouts', () => {
    assert.ok(isTimeoutError(undiciLike('UND_ERR_BODY_TIMEOUT')));
    assert.ok(isTimeoutError(undiciLike('UND_ERR_HEADERS_TIMEOUT')));
    assert.ok(!isTimeoutError(undiciLike('ECONNRESET')));
  });
});

describe('isLinkLocalOrMetadataHost', () => {
  it('knows link-local and metadata addresses in every spelling a URL normalises to', () => {
    for (const host of [
      '169.254.169.254',
      '169.254.0.1:8080',
      '[fe80::1]',
      '[::ffff:a9fe:a9fe]',
      '[fd00:ec2::254]',
      '100.100.100.200',
      'metadata.google.internal',
      'metadata.google.internal.',
    ]) {
      assert.ok(isLinkLocalOrMetadataHost(host), host);
    }
    assert.equal(new URL('http://2852039166/').host, '169.254.169.254', 'URLs normalise numeric hosts');
    for (const host of ['10.0.0.1', '127.0.0.1:5000', '[::1]:5000', 'registry.example.com', '169.255.0.1']) {
      assert.ok(!isLinkLocalOrMetadataHost(host), host);
    }
  });
});

describe('redirectRefusal', () => {
  const loopback = new URL('http://127.0.0.1:5000/v2/a/blobs/x');
  const remote = new URL('https://registry.example.com/v2/a/blobs/x');
  it('refuses plain http to a host not allowed it, whatever the scheme it came from', () => {
    assert.match(
      redirectRefusal(loopback, new URL('http://10.1.2.3/x'), []) ?? '',
      /plain-http 10\.1\.2\.3 refused/,
    );
    assert.match(redirectRefusal(remote, new URL('http://cdn.example.com/x'), []) ?? '', /plain-http/);
  });
  it('allows plain http to a registry listed as insecure, and https anywhere else', () => {
    assert.equal(redirectRefusal(loopback, new URL('http://reg.lan:5000/x'), ['reg.lan:5000']), undefined);
    assert.equal(redirectRefusal(remote, new URL('https://cdn.example.com/x'), []), undefined);
    assert.equal(redirectRefusal(loopback, new URL('http://127.0.0.1:6000/x'), []), undefined);
  });
  it('refuses link-local and metadata targets even over https or when listed as insecure', () => {
    assert.match(
      redirectRefusal(loopback, new URL('http://169.254.169.254/'), ['169.254.169.254']) ?? '',
      /metadata/,
    );
    assert.match(redirectRefusal(remote, new URL('https://[fe80::1]/'), []) ?? '', /link-local/);
  });
  it('refuses a remote registry steering requests at this host', () => {
    assert.match(redirectRefusal(remote, new URL('http://127.0.0.1:9365/metrics'), []) ?? '', /loopback/);
  });
  it('refuses schemes other than http(s)', () => {
    assert.match(
      redirectRefusal(remote, new URL('file:///etc/shadow'), []) ?? '',
      /unsupported scheme file:/,
    );
  });
});
