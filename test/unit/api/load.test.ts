// Loading DockerPlugin documents from YAML: what loads, what is rejected, and that every rejection
// points at the right file:line:column and names the field, since that is what a user acts on.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatLoadError, loadDocuments, loadDocumentsFromText } from '../../../controller/api/load.ts';
import type { LoadError, LoadResult } from '../../../controller/api/load.ts';
import { validateDocument, withDefaults } from '../../../controller/api/validate.ts';

/** A document with the given metadata.name and spec body lines (each indented under `spec:`). */
function plugin(name: string, ...spec: string[]): string {
  return [
    'apiVersion: plugctl.dev/v1alpha1',
    'kind: DockerPlugin',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    ...spec.map((line) => `  ${line}`),
    '',
  ].join('\n');
}

function load(text: string): LoadResult {
  return loadDocumentsFromText(text, 'plugins.yaml');
}

/** The only error of a result, asserting there is exactly one. */
function onlyError(result: LoadResult): LoadError {
  assert.equal(result.errors.length, 1, result.errors.map(formatLoadError).join('\n'));
  return result.errors[0] as LoadError;
}

function where(e: LoadError): string {
  return `${e.origin.file}:${e.origin.line}:${e.origin.column}`;
}

describe('loadDocumentsFromText', () => {
  test('loads every document of a multi-document file with origin, reference and local name', () => {
    const text = plugin('sshfs', 'remote: vieux/sshfs:1.2') + '---\n' + plugin('busybox', 'remote: busybox');
    const result = load(text);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.files, ['plugins.yaml']);
    assert.deepEqual(
      result.documents.map((d) => [d.doc.metadata.name, d.localName, d.origin.line, d.origin.column]),
      [
        ['sshfs', 'vieux/sshfs:1.2', 1, 1],
        ['busybox', 'busybox:latest', 8, 1],
      ],
    );
    assert.deepEqual(result.documents[0]?.reference, {
      domain: 'docker.io',
      path: 'vieux/sshfs',
      tag: '1.2',
    });
  });

  test('loads the full example from DESIGN.md', () => {
    const text = `apiVersion: plugctl.dev/v1alpha1
kind: DockerPlugin
metadata:
  name: sshfs                      # resource name (DNS label); the key of everything
spec:
  remote: vieux/sshfs:1.2          # registry reference; a digest (@sha256:...) pins content
  alias: sshfs                     # local plugin name; default: familiar remote name with tag
  enabled: true                    # default true
  privileges:                      # the exact grants the operator consents to ...
    - { name: network, value: [host] }
  settings:
    env: { DEBUG: "1" }
    args: ["--verbose"]
    mounts: { state: /var/lib/sshfs }
    devices: { fuse: /dev/fuse }
  upgrade:
    policy: OnSpecChange
  inUse: Wait
  enableTimeoutSeconds: 30
  nodeSelector: { matchLabels: { role: storage } }
  dependsOn: [fuse-helper]
  suspend: false
`;
    const result = load(text);
    assert.deepEqual(result.errors, []);
    assert.equal(result.documents.length, 1);
    // docker gives `--alias sshfs` the name sshfs:latest
    assert.equal(result.documents[0]?.localName, 'sshfs:latest');
  });

  test('ignores comments, empty documents and comment-only documents', () => {
    const text = `# header comment
---
---
# nothing but a comment
---
${plugin('a', 'remote: busybox # trailing comment')}---
...
`;
    const result = load(text);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(
      result.documents.map((d) => d.doc.metadata.name),
      ['a'],
    );
    assert.equal(result.documents[0]?.doc.spec.remote, 'busybox');
  });

  test('an empty file loads nothing and reports nothing', () => {
    assert.deepEqual(load(''), { documents: [], errors: [], files: ['plugins.yaml'] });
  });

  test('a YAML syntax error is reported at its line:column with the parser message', () => {
    const text = plugin('a', 'remote: busybox', 'remote: alpine');
    const e = onlyError(load(text));
    assert.equal(e.code, 'YAML_SYNTAX');
    assert.equal(where(e), 'plugins.yaml:7:3');
    assert.match(e.message, /Map keys must be unique/);
    assert.equal(e.path, '');
  });

  test('a syntax error in one document does not stop the documents before it', () => {
    const text = plugin('good', 'remote: busybox') + '---\nfoo: [\n';
    const result = load(text);
    assert.deepEqual(
      result.documents.map((d) => d.doc.metadata.name),
      ['good'],
    );
    assert.equal(result.errors.length, 1);
    assert.equal(result.errors[0]?.code, 'YAML_SYNTAX');
    assert.equal(result.errors[0]?.origin.line, 9);
  });

  test('an unknown field in spec points at its key, names it and suggests the likely field', () => {
    const e = onlyError(load(plugin('a', 'remote: busybox', 'enable: true')));
    assert.equal(e.code, 'UNKNOWN_FIELD');
    assert.equal(e.path, 'spec.enable');
    assert.equal(where(e), 'plugins.yaml:7:3');
    assert.match(
      e.message,
      /^unknown field "enable" \(did you mean "enabled"\?\); expected one of remote, alias/,
    );
  });

  test('an unknown field in settings points at its key', () => {
    const e = onlyError(
      load(plugin('a', 'remote: busybox', 'settings:', '  env: {A: "1"}', '  volumes: {}')),
    );
    assert.equal(e.code, 'UNKNOWN_FIELD');
    assert.equal(e.path, 'spec.settings.volumes');
    assert.equal(where(e), 'plugins.yaml:9:5');
    assert.match(e.message, /unknown field "volumes".*expected one of env, args, mounts, devices/);
  });

  test('a wrong enum value lists the allowed values and what was given', () => {
    const e = onlyError(load(plugin('a', 'remote: busybox', 'inUse: Sometimes')));
    assert.equal(e.code, 'INVALID_VALUE');
    assert.equal(
      formatLoadError(e),
      'plugins.yaml:7:10: spec.inUse: must be one of Wait, Force (got "Sometimes")',
    );
  });

  test('a nested wrong enum value names the full path', () => {
    const e = onlyError(load(plugin('a', 'remote: busybox', 'upgrade: { policy: Always }')));
    assert.equal(
      formatLoadError(e),
      'plugins.yaml:7:22: spec.upgrade.policy: must be one of OnSpecChange, TrackTag, Never (got "Always")',
    );
  });

  test('a bad metadata.name explains the DNS label rule', () => {
    const e = onlyError(load(plugin('My_Plugin', 'remote: busybox')));
    assert.equal(e.code, 'INVALID_VALUE');
    assert.equal(e.path, 'metadata.name');
    assert.equal(where(e), 'plugins.yaml:4:9');
    assert.match(e.message, /DNS-1123 label: .*lowercase letters, digits and "-".*\(got "My_Plugin"\)/);
  });

  test('a metadata.name over 63 characters is rejected with its length', () => {
    const e = onlyError(load(plugin('a'.repeat(64), 'remote: busybox')));
    assert.equal(e.path, 'metadata.name');
    assert.equal(e.message, 'must be at most 63 characters (got 64)');
  });

  test('a bad remote is reported by the reference parser at the value', () => {
    const text = plugin('a', 'alias: x', 'remote:   "Vieux/SSHFS:1.2"');
    const e = onlyError(load(text));
    assert.equal(e.code, 'INVALID_REFERENCE');
    assert.equal(e.path, 'spec.remote');
    assert.equal(where(e), 'plugins.yaml:7:13');
    assert.match(e.message, /invalid reference "Vieux\/SSHFS:1.2"/);
  });

  test('a document with neither spec.remote nor spec.build, or both, is refused by the rule', () => {
    for (const spec of [['enabled: false'], ['remote: x/y:1', 'build: { context: ./ctx }']]) {
      const e = onlyError(load(plugin('a', ...spec)));
      assert.equal(e.code, 'RULE_VIOLATION');
      assert.equal(
        formatLoadError(e),
        'plugins.yaml:1:1: exactly one of spec.remote and spec.build is required',
      );
    }
  });

  test('a built plugin is named by its alias, else by metadata.name with :latest', () => {
    const named = load(plugin('fuse-helper', 'build: { context: ./ctx }'));
    assert.deepEqual(named.errors, []);
    assert.equal(named.documents[0]!.localName, 'fuse-helper:latest');
    const aliased = load(plugin('a', 'build: { context: ./ctx }', 'alias: team/helper:2'));
    assert.equal(aliased.documents[0]!.localName, 'team/helper:2');
  });

  test('a missing spec points at the document', () => {
    const text = 'apiVersion: plugctl.dev/v1alpha1\nkind: DockerPlugin\nmetadata: { name: a }\n';
    const e = onlyError(load(text));
    assert.equal(formatLoadError(e), 'plugins.yaml:1:1: spec: required field is missing');
  });

  test('wrong apiVersion and kind are both reported', () => {
    const text = plugin('a', 'remote: busybox')
      .replace('plugctl.dev/v1alpha1', 'plugctl.dev/v1')
      .replace('kind: DockerPlugin', 'kind: Plugin');
    const result = load(text);
    assert.deepEqual(result.errors.map(formatLoadError), [
      'plugins.yaml:1:13: apiVersion: must be one of plugctl.dev/v1alpha1 (got "plugctl.dev/v1")',
      'plugins.yaml:2:7: kind: must be one of DockerPlugin (got "Plugin")',
    ]);
  });

  test('a document that is not a mapping is rejected as a whole', () => {
    const e = onlyError(load('- a\n- b\n'));
    assert.equal(e.code, 'INVALID_TYPE');
    assert.equal(formatLoadError(e), 'plugins.yaml:1:1: must be a mapping (got a list)');
  });

  test('a number where a string is expected asks for quotes', () => {
    const e = onlyError(load(plugin('a', 'remote: busybox', 'settings:', '  env:', '    DEBUG: 1')));
    assert.equal(e.code, 'INVALID_TYPE');
    assert.equal(
      formatLoadError(e),
      'plugins.yaml:9:14: spec.settings.env.DEBUG: must be a string or a mapping (got 1); quote the value to make it a string',
    );
  });

  test('field paths quote keys that are not identifiers', () => {
    const text = plugin('a', 'remote: busybox').replace(
      '  name: a\n',
      '  name: a\n  labels:\n    app.kubernetes.io/part-of: true\n',
    );
    const e = onlyError(load(text));
    assert.equal(e.path, 'metadata.labels["app.kubernetes.io/part-of"]');
    assert.equal(where(e), 'plugins.yaml:6:32');
  });

  test('enableTimeoutSeconds out of range states the range', () => {
    const e = onlyError(load(plugin('a', 'remote: busybox', 'enableTimeoutSeconds: 0')));
    assert.equal(e.message, 'must be from 1 to 3600 (got 0)');
    const f = onlyError(load(plugin('a', 'remote: busybox', 'enableTimeoutSeconds: 2.5')));
    assert.equal(f.message, 'must be an integer (got 2.5)');
  });

  test('mount and device sources must be absolute paths', () => {
    const e = onlyError(load(plugin('a', 'remote: busybox', 'settings: { mounts: { state: var/lib } }')));
    assert.equal(e.path, 'spec.settings.mounts.state');
    assert.match(e.message, /absolute host path/);
  });

  test('privileges together with grantAllPrivileges: true is a conflict; either alone is fine', () => {
    const conflict = plugin(
      'a',
      'remote: busybox',
      'privileges:',
      '  - { name: network, value: [host] }',
      'grantAllPrivileges: true',
    );
    const e = onlyError(load(conflict));
    assert.equal(e.code, 'RULE_VIOLATION');
    assert.equal(e.path, 'spec.grantAllPrivileges');
    assert.equal(where(e), 'plugins.yaml:9:3');
    assert.match(e.message, /cannot be combined with a non-empty privileges list/);

    for (const spec of [
      ['remote: busybox', 'grantAllPrivileges: true'],
      ['remote: busybox', 'grantAllPrivileges: true', 'privileges: []'],
      ['remote: busybox', 'grantAllPrivileges: false', 'privileges: [{ name: network, value: [host] }]'],
      ['remote: busybox'],
    ]) {
      assert.deepEqual(load(plugin('a', ...spec)).errors, [], spec.join(', '));
    }
  });

  test('duplicate dependsOn entries are rejected as the API server would; privilege names may repeat', () => {
    const result = load(
      plugin(
        'a',
        'remote: busybox',
        'privileges:',
        '  - { name: mount, value: [/var/lib/docker/plugins/] }',
        "  - { name: mount, value: [''] }",
        'dependsOn: [b, b]',
      ),
    );
    // one `mount` privilege per mount with a source, as vieux/sshfs asks for two
    assert.deepEqual(result.errors.map(formatLoadError), [
      'plugins.yaml:10:18: spec.dependsOn[1]: duplicate value "b": already given at spec.dependsOn[0]',
    ]);
  });

  test('matchExpressions need values exactly for In and NotIn', () => {
    const result = load(
      plugin(
        'a',
        'remote: busybox',
        'nodeSelector:',
        '  matchExpressions:',
        '    - { key: role, operator: In }',
        '    - { key: role, operator: Exists }',
        '    - { key: zone, operator: Exists, values: [a] }',
        '    - { key: zone, operator: Near, values: [a] }',
      ),
    );
    assert.deepEqual(
      result.errors.map((e) => [e.path, e.code]),
      [
        ['spec.nodeSelector.matchExpressions[0]', 'RULE_VIOLATION'],
        ['spec.nodeSelector.matchExpressions[2]', 'RULE_VIOLATION'],
        ['spec.nodeSelector.matchExpressions[3].operator', 'INVALID_VALUE'],
      ],
    );
    assert.match(
      result.errors[0]?.message ?? '',
      /values must list at least one value for operator In or NotIn/,
    );
  });

  test('rollout.maxUnavailable takes a count of at least 1 or a percentage from 1% to 100%', () => {
    for (const ok of ['1', '3', '"1%"', '"25%"', '"100%"']) {
      assert.deepEqual(
        load(plugin('a', 'remote: busybox', `rollout: { maxUnavailable: ${ok} }`)).errors,
        [],
        ok,
      );
    }
    for (const bad of ['0', '-1', '1.5', '"0%"', '"101%"', '"25"', '"a%"', 'true']) {
      const e = onlyError(load(plugin('a', 'remote: busybox', `rollout: { maxUnavailable: ${bad} }`)));
      assert.equal(e.path, 'spec.rollout.maxUnavailable', bad);
      assert.equal(e.code, 'RULE_VIOLATION', bad);
      assert.match(e.message, /a number of nodes \(at least 1\) or a percentage/, bad);
    }
  });

  test('pullSecretName must be a Secret name (a DNS-1123 subdomain)', () => {
    assert.deepEqual(load(plugin('a', 'remote: busybox', 'pullSecretName: regcred.team-a')).errors, []);
    const e = onlyError(load(plugin('a', 'remote: busybox', 'pullSecretName: Reg_Cred')));
    assert.equal(e.path, 'spec.pullSecretName');
    assert.match(e.message, /DNS-1123 subdomain/);
  });

  test('`kubectl get -o yaml` output loads: server-set metadata and status are accepted', () => {
    const text = `apiVersion: plugctl.dev/v1alpha1
kind: DockerPlugin
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"plugctl.dev/v1alpha1"}
  creationTimestamp: "2025-01-02T03:04:05Z"
  finalizers: [plugctl.dev/cleanup]
  generation: 3
  managedFields:
    - apiVersion: plugctl.dev/v1alpha1
      fieldsType: FieldsV1
      fieldsV1: { f:spec: {} }
      manager: kubectl
      operation: Apply
  name: sshfs
  namespace: ""
  resourceVersion: "12345"
  uid: 0b5a3c1e-0000-4000-8000-000000000000
spec:
  remote: vieux/sshfs:1.2
  enabled: true
status:
  nodes:
    - node: host-a
      conditions: [{ type: Ready, status: "True" }]
`;
    const result = load(text);
    assert.deepEqual(result.errors, []);
    assert.equal(result.documents[0]?.doc.metadata.generation, 3);
    assert.deepEqual(result.documents[0]?.doc.status, {
      nodes: [{ node: 'host-a', conditions: [{ type: 'Ready', status: 'True' }] }],
    });
    assert.deepEqual(load(text.replace('"2025-01-02T03:04:05Z"', 'null')).errors, []);
  });

  test('a namespaced document is rejected: DockerPlugin is cluster-scoped', () => {
    const text = plugin('a', 'remote: busybox').replace('  name: a\n', '  name: a\n  namespace: default\n');
    const e = onlyError(load(text));
    assert.equal(formatLoadError(e), 'plugins.yaml:5:14: metadata.namespace: must be empty (got "default")');
  });

  test('a bad document next to a good one: the good one still loads', () => {
    const text =
      plugin('bad', 'remote: busybox', 'suspend: maybe') + '---\n' + plugin('good', 'remote: alpine');
    const result = load(text);
    assert.deepEqual(
      result.documents.map((d) => d.doc.metadata.name),
      ['good'],
    );
    const e = onlyError(result);
    assert.equal(e.path, 'spec.suspend');
    assert.equal(where(e), 'plugins.yaml:7:12');
  });

  test('duplicate local names via alias exclude both documents and name both places', () => {
    const text =
      plugin('first', 'remote: vieux/sshfs:1.2') +
      '---\n' +
      plugin('second', 'remote: busybox', 'alias: vieux/sshfs:1.2');
    const result = load(text);
    assert.deepEqual(result.documents, []);
    const e = onlyError(result);
    assert.equal(e.code, 'DUPLICATE_LOCAL_NAME');
    assert.equal(e.path, 'spec.alias');
    assert.equal(where(e), 'plugins.yaml:14:10');
    assert.match(
      e.message,
      /"vieux\/sshfs:1\.2" is also used by plugins\.yaml:6:11 \("first"\): neither document is loaded/,
    );
  });

  test('aliases collide when docker would normalise them to the same name', () => {
    const text =
      plugin('one', 'remote: busybox', 'alias: sshfs') +
      '---\n' +
      plugin('two', 'remote: alpine', 'alias: sshfs:latest');
    const e = onlyError(load(text));
    assert.equal(e.code, 'DUPLICATE_LOCAL_NAME');
    assert.match(e.message, /"sshfs:latest"/);
  });

  test('an alias docker cannot use is reported at spec.alias', () => {
    const e = onlyError(load(plugin('a', 'remote: busybox', `alias: ${'a'.repeat(64).replace(/a/g, 'f')}`)));
    assert.equal(e.code, 'INVALID_REFERENCE');
    assert.equal(e.path, 'spec.alias');
  });

  test('formatLoadError leaves out line:column and path when there are none', () => {
    assert.equal(
      formatLoadError({
        origin: { file: '/x', line: 0, column: 0 },
        path: '',
        message: 'no such file',
        code: 'PATH_NOT_FOUND',
      }),
      '/x: no such file',
    );
  });
});

