/**
 * `plugctl explain RESOURCE[.FIELD...] [--recursive]`: the documentation of a DockerPlugin field in
 * the terminal, laid out as `kubectl explain` does, from the one schema (api/fields.ts), so it says
 * exactly what docs/reference.md and the validator say. Needs no store, engine or cluster.
 */
import { dockerPluginFields, findField, type SchemaField } from '../api/fields.ts';
import { API_VERSION, KIND } from '../api/types.ts';
import type { Output } from './context.ts';

/** How a user may name the resource: kind, plural, short name, and the plural with its group. */
const RESOURCE_NAMES = new Set(
  [KIND, 'dockerplugins', 'dplug', `dockerplugins.${API_VERSION.split('/')[0]}`].map((n) => n.toLowerCase()),
);

/** Options of `plugctl explain`. */
export interface ExplainOptions {
  /** print the names and types of every field below, as a tree, instead of the direct fields' docs */
  recursive: boolean;
}

const WIDTH = 80;

/** `text` wrapped to WIDTH columns, every line indented by `indent` spaces. */
function wrap(text: string, indent: number): string {
  const pad = ' '.repeat(indent);
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (line.length > 0 && pad.length + line.length + 1 + word.length > WIDTH) {
      lines.push(pad + line);
      line = word;
    } else {
      line = line.length === 0 ? word : `${line} ${word}`;
    }
  }
  if (line.length > 0) lines.push(pad + line);
  return lines.join('\n');
}

/** A value as explain prints it. */
function show(value: unknown): string {
  return typeof value === 'string' ? (value === '' ? '""' : value) : JSON.stringify(value);
}

/** `<type>`, then -required- as kubectl marks it. */
function typeLabel(field: SchemaField): string {
  return `<${field.type}>${field.required ? ' -required-' : ''}`;
}

/** The facts beyond the description: default, values, pattern, bounds, rule; one per line. */
function facts(field: SchemaField): string[] {
  const lines: string[] = [];
  if (field.default !== undefined) lines.push(`Default: ${show(field.default)}`);
  if (field.enum !== undefined) lines.push(`Values: ${field.enum.map(show).join(', ')}`);
  if (field.pattern !== undefined) {
    lines.push(
      `Pattern: ${field.pattern}${field.patternMeaning === undefined ? '' : ` — ${field.patternMeaning}`}`,
    );
  }
  if (field.constraints.length > 0) lines.push(`Bounds: ${field.constraints.join('; ')}`);
  if (field.rule !== undefined) lines.push(`Rule: ${field.rule}.`);
  return lines;
}

/** The tree of names and types under `field`, two spaces more per level (`--recursive`). */
function tree(field: SchemaField, indent: number): string[] {
  return field.fields.flatMap((child) => [
    `${' '.repeat(indent)}${child.name}\t${typeLabel(child)}`,
    ...tree(child, indent + 2),
  ]);
}

/** The whole explanation of `field`. */
export function renderExplain(field: SchemaField, options: ExplainOptions): string {
  const out = [`KIND:       ${KIND}`, `VERSION:    ${API_VERSION}`, ''];
  if (field.path !== '') out.push(`FIELD: ${field.name} ${typeLabel(field)}`, '');
  out.push('DESCRIPTION:', wrap(field.description, 4));
  const more = facts(field);
  if (more.length > 0) out.push('', ...more.map((line) => wrap(line, 4)));
  if (field.fields.length > 0) {
    out.push('', 'FIELDS:');
    if (options.recursive) {
      out.push(...tree(field, 2));
    } else {
      for (const child of field.fields) {
        out.push(`  ${child.name}\t${typeLabel(child)}`);
        if (child.enum !== undefined) out.push(wrap(`enum: ${child.enum.map(show).join(', ')}`, 4));
        out.push(wrap(child.description, 4), '');
      }
      out.pop();
    }
  }
  return `${out.join('\n')}\n`;
}

/**
 * Runs explain for `target` (`dockerplugin.spec.settings`). Exit 0 with the explanation on stdout; 2
 * with one line on stderr for an unknown resource, or for an unknown field naming the fields there are.
 */
export function explainCommand(target: string, options: ExplainOptions, io: Output): number {
  const [resource = '', ...path] = target.split('.');
  // `dockerplugins.plugctl.dev.spec`: the group is part of the resource's name, not a field
  const group = API_VERSION.split('/')[0] ?? '';
  const groupParts = group.split('.');
  const withGroup = path.slice(0, groupParts.length).join('.') === group;
  const name = withGroup ? `${resource}.${group}` : resource;
  const fieldPath = withGroup ? path.slice(groupParts.length) : path;
  if (!RESOURCE_NAMES.has(name.toLowerCase())) {
    io.err(
      `error: unknown resource "${resource}": plugctl explains ${KIND.toLowerCase()} (also dockerplugins, dplug)\n`,
    );
    return 2;
  }
  if (fieldPath.some((segment) => segment === '')) {
    io.err(
      `error: "${target}" has an empty field name; write fields as ${KIND.toLowerCase()}.spec.settings\n`,
    );
    return 2;
  }
  const found = findField(dockerPluginFields(), fieldPath);
  if (!found.ok) {
    const where = [KIND.toLowerCase(), ...(found.at.path === '' ? [] : [found.at.path])].join('.');
    const valid = found.at.fields.map((f) => f.name);
    io.err(
      valid.length === 0
        ? `error: field "${found.missing}" does not exist: ${where} is a ${found.at.type} and has no fields\n`
        : `error: field "${found.missing}" does not exist in ${where}; valid fields: ${valid.join(', ')}\n`,
    );
    return 2;
  }
  io.out(renderExplain(found.field, options));
  return 0;
}
