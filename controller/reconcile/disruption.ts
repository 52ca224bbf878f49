/**
 * Bounded disruption (spec.rollout.maxUnavailable): before the controller takes a working plugin down
 * to change it (disabled for an upgrade, a settings change or a rebuild), it asks a gate for
 * permission, and it gives the permission back once the plugin is Ready again or the change failed.
 * The gate is injected: Kubernetes mode coordinates it across nodes through the API server
 * (kube/rollout-gate.ts); file mode has none, and every change proceeds at once.
 *
 * What counts as a disruption is decided here, purely: a first install, the enable of a plugin that is
 * not running, a disable the document asks for (enabled: false) and the removal of a plugin that is
 * no longer declared are not (the first two take nothing away, the last two are what was asked for).
 */
import type { DockerPluginSpec } from '../api/types.ts';
import type { InstalledPlugin } from '../store/store.ts';
import type { PluginPlan } from './plan.ts';
import type { Phase } from './status.ts';

/** What a gate answers: go ahead (holding a permission until released), or wait and ask again. */
export type DisruptionDecision =
  | { granted: true }
  | {
      granted: false;
      /** why, for the plugin's status (e.g. which nodes hold the rollout's slots) */
      message: string;
      /** when to ask again, ms */
      retryMs: number;
    };

/** Permission to disrupt a DockerPlugin's plugin on this host, one permission per key at most. */
export interface DisruptionGate {
  /**
   * Asks to disrupt the plugin of `key`, declared by `spec`; granted again at once while this host
   * already holds the permission. Must not throw: a gate that cannot decide answers "wait".
   */
  acquire(key: string, spec: DockerPluginSpec): Promise<DisruptionDecision>;
  /** Gives the permission of `key` back; does nothing (and no I/O) when it is not held. */
  release(key: string): Promise<void>;
}

/**
 * True when carrying out `plan` takes a working plugin down to change it: the plugin is declared
 * enabled, is installed and enabled now, and the plan disables or removes it.
 */
export function disrupts(plan: PluginPlan, installed: InstalledPlugin | undefined): boolean {
  if (plan.desired === undefined || !plan.desired.enabled) return false;
  if (installed === undefined || !installed.enabled) return false;
  return plan.actions.some((a) => a.type === 'disable' || a.type === 'remove');
}

/**
 * True when a held permission can be given back after a reconcile: the plugin is Ready (back in
 * service), the reconcile failed (nothing more is done until it is retried, which asks again), or
 * nothing is being done for it (suspended, no longer declared or selected). Only a plugin still on its
 * way back (enabled but not answering yet) keeps it. `phase` is undefined when the key's status was
 * dropped (it is no longer declared here).
 */
export function mayRelease(phase: Phase | undefined, failed: boolean): boolean {
  return failed || phase !== 'reconciling';
}
