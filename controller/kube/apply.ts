/**
 * Server-side apply: plugctl states the fields it owns and the API server merges them, keeping every
 * other manager's fields (a node agent's entry in a list-map, kubectl's spec). Each writer has its own
 * field manager, so two agents never overwrite each other's status by accident, and a conflict is an
 * error unless the writer is the fields' only rightful owner (force).
 */
import type { KubeClient } from './client.ts';
import { apiVersionOf, objectPath } from './resources.ts';
import type { KubeMetadata, KubeObject, ResourceType } from './resources.ts';

/** Options of one apply. */
export interface ApplyOptions {
  /** who owns the applied fields, e.g. `plugctl-agent/node-a` (at most 128 characters) */
  fieldManager: string;
  /**
   * Take the fields over from other managers instead of failing with 409 KUBE_CONFLICT. Right for a
   * writer that is the only legitimate owner of what it applies (a node agent and its node's status).
   */
  force?: boolean;
  /** apply to the status subresource instead of the object (spec and metadata are then ignored) */
  subresource?: 'status';
  /** validate and merge, but persist nothing */
  dryRun?: boolean;
  signal?: AbortSignal;
}

/**
 * Applies `object` (apiVersion and kind are filled in from `type`; metadata.name is required, and
 * metadata.namespace for a namespaced type) and returns the object as the server stored it. Only the
 * fields present in `object` are claimed: a field this manager applied before and leaves out now is
 * removed (or handed back to its other owners).
 */
export async function serverSideApply<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  object: { metadata: KubeMetadata; [field: string]: unknown },
  options: ApplyOptions,
): Promise<T> {
  const body = { ...object, apiVersion: apiVersionOf(type), kind: type.kind };
  return client.request<T>({
    method: 'PATCH',
    path: objectPath(type, object.metadata.name, object.metadata.namespace, options.subresource),
    query: {
      fieldManager: options.fieldManager,
      force: options.force === true ? true : undefined,
      dryRun: options.dryRun === true ? 'All' : undefined,
    },
    // JSON is YAML, so the apply content type takes it as is.
    contentType: 'application/apply-patch+yaml',
    body,
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  });
}
