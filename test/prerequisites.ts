/**
 * What the test suites need from the machine (Linux, root, dockerd, runc, docker-registry, gcc,
 * busybox-static, ...) and what happens when something is missing. Every suite that needs more
 * than Node goes through this one module, so that the rule is the same everywhere:
 *
 * - everything present: the suite runs;
 * - something missing, strict mode (PLUGCTL_TEST_STRICT=1, which `make test` and so CI set): the
 *   suite becomes one failing test whose message names what is missing and how to install it;
 * - something missing otherwise: the suite becomes one skipped test carrying the same text, and
 *   test/report/skips.ts lists every skip in one block at the end of the run.
 *
 * The checks look at the machine only (PATH, files, uid); they install nothing.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it } from 'node:test';

/** The environment variable that turns a missing prerequisite into a failure. */
export const STRICT_ENV = 'PLUGCTL_TEST_STRICT';

/** The API server test/env/kube-env.sh builds (KE_CACHE's default). */
const KUBE_APISERVER = '/var/cache/kube-env/kube-apiserver-1.20.2';

/** How the test environment's packages are installed (test/env/plugin-env.sh, registry-env.sh). */
const ENV_INSTALL = 'install it with `make env-install` as root';

/** Something a suite can need. */
export type Prerequisite =
  | 'linux'
  | 'root'
  | 'dockerd'
  | 'docker'
  | 'docker-registry'
  | 'htpasswd'
  | 'openssl'
  | 'runc'
  | 'gcc'
  | 'busybox'
  | 'curl'
  | 'systemd-analyze'
  | 'kube-apiserver'
  | 'zsh'
  | 'fish';

/** One missing prerequisite: what it is, why it counts as missing, and how to get it. */
export interface MissingPrerequisite {
  name: Prerequisite;
  /** e.g. `runc is not on PATH` */
  problem: string;
  /** e.g. `install it with \`make env-install\` as root (Debian package runc)` */
  remedy: string;
}

/** An executable named `name` on PATH, or undefined. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** An executable on PATH, from a Debian package that `make env-install` installs. */
function tool(
  name: Prerequisite,
  packageName: string,
  env: NodeJS.ProcessEnv,
): MissingPrerequisite | undefined {
  return onPath(name, env) === undefined
    ? { name, problem: `${name} is not on PATH`, remedy: `${ENV_INSTALL} (Debian package ${packageName})` }
    : undefined;
}

function check(need: Prerequisite, env: NodeJS.ProcessEnv): MissingPrerequisite | undefined {
  switch (need) {
    case 'linux':
      return process.platform === 'linux'
        ? undefined
        : {
            name: need,
            problem: `this is ${process.platform}, not Linux`,
            remedy: 'run the tests on Linux',
          };
    case 'root': {
      const uid = process.getuid?.();
      return uid === 0
        ? undefined
        : {
            name: need,
            problem: `not running as root (uid ${uid ?? 'unknown'}): dockerd, runc and /run/docker/plugins need it`,
            remedy: 'run the tests as root (e.g. `sudo make test`)',
          };
    }
    case 'dockerd':
    case 'docker':
      return tool(need, 'docker.io', env);
    case 'docker-registry':
      return tool(need, 'docker-registry', env);
    case 'htpasswd':
      return tool(need, 'apache2-utils', env);
    case 'openssl':
      return tool(need, 'openssl', env);
    case 'runc':
      return tool(need, 'runc', env);
    case 'gcc':
      return tool(need, 'gcc and libc6-dev', env);
    case 'curl':
      return tool(need, 'curl', env);
    case 'systemd-analyze':
      return tool(need, 'systemd', env);
    case 'zsh':
    case 'fish':
      return tool(need, need, env);
    case 'kube-apiserver':
      // built once from Debian's source package by test/env/kube-env.sh and cached outside the tree
      try {
        accessSync(KUBE_APISERVER, constants.X_OK);
        return undefined;
      } catch {
        return {
          name: need,
          problem: `${KUBE_APISERVER} is missing`,
          remedy: 'build it with `make kube-env-install` as root (about 10 minutes, once)',
        };
      }
    case 'busybox':
      // fixtures copy the static binary into plugin rootfs, so the file itself must be there
      try {
        accessSync('/bin/busybox', constants.X_OK);
        return undefined;
      } catch {
        return {
          name: need,
          problem: '/bin/busybox is missing',
          remedy: `${ENV_INSTALL} (Debian package busybox-static)`,
        };
      }
  }
}

