// The pure parts of `plugctl get`: -o formats, kubectl jsonpath templates, -l selectors, -o=json, and
// the DockerPlugin objects -o json|yaml print, which must load again as documents.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDocumentFile } from '../../../controller/api/load.ts';
import { matchesSelector } from '../../../controller/api/selector.ts';
import { nameFor, toObject, type GetEntry } from '../../../controller/cli/get.ts';
import {
  parseOutputFormat,
  renderJson,
  renderJsonPath,
  renderTable,
  renderYamlStream,
} from '../../../controller/cli/output.ts';
import { parseSelector } from '../../../controller/cli/selector.ts';
import { splitShortAssignments } from '../../../controller/main.ts';
import { PlugctlError } from '../../../controller/errors.ts';
import type { InstalledPlugin } from '../../../controller/store/store.ts';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return error instanceof PlugctlError ? error.code : 'not a PlugctlError';
  }
  return undefined;
};

test('-o takes kubectl’s formats and refuses others with INVALID_OUTPUT_FORMAT', () => {
  for (const kind of ['table', 'wide', 'name', 'json', 'yaml'] as const)
    assert.deepEqual(parseOutputFormat(kind), { kind });
  assert.deepEqual(parseOutputFormat('jsonpath={.items[*].metadata.name}'), {
    kind: 'jsonpath',
    template: '{.items[*].metadata.name}',
  });
  for (const bad of [
    '',
    'xml',
    'jsonpath=',
    'jsonpath={.a',
    'jsonpath={range .a}',
    'jsonpath={end}',
    'jsonpath={a.b}',
  ])
    assert.equal(
      codeOf(() => parseOutputFormat(bad)),
      'INVALID_OUTPUT_FORMAT',
      bad,
    );
});

test('jsonpath templates read lists, ranges and literals as kubectl does', async () => {
  const list = {
    kind: 'List',
    items: [
      { metadata: { name: 'a' }, status: { enabled: true, conditions: [{ type: 'Ready', status: 'True' }] } },
      { metadata: { name: 'b' }, status: { enabled: false, conditions: [] } },
    ],
  };
  assert.equal(await renderJsonPath('{.items[*].metadata.name}', list), 'a b');
  assert.equal(
    await renderJsonPath('{range .items[*]}{.metadata.name}={.status.enabled}{"\\n"}{end}', list),
    'a=true\nb=false\n',
  );
  assert.equal(await renderJsonPath("names: {.items[0].metadata.name}{'\\t'}!", list), 'names: a\t!');
  assert.equal(
    await renderJsonPath('{.items[?(@.metadata.name=="a")].status.conditions[0].status}', list),
    'True',
  );
  assert.equal(await renderJsonPath('{.metadata}', list.items[0]), '{"name":"a"}');
  assert.equal(await renderJsonPath('{.nothing}', list), '');
});

test('tables are borderless, three spaces apart, without trailing blanks; --no-headers drops the header', () => {
  const rows = [
    ['a', 'x:latest', ''],
    ['long-name', 'y', 'z'],
  ];
  assert.equal(
    renderTable(['NAME', 'PLUGIN', 'X'], rows),
    'NAME        PLUGIN     X\na           x:latest\nlong-name   y          z\n',
  );
  assert.equal(
    renderTable(['NAME', 'PLUGIN', 'X'], rows, false),
    'a           x:latest\nlong-name   y          z\n',
  );
  assert.equal(renderTable(['NAME'], [], false), '');
});

test('-l reads kubectl’s selector syntax into the documents’ selector shape', () => {
  assert.deepEqual(parseSelector(''), {});
  assert.deepEqual(parseSelector('role=storage,tier==a'), { matchLabels: { role: 'storage', tier: 'a' } });
  assert.deepEqual(parseSelector('env in (a, b),zone notin (c),gpu,!old,x!=y'), {
    matchExpressions: [
      { key: 'env', operator: 'In', values: ['a', 'b'] },
      { key: 'zone', operator: 'NotIn', values: ['c'] },
      { key: 'gpu', operator: 'Exists' },
      { key: 'old', operator: 'DoesNotExist' },
      { key: 'x', operator: 'NotIn', values: ['y'] },
    ],
  });
  const s = parseSelector('role=storage,!old');
  assert.equal(matchesSelector(s, { role: 'storage' }), true);
  assert.equal(matchesSelector(s, { role: 'storage', old: '1' }), false);
  assert.equal(matchesSelector(s, {}), false);
  for (const bad of ['a,,b', 'a,', 'env in (a', 'a=b=c', '-bad=x', 'a=b c', 'in (x)'])
    assert.equal(
      codeOf(() => parseSelector(bad)),
      'INVALID_SELECTOR',
      bad,
    );
});

