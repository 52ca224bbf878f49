/**
 * An overall deadline for a piece of registry work made of many requests (a plugin's lookup, a
 * plugin's pull). Each request has its own deadlines (transfer-guard.ts); this bounds their sum,
 * retries and backoff included, so one slow registry holds one plugin for at most this long.
 */
import prettyMs from 'pretty-ms';
import { RegistryError } from './errors.ts';

/**
 * Runs `work` with a signal that aborts after `ms` (or when `parent` aborts). The work must pass the
 * signal to every request and wait it makes (the registry client and the extraction honour it), so
 * it settles soon after the deadline. When the deadline is what ended it, the failure is a
 * REGISTRY_TIMEOUT (transient) naming `what` and the deadline, whatever the work threw on abort.
 */
export async function withDeadline<T>(
  ms: number,
  what: { registry: string; repository?: string; description: string },
  work: (signal: AbortSignal) => Promise<T>,
  parent?: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new Error(`deadline of ${prettyMs(ms)} passed`));
  }, ms);
  const onParentAbort = (): void => controller.abort(parent?.reason);
  if (parent?.aborted === true) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  try {
    return await work(controller.signal);
  } catch (error) {
    if (!expired) throw error;
    throw new RegistryError(
      'REGISTRY_TIMEOUT',
      `${what.description} did not finish within ${prettyMs(ms)} (the pull deadline); the registry is too slow or stalled; nothing was kept; it will be retried`,
      {
        registry: what.registry,
        ...(what.repository !== undefined ? { repository: what.repository } : {}),
        cause: error,
      },
    );
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onParentAbort);
  }
}
