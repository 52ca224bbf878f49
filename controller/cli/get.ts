/**
 * `plugctl get [NAME...] [-l SELECTOR] [-f PATH...] [-o FORMAT] [--no-headers] [-w]`: the host's
 * plugins as plugctl sees them, which of them it manages, what a running controller last recorded,
 * and, with -f, whether each declared plugin is in sync with its document. Tables and `name` are for
 * people; `-o json|yaml` print DockerPlugin objects (spec as declared, or as installed when no
 * document is at hand, plus this host's status) that can be applied again. `-w` keeps printing
 * what changes until interrupted.
 */
import { dirname, resolve } from 'node:path';
import { API_VERSION, KIND, type DockerPluginSpec, type PluginSettings } from '../api/types.ts';
import type { LoadedDocument } from '../api/load.ts';
import { defaultLocalName, parseReference } from '../api/reference.ts';
import { matchesSelector } from '../api/selector.ts';
import { describeError, PlugctlError } from '../errors.ts';
import { readInventory, type OwnedPlugin } from '../reconcile/inventory.ts';
import { phaseOf, PHASE_LABELS, type Condition, type PluginStatus } from '../reconcile/status.ts';
import { SECRET_MASK } from '../api/secrets.ts';
import { withDeclaredIdentity } from '../reconcile/identity.ts';
import { readStatuses } from '../reconcile/status-file.ts';
import { reconcilePass } from '../reconcile/once.ts';
import type { PluginPlan } from '../reconcile/plan.ts';
import type { EffectiveSettings, InstalledPlugin, PluginUsage } from '../store/store.ts';
import { describeUsage } from '../store/usage.ts';
import type { CommandContext } from './context.ts';
import { prepareOneShot, type OneShotOptions } from './one-shot.ts';
import {
  parseOutputFormat,
  renderJson,
  renderJsonPath,
  renderTable,
  renderYamlStream,
  type OutputFormat,
} from './output.ts';
import { parseSelector } from './selector.ts';

/** Options of `get`. */
export interface GetOptions extends OneShotOptions {
  /** `-o`, parsed by parseOutputFormat */
  output: string;
  /** `-l`: kubectl's label-selector syntax, matched against the documents' labels */
  selector?: string;
  /** false with --no-headers */
  headers: boolean;
  /** `-w`: keep printing changes until interrupted */
  watch: boolean;
  /** how often `-w` looks again, ms */
  watchIntervalMs?: number;
}

/** status of an object `get` prints: this host's view of one plugin. */
export interface HostPluginStatus {
  /** local plugin name */
  plugin: string;
  pluginID?: string;
  reference?: string;
  enabled?: boolean;
  /** false for a plugin that is declared (or has a status) but is not on the host */
  installed: boolean;
  /** plugctl owns it (it is in the ownership inventory) */
  managed: boolean;
  /** what uses an enabled plugin (volumes, networks, containers' log drivers), as the store tells it */
  usage?: PluginUsage;
  /** the apply set that owns it; `(unassigned)` for plugins owned before apply sets existed */
  set?: string;
  /** with -f: InSync, the pending outcome, or Blocked with its reason */
  sync?: string;
  /** effective settings of the installed plugin */
  settings?: EffectiveSettings;
  capabilities?: string[];
  observedHash?: string;
  lastAction?: string;
  lastError?: PluginStatus['lastError'];
  lastReconcileTime?: string;
  /** what a running controller (`plugctl run`) last recorded */
  conditions?: Condition[];
}

/** One DockerPlugin object as `get -o json|yaml` prints it. */
export interface PluginObject {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: DockerPluginSpec;
  status: HostPluginStatus;
}

/** What `get` knows of one plugin, from every source. */
export interface GetEntry {
  key: string;
  plugin: string;
  installed?: InstalledPlugin;
  /** what uses the installed plugin, as the store tells it */
  usage?: PluginUsage;
  owned?: OwnedPlugin;
  doc?: LoadedDocument;
  sync?: string;
  status?: PluginStatus;
}

