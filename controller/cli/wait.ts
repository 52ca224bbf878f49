/**
 * `plugctl wait --for=condition=Ready dockerplugin/NAME... [--timeout 30s]`: kubectl wait against the
 * status a running controller writes (`<state-dir>/status.json`). `--for=condition=TYPE[=VALUE]`
 * waits for a condition (Ready, Reconciling, Stalled; VALUE defaults to True); `--for=delete` waits
 * until the controller no longer reports the plugin. Prints `dockerplugin/NAME condition met` per
 * object; exits 1 with WAIT_TIMEOUT, naming where each object stands, when the time runs out.
 */
import { existsSync } from 'node:fs';
import { describeError, PlugctlError } from '../errors.ts';
import type { PluginStatus } from '../reconcile/status.ts';
import { readStatuses } from '../reconcile/status-file.ts';
import type { CommandContext } from './context.ts';
import { endpointPath } from './endpoint.ts';
import type { WaitFor } from './wait-for.ts';

export { parseWaitFor, type WaitFor } from './wait-for.ts';

/** Options of `wait`. */
export interface WaitOptions {
  for: WaitFor;
  /** ms; 0 checks once */
  timeout: number;
  /** how often the status file is read, ms */
  intervalMs?: number;
}

/** Runs `wait`; returns the exit code. */
export async function waitCommand(
  targets: readonly string[],
  options: WaitOptions,
  ctx: CommandContext,
): Promise<number> {
  if (targets.length === 0) {
    ctx.io.err('error: name at least one object, e.g. dockerplugin/NAME\n');
    return 2;
  }
  const names = targets.map((t) => t.replace(/^dockerplugins?(\.plugctl\.dev)?\//, ''));
  const pending = new Set(names);
  const deadline = Date.now() + options.timeout;
  let statuses: Record<string, PluginStatus>;
  for (;;) {
    statuses = await readStatuses(ctx.options.stateDir);
    for (const name of [...pending]) {
      if (met(find(statuses, name), options.for)) {
        pending.delete(name);
        ctx.io.out(`dockerplugin/${name} condition met\n`);
      }
    }
    if (pending.size === 0) return 0;
    const left = deadline - Date.now();
    if (left <= 0) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(options.intervalMs ?? 250, left)));
  }
  const running = existsSync(endpointPath(ctx.options.stateDir));
  for (const name of pending) {
    const error = new PlugctlError(
      'WAIT_TIMEOUT',
      `timed out waiting for ${describeFor(options.for)} on dockerplugin/${name}: ${where(find(statuses, name))}` +
        (running ? '' : `; no plugctl run serves ${ctx.options.stateDir}, so nothing updates its status`),
    );
    ctx.io.err(`error: ${describeError(error)}\n`);
  }
  return 1;
}

function find(statuses: Record<string, PluginStatus>, name: string): PluginStatus | undefined {
  if (Object.hasOwn(statuses, name)) return statuses[name];
  return Object.values(statuses).find((s) => s.plugin === name || s.plugin === `${name}:latest`);
}

function met(status: PluginStatus | undefined, wanted: WaitFor): boolean {
  if (wanted.kind === 'delete') return status === undefined;
  const condition = status?.conditions.find((c) => c.type.toLowerCase() === wanted.type.toLowerCase());
  return condition !== undefined && condition.status.toLowerCase() === wanted.value.toLowerCase();
}

function describeFor(wanted: WaitFor): string {
  return wanted.kind === 'delete' ? 'deletion' : `condition ${wanted.type}=${wanted.value}`;
}

function where(status: PluginStatus | undefined): string {
  if (status === undefined) return 'the controller has reported nothing for it yet';
  const ready = status.conditions.find((c) => c.type === 'Ready');
  const on = status.conditions.filter((c) => c.status === 'True').map((c) => c.type);
  return `${on.length > 0 ? on.join(', ') : 'not Ready'}${ready !== undefined ? ` (${ready.reason}${ready.message !== '' ? `: ${ready.message}` : ''})` : ''}`;
}
