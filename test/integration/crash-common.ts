/**
 * What the crash-safety test (crash-safety.test.ts) and its worker (crash-worker.ts) share: the
 * grants of the fixture plugins, the worker's command line and output protocol, the set journal,
 * a seeded PRNG, and a runtime that runs nothing. Small on purpose: the worker imports it, and the
 * worker's start-up time is paid once per trial.
 */
import type { PluginPrivilege } from '../../controller/api/types.ts';
export { idleRuntime } from '../idle-runtime.ts';

/** Every fixture plugin asks for host networking (as test/env's fixtures do) and nothing else. */
export const FIXTURE_PRIVILEGES: PluginPrivilege[] = [{ name: 'network', value: ['host'] }];

/** The env settings of the fixture plugins: name -> default value (the same in every version). */
export const FIXTURE_ENV_DEFAULTS: Readonly<Record<string, string>> = {
  GREETING: 'hello',
  DEBUG: '0',
  LEVEL: 'info',
};

/** The fixture's default args (the same in every version). */
export const FIXTURE_ARGS_DEFAULT: readonly string[] = ['--serve'];

/** Operations the worker performs; `enable` and `disable` need runc (see RuncPaths). */
export type CrashOp = 'pull' | 'upgrade' | 'set' | 'remove' | 'enable' | 'disable';

/** Paths the worker and the test share when plugins run under runc (short: socket paths <= 107 bytes). */
export interface RuncPaths {
  runcRoot: string;
  socketsRoot: string;
  runDir: string;
}

/**
 * The worker's environment: `CRASH_WAIT_GO=1` makes it load its modules, print `ready` and wait for
 * one line on stdin before it opens the store (the test starts the next worker while it still holds
 * the store); `CRASH_RUNC` (JSON RuncPaths) selects the runc runtime instead of one that runs nothing.
 */
export const ENV_WAIT_GO = 'CRASH_WAIT_GO';
export const ENV_RUNC = 'CRASH_RUNC';

/**
 * What a `set` is about to do, written atomically by the worker before it calls set: the durable
 * intent a reconciler would hold (the desired document), so that the value being set is known
 * after any crash.
 */
export interface SetJournal {
  name: string;
  /** the `KEY=value` arguments of the set */
  settings: string[];
  /** the env values and args before the set */
  before: { env: Record<string, string>; args: string[] };
}

/** A seeded PRNG (mulberry32): the test prints its seed so that a failing schedule can be replayed. */
export class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** uniform in [0, 1) */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** an integer in [min, max] */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** true with probability p */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** `length` pseudo-random bytes */
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    let i = 0;
    for (; i + 4 <= length; i += 4) out.writeUInt32LE(Math.floor(this.next() * 4294967296), i);
    for (; i < length; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}