/** Runs `get`; returns the exit code. */
export async function getCommand(
  names: readonly string[],
  options: GetOptions,
  ctx: CommandContext,
): Promise<number> {
  const format = parseOutputFormat(options.output);
  const selector = parseSelector(options.selector ?? '');
  const pick = (entries: readonly GetEntry[]): { found: GetEntry[]; missing: string[] } => {
    const selected = entries.filter((e) => matchesSelector(selector, labelsOf(e) ?? {}));
    if (names.length === 0) return { found: selected, missing: [] };
    const found = new Set<GetEntry>();
    const missing: string[] = [];
    for (const name of names) {
      const hits = selected.filter((e) => matchesName(e, name));
      if (hits.length === 0) missing.push(name);
      for (const hit of hits) found.add(hit);
    }
    return { found: [...found], missing };
  };
  const first = await collect(options, ctx);
  const { found, missing } = pick(first.entries);
  for (const name of missing) {
    const error = new PlugctlError('OBJECT_NOT_FOUND', `dockerplugin "${name}" not found`);
    ctx.io.err(`error: ${describeError(error)}\n`);
  }
  const single = names.length === 1 && found.length === 1;
  const withSync = (options.filename ?? []).length > 0;
  const withStatus = first.entries.some((e) => e.status !== undefined);
  const columns = { withSync, withStatus, wide: format.kind === 'wide' };
  if (found.length === 0 && isTable(format) && !options.watch) {
    if (names.length === 0) ctx.io.err('No plugins found.\n');
  } else {
    ctx.io.out(await render(found, format, { ...columns, headers: options.headers, single }));
  }
  const failed = first.failed || missing.length > 0;
  if (!options.watch) return failed ? 1 : 0;
  return watch(found, format, columns, options, ctx, pick);
}

/** Re-reads every interval and prints the objects that changed, until SIGINT or SIGTERM. */
async function watch(
  initial: readonly GetEntry[],
  format: OutputFormat,
  columns: Columns,
  options: GetOptions,
  ctx: CommandContext,
  pick: (entries: readonly GetEntry[]) => { found: GetEntry[] },
): Promise<number> {
  const seen = new Map(initial.map((e) => [e.key === '' ? e.plugin : e.key, signature(e)]));
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!stop.signal.aborted) {
      await sleep(options.watchIntervalMs ?? 1000, stop.signal);
      if (stop.signal.aborted) break;
      const { found } = pick((await collect(options, ctx)).entries);
      const changed: GetEntry[] = [];
      const now = new Set<string>();
      for (const entry of found) {
        const id = entry.key === '' ? entry.plugin : entry.key;
        now.add(id);
        const sig = signature(entry);
        if (seen.get(id) !== sig) changed.push(entry);
        seen.set(id, sig);
      }
      for (const id of [...seen.keys()]) if (!now.has(id)) seen.delete(id);
      if (changed.length === 0) continue;
      ctx.io.out(
        await render(changed, format, { ...columns, headers: false, single: false, watching: true }),
      );
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** What an entry looks like, without the times that change on every no-op reconcile. */
function signature(entry: GetEntry): string {
  const { lastReconcileTime: _ignored, ...status } = toObject(entry).status;
  return JSON.stringify(status);
}

/** Reads the host, the inventory, the status file and (with -f) plans against the documents. */
async function collect(
  options: GetOptions,
  ctx: CommandContext,
): Promise<{ entries: GetEntry[]; failed: boolean }> {
  const store = await ctx.openStore({ readOnly: true });
  const [listed, inventory, statuses] = await Promise.all([
    store.list(),
    readInventory(ctx.options.stateDir),
    readStatuses(ctx.options.stateDir),
  ]);
  // a plugin fetched from a registry mirror is shown by its declared remote (reconcile/identity.ts)
  const plugins = withDeclaredIdentity(listed, inventory);
  // One lookup for every plugin: a few listings, whatever the number of plugins.
  const usage = await store.usage(plugins);
  const entries = new Map<string, GetEntry>();
  const entryOf = (plugin: string, key: string): GetEntry => {
    let entry = entries.get(plugin);
    if (entry === undefined) entries.set(plugin, (entry = { key, plugin }));
    if (entry.key === '') entry.key = key;
    return entry;
  };
  for (const p of plugins) {
    const owned = inventory.plugins[p.name];
    const entry = entryOf(p.name, owned?.key ?? '');
    entry.installed = { ...p, settings: maskSecrets(p.settings, Object.keys(owned?.secrets ?? {})) };
    const used = usage.get(p.name);
    if (used !== undefined) entry.usage = used;
    if (owned !== undefined) entry.owned = owned;
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
        usage: store,
        inspector: shot.inspector,
        stateDir: ctx.options.stateDir,
        secrets: ctx.secrets(),
        logger: ctx.logger,
      },
    );
    const docs = new Map(documents.loaded.map((d) => [d.doc.metadata.name, d]));
    for (const plan of pass.plans) {
      const entry = entryOf(plan.name, plan.key);
      entry.key = plan.key;
      entry.sync = syncState(plan);
      const doc = docs.get(plan.key);
      if (doc !== undefined) entry.doc = doc;
      // the engine reports secret env values in plain text: get never shows them
      const secretNames = Object.keys(plan.desired?.secrets ?? {});
      if (entry.installed !== undefined && secretNames.length > 0) {
        entry.installed = {
          ...entry.installed,
          settings: maskSecrets(entry.installed.settings, secretNames),
        };
      }
    }
  }
  for (const status of Object.values(statuses)) {
    const entry = entryOf(status.plugin, status.key);
    entry.status = status;
    const owned = inventory.plugins[status.plugin];
    if (owned !== undefined) entry.owned = owned;
  }
  const list = [...entries.values()].sort((a, b) => a.plugin.localeCompare(b.plugin));
  return { entries: list, failed };
}

