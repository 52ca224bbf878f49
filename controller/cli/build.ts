/**
 * `plugctl create`, `plugctl push` and `plugctl gc`: the embedded store's own plugin management,
 * the counterparts of `docker plugin create`, `docker plugin push` and the engine's blob GC.
 */
import { PlugctlError } from '../errors.ts';
import type { EmbeddedStore } from '../store/embedded/store.ts';
import type { CommandContext } from './context.ts';

async function embedded(ctx: CommandContext, verb: string): Promise<EmbeddedStore> {
  const store = await ctx.openStore();
  if (!('createPlugin' in store)) {
    throw new PlugctlError(
      'EMBEDDED_STORE_REQUIRED',
      `plugctl ${verb} works on the embedded store, but ${store.describe()} is selected; pass --store embedded ` +
        `(or use the docker CLI for the engine's store)`,
      { kind: 'stalled' },
    );
  }
  return store as EmbeddedStore;
}

/** `plugctl create NAME CONTEXT`. */
export async function createCommand(name: string, contextPath: string, ctx: CommandContext): Promise<number> {
  const store = await embedded(ctx, 'create');
  const report = await store.createPlugin(name, contextPath);
  ctx.io.out(`${report.name} created (${report.id.slice(0, 12)})\n`);
  return 0;
}

/** `plugctl push NAME [REMOTE]`. */
export async function pushCommand(
  name: string,
  remote: string | undefined,
  ctx: CommandContext,
): Promise<number> {
  const store = await embedded(ctx, 'push');
  const pushed = await store.pushPlugin(name, remote);
  ctx.io.out(`${pushed.remote}: digest: ${pushed.digest} size: ${pushed.size}\n`);
  return 0;
}

/** `plugctl gc`. */
export async function gcCommand(ctx: CommandContext): Promise<number> {
  const store = await embedded(ctx, 'gc');
  const result = await store.gc();
  ctx.io.out(`removed ${result.removed} blob(s), ${result.bytes} bytes; kept ${result.kept}\n`);
  return 0;
}
