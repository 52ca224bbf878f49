/**
 * Engine version facts the docker store must respect, and the hazards `plugctl version` reports.
 * dockerd before 25.0.4 panics, and the whole daemon exits, when a plugin reference with a digest
 * reaches /plugins/privileges, /plugins/pull or /plugins/{name}/upgrade (moby#47299, backported to
 * 25.0 in moby#47323). Nothing may send one there. Versions are compared by the semver library;
 * this module only brings the engine's version strings into semver's form.
 */
import coerce from 'semver/functions/coerce.js';
import compare from 'semver/functions/compare.js';
import parse from 'semver/functions/parse.js';
import type { SemVer } from 'semver';

/** The first engine release that handles digest references in the plugin endpoints. */
export const DIGEST_SAFE_ENGINE_VERSION = '25.0.4';

/** The first engine release that validates every element of a plugin's privilege grants. */
export const PRIVILEGE_CHECK_ENGINE_VERSION = '29.3.1';

/** A parsed engine version: numeric release plus whether it carries a pre-release suffix. */
export interface EngineVersion {
  major: number;
  minor: number;
  patch: number;
  /** true for `-rc1`, `-beta.2` and the like, which come before the release they name */
  prerelease: boolean;
}

/**
 * The engine's version as semver, or undefined. Engines write `20.10.24+dfsg1` (build metadata,
 * which may hold characters semver refuses, so it is dropped), `25.0` (two parts), `17.06.2-ce`
 * (the old editions are releases, not pre-releases, and have leading zeros, which semver's loose
 * mode reads) and `dev` or `master-dockerproject-...` (not versions at all).
 */
function toSemVer(version: string): SemVer | undefined {
  const release = version
    .trim()
    .replace(/\+.*$/, '')
    .replace(/-(ce|ee)(\.[0-9A-Za-z.-]*)?$/, '');
  const twoParts = /^v?\d+\.\d+$/.test(release) ? coerce(release) : null;
  return twoParts ?? parse(release, { loose: true }) ?? undefined;
}

/**
 * Parses `20.10.24+dfsg1`, `25.0.4`, `26.1.0-rc.1`, `17.06.2-ce` (old `-ce`/`-ee` editions are
 * releases, not pre-releases; `+...` is build metadata). Returns undefined for anything else
 * (`dev`, `master-dockerproject-...`).
 */
export function parseEngineVersion(version: string): EngineVersion | undefined {
  const parsed = toSemVer(version);
  if (parsed === undefined) return undefined;
  return {
    major: parsed.major,
    minor: parsed.minor,
    patch: parsed.patch,
    prerelease: parsed.prerelease.length > 0,
  };
}

/**
 * Orders two engine versions: negative when `a` is older than `b`, 0 when equal, positive when newer.
 * A pre-release sorts before its release. An unparseable version sorts before every parseable one,
 * so a daemon of unknown vintage is treated as the oldest, which is the safe side for every guard.
 */
export function compareEngineVersions(a: string, b: string): number {
  const pa = toSemVer(a);
  const pb = toSemVer(b);
  if (pa === undefined || pb === undefined) return (pa === undefined ? 0 : 1) - (pb === undefined ? 0 : 1);
  return compare(pa, pb);
}

/** True when the engine can be sent a plugin reference with a digest without crashing. */
export function supportsDigestReferences(engineVersion: string): boolean {
  return compareEngineVersions(engineVersion, DIGEST_SAFE_ENGINE_VERSION) >= 0;
}

/** A known defect of engines before `fixedIn` that matters to plugin management. */
export interface EngineHazard {
  /** stable identifier, e.g. `digest-references` */
  id: string;
  /** the first engine release without it */
  fixedIn: string;
  /** what goes wrong, and what plugctl does about it */
  summary: string;
}

const HAZARDS: readonly EngineHazard[] = [
  {
    id: 'digest-references',
    fixedIn: DIGEST_SAFE_ENGINE_VERSION,
    summary:
      'a plugin reference with a digest crashes the daemon (moby#47299); plugctl never sends one and pulls pinned plugins by tag, verifying the content',
  },
  {
    id: 'privilege-validation',
    fixedIn: PRIVILEGE_CHECK_ENGINE_VERSION,
    summary:
      'privilege grants are validated without their first element (CVE-2026-33997); plugctl compares every grant itself before it installs or upgrades',
  },
];

/** The hazards of an engine version (all of them for a version that cannot be parsed: the safe side). */
export function engineHazards(engineVersion: string): EngineHazard[] {
  return HAZARDS.filter((hazard) => compareEngineVersions(engineVersion, hazard.fixedIn) < 0);
}