test('-o=json is split into -o json before commander reads it; after -- nothing is touched', () => {
  assert.deepEqual(splitShortAssignments(['get', '-o=json', '-l=a=b']), ['get', '-o', 'json', '-l', 'a=b']);
  assert.deepEqual(splitShortAssignments(['--output=json', '-o=']), ['--output=json', '-o', '']);
  assert.deepEqual(splitShortAssignments(['x', '--', '-o=json']), ['x', '--', '-o=json']);
});

const installed: InstalledPlugin = {
  id: 'a'.repeat(64),
  name: '127.0.0.1:5000/test/vol:1.0',
  reference: '127.0.0.1:5000/test/vol:1.0',
  enabled: true,
  settings: { env: { GREETING: 'hi', DEBUG: '0' }, args: ['--x'], mounts: { state: '/srv' }, devices: {} },
  defaults: {
    env: { GREETING: { value: 'hello', settable: true }, DEBUG: { value: '0', settable: true } },
    args: { name: 'args', value: ['--x'], settable: true },
    mounts: { state: { source: '/var/lib/x', settable: true } },
    devices: {},
  },
  capabilities: ['volumedriver'],
  diffIds: [],
  privileges: [{ name: 'network', description: 'permissions to access a network', value: ['host'] }],
};

test('get -o yaml prints an installed plugin as a document that loads again, with its status', async () => {
  const entry: GetEntry = {
    key: 'vol',
    plugin: installed.name,
    installed,
    owned: { key: 'vol', remote: installed.reference, inUse: 'Wait', set: 'files:/srv/docs' },
    status: {
      key: 'vol',
      plugin: installed.name,
      labels: { role: 'storage' },
      lastReconcileTime: '2026-12-06T20:00:00.000Z',
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Converged',
          message: '',
          lastTransitionTime: '2026-12-06T20:00:00.000Z',
        },
      ],
    },
  };
  const object = toObject(entry);
  assert.deepEqual(object.spec, {
    remote: installed.reference,
    enabled: true,
    privileges: [{ name: 'network', value: ['host'] }],
    settings: { env: { GREETING: 'hi' }, mounts: { state: '/srv' } },
    inUse: 'Wait',
  });
  assert.deepEqual(object.metadata, {
    name: 'vol',
    labels: { role: 'storage' },
    annotations: { 'plugctl.dev/apply-set': 'files:/srv/docs' },
  });
  assert.equal(object.status.pluginID, installed.id);
  assert.equal(object.status.managed, true);
  assert.equal(object.status.conditions?.[0]?.reason, 'Converged');
  const unmanaged = toObject({ key: '', plugin: installed.name, installed });
  assert.equal(unmanaged.metadata.name, 'vol');
  const loaded = parseDocumentFile(await renderYamlStream([object, unmanaged]), 'get.yaml');
  assert.deepEqual(loaded.errors, []);
  assert.deepEqual(
    loaded.documents.map((d) => d.localName),
    [installed.name, installed.name],
  );
});

test('a plugin no document names gets a DNS label from its name', () => {
  assert.equal(nameFor('127.0.0.1:5000/test/vol:1.0'), 'vol');
  assert.equal(nameFor('vieux/sshfs:latest'), 'sshfs');
  assert.equal(nameFor('r/My_Plugin@sha256:abc'), 'my-plugin');
  assert.equal(nameFor('r/___:1'), 'plugin');
});

test('get -o json of several plugins is a List, which loads again object by object', () => {
  const objects = [
    toObject({ key: 'vol', plugin: installed.name, installed }),
    toObject({ key: 'two', plugin: 'two:latest', installed: { ...installed, name: 'two:latest' } }),
  ];
  const text = renderJson({ apiVersion: 'v1', kind: 'List', items: objects });
  const loaded = parseDocumentFile(text, 'get.json');
  assert.deepEqual(loaded.errors, []);
  assert.deepEqual(
    loaded.documents.map((d) => [d.doc.metadata.name, d.localName]),
    [
      ['vol', installed.name],
      ['two', 'two:latest'],
    ],
  );
  // an item's error points at the item
  const broken = JSON.parse(text) as { items: { spec: { enabled: unknown } }[] };
  broken.items[1]!.spec.enabled = 'yes';
  const bad = parseDocumentFile(JSON.stringify(broken, null, 2), 'bad.json');
  assert.equal(bad.documents.length, 1);
  assert.equal(bad.errors[0]?.path, 'spec.enabled');
  const line =
    JSON.stringify(broken, null, 2)
      .split('\n')
      .findIndex((l) => l.includes('"yes"')) + 1;
  assert.equal(bad.errors[0]?.origin.line, line);
  // a List counts its items toward maxDocuments
  const many = parseDocumentFile(text, 'many.json', { limits: { maxDocuments: 1 } });
  assert.deepEqual(many.documents, []);
  assert.equal(many.errors[0]?.code, 'LIMIT_EXCEEDED');
});
