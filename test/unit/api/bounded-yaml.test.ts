/**
 * The bounded YAML parser on its own: documents cut at their markers, the YAML 1.2 core schema's
 * scalars (as the `yaml` package and Kubernetes read them), each bound, and aliases expanded past
 * the value bound (the "billion laughs").
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBounded, splitDocuments } from '../../../controller/api/bounded-yaml.ts';
import type { BoundedItem } from '../../../controller/api/bounded-yaml.ts';
import { DEFAULT_DOCUMENT_LIMITS } from '../../../controller/limits.ts';
import type { DocumentLimits } from '../../../controller/limits.ts';

function parse(text: string, limits: Partial<DocumentLimits> = {}): BoundedItem[] {
  return [...parseBounded(text, { ...DEFAULT_DOCUMENT_LIMITS, ...limits })];
}

function values(text: string): unknown[] {
  return parse(text).map((item) => (item.type === 'document' ? item.value : item));
}

describe('splitDocuments', () => {
  it('cuts at `---` and after `...`, keeping directives and comments with the document they precede', () => {
    const text = '# lead\na: 1\n---\nb: 2\n...\n%YAML 1.2\n---\nc: 3\n--- # tail\nd: |\n  x\n';
    const parts = splitDocuments(text).map((r) => text.slice(r.start, r.end));
    assert.deepEqual(parts, [
      '# lead\na: 1\n',
      '---\nb: 2\n...\n',
      '%YAML 1.2\n---\nc: 3\n',
      '--- # tail\nd: |\n  x\n',
    ]);
  });

  it('a marker needs a blank or the end of the line after it; indented ones are content', () => {
    const text = 'a: ---x\n  ---\nb: 1\n';
    assert.equal(splitDocuments(text).length, 1);
  });

  it('an empty or comment-only text holds no document', () => {
    assert.deepEqual(splitDocuments(''), []);
    assert.deepEqual(splitDocuments('# nothing\n\n'), []);
  });
});

describe('the YAML 1.2 core schema', () => {
  it('reads numbers, booleans and nulls as YAML 1.2 does, not as YAML 1.1', () => {
    assert.deepEqual(
      values('a: 1_000\nb: 0b101\nc: 0o17\nd: 0x1F\ne: .inf\nf: yes\ng: ~\nh: True\ni: 012\nj: 1.5e3\n'),
      [{ a: '1_000', b: '0b101', c: 15, d: 31, e: Infinity, f: 'yes', g: null, h: true, i: 12, j: 1500 }],
    );
  });

  it('duplicate keys are a syntax error with the familiar message', () => {
    const [item] = parse('a: 1\na: 2\n');
    assert.equal(item?.type, 'syntax');
    assert.equal(item?.type === 'syntax' ? item.message : '', 'Map keys must be unique');
  });

  it('a syntax error in one document leaves the others', () => {
    const items = parse('a: 1\n---\nb: [\n---\nc: 3\n');
    assert.deepEqual(
      items.map((i) => i.type),
      ['document', 'syntax', 'document'],
    );
  });
});

describe('bounds', () => {
  it('aliases that expand past maxNodes are refused (billion laughs)', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      lines.push(
        `${name}: &${name} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`,
      );
    }
    const [item] = parse(`${lines.join('\n')}\n`);
    assert.equal(item?.type, 'violation');
    assert.equal(item?.type === 'violation' ? item.limit : '', 'maxNodes');
  });

  it('each bound names itself, and the document', () => {
    const cases: [string, Partial<DocumentLimits>, keyof DocumentLimits][] = [
      ['a: [1, 2, 3]\n', { maxEntries: 2 }, 'maxEntries'],
      ['a: {b: {c: 1}}\n', { maxDepth: 2 }, 'maxDepth'],
      ['a: xxxxxxxx\n', { maxValueBytes: 4 }, 'maxValueBytes'],
      ['a: [1, 2, 3, 4, 5, 6]\n', { maxNodes: 4 }, 'maxNodes'],
    ];
    for (const [text, limits, limit] of cases) {
      const items = parse(`ok: 1\n---\n${text}`, limits);
      assert.equal(items[0]?.type, 'document');
      const violation = items[1];
      assert.equal(violation?.type, 'violation', text);
      if (violation?.type === 'violation') {
        assert.equal(violation.limit, limit);
        assert.match(violation.message, /^document 2: /);
      }
    }
    const many = parse('a: 1\n---\nb: 2\n---\nc: 3\n', { maxDocuments: 2 });
    assert.deepEqual(
      many.map((i) => (i.type === 'violation' ? [i.index, i.limit] : i.type)),
      [[0, 'maxDocuments']],
    );
  });

  it('a sequence of maps nested within the bound is not counted twice', () => {
    const text = 'a:\n  - b:\n      - c: 1\n';
    assert.deepEqual(values(text), [{ a: [{ b: [{ c: 1 }] }] }]);
    assert.equal(parse(text, { maxDepth: 5 })[0]?.type, 'document', 'map, list, map, list, map: five levels');
    assert.equal(parse(text, { maxDepth: 4 })[0]?.type, 'violation');
  });
});
