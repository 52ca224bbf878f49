/**
 * The cluster source of `plugctl run --kube`: the cluster's DockerPlugin resources, and this node's
 * labels from its own Node object, both kept by list+watch informers that do not trust their watches
 * (kube/informer.ts: bookmarks, a silence watchdog, periodic relists, jittered reconnects, a cache
 * that an outage never empties).
 *
 * It decides nothing. Objects become the same LoadedDocuments the files give (api/object.ts); the
 * controller selects them against `current()` labels and plans exactly as in file mode. What makes the
 * source safe to prune from:
 * - it is `synced` only once both informers have read a complete list and the Node has been seen: no
 *   labels, no selection, and so no removal before that;
 * - a Node that disappears keeps its last labels (a deleted or unreadable Node must not deselect
 *   everything);
 * - a DockerPlugin being deleted (deletionTimestamp set, held by a finalizer) is left out of the
 *   documents, so the node's agent removes what it owns for it, and is still described by plugin()
 *   so the node's status can report the removal until the object is gone.
 */
import type { Logger } from 'pino';
import type { HostLabels } from '../api/labels.ts';
import { selectHost } from '../api/labels.ts';
import type { LoadError, LoadedDocument, ParsedDocument } from '../api/load.ts';
import { LOAD_CODES } from '../api/load.ts';
import { loadObject } from '../api/object.ts';
import type { KubeClient } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import { DOCKER_PLUGINS, NODES } from '../kube/resources.ts';
import type { KubeObject } from '../kube/resources.ts';
import type { BackoffPolicy } from '../runtime/backoff.ts';
import type { Clock } from '../runtime/clock.ts';
import type { DesiredSnapshot, DesiredSource } from './source.ts';

/** Options of a KubeSource. */
export interface KubeSourceOptions {
  client: KubeClient;
  /** this node's name: its Node object is watched by field selector */
  nodeName: string;
  clock: Clock;
  logger: Logger;
  /** informer tuning (kube/informer.ts defaults when absent) */
  silenceMs?: number;
  relistMs?: number;
  watchTimeoutSeconds?: number;
  backoff?: BackoffPolicy;
}

/** What the cluster says about one DockerPlugin, for this node's status. */
export interface ClusterPlugin {
  /** metadata.generation of the object */
  generation: number | undefined;
  /** deletionTimestamp is set: it goes away once its finalizers are removed */
  deleting: boolean;
  /** its nodeSelector selects this node's current labels (false for an invalid object) */
  selected: boolean;
}

/** The Node's identity, for an ownerReference. */
export interface NodeIdentity {
  name: string;
  uid: string;
}

interface Entry {
  resourceVersion: string | undefined;
  generation: number | undefined;
  deleting: boolean;
  document: ParsedDocument | undefined;
  errors: readonly LoadError[];
}