describe('loadDocuments', () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'plugctl-load-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function tree(name: string, files: Record<string, string>): Promise<string> {
    const dir = join(root, name);
    for (const [path, content] of Object.entries(files)) {
      const full = join(dir, path);
      await mkdir(join(full, '..'), { recursive: true });
      await writeFile(full, content);
    }
    return dir;
  }

  test('walks directories recursively in sorted order, yaml and yml only, skipping dot entries', async () => {
    const dir = await tree('order', {
      'z.yaml': plugin('z', 'remote: busybox:z'),
      'b.yaml': plugin('b', 'remote: busybox:b'),
      'a.yml': plugin('a', 'remote: busybox:a'),
      'm/c.yaml': plugin('c', 'remote: busybox:c'),
      'm/n/d.yaml': plugin('d', 'remote: busybox:d'),
      'notes.txt': 'not yaml',
      '.hidden.yaml': plugin('hidden', 'remote: busybox:h'),
      '.git/e.yaml': plugin('e', 'remote: busybox:e'),
      'README.md': '# docs',
    });
    const result = await loadDocuments([dir]);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(
      result.files.map((f) => f.slice(dir.length + 1)),
      ['a.yml', 'b.yaml', 'm/c.yaml', 'm/n/d.yaml', 'z.yaml'],
    );
    assert.deepEqual(
      result.documents.map((d) => d.doc.metadata.name),
      ['a', 'b', 'c', 'd', 'z'],
    );
    assert.equal(result.documents[2]?.origin.file, join(dir, 'm/c.yaml'));
  });

  test('follows symlinked files, as in a ConfigMap volume, without loading ..data twice', async () => {
    const dir = await tree('configmap', { '..2025_01_01/p.yaml': plugin('p', 'remote: busybox') });
    await symlink('..2025_01_01', join(dir, '..data'));
    await symlink('..data/p.yaml', join(dir, 'p.yaml'));
    const result = await loadDocuments([dir]);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.files, [join(dir, 'p.yaml')]);
    assert.equal(result.documents.length, 1);
  });

  test('duplicate metadata.name across two files names both places and loads neither', async () => {
    const dir = await tree('dup', {
      'a.yaml': plugin('sshfs', 'remote: vieux/sshfs:1.2'),
      'b.yaml': plugin('other', 'remote: busybox') + '---\n' + plugin('sshfs', 'remote: vieux/sshfs:1.3'),
    });
    const result = await loadDocuments([dir]);
    assert.deepEqual(
      result.documents.map((d) => d.doc.metadata.name),
      ['other'],
    );
    const e = onlyError(result);
    assert.equal(e.code, 'DUPLICATE_NAME');
    assert.equal(e.path, 'metadata.name');
    assert.equal(where(e), `${join(dir, 'b.yaml')}:11:9`);
    assert.equal(
      e.message,
      `duplicate name "sshfs", also declared at ${join(dir, 'a.yaml')}:4:9: neither document is loaded`,
    );
  });

  test('a path that does not exist is an error, not an exception, and other paths still load', async () => {
    const dir = await tree('exists', { 'p.yaml': plugin('p', 'remote: busybox') });
    const missing = join(root, 'no-such-dir');
    const result = await loadDocuments([missing, dir]);
    assert.equal(result.documents.length, 1);
    const e = onlyError(result);
    assert.equal(e.code, 'PATH_NOT_FOUND');
    assert.equal(formatLoadError(e), `${missing}: no such file or directory`);
  });

  test('an explicit file loads whatever its extension, and a file reached twice is read once', async () => {
    const dir = await tree('explicit', {
      'plugins.txt': plugin('t', 'remote: busybox'),
      'p.yaml': plugin('p', 'remote: alpine'),
    });
    const result = await loadDocuments([join(dir, 'plugins.txt'), dir, join(dir, 'p.yaml')]);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.files, [join(dir, 'plugins.txt'), join(dir, 'p.yaml')]);
    assert.deepEqual(
      result.documents.map((d) => d.doc.metadata.name),
      ['t', 'p'],
    );
  });

  test('errors carry the real file name and are sorted by file order and position', async () => {
    const dir = await tree('errors', {
      'b.yaml': plugin('b', 'remote: busybox', 'inUse: Never'),
      'a.yaml': plugin('a', 'remote: busybox', 'suspend: 1', 'enabled: "yes"'),
    });
    const result = await loadDocuments([dir]);
    assert.deepEqual(
      result.errors.map((e) => `${e.origin.file.slice(dir.length + 1)}:${e.origin.line} ${e.path}`),
      ['a.yaml:7 spec.suspend', 'a.yaml:8 spec.enabled', 'b.yaml:7 spec.inUse'],
    );
  });
});

