/**
 * The embedded store's runtime for suites and benchmarks whose stores never enable a plugin
 * (builders, pull and GC benchmarks, crash trials of pull/set/upgrade/remove): nothing runs, and a
 * start fails loudly instead of silently doing nothing.
 */
import type { PluginRuntime } from '../controller/store/embedded/runtime.ts';

/** Runs nothing; start() rejects, every plugin reads as stopped. */
export const idleRuntime: PluginRuntime = {
  start: () => Promise.reject(new Error('this runtime runs no plugin (a store that never enables anything)')),
  stop: () => Promise.resolve(),
  isRunning: () => Promise.resolve(false),
  onExit: () => undefined,
  socketDir: (id) => `/nonexistent/${id}`,
  close: () => Promise.resolve(),
};
