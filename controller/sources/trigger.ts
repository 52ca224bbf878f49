/**
 * Triggers tell the controller that something may have changed, never what to do about it: the
 * controller answers every signal with the same level-based reconcile. A trigger is started with a
 * target to signal and stopped at shutdown; sources of desired state are separate (DesiredSource).
 */
import type { PluginEvent } from '../store/store.ts';

/** What a trigger may signal. Each call only queues keys; none waits for a reconcile. */
export interface TriggerTarget {
  /** Re-read the host and look at every key again (`why` goes to the log). */
  resync(why: string): void;
  /** Something happened on the host to the plugin the event names (by ID). */
  pluginChanged(event: PluginEvent): void;
  /** Files of the build context at this absolute path changed. */
  contextChanged(context: string): void;
  /**
   * The absolute paths the documents selected for this host read besides themselves: the build
   * contexts they build from and the secret files of their settings (reported by contextChanged).
   */
  buildContexts(): ReadonlySet<string>;
  /**
   * A Secret of the agent's namespace (Kubernetes mode) appeared, changed or went: the keys whose
   * settings read it (valueFrom.secretKeyRef) are looked at again.
   */
  secretChanged(name: string): void;
}

/** A signal source the controller starts and stops. */
export interface Trigger {
  /** Starts signalling `target`. Must not throw; failures are retried or logged by the trigger. */
  start(target: TriggerTarget): void;
  /** The desired state changed (documents or host labels): re-read what to watch from the target. */
  desiredChanged?(): void;
  /** Stops; resolves when nothing will be signalled any more. */
  stop(): Promise<void>;
}
