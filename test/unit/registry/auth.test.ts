/** WWW-Authenticate parsing, token scopes, token responses and the token cache. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  basicAuthorization,
  parseScope,
  parseTokenResponse,
  parseWwwAuthenticate,
  repositoryScope,
  TokenCache,
} from '../../../controller/registry/auth.ts';

describe('parseWwwAuthenticate', () => {
  it("parses distribution's Bearer challenge", () => {
    assert.deepEqual(
      parseWwwAuthenticate(
        'Bearer realm="http://127.0.0.1:37373/token",service="plugctl-test-registry",scope="repository:team/tok:pull,push"',
      ),
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'http://127.0.0.1:37373/token',
            service: 'plugctl-test-registry',
            scope: 'repository:team/tok:pull,push',
          },
        },
      ],
    );
  });
  it('keeps the error parameter of a rejected token', () => {
    const [challenge] = parseWwwAuthenticate(
      'Bearer realm="https://auth.example/token",error="invalid_token"',
    );
    assert.equal(challenge?.params['error'], 'invalid_token');
  });
  it('parses Basic, case-insensitive schemes and names, and token values', () => {
    assert.deepEqual(parseWwwAuthenticate('BASIC Realm=registry'), [
      { scheme: 'basic', params: { realm: 'registry' } },
    ]);
  });
  it('parses several challenges in one header and across header values', () => {
    const parsed = parseWwwAuthenticate('Basic realm="a", Bearer realm="https://t/x", service="s"');
    assert.deepEqual(
      parsed.map((c) => c.scheme),
      ['basic', 'bearer'],
    );
    assert.equal(parsed[1]?.params['service'], 's');
    assert.deepEqual(
      parseWwwAuthenticate(['Basic realm="a"', 'Bearer realm="b"']).map((c) => c.params['realm']),
      ['a', 'b'],
    );
  });
  it('unescapes quoted strings with commas and quotes inside', () => {
    const [challenge] = parseWwwAuthenticate('Bearer realm="https://t/x?a=1,b=2",scope="say \\"hi\\""');
    assert.equal(challenge?.params['realm'], 'https://t/x?a=1,b=2');
    assert.equal(challenge?.params['scope'], 'say "hi"');
  });
  it('keeps a token68 credential', () => {
    assert.deepEqual(parseWwwAuthenticate('Negotiate abc+/def=='), [
      { scheme: 'negotiate', params: { token68: 'abc+/def==' } },
    ]);
  });
  it('never throws on garbage', () => {
    for (const text of [
      '',
      ',,,',
      '=',
      '"',
      'Bearer realm="unterminated',
      '  Bearer  ,  realm = x ',
      '@@@',
    ]) {
      assert.doesNotThrow(() => parseWwwAuthenticate(text), text);
    }
    assert.deepEqual(parseWwwAuthenticate(undefined), []);
  });
});

describe('scopes', () => {
  it("writes Docker's plugin scope", () => {
    assert.equal(repositoryScope('vieux/sshfs', ['pull'], 'plugin'), 'repository(plugin):vieux/sshfs:pull');
    assert.equal(repositoryScope('a/b', ['pull', 'push'], 'plugin'), 'repository(plugin):a/b:pull,push');
    assert.equal(repositoryScope('a/b', ['pull']), 'repository:a/b:pull');
  });
  it('parses scopes, class and all', () => {
    assert.deepEqual(parseScope('repository(plugin):a/b:pull,push'), {
      type: 'repository',
      class: 'plugin',
      name: 'a/b',
      actions: ['pull', 'push'],
    });
    assert.deepEqual(parseScope('repository:host:5000/a:pull'), {
      type: 'repository',
      class: '',
      name: 'host:5000/a',
      actions: ['pull'],
    });
    assert.equal(parseScope('nonsense'), undefined);
  });
});

describe('basicAuthorization', () => {
  it('encodes user:password', () => {
    assert.equal(basicAuthorization('bob', 'p:w'), `Basic ${Buffer.from('bob:p:w').toString('base64')}`);
  });
});

describe('parseTokenResponse', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads token or access_token', () => {
    assert.equal(parseTokenResponse({ token: 'a' }, now)?.token, 'a');
    assert.equal(parseTokenResponse({ access_token: 'b' }, now)?.token, 'b');
    assert.equal(parseTokenResponse({ token: '', access_token: 'c' }, now)?.token, 'c');
    assert.equal(parseTokenResponse({}, now), undefined);
    assert.equal(parseTokenResponse('x', now), undefined);
  });
  it('honours expires_in, with a floor of 60 s and a 10% margin', () => {
    assert.equal(parseTokenResponse({ token: 'a', expires_in: 300 }, now)?.expiresAt, now + 270_000);
    assert.equal(parseTokenResponse({ token: 'a', expires_in: 5 }, now)?.expiresAt, now + 54_000);
    assert.equal(parseTokenResponse({ token: 'a' }, now)?.expiresAt, now + 54_000);
  });
  it('counts from issued_at when it is in the past, never from the future', () => {
    const past = new Date(now - 100_000).toISOString();
    assert.equal(
      parseTokenResponse({ token: 'a', expires_in: 300, issued_at: past }, now)?.expiresAt,
      now - 100_000 + 270_000,
    );
    const future = new Date(now + 100_000).toISOString();
    assert.equal(
      parseTokenResponse({ token: 'a', expires_in: 300, issued_at: future }, now)?.expiresAt,
      now + 270_000,
    );
  });
});

describe('TokenCache', () => {
  it('caches per key until expiry, then fetches again', async () => {
    let clock = 0;
    const cache = new TokenCache(() => clock);
    let fetches = 0;
    const fetch = async () => ({ token: `t${++fetches}`, expiresAt: clock + 1000 });
    const key = TokenCache.key('https://auth/token', 'svc', 'repository(plugin):a:pull');
    assert.equal(await cache.get(key, fetch), 't1');
    assert.equal(await cache.get(key, fetch), 't1');
    clock = 999;
    assert.equal(await cache.get(key, fetch), 't1');
    clock = 1000;
    assert.equal(await cache.get(key, fetch), 't2');
    assert.equal(
      await cache.get(TokenCache.key('https://auth/token', 'svc', 'repository(plugin):b:pull'), fetch),
      't3',
    );
    cache.invalidate(key);
    assert.equal(await cache.get(key, fetch), 't4');
  });
  it('shares one fetch between concurrent callers and forgets failures', async () => {
    const cache = new TokenCache(() => 0);
    let fetches = 0;
    const slow = async () => {
      fetches++;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return { token: 'shared', expiresAt: 10_000 };
    };
    const results = await Promise.all([cache.get('k', slow), cache.get('k', slow), cache.get('k', slow)]);
    assert.deepEqual(results, ['shared', 'shared', 'shared']);
    assert.equal(fetches, 1);
    await assert.rejects(
      cache.get('bad', async () => Promise.reject(new Error('denied'))),
      /denied/,
    );
    assert.equal(await cache.get('bad', async () => ({ token: 'ok', expiresAt: 10_000 })), 'ok');
  });
});
