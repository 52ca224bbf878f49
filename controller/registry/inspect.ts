/**
 * What plugctl needs to know about a remote before it installs or upgrades anything, read from the
 * registry itself rather than from the engine (which hides registry errors, cannot tell which
 * content a tag points at, and crashes on digests before 25.0.4): the privileges computed from the
 * config blob, the content's layer diff IDs, the manifest digest, and the reference that is safe to
 * hand to this store.
 */
import { SpecError } from '../errors.ts';
import { formatReference, parseReference, withoutDigest, type Reference } from '../api/reference.ts';
import type { PluginPrivilege } from '../plugin/privileges.ts';
import type { CallOptions, RegistryClient } from './client.ts';
import { withDeadline } from './deadline.ts';
import { DEFAULT_PULL_TIMEOUT_MS } from '../limits.ts';
import { parsePluginConfig } from '../plugin/config.ts';
import { RegistryError } from './errors.ts';
import { describeError, PlugctlError } from '../errors.ts';
import { mirrorsOf, NO_MIRRORS, onMirror, type MirrorConfig, type MirrorEndpoint } from './mirrors.ts';
import { computePrivileges } from '../plugin/privileges.ts';

/** The facts about one declared remote. */
export interface RemoteInfo {
  /** the declared remote, normalised */
  remote: string;
  /** what to send the store's pull/upgrade: the remote itself, the tag of a pin, or a platform digest */
  pullRemote: string;
  /** digest of the (platform) manifest the content comes from */
  digest: string;
  /** privileges computed from the config blob with moby's rules, in moby's order */
  privileges: PluginPrivilege[];
  /** rootfs.diff_ids of the config: identifies the content whatever the tag says */
  diffIds: string[];
  /**
   * set when a registry mirror serves the content: the store fetches `reference` (the mirror's
   * reference of pullRemote; a tag, never a digest, for engines that crash on digests) and the
   * plugin keeps the declared remote as its identity
   */
  mirror?: MirrorSource;
}

/** Where mirrored content comes from and what vouches for it. */
export interface MirrorSource {
  /** the mirror's host[:port] */
  host: string;
  /** what the store fetches from the mirror */
  reference: string;
  /**
   * `pinned`: the declared digest; `upstream`: the digest the upstream gives for the tag; `mirror`:
   * the upstream was unreachable, so the mirror's own answer for the tag was taken
   */
  verifiedBy: 'pinned' | 'upstream' | 'mirror';
  /** one sentence for status and output, e.g. `mirror 127.0.0.1:5001, verified against the pinned digest sha256:…` */
  description: string;
}

/** Reads RemoteInfo for a remote. */
export interface RemoteInspector {
  inspect(remote: string): Promise<RemoteInfo>;
}

/** What the inspector must know about the store that will receive `pullRemote`. */
export interface StoreTraits {
  /** false for engines that crash on digest references (dockerd before 25.0.4, moby#47299) */
  acceptsDigests: boolean;
  /** e.g. `dockerd 20.10.24`, for messages */
  description: string;
}

/** Options of createRemoteInspector. */
export interface InspectorOptions {
  /** overall deadline of one remote's lookup, retries included, ms; default DEFAULT_PULL_TIMEOUT_MS */
  timeoutMs?: number;
  /** registry mirrors, tried in order before each upstream; default none */
  mirrors?: MirrorConfig;
}

/**
 * Builds an inspector over a registry client for a store with the given traits. Each lookup has
 * its own deadline (REGISTRY_TIMEOUT past it), so a stalled registry holds only its own remote.
 */
export function createRemoteInspector(
  client: RegistryClient,
  store: StoreTraits,
  options: InspectorOptions = {},
): RemoteInspector {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PULL_TIMEOUT_MS;
  const mirrors = options.mirrors ?? NO_MIRRORS;
  return {
    async inspect(remote: string): Promise<RemoteInfo> {
      const ref = parseReference(remote);
      return withDeadline(
        timeoutMs,
        { registry: ref.domain, repository: ref.path, description: `looking up ${remote}` },
        (signal) =>
          mirrorsOf(mirrors, ref.domain).length > 0
            ? inspectWithMirrors(client, store, ref, remote, mirrorsOf(mirrors, ref.domain), { signal })
            : inspectRemote(client, store, ref, remote, { signal }),
      );
    },
  };
}

