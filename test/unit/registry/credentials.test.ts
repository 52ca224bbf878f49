/**
 * Docker credential resolution against real config files in temp dirs and a real credential helper
 * program (a shell script put on PATH), as `docker` itself would use them.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import {
  authKeyFor,
  convertToHostname,
  Credentials,
  credentialsFromAuths,
  encodeRegistryAuth,
  resolveCredentials,
} from '../../../controller/registry/credentials.ts';
import { rejectsWith } from '../../errors.ts';

const HELPER = `#!/bin/sh
# docker-credential-test: answers from a fixed table, logging which server it was asked about
read -r server || true
[ "$1" = get ] || { echo "unexpected action $1" >&2; exit 9; }
echo "$server" >> "$HELPER_LOG"
case "$server" in
  registry.example.com) printf '{"ServerURL":"%s","Username":"alice","Secret":"helper-pa55"}' "$server" ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hubuser","Secret":"hub-pa55"}' "$server" ;;
  tokens.example.com) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-t0ken"}' "$server" ;;
  broken.example.com) echo "boom: keychain locked" >&2; exit 2 ;;
  garbage.example.com) echo "this is not json" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

describe('registry credentials', () => {
  let root: string;
  let binDir: string;
  let helperLog: string;
  let env: NodeJS.ProcessEnv;

  /** A config dir holding `config` as config.json. */
  async function configDir(name: string, config: unknown): Promise<string> {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
    return dir;
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'plugctl-creds-'));
    binDir = join(root, 'bin');
    await mkdir(binDir);
    await writeFile(join(binDir, 'docker-credential-test'), HELPER);
    await chmod(join(binDir, 'docker-credential-test'), 0o755);
    helperLog = join(root, 'helper.log');
    env = {
      PATH: `${binDir}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
      HELPER_LOG: helperLog,
      HOME: join(root, 'home'),
    };
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('normalises registry keys as docker does', () => {
    assert.equal(authKeyFor('docker.io'), 'https://index.docker.io/v1/');
    assert.equal(authKeyFor('index.docker.io'), 'https://index.docker.io/v1/');
    assert.equal(authKeyFor('registry-1.docker.io'), 'https://index.docker.io/v1/');
    assert.equal(authKeyFor('127.0.0.1:5000'), '127.0.0.1:5000');
    assert.equal(convertToHostname('https://ghcr.io/v2/'), 'ghcr.io');
    assert.equal(convertToHostname('http://127.0.0.1:5000'), '127.0.0.1:5000');
  });

  it('is anonymous without a config file', async () => {
    assert.equal(await resolveCredentials('ghcr.io', { configDir: join(root, 'none'), env }), undefined);
  });

  it('reads auths entries: base64 auth, username/password, identity token, under any key form', async () => {
    const dir = await configDir('auths', {
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubby:hub:pass:with:colons') },
        'https://ghcr.io': { username: 'gh', password: 'gh-pass' },
        'http://127.0.0.1:5000/v2/': { auth: b64('local:local-pass') },
        'quay.io': { identitytoken: 'quay-token' },
        'empty.example.com': {},
      },
    });
    const hub = await resolveCredentials('docker.io', { configDir: dir, env });
    assert.equal(hub?.username, 'hubby');
    assert.equal(hub?.password, 'hub:pass:with:colons');
    assert.equal(hub?.serverAddress, 'https://index.docker.io/v1/');
    assert.equal((await resolveCredentials('index.docker.io', { configDir: dir, env }))?.username, 'hubby');

    const gh = await resolveCredentials('ghcr.io', { configDir: dir, env });
    assert.deepEqual([gh?.username, gh?.password], ['gh', 'gh-pass']);
    const local = await resolveCredentials('127.0.0.1:5000', { configDir: dir, env });
    assert.deepEqual([local?.username, local?.password], ['local', 'local-pass']);
    const quay = await resolveCredentials('quay.io', { configDir: dir, env });
    assert.equal(quay?.identityToken, 'quay-token');
    assert.equal(quay?.password, undefined);

    assert.equal(await resolveCredentials('empty.example.com', { configDir: dir, env }), undefined);
    assert.equal(await resolveCredentials('other.example.com', { configDir: dir, env }), undefined);
  });

  it('finds the config through DOCKER_CONFIG, then HOME/.docker', async () => {
    const dir = await configDir('via-env', { auths: { 'ghcr.io': { auth: b64('envuser:envpass') } } });
    assert.equal(
      (await resolveCredentials('ghcr.io', { env: { ...env, DOCKER_CONFIG: dir } }))?.username,
      'envuser',
    );
    await configDir('home/.docker', { auths: { 'ghcr.io': { auth: b64('homeuser:homepass') } } });
    assert.equal((await resolveCredentials('ghcr.io', { env }))?.username, 'homeuser');
  });

  it('asks the helper named in credHelpers, with the server address on stdin', async () => {
    const dir = await configDir('helpers', {
      auths: { 'registry.example.com': { auth: b64('file-user:file-pass') } },
      credHelpers: { 'registry.example.com': 'test', 'tokens.example.com': 'test', 'docker.io': 'test' },
    });
    await rm(helperLog, { force: true });
    const creds = await resolveCredentials('registry.example.com', { configDir: dir, env });
    assert.deepEqual([creds?.username, creds?.password], ['alice', 'helper-pa55']);
    const token = await resolveCredentials('tokens.example.com', { configDir: dir, env });
    assert.equal(token?.identityToken, 'refresh-t0ken');
    assert.equal(token?.username, undefined);
    const hub = await resolveCredentials('docker.io', { configDir: dir, env });
    assert.equal(hub?.username, 'hubuser');
    assert.deepEqual((await readFile(helperLog, 'utf8')).trim().split('\n'), [
      'registry.example.com',
      'tokens.example.com',
      'https://index.docker.io/v1/',
    ]);
  });

  it('uses credsStore for every registry, and a helper that knows nothing means anonymous', async () => {
    const dir = await configDir('store', {
      credsStore: 'test',
      auths: { 'unknown.example.com': { auth: b64('ignored:ignored') } },
    });
    assert.equal(
      (await resolveCredentials('registry.example.com', { configDir: dir, env }))?.username,
      'alice',
    );
    // the helper is authoritative, as in the docker CLI: the auths entry is not a fallback
    assert.equal(await resolveCredentials('unknown.example.com', { configDir: dir, env }), undefined);
  });

  it('reports broken helpers and configs without quoting secrets', async () => {
    const dir = await configDir('broken', {
      credHelpers: {
        'broken.example.com': 'test',
        'garbage.example.com': 'test',
        'gone.example.com': 'absent',
      },
    });
    const broken = await rejectsWith(
      resolveCredentials('broken.example.com', { configDir: dir, env }),
      'CREDENTIALS_INVALID',
    );
    assert.match(broken.message, /docker-credential-test exited 2/);
    assert.match(broken.message, /keychain locked/);
    assert.equal(broken.kind, 'stalled');
    const garbage = await rejectsWith(
      resolveCredentials('garbage.example.com', { configDir: dir, env }),
      'CREDENTIALS_INVALID',
    );
    assert.match(garbage.message, /other than JSON/);
    const gone = await rejectsWith(
      resolveCredentials('gone.example.com', { configDir: dir, env }),
      'CREDENTIALS_INVALID',
    );
    assert.match(gone.message, /docker-credential-absent .*not on PATH/);

    const secret = 'hunter2-in-a-broken-file';
    const bad = await configDir('badjson', `{"auths": {"x": {"auth": "${secret}"}`);
    const invalid = await rejectsWith(
      resolveCredentials('x', { configDir: bad, env }),
      'CREDENTIALS_INVALID',
    );
    assert.match(invalid.message, /not valid JSON/);
    assert.ok(!inspect(invalid, { depth: 10 }).includes(secret));

    const badAuth = await configDir('badauth', {
      auths: { 'x.example.com': { auth: b64('no-colon-here') } },
    });
    const malformed = await rejectsWith(
      resolveCredentials('x.example.com', { configDir: badAuth, env }),
      'CREDENTIALS_INVALID',
    );
    assert.ok(!malformed.message.includes('no-colon-here'));
  });

  it('redacts secrets when logged, inspected or serialised', () => {
    const creds = new Credentials({ serverAddress: 'ghcr.io', username: 'u', password: 'pa55-secret' });
    const token = new Credentials({ serverAddress: 'ghcr.io', identityToken: 'tok-secret' });
    for (const shown of [
      inspect(creds),
      JSON.stringify(creds),
      String(creds),
      inspect({ nested: [creds, token] }),
      JSON.stringify({ token }),
    ]) {
      assert.ok(!shown.includes('pa55-secret'), shown);
      assert.ok(!shown.includes('tok-secret'), shown);
    }
    assert.deepEqual(JSON.parse(JSON.stringify(creds)), {
      serverAddress: 'ghcr.io',
      username: 'u',
      password: '[redacted]',
    });
  });

  it('encodes X-Registry-Auth as padded base64url JSON', () => {
    // '>>>?' encodes to '+/' in standard base64, so the URL-safe alphabet is exercised
    const creds = new Credentials({ serverAddress: 'ghcr.io', username: 'u', password: 'p>>>?' });
    const encoded = encodeRegistryAuth(creds, 'ghcr.io');
    assert.ok(!/[+/]/.test(encoded), encoded);
    assert.equal(encoded.length % 4, 0, 'padded like Go base64.URLEncoding');
    assert.deepEqual(JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')), {
      username: 'u',
      password: 'p>>>?',
      serveraddress: 'ghcr.io',
    });
    const token = encodeRegistryAuth(
      new Credentials({ serverAddress: 'x', identityToken: 't' }),
      'https://index.docker.io/v1/',
    );
    assert.deepEqual(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')), {
      identitytoken: 't',
      serveraddress: 'https://index.docker.io/v1/',
    });
    assert.equal(Buffer.from(encodeRegistryAuth(undefined, 'x'), 'base64url').toString('utf8'), '{}');
  });
});

describe('credentialsFromAuths (a dockerconfigjson Secret)', () => {
  it('finds the host as Docker does, by exact key or by the host part of a URL key', () => {
    const auths = {
      'https://127.0.0.1:5443/v2/': { auth: b64('bob:s3cret') },
      'https://index.docker.io/v1/': { username: 'hub', password: 'hub-pw' },
    };
    const local = credentialsFromAuths(auths, '127.0.0.1:5443', 'Secret ns/pull');
    assert.equal(local?.username, 'bob');
    assert.equal(local?.password, 's3cret');
    assert.equal(credentialsFromAuths(auths, 'docker.io', 'Secret ns/pull')?.username, 'hub');
    assert.equal(credentialsFromAuths(auths, 'ghcr.io', 'Secret ns/pull'), undefined);
    assert.equal(credentialsFromAuths(undefined, 'ghcr.io', 'Secret ns/pull'), undefined);
  });

  it('a broken entry names the Secret and never quotes it', () => {
    assert.throws(
      () =>
        credentialsFromAuths(
          { 'r.example': { auth: b64('no-colon-t0psecret') } },
          'r.example',
          'Secret ns/pull',
        ),
      (error: Error) => /Secret ns\/pull/.test(error.message) && !error.message.includes('t0psecret'),
    );
  });
});
