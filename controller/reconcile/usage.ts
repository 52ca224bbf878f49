/**
 * In-use accounting for the planner: usage is looked up only for plugins whose plan would disable
 * or remove them without force, since only those plans depend on it. The planner then blocks
 * (spec.inUse Wait) while something really uses the plugin, and otherwise plans the disruption
 * with a fallback to the engine's force flag for a lost reference count.
 */
import type { InstalledPlugin, PluginUsageReader } from '../store/store.ts';
import type { PluginPlan } from './plan.ts';

/** Names of the plugins whose plans disable or remove them without force: their usage decides. */
export function needsUsage(plans: readonly PluginPlan[]): Set<string> {
  const names = new Set<string>();
  for (const p of plans) {
    const disrupts = p.actions.some(
      (a) =>
        ((a.type === 'disable' || a.type === 'remove') && !a.force && a.forceIfUnused !== true) ||
        (a.type === 'blocked' && a.code === 'PLUGIN_IN_USE'),
    );
    if (disrupts) names.add(p.name);
  }
  return names;
}

/**
 * `actual` with the usage of the plugins named in `names` filled in (one lookup for all of them),
 * or undefined when nothing needed looking up (then the plans stand as they are).
 */
export async function withUsage(
  actual: readonly InstalledPlugin[],
  names: ReadonlySet<string>,
  reader: PluginUsageReader | undefined,
): Promise<InstalledPlugin[] | undefined> {
  if (reader === undefined || names.size === 0) return undefined;
  const targets = actual.filter((p) => names.has(p.name) && p.usage === undefined);
  if (targets.length === 0) return undefined;
  const usage = await reader.usage(targets);
  return actual.map((p) => {
    const found = usage.get(p.name);
    return found === undefined ? p : { ...p, usage: found };
  });
}
