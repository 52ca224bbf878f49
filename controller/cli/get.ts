/**
 * `plugctl get [-f PATH...] [-o table|json|yaml]`: the host's plugins as plugctl sees them, which
 * of them it manages, and, with -f, whether each declared plugin is in sync with its document.
 */
import { stringify } from 'yaml';
import { SECRET_MASK } from '../api/secrets.ts';
import { readInventory } from '../reconcile/inventory.ts';
import { withDeclaredIdentity } from '../reconcile/identity.ts';
import { phaseOf, type PluginStatus } from '../reconcile/status.ts';
import { readStatuses } from '../reconcile/status-file.ts';
import { reconcilePass } from '../reconcile/once.ts';
import type { PluginPlan } from '../reconcile/plan.ts';
import type { EffectiveSettings } from '../store/store.ts';
import type { CommandContext } from './context.ts';
import { prepareOneShot, type OneShotOptions } from './one-shot.ts';

/** Options of `get`. */
export interface GetOptions extends OneShotOptions {
  output: 'table' | 'json' | 'yaml';
}

/** One row of `get`: a plugin installed, declared, or both. */
export interface PluginRow {
  /** document key when managed or declared, else empty */
  key: string;
  plugin: string;
  id: string;
  reference: string;
  enabled: boolean | null;
  /** effective settings of an installed plugin (json and yaml output; the table leaves them out) */
  settings?: EffectiveSettings;
  managed: boolean;
  /** the apply set that owns it; `(unassigned)` for plugins owned before apply sets existed */
  set?: string;
  /** with -f: InSync, the pending outcome, or Blocked with its reason */
  sync?: string;
  /** what a running controller (`plugctl run`) last recorded for this plugin */
  status?: PluginStatus;
}

/** Runs `get`; returns the exit code. */
export async function getCommand(options: GetOptions, ctx: CommandContext): Promise<number> {
  const store = await ctx.openStore({ readOnly: true });
  const [listed, inventory, statuses] = await Promise.all([
    store.list(),
    readInventory(ctx.options.stateDir),
    readStatuses(ctx.options.stateDir),
  ]);
  // a plugin fetched from a registry mirror is shown by its declared remote (reconcile/identity.ts)
  const plugins = withDeclaredIdentity(listed, inventory);
  const rows = new Map<string, PluginRow>();
  for (const p of plugins) {
    const owned = inventory.plugins[p.name];
    rows.set(p.name, {
      key: owned?.key ?? '',
      plugin: p.name,
      id: p.id,
      reference: p.reference,
      enabled: p.enabled,
      settings: maskSecrets(p.settings, Object.keys(owned?.secrets ?? {})),
      managed: owned !== undefined,
      ...(owned !== undefined ? { set: owned.set ?? UNASSIGNED } : {}),
    });
  }
  let failed = false;
  const filename = options.filename ?? [];
  if (filename.length > 0) {
    const shot = await prepareOneShot({ ...options, filename }, ctx, true);
    const { documents } = shot;
    failed = documents.errorCount > 0;
    const pass = await reconcilePass(
      {
        desired: documents.desired,
        skipped: documents.skipped,
        prune: shot.prune.prune,
        set: shot.set,
        dryRun: true,
      },
      {
        store,
        inspector: shot.inspector,
        stateDir: ctx.options.stateDir,
        secrets: ctx.secrets(),
        logger: ctx.logger,
      },
    );
    for (const plan of pass.plans) {
      const row = rows.get(plan.name) ?? {
        key: plan.key,
        plugin: plan.name,
        id: '',
        reference: plan.desired?.remote ?? '',
        enabled: null,
        managed: false,
      };
      row.key = plan.key;
      row.sync = syncState(plan);
      if (row.settings !== undefined) {
        row.settings = maskSecrets(row.settings, Object.keys(plan.desired?.secrets ?? {}));
      }
      rows.set(plan.name, row);
    }
  }
  for (const status of Object.values(statuses)) {
    const row = rows.get(status.plugin) ?? {
      key: status.key,
      plugin: status.plugin,
      id: '',
      reference: status.reference ?? '',
      enabled: null,
      managed: Object.hasOwn(inventory.plugins, status.plugin),
    };
    row.status = status;
    rows.set(status.plugin, row);
  }
  const list = [...rows.values()].sort((a, b) => a.plugin.localeCompare(b.plugin));
  if (options.output === 'json') ctx.io.out(`${JSON.stringify(list, null, 2)}\n`);
  else if (options.output === 'yaml') ctx.io.out(stringify(list));
  else ctx.io.out(renderTable(list, filename.length > 0, Object.keys(statuses).length > 0));
  return failed ? 1 : 0;
}

/**
 * The installed settings with the env values of declared secrets masked: the engine reports them in
 * plain text, and `get` never shows a secret.
 */
function maskSecrets(settings: EffectiveSettings, names: readonly string[]): EffectiveSettings {
  if (names.length === 0) return settings;
  const env = { ...settings.env };
  for (const name of names) if (Object.hasOwn(env, name)) env[name] = SECRET_MASK;
  return { ...settings, env };
}

/** How `get` shows the set of plugins owned before apply sets existed (no set prunes them). */
const UNASSIGNED = '(unassigned)';

function syncState(plan: PluginPlan): string {
  switch (plan.outcome) {
    case 'unchanged':
      return 'InSync';
    case 'suspended':
      return 'Suspended';
    case 'skipped':
      return `Skipped: ${plan.actions[0]?.reason ?? ''}`;
    case 'blocked': {
      const block = plan.actions.find((a) => a.type === 'blocked');
      return block === undefined
        ? 'OutOfSync (blocked)'
        : `OutOfSync (blocked ${block.code}): ${block.reason}`;
    }
    default:
      return `OutOfSync (${plan.outcome})`;
  }
}

function statusText(status: PluginStatus | undefined): string {
  if (status === undefined) return '-';
  const phase = phaseOf(status);
  const ready = status.conditions.find((c) => c.type === 'Ready');
  const label = {
    ready: 'Ready',
    reconciling: 'Reconciling',
    stalled: 'Stalled',
    suspended: 'Suspended',
    skipped: 'Skipped',
  }[phase];
  return phase === 'ready' ? label : `${label}: ${ready?.reason ?? ''} ${ready?.message ?? ''}`.trimEnd();
}

function renderTable(rows: readonly PluginRow[], withSync: boolean, withStatus: boolean): string {
  const header = [
    'NAME',
    'PLUGIN',
    'ENABLED',
    'MANAGED',
    'SET',
    'ID',
    'REFERENCE',
    ...(withStatus ? ['STATUS'] : []),
    ...(withSync ? ['SYNC'] : []),
  ];
  const cells = rows.map((r) => [
    r.key === '' ? '-' : r.key,
    r.plugin,
    r.enabled === null ? '-' : String(r.enabled),
    r.managed ? 'yes' : 'no',
    r.set ?? '-',
    r.id === '' ? '-' : r.id.slice(0, 12),
    r.reference,
    ...(withStatus ? [statusText(r.status)] : []),
    ...(withSync ? [r.sync ?? '-'] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string =>
    c
      .map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  if (rows.length === 0) return 'No plugins installed.\n';
  return `${[line(header), ...cells.map(line)].join('\n')}\n`;
}
