/**
 * The crash-safety test's own docker-registry on 127.0.0.1, on the first free port in 5400-5499
 * (so it never meets another suite's registry), started and stopped by the registry harness.
 */
import { createServer } from 'node:net';
import { startRegistry, type RunningRegistry } from './registry-harness.ts';

/** A running registry. */
export type CrashRegistry = RunningRegistry;

/** First port of the range this test keeps to. */
export const CRASH_PORT_MIN = 5400;
/** Last port of the range this test keeps to. */
export const CRASH_PORT_MAX = 5499;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Starts an anonymous registry on a free port of the range, trying a few when ports race. */
export async function startCrashRegistry(first = CRASH_PORT_MIN): Promise<CrashRegistry> {
  let lastError: unknown;
  const span = CRASH_PORT_MAX - CRASH_PORT_MIN + 1;
  for (let i = 0; i < 10; i++) {
    const port = CRASH_PORT_MIN + ((first - CRASH_PORT_MIN + i * 7) % span);
    if (!(await portFree(port))) continue;
    try {
      return await startRegistry(port);
    } catch (error) {
      lastError = error; // lost a race for the port: try another
    }
  }
  throw new Error('no free port for docker-registry in 5400-5499', { cause: lastError });
}
