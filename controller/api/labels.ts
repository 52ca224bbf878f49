/**
 * A host's labels, which spec.nodeSelector is matched against, and where they come from. Labels are
 * persistent (the Docker engine's own labels, a labels file, and the well-known labels every host
 * has) or a one-off override (`--node-labels`). The difference matters for safety: a document that
 * stops selecting the host only because of an override, or that selected it only thanks to one, never
 * has its plugin removed.
 */
import { SpecError } from '../errors.ts';
import type { LabelSelector } from './types.ts';
import { matchesSelector } from './selector.ts';

/** Label key -> value. */
export type Labels = Readonly<Record<string, string>>;

/** The host's labels: what persists, and what is matched (the persistent ones plus overrides). */
export interface HostLabels {
  /** well-known, engine and labels-file labels */
  persistent: Labels;
  /** `persistent` with the command line's overrides applied: what nodeSelector is matched against */
  effective: Labels;
}

/** How a document's nodeSelector treats this host. */
export type HostSelection =
  | { selected: true; by: 'labels' | 'override' }
  /** `byOverride`: the persistent labels select the host and only an override does not */
  | { selected: false; byOverride: boolean };

/** Whether `selector` selects the host, and whether an override is what decided it. */
export function selectHost(selector: LabelSelector | undefined, host: HostLabels): HostSelection {
  const persistent = matchesSelector(selector, host.persistent);
  if (matchesSelector(selector, host.effective))
    return { selected: true, by: persistent ? 'labels' : 'override' };
  return { selected: false, byOverride: persistent };
}

/** `process.arch` -> the GOARCH name Kubernetes uses in kubernetes.io/arch. */
const GOARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

/**
 * The labels every host has, named as Kubernetes names them on its Nodes, so one selector works on
 * a plain Docker host and in a cluster.
 */
export function wellKnownLabels(hostname: string, platform: string, arch: string): Labels {
  return {
    'kubernetes.io/hostname': hostname.toLowerCase(),
    'kubernetes.io/os': platform,
    'kubernetes.io/arch': GOARCH[arch] ?? arch,
  };
}

/** Combines persistent sources (later ones win) and overrides into the host's labels. */
export function hostLabelsOf(persistent: readonly Labels[], overrides: Labels): HostLabels {
  const merged = Object.assign({}, ...persistent) as Record<string, string>;
  return { persistent: merged, effective: { ...merged, ...overrides } };
}

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

/** Why `key=value` is not a valid Kubernetes label, or undefined when it is. */
export function labelProblem(key: string, value: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !PREFIX.test(prefix)))
    return `the key's prefix "${prefix}" is not a DNS subdomain`;
  if (!NAME.test(name))
    return `the key "${name}" must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  if (value !== '' && !NAME.test(value))
    return `the value "${value}" must be empty or 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return undefined;
}

/** Parses `--node-labels k=v,k2=v2`. Throws a SpecError naming the bad pair. */
export function parseLabelPairs(text: string | undefined, what = '--node-labels'): Labels {
  const labels: Record<string, string> = {};
  for (const pair of (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new SpecError(
        'INVALID_NODE_LABEL',
        `${what}: "${pair}" is not key=value (example: role=storage,zone=a)`,
      );
    }
    const problem = labelProblem(pair.slice(0, eq), pair.slice(eq + 1));
    if (problem !== undefined) throw new SpecError('INVALID_NODE_LABEL', `${what}: "${pair}": ${problem}`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

/**
 * Parses a labels file: one `key=value` per line; blank lines and lines starting with `#` are
 * ignored. Throws a SpecError naming `file:line` for a line that is not a valid label.
 */
export function parseLabelsFile(text: string, file: string): Labels {
  const labels: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const problem =
      eq <= 0
        ? 'expected key=value (example: role=storage)'
        : labelProblem(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
    if (problem !== undefined) throw new SpecError('INVALID_NODE_LABEL', `${file}:${i + 1}: ${problem}`);
    labels[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return labels;
}
