/**
 * The regular expressions the schemas (schema.ts, status.ts) use, each with the plain-language meaning
 * validate.ts shows when a value does not match.
 */

/**
 * A regular expression the schema uses, with the plain-language meaning shown to users when a value
 * does not match (a raw regex in an error message helps nobody).
 */
export interface NamedPattern {
  readonly pattern: string;
  readonly meaning: string;
}

/** RFC 1123 label, as Kubernetes validates object names: also a safe file and key name everywhere. */
export const DNS_LABEL: NamedPattern = {
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  meaning:
    'a DNS-1123 label: at most 63 characters, lowercase letters, digits and "-", starting and ending with a letter or digit',
};

/**
 * A local plugin name as Docker accepts for `--alias`: lowercase repository path components separated by
 * "/", optionally ":tag". No digest, because a local name cannot pin content.
 */
export const LOCAL_NAME: NamedPattern = {
  pattern:
    '^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$',
  meaning:
    'a local plugin name: lowercase path components (letters, digits, ".", "_", "-") separated by "/", optionally followed by ":tag", without a digest',
};

/** An absolute host path: plugin mounts and devices are bound from the host file system. */
export const ABSOLUTE_PATH: NamedPattern = {
  pattern: '^/',
  meaning: 'an absolute host path (starting with "/")',
};

/** RFC 1123 subdomain, as Kubernetes validates the names of most objects (Secrets among them). */
export const DNS_SUBDOMAIN: NamedPattern = {
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  meaning:
    'a DNS-1123 subdomain: at most 253 characters, lowercase letters, digits, "-" and ".", starting and ending with a letter or digit',
};

/** A percentage of nodes from 1% to 100%, as DaemonSets write maxUnavailable. */
export const PERCENT: NamedPattern = {
  pattern: '^(100|[1-9][0-9]?)%$',
  meaning: 'a percentage from "1%" to "100%"',
};

/** metav1.Condition's reason rule. */
export const CONDITION_REASON: NamedPattern = {
  pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
  meaning: 'a CamelCase reason: letters, digits, "_", "," and ":", starting with a letter',
};

/** metav1.Condition's type rule (an optional DNS-subdomain prefix and "/", then a name). */
export const CONDITION_TYPE: NamedPattern = {
  pattern:
    '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
  meaning: 'a condition type such as Ready, optionally prefixed by a DNS subdomain and "/"',
};

/** Two counts, such as the "3/3" of a READY column. */
export const READY_RATIO: NamedPattern = {
  pattern: '^[0-9]+/[0-9]+$',
  meaning: 'two counts separated by "/", such as 3/3',
};

/** Every pattern the schemas use, so error messages can translate any of them. */
export const NAMED_PATTERNS: readonly NamedPattern[] = [
  DNS_LABEL,
  LOCAL_NAME,
  ABSOLUTE_PATH,
  DNS_SUBDOMAIN,
  PERCENT,
  CONDITION_REASON,
  CONDITION_TYPE,
  READY_RATIO,
];
