/**
 * What the controller needs from a source of desired state (files or Kubernetes): a consistent
 * snapshot and notification of which keys changed. Sources never decide anything.
 */
import type { LoadedDocument, LoadError } from '../api/load.ts';

/** A consistent view of the declared documents. */
export interface DesiredSnapshot {
  /** valid documents by key (metadata.name) */
  documents: ReadonlyMap<string, LoadedDocument>;
  /** documents that could not be loaded; while any exist, nothing is pruned */
  errors: readonly LoadError[];
  /** true once the initial full listing has been read: never prune before */
  synced: boolean;
}

/** A source of DockerPlugin documents. */
export interface DesiredSource {
  /** Starts watching; resolves once the initial listing is complete (snapshot().synced). */
  start(): Promise<void>;
  snapshot(): DesiredSnapshot;
  /** Calls `listener` with the keys whose document appeared, changed or disappeared. */
  onChange(listener: (keys: ReadonlySet<string>) => void): () => void;
  close(): Promise<void>;
}
