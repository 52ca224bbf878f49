/**
 * What `apply`, `diff` and `get -f` share before they plan: a usage check of -f, the apply set, the
 * store, the host's labels, the documents selected for this host, and whether pruning is safe.
 */
import type { RemoteInspector } from '../registry/inspect.ts';
import type { Store } from '../store/store.ts';
import { applySetName } from './apply-set.ts';
import type { CommandContext } from './context.ts';
import { loadDesired, pruneDecision, type DesiredSet } from './documents.ts';

/** The message of a command given no -f (kubectl's words). */
export const MUST_SPECIFY_F =
  'error: must specify -f (files or directories of DockerPlugin documents, or - for standard input)\n';

/** Options every one-shot command takes. */
export interface OneShotOptions {
  filename?: string[];
  set?: string;
  /** false with --no-prune */
  prune?: boolean;
}

/** Everything a one-shot command plans with. */
export interface OneShot {
  set: string;
  store: Store;
  inspector: RemoteInspector;
  documents: DesiredSet;
  /** whether the pass may prune; a warning says why not when it was wanted */
  prune: { prune: boolean; warning?: string };
}

/** True when -f names nothing: a usage error, never an empty desired state. */
export function missingFilename(options: OneShotOptions): boolean {
  return options.filename === undefined || options.filename.length === 0;
}

/** Loads and selects the documents of `options.filename` for this host. */
export async function prepareOneShot(
  options: OneShotOptions & { filename: string[] },
  ctx: CommandContext,
  readOnly: boolean,
): Promise<OneShot> {
  const set = await applySetName(options.set, options.filename);
  const store = await ctx.openStore(readOnly ? { readOnly: true } : {});
  const labels = await ctx.hostLabels(store);
  const documents = await loadDesired(options.filename, labels, ctx.io);
  const prune = pruneDecision(documents, options.prune ?? true, set);
  return { set, store, inspector: await ctx.openInspector(), documents, prune };
}
