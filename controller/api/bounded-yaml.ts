/**
 * YAML parsing within DocumentLimits, one document at a time. The `yaml` library's one-shot
 * parseAllDocuments keeps every document's syntax tree alive at once, checks each map key against
 * every earlier key (quadratic: 60,000 keys take minutes) and recurses once per nesting level (a
 * few thousand `[` overflow the stack). Here the lexer and parser (linear, iterative) produce one
 * document's concrete syntax tree at a time; it is measured against the limits with an explicit
 * stack before the composer (recursive) sees it; duplicate keys are found with a set per map; and
 * each document is handed out and dropped before the next is read. Time and memory are then linear
 * in the file's size, and the peak is one document's.
 */
import { CST, Composer, Lexer, Parser, YAMLParseError, isMap, isPair, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter } from 'yaml';
import type { DocumentLimits } from '../limits.ts';

/** A document within the limits, composed (its syntax errors, duplicate keys included, in `errors`). */
export interface BoundedDocument {
  type: 'document';
  /** 1-based position of the document in the file */
  index: number;
  doc: Document.Parsed;
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

/** Syntax errors of a text that holds no document at all. */
export interface StreamErrors {
  type: 'stream-errors';
  errors: YAMLParseError[];
}

export type BoundedItem = BoundedDocument | LimitViolation | StreamErrors;

type Token = CST.Token;

/** Lexemes that mark a position without being source text (the parser does not count them). */
const MARKERS: ReadonlySet<string> = new Set([CST.DOCUMENT, CST.FLOW_END, CST.SCALAR]);

/** Lexemes that start one value: the marker before a plain or block scalar, a quoted scalar, ... */
const VALUE_LEXEMES: ReadonlySet<string> = new Set([
  'scalar',
  'single-quoted-scalar',
  'double-quoted-scalar',
  'alias',
  'flow-map-start',
  'flow-seq-start',
  'seq-item-ind',
  'explicit-key-ind',
]);

/** Where a new document may begin: what the lexer emits at the start of a document or its directives. */
const DOCUMENT_STARTS: ReadonlySet<string> = new Set(['doc-mode', 'doc-start', 'directive-line']);

function isCollection(
  token: Token | undefined,
): token is CST.BlockMap | CST.BlockSequence | CST.FlowCollection {
  return token?.type === 'block-map' || token?.type === 'block-seq' || token?.type === 'flow-collection';
}

/**
 * Checks the document being parsed against the limits after each lexeme. Only the innermost open
 * collections can have grown and the stack only changes at its top, so each check is O(1) (the
 * depth is counted only when the stack is deep enough to matter).
 */
class DocumentMeter {
  readonly #limits: DocumentLimits;
  #values = 0;
  constructor(limits: DocumentLimits) {
    this.#limits = limits;
  }

  reset(): void {
    this.#values = 0;
  }

  /** The limit the lexeme (of `type`, scalar content when `scalar`) or the parser's stack crosses. */
  check(
    lexeme: string,
    type: string | null,
    scalar: boolean,
    stack: readonly Token[],
  ): { limit: keyof DocumentLimits; message: string } | undefined {
    const limits = this.#limits;
    if (type !== null && VALUE_LEXEMES.has(type) && ++this.#values > limits.maxNodes) {
      return { limit: 'maxNodes', message: `holds more than ${limits.maxNodes} values (limit maxNodes)` };
    }
    const quoted = type === 'single-quoted-scalar' || type === 'double-quoted-scalar';
    // a UTF-16 unit is at most 3 bytes of UTF-8: count bytes only when it could matter
    if (
      (scalar || quoted) &&
      lexeme.length * 3 > limits.maxValueBytes &&
      Buffer.byteLength(lexeme, 'utf8') > limits.maxValueBytes
    ) {
      return {
        limit: 'maxValueBytes',
        message: `a value is longer than ${limits.maxValueBytes} bytes (limit maxValueBytes)`,
      };
    }
    for (let i = stack.length - 1; i >= 0 && i >= stack.length - 2; i--) {
      const token = stack[i];
      if (isCollection(token) && token.items.length > limits.maxEntries) {
        const what =
          token.type === 'block-map' ? 'a map' : token.type === 'block-seq' ? 'a list' : 'a list or map';
        return {
          limit: 'maxEntries',
          message: `${what} has more than ${limits.maxEntries} entries (limit maxEntries)`,
        };
      }
    }
    if (stack.length > limits.maxDepth && stack.filter(isCollection).length > limits.maxDepth) {
      return {
        limit: 'maxDepth',
        message: `nests lists and maps more than ${limits.maxDepth} deep (limit maxDepth)`,
      };
    }
    return undefined;
  }
}

/**
 * Map keys must be unique (YAML 1.2); the composer's own check compares every key with every earlier
 * one, so it is off and this linear one adds the same error to the document instead.
 */
function checkUniqueKeys(doc: Document.Parsed): void {
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key = pair.key;
        if (isScalar(key)) {
          const identity = key.value;
          if (seen.has(identity)) {
            const start = key.range?.[0] ?? 0;
            doc.errors.push(
              new YAMLParseError(
                [start, key.range?.[1] ?? start],
                'DUPLICATE_KEY',
                'Map keys must be unique',
              ),
            );
          }
          seen.add(identity);
        } else if (key !== null) {
          stack.push(key);
        }
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(isPair(item) ? item.value : item);
    }
  }
}

