/**
 * YAML parsing within DocumentLimits, in time and memory linear in the text. The file is cut into
 * documents at their markers (`---`, `...` at the start of a line end a document in YAML 1.2 even
 * inside a block scalar), so each document is parsed, measured and dropped on its own, and one bad
 * document never hides the others. A document is parsed by js-yaml (a single pass that builds the
 * values directly; the `yaml` package's lexer, parser and composer cost four times as much and
 * check each map key against every earlier one) with the YAML 1.2 core schema, while a listener
 * records where each node starts, for error positions, and stops the parse as soon as a bound is
 * crossed: before the parser recurses past the nesting bound, before a map grows past the entry
 * bound.
 */
import jsyaml from 'js-yaml';
import type { State } from 'js-yaml';
import type { DocumentLimits } from '../limits.ts';

/** Where one node of a document starts and what it holds, with its children in source order. */
export interface PositionNode {
  /** absolute offset at which the parser began reading the node (before blanks and comments) */
  open: number;
  /** absolute offset just after the node */
  close: number;
  /** 'mapping', 'sequence', 'scalar', or null (an alias, an empty node) */
  kind: string | null;
  result: unknown;
  /** a mapping's keys and values alternating; a sequence's items */
  children: PositionNode[];
}

/** A document within the limits: its value and the positions of its nodes. */
export interface BoundedDocument {
  type: 'document';
  /** 1-based position of the document in the file */
  index: number;
  value: unknown;
  /** the document's root node, its shallow nodes recorded; undefined for an empty document */
  root: PositionNode | undefined;
  /** the root with every node recorded (the document is parsed again, once), to point at any path */
  fullRoot(): PositionNode | undefined;
}

/**
 * A limit the text exceeds. `index` is the document (1-based) or 0 when the whole file is refused
 * (maxDocuments); `offset` is where in the text the bound was crossed.
 */
export interface LimitViolation {
  type: 'violation';
  index: number;
  offset: number;
  limit: keyof DocumentLimits;
  message: string;
}

/** A document that is not valid YAML. */
export interface SyntaxFailure {
  type: 'syntax';
  index: number;
  offset: number;
  message: string;
}

export type BoundedItem = BoundedDocument | LimitViolation | SyntaxFailure;

// The YAML 1.2 core schema's numbers (what the `yaml` package and Kubernetes read): js-yaml's own
// also take YAML 1.1's `1_000` and `0b101`, which would make a string of digits a number.
const INT_RE = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;
const FLOAT_RE =
  /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

const coreInt = new jsyaml.Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (data: unknown) => typeof data === 'string' && INT_RE.test(data),
  construct: (data: string) =>
    data.startsWith('0o')
      ? Number.parseInt(data.slice(2), 8)
      : data.startsWith('0x')
        ? Number.parseInt(data.slice(2), 16)
        : Number.parseInt(data, 10),
  predicate: (object: unknown) => Number.isInteger(object),
});

const coreFloat = new jsyaml.Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (data: unknown) => typeof data === 'string' && FLOAT_RE.test(data) && !INT_RE.test(data),
  construct: (data: string) => {
    const lower = data.toLowerCase();
    if (lower.endsWith('.nan')) return Number.NaN;
    if (lower.endsWith('.inf')) return lower.startsWith('-') ? -Infinity : Infinity;
    return Number.parseFloat(data);
  },
  predicate: (object: unknown) => typeof object === 'number',
});

const coreNull = new jsyaml.Type('tag:yaml.org,2002:null', {
  kind: 'scalar',
  resolve: (data: unknown) =>
    data === null || data === '' || data === '~' || /^(?:null|Null|NULL)$/.test(String(data)),
  construct: () => null,
  predicate: (object: unknown) => object === null,
});

const coreBool = new jsyaml.Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  resolve: (data: unknown) => typeof data === 'string' && /^(?:true|True|TRUE|false|False|FALSE)$/.test(data),
  construct: (data: string) => data.toLowerCase() === 'true',
  predicate: (object: unknown) => typeof object === 'boolean',
});

const CORE_SCHEMA = jsyaml.FAILSAFE_SCHEMA.extend({ implicit: [coreNull, coreBool, coreInt, coreFloat] });

