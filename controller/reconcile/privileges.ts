/**
 * Privilege comparison. The engine before 29.3.1 skipped the first element when it validated
 * grants (CVE-2026-33997), so plugctl compares every element itself before anything is sent.
 */
import type { PluginPrivilege } from '../spec/types.ts';

/** Canonical form of one privilege: name plus its values sorted, description ignored. */
function canonical(privilege: PluginPrivilege): string {
  return JSON.stringify([privilege.name, [...privilege.value].sort()]);
}

/**
 * True when `granted` and `required` hold exactly the same privileges, every element, in any order
 * (values inside one privilege are also compared as a set). Duplicates count.
 */
export function privilegesEqual(
  granted: readonly PluginPrivilege[],
  required: readonly PluginPrivilege[],
): boolean {
  if (granted.length !== required.length) return false;
  const a = granted.map(canonical).sort();
  const b = required.map(canonical).sort();
  return a.every((value, index) => value === b[index]);
}

/** Renders privileges for a message: `network=[host], mount=[/var/lib]`, or `none`. */
export function formatPrivileges(privileges: readonly PluginPrivilege[]): string {
  if (privileges.length === 0) return 'none';
  return privileges.map((p) => `${p.name}=[${p.value.join(', ')}]`).join(', ');
}