function labelsOf(entry: GetEntry): Record<string, string> | undefined {
  return entry.doc?.doc.metadata.labels ?? entry.status?.labels;
}

/** A NAME argument names a document (metadata.name), a local plugin name, or an ID prefix. */
function matchesName(entry: GetEntry, name: string): boolean {
  if (name === entry.key || name === entry.plugin) return true;
  if (entry.key === '' && name === nameFor(entry.plugin)) return true;
  if (!name.includes(':') && `${name}:latest` === entry.plugin) return true;
  const id = entry.installed?.id ?? entry.status?.pluginID;
  return name.length >= 6 && id !== undefined && /^[0-9a-f]+$/.test(name) && id.startsWith(name);
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

/**
 * The DockerPlugin object of an entry: the document's spec when one is at hand (build contexts made
 * absolute, so the object applies from anywhere), otherwise the spec that reproduces the installed
 * plugin (its remote, name, state, granted privileges and the settings that differ from defaults).
 */
export function toObject(entry: GetEntry): PluginObject {
  const labels = labelsOf(entry);
  const annotations: Record<string, string> =
    entry.owned?.set !== undefined ? { 'plugctl.dev/apply-set': entry.owned.set } : {};
  const p = entry.installed;
  const s = entry.status;
  const status: HostPluginStatus = {
    plugin: entry.plugin,
    ...(p !== undefined || s?.pluginID !== undefined ? { pluginID: p?.id ?? s?.pluginID } : {}),
    ...(p !== undefined || s?.reference !== undefined ? { reference: p?.reference ?? s?.reference } : {}),
    ...(p !== undefined || s?.enabled !== undefined ? { enabled: p?.enabled ?? s?.enabled } : {}),
    installed: p !== undefined,
    managed: entry.owned !== undefined,
    ...(entry.usage !== undefined ? { usage: entry.usage } : {}),
    ...(entry.owned !== undefined ? { set: entry.owned.set ?? UNASSIGNED } : {}),
    ...(entry.sync !== undefined ? { sync: entry.sync } : {}),
    ...(p !== undefined ? { settings: p.settings, capabilities: p.capabilities } : {}),
    ...(s?.observedHash !== undefined ? { observedHash: s.observedHash } : {}),
    ...(s?.lastAction !== undefined ? { lastAction: s.lastAction } : {}),
    ...(s?.lastError !== undefined ? { lastError: s.lastError } : {}),
    ...(s !== undefined ? { lastReconcileTime: s.lastReconcileTime, conditions: s.conditions } : {}),
  };
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: entry.key !== '' ? entry.key : nameFor(entry.plugin),
      ...(labels !== undefined ? { labels } : {}),
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    spec: entry.doc !== undefined ? declaredSpec(entry.doc) : observedSpec(entry),
    status,
  };
}

function declaredSpec(doc: LoadedDocument): DockerPluginSpec {
  const spec = structuredClone(doc.doc.spec);
  if (spec.build !== undefined) spec.build.context = resolve(dirname(doc.origin.file), spec.build.context);
  return spec;
}

function observedSpec(entry: GetEntry): DockerPluginSpec {
  const p = entry.installed;
  const remote = entry.owned?.remote ?? p?.reference ?? entry.status?.reference ?? entry.plugin;
  const privileges = (p?.privileges ?? []).map(({ name, value }) => ({ name, value }));
  const settings = p === undefined ? {} : changedSettings(p);
  return {
    remote,
    ...(impliedName(remote) === entry.plugin ? {} : { alias: entry.plugin }),
    ...(p !== undefined ? { enabled: p.enabled } : {}),
    ...(privileges.length > 0 ? { privileges } : {}),
    ...(Object.keys(settings).length > 0 ? { settings } : {}),
    ...(entry.owned !== undefined ? { inUse: entry.owned.inUse } : {}),
  };
}

/** The local name `remote` gets without an alias; undefined when it is no reference. */
function impliedName(remote: string): string | undefined {
  try {
    return defaultLocalName(parseReference(remote));
  } catch {
    return undefined;
  }
}

