/**
 * Fetches the remote facts plan() needs, and only those: what the registry says about remotes that
 * are about to be installed or upgraded, or whose content is followed (TrackTag, digest pins).
 * Everything else already installed from its declared remote costs no request, so a converged host
 * makes no registry traffic unless it tracks tags (then one manifest HEAD each, thanks to caching).
 */
import type { RemoteInfo, RemoteInspector } from '../registry/inspect.ts';
import type { ContextInfo } from '../store/context.ts';
import type { InstalledPlugin } from '../store/store.ts';
import type { DesiredPlugin } from './desired.ts';
import { sameRemote, type RemoteFacts } from './plan.ts';

/** The remotes that must be looked up before planning. */
export function remotesToResolve(
  desired: readonly DesiredPlugin[],
  actual: readonly InstalledPlugin[],
): string[] {
  const installed = new Map(actual.map((p) => [p.name, p]));
  const remotes = new Set<string>();
  for (const d of desired) {
    if (d.suspend || d.build !== undefined) continue;
    const plugin = installed.get(d.name);
    const follows = d.upgradePolicy === 'TrackTag' || d.remote.includes('@');
    const differs = plugin !== undefined && !sameRemote(plugin.reference, d.remote);
    if (plugin === undefined || (d.upgradePolicy !== 'Never' && (differs || follows))) remotes.add(d.remote);
  }
  return [...remotes];
}

/**
 * True when plan() needs facts from outside (a registry lookup or a build context). A converged host's
 * usual case is false, and the caller then skips gatherFacts() and its promise round trip per key.
 */
export function needsFacts(desired: readonly DesiredPlugin[], actual: readonly InstalledPlugin[]): boolean {
  return (
    desired.some((d) => d.build !== undefined && !d.suspend) || remotesToResolve(desired, actual).length > 0
  );
}

/** Looks up each remote, `concurrency` at a time; failures become Error values in the facts. */
export async function gatherFacts(
  inspector: RemoteInspector,
  desired: readonly DesiredPlugin[],
  actual: readonly InstalledPlugin[],
  concurrency = 4,
): Promise<Omit<RemoteFacts, 'ready'>> {
  const wanted = remotesToResolve(desired, actual);
  const remotes = new Map<string, RemoteInfo | Error>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < wanted.length) {
      const remote = wanted[next++]!;
      try {
        remotes.set(remote, await inspector.inspect(remote));
      } catch (error) {
        remotes.set(remote, error instanceof Error ? error : new Error(String(error)));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, wanted.length) }, worker));
  return { remotes, builds: await inspectContexts(desired) };
}

/**
 * Reads the context of every built plugin that is not suspended: its digest says whether it must
 * be rebuilt, its config what it may do. A context that cannot be read becomes an Error value.
 */
async function inspectContexts(desired: readonly DesiredPlugin[]): Promise<Map<string, ContextInfo | Error>> {
  const builds = new Map<string, ContextInfo | Error>();
  const contexts = [
    ...new Set(desired.filter((d) => !d.suspend).flatMap((d) => (d.build ? [d.build.context] : []))),
  ];
  if (contexts.length === 0) return builds;
  // Loaded on first use: hosts without built plugins never load tar-stream for this.
  const { inspectContext } = await import('../store/context.ts');
  for (const context of contexts) {
    try {
      builds.set(context, await inspectContext(context));
    } catch (error) {
      builds.set(context, error instanceof Error ? error : new Error(String(error)));
    }
  }
  return builds;
}
