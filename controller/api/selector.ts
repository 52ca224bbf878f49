/**
 * Kubernetes label-selector matching, used to pick which documents apply to this host (labels.ts
 * says where a host's labels come from), so one repository can serve a fleet.
 */
import type { LabelSelector } from './types.ts';

/** True when `labels` satisfy every term of `selector`; an absent or empty selector matches all hosts. */
export function matchesSelector(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (selector === undefined) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const term of selector.matchExpressions ?? []) {
    const value = labels[term.key];
    const values = term.values ?? [];
    switch (term.operator) {
      case 'In':
        if (value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (value === undefined) return false;
        break;
      case 'DoesNotExist':
        if (value !== undefined) return false;
        break;
    }
  }
  return true;
}

/**
 * A selector in the API server's (and kubectl's) label-selector syntax: `role=storage,zone in (a,b),!gpu`;
 * empty for an absent or empty selector, which selects everything.
 */
export function formatSelector(selector: LabelSelector | undefined): string {
  const terms = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') terms.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') terms.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') terms.push(e.key);
    else terms.push(`!${e.key}`);
  }
  return terms.join(',');
}
