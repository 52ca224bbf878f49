/**
 * Engine version facts the docker store must respect. dockerd before 25.0.4 panics, and the whole
 * daemon exits, when a plugin reference with a digest reaches /plugins/privileges, /plugins/pull or
 * /plugins/{name}/upgrade (moby#47299, backported to 25.0 in moby#47323). Nothing may send one there.
 */

/** The first engine release that handles digest references in the plugin endpoints. */
export const DIGEST_SAFE_ENGINE_VERSION = '25.0.4';

/** A parsed engine version: numeric release plus whether it carries a pre-release suffix. */
export interface EngineVersion {
  major: number;
  minor: number;
  patch: number;
  /** true for `-rc1`, `-beta.2` and the like, which come before the release they name */
  prerelease: boolean;
}

/**
 * Parses `20.10.24+dfsg1`, `25.0.4`, `26.1.0-rc.1`, `17.06.2-ce` (old `-ce`/`-ee` editions are
 * releases, not pre-releases; `+...` is build metadata). Returns undefined for anything else
 * (`dev`, `master-dockerproject-...`).
 */
export function parseEngineVersion(version: string): EngineVersion | undefined {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.~-]+)?$/.exec(
    version.trim(),
  );
  if (match === null) return undefined;
  const suffix = match[4];
  return {
    major: Number(match[1]),
    minor: Number(match[2]),
    patch: Number(match[3] ?? 0),
    prerelease: suffix !== undefined && !/^(ce|ee)(\.|$)/.test(suffix),
  };
}

/**
 * Orders two engine versions: negative when `a` is older than `b`, 0 when equal, positive when newer.
 * A pre-release sorts before its release. An unparseable version sorts before every parseable one,
 * so a daemon of unknown vintage is treated as the oldest, which is the safe side for every guard.
 */
export function compareEngineVersions(a: string, b: string): number {
  const pa = parseEngineVersion(a);
  const pb = parseEngineVersion(b);
  if (pa === undefined || pb === undefined) return (pa === undefined ? 0 : 1) - (pb === undefined ? 0 : 1);
  return (
    pa.major - pb.major ||
    pa.minor - pb.minor ||
    pa.patch - pb.patch ||
    (pa.prerelease === pb.prerelease ? 0 : pa.prerelease ? -1 : 1)
  );
}

/** True when the engine can be sent a plugin reference with a digest without crashing. */
export function supportsDigestReferences(engineVersion: string): boolean {
  return compareEngineVersions(engineVersion, DIGEST_SAFE_ENGINE_VERSION) >= 0;
}
