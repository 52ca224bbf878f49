/**
 * The resource types plugctl reads and writes, and the URL paths of their collections and objects.
 * Only APIs that every current Kubernetes serves are used (apiextensions v1, coordination v1,
 * events.k8s.io v1, core v1), so the same code runs against 1.20 and against today's clusters.
 */
import { API_VERSION } from '../api/types.ts';

/** One resource type of the API. `group` is '' for the core group. */
export interface ResourceType {
  group: string;
  version: string;
  /** the plural resource name in URLs */
  plural: string;
  kind: string;
  namespaced: boolean;
}

/** Object metadata as the server returns it (the fields plugctl reads). */
export interface KubeMetadata {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  creationTimestamp?: string;
  deletionTimestamp?: string;
  ownerReferences?: Record<string, unknown>[];
  managedFields?: unknown[];
  [field: string]: unknown;
}

/** Any object of the API. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: KubeMetadata;
  [field: string]: unknown;
}

/** A list response. */
export interface KubeList<T extends KubeObject = KubeObject> {
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

const [PLUGCTL_GROUP = '', PLUGCTL_VERSION = ''] = API_VERSION.split('/');

/** plugctl.dev DockerPlugin (cluster-scoped). */
export const DOCKER_PLUGINS: ResourceType = {
  group: PLUGCTL_GROUP,
  version: PLUGCTL_VERSION,
  plural: 'dockerplugins',
  kind: 'DockerPlugin',
  namespaced: false,
};

/** plugctl.dev DockerPluginNode (cluster-scoped, one per node). */
export const DOCKER_PLUGIN_NODES: ResourceType = {
  group: PLUGCTL_GROUP,
  version: PLUGCTL_VERSION,
  plural: 'dockerpluginnodes',
  kind: 'DockerPluginNode',
  namespaced: false,
};

/** core v1 Node. */
export const NODES: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'nodes',
  kind: 'Node',
  namespaced: false,
};

/** core v1 Secret. */
export const SECRETS: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'secrets',
  kind: 'Secret',
  namespaced: true,
};

/** coordination.k8s.io/v1 Lease. */
export const LEASES: ResourceType = {
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  kind: 'Lease',
  namespaced: true,
};

/** events.k8s.io/v1 Event. */
export const EVENTS: ResourceType = {
  group: 'events.k8s.io',
  version: 'v1',
  plural: 'events',
  kind: 'Event',
  namespaced: true,
};

/** `group/version`, or `version` for the core group: an object's apiVersion. */
export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

/**
 * Path of a collection: `/apis/GROUP/VERSION[/namespaces/NS]/PLURAL` (or `/api/v1/...`). A namespaced
 * type without a namespace is the collection across all namespaces.
 */
export function collectionPath(type: ResourceType, namespace?: string): string {
  if (!type.namespaced && namespace !== undefined) {
    throw new TypeError(`${type.kind} is cluster-scoped: no namespace may be given`);
  }
  const root = type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  const ns = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  return `${root}${ns}/${type.plural}`;
}

/** Path of one object, or of its subresource (`status`). */
export function objectPath(
  type: ResourceType,
  name: string,
  namespace?: string,
  subresource?: 'status',
): string {
  if (type.namespaced && namespace === undefined) {
    throw new TypeError(`${type.kind} is namespaced: a namespace is required`);
  }
  const path = `${collectionPath(type, namespace)}/${encodeURIComponent(name)}`;
  return subresource === undefined ? path : `${path}/${subresource}`;
}

/** `namespace/name` or `name`: the key an object is cached under. */
export function objectKey(object: KubeObject): string {
  const { namespace, name } = object.metadata;
  return namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;
}