describe('validateDocument and withDefaults', () => {
  const minimal = {
    apiVersion: 'plugctl.dev/v1alpha1',
    kind: 'DockerPlugin',
    metadata: { name: 'a' },
    spec: { remote: 'busybox' },
  };

  test('validateDocument accepts plain objects and does not apply defaults', () => {
    const result = validateDocument(structuredClone(minimal));
    assert.ok(result.ok);
    assert.deepEqual(result.doc.spec, { remote: 'busybox' });
  });

  test('withDefaults fills every default and empty collection', () => {
    assert.deepEqual(withDefaults({ remote: 'busybox' }), {
      remote: 'busybox',
      enabled: true,
      privileges: [],
      grantAllPrivileges: false,
      settings: { env: {}, args: [], mounts: {}, devices: {} },
      upgrade: { policy: 'OnSpecChange' },
      inUse: 'Wait',
      enableTimeoutSeconds: 30,
      nodeSelector: { matchLabels: {}, matchExpressions: [] },
      dependsOn: [],
      suspend: false,
      rollout: { maxUnavailable: 1 },
      healthCheck: { enabled: true, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
    });
  });

  test('withDefaults keeps explicit values and shares nothing with its input', () => {
    const spec = {
      remote: 'busybox',
      alias: 'bb',
      enabled: false,
      settings: { env: { A: '1' } },
      upgrade: { policy: 'Never' as const },
      inUse: 'Force' as const,
      enableTimeoutSeconds: 5,
      dependsOn: ['x'],
      suspend: true,
    };
    const resolved = withDefaults(spec);
    const { env } = resolved.settings; // taken before deepEqual narrows resolved.settings' type
    assert.equal(resolved.alias, 'bb');
    assert.equal(resolved.enabled, false);
    assert.deepEqual(resolved.settings, { env: { A: '1' }, args: [], mounts: {}, devices: {} });
    assert.equal(resolved.upgrade.policy, 'Never');
    assert.equal(resolved.inUse, 'Force');
    assert.equal(resolved.enableTimeoutSeconds, 5);
    assert.equal(resolved.suspend, true);
    env['B'] = '2';
    resolved.dependsOn.push('y');
    assert.deepEqual(spec.settings.env, { A: '1' });
    assert.deepEqual(spec.dependsOn, ['x']);
  });
});
