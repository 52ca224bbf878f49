/**
 * The docker-CLI verbs for one plugin, on either store: `inspect` (docker plugin inspect), `logs`
 * (the embedded store's plugin log, followed with -f; for the docker store, where dockerd puts it)
 * and `rm` (docker plugin rm, which refuses a plugin plugctl manages unless --force, since the
 * controller would reinstall it). A NAME is a document name, a local plugin name or an ID prefix.
 */
import { open, stat } from 'node:fs/promises';
import { describeError, PlugctlError } from '../errors.ts';
import { readInventory, type Inventory } from '../reconcile/inventory.ts';
import { readStatuses } from '../reconcile/status-file.ts';
import type { PluginReader } from '../store/store.ts';
import type { CommandContext } from './context.ts';

/** Runs `inspect`: a JSON array of the stores' records, like docker plugin inspect. */
export async function inspectCommand(names: readonly string[], ctx: CommandContext): Promise<number> {
  const store = await ctx.openStore({ readOnly: true });
  const records: Record<string, unknown>[] = [];
  let missing = 0;
  for (const name of names) {
    const record = await store.inspectRaw(await resolveName(name, store, ctx));
    if (record === undefined) {
      missing++;
      ctx.io.err(`error: ${describeError(notFound(name))}\n`);
    } else records.push(record);
  }
  ctx.io.out(`${JSON.stringify(records, null, 4)}\n`);
  return missing > 0 ? 1 : 0;
}

/** Options of `logs`. */
export interface LogsOptions {
  follow: boolean;
  /** print only the last N lines first; undefined: everything */
  tail?: number;
  /** how often -f looks for new output, ms */
  pollMs?: number;
}

/** Runs `logs`: the plugin's output (embedded store), or where dockerd keeps it. */
export async function logsCommand(name: string, options: LogsOptions, ctx: CommandContext): Promise<number> {
  const store = await ctx.openStore({ readOnly: true });
  const source = await store.logSource(await resolveName(name, store, ctx));
  if (source === undefined) throw notFound(name);
  if ('elsewhere' in source) {
    ctx.io.err(`${source.elsewhere}\n`);
    return 0;
  }
  const exists = await stat(source.file).then(
    () => true,
    () => false,
  );
  if (!exists && !options.follow) {
    ctx.io.err(
      `plugin ${name} has written nothing yet (${source.file} does not exist: it has not run since boot)\n`,
    );
    return 0;
  }
  let offset = 0;
  if (exists) {
    const text = await readWhole(source.file);
    offset = Buffer.byteLength(text);
    ctx.io.out(options.tail === undefined ? text : lastLines(text, options.tail));
  }
  if (!options.follow) return 0;
  await follow(source.file, offset, options.pollMs ?? 250, ctx);
  return 0;
}

/** Prints what is appended to `file` from `offset` until SIGINT or SIGTERM; starts over when it is rotated. */
async function follow(file: string, offset: number, pollMs: number, ctx: CommandContext): Promise<void> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let position = offset;
  let inode = await stat(file).then(
    (s) => s.ino,
    () => undefined,
  );
  try {
    while (!stop.signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        stop.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const now = await stat(file).catch(() => undefined);
      if (now === undefined) continue;
      // rotated (renamed to .1 and a new file started) or truncated: read the new file from its start
      if (now.ino !== inode || now.size < position) {
        inode = now.ino;
        position = 0;
      }
      if (now.size === position) continue;
      const handle = await open(file, 'r');
      try {
        const buffer = Buffer.alloc(now.size - position);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
        position += bytesRead;
        ctx.io.out(buffer.subarray(0, bytesRead).toString('utf8'));
      } finally {
        await handle.close();
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function readWhole(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

function lastLines(text: string, count: number): string {
  if (count <= 0) return '';
  const lines = text.split('\n');
  const trailing = lines.at(-1) === '' ? lines.pop() : undefined;
  const kept = lines.slice(-count).join('\n');
  return trailing === undefined ? kept : `${kept}\n`;
}

/** Options of `rm`. */
export interface RemoveOptions {
  force: boolean;
}

/** Runs `rm`: removes plugins; a managed one only with --force, saying the controller reinstalls it. */
export async function removeCommand(
  names: readonly string[],
  options: RemoveOptions,
  ctx: CommandContext,
): Promise<number> {
  const inventory = await readInventory(ctx.options.stateDir);
  const store = await ctx.openStore();
  let failed = false;
  for (const name of names) {
    try {
      const plugin = await store.inspect(await resolveName(name, store, ctx, inventory));
      if (plugin === undefined) throw notFound(name);
      const owned = inventory.plugins[plugin.name];
      if (owned !== undefined && !options.force) {
        throw new PlugctlError(
          'PLUGIN_MANAGED',
          `plugin ${plugin.name} is managed by plugctl (dockerplugin/${owned.key}, apply set ${owned.set ?? '(unassigned)'}): ` +
            `the controller would reinstall it. To remove it for good, delete its document (plugctl run or apply then prunes it)` +
            `${owned.set !== undefined ? ` or run plugctl prune --set ${owned.set}` : ''}; --force removes it anyway`,
        );
      }
      await store.remove(plugin.name, options.force);
      ctx.io.out(`${plugin.name}\n`);
      if (owned !== undefined) {
        ctx.io.err(
          `warning: ${plugin.name} is still declared by dockerplugin/${owned.key}: plugctl run reinstalls it (at once when it is running), and so does the next apply of its documents\n`,
        );
      }
    } catch (error) {
      failed = true;
      ctx.io.err(`error: ${describeError(error)}\n`);
    }
  }
  return failed ? 1 : 0;
}

/**
 * The store's name for a NAME: a document name (metadata.name) is looked up in the inventory and the
 * status file; a plugin name or ID prefix is given to the store as it is.
 */
async function resolveName(
  name: string,
  store: PluginReader,
  ctx: CommandContext,
  inventory?: Inventory,
): Promise<string> {
  const owned = Object.entries((inventory ?? (await readInventory(ctx.options.stateDir))).plugins).find(
    ([, entry]) => entry.key === name,
  );
  if (owned !== undefined) return owned[0];
  const status = (await readStatuses(ctx.options.stateDir))[name];
  if (status !== undefined) return status.plugin;
  // a plugin name as typed (docker adds :latest itself; the embedded store matches exactly)
  if ((await store.inspect(name).catch(() => undefined)) === undefined && !name.includes(':')) {
    if ((await store.inspect(`${name}:latest`).catch(() => undefined)) !== undefined) return `${name}:latest`;
  }
  return name;
}

function notFound(name: string): PlugctlError {
  return new PlugctlError(
    'OBJECT_NOT_FOUND',
    `plugin "${name}" not found: plugctl get lists the plugins there are`,
  );
}
