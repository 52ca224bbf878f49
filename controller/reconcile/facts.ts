/**
 * Fetches the remote facts plan() needs, and only those: the required privileges of remotes that
 * are about to be installed or upgraded. Everything already installed from its declared remote
 * costs no request, so a converged host makes no registry traffic.
 */
import type { PluginPrivilege } from '../spec/types.ts';
import type { InstalledPlugin, Store } from '../store/store.ts';
import type { DesiredPlugin } from './desired.ts';
import { sameRemote, type RemoteFacts } from './plan.ts';

/** The remotes whose privileges must be known before planning. */
export function remotesToResolve(
  desired: readonly DesiredPlugin[],
  actual: readonly InstalledPlugin[],
): string[] {
  const installed = new Map(actual.map((p) => [p.name, p]));
  const remotes = new Set<string>();
  for (const d of desired) {
    if (d.suspend) continue;
    const plugin = installed.get(d.name);
    if (plugin === undefined || (d.upgradePolicy !== 'Never' && !sameRemote(plugin.reference, d.remote))) {
      remotes.add(d.remote);
    }
  }
  return [...remotes];
}

/** Asks the store for each remote's privileges, `concurrency` at a time; failures become Error values. */
export async function gatherFacts(
  store: Store,
  desired: readonly DesiredPlugin[],
  actual: readonly InstalledPlugin[],
  concurrency = 4,
): Promise<RemoteFacts> {
  const remotes = remotesToResolve(desired, actual);
  const privileges = new Map<string, readonly PluginPrivilege[] | Error>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < remotes.length) {
      const remote = remotes[next++]!;
      try {
        privileges.set(remote, await store.privileges(remote));
      } catch (error) {
        privileges.set(remote, error instanceof Error ? error : new Error(String(error)));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, remotes.length) }, worker));
  return { privileges };
}
