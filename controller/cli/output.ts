/**
 * `-o FORMAT` of the read commands, in kubectl's words: `table` (default), `wide`, `name`, `json`,
 * `yaml` and `jsonpath=TEMPLATE`. Tables are drawn by cli-table3 without borders (kubectl's look:
 * columns three spaces apart); jsonpath templates are kubectl's (`{.items[*].metadata.name}`,
 * `{range .items[*]}{.metadata.name}{"\n"}{end}`), evaluated by jsonpath-plus.
 */
import Table from 'cli-table3';
import { PlugctlError } from '../errors.ts';

/** A parsed `-o` value. */
export type OutputFormat =
  { kind: 'table' | 'wide' | 'name' | 'json' | 'yaml' } | { kind: 'jsonpath'; template: string };

/** The `-o` values `get` lists in its help and errors. */
export const OUTPUT_FORMATS = ['table', 'wide', 'name', 'json', 'yaml', 'jsonpath=TEMPLATE'] as const;

/** Parses `-o`; throws INVALID_OUTPUT_FORMAT listing the formats there are. */
export function parseOutputFormat(text: string): OutputFormat {
  const jsonpath = /^jsonpath=(.*)$/s.exec(text);
  if (jsonpath !== null) {
    if (jsonpath[1]!.trim() === '') throw invalidFormat(text, 'the template is empty');
    parseTemplate(jsonpath[1]!, text);
    return { kind: 'jsonpath', template: jsonpath[1]! };
  }
  if (text === 'table' || text === 'wide' || text === 'name' || text === 'json' || text === 'yaml')
    return { kind: text };
  throw invalidFormat(text, 'unknown format');
}

function invalidFormat(text: string, why: string): PlugctlError {
  return new PlugctlError(
    'INVALID_OUTPUT_FORMAT',
    `-o ${JSON.stringify(text)}: ${why}; use one of ${OUTPUT_FORMATS.join(', ')} (e.g. -o 'jsonpath={.items[*].metadata.name}')`,
  );
}

/**
 * Renders rows as a borderless table, kubectl's way: upper-case headers, columns three spaces apart,
 * no trailing blanks. `headers: false` is `--no-headers`.
 */
export function renderTable(header: readonly string[], rows: readonly string[][], headers = true): string {
  const table = new Table({
    ...(headers ? { head: [...header] } : {}),
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '   ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  table.push(...rows.map((r) => [...r]));
  if (rows.length === 0 && !headers) return '';
  return `${table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')}\n`;
}

/** JSON as kubectl prints it: two-space indentation and a final newline. */
export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * YAML of objects as a multi-document stream (`---` between them), which every loader of
 * documents (plugctl's, kubectl's) reads back one object per document.
 */
export async function renderYamlStream(objects: readonly unknown[]): Promise<string> {
  // loaded only for -o yaml: it is the heaviest module of get
  const { stringify } = await import('yaml');
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}

/** One piece of a parsed template. */
type Node =
  | { type: 'text'; text: string }
  | { type: 'path'; path: string }
  | { type: 'range'; path: string; body: Node[] };

/**
 * Parses a kubectl jsonpath template into text, paths and `{range}...{end}` blocks. Quoted literals
 * (`{"\n"}`, `{'\t'}`) are text with JSON escapes.
 */
function parseTemplate(template: string, text: string): Node[] {
  const root: Node[] = [];
  const stack: Node[][] = [root];
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('{', i);
    const literal = open < 0 ? template.slice(i) : template.slice(i, open);
    if (literal !== '') stack.at(-1)!.push({ type: 'text', text: literal });
    if (open < 0) break;
    const close = closingBrace(template, open);
    if (close < 0) throw invalidFormat(text, `the "{" at position ${open + 1} is never closed`);
    const inner = template.slice(open + 1, close).trim();
    i = close + 1;
    if (/^(["']).*\1$/s.test(inner)) {
      stack.at(-1)!.push({ type: 'text', text: unquote(inner, text) });
    } else if (inner.startsWith('range ')) {
      const body: Node[] = [];
      stack.at(-1)!.push({ type: 'range', path: toJsonPath(inner.slice(6).trim(), text), body });
      stack.push(body);
    } else if (inner === 'end') {
      if (stack.length === 1) throw invalidFormat(text, '{end} without {range}');
      stack.pop();
    } else {
      stack.at(-1)!.push({ type: 'path', path: toJsonPath(inner, text) });
    }
  }
  if (stack.length > 1) throw invalidFormat(text, '{range} without {end}');
  return root;
}

function closingBrace(template: string, open: number): number {
  let quote: string | undefined;
  for (let j = open + 1; j < template.length; j++) {
    const c = template[j];
    if (quote !== undefined) {
      if (c === '\\') j++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '}') return j;
  }
  return -1;
}

function unquote(literal: string, text: string): string {
  const body = literal.slice(1, -1);
  try {
    // an unescaped double quote inside a single-quoted literal is escaped for JSON
    return JSON.parse(`"${body.replace(/(?<!\\)"/g, '\\"')}"`) as string;
  } catch {
    throw invalidFormat(text, `cannot read the literal ${literal}`);
  }
}

/** `.items[*].metadata.name` (kubectl) -> `$.items[*].metadata.name` (JSONPath); `@` stays relative. */
function toJsonPath(expression: string, text: string): string {
  if (expression === '' || expression === '.' || expression === '$') return '$';
  if (expression.startsWith('$') || expression.startsWith('@')) return expression;
  if (expression.startsWith('.') || expression.startsWith('[')) return `$${expression}`;
  throw invalidFormat(text, `the expression {${expression}} must start with "." (e.g. {.metadata.name})`);
}

/** Evaluates a kubectl jsonpath template against `data` (a List, or one object). */
export async function renderJsonPath(template: string, data: unknown): Promise<string> {
  const { JSONPath } = await import('jsonpath-plus');
  const query = (path: string, current: unknown): unknown[] => {
    // `@` is the element of the enclosing range: evaluated as the root of that element
    const rooted = path.startsWith('@') ? `$${path.slice(1)}` : path;
    if (current === null || typeof current !== 'object') return rooted === '$' ? [current] : [];
    return JSONPath({ path: rooted, json: current, wrap: true }) as unknown[];
  };
  const render = (nodes: readonly Node[], current: unknown): string =>
    nodes
      .map((node) => {
        if (node.type === 'text') return node.text;
        const values = query(node.path, current);
        if (node.type === 'path') return values.map(scalar).join(' ');
        return values.map((v) => render(node.body, v)).join('');
      })
      .join('');
  return render(parseTemplate(template, `jsonpath=${template}`), data);
}

function scalar(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  return JSON.stringify(value);
}
