/**
 * The fields of DockerPlugin as people read them: a tree walked out of the one JSON Schema (schema.ts,
 * with status.ts's status), for `plugctl explain` and docs/reference.md. Nothing here restates a field,
 * a type or a description; a field added to the schema appears in both without another edit.
 *
 * Paths follow `kubectl explain`: lists are walked through (`spec.privileges.name`), maps are not
 * (`spec.settings.env` is a `map[string]string`).
 */
import { NAMED_PATTERNS } from './patterns.ts';
import { dockerPluginSchema } from './schema.ts';
import { dockerPluginStatusSchema } from './status.ts';
import { KIND } from './types.ts';

/** One field of a schema, described for people. */
export interface SchemaField {
  /** the property name (`settings`); the kind's name at the root */
  readonly name: string;
  /** the dotted path from the root (`spec.settings`); empty at the root */
  readonly path: string;
  /** the type as kubectl explain writes it: string, integer, boolean, Object, []Object, []string, map[string]string, IntOrString */
  readonly type: string;
  readonly description: string;
  /** the parent requires this field */
  readonly required: boolean;
  /** the schema's default, when it declares one */
  readonly default?: unknown;
  /** the only values allowed, when the schema lists them */
  readonly enum?: readonly unknown[];
  /** the pattern a string must match (of the values, for a map or list of strings) */
  readonly pattern?: string;
  /** the pattern in plain words, when patterns.ts names it */
  readonly patternMeaning?: string;
  /** bounds in words: `at most 63 characters`, `from 1 to 3600`, ... */
  readonly constraints: readonly string[];
  /** a rule across this field's children (the sentence plugctl reports when it is broken) */
  readonly rule?: string;
  /** the fields of an object, or of a list's objects, in schema order */
  readonly fields: readonly SchemaField[];
}

type Node = Readonly<Record<string, unknown>>;

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The DockerPlugin schema as documented: the document schema with status's real schema (what plugctl
 * writes in Kubernetes mode), as the CRD carries it; files carry status along without checking it.
 */
export const documentedSchema: Node = {
  ...dockerPluginSchema,
  properties: { ...dockerPluginSchema.properties, status: dockerPluginStatusSchema },
};

/** kubectl explain's name for the type of a schema node. */
function typeOf(node: Node): string {
  if (node['x-kubernetes-int-or-string'] === true) return 'IntOrString';
  // a value of either type (an env value: a string or a secret reference)
  if (Array.isArray(node['type'])) {
    return node['type'].map((t) => (t === 'object' ? 'Object' : String(t))).join('|');
  }
  const type = typeof node['type'] === 'string' ? node['type'] : 'Object';
  if (type === 'object') {
    const values = node['additionalProperties'];
    if (isNode(values) && !isNode(node['properties'])) return `map[string]${typeOf(values)}`;
    return 'Object';
  }
  if (type === 'array') return `[]${isNode(node['items']) ? typeOf(node['items']) : 'Object'}`;
  return type;
}

/** The node whose value constraints describe the field: a list's or map's values, else itself. */
function valueNode(node: Node): Node {
  if (node['type'] === 'array' && isNode(node['items']) && node['items']['type'] !== 'object') {
    return node['items'];
  }
  const values = node['additionalProperties'];
  if (node['type'] === 'object' && isNode(values)) return values;
  return node;
}

/** `from A to B`, `at least A`, `at most B`, or nothing. */
function range(min: unknown, max: unknown, unit: string): string[] {
  const u = unit === '' ? '' : ` ${unit}`;
  if (min === 1 && max === undefined && unit !== '') return ['not empty'];
  if (typeof min === 'number' && typeof max === 'number') return [`from ${min} to ${max}${u}`];
  if (typeof min === 'number') return [`at least ${min}${u}`];
  if (typeof max === 'number') return [`at most ${max}${u}`];
  return [];
}