/** Line starts of a text, to turn offsets into 1-based line and column. */
export class LineIndex {
  readonly #starts: number[] = [0];
  constructor(text: string) {
    for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) this.#starts.push(at + 1);
  }

  /** 1-based line and column of `offset`. */
  position(offset: number): { line: number; column: number } {
    const starts = this.#starts;
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((starts[mid] as number) <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - (starts[low] as number) + 1 };
  }
}

/** The offset of the first character at or after `offset` that is not a blank or in a comment. */
export function skipTrivia(text: string, offset: number, end = text.length): number {
  let at = offset;
  while (at < end) {
    const ch = text.charCodeAt(at);
    if (ch === 0x20 || ch === 0x09 || ch === 0x0a || ch === 0x0d) at++;
    else if (ch === 0x23 /* # */) {
      const eol = text.indexOf('\n', at);
      at = eol === -1 ? end : eol;
    } else break;
  }
  return at;
}

/** The half-open ranges of a text's documents, cut at document markers. */
export function splitDocuments(text: string): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let start = 0;
  let content = false;
  const marker = (line: string, mark: string): boolean =>
    line.startsWith(mark) && (line.length === 3 || ' \t\r'.includes(line.charAt(3)));
  for (let at = 0; at < text.length;) {
    const eol = text.indexOf('\n', at);
    const next = eol === -1 ? text.length : eol + 1;
    const line = text.slice(at, Math.min(next, at + 4)).replace(/\n$/, '');
    if (marker(line, '---')) {
      if (content) out.push({ start, end: at });
      if (content) start = at;
      content = true;
    } else if (marker(line, '...')) {
      out.push({ start, end: next });
      start = next;
      content = false;
    } else if (!content) {
      // blank, comment and directive lines before a document belong to it but are not content
      const first = skipTrivia(text, at, next);
      content = first < next && !(first === at && text.charAt(at) === '%');
    }
    at = next;
  }
  if (start < text.length && content) out.push({ start, end: text.length });
  return out.filter((range) => range.start < range.end);
}

/** The children of a node that has none; never modified (a node gets its own list at its first child). */
const NO_CHILDREN: PositionNode[] = [];

/** Thrown by the listener to stop a document at a bound. */
class Crossed extends Error {
  readonly limit: keyof DocumentLimits;
  readonly at: number;
  readonly detail: string;
  constructor(limit: keyof DocumentLimits, at: number, detail: string) {
    super(detail);
    this.limit = limit;
    this.at = at;
    this.detail = detail;
  }
}

/** One node being parsed: what the bounds need, and its position node when it is recorded. */
interface Frame {
  open: number;
  /** children closed so far */
  count: number;
  /** deepest nesting of collections among the children closed so far */
  height: number;
  /** the value of the last child closed (a wrapper's only child holds the wrapper's value) */
  last: unknown;
  node: PositionNode | undefined;
}

/**
 * Nodes down to this event depth are recorded on the first parse: the root, its keys and values,
 * theirs (metadata.name, spec.remote, spec.alias), which is every position a valid document needs.
 * A document that fails validation is parsed again with every node recorded, to point at the issue.
 */
const SHALLOW_DEPTH = 4;

/**
 * Parses one document's text (`start`..`end` of `text`) within `limits`, recording the positions of
 * its nodes (all of them when `full`, else the shallow ones). Every bound is checked in the
 * listener as the parser goes, in O(1) per node: the nesting and entries of a node once it closes
 * (its kind is known then), and, while it is open, guards on the parser's own recursion, children
 * and node count, so that no input can make it recurse or grow past them before it is stopped.
 */
