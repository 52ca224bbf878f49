/**
 * One-shot reconcile for `apply`, `diff` and `get -f`: read the host, plan against the
 * declaration, and (unless dry-run) apply. When plugins wait for dependencies (spec.dependsOn), the
 * pass is repeated while it makes progress, so one `apply` brings up a whole dependency chain.
 *
 * Each declared plugin goes its own way through a pass — look up its remote, plan, apply — in a
 * pool of `concurrency` workers: a plugin whose registry is slow holds one worker until its lookup
 * or pull deadline, and every other plugin is planned and applied meanwhile instead of waiting for
 * every lookup to finish first.
 */
import type { Logger } from 'pino';
import type { RemoteInspector } from '../registry/inspect.ts';
import type {
  InstalledPlugin,
  PluginProber,
  PluginReader,
  PluginUsageReader,
  PluginWriter,
} from '../store/store.ts';
import { needsUsage, withUsage } from './usage.ts';
import type { RemoteInfo } from '../registry/inspect.ts';
import { applyPlans, type ApplyDeps, type PluginResult } from './apply.ts';
import type { DesiredPlugin } from './desired.ts';
import { gatherFacts, needsFacts } from './facts.ts';
import type { Inventory } from './inventory.ts';
import { readInventory } from './inventory.ts';
import { InventoryLedger } from './ledger.ts';
import { SecretKeeper } from './secrets.ts';
import { withDeclaredIdentity } from './identity.ts';
import { checkEnabledAnswer } from './ready-check.ts';
import { fileSecretResolver } from '../sources/secret-files.ts';
import {
  planOne,
  planPrunes,
  sameRemote,
  type PlanOptions,
  type PluginPlan,
  type SkippedDocument,
} from './plan.ts';

/** What to reconcile and how. */
export interface PassInput {
  desired: readonly DesiredPlugin[];
  /** documents of the set that do not select this host */
  skipped?: readonly SkippedDocument[];
  /** false when some documents failed to load: their plugins must not look undeclared */
  prune: boolean;
  /** the apply set: it prunes only what it owns */
  set: string;
  /** take plugins owned by another set or installed by hand into this set */
  takeOwnership?: boolean;
  dryRun: boolean;
}

/** Injected dependencies of a pass. */
export interface PassDeps {
  store: PluginReader & PluginWriter;
  /** reads privileges, content and the reference to install from the registry itself */
  inspector: RemoteInspector;
  stateDir: string;
  logger: Logger;
  concurrency?: number;
  /** what uses each plugin, for spec.inUse Wait (and shown by diff); without it the engine's refusal decides */
  usage?: PluginUsageReader;
  /** resolves secret env values; default: file mode's (files on the host, no secretKeyRef) */
  secrets?: SecretKeeper;
  /**
   * probes each plugin the pass enabled with Plugin.Activate once the passes are done (ready-check.ts);
   * without it a plugin counts as converged once enabled
   */
  prober?: Pick<PluginReader, 'inspect'> & PluginProber;
}

/** The plans of the first pass and, unless dry-run, what applying did (merged over all passes). */
export interface PassOutput {
  plans: PluginPlan[];
  results?: PluginResult[];
}

const MAX_PASSES = 10;

/**
 * Runs passes until converged, blocked, or no progress. One list call per pass. With `deps.prober`,
 * the plugins enabled by the passes are then probed, all at once (ready-check.ts).
 */
export async function reconcilePass(input: PassInput, deps: PassDeps): Promise<PassOutput> {
  const inventory = await readInventory(deps.stateDir);
  const ledger = new InventoryLedger(deps.stateDir, inventory);
  let first: PluginPlan[] | undefined;
  const merged = new Map<string, PluginResult>();
  const applyDeps: ApplyDeps = {
    store: deps.store,
    ledger,
    logger: deps.logger,
    concurrency: 1,
    ...(deps.usage !== undefined ? { usage: deps.usage } : {}),
  };
  const secrets = deps.secrets ?? new SecretKeeper(deps.stateDir, fileSecretResolver());
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const actual = withDeclaredIdentity(await deps.store.list(), ledger.snapshot());
    const { plans, results } = await planAndApply(
      input,
      { ...deps, secrets },
      actual,
      ledger.snapshot(),
      applyDeps,
    );
    first ??= plans;
    if (input.dryRun) return { plans };
    for (const result of results) merge(merged, result);
    const waiting = results.some((r) => r.failure?.code === 'DEPENDENCY_NOT_READY');
    const progressed = results.some((r) => r.steps.some((s) => s.ok && s.action.type !== 'noop'));
    if (!waiting || !progressed) break;
  }
  const results = [...merged.values()];
  if (deps.prober === undefined) return { plans: first ?? [], results };
  return {
    plans: first ?? [],
    results: await checkEnabledAnswer(results, input.desired, { store: deps.prober }),
  };
}