async function inspectRemote(
  client: RegistryClient,
  store: StoreTraits,
  ref: Reference,
  remote: string,
  call: CallOptions,
): Promise<RemoteInfo> {
  if (ref.digest !== undefined && !store.acceptsDigests)
    return inspectPinOnOldEngine(client, store, ref, remote, call);
  const fetched = await client.fetchConfig(ref, undefined, call);
  let pullRemote = formatReference(ref);
  if (fetched.resolved.index !== undefined) {
    if (!store.acceptsDigests) {
      const available = fetched.resolved.index.available.map(platformText).join(', ');
      throw new SpecError(
        'MULTI_ARCH_UNSUPPORTED_BY_ENGINE',
        `${remote} is a multi-platform index (${available}); installing the ${platformText(fetched.resolved.index.platform)} ` +
          `manifest needs a digest reference, which ${store.description} cannot take (it crashes on them before 25.0.4, ` +
          `moby#47299). Upgrade dockerd to 25.0.4 or newer, use the embedded store, or reference a single-platform tag`,
      );
    }
    // The engine cannot pick a platform from an index: hand it the platform manifest by digest.
    pullRemote = formatReference({ domain: ref.domain, path: ref.path, digest: fetched.resolved.digest });
  }
  return describe(remote, pullRemote, fetched.resolved.digest, fetched.json, ref);
}

/**
 * A pin `repo:tag@sha256:...` for an engine that must never see the digest: check at the registry
 * that the tag still points at the pinned digest, and hand the engine the tag. The content installed
 * is verified afterwards against the diff IDs returned here.
 */
async function inspectPinOnOldEngine(
  client: RegistryClient,
  store: StoreTraits,
  ref: Reference,
  remote: string,
  call: CallOptions,
): Promise<RemoteInfo> {
  if (ref.tag === undefined) {
    throw new SpecError(
      'DIGEST_UNSUPPORTED_BY_ENGINE',
      `${remote} pins a digest without a tag; ${store.description} crashes on digest references (fixed in 25.0.4, ` +
        `moby#47299). Write the pin as repo:tag@digest (plugctl then installs the tag and verifies the content), ` +
        `or upgrade dockerd to 25.0.4 or newer`,
    );
  }
  const byTag = withoutDigest(ref);
  const head = await client.headManifest(byTag, call);
  if (head.digest !== ref.digest) {
    throw new SpecError(
      'PIN_MISMATCH',
      `${formatReference(byTag)} now points at ${head.digest}, not the pinned ${ref.digest}; ` +
        `${store.description} can only pull by tag, so the pinned content cannot be installed. ` +
        `Update the pin, or re-tag the pinned content`,
    );
  }
  const fetched = await client.fetchConfig(ref, undefined, call);
  if (fetched.resolved.index !== undefined) {
    throw new SpecError(
      'MULTI_ARCH_UNSUPPORTED_BY_ENGINE',
      `${remote} is a multi-platform index, which ${store.description} cannot install (it needs a digest reference); ` +
        `upgrade dockerd to 25.0.4 or newer or use the embedded store`,
    );
  }
  return describe(remote, formatReference(byTag), fetched.resolved.digest, fetched.json, ref);
}

/**
 * A remote whose registry has mirrors. What the content must be is settled first: the pinned digest,
 * or what the upstream says the tag points at; only when the upstream cannot be reached is the
 * mirror's answer for the tag taken (and the status says so). Then each mirror is asked for exactly
 * that content, in order, and the upstream last. The store is handed the mirror's reference (a tag
 * for engines that crash on digests, with the content verified after the pull by its layers).
 */
