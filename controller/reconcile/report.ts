/**
 * What a reconcile did to one plugin, told to whoever assembled the controller (Kubernetes mode turns
 * it into Events on the DockerPlugin), and the pure mapping of it to events. reconcile/ knows nothing
 * of the cluster: an event here is only its type, reason, action and note; kube/events.ts records it.
 *
 * One reconcile gives at most two events: one Normal event naming its most significant change (an
 * install is Pulled, not Pulled + Configured + Enabled) and one Warning for its failure, whose reason
 * is the failure's code, as the Stalled condition's is. Notes name settings, never their values.
 */
import type { ErrorCode, FailureKind } from '../errors.ts';
import type { StepResult } from './apply.ts';
import type { Action } from './plan.ts';

/** What one reconcile did to one plugin (one per plan that acted or failed). */
export interface ReconcileReport {
  /** the document's key (a DockerPlugin's name in Kubernetes mode) */
  key: string;
  /** the local plugin name */
  plugin: string;
  /** the actions run, in order, each with whether it succeeded */
  steps: readonly StepResult[];
  failure?: { kind: FailureKind; code: ErrorCode; message: string };
}

/** An event about the document a report is for; who it regards and who reports is the recorder's. */
export interface ReportedEvent {
  type: 'Normal' | 'Warning';
  /** CamelCase why for a change (Pulled, Reconfigured), the error code for a failure */
  reason: string;
  /** CamelCase what was done or tried: Pull, Configure, Enable, Remove, Restart, ... */
  action: string;
  note: string;
}

/** Failures whose steps before them were undone: reporting those steps as changes would mislead. */
const UNDONE: ReadonlySet<string> = new Set(['UPGRADE_ROLLED_BACK', 'ROLLBACK_FAILED']);

/**
 * Failures that are the normal course of things and get no Event: a node waiting for its turn in a
 * rollout asks again every few seconds, and its status already says so.
 */
const QUIET: ReadonlySet<string> = new Set(['ROLLOUT_WAITING']);

/** Action type -> the event's action and the reason of a success, most significant first. */
const CHANGES: readonly (readonly [Action['type'], string, string])[] = [
  ['upgrade', 'Upgrade', 'Upgraded'],
  ['pull', 'Pull', 'Pulled'],
  ['build', 'Build', 'Built'],
  ['remove', 'Remove', 'Removed'],
  ['set', 'Configure', 'Reconfigured'],
  ['enable', 'Enable', 'Enabled'],
  ['disable', 'Disable', 'Disabled'],
  ['adopt', 'Adopt', 'Adopted'],
];

const ACTION_NAMES: Readonly<Record<Action['type'], string>> = {
  upgrade: 'Upgrade',
  pull: 'Pull',
  build: 'Build',
  remove: 'Remove',
  set: 'Configure',
  enable: 'Enable',
  disable: 'Disable',
  adopt: 'Adopt',
  verify: 'Verify',
  noop: 'Reconcile',
  blocked: 'Reconcile',
};

/** The events of one report: a Normal one for what changed, a Warning one for a failure. */
export function eventsOf(report: ReconcileReport): ReportedEvent[] {
  const events: ReportedEvent[] = [];
  const done = report.steps.filter((s) => s.ok && s.action.type !== 'noop' && s.action.type !== 'blocked');
  const undone = report.failure !== undefined && UNDONE.has(report.failure.code);
  const change = undone ? undefined : CHANGES.find(([type]) => done.some((s) => s.action.type === type));
  if (change !== undefined) {
    const [type, action, reason] = change;
    const main = done.find((s) => s.action.type === type)!.action;
    const steps = done.map((s) => describeStep(s.action)).join(', ');
    events.push({ type: 'Normal', reason, action, note: `${headline(report.plugin, main)} (${steps})` });
  }
  const failure = report.failure;
  if (failure !== undefined && !QUIET.has(failure.code)) {
    const failed = report.steps.find((s) => !s.ok)?.action;
    const action = UNDONE.has(failure.code) ? 'Rollback' : ACTION_NAMES[failed?.type ?? 'blocked'];
    events.push({ type: 'Warning', reason: failure.code, action, note: failure.message });
  }
  return events;
}

/** The Warning event of a plugin restarted because it stopped answering its health probe. */
export function restartEvent(plugin: string, lastError: string): ReportedEvent {
  return {
    type: 'Warning',
    reason: 'Unresponsive',
    action: 'Restart',
    note: `${plugin} did not answer Plugin.Activate (${lastError}): restarted it (disable, enable)`,
  };
}

function headline(plugin: string, action: Action): string {
  switch (action.type) {
    case 'upgrade':
      return `upgraded ${plugin} to ${content(action)}`;
    case 'pull':
      return plugin === action.remote
        ? `pulled ${content(action)}`
        : `pulled ${plugin} from ${content(action)}`;
    case 'build':
      return `built ${plugin} from ${action.context}`;
    case 'remove':
      return `removed ${plugin}: ${action.reason}`;
    case 'set':
      return `reconfigured ${plugin}: ${settingNames(action).join(', ') || 'settings'}`;
    case 'enable':
      return `enabled ${plugin}: ${action.reason}`;
    case 'disable':
      return `disabled ${plugin}: ${action.reason}`;
    default:
      return `${action.type} ${plugin}: ${action.reason}`;
  }
}

/** `remote@digest`, and the mirror it came from when one served it. */
function content(action: Extract<Action, { type: 'pull' | 'upgrade' }>): string {
  return `${action.remote}@${action.digest}${action.source !== undefined ? ` (${action.source})` : ''}`;
}

function describeStep(action: Action): string {
  if (action.type !== 'set') return action.type;
  const names = settingNames(action);
  return names.length === 0 ? 'set' : `set ${names.join(' ')}`;
}

/**
 * The names of the settings a set action changes (or declares, when the changes are known only once
 * the plugin is pulled): `env TOKEN`, `args`, `mount data`; never a value, secret or not.
 */
export function settingNames(action: Extract<Action, { type: 'set' }>): string[] {
  if (action.changes !== undefined) {
    // engine syntax: NAME=value, args=..., mount.source=...; a SecretValue shows as NAME=<secret>
    return [...new Set(action.changes.map((change) => String(change).split('=')[0] ?? ''))].filter(
      (name) => name !== '',
    );
  }
  const declared = action.declared;
  return [
    ...Object.keys(declared.env ?? {}).map((name) => `env ${name}`),
    ...(declared.args !== undefined ? ['args'] : []),
    ...Object.keys(declared.mounts ?? {}).map((name) => `mount ${name}`),
    ...Object.keys(declared.devices ?? {}).map((name) => `device ${name}`),
  ];
}
