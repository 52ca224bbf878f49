// The editor schema (schema/dockerplugin.schema.json) is generated from schema.ts: these tests fail when
// the checked-in file is stale, and check that a plain draft-07 validator (what editors run) judges
// documents as plugctl does.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import {
  EDITOR_SCHEMA_PATH,
  editorSchemaObject,
  main,
  renderEditorSchema,
} from '../../../controller/api/editor-schema.ts';
import { validateDocument } from '../../../controller/api/validate.ts';

const EXAMPLES = new URL('../../../examples/', import.meta.url);

const doc = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'x' }) => ({
  apiVersion: 'plugctl.dev/v1alpha1',
  kind: 'DockerPlugin',
  metadata,
  spec,
});

/** Valid and invalid documents across every keyword the schema uses (duplicate list-map keys aside). */
const SAMPLES: unknown[] = [
  {},
  doc({ remote: 'vieux/sshfs:1.2' }),
  doc({ remote: 'a' }, { name: 'x', creationTimestamp: null, labels: { a: 'b' } }),
  doc({ remote: 'a' }, { name: 'Bad_Name' }),
  doc({}),
  doc({ remote: 'a', build: { context: './x' } }),
  doc({ build: { context: './x' } }),
  doc({ remote: 'a', grantAllPrivileges: true, privileges: [{ name: 'network', value: ['host'] }] }),
  doc({ remote: 'a', grantAllPrivileges: true, privileges: [] }),
  doc({ remote: 'a', enable: true }),
  doc({ remote: 'a', settings: { env: { DEBUG: 1 } } }),
  doc({ remote: 'a', settings: { mounts: { state: 'relative' } } }),
  doc({ remote: 'a', upgrade: { policy: 'Always' } }),
  doc({ remote: 'a', enableTimeoutSeconds: 3601 }),
  doc({ remote: 'a', nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }),
  doc({ remote: 'a', nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: ['b'] }] } }),
  doc({ remote: 'a', nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['b'] }] } }),
  doc({ remote: 'a', dependsOn: ['x', 'x'] }),
  doc({ remote: 'a', dependsOn: ['x', 'y'] }),
  doc({ remote: 'a', rollout: { maxUnavailable: '25%' } }),
  doc({ remote: 'a', rollout: { maxUnavailable: '0%' } }),
  doc({ remote: 'a', rollout: { maxUnavailable: 0 } }),
  doc({ remote: 'a', pullSecretName: 'Bad' }),
];

function editorValidator() {
  return new Ajv({ allErrors: true }).compile(editorSchemaObject() as object);
}

test('the checked-in editor schema is exactly renderEditorSchema() (run `make crds` when this fails)', async () => {
  assert.equal(await readFile(EDITOR_SCHEMA_PATH, 'utf8'), renderEditorSchema());
  assert.equal(await main(['--check']), 0);
});

test('it is a draft-07 schema with no extension keywords (strict ajv compiles it)', () => {
  const text = renderEditorSchema();
  assert.doesNotMatch(text, /"x-|"nullable"/);
  assert.equal((JSON.parse(text) as { $schema: string }).$schema, 'http://json-schema.org/draft-07/schema#');
  new Ajv({ strict: true }).compile(JSON.parse(text) as object);
});

test('a draft-07 validator judges every sample as plugctl does', () => {
  const validate = editorValidator();
  for (const sample of SAMPLES) {
    assert.equal(validate(sample), validateDocument(sample).ok, JSON.stringify(sample));
  }
});

test('the examples validate, and each document names the schema for the YAML language server', async () => {
  const validate = editorValidator();
  const files = (await readdir(EXAMPLES)).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length > 0);
  for (const file of files) {
    const text = await readFile(new URL(file, EXAMPLES), 'utf8');
    const documents = parseAllDocuments(text);
    // the language server reads the modeline per document, so a file of several needs one in each
    const modelines = text.match(
      /^# yaml-language-server: \$schema=\.\.\/schema\/dockerplugin\.schema\.json$/gm,
    );
    assert.equal(modelines?.length, documents.length, file);
    for (const document of documents) {
      const value: unknown = document.toJS();
      assert.equal(validate(value), true, `${file}: ${JSON.stringify(validate.errors)}`);
    }
  }
});

test('main writes the schema, --check passes, and fails on a stale or missing file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'plugctl-editor-schema-'));
  try {
    const path = join(dir, 'dockerplugin.schema.json');
    assert.equal(await main(['--check'], path), 1);
    assert.equal(await main([], path), 0);
    assert.equal(await main(['--check'], path), 0);
    await writeFile(path, '{}\n');
    assert.equal(await main(['--check'], path), 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
