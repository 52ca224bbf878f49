/**
 * plugctl's own version, read from its package.json when asked (never copied into the code), so the
 * version printed is the version installed.
 */
import { readFileSync } from 'node:fs';

/**
 * Where package.json is, relative to this module: two levels up in a checkout
 * (controller/cli/), three in the compiled build (dist/controller/cli/).
 */
const CANDIDATES = ['../../package.json', '../../../package.json'];

/** The `version` of plugctl's package.json; throws when no plugctl package.json is found. */
export function packageVersion(): string {
  for (const candidate of CANDIDATES) {
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8'));
    } catch {
      continue;
    }
    if (isPlugctlManifest(manifest)) return manifest.version;
  }
  throw new Error(`plugctl's package.json was not found next to ${import.meta.url}`);
}

function isPlugctlManifest(value: unknown): value is { name: 'plugctl'; version: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    'name' in value &&
    value.name === 'plugctl' &&
    'version' in value &&
    typeof value.version === 'string'
  );
}
