/**
 * What plugctl reports, as types and, for the cluster, as the JSON Schema the CRDs carry:
 * - each host's per-plugin status (`PluginStatus`), kept by its controller and published through a
 *   `StatusSink`: the status file in file mode, the node's DockerPluginNode in Kubernetes mode;
 * - the fleet summary in a DockerPlugin's status (kept by the elected agent) and the per-node
 *   DockerPluginNode (written only by that node's agent).
 * Conditions follow kstatus: Ready is True only when the host matches the document; Reconciling while
 * plugctl is still working on it (waits and retries included); Stalled when a human must act. Like
 * schema.ts, every schema here stays in the subset that is both JSON Schema (ajv) and a Kubernetes
 * structural schema; crd-gen.ts renders them.
 *
 * Status nodes do not set `additionalProperties: false`: a file holding `kubectl get -o yaml` output of
 * a newer plugctl must still load, and the API server prunes unknown status fields on its own.
 */
import type { FailureKind } from '../errors.ts';
import { CONDITION_REASON, CONDITION_TYPE, DNS_LABEL, READY_RATIO } from './patterns.ts';

/** Kind of the per-node status object. */
export const NODE_KIND = 'DockerPluginNode';

/**
 * Ready reason of a DockerPluginNode entry for a DockerPlugin being deleted when nothing plugctl
 * installed for it is left on the node: that node no longer holds the DockerPlugin's finalizer.
 */
export const REMOVED_REASON = 'Removed';

/** The three kstatus condition types plugctl maintains. */
export type ConditionType = 'Ready' | 'Reconciling' | 'Stalled';

/** One kstatus condition as a host's controller records it (status file and per-node status). */
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
  /** the document's metadata.labels, so `plugctl get -l` selects without the documents at hand */
  labels?: Record<string, string>;
  /** env name -> salted hash of each declared secret (`hmac-sha256:…`); never the secret itself */
  secrets?: Record<string, string>;
  /**
   * where the content came from when a registry mirror served it, and what it was verified against,
   * e.g. `mirror 127.0.0.1:5001 (verified against the pinned digest sha256:…)`
   */
  source?: string;
  /** metadata.generation of the document this status was computed from (cluster documents only) */
  observedGeneration?: number;
  /** content digest plugctl installed (manifest digest, or a build context's), when it installed it */
  digest?: string;
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

/** One kstatus condition, the shape of Kubernetes' metav1.Condition. */
export interface StatusCondition {
  /** CamelCase type; plugctl writes Ready, Reconciling and Stalled */
  type: string;
  status: 'True' | 'False' | 'Unknown';
  /** CamelCase machine-readable reason */
  reason: string;
  /** human explanation; left out when there is nothing to say */
  message?: string;
  /** RFC 3339 time the status last changed */
  lastTransitionTime: string;
  /** metadata.generation the condition was computed for */
  observedGeneration?: number;
}

/** Node counts of a DockerPlugin's fleet summary. */
export interface NodeCounts {
  /** nodes whose labels the nodeSelector selects */
  selected: number;
  /** selected nodes where the plugin is Ready at the current generation */
  ready: number;
  /** selected nodes that have observed the current generation */
  updated: number;
  /** selected nodes where the plugin is disrupted (disabled for a change) or failing */
  unavailable: number;
}

/** status of a DockerPlugin: the fleet summary, kept by the elected agent. */
export interface DockerPluginStatus {
  observedGeneration?: number;
  nodes?: NodeCounts;
  /** "ready/selected", e.g. "3/3": what `kubectl get` shows in the READY column */
  ready?: string;
  conditions?: StatusCondition[];
}

/** One declared plugin as a node's agent observed it. */
export interface NodePluginStatus {
  /** metadata.name of the DockerPlugin (the list's key) */
  name: string;
  /** ID of the installed plugin on the node */
  pluginID?: string;
  /** reference the installed plugin was pulled from */
  reference?: string;
  /** content digest of the installed plugin (manifest digest, or the build context's) */
  digest?: string;
  enabled?: boolean;
  /** generation of the DockerPlugin this entry was computed for */
  observedGeneration?: number;
  conditions?: StatusCondition[];
  /** actions of the last reconcile that changed something, e.g. `pull, set, enable` */
  lastAction?: string;
  /** env name -> salted hash of each declared secret; never the secret itself */
  secrets?: Record<string, string>;
  /** where the content came from when a registry mirror served it, and what it was verified against */
  source?: string;
}

/** status of a DockerPluginNode. */
export interface DockerPluginNodeStatus {
  /** DockerPlugins that select this node */
  declared?: number;
  /** of those, how many are Ready at their current generation */
  ready?: number;
  plugins?: NodePluginStatus[];
}

/** One node's report, named after the node. */
export interface DockerPluginNode {
  apiVersion: 'plugctl.dev/v1alpha1';
  kind: typeof NODE_KIND;
  metadata: { name: string; [field: string]: unknown };
  status?: DockerPluginNodeStatus;
}

const generation = (description: string) => ({ type: 'integer', description, minimum: 0 }) as const;

const count = (description: string) => ({ type: 'integer', description, minimum: 0 }) as const;

