/**
 * schema/dockerplugin.schema.json: the one schema (schema.ts) as a plain JSON Schema draft-07 file for
 * editors (the YAML language server and anything else that reads JSON Schema), so that a document is
 * completed and checked while it is typed exactly as plugctl will check it. `make crds` writes it with
 * the CRDs; `--check` reports it stale.
 *
 * The few things schema.ts says in extensions become standard keywords: `nullable` a type list,
 * a `set` list `uniqueItems`. The other extensions (x-kubernetes-*, x-plugctl-*) are dropped: editors
 * would ignore them, and strict validators reject unknown keywords.
 */
import { fileURLToPath } from 'node:url';
import { writeOrCheck } from '../runtime/generated-file.ts';
import { dockerPluginSchema } from './schema.ts';
import { KIND } from './types.ts';

/** Absolute path of the checked-in editor schema. */
export const EDITOR_SCHEMA_PATH = fileURLToPath(
  new URL('../../schema/dockerplugin.schema.json', import.meta.url),
);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One schema node in plain draft-07 (property names, enums and defaults are data and kept as is). */
function toDraft7(node: unknown): Json {
  if (Array.isArray(node)) return node.map(toDraft7);
  if (!isObject(node)) return node as Json;
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-') || key === 'nullable') continue;
    if (key === 'properties' && isObject(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, schema]) => [name, toDraft7(schema)]));
    } else if (key === 'enum' || key === 'default' || key === 'required') {
      out[key] = value as Json;
    } else {
      out[key] = toDraft7(value);
    }
  }
  if (node['nullable'] === true && typeof out['type'] === 'string') out['type'] = [out['type'], 'null'];
  if (node['x-kubernetes-list-type'] === 'set') out['uniqueItems'] = true;
  return splitObjectUnion(out);
}

/**
 * A node typed as an object or something else (an env value: a string or a secret reference) becomes
 * an anyOf of one branch per type, the object keywords only on the object branch: strict validators
 * refuse a type list mixed with keywords of one of its types.
 */
function splitObjectUnion(out: { [key: string]: Json }): { [key: string]: Json } {
  const types = out['type'];
  if (!Array.isArray(types) || types.length < 2 || !types.includes('object')) return out;
  const { type: _type, description, ...objectKeywords } = out;
  return {
    ...(description !== undefined ? { description } : {}),
    anyOf: [
      ...types.filter((t) => t !== 'object').map((t) => ({ type: t })),
      { type: 'object', ...objectKeywords },
    ],
  };
}

/** The editor schema as a plain object. */
export function editorSchemaObject(): Json {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: KIND,
    ...(toDraft7(dockerPluginSchema) as { [key: string]: Json }),
  };
}

/** The editor schema as the checked-in file: stable key order, two-space indent, final newline. */
export function renderEditorSchema(): string {
  return `${JSON.stringify(editorSchemaObject(), null, 2)}\n`;
}

/** Writes the editor schema, or with `--check` compares it with the file; returns the exit code. */
export async function main(args: readonly string[], path: string = EDITOR_SCHEMA_PATH): Promise<number> {
  return writeOrCheck(path, renderEditorSchema(), args, {
    source: 'controller/api/schema.ts',
    command: 'make crds',
  });
}