/** The settings of an installed plugin that differ from its config's defaults. */
function changedSettings(p: InstalledPlugin): PluginSettings {
  const settings: PluginSettings = {};
  const env = Object.fromEntries(
    Object.entries(p.settings.env).filter(([k, v]) => p.defaults.env[k]?.value !== v),
  );
  if (Object.keys(env).length > 0) settings.env = env;
  if (p.settings.args.join('\0') !== p.defaults.args.value.join('\0')) settings.args = p.settings.args;
  const mounts = Object.fromEntries(
    Object.entries(p.settings.mounts).filter(([k, v]) => p.defaults.mounts[k]?.source !== v),
  );
  if (Object.keys(mounts).length > 0) settings.mounts = mounts;
  const devices = Object.fromEntries(
    Object.entries(p.settings.devices).filter(([k, v]) => p.defaults.devices[k]?.path !== v),
  );
  if (Object.keys(devices).length > 0) settings.devices = devices;
  return settings;
}

/** A DNS label for a plugin no document names: `127.0.0.1:5000/test/vol:1.0` -> `vol`. */
export function nameFor(plugin: string): string {
  const base = plugin.replace(/@.*$/, '').split('/').at(-1)!.replace(/:.*$/, '');
  const label = base
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label === '' ? 'plugin' : label;
}

interface Columns {
  withSync: boolean;
  withStatus: boolean;
  wide: boolean;
}

function isTable(format: OutputFormat): boolean {
  return format.kind === 'table' || format.kind === 'wide';
}

async function render(
  entries: readonly GetEntry[],
  format: OutputFormat,
  options: Columns & { headers: boolean; single: boolean; watching?: boolean },
): Promise<string> {
  const objects = entries.map(toObject);
  switch (format.kind) {
    case 'name':
      return objects.map((o) => `dockerplugin/${o.metadata.name}\n`).join('');
    case 'json':
      // kubectl's shape: one object for `get NAME`, else a List (one object per line when watching)
      if (options.watching === true) return objects.map((o) => JSON.stringify(o) + '\n').join('');
      return renderJson(options.single ? objects[0] : list(objects));
    case 'yaml':
      return options.watching === true && objects.length > 0
        ? `---\n${await renderYamlStream(objects)}`
        : renderYamlStream(objects);
    case 'jsonpath': {
      const text = await renderJsonPath(format.template, options.single ? objects[0] : list(objects));
      return text.endsWith('\n') || text === '' ? text : `${text}\n`;
    }
    default:
      return tableOf(entries, options);
  }
}

function list(items: readonly PluginObject[]): { apiVersion: 'v1'; kind: 'List'; items: PluginObject[] } {
  return { apiVersion: 'v1', kind: 'List', items: [...items] };
}

function statusText(status: PluginStatus | undefined): string {
  if (status === undefined) return '-';
  const phase = phaseOf(status);
  const ready = status.conditions.find((c) => c.type === 'Ready');
  const label = PHASE_LABELS[phase];
  return phase === 'ready' ? label : `${label}: ${ready?.reason ?? ''} ${ready?.message ?? ''}`.trimEnd();
}

function tableOf(entries: readonly GetEntry[], options: Columns & { headers: boolean }): string {
  const header = [
    'NAME',
    'PLUGIN',
    'ENABLED',
    'MANAGED',
    'SET',
    'ID',
    'REFERENCE',
    'IN USE BY',
    ...(options.withStatus ? ['STATUS'] : []),
    ...(options.withSync ? ['SYNC'] : []),
    ...(options.wide ? ['CAPABILITIES', 'LAST ACTION', 'SETTINGS'] : []),
  ];
  const rows = entries.map((e) => {
    const o = toObject(e);
    const id = o.status.pluginID ?? '';
    const settings = o.spec.settings ?? {};
    return [
      e.key === '' ? '-' : e.key,
      e.plugin,
      o.status.enabled === undefined ? '-' : String(o.status.enabled),
      o.status.managed ? 'yes' : 'no',
      o.status.set ?? '-',
      id === '' ? '-' : options.wide ? id : id.slice(0, 12),
      o.status.reference ?? e.doc?.doc.spec.remote ?? '',
      o.status.usage === undefined ? '-' : describeUsage(o.status.usage),
      ...(options.withStatus ? [statusText(e.status)] : []),
      ...(options.withSync ? [e.sync ?? '-'] : []),
      ...(options.wide
        ? [
            (o.status.capabilities ?? []).join(',') || '-',
            o.status.lastAction ?? '-',
            [
              ...Object.entries(settings.env ?? {}).map(([k, v]) => `${k}=${v}`),
              ...(settings.args !== undefined ? [`args=${settings.args.join(' ')}`] : []),
              ...Object.entries(settings.mounts ?? {}).map(([k, v]) => `${k}.source=${v}`),
              ...Object.entries(settings.devices ?? {}).map(([k, v]) => `${k}.path=${v}`),
            ].join(' ') || '-',
          ]
        : []),
    ];
  });
  return renderTable(header, rows, options.headers);
}