/**
 * One pass: every declared plugin is looked up, planned and (unless dry-run) applied on its own, at
 * most `concurrency` at a time, and beside them the prunes. Remotes declared twice are looked up once.
 */
async function planAndApply(
  input: PassInput,
  deps: PassDeps & { secrets: SecretKeeper },
  actual: readonly InstalledPlugin[],
  inventory: Inventory,
  applyDeps: ApplyDeps,
): Promise<{ plans: PluginPlan[]; results: PluginResult[] }> {
  const installed = new Map(actual.map((p) => [p.name, p]));
  const ready = readyKeys(input.desired, actual);
  const lookups = new Map<string, Promise<RemoteInfo>>();
  const inspector = {
    inspect: (remote: string): Promise<RemoteInfo> => {
      let pending = lookups.get(remote);
      if (pending === undefined) lookups.set(remote, (pending = deps.inspector.inspect(remote)));
      return pending;
    },
  };
  const declared = input.desired;
  const options: PlanOptions = {
    prune: input.prune,
    set: input.set,
    ...(input.takeOwnership === true ? { takeOwnership: true } : {}),
    ...(input.skipped !== undefined ? { skipped: input.skipped } : {}),
  };
  const plans: PluginPlan[] = new Array<PluginPlan>(declared.length);
  const results: PluginResult[] = new Array<PluginResult>(declared.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < declared.length) {
      const index = next++;
      // secrets are read on every pass: the file may have changed while the document did not
      const d = await deps.secrets.resolve(declared[index] as DesiredPlugin);
      const own = [d];
      const facts = needsFacts(own, actual)
        ? await gatherFacts(inspector, own, actual, 1)
        : { remotes: new Map(), builds: new Map() };
      let planned = planOne(d, installed.get(d.name), inventory, { ...facts, ready }, options);
      // Only a plan that would disrupt the plugin needs to know what uses it.
      const withUsers = await withUsage(actual, needsUsage([planned]), deps.usage);
      const plugin = withUsers?.find((p) => p.name === d.name);
      if (plugin !== undefined) planned = planOne(d, plugin, inventory, { ...facts, ready }, options);
      plans[index] = planned;
      if (!input.dryRun) results[index] = (await applyPlans([planned], applyDeps))[0] as PluginResult;
    }
  };
  // prunes touch only undeclared plugins: they run beside the declared ones, not after them
  let prunes = planPrunes(declared, installed, inventory, options);
  const prunedUsers = await withUsage(actual, needsUsage(prunes), deps.usage);
  if (prunedUsers !== undefined)
    prunes = planPrunes(declared, new Map(prunedUsers.map((p) => [p.name, p])), inventory, options);
  const pruned = input.dryRun
    ? Promise.resolve([])
    : applyPlans(prunes, { ...applyDeps, concurrency: deps.concurrency ?? 4 });
  const width = Math.max(1, Math.min(deps.concurrency ?? 4, declared.length));
  await Promise.all(Array.from({ length: width }, worker));
  plans.push(...prunes);
  results.push(...(await pruned));
  return { plans, results };
}

/**
 * In a one-shot pass a dependency is Ready when its plugin is installed from the declared remote
 * in the declared enabled state (the controller uses its Ready condition instead).
 */
export function readyKeys(
  desired: readonly DesiredPlugin[],
  actual: readonly InstalledPlugin[],
): Set<string> {
  const installed = new Map(actual.map((p) => [p.name, p]));
  const ready = new Set<string>();
  for (const d of desired) {
    const plugin = installed.get(d.name);
    const fromDeclared = d.build !== undefined || sameRemote(plugin?.reference ?? '', d.remote);
    if (plugin !== undefined && plugin.enabled === d.enabled && fromDeclared) ready.add(d.key);
  }
  return ready;
}

/** Later passes extend a plugin's steps; the outcome is the first pass's unless it had nothing to do. */
function merge(into: Map<string, PluginResult>, result: PluginResult): void {
  const id = `${result.key}\u0000${result.name}`;
  const earlier = into.get(id);
  if (earlier === undefined) {
    into.set(id, result);
    return;
  }
  const outcome =
    earlier.outcome === 'unchanged' || earlier.outcome === 'blocked' ? result.outcome : earlier.outcome;
  const steps = [...earlier.steps.filter((s) => s.ok), ...result.steps];
  const merged: PluginResult = { ...result, outcome, steps };
  if (result.failure === undefined) delete merged.failure;
  into.set(id, merged);
}