function parseDocument(
  text: string,
  start: number,
  end: number,
  limits: DocumentLimits,
  full: boolean,
): { value: unknown; root: PositionNode | undefined } {
  const sentinel: Frame = { open: start, count: 0, height: 0, last: undefined, node: undefined };
  let root: PositionNode | undefined;
  const stack: Frame[] = [sentinel];
  let events = 0;
  // a sequence item is two nested events and a map entry two children: the guards allow for that
  const maxEvents = 2 * limits.maxNodes;
  const maxEventDepth = 2 * limits.maxDepth + 2;
  const maxChildren = 2 * limits.maxEntries;
  // js-yaml drops a leading byte order mark before counting positions
  const base = start + (text.charCodeAt(start) === 0xfeff ? 1 : 0);
  const listener = (type: 'open' | 'close', state: State): void => {
    const position = base + state.position;
    if (type === 'open') {
      if (++events > maxEvents) {
        throw new Crossed('maxNodes', position, `holds more than ${limits.maxNodes} values (limit maxNodes)`);
      }
      if (stack.length > maxEventDepth) throw depthCrossed(position, limits);
      const record = full || stack.length <= SHALLOW_DEPTH;
      stack.push({
        open: position,
        count: 0,
        height: 0,
        last: undefined,
        node: record
          ? { open: position, close: position, kind: null, result: undefined, children: NO_CHILDREN }
          : undefined,
      });
      return;
    }
    const frame = stack.pop() as Frame;
    const parent = stack[stack.length - 1] as Frame;
    const value = state.result as unknown;
    const kind = state.kind ?? null;
    if (
      typeof value === 'string' &&
      value.length * 3 > limits.maxValueBytes &&
      Buffer.byteLength(value, 'utf8') > limits.maxValueBytes
    ) {
      throw new Crossed(
        'maxValueBytes',
        skipTrivia(text, frame.open, end),
        `a value is longer than ${limits.maxValueBytes} bytes (limit maxValueBytes)`,
      );
    }
    // js-yaml reports a sequence item as an event around the item itself: one child, same value
    const wrapper = frame.count === 1 && frame.last === value;
    const collection = !wrapper && (kind === 'mapping' || kind === 'sequence');
    const height = frame.height + (collection ? 1 : 0);
    if (height > limits.maxDepth) throw depthCrossed(skipTrivia(text, frame.open, end), limits);
    if (collection && (kind === 'mapping' ? frame.count / 2 : frame.count) > limits.maxEntries) {
      throw entriesCrossed(frame.open, kind, text, end, limits);
    }
    parent.count++;
    parent.height = Math.max(parent.height, height);
    parent.last = value;
    if (parent.count > maxChildren) throw entriesCrossed(parent.open, null, text, end, limits);
    const node = frame.node;
    if (node === undefined) return;
    node.close = position;
    node.kind = kind;
    node.result = value;
    const holder = parent.node;
    if (holder === undefined) {
      if (parent === sentinel) root = node;
      return;
    }
    // most nodes are scalars: they share one empty list instead of each allocating its own
    if (holder.children === NO_CHILDREN) holder.children = [node];
    else holder.children.push(node);
  };
  const value = jsyaml.load(text.slice(start, end), { schema: CORE_SCHEMA, listener });
  return { value, root };
}

function depthCrossed(at: number, limits: DocumentLimits): Crossed {
  return new Crossed(
    'maxDepth',
    at,
    `nests lists and maps more than ${limits.maxDepth} deep (limit maxDepth)`,
  );
}

function entriesCrossed(
  open: number,
  kind: string | null,
  text: string,
  end: number,
  limits: DocumentLimits,
): Crossed {
  const at = skipTrivia(text, open, end);
  // while it is parsed a node's kind is not known yet: its first character tells
  const first = text.charAt(at);
  const list =
    kind === 'sequence' ||
    (kind === null && (first === '[' || (first === '-' && /[ \t\r\n]/.test(text.charAt(at + 1)))));
  return new Crossed(
    'maxEntries',
    at,
    `${list ? 'a list' : 'a map'} has more than ${limits.maxEntries} entries (limit maxEntries)`,
  );
}

/**
 * js-yaml reports a sequence item (and a document's root) as an event around the node itself:
 * one child holding the same value. It is not a level of nesting nor an entry.
 */
function isWrapper(node: PositionNode): boolean {
  return node.children.length === 1 && node.children[0]?.result === node.result;
}

/**
 * Counts the values of a parsed document as a consumer would walk them, aliases expanded, and
 * stops past `max`: an alias names a shared node, so a few lines of anchors can stand for billions
 * of values (the "billion laughs"), which the listener never sees.
 */
function expandedSize(value: unknown, max: number): number {
  let count = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0 && count <= max) {
    const item = pending.pop();
    count++;
    if (Array.isArray(item)) for (const element of item) pending.push(element);
    else if (typeof item === 'object' && item !== null)
      for (const element of Object.values(item)) pending.push(element);
  }
  return count;
}

/** js-yaml's wording, with the `yaml` package's where users already know it. */
function syntaxMessage(reason: string): string {
  return reason === 'duplicated mapping key' ? 'Map keys must be unique' : reason;
}

