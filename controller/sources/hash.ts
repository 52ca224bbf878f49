/**
 * Content hashes of documents. Sources compare documents by content rather than by file events, so a
 * save that changes nothing (or a move to another file) does not wake the controller.
 */
import { createHash } from 'node:crypto';

/** JSON with object keys sorted, so two equal values always serialise identically. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The sha256 (hex) of a value's stable JSON: equal for equal content, whatever the key order. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex');
}