/** Only what selection and ownership need is kept of a Node (its status is most of its size). */
function trimNode(object: KubeObject): KubeObject {
  const { name, uid, resourceVersion, labels } = object.metadata;
  return {
    metadata: {
      name,
      ...(uid !== undefined ? { uid } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
      ...(labels !== undefined ? { labels } : {}),
    },
  };
}

/**
 * A DockerPlugin as the cache keeps it: without the server's field records (the bulk of the object),
 * but with its status. `run --kube` shares this cache with the fleet leader (kube/fleet.ts), which
 * reads the status it wrote to keep conditions' lastTransitionTime and to skip unchanged summaries;
 * without it the leader rewrote every summary every second, each write an event reconciled here
 * (200 DockerPlugins: ~150 reconciles a second, and 160 MB resident instead of ~75).
 */
export function cachedPlugin(object: KubeObject): KubeObject {
  const { managedFields: _fields, ...metadata } = object.metadata;
  return { ...object, metadata };
}

/** What of a cached DockerPlugin is loaded as a document: the fleet summary is not part of one. */
export function documentPart(object: KubeObject): KubeObject {
  const { status: _status, ...rest } = object;
  return rest;
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

const NO_LABELS: HostLabels = { persistent: {}, effective: {} };

/** DockerPlugins from the cluster and this node's labels. start(), read, close(). */
export class KubeSource implements DesiredSource {
  readonly #o: KubeSourceOptions;
  readonly #plugins: Informer;
  readonly #nodes: Informer;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<(keys: ReadonlySet<string>) => void>();
  #labels: HostLabels = NO_LABELS;
  #node: NodeIdentity | undefined;
  #synced = false;
  #snapshot: DesiredSnapshot | undefined;
  #syncWaiters: (() => void)[] = [];
  #warnedMissing = false;
  #unsubscribe: (() => void)[] = [];

  /** Builds the informers; nothing is sent before start(). */
  constructor(options: KubeSourceOptions) {
    this.#o = options;
    const tuning = {
      client: options.client,
      clock: options.clock,
      ...(options.silenceMs !== undefined ? { silenceMs: options.silenceMs } : {}),
      ...(options.relistMs !== undefined ? { relistMs: options.relistMs } : {}),
      ...(options.watchTimeoutSeconds !== undefined
        ? { watchTimeoutSeconds: options.watchTimeoutSeconds }
        : {}),
      ...(options.backoff !== undefined ? { backoff: options.backoff } : {}),
    };
    this.#plugins = new Informer({
      ...tuning,
      type: DOCKER_PLUGINS,
      logger: options.logger.child({ informer: 'dockerplugins' }),
      transform: cachedPlugin,
    });
    this.#nodes = new Informer({
      ...tuning,
      type: NODES,
      fieldSelector: `metadata.name=${options.nodeName}`,
      logger: options.logger.child({ informer: 'node' }),
      transform: trimNode,
    });
  }

  /** The informers, for their statistics (tests, metrics, benchmarks). */
  get informers(): { plugins: Informer; node: Informer } {
    return { plugins: this.#plugins, node: this.#nodes };
  }

  /** True once both lists are complete and the Node was seen; stays true through outages. */
  get synced(): boolean {
    return this.#synced;
  }

  /** This node's labels, what spec.nodeSelector is matched against. The object changes only when a label did. */
  current(): HostLabels {
    return this.#labels;
  }

  /** The Node's name and uid, once seen. */
  node(): NodeIdentity | undefined {
    return this.#node;
  }

  /** What the cluster says about DockerPlugin `key`, or undefined when there is no such object. */
  plugin(key: string): ClusterPlugin | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const selector = entry.document?.doc.spec.nodeSelector;
    return {
      generation: entry.generation,
      deleting: entry.deleting,
      selected: entry.document !== undefined && selectHost(selector, this.#labels).selected,
    };
  }

  /** Every DockerPlugin's name. */
  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /**
   * The spec.pullSecretName of the DockerPlugins that select this node and pull from `registryHost`
   * (a reference's domain, e.g. `docker.io`), sorted, each once.
   */
  pullSecretsFor(registryHost: string): string[] {
    const names = new Set<string>();
    for (const entry of this.#entries.values()) {
      const document = entry.document;
      const secret = document?.doc.spec.pullSecretName;
      if (secret === undefined || entry.deleting || document?.reference.domain !== registryHost) continue;
      if (selectHost(document.doc.spec.nodeSelector, this.#labels).selected) names.add(secret);
    }
    return [...names].sort();
  }

  start(): Promise<void> {
    const synced = this.#synced
      ? Promise.resolve()
      : new Promise<void>((resolve) => this.#syncWaiters.push(resolve));
    if (this.#unsubscribe.length === 0) {
      this.#unsubscribe = [
        this.#plugins.onChange((keys) => this.#pluginsChanged(keys)),
        this.#nodes.onChange(() => this.#nodeChanged()),
      ];
      // Rejections only mean close() came first; sync is tracked through the listeners.
      this.#plugins.start().then(
        () => this.#checkSynced(),
        () => undefined,
      );
      this.#nodes.start().then(
        () => this.#nodeChanged(),
        () => undefined,
      );
    }
    return synced;
  }

  snapshot(): DesiredSnapshot {
    this.#snapshot ??= this.#build();
    return this.#snapshot;
  }

  onChange(listener: (keys: ReadonlySet<string>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    await Promise.all([this.#plugins.close(), this.#nodes.close()]);
  }

  #pluginsChanged(keys: ReadonlySet<string>): void {
    const before = this.snapshot();
    for (const key of keys) {
      const object = this.#plugins.get(key);
      if (object === undefined) {
        this.#entries.delete(key);
        continue;
      }
      const rv = object.metadata.resourceVersion;
      if (this.#entries.get(key)?.resourceVersion === rv && rv !== undefined) continue;
      const loaded = loadObject(documentPart(object), key);
      const entry: Entry = {
        resourceVersion: rv,
        generation: object.metadata.generation,
        deleting: typeof object.metadata.deletionTimestamp === 'string',
        document: 'document' in loaded ? loaded.document : undefined,
        errors: 'errors' in loaded ? loaded.errors : [],
      };
      if (entry.errors.length > 0) {
        this.#o.logger.warn(
          { plugin: key, errors: entry.errors.map((e) => `${e.path}: ${e.message}`) },
          'a DockerPlugin is not valid: nothing is pruned on this node while it is listed',
        );
      }
      this.#entries.set(key, entry);
    }
    this.#snapshot = undefined;
    // A document whose neighbour changed can change too (two local names colliding, then not).
    const after = this.snapshot();
    const changed = new Set(keys);
    for (const key of new Set([...before.documents.keys(), ...after.documents.keys()]))
      if (before.documents.get(key) !== after.documents.get(key)) changed.add(key);
    this.#checkSynced();
    this.#emit(changed);
  }

  #nodeChanged(): void {
    if (!this.#nodes.synced) return;
    const node = this.#nodes.get(this.#o.nodeName);
    if (node === undefined) {
      if (!this.#warnedMissing) {
        this.#warnedMissing = true;
        this.#o.logger.warn(
          { node: this.#o.nodeName, code: 'KUBE_NODE_NOT_FOUND' },
          this.#node === undefined
            ? `the Node ${this.#o.nodeName} does not exist: waiting for it before deciding anything (check --node-name or NODE_NAME)`
            : `the Node ${this.#o.nodeName} was deleted: keeping its last labels`,
        );
      }
      return;
    }
    this.#warnedMissing = false;
    if (node.metadata.uid !== undefined) this.#node = { name: node.metadata.name, uid: node.metadata.uid };
    const labels = node.metadata.labels ?? {};
    const first = !this.#synced && this.#labels === NO_LABELS;
    if (first || !sameLabels(labels, this.#labels.effective)) {
      this.#labels = { persistent: labels, effective: labels };
      if (!first) {
        this.#o.logger.info({ labels }, 'node labels changed: every DockerPlugin is selected again');
        this.#emit(new Set(this.#entries.keys()));
      }
    }
    this.#checkSynced();
  }

  #checkSynced(): void {
    if (this.#synced || !this.#plugins.synced || !this.#nodes.synced || this.#node === undefined) return;
    this.#synced = true;
    this.#snapshot = undefined;
    this.#o.logger.info(
      { plugins: this.#entries.size, node: this.#o.nodeName },
      'cluster source synced (DockerPlugins listed, Node seen)',
    );
    for (const resolve of this.#syncWaiters.splice(0)) resolve();
  }

  #emit(keys: ReadonlySet<string>): void {
    if (keys.size === 0) return;
    for (const listener of this.#listeners) listener(keys);
  }

  /**
   * Documents not being deleted, minus those whose local names collide (none of a colliding group is
   * taken: which one wins would depend on listing order); every invalid object is an error.
   */
  #build(): DesiredSnapshot {
    const byLocalName = new Map<string, ParsedDocument[]>();
    const errors: LoadError[] = [];
    for (const entry of this.#entries.values()) {
      errors.push(...entry.errors);
      if (entry.document === undefined || entry.deleting) continue;
      const group = byLocalName.get(entry.document.localName);
      if (group === undefined) byLocalName.set(entry.document.localName, [entry.document]);
      else group.push(entry.document);
    }
    const documents = new Map<string, LoadedDocument>();
    for (const [localName, group] of byLocalName) {
      if (group.length === 1) {
        const [document] = group as [ParsedDocument];
        documents.set(document.doc.metadata.name, document);
        continue;
      }
      const names = group.map((d) => d.doc.metadata.name).sort();
      for (const document of group) {
        errors.push({
          origin: document.localNameOrigin,
          path: document.localNamePath,
          message: `local plugin name ${JSON.stringify(localName)} is also used by ${names
            .filter((n) => n !== document.doc.metadata.name)
            .map((n) => `dockerplugin/${n}`)
            .join(', ')}: none of them is applied; give each a distinct spec.alias`,
          code: LOAD_CODES.duplicateLocalName,
        });
      }
    }
    return { documents, errors, synced: this.#synced };
  }
}
