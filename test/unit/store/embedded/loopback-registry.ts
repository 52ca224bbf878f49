/**
 * A real docker-registry (Debian's distribution 2.8) on 127.0.0.1 for the embedded store's
 * integration test and benchmarks, on ports 5200-5299 (the registry client's tests use 5100-5199),
 * anonymous, with filesystem storage in a temp directory. The registry harness starts and stops it.
 */
import {
  registrySkipReason,
  startRegistry,
  type RunningRegistry,
} from '../../../integration/registry-harness.ts';

/** A running registry. */
export type LoopbackRegistry = RunningRegistry;

/**
 * Why a registry cannot be started here, or undefined; throws in strict mode (see
 * registrySkipReason). New suites use `describeWith(name, { needs: REGISTRY }, fn)`.
 */
export function loopbackRegistrySkipReason(): Promise<string | undefined> {
  return registrySkipReason();
}

/** Starts an anonymous registry on `port` (5200-5299) and waits until /v2/ answers. */
export function startLoopbackRegistry(port: number): Promise<LoopbackRegistry> {
  if (port < 5200 || port > 5299)
    throw new Error(`embedded-store registries use ports 5200-5299, not ${port}`);
  return startRegistry(port);
}
