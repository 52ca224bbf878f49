/**
 * Turns `-f PATH...` into the desired set of one apply set for this host: load and validate the
 * documents, report every error with its place, select by nodeSelector against the host's labels,
 * and say what is skipped and whether pruning is safe.
 */
import { loadDocuments, formatLoadError, type LoadedDocument } from '../api/load.ts';
import { selectHost, type HostLabels } from '../api/labels.ts';
import { formatSelector } from '../api/selector.ts';
import { toDesired, type DesiredPlugin } from '../reconcile/desired.ts';
import type { SkippedDocument } from '../reconcile/plan.ts';
import type { Output } from './context.ts';

/** The desired set, what is skipped here, and whether loading was clean (pruning is only safe when it was). */
export interface DesiredSet {
  desired: DesiredPlugin[];
  /** valid documents whose nodeSelector does not select this host */
  skipped: SkippedDocument[];
  /** documents that failed to load */
  errorCount: number;
  /** valid documents read, selected or not: an empty source prunes nothing */
  documentCount: number;
  /** the valid documents as written, selected or not (`get -o yaml` prints their spec) */
  loaded: LoadedDocument[];
}

/** Loads documents from `paths` (`-` is standard input), printing each error to stderr. */
export async function loadDesired(paths: string[], labels: HostLabels, io: Output): Promise<DesiredSet> {
  const loaded = await loadDocuments(paths, io.readStdin !== undefined ? { stdin: io.readStdin } : {});
  for (const error of loaded.errors) io.err(`error: ${formatLoadError(error)}\n`);
  const desired: DesiredPlugin[] = [];
  const skipped: SkippedDocument[] = [];
  for (const doc of loaded.documents) {
    const selector = doc.doc.spec.nodeSelector;
    const selection = selectHost(selector, labels);
    if (selection.selected) desired.push({ ...toDesired(doc), selectedBy: selection.by });
    else
      skipped.push({
        key: doc.doc.metadata.name,
        name: doc.localName,
        reason: `its nodeSelector ${formatSelector(selector)} does not match this host`,
        byOverride: selection.byOverride,
      });
  }
  return {
    desired,
    skipped,
    errorCount: loaded.errors.length,
    documentCount: loaded.documents.length,
    loaded: loaded.documents,
  };
}

/**
 * Whether a pass may prune, and if not, the warning that says why. Nothing is pruned by omission:
 * not while a document failed to load, and not from a source that holds no document at all.
 */
export function pruneDecision(
  set: DesiredSet,
  wanted: boolean,
  setName: string,
): { prune: boolean; warning?: string } {
  if (!wanted) return { prune: false };
  if (set.errorCount > 0) {
    return {
      prune: false,
      warning: `${set.errorCount} document error(s): pruning is skipped so their plugins are left alone`,
    };
  }
  if (set.documentCount === 0) {
    return {
      prune: false,
      warning:
        `no documents found: an empty source never removes plugins; ` +
        `to remove what apply set ${setName} installed, run: plugctl prune --set ${setName}`,
    };
  }
  return { prune: true };
}
