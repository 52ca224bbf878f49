/**
 * Apply sets: which source a plugin belongs to. A set has an identity (Kubernetes ApplySets, KEP-3659):
 * `--set NAME`, or else the canonical paths given with `-f` (real, absolute, sorted), so that
 * `apply -f /etc/plugctl/plugins.d` and `apply -f ./test.yaml` are different sets and one never
 * prunes what the other declared.
 */
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { STDIN_PATH } from '../api/load.ts';
import { SpecError } from '../errors.ts';

/** The prefix of set names derived from paths; `--set` names cannot contain `:`, so never collide. */
export const FILES_SET_PREFIX = 'files:';
const SET_NAME = /^[a-z0-9]([-a-z0-9._]{0,61}[a-z0-9])?$/;

/** Why `name` cannot be given with --set, or undefined. */
export function setNameProblem(name: string): string | undefined {
  if (name.startsWith(FILES_SET_PREFIX)) return undefined;
  return SET_NAME.test(name)
    ? undefined
    : `"${name}" is not a set name: use 1-63 lowercase letters, digits, '-', '.' or '_', starting and ending with a letter or digit`;
}

/**
 * The apply set of a command: `set` when given (a name, or a derived name as `plugctl get` shows it),
 * else derived from `paths`. Throws a SpecError (a usage error) for `-f -` without --set, and for an
 * invalid name.
 */
export async function applySetName(set: string | undefined, paths: readonly string[]): Promise<string> {
  if (set !== undefined) {
    const problem = setNameProblem(set);
    if (problem !== undefined) throw new SpecError('INVALID_SET_NAME', `--set: ${problem}`);
    return set;
  }
  if (paths.includes(STDIN_PATH)) {
    throw new SpecError(
      'INVALID_SET_NAME',
      'documents read from standard input (-f -) belong to no path: name their apply set with --set NAME',
    );
  }
  const canonical = await Promise.all(
    paths.map(async (p) => {
      const absolute = resolve(p);
      // A path that does not exist yet keeps its absolute form; loading reports it as missing.
      return realpath(absolute).catch(() => absolute);
    }),
  );
  return FILES_SET_PREFIX + [...new Set(canonical)].sort().join(',');
}
