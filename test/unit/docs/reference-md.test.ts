// docs/reference.md is generated from the schema: this fails when the committed file is stale, and
// checks that every field of the schema is there with what the schema says about it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { allFields, dockerPluginFields, findField } from '../../../controller/api/fields.ts';
import { SPEC_DEFAULTS } from '../../../controller/api/schema.ts';
import { REPO_ROOT } from '../../../controller/docs/generate.ts';
import { renderReferenceDoc } from '../../../controller/docs/reference-md.ts';

/** The block of the reference under a field's heading, up to the next heading. */
function section(doc: string, path: string): string {
  const start = doc.indexOf(`\n### \`${path}\`\n`);
  assert.ok(start >= 0, `no section for ${path}`);
  const end = doc.indexOf('\n#', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

test('the committed docs/reference.md is exactly renderReferenceDoc() (run `make docs` when this fails)', async () => {
  const committed = await readFile(join(REPO_ROOT, 'docs/reference.md'), 'utf8');
  assert.equal(committed, renderReferenceDoc(), 'docs/reference.md is stale: run `make docs` and commit it');
});

test('every field has one section with its type, requirement and description', () => {
  const doc = renderReferenceDoc();
  const fields = allFields(dockerPluginFields());
  assert.ok(fields.length > 50);
  for (const field of fields) {
    const block = section(doc, field.path);
    assert.equal(doc.split(`\n### \`${field.path}\`\n`).length, 2, field.path);
    assert.ok(block.includes(`**Type:** \`${field.type}\``), field.path);
    assert.ok(block.includes(field.required ? '**Required**' : 'optional'), field.path);
    assert.ok(block.includes(field.description), field.path);
  }
});

test('defaults, enums, patterns, bounds and cross-field rules come from the schema', () => {
  const doc = renderReferenceDoc();
  assert.match(section(doc, 'spec.upgrade.policy'), /\*\*Default:\*\* `OnSpecChange`/);
  assert.match(section(doc, 'spec.upgrade.policy'), /\*\*Values:\*\* `OnSpecChange`, `TrackTag`, `Never`/);
  assert.match(
    section(doc, 'spec.enableTimeoutSeconds'),
    new RegExp(`Default:\\*\\* \`${SPEC_DEFAULTS.enableTimeoutSeconds}\``),
  );
  assert.match(section(doc, 'spec.enableTimeoutSeconds'), /from 1 to 3600/);
  assert.match(section(doc, 'metadata.name'), /\*\*Pattern:\*\* `\^\[a-z0-9\]/);
  assert.match(section(doc, 'metadata.name'), /DNS-1123 label/);
  assert.match(section(doc, 'spec.settings.mounts'), /map\[string\]string.*an absolute host path/);
  assert.match(section(doc, 'spec.rollout.maxUnavailable'), /IntOrString.*as string: a percentage/);
  assert.match(section(doc, 'spec.dependsOn'), /no duplicates/);
  assert.match(doc, /- the document: exactly one of spec.remote and spec.build is required\./);
  assert.match(doc, /- `spec`: grantAllPrivileges: true cannot be combined/);
  // the status the CRD carries, not the free-form object files may hold
  assert.ok(findField(dockerPluginFields(), ['status', 'conditions', 'reason']).ok);
});
