/**
 * The DockerPlugin resource as users write it. The JSON Schema in schema.ts is the single source of
 * truth for validation and the CRD; these types mirror it for the compiler.
 */

/** API group/version every document must carry. */
export const API_VERSION = 'plugctl.dev/v1alpha1';
/** Kind every document must carry. */
export const KIND = 'DockerPlugin';

import type { PluginPrivilege } from '../plugin/privileges.ts';
import type { DockerPluginStatus } from './status.ts';

/** One privilege: the grant a document consents to (the plugin model's type). */
export type { PluginPrivilege };

/** A Kubernetes Secret's key, in the agent's own namespace (Kubernetes mode only). */
export interface SecretKeyRef {
  name: string;
  key: string;
}

/**
 * Where a secret env value comes from: exactly one of a file on the host (file mode) or a key of a
 * Secret (Kubernetes mode). The value itself never appears in a document, log, status or inventory.
 */
export type SecretSource =
  { file: string; secretKeyRef?: never } | { secretKeyRef: SecretKeyRef; file?: never };

/** An env value given by reference instead of inline. */
export interface EnvValueFrom {
  valueFrom: SecretSource;
}

/** One declared env value: a literal string, or a reference to a secret. */
export type EnvValue = string | EnvValueFrom;

/** Settable values. Maps are compared as maps; args as an ordered list. */
export interface PluginSettings {
  env?: Record<string, EnvValue>;
  args?: string[];
  /** mount name -> host source */
  mounts?: Record<string, string>;
  /** device name -> host path */
  devices?: Record<string, string>;
}

/** How an installed plugin follows its declared remote. */
export type UpgradePolicy = 'OnSpecChange' | 'TrackTag' | 'Never';

/** What to do when a change needs a plugin that is in use to be disabled. */
export type InUsePolicy = 'Wait' | 'Force';

/** Kubernetes-style label selector (matchLabels and matchExpressions). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}

/** A plugin built on the host from a context, instead of pulled (`docker plugin create`). */
export interface PluginBuild {
  /** directory or tar file holding config.json and rootfs/, relative to the declaring file */
  context: string;
}

/** Desired state of one managed plugin. */
export interface DockerPluginSpec {
  /** exactly one of remote and build is present */
  remote?: string;
  build?: PluginBuild;
  alias?: string;
  enabled?: boolean;
  privileges?: PluginPrivilege[];
  grantAllPrivileges?: boolean;
  settings?: PluginSettings;
  upgrade?: { policy?: UpgradePolicy };
  inUse?: InUsePolicy;
  enableTimeoutSeconds?: number;
  nodeSelector?: LabelSelector;
  dependsOn?: string[];
  suspend?: boolean;
  rollout?: RolloutSpec;
  pullSecretName?: string;
  healthCheck?: HealthCheckSpec;
}

/**
 * How an enabled plugin is checked: Plugin.Activate on its socket every `periodSeconds`, each call
 * allowed `timeoutSeconds`; `failureThreshold` failures in a row make it Unresponsive (restarted).
 */
export interface HealthCheckSpec {
  enabled?: boolean;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}

/**
 * Kubernetes mode: how many selected nodes may have the plugin disrupted at once, as a number of nodes
 * (at least 1) or a percentage string such as "25%" (DaemonSet semantics).
 */
export interface RolloutSpec {
  maxUnavailable?: number | string;
}

/**
 * A spec with every schema default applied and every optional collection present (empty), so consumers
 * never branch on absence. `alias` stays as declared: its default depends on reference parsing and is
 * resolved once by the loader (LoadedDocument.localName).
 */
export interface ResolvedSpec {
  remote?: string;
  build?: PluginBuild;
  alias?: string;
  enabled: boolean;
  privileges: PluginPrivilege[];
  grantAllPrivileges: boolean;
  settings: Required<PluginSettings>;
  upgrade: { policy: UpgradePolicy };
  inUse: InUsePolicy;
  enableTimeoutSeconds: number;
  nodeSelector: Required<LabelSelector>;
  dependsOn: string[];
  suspend: boolean;
  rollout: { maxUnavailable: number | string };
  pullSecretName?: string;
  healthCheck: Required<HealthCheckSpec>;
}

/**
 * Object metadata. plugctl reads name, labels, annotations and generation; the other fields are set by
 * the Kubernetes API server and are accepted so that `kubectl get -o yaml` output loads as a file.
 */
export interface ObjectMeta {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Always empty: DockerPlugin is cluster-scoped. */
  namespace?: '';
  generateName?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string | null;
  deletionTimestamp?: string | null;
  deletionGracePeriodSeconds?: number;
  selfLink?: string;
  finalizers?: string[];
  ownerReferences?: Record<string, unknown>[];
  managedFields?: Record<string, unknown>[];
}

/** A whole DockerPlugin document. */
export interface DockerPlugin {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: DockerPluginSpec;
  /** the fleet summary (Kubernetes mode); ignored on input */
  status?: DockerPluginStatus;
}

/** Where a document came from, for error messages: `file:line:column`. */
export interface Origin {
  file: string;
  line: number;
  column: number;
}

/** Formats an origin as `file:line:column`. */
export function formatOrigin(origin: Origin): string {
  return `${origin.file}:${origin.line}:${origin.column}`;
}
