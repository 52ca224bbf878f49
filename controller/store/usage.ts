/**
 * Words and sums for PluginUsage, shared by both stores, the planner and the commands, so that
 * `diff`, `get` and status name what uses a plugin the same way.
 */
import type { PluginUsage } from './store.ts';

/** How many things use the plugin. */
export function usageCount(usage: PluginUsage): number {
  return usage.volumes.length + usage.networks.length + usage.logContainers.length;
}

/**
 * One line naming what uses a plugin: `3 volumes: a, b, c; 1 container's log driver: web-1`
 * (`nothing` when nothing does); at most ten names of each kind are listed.
 */
export function describeUsage(usage: PluginUsage): string {
  const parts: string[] = [];
  const list = (items: readonly string[], one: string, many: string): void => {
    if (items.length === 0) return;
    const shown = items.length > 10 ? [...items.slice(0, 10), `and ${items.length - 10} more`] : items;
    parts.push(`${items.length} ${items.length === 1 ? one : many}: ${shown.join(', ')}`);
  };
  list(usage.volumes, 'volume', 'volumes');
  list(usage.networks, 'network', 'networks');
  list(usage.logContainers, "container's log driver", "containers' log driver");
  if (!usage.complete) parts.push('more not checked yet');
  return parts.length === 0 ? 'nothing' : parts.join('; ');
}