/**
 * Parses `text` document by document within `limits`. Yields each document within the limits, a
 * LimitViolation for each document beyond one (only it is skipped), a SyntaxFailure for each that
 * is not YAML, and at most one file-wide LimitViolation (index 0, maxDocuments), after which nothing
 * more is yielded: the caller must then drop what it already took from the file. maxFileBytes is the
 * caller's to check, before it reads the file.
 */
export function* parseBounded(text: string, limits: DocumentLimits): Generator<BoundedItem> {
  const ranges = splitDocuments(text);
  if (ranges.length > limits.maxDocuments) {
    yield {
      type: 'violation',
      index: 0,
      offset: (ranges[limits.maxDocuments] as { start: number }).start,
      limit: 'maxDocuments',
      message: `holds more than ${limits.maxDocuments} documents (limit maxDocuments); none of its documents is loaded. Split it into several files`,
    };
    return;
  }
  for (const [i, range] of ranges.entries()) {
    const index = i + 1;
    try {
      const { value, root } = parseDocument(text, range.start, range.end, limits, false);
      if (expandedSize(value, limits.maxNodes) > limits.maxNodes) {
        throw new Crossed(
          'maxNodes',
          root === undefined ? range.start : skipTrivia(text, root.open, range.end),
          `holds more than ${limits.maxNodes} values once its aliases are expanded (limit maxNodes)`,
        );
      }
      let full: PositionNode | undefined | null = null;
      const fullRoot = (): PositionNode | undefined =>
        full !== null ? full : (full = parseDocument(text, range.start, range.end, limits, true).root);
      yield { type: 'document', index, value, root, fullRoot };
    } catch (error) {
      if (error instanceof Crossed) {
        yield {
          type: 'violation',
          index,
          offset: error.at,
          limit: error.limit,
          message: `document ${index}: ${error.detail}; nothing of this document is loaded`,
        };
      } else if (error instanceof jsyaml.YAMLException) {
        yield {
          type: 'syntax',
          index,
          offset:
            range.start + (text.charCodeAt(range.start) === 0xfeff ? 1 : 0) + (error.mark?.position ?? 0),
          message: syntaxMessage(error.reason),
        };
      } else if (error instanceof RangeError) {
        // the parser's own recursion on a pathological input the guards did not foresee
        yield {
          type: 'violation',
          index,
          offset: range.start,
          limit: 'maxDepth',
          message: `document ${index}: nests too deep to parse (limit maxDepth); nothing of this document is loaded`,
        };
      } else {
        throw error;
      }
    }
  }
}

/** Where an issue points: the value at a path, its key, or the mapping that should hold it. */
export type LocateTarget = 'value' | 'key' | 'parent';

/**
 * The offset an issue at `segments` should point at: the value there, its key, or the mapping that
 * should hold it. Walks as far as the document allows and falls back to the deepest node reached; a
 * key with nothing after it (or `null`) points at the key, which reads better.
 */
export function locate(
  text: string,
  root: PositionNode | undefined,
  segments: readonly (string | number)[],
  target: LocateTarget,
): number {
  if (root === undefined) return 0;
  const startOf = (node: PositionNode): number =>
    skipTrivia(text, node.open, Math.max(node.close, node.open));
  const walk = target === 'parent' ? segments.slice(0, -1) : segments;
  let node = root;
  let offset = startOf(root);
  let keyOffset = offset;
  for (const segment of walk) {
    while (isWrapper(node)) node = node.children[0] as PositionNode;
    let next: PositionNode | undefined;
    if (node.kind === 'mapping') {
      for (let i = 0; i + 1 < node.children.length; i += 2) {
        const key = node.children[i] as PositionNode;
        if (String(key.result) === String(segment)) {
          keyOffset = startOf(key);
          next = node.children[i + 1] as PositionNode;
          offset = next.result === null || next.result === undefined ? keyOffset : startOf(next);
          break;
        }
      }
    } else if (node.kind === 'sequence' && typeof segment === 'number') {
      next = node.children[segment];
      if (next !== undefined) {
        offset = startOf(next);
        keyOffset = offset;
      }
    }
    if (next === undefined) break;
    node = next;
  }
  return target === 'key' ? keyOffset : offset;
}
