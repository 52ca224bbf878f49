/**
 * `-l SELECTOR` of `get`: kubectl's label-selector syntax (`a=b,c!=d,e in (x,y),f notin (z),g,!h`)
 * parsed into the LabelSelector shape the documents use, so matching is the one matchesSelector.
 */
import { labelProblem } from '../api/labels.ts';
import type { LabelSelector } from '../api/types.ts';
import { PlugctlError } from '../errors.ts';

type Expression = NonNullable<LabelSelector['matchExpressions']>[number];

/**
 * Parses a selector; throws INVALID_SELECTOR naming the term that is wrong. An empty text selects
 * everything. `a!=b` becomes `a notin (b)`, which, as in Kubernetes, also selects objects without `a`.
 */
export function parseSelector(text: string): LabelSelector {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: Expression[] = [];
  for (const raw of splitTerms(text)) {
    const term = raw.trim();
    if (term === '') throw invalid(text, 'an empty term (two commas in a row, or a trailing comma)');
    const set = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^()]*)\)$/.exec(term);
    if (set !== null) {
      const key = checkKey(set[1]!, text);
      const values = set[3]!.split(',').map((v) => v.trim());
      for (const v of values) checkValue(key, v, text);
      matchExpressions.push({ key, operator: set[2] === 'in' ? 'In' : 'NotIn', values });
      continue;
    }
    const pair = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(term);
    if (pair !== null) {
      const key = checkKey(pair[1]!, text);
      const value = checkValue(key, pair[3]!, text);
      if (pair[2] === '!=') matchExpressions.push({ key, operator: 'NotIn', values: [value] });
      else if (matchLabels[key] !== undefined && matchLabels[key] !== value)
        matchExpressions.push({ key, operator: 'In', values: [value] });
      else matchLabels[key] = value;
      continue;
    }
    const exists = /^(!?)\s*([^\s!=(),]+)$/.exec(term);
    if (exists !== null) {
      const key = checkKey(exists[2]!, text);
      matchExpressions.push({ key, operator: exists[1] === '!' ? 'DoesNotExist' : 'Exists' });
      continue;
    }
    throw invalid(text, `cannot read the term ${JSON.stringify(term)}`);
  }
  return {
    ...(Object.keys(matchLabels).length > 0 ? { matchLabels } : {}),
    ...(matchExpressions.length > 0 ? { matchExpressions } : {}),
  };
}

/** Splits at the commas outside parentheses (`a in (x,y),b` is two terms). */
function splitTerms(text: string): string[] {
  if (text.trim() === '') return [];
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms;
}

function checkKey(key: string, text: string): string {
  const problem = labelProblem(key, '');
  if (problem !== undefined) throw invalid(text, problem);
  return key;
}

function checkValue(key: string, value: string, text: string): string {
  const problem = labelProblem(key, value);
  if (problem !== undefined) throw invalid(text, problem);
  return value;
}

function invalid(text: string, why: string): PlugctlError {
  return new PlugctlError(
    'INVALID_SELECTOR',
    `-l ${JSON.stringify(text)}: ${why} (examples: role=storage, env in (a,b), !gpu)`,
  );
}
