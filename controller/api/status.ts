/**
 * The observed state plugctl reports for each declared plugin on a host, and where it goes. The same
 * types serve the status file of file mode (`<state-dir>/status.json`, read by `plugctl get`) and the
 * per-node status objects of Kubernetes mode. Conditions follow kstatus: Ready is True only when the
 * host matches the document; Reconciling while plugctl is still working on it (waits and retries
 * included); Stalled when a human must act.
 */
import type { FailureKind } from '../errors.ts';

/** The condition types plugctl sets on every plugin status. */
export type ConditionType = 'Ready' | 'Reconciling' | 'Stalled';

/** One kstatus condition. */
export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  /** CamelCase reason, or the stable error code that explains it */
  reason: string;
  message: string;
  /** RFC 3339; changes only when `status` changes */
  lastTransitionTime: string;
}

/** The observed state of one declared (or pruned) plugin on one host. */
export interface PluginStatus {
  /** the document's metadata.name */
  key: string;
  /** local plugin name */
  plugin: string;
  pluginID?: string;
  reference?: string;
  enabled?: boolean;
  /** hash of the document's spec this status was computed from */
  observedHash?: string;
  /** the actions of the last reconcile that changed something, e.g. `pull, set, enable` */
  lastAction?: string;
  lastError?: { code: string; kind: FailureKind; message: string };
  lastReconcileTime: string;
  conditions: Condition[];
}

/**
 * Where a controller publishes status: the status file in file mode, the API server in Kubernetes
 * mode. The controller keeps the statuses in memory and tells the sink whenever one changed in more
 * than its reconcile time; when and how to write (coalescing, retries) is the sink's business.
 */
export interface StatusSink {
  /** What an earlier run published, so condition transition times survive restarts. */
  load(): Promise<PluginStatus[]>;
  /** Every current status, after at least one of them changed. Must not block. */
  publish(statuses: ReadonlyMap<string, PluginStatus>): void;
  /** Writes what is pending and waits for it (at shutdown). */
  flush(): Promise<void>;
}
