/**
 * Turns `-f PATH...` into the desired set for this host: load and validate the documents, report
 * every error with its place, and keep only the documents whose nodeSelector matches this host.
 */
import { loadDocuments, formatLoadError } from '../api/load.ts';
import { hostLabels, matchesSelector } from '../api/selector.ts';
import { toDesired, type DesiredPlugin } from '../reconcile/desired.ts';
import type { Output } from './context.ts';

/** The desired set, and whether loading was clean (pruning is only safe when it was). */
export interface DesiredSet {
  desired: DesiredPlugin[];
  errorCount: number;
}

/** Loads documents from `paths`, printing each error to stderr. */
export async function loadDesired(
  paths: string[],
  nodeLabels: string | undefined,
  io: Output,
): Promise<DesiredSet> {
  const labels = hostLabels(nodeLabels);
  const loaded = await loadDocuments(paths);
  for (const error of loaded.errors) io.err(`error: ${formatLoadError(error)}\n`);
  const desired = loaded.documents
    .filter((d) => matchesSelector(d.doc.spec.nodeSelector, labels))
    .map((d) => toDesired(d));
  return { desired, errorCount: loaded.errors.length };
}