async function inspectWithMirrors(
  client: RegistryClient,
  store: StoreTraits,
  ref: Reference,
  remote: string,
  mirrors: readonly MirrorEndpoint[],
  call: CallOptions,
): Promise<RemoteInfo> {
  if (ref.digest !== undefined && !store.acceptsDigests && ref.tag === undefined) {
    // the engine could only be handed the digest: the same refusal as without mirrors
    return inspectPinOnOldEngine(client, store, ref, remote, call);
  }
  const failures: string[] = [];
  let expected = ref.digest;
  let verifiedBy: MirrorSource['verifiedBy'] = 'pinned';
  let upstreamReachable = true;
  if (expected === undefined) {
    try {
      expected = (await client.headManifest(ref, call)).digest;
      verifiedBy = 'upstream';
    } catch (error) {
      call.signal?.throwIfAborted();
      // the upstream said no (no such tag, refused credentials): the mirrors do not overrule it
      if (!(error instanceof PlugctlError) || error.kind !== 'transient') throw error;
      upstreamReachable = false;
      verifiedBy = 'mirror';
      failures.push(`upstream ${ref.domain}: ${describeError(error)}`);
    }
  }
  for (const mirror of mirrors) {
    const asked: Reference = onMirror(
      expected !== undefined ? { ...ref, digest: expected } : { ...ref },
      mirror,
    );
    try {
      const fetched = await client.fetchConfig(asked, undefined, call);
      const platformDigest = fetched.resolved.digest;
      const byDigest = formatReference({ domain: ref.domain, path: ref.path, digest: platformDigest });
      let handed: string;
      let pullRemote: string;
      if (store.acceptsDigests) {
        handed = formatReference({ domain: asked.domain, path: asked.path, digest: platformDigest });
        pullRemote = fetched.resolved.index !== undefined ? byDigest : formatReference(ref);
      } else {
        if (fetched.resolved.index !== undefined) {
          throw new PlugctlError(
            'MULTI_ARCH_UNSUPPORTED_BY_ENGINE',
            `${remote} is a multi-platform index, which ${store.description} cannot install (it needs a digest reference); ` +
              `upgrade dockerd to 25.0.4 or newer or use the embedded store`,
            { kind: 'stalled' },
          );
        }
        // never a digest for this engine: the mirror's tag, checked now and verified after the pull
        const byTag = onMirror(withoutDigest({ ...ref, tag: ref.tag ?? 'latest' }), mirror);
        if (expected !== undefined) {
          const head = await client.headManifest(byTag, call);
          if (head.digest !== expected) {
            throw new RegistryError(
              'DIGEST_MISMATCH',
              `${formatReference(byTag)} points at ${head.digest}, not ${expected}; the mirror is out of date`,
              { registry: mirror.host, repository: byTag.path },
            );
          }
        }
        handed = formatReference(byTag);
        pullRemote = formatReference(withoutDigest(ref));
      }
      const digest = expected ?? fetched.resolved.digest;
      const description =
        `mirror ${mirror.host}, ` +
        (verifiedBy === 'pinned'
          ? `verified against the pinned digest ${digest}`
          : verifiedBy === 'upstream'
            ? `verified against the digest ${ref.domain} gives for the tag (${digest})`
            : `not verified: ${ref.domain} was unreachable, so the mirror's ${digest} for the tag was taken`);
      const info = describe(remote, pullRemote, fetched.resolved.digest, fetched.json, ref);
      return { ...info, mirror: { host: mirror.host, reference: handed, verifiedBy, description } };
    } catch (error) {
      call.signal?.throwIfAborted();
      if (error instanceof PlugctlError && error.code === 'MULTI_ARCH_UNSUPPORTED_BY_ENGINE') throw error;
      failures.push(`mirror ${mirror.host}: ${describeError(error)}`);
    }
  }
  if (upstreamReachable) {
    try {
      return await inspectRemote(client, store, ref, remote, call);
    } catch (error) {
      call.signal?.throwIfAborted();
      failures.unshift(`upstream ${ref.domain}: ${describeError(error)}`);
    }
  }
  throw new RegistryError(
    'MIRRORS_UNAVAILABLE',
    `${remote} could not be fetched from its registry or any mirror: ${failures.join('; ')}`,
    { registry: ref.domain, repository: ref.path, kind: 'transient' },
  );
}

function describe(
  remote: string,
  pullRemote: string,
  digest: string,
  json: unknown,
  ref: Reference,
): RemoteInfo {
  const config = parsePluginConfig(json, `${ref.domain}/${ref.path}`);
  return {
    remote,
    pullRemote,
    digest,
    privileges: computePrivileges(config),
    diffIds: config.rootfs.diff_ids,
  };
}

function platformText(p: { os: string; architecture: string; variant?: string }): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
