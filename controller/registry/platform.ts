/**
 * Platforms as OCI indexes and Docker manifest lists name them, and the choice of one entry of an
 * index. Matching follows containerd's default matcher in the cases that matter for plugins: os and
 * architecture must be equal, and variants are compared after normalisation (arm64 without a
 * variant is arm64/v8, arm without one is arm/v7, amd64/v1 is plain amd64).
 */

/** An os/architecture[/variant] triple, e.g. `{ os: 'linux', architecture: 'arm64', variant: 'v8' }`. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const OS_NAMES: Readonly<Record<string, string>> = { win32: 'windows', sunos: 'solaris' };

/**
 * The platform this process runs on, from `process.platform`/`process.arch` (injectable for
 * tests): x64 -> amd64, arm64 -> arm64/v8, arm -> arm/v6|v7 (from the arm_version node was built
 * for), ia32 -> 386, ppc64 -> ppc64le on little-endian hosts, others unchanged.
 */
export function hostPlatform(
  nodePlatform: string = process.platform,
  nodeArch: string = process.arch,
  armVersion: string | undefined = armVersionOfNode(),
  littleEndian = true,
): Platform {
  const os = OS_NAMES[nodePlatform] ?? nodePlatform;
  switch (nodeArch) {
    case 'x64':
      return { os, architecture: 'amd64' };
    case 'arm64':
      return { os, architecture: 'arm64', variant: 'v8' };
    case 'arm':
      return { os, architecture: 'arm', variant: `v${armVersion ?? '7'}` };
    case 'ia32':
      return { os, architecture: '386' };
    case 'ppc64':
      return { os, architecture: littleEndian ? 'ppc64le' : 'ppc64' };
    default:
      return { os, architecture: nodeArch };
  }
}

function armVersionOfNode(): string | undefined {
  const variables = (process.config as { variables?: Record<string, unknown> }).variables;
  const value = variables?.['arm_version'];
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

/** The platform with its variant normalised as containerd does, so equal platforms compare equal. */
export function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  let architecture = platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase() ?? '';
  if (architecture === 'aarch64') architecture = 'arm64';
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
  if (architecture === 'arm64' && (variant === '' || variant === '8')) variant = 'v8';
  if (architecture === 'arm' && variant === '') variant = 'v7';
  if (architecture === 'arm' && /^[5-8]$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = '';
  return variant === '' ? { os, architecture } : { os, architecture, variant };
}

/** `linux/arm64/v8`, `linux/amd64`. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant]
    .filter((part) => part !== undefined && part !== '')
    .join('/');
}

/** Parses `os/arch[/variant]`; undefined when the text has not two or three non-empty parts. */
export function parsePlatform(text: string): Platform | undefined {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => part === '')) return undefined;
  const [os = '', architecture = '', variant] = parts;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** Whether an index entry's platform satisfies the wanted one (after normalisation of both). */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  const a = normalizePlatform(wanted);
  const b = normalizePlatform(candidate);
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/**
 * The index of the first entry whose platform matches `wanted`, or -1. Entries without a platform
 * never match: an index that does not say what its manifests are for cannot be chosen from.
 */
export function selectPlatform(wanted: Platform, candidates: readonly (Platform | undefined)[]): number {
  return candidates.findIndex((candidate) => candidate !== undefined && platformMatches(wanted, candidate));
}
