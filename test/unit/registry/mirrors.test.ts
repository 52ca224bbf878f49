// Registry mirrors: the configuration (registries.yaml and --registry-mirror), the mirror form of a
// reference, per-mirror credentials, and how a plugin fetched from a mirror keeps its declared identity.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import {
  insecureMirrorHosts,
  mergeMirrors,
  mirrorCas,
  mirrorsOf,
  onMirror,
  parseMirrorFlags,
  parseRegistriesYaml,
  withMirrorCredentials,
} from '../../../controller/registry/mirrors.ts';
import { parseReference, formatReference } from '../../../controller/api/reference.ts';
import { PlugctlError } from '../../../controller/errors.ts';
import { withDeclaredIdentity } from '../../../controller/reconcile/identity.ts';
import { plan } from '../../../controller/reconcile/plan.ts';
import { describeAction } from '../../../controller/cli/render.ts';
import {
  desired,
  facts,
  installed,
  inventory,
  opts,
  privs,
  remoteInfo,
  NAME,
  REMOTE,
} from '../reconcile/fixtures.ts';

const YAML = `
mirrors:
  docker.io:
    - host: mirror.example.com:5000
      insecure: true
      auth: { username: bot, passwordFile: /etc/pw }
    - 127.0.0.1:5001/cache
  127.0.0.1:5000:
    - host: 127.0.0.1:5002
`;

function configError(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof PlugctlError);
    assert.equal(error.code, 'MIRROR_CONFIG_INVALID');
    assert.match(error.message, pattern);
    return true;
  });
}

describe('registries.yaml and --registry-mirror', () => {
  test('parses mirrors in order with their settings and credentials', () => {
    const parsed = parseRegistriesYaml(YAML, 'registries.yaml', (path) => {
      assert.equal(path, '/etc/pw');
      return 'hunter2\n';
    });
    const hub = parsed.get('docker.io')!;
    assert.deepEqual(
      hub.map((m) => [m.host, m.prefix, m.insecure]),
      [
        ['mirror.example.com:5000', '', true],
        ['127.0.0.1:5001', 'cache', false],
      ],
    );
    assert.equal(hub[0]!.credentials?.username, 'bot');
    assert.equal(hub[0]!.credentials?.password, 'hunter2');
    assert.ok(!inspect(parsed, { depth: 10 }).includes('hunter2'), 'the password never prints');
    assert.deepEqual(
      parsed.get('127.0.0.1:5000')?.map((m) => m.host),
      ['127.0.0.1:5002'],
    );
  });

  test('flags replace the file list of the registry they name; others stay', () => {
    const file = parseRegistriesYaml(YAML, 'registries.yaml', () => 'pw');
    const flags = parseMirrorFlags(['docker.io=10.0.0.1:5000,10.0.0.2', 'index.docker.io=10.0.0.3']);
    const config = mergeMirrors(file, flags);
    assert.deepEqual(
      mirrorsOf(config, 'docker.io').map((m) => m.host),
      ['10.0.0.1:5000', '10.0.0.2', '10.0.0.3'],
    );
    assert.deepEqual(
      mirrorsOf(config, '127.0.0.1:5000').map((m) => m.host),
      ['127.0.0.1:5002'],
    );
    assert.deepEqual(mirrorsOf(config, 'ghcr.io'), []);
    assert.deepEqual(insecureMirrorHosts(mergeMirrors(file, new Map())), ['mirror.example.com:5000']);
  });

  test('refuses what it does not understand, naming where', () => {
    configError(
      () => parseMirrorFlags(['docker.io']),
      /--registry-mirror docker.io: expected REGISTRY=MIRROR/,
    );
    configError(() => parseMirrorFlags(['docker.io=']), /expected/);
    configError(() => parseMirrorFlags(['docker.io=a,,b']), /empty mirror/);
    configError(() => parseMirrorFlags(['docker.io=host:99999']), /port 1 to 65535/);
    configError(() => parseMirrorFlags(['docker.io=host/UPPER']), /path prefix/);
    configError(
      () => parseRegistriesYaml('mirrors:\n  docker.io:\n    - { host: a, insecur: true }\n', 'f'),
      /unknown key "insecur"/,
    );
    configError(() => parseRegistriesYaml('mirror: {}\n', 'f'), /unknown key "mirror"/);
    configError(() => parseRegistriesYaml('mirrors:\n  docker.io: a\n', 'f'), /must be a list/);
    configError(
      () => parseRegistriesYaml('mirrors:\n  docker.io:\n    - { insecure: true }\n', 'f'),
      /host is required/,
    );
    configError(
      () => parseRegistriesYaml('mirrors:\n  docker.io:\n    - { host: a, auth: { username: u } }\n', 'f'),
      /exactly one of password and passwordFile/,
    );
    configError(
      () =>
        parseRegistriesYaml(
          'mirrors:\n  docker.io:\n    - { host: a, auth: { username: u, passwordFile: /x } }\n',
          'f',
          () => {
            throw Object.assign(new Error('nope'), { code: 'ENOENT' });
          },
        ),
      /cannot read passwordFile \/x \(ENOENT\)/,
    );
    configError(() => parseRegistriesYaml('a: [', 'f'), /not valid YAML/);
    configError(() => parseRegistriesYaml('x: &a 1\ny: *a\n', 'f'), /not valid YAML|unknown key/);
    assert.equal(parseRegistriesYaml('', 'f').size, 0);
  });

  test('ca: a PEM file read at load; anything else is refused', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const yaml = (ca: string): string => `mirrors:\n  docker.io:\n    - { host: m.example:443, ca: ${ca} }\n`;
    const parsed = parseRegistriesYaml(yaml('/etc/ca.pem'), 'f', () => pem);
    const config = mergeMirrors(parsed, new Map());
    assert.equal(mirrorCas(config).get('m.example:443'), pem);
    configError(
      () => parseRegistriesYaml(yaml('relative.pem'), 'f', () => pem),
      /absolute path of a PEM file/,
    );
    configError(
      () => parseRegistriesYaml(yaml('/etc/ca.pem'), 'f', () => 'not a cert'),
      /holds no PEM certificate/,
    );
  });

  test('a reference on a mirror keeps repository, tag and digest, under the prefix', () => {
    const [plain, prefixed] = parseMirrorFlags(['docker.io=127.0.0.1:5001,127.0.0.1:5002/cache']).get(
      'docker.io',
    )!;
    const ref = parseReference('acme/vol:1.0@sha256:' + 'a'.repeat(64));
    assert.equal(
      formatReference(onMirror(ref, plain!)),
      `127.0.0.1:5001/acme/vol:1.0@sha256:${'a'.repeat(64)}`,
    );
    assert.equal(
      formatReference(onMirror(parseReference('acme/vol:1.0'), prefixed!)),
      '127.0.0.1:5002/cache/acme/vol:1.0',
    );
  });

  test("credentials: a mirror's own first, the Docker files for every other host", async () => {
    const config = mergeMirrors(
      parseRegistriesYaml(YAML, 'f', () => 'pw'),
      new Map(),
    );
    const asked: string[] = [];
    const lookup = withMirrorCredentials(config, async (host) => {
      asked.push(host);
      return undefined;
    });
    assert.equal((await lookup('mirror.example.com:5000'))?.username, 'bot');
    assert.equal(await lookup('127.0.0.1:5001'), undefined);
    assert.deepEqual(asked, ['127.0.0.1:5001']);
  });
});

