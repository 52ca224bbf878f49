/**
 * One full level-based pass: read the host, plan against the declaration, and (unless dry-run)
 * apply. Used by `apply`, `diff` and `get`; the controller of `run` reuses the same pieces per key.
 */
import type { Logger } from 'pino';
import type { Store } from '../store/store.ts';
import { applyPlans, type PluginResult } from './apply.ts';
import type { DesiredPlugin } from './desired.ts';
import { gatherFacts } from './facts.ts';
import { readInventory } from './inventory.ts';
import { InventoryLedger } from './ledger.ts';
import { plan, type PluginPlan } from './plan.ts';

/** What to reconcile and how. */
export interface PassInput {
  desired: readonly DesiredPlugin[];
  /** false when some documents failed to load: their plugins must not look undeclared */
  prune: boolean;
  dryRun: boolean;
}

/** Injected dependencies of a pass. */
export interface PassDeps {
  store: Store;
  stateDir: string;
  logger: Logger;
  concurrency?: number;
}

/** The plans made and, unless dry-run, what applying them did. */
export interface PassOutput {
  plans: PluginPlan[];
  results?: PluginResult[];
}

/** Runs one pass. Exactly one list call to the store; registry facts only for what must change. */
export async function reconcilePass(input: PassInput, deps: PassDeps): Promise<PassOutput> {
  const [actual, inventory] = await Promise.all([deps.store.list(), readInventory(deps.stateDir)]);
  const facts = await gatherFacts(deps.store, input.desired, actual, deps.concurrency);
  const plans = plan(input.desired, actual, inventory, facts, { prune: input.prune });
  if (input.dryRun) return { plans };
  const ledger = new InventoryLedger(deps.stateDir, inventory);
  const results = await applyPlans(plans, {
    store: deps.store,
    ledger,
    logger: deps.logger,
    concurrency: deps.concurrency ?? 4,
  });
  return { plans, results };
}