/**
 * Parses `text` document by document within `limits`, reporting positions through `lines`. Yields
 * each document within the limits (composed), a LimitViolation for each document beyond one (the
 * rest of that document is only lexed, never parsed, and the next document is parsed afresh), and
 * at most one file-wide LimitViolation (index 0, maxDocuments) after which nothing more is yielded:
 * the caller must then drop what it already took from the file. maxFileBytes is the caller's to
 * check, before it reads the file.
 */
export function* parseBounded(
  text: string,
  limits: DocumentLimits,
  lines: LineCounter,
): Generator<BoundedItem> {
  // prettyErrors off: the parser's own one-line message; positions come from the LineCounter
  const composer = new Composer({ prettyErrors: false, uniqueKeys: false });
  const meter = new DocumentMeter(limits);
  let parser: Parser | undefined = new Parser(lines.addNewLine);
  /** indexes of the documents given to the composer and not yet handed out, in order */
  const pending: number[] = [];
  let documents = 0;
  const documentIndex = new WeakMap<Token, number>();
  let current: Token | undefined;
  /** where the parser is, and whether the next lexeme is a scalar's content (as the parser tracks them) */
  let offset = 0;
  let atScalar = false;
  const hand = function* (docs: Iterable<Document.Parsed>): Generator<BoundedDocument> {
    for (const doc of docs) {
      checkUniqueKeys(doc);
      yield { type: 'document', index: pending.shift() ?? documents, doc };
    }
  };
  lines.addNewLine(0);
  for (const lexeme of new Lexer().lex(text)) {
    const scalar: boolean = atScalar;
    const type: string | null = scalar ? null : CST.tokenType(lexeme);
    atScalar = type === 'scalar';
    if (parser === undefined) {
      // skipping a refused document: only positions are kept, until the next document begins
      if (scalar || type === null || !DOCUMENT_STARTS.has(type)) {
        if (type === 'newline') lines.addNewLine(offset + lexeme.length);
        if (!MARKERS.has(lexeme) || scalar) offset += lexeme.length;
        continue;
      }
      parser = new Parser(lines.addNewLine);
      parser.offset = offset;
    }
    for (const token of parser.next(lexeme)) {
      if (token.type === 'document') pending.push(documentIndex.get(token) ?? documents);
      yield* hand(composer.next(token));
    }
    offset = parser.offset;
    const stack = parser.stack;
    const top = stack[0];
    if (top !== undefined && top !== current && top.type === 'document') {
      current = top;
      meter.reset();
      if (++documents > limits.maxDocuments) {
        yield {
          type: 'violation',
          index: 0,
          offset: top.offset,
          limit: 'maxDocuments',
          message: `holds more than ${limits.maxDocuments} documents (limit maxDocuments); none of its documents is loaded. Split it into several files`,
        };
        return;
      }
      documentIndex.set(top, documents);
    }
    const crossed = current === undefined ? undefined : meter.check(lexeme, type, scalar, stack);
    if (crossed !== undefined) {
      yield {
        type: 'violation',
        index: documents,
        offset,
        limit: crossed.limit,
        message: `document ${documents}: ${crossed.message}; nothing of this document is loaded`,
      };
      parser = undefined;
      current = undefined;
    }
  }
  if (parser !== undefined) {
    for (const token of parser.end()) {
      if (token.type === 'document') pending.push(documentIndex.get(token) ?? documents);
      yield* hand(composer.next(token));
    }
  }
  yield* hand(composer.end());
  if (documents === 0) {
    const info = composer.streamInfo();
    if (info.errors.length > 0) yield { type: 'stream-errors', errors: info.errors };
  }
}
