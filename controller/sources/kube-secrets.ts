/**
 * Kubernetes mode's secrets: `valueFrom.secretKeyRef` reads a key of a Secret in the agent's own
 * namespace (the only namespace whose Secrets the agent may read). The Secrets are kept by a
 * list+watch informer (kube/informer.ts), started on the first secretKeyRef to resolve, so an agent
 * whose plugins use no Secret lists none; and as a trigger it tells the controller which Secret
 * changed, so the plugins reading it are reconfigured at once (the salted hash in status differs).
 *
 * Only a Secret's name and data are cached (kubectl's last-applied annotation, which repeats the
 * data, is dropped). Nothing of a value is logged or put into an error: messages name the Secret and
 * the key. `valueFrom.file` is refused: a file in the agent's container is not the node's.
 */
import type { Logger } from 'pino';
import type { SecretResolver } from '../api/secrets.ts';
import type { SecretSource } from '../api/types.ts';
import { PlugctlError } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import { SECRETS } from '../kube/resources.ts';
import type { KubeObject } from '../kube/resources.ts';
import { MAX_SECRET_BYTES } from '../limits.ts';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Trigger, TriggerTarget } from './trigger.ts';

/** Options of KubeSecrets. */
export interface KubeSecretsOptions {
  client: KubeClient;
  /** the agent's namespace: the only one Secrets are read from */
  namespace: string;
  clock: Clock;
  logger: Logger;
  /** how long a resolve waits for the first list of the Secrets (default 10 s) */
  syncTimeoutMs?: number;
  /** informer tuning (kube/informer.ts defaults when absent) */
  silenceMs?: number;
  relistMs?: number;
}

interface Secret extends KubeObject {
  data?: Record<string, string>;
}

/** Name and data, nothing else: annotations can repeat the data, and the rest is not needed. */
function trimSecret(object: KubeObject): Secret {
  const { name, namespace, uid, resourceVersion } = object.metadata;
  const data = (object as Secret).data;
  return {
    metadata: {
      name,
      ...(namespace !== undefined ? { namespace } : {}),
      ...(uid !== undefined ? { uid } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    },
    ...(data !== undefined ? { data } : {}),
  };
}

/** A SecretResolver over the Secrets of one namespace, and the Trigger that reports their changes. */
export class KubeSecrets implements SecretResolver, Trigger {
  readonly #o: KubeSecretsOptions;
  readonly #informer: Informer<Secret>;
  readonly #unsubscribe: () => void;
  #target: TriggerTarget | undefined;

  /** Builds the informer; nothing is sent before the first secretKeyRef is resolved. */
  constructor(options: KubeSecretsOptions) {
    this.#o = options;
    this.#informer = new Informer<Secret>({
      client: options.client,
      type: SECRETS,
      namespace: options.namespace,
      clock: options.clock,
      logger: options.logger.child({ informer: 'secrets' }),
      transform: trimSecret,
      ...(options.silenceMs !== undefined ? { silenceMs: options.silenceMs } : {}),
      ...(options.relistMs !== undefined ? { relistMs: options.relistMs } : {}),
    });
    this.#unsubscribe = this.#informer.onChange((keys) => {
      for (const key of keys) this.#target?.secretChanged(key.slice(key.indexOf('/') + 1));
    });
  }

  /** The informer, for its statistics (tests, metrics). */
  get informer(): Informer {
    return this.#informer;
  }

  start(target: TriggerTarget): void {
    this.#target = target;
  }

  async stop(): Promise<void> {
    this.#target = undefined;
    this.#unsubscribe();
    await this.#informer.close();
  }

  async resolve(source: SecretSource, signal?: AbortSignal): Promise<string> {
    if (source.secretKeyRef === undefined) {
      throw new PlugctlError(
        'SECRET_SOURCE_UNSUPPORTED',
        `valueFrom.file (${source.file}) is read only in file mode; in Kubernetes mode put the value in a ` +
          `Secret of the agent's namespace ${this.#o.namespace} and use valueFrom.secretKeyRef`,
      );
    }
    const { name, key } = source.secretKeyRef;
    const where = `Secret ${this.#o.namespace}/${name}`;
    await this.#synced(where, signal);
    const secret = this.#informer.get(`${this.#o.namespace}/${name}`);
    if (secret === undefined) {
      throw new PlugctlError(
        'SECRET_UNAVAILABLE',
        `the ${where} does not exist; create it in the agent's namespace ${this.#o.namespace} with the key ${key}`,
      );
    }
    const encoded = secret.data?.[key];
    if (encoded === undefined) {
      const keys = Object.keys(secret.data ?? {}).sort();
      throw new PlugctlError(
        'SECRET_UNAVAILABLE',
        `the ${where} has no key ${key} (its keys: ${keys.length > 0 ? keys.join(', ') : 'none'})`,
      );
    }
    const bytes = Buffer.from(encoded, 'base64');
    if (bytes.length > MAX_SECRET_BYTES) {
      throw new PlugctlError(
        'SECRET_UNAVAILABLE',
        `the ${where} key ${key} holds ${bytes.length} bytes, over the ${MAX_SECRET_BYTES}-byte limit for a secret`,
      );
    }
    const text = bytes.toString('utf8');
    if (text.includes('\0')) {
      throw new PlugctlError(
        'SECRET_UNAVAILABLE',
        `the ${where} key ${key} contains a NUL byte, which no environment value can hold`,
      );
    }
    // As a Pod's env from a secretKeyRef: the value exactly, a trailing newline included.
    return text;
  }

  /** Starts the informer on first need and waits (boundedly) for its first complete list. */
  async #synced(where: string, signal: AbortSignal | undefined): Promise<void> {
    if (this.#informer.synced) return;
    const first = this.#informer.start();
    const timeoutMs = this.#o.syncTimeoutMs ?? 10_000;
    let timer: TimerHandle | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = this.#o.clock.setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const aborted = new Promise<'aborted'>((resolve) => {
      if (signal?.aborted === true) resolve('aborted');
      signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    try {
      const how = await Promise.race([first.then(() => 'synced' as const), timedOut, aborted]);
      if (how === 'aborted') signal?.throwIfAborted();
      if (how === 'timeout') {
        throw new PlugctlError(
          'SECRET_UNAVAILABLE',
          `cannot read the ${where}: the Secrets of namespace ${this.#o.namespace} could not be listed within ${timeoutMs} ms`,
        );
      }
    } catch (error) {
      if (error instanceof PlugctlError || signal?.aborted === true) throw error;
      throw new PlugctlError('SECRET_UNAVAILABLE', `cannot read the ${where}: ${(error as Error).message}`);
    } finally {
      if (timer !== undefined) this.#o.clock.clearTimeout(timer);
    }
  }
}