/** A list of conditions, merged by type (server-side apply keeps other managers' conditions). */
export const conditionsSchema = {
  type: 'array',
  description:
    'kstatus conditions: Ready (converged at the current generation), Reconciling (work in progress, including waits and retries) and Stalled (a human must act).',
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
  items: {
    type: 'object',
    description: 'One condition, with the fields of Kubernetes metav1.Condition.',
    // message may be empty, and server-side apply turns an empty string into null: so it is optional
    // and nullable here, and writers leave it out when there is nothing to say
    required: ['type', 'status', 'reason', 'lastTransitionTime'],
    properties: {
      type: {
        type: 'string',
        description: 'Condition type: Ready, Reconciling or Stalled.',
        maxLength: 316,
        pattern: CONDITION_TYPE.pattern,
      },
      status: {
        type: 'string',
        description: 'True, False or Unknown.',
        enum: ['True', 'False', 'Unknown'],
      },
      reason: {
        type: 'string',
        description:
          'CamelCase reason for the last transition, e.g. Converged, Upgrading, PrivilegeMismatch.',
        minLength: 1,
        maxLength: 1024,
        pattern: CONDITION_REASON.pattern,
      },
      message: {
        type: 'string',
        nullable: true,
        description: 'Human-readable details; absent when there is nothing to say.',
        maxLength: 32768,
      },
      lastTransitionTime: {
        type: 'string',
        description: 'RFC 3339 time the condition last changed status.',
        format: 'date-time',
      },
      observedGeneration: generation(
        'metadata.generation of the DockerPlugin the condition was computed for.',
      ),
    },
  },
} as const;

/** status of a DockerPlugin. */
export const dockerPluginStatusSchema = {
  type: 'object',
  description:
    "Fleet summary, kept in Kubernetes mode by the elected plugctl agent from every node's DockerPluginNode. Agents never rely on it.",
  properties: {
    observedGeneration: generation('metadata.generation the summary was computed for.'),
    nodes: {
      type: 'object',
      description: 'Node counts at observedGeneration.',
      properties: {
        selected: count('Nodes whose labels spec.nodeSelector selects.'),
        ready: count('Selected nodes where the plugin is Ready at the current generation.'),
        updated: count('Selected nodes that have applied the current generation.'),
        unavailable: count(
          'Selected nodes where the plugin is disrupted (disabled for a change) or failing.',
        ),
      },
    },
    ready: {
      type: 'string',
      description: 'Ready nodes out of selected nodes, e.g. "3/3" (the READY column of `kubectl get`).',
      pattern: READY_RATIO.pattern,
    },
    conditions: conditionsSchema,
  },
} as const;

/** One entry of a DockerPluginNode's plugin list. */
const nodePluginSchema = {
  type: 'object',
  description: "One DockerPlugin selecting this node, as the node's agent last observed it.",
  required: ['name'],
  properties: {
    name: {
      type: 'string',
      description: 'metadata.name of the DockerPlugin.',
      maxLength: 63,
      pattern: DNS_LABEL.pattern,
    },
    pluginID: { type: 'string', description: 'ID of the installed plugin on this node.' },
    reference: { type: 'string', description: 'Normalised reference the installed plugin came from.' },
    digest: {
      type: 'string',
      description: "Digest of the installed content (the manifest digest, or the build context's digest).",
    },
    enabled: { type: 'boolean', description: 'Whether the plugin is enabled on this node.' },
    observedGeneration: generation('metadata.generation of the DockerPlugin this entry was computed for.'),
    conditions: conditionsSchema,
    lastAction: {
      type: 'string',
      description: 'Actions of the last reconcile that changed something, e.g. `pull, set, enable`.',
    },
    secrets: {
      type: 'object',
      description:
        'Salted hash (`hmac-sha256:…`, salt of the agent) of each secret env value, by env name; the value itself is never recorded.',
      additionalProperties: { type: 'string', description: 'The salted hash.' },
    },
    source: {
      type: 'string',
      description:
        'Where the content came from when a registry mirror served it, and what it was verified against.',
    },
  },
} as const;

/** status of a DockerPluginNode. */
export const dockerPluginNodeStatusSchema = {
  type: 'object',
  description: "What the node's agent observed, per DockerPlugin selecting the node.",
  properties: {
    declared: count('DockerPlugins that select this node.'),
    ready: count('Of those, how many are Ready at their current generation.'),
    plugins: {
      type: 'array',
      description: 'One entry per DockerPlugin selecting this node, merged by name.',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      items: nodePluginSchema,
    },
  },
} as const;

/** The whole DockerPluginNode object: metadata (the node's name) and status. No spec: nothing is declared here. */
export const dockerPluginNodeSchema = {
  type: 'object',
  description:
    "DockerPluginNode is one node's report of its Docker managed plugins, named after the node and written only by that node's plugctl agent. It is owned by its Node, so it goes away with the node.",
  properties: {
    apiVersion: { type: 'string', description: 'API group and version: plugctl.dev/v1alpha1.' },
    kind: { type: 'string', description: `Kind: ${NODE_KIND}.` },
    metadata: { type: 'object', description: "Standard object metadata; the name is the node's name." },
    status: dockerPluginNodeStatusSchema,
  },
} as const;

// Compile-time guard that the schemas and the types name the same fields.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const statusMatchesTypes: [
  Same<keyof typeof dockerPluginStatusSchema.properties, keyof DockerPluginStatus>,
  Same<keyof typeof dockerPluginStatusSchema.properties.nodes.properties, keyof NodeCounts>,
  Same<keyof typeof conditionsSchema.items.properties, keyof StatusCondition>,
  Same<keyof typeof nodePluginSchema.properties, keyof NodePluginStatus>,
  Same<keyof typeof dockerPluginNodeStatusSchema.properties, keyof DockerPluginNodeStatus>,
] = [true, true, true, true, true];
void statusMatchesTypes;
