// `plugctl explain` documents DockerPlugin fields from the one schema, as kubectl explain does; a path
// that names no field is a usage error (exit 2) listing the fields there are.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allFields, dockerPluginFields } from '../../../controller/api/fields.ts';
import { main } from '../../../controller/main.ts';

/** Runs plugctl in-process; returns the exit code and both streams. */
async function plugctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) }, {});
  return { code, out, err };
}

test('explain dockerplugin.spec.settings: kind, version, the field, its description and its fields', async () => {
  const { code, out, err } = await plugctl('explain', 'dockerplugin.spec.settings');
  assert.equal(code, 0, err);
  assert.match(out, /^KIND: +DockerPlugin\nVERSION: +plugctl\.dev\/v1alpha1\n\nFIELD: settings <Object>\n/);
  assert.match(out, /DESCRIPTION:\n {4}Values set on the plugin \(`docker plugin set`\)/);
  for (const name of ['env', 'args', 'mounts', 'devices'])
    assert.match(out, new RegExp(`^  ${name}\\t<`, 'm'));
  assert.match(out, /^ {2}env\t<map\[string\]string\|Object>\n {4}Environment variables/m);
  assert.ok(
    out.split('\n').every((line) => line.length <= 80),
    'wrapped at 80 columns',
  );
});

test('a leaf shows its default, values, pattern and bounds; required fields are marked', async () => {
  const policy = await plugctl('explain', 'dockerplugin.spec.upgrade.policy');
  assert.match(policy.out, /FIELD: policy <string>\n/);
  assert.match(policy.out, /Default: OnSpecChange\n {4}Values: OnSpecChange, TrackTag, Never\n/);
  const name = await plugctl('explain', 'dockerplugin.metadata.name');
  assert.match(name.out, /FIELD: name <string> -required-/);
  assert.match(name.out, /Pattern: \^\[a-z0-9\]/);
  assert.match(name.out, /Bounds: at most 63 characters/);
  const spec = await plugctl('explain', 'dockerplugin.spec');
  assert.match(spec.out, /Rule: grantAllPrivileges: true cannot be combined/);
});

test('--recursive prints the tree of every field below, indented by level', async () => {
  const { code, out } = await plugctl('explain', 'dockerplugin', '--recursive');
  assert.equal(code, 0);
  assert.match(out, /^ {2}spec\t<Object> -required-\n {4}remote\t<string>\n/m);
  assert.match(out, /^ {6}matchExpressions\t<\[\]Object>\n {8}key\t<string> -required-\n/m);
  // every field of the schema, exactly once
  const lines = out
    .slice(out.indexOf('FIELDS:\n') + 8)
    .trimEnd()
    .split('\n');
  assert.equal(lines.length, allFields(dockerPluginFields()).length);
});

test('the resource may be named by kind, plural, short name or plural with group, in any case', async () => {
  const expected = (await plugctl('explain', 'dockerplugin.spec.build')).out;
  for (const target of [
    'DockerPlugin.spec.build',
    'dockerplugins.spec.build',
    'dplug.spec.build',
    'dockerplugins.plugctl.dev.spec.build',
  ]) {
    const { code, out } = await plugctl('explain', target);
    assert.equal(code, 0, target);
    assert.equal(out, expected, target);
  }
});

test('an unknown field exits 2 naming the valid fields at that level; an unknown resource exits 2', async () => {
  const typo = await plugctl('explain', 'dockerplugin.spec.setings');
  assert.equal(typo.code, 2);
  assert.equal(typo.out, '');
  assert.match(
    typo.err,
    /^error: field "setings" does not exist in dockerplugin\.spec; valid fields: remote, alias, enabled, .*settings.*pullSecretName\n$/,
  );
  const leaf = await plugctl('explain', 'dockerplugin.spec.remote.registry');
  assert.equal(leaf.code, 2);
  assert.match(leaf.err, /dockerplugin\.spec\.remote is a string and has no fields/);
  const pod = await plugctl('explain', 'pods.spec');
  assert.equal(pod.code, 2);
  assert.match(pod.err, /unknown resource "pods"/);
  const empty = await plugctl('explain', 'dockerplugin..spec');
  assert.equal(empty.code, 2);
  const none = await plugctl('explain');
  assert.equal(none.code, 2);
});