/** The bounds of a node in words (int-or-string nodes: of each branch). */
function constraintsOf(node: Node): string[] {
  if (node['x-kubernetes-int-or-string'] === true && Array.isArray(node['anyOf'])) {
    return node['anyOf'].filter(isNode).flatMap((branch) => {
      const [first] = constraintsOf(branch);
      const pattern = typeof branch['pattern'] === 'string' ? meaningOf(branch['pattern']) : undefined;
      const what = pattern ?? first;
      return what === undefined ? [] : [`as ${branch['type']}: ${what}`];
    });
  }
  const values = valueNode(node);
  return [
    ...range(values['minLength'], values['maxLength'], 'characters'),
    ...range(values['minimum'], values['maximum'], ''),
    ...range(node['minItems'], node['maxItems'], 'items'),
    ...(node['x-kubernetes-list-type'] === 'set' ? ['no duplicates'] : []),
    ...(node['x-kubernetes-list-type'] === 'map' && Array.isArray(node['x-kubernetes-list-map-keys'])
      ? [`entries unique by ${node['x-kubernetes-list-map-keys'].join(', ')}`]
      : []),
    ...(typeof values['format'] === 'string' ? [`format ${values['format']}`] : []),
    ...(values['nullable'] === true ? ['may be null'] : []),
  ];
}

/** The plain-language meaning of a pattern the schemas use, when patterns.ts names it. */
function meaningOf(pattern: string): string | undefined {
  return NAMED_PATTERNS.find((named) => named.pattern === pattern)?.meaning;
}

/** One schema node and everything under it. */
function describe(name: string, path: string, node: Node, required: boolean): SchemaField {
  const values = valueNode(node);
  const objectNode = node['type'] === 'array' && isNode(node['items']) ? node['items'] : node;
  const properties = isNode(objectNode['properties']) ? objectNode['properties'] : {};
  const requiredNames = Array.isArray(objectNode['required']) ? (objectNode['required'] as unknown[]) : [];
  const pattern = typeof values['pattern'] === 'string' ? values['pattern'] : undefined;
  const rule = objectNode['x-plugctl-message'] ?? node['x-plugctl-message'];
  const enumValues = Array.isArray(values['enum']) ? (values['enum'] as unknown[]) : undefined;
  const patternMeaning = pattern === undefined ? undefined : meaningOf(pattern);
  return {
    name,
    path,
    type: typeOf(node),
    description: typeof node['description'] === 'string' ? node['description'] : '',
    required,
    ...('default' in node ? { default: node['default'] } : {}),
    ...(enumValues === undefined ? {} : { enum: enumValues }),
    ...(pattern === undefined ? {} : { pattern }),
    ...(patternMeaning === undefined ? {} : { patternMeaning }),
    constraints: constraintsOf(node),
    // an int-or-string node's message restates its branches, which constraints already list
    ...(typeof rule === 'string' && node['x-kubernetes-int-or-string'] !== true ? { rule } : {}),
    fields: Object.entries(properties)
      .filter((entry): entry is [string, Node] => isNode(entry[1]))
      .map(([child, schema]) =>
        describe(child, path === '' ? child : `${path}.${child}`, schema, requiredNames.includes(child)),
      ),
  };
}

/** Every field of DockerPlugin, from the root (named after the kind). */
export function dockerPluginFields(): SchemaField {
  return describe(KIND, '', documentedSchema, true);
}

/** The field at `path` (names under the root), or where the walk stopped and what it could have taken. */
export type FieldLookup = { ok: true; field: SchemaField } | { ok: false; at: SchemaField; missing: string };

/** Walks `path` down from `root`, one name at a time. */
export function findField(root: SchemaField, path: readonly string[]): FieldLookup {
  let at = root;
  for (const name of path) {
    const next = at.fields.find((field) => field.name === name);
    if (next === undefined) return { ok: false, at, missing: name };
    at = next;
  }
  return { ok: true, field: at };
}

/** Every field under `field`, depth first (the field itself excluded). */
export function allFields(field: SchemaField): SchemaField[] {
  return field.fields.flatMap((child) => [child, ...allFields(child)]);
}
