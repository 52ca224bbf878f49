// Small builders for planner tests. Every builder returns a fresh object, so a test may mutate what it gets.
import type { RemoteInfo } from '../../../controller/registry/inspect.ts';
import type { DesiredPlugin } from '../../../controller/reconcile/desired.ts';
import type { Inventory, OwnedPlugin } from '../../../controller/reconcile/inventory.ts';
import type { PlanOptions, RemoteFacts } from '../../../controller/reconcile/plan.ts';
import type { PluginPrivilege } from '../../../controller/api/types.ts';
import type {
  EffectiveSettings,
  InstalledPlugin,
  SettableDefaults,
} from '../../../controller/store/store.ts';

/** The remote every default fixture is declared with and installed from (normalised). */
export const REMOTE = 'docker.io/acme/vol:1.0';
/** The next version of the same plugin. */
export const REMOTE_V2 = 'docker.io/acme/vol:2.0';
/** The default local plugin name. */
export const NAME = 'vol:latest';
/** The default document key. */
export const KEY = 'vol';
/** The apply set every default fixture is planned for and owned by. */
export const SET = 'files:/etc/plugctl/plugins.d';

/** Plan options for SET, pruning on; `overrides` replace single options. */
export function opts(overrides: Partial<PlanOptions> = {}): PlanOptions {
  return { prune: true, set: SET, ...overrides };
}

/** What the default remote asks for, and what the default declaration grants. */
export function privs(): PluginPrivilege[] {
  return [
    { name: 'network', description: 'network access', value: ['host'] },
    { name: 'mount', description: 'host mounts', value: ['/var/lib/vol', '/etc/vol'] },
  ];
}

/** A fully defaulted declaration of the default plugin; `overrides` replace whole fields. */
export function desired(overrides: Partial<DesiredPlugin> = {}): DesiredPlugin {
  return {
    key: KEY,
    name: NAME,
    remote: REMOTE,
    enabled: true,
    privileges: privs(),
    settings: {},
    upgradePolicy: 'OnSpecChange',
    inUse: 'Wait',
    enableTimeoutSeconds: 30,
    suspend: false,
    dependsOn: [],
    ...overrides,
  };
}

/** The plugin config's settable defaults: GREETING, DEBUG, args and mount `state` settable; device `fuse` not. */
export function defaults(overrides: Partial<SettableDefaults> = {}): SettableDefaults {
  return {
    env: {
      GREETING: { value: 'hello', settable: true },
      DEBUG: { value: '0', settable: true },
    },
    args: { name: 'args', value: [], settable: true },
    mounts: { state: { source: '/var/lib/vol', settable: true } },
    devices: { fuse: { path: '/dev/fuse', settable: false } },
    ...overrides,
  };
}

/** Effective settings equal to the config defaults; `overrides` replace whole fields. */
export function effective(overrides: Partial<EffectiveSettings> = {}): EffectiveSettings {
  return {
    env: { GREETING: 'hello', DEBUG: '0' },
    args: [],
    mounts: { state: '/var/lib/vol' },
    devices: { fuse: '/dev/fuse' },
    ...overrides,
  };
}

/** Overrides for `installed`: settings and defaults are merged field by field into the defaults. */
export type InstalledOverrides = Partial<Omit<InstalledPlugin, 'settings' | 'defaults'>> & {
  settings?: Partial<EffectiveSettings>;
  defaults?: Partial<SettableDefaults>;
};

/** The default plugin installed from REMOTE, enabled, not in use, every setting at its default. */
export function installed(overrides: InstalledOverrides = {}): InstalledPlugin {
  const { settings, defaults: defaultOverrides, ...rest } = overrides;
  return {
    id: 'a'.repeat(64),
    name: NAME,
    reference: REMOTE,
    enabled: true,
    inUse: false,
    capabilities: ['volumedriver'],
    diffIds: ['sha256:' + 'b'.repeat(64)],
    privileges: privs(),
    ...rest,
    settings: effective(settings),
    defaults: defaults(defaultOverrides),
  };
}

/** Remote facts: normalised remote -> required privileges, or the Error fetching them raised. */
export function facts(
  map: Record<string, readonly PluginPrivilege[] | Error> = { [REMOTE]: privs() },
): RemoteFacts {
  return {
    remotes: new Map(
      Object.entries(map).map(([remote, value]) => [
        remote,
        value instanceof Error ? value : remoteInfo(remote, { privileges: [...value] }),
      ]),
    ),
  };
}

/** What the registry says about `remote`: same content as `installed()` unless overridden. */
export function remoteInfo(remote: string, overrides: Partial<RemoteInfo> = {}): RemoteInfo {
  return {
    remote,
    pullRemote: remote,
    digest: 'sha256:' + 'd'.repeat(64),
    privileges: [],
    diffIds: ['sha256:' + 'b'.repeat(64)],
    ...overrides,
  };
}

/** Facts with nothing fetched. */
export function noFacts(): RemoteFacts {
  return { remotes: new Map() };
}

/**
 * An inventory owning `names` for SET. Each entry's key defaults to the name without its tag, its
 * remote to REMOTE and its inUse policy to Wait; `overrides` adjust single entries by name.
 */
export function inventory(
  names: readonly string[] = [],
  overrides: Record<string, Partial<OwnedPlugin>> = {},
): Inventory {
  const plugins: Record<string, OwnedPlugin> = {};
  for (const name of names) {
    plugins[name] = {
      key: name.split(':')[0] ?? name,
      remote: REMOTE,
      inUse: 'Wait',
      set: SET,
      ...overrides[name],
    };
  }
  return { version: 2, plugins };
}