/** The prerequisites of the environment test/env/plugin-env.sh starts (dockerd, registry, fixtures). */
export const PLUGIN_ENV: readonly Prerequisite[] = [
  'linux',
  'root',
  'dockerd',
  'docker',
  'docker-registry',
  'runc',
  'gcc',
  'busybox',
  'curl',
];

/** The prerequisites of a docker-registry started by test/integration/registry-harness.ts. */
export const REGISTRY: readonly Prerequisite[] = ['linux', 'docker-registry', 'htpasswd', 'openssl'];

/** The prerequisites of a kube-apiserver and etcd started by test/kube/harness.ts. */
export const KUBE: readonly Prerequisite[] = ['linux', 'root', 'kube-apiserver', 'curl', 'openssl'];

/** The prerequisites of plugins run with the real RuncRuntime (plugind is built with gcc). */
export const RUNC: readonly Prerequisite[] = ['linux', 'root', 'runc', 'gcc', 'busybox'];

/** Each of `needs` that this machine lacks, in order, without duplicates. */
export function missingPrerequisites(
  needs: readonly Prerequisite[],
  env: NodeJS.ProcessEnv = process.env,
): MissingPrerequisite[] {
  const out: MissingPrerequisite[] = [];
  for (const need of new Set(needs)) {
    const missing = check(need, env);
    if (missing !== undefined) out.push(missing);
  }
  return out;
}

/** Whether a missing prerequisite fails the run (PLUGCTL_TEST_STRICT=1) instead of skipping. */
export function strictMode(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[STRICT_ENV] === '1';
}

/** The text a skipped or failing placeholder carries: what is missing and how to get it. */
export function describeMissing(missing: readonly MissingPrerequisite[]): string {
  return `missing ${missing.map((m) => `${m.name} (${m.problem}; ${m.remedy})`).join(', ')}`;
}

/** Thrown in strict mode by the legacy skip-reason helpers: a prerequisite is missing. */
export class PrerequisiteError extends Error {
  readonly missing: readonly MissingPrerequisite[];

  constructor(what: string, missing: readonly MissingPrerequisite[]) {
    super(
      `${what} cannot run: ${describeMissing(missing)}. ` +
        `${STRICT_ENV}=1 (set by \`make test\`, as on CI) makes this a failure instead of a skip.`,
    );
    this.name = 'PrerequisiteError';
    this.missing = missing;
  }
}

/**
 * Checks `needs` for `what` (a suite, or a part of one) where tests are being registered. All
 * present: returns undefined and registers nothing. Something missing: registers one test named
 * `what` in the enclosing suite (or at the top level) that fails in strict mode with the
 * PrerequisiteError's message, or is skipped with the same text otherwise, and returns that text;
 * the caller then leaves `what` out.
 */
export function gate(what: string, needs: readonly Prerequisite[]): string | undefined {
  const missing = missingPrerequisites(needs);
  if (missing.length === 0) return undefined;
  const error = new PrerequisiteError(what, missing);
  if (strictMode()) {
    it(what, () => {
      throw error;
    });
  } else {
    it(what, { skip: `${describeMissing(missing)}` }, () => undefined);
  }
  return error.message;
}

/**
 * `describe(name, options, fn)` when `options.needs` are all present; otherwise the one failing or
 * skipped test of gate(). The other options (e.g. `concurrency`) go to describe.
 */
export function describeWith(
  name: string,
  options: { needs: readonly Prerequisite[]; concurrency?: boolean | number },
  fn: () => void,
): void {
  const { needs, ...rest } = options;
  if (gate(name, needs) === undefined) describe(name, rest, fn);
}

/**
 * For code that decides with a skip reason (`describe(name, { skip })`): undefined when `needs`
 * are present; otherwise the reason to skip, or, in strict mode, a thrown PrerequisiteError (the
 * test file then fails with it). New suites use describeWith() or gate().
 */
export function skipReason(what: string, needs: readonly Prerequisite[]): string | undefined {
  const missing = missingPrerequisites(needs);
  if (missing.length === 0) return undefined;
  if (strictMode()) throw new PrerequisiteError(what, missing);
  return describeMissing(missing);
}
