/**
 * The planner's view of one declared plugin: a document with every default applied and its
 * reference normalised, so plan() never has to know about YAML, schemas or defaults.
 */
import { dirname, resolve } from 'node:path';
import type { LoadedDocument } from '../api/load.ts';
import { formatReference } from '../api/reference.ts';
import type { SecretValue } from '../api/secrets.ts';
import type {
  HealthCheckSpec,
  InUsePolicy,
  Origin,
  PluginPrivilege,
  PluginSettings,
  SecretSource,
  UpgradePolicy,
} from '../api/types.ts';
import { withDefaults } from '../api/validate.ts';
import type { ErrorCode } from '../errors.ts';

/**
 * Declared settings as the planner compares them: an env value is a literal, or a resolved secret
 * (SecretValue, which never shows its plain text).
 */
export interface DesiredSettings extends Omit<PluginSettings, 'env'> {
  env?: Record<string, string | SecretValue>;
}

/** One declared plugin, fully defaulted. */
export interface DesiredPlugin {
  /** metadata.name: the key of everything (queue, inventory, status) */
  key: string;
  /** local plugin name on the host */
  name: string;
  /**
   * normalised remote reference, e.g. `docker.io/vieux/sshfs:1.2`; for a built plugin, its local
   * name as a reference (nothing is pulled from it)
   */
  remote: string;
  /** present for a plugin built from a context: the context's absolute path */
  build?: { context: string };
  enabled: boolean;
  /** the exact grants consented to, or 'all' for grantAllPrivileges */
  privileges: PluginPrivilege[] | 'all';
  /** literal settings, and the secrets once resolved (reconcile/secrets.ts) */
  settings: DesiredSettings;
  /**
   * env names whose value is a secret, with where it is read from; until resolved they are absent
   * from settings.env and the planner installs or changes nothing
   */
  secrets?: Record<string, SecretSource>;
  /** why the secrets could not be resolved; the planner reports it as the plugin's blocked reason */
  secretError?: { code: ErrorCode; message: string };
  upgradePolicy: UpgradePolicy;
  inUse: InUsePolicy;
  enableTimeoutSeconds: number;
  suspend: boolean;
  dependsOn: string[];
  /** how the enabled plugin is probed (spec.healthCheck, defaulted) */
  healthCheck?: Required<HealthCheckSpec>;
  /** where the document was written, for messages */
  origin?: Origin;
  /**
   * how the document selected this host: by its persistent labels, or only thanks to a
   * `--node-labels` override (then its plugin is never removed because the host stopped matching);
   * absent means `labels`
   */
  selectedBy?: 'labels' | 'override';
}

/**
 * Builds the planner's view of a loaded document. Settings are taken as written, not defaulted:
 * an absent `args` means "the plugin's default args", which only the installed config knows.
 */
export function toDesired(loaded: LoadedDocument): DesiredPlugin {
  const spec = withDefaults(loaded.doc.spec);
  return {
    key: loaded.doc.metadata.name,
    name: loaded.localName,
    remote: formatReference(loaded.reference),
    // Relative to the declaring file, as a Git repository is checked out anywhere.
    ...(spec.build !== undefined
      ? { build: { context: resolve(dirname(loaded.origin.file), spec.build.context) } }
      : {}),
    enabled: spec.enabled,
    privileges: spec.grantAllPrivileges ? 'all' : spec.privileges,
    ...splitSecrets(loaded.doc.spec.settings ?? {}),
    upgradePolicy: spec.upgrade.policy,
    inUse: spec.inUse,
    enableTimeoutSeconds: spec.enableTimeoutSeconds,
    suspend: spec.suspend,
    dependsOn: spec.dependsOn,
    healthCheck: spec.healthCheck,
    origin: loaded.origin,
  };
}

/** Literal settings apart from the env values given by reference (valueFrom). */
function splitSecrets(settings: PluginSettings): Pick<DesiredPlugin, 'settings' | 'secrets'> {
  const { env, ...rest } = structuredClone(settings);
  if (env === undefined) return { settings: rest };
  const literal: Record<string, string> = {};
  const secrets: Record<string, SecretSource> = {};
  for (const [name, value] of Object.entries(env)) {
    if (typeof value === 'string') literal[name] = value;
    else secrets[name] = value.valueFrom;
  }
  return {
    settings: { ...rest, env: literal },
    ...(Object.keys(secrets).length > 0 ? { secrets } : {}),
  };
}
