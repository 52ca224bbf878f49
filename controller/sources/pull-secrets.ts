/**
 * Registry credentials from Kubernetes pull Secrets: `spec.pullSecretName` names a Secret of type
 * kubernetes.io/dockerconfigjson in the agent's own namespace (the only namespace whose Secrets the
 * agent may read). Both stores ask for credentials per registry host, so the Secrets named by the
 * DockerPlugins that select this node and pull from that host are tried in name order, then the
 * Docker client configuration as in file mode.
 *
 * A Secret is read when credentials are needed (a pull, an inspection, a 401), never cached here nor
 * watched: the registry client keeps what it got until the registry refuses it. Nothing of a Secret's
 * content is logged or put into an error or a status; messages name the Secret only.
 */
import type { Logger } from 'pino';
import { describeError, PlugctlError } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import { hasStatus } from '../kube/errors.ts';
import { SECRETS, objectPath } from '../kube/resources.ts';
import type { KubeObject } from '../kube/resources.ts';
import { credentialsFromAuths } from '../registry/credentials.ts';
import type { Credentials } from '../registry/credentials.ts';

/** The Secret type `kubectl create secret docker-registry` makes. */
export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';

/** Options of PullSecretCredentials. */
export interface PullSecretOptions {
  client: KubeClient;
  /** the agent's namespace: the only one Secrets are read from */
  namespace: string;
  /** names of the Secrets declared for a registry host (KubeSource.pullSecretsFor) */
  secretsFor(registryHost: string): readonly string[];
  /** credentials when no Secret has any for the host (the Docker client configuration) */
  fallback(registryHost: string): Promise<Credentials | undefined>;
  logger: Logger;
}

interface Secret extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

/** A credential lookup for the stores and the registry client; pass `lookup` where one is taken. */
export class PullSecretCredentials {
  readonly #o: PullSecretOptions;

  constructor(options: PullSecretOptions) {
    this.#o = options;
  }

  /** Credentials for `registryHost`, or undefined for anonymous access. */
  readonly lookup = async (registryHost: string): Promise<Credentials | undefined> => {
    // One broken Secret must not hide another's credentials for the same registry; it is reported
    // only when nothing else has credentials for the host (anonymous access would fail less clearly).
    let failure: unknown;
    for (const name of this.#o.secretsFor(registryHost)) {
      try {
        const credentials = await this.#fromSecret(name, registryHost);
        if (credentials !== undefined) return credentials;
      } catch (error) {
        this.#o.logger.warn({ registry: registryHost }, describeError(error));
        failure ??= error;
      }
    }
    const fallback = await this.#o.fallback(registryHost);
    if (fallback === undefined && failure !== undefined) throw failure;
    return fallback;
  };

  async #fromSecret(name: string, registryHost: string): Promise<Credentials | undefined> {
    const { client, namespace } = this.#o;
    const where = `Secret ${namespace}/${name}`;
    let secret: Secret;
    try {
      secret = await client.request<Secret>({ method: 'GET', path: objectPath(SECRETS, name, namespace) });
    } catch (error) {
      if (hasStatus(error, 404) || hasStatus(error, 403)) {
        throw new PlugctlError(
          'PULL_SECRET_NOT_FOUND',
          `the pull ${where} cannot be read (${describeError(error)}); create it in the agent's namespace ${namespace}`,
          { cause: error },
        );
      }
      throw error;
    }
    if (secret.type !== DOCKER_CONFIG_JSON_TYPE) {
      throw new PlugctlError(
        'PULL_SECRET_INVALID',
        `the pull ${where} is of type ${secret.type ?? '(none)'}, not ${DOCKER_CONFIG_JSON_TYPE}`,
      );
    }
    const encoded = secret.data?.['.dockerconfigjson'];
    let config: unknown;
    try {
      config = JSON.parse(Buffer.from(encoded ?? '', 'base64').toString('utf8'));
    } catch {
      // the parser's message may quote the content: leave it out
      throw new PlugctlError('PULL_SECRET_INVALID', `the pull ${where} has no valid .dockerconfigjson`);
    }
    const auths =
      typeof config === 'object' && config !== null ? (config as { auths?: unknown }).auths : undefined;
    const credentials = credentialsFromAuths(auths, registryHost, where);
    if (credentials === undefined)
      this.#o.logger.debug(
        { secret: where, registry: registryHost },
        'the pull Secret has nothing for this registry',
      );
    return credentials;
  }
}