describe('a plugin fetched from a mirror', () => {
  const MIRROR_REF = '127.0.0.1:5001/acme/vol:1.0';

  test('is planned with the mirror reference to fetch from, and says so', () => {
    const info = remoteInfo(REMOTE, {
      privileges: privs(),
      mirror: {
        host: '127.0.0.1:5001',
        reference: MIRROR_REF,
        verifiedBy: 'mirror',
        description: 'mirror 127.0.0.1:5001, not verified: docker.io was unreachable',
      },
    });
    const [p] = plan([desired()], [], inventory([]), { remotes: new Map([[REMOTE, info]]) }, opts());
    const pull = p!.actions[0]!;
    assert.ok(pull.type === 'pull');
    assert.equal(pull.remote, REMOTE);
    assert.equal(pull.from, MIRROR_REF);
    assert.match(
      describeAction(pull),
      /from 127\.0\.0\.1:5001\/acme\/vol:1\.0 \[mirror 127\.0\.0\.1:5001, not verified/,
    );
    // fetched by tag: the installed layers are checked against what was looked up
    assert.ok(p!.actions.some((a) => a.type === 'verify'));
  });

  test('keeps its declared remote as identity: no drift, no lookup, no pull when the upstream returns', () => {
    const owned = inventory([NAME]);
    owned.plugins[NAME]!.mirrorReference = MIRROR_REF;
    const plugin = installed({ reference: MIRROR_REF });
    const [mapped] = withDeclaredIdentity([plugin], owned);
    assert.equal(mapped!.reference, REMOTE);
    const [p] = plan([desired()], [mapped!], owned, { remotes: new Map() }, opts());
    assert.equal(p!.outcome, 'unchanged');
    // without the record, the mirror's reference is another remote: an upgrade
    const [other] = plan([desired()], [plugin], inventory([NAME]), facts(), opts());
    assert.equal(other!.outcome, 'configure');
  });

  test('a plugin replaced by hand (another ID) is not mapped', () => {
    const owned = inventory([NAME]);
    owned.plugins[NAME]!.mirrorReference = MIRROR_REF;
    owned.plugins[NAME]!.id = 'f'.repeat(64);
    const [mapped] = withDeclaredIdentity([installed({ reference: MIRROR_REF })], owned);
    assert.equal(mapped!.reference, MIRROR_REF);
  });
});
