/**
 * Kubernetes label-selector matching, used to pick which documents apply to this host. A host's
 * labels are `--node-labels` plus `kubernetes.io/hostname`, so one repository can serve a fleet.
 */
import { hostname } from 'node:os';
import { SpecError } from '../errors.ts';
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
 * Parses `k=v,k2=v2` into labels and adds `kubernetes.io/hostname` (unless given). Throws a
 * SpecError naming the bad pair.
 */
export function hostLabels(spec: string | undefined, host: string = hostname()): Record<string, string> {
  const labels: Record<string, string> = { 'kubernetes.io/hostname': host };
  for (const pair of (spec ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new SpecError(
        'INVALID_NODE_LABEL',
        `--node-labels: "${pair}" is not key=value (example: role=storage,zone=a)`,
      );
    }
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}
