/**
 * Update check for 100 declared plugins with `upgrade.policy: TrackTag`, against a real
 * docker-registry on 127.0.0.1:5190: what a reconcile pass costs when it asks "has the tag moved?"
 * for every plugin.
 *
 *   node bench/update-check.ts [--plugins 100] [--concurrency 8]
 *
 * Passes (one RegistryClient throughout, as a running controller has):
 *   cold       nothing known: HEAD, then the manifest and the config by digest
 *   unchanged  every tag as before: exactly one manifest HEAD per plugin
 *   10% moved  10% of the tags re-pushed with new content: those fetch manifest + config again
 * Requests are counted by an undici interceptor on the client's dispatcher, so the counts include
 * the /v2/ ping and the first https probe of the loopback registry.
 */
import { parseArgs } from 'node:util';
import { Agent } from 'undici';
import { RegistryClient } from '../controller/registry/client.ts';
import { parsePluginConfig } from '../controller/plugin/config.ts';
import type { Reference } from '../controller/api/reference.ts';
import { parseReference } from '../controller/api/reference.ts';
import { buildPlugin, pushPlugin, startRegistry } from '../test/integration/registry-harness.ts';

const { values } = parseArgs({
  options: {
    plugins: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '8' },
  },
});
const PLUGINS = Number.parseInt(values.plugins, 10);
const CONCURRENCY = Number.parseInt(values.concurrency, 10);
const PORT = 5190;

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await fn(item);
    }
  });
  await Promise.all(workers);
}

const registry = await startRegistry(PORT);
const counts = new Map<string, number>();
const agent = new Agent();
const dispatcher = agent.compose((dispatch) => (options, handler) => {
  counts.set(options.method, (counts.get(options.method) ?? 0) + 1);
  return dispatch(options, handler);
});
const pusher = new RegistryClient({ credentials: async () => undefined });
const client = new RegistryClient({ credentials: async () => undefined, dispatcher });

try {
  const refs: Reference[] = [];
  for (let i = 0; i < PLUGINS; i++) refs.push(parseReference(`${registry.host}/bench/plugin-${i}:1.0`));
  process.stderr.write(`pushing ${PLUGINS} plugins to ${registry.host}...\n`);
  await pool(refs, 8, async (ref) => {
    await pushPlugin(pusher, ref, '1.0', await buildPlugin(`${ref.path}-v1`));
  });

  // what the controller remembers per plugin: the digest it last saw and the diff_ids installed
  const known = new Map<string, { digest: string; diffIds: string[] }>();
  let upgrades = 0;
  const check = async (ref: Reference): Promise<void> => {
    const key = `${ref.path}:${ref.tag ?? ''}`;
    const head = await client.headManifest(ref);
    const before = known.get(key);
    if (before !== undefined && before.digest === head.digest) return; // unchanged: one HEAD
    const { json } = await client.fetchConfig({ ...ref, digest: head.digest });
    const diffIds = parsePluginConfig(json, `${ref.domain}/${ref.path}`).rootfs.diff_ids;
    if (before !== undefined && before.diffIds.join() !== diffIds.join()) upgrades++;
    known.set(key, { digest: head.digest, diffIds });
  };

  const rows: string[][] = [];
  const pass = async (name: string): Promise<void> => {
    counts.clear();
    upgrades = 0;
    const started = performance.now();
    await pool(refs, CONCURRENCY, check);
    const ms = performance.now() - started;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const breakdown = [...counts.entries()].map(([method, n]) => `${n} ${method}`).join(', ');
    rows.push([
      name,
      `${ms.toFixed(1)} ms`,
      `${total} (${breakdown})`,
      (total / PLUGINS).toFixed(2),
      `${(ms / PLUGINS).toFixed(2)} ms`,
      String(upgrades),
    ]);
  };

  await pass('cold');
  await pass('unchanged');
  const moved = refs.filter((_, i) => i % 10 === 0);
  await pool(moved, 8, async (ref) => {
    await pushPlugin(pusher, ref, '1.0', await buildPlugin(`${ref.path}-v2`));
  });
  await pass('10% moved');
  await pass('unchanged again');

  const header = ['pass', 'total time', 'requests', 'requests/plugin', 'time/plugin', 'upgrades seen'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  console.log(
    `\nTrackTag update check: ${PLUGINS} plugins, concurrency ${CONCURRENCY}, docker-registry on ${registry.host}\n`,
  );
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
} finally {
  await client.close();
  await pusher.close();
  await agent.close();
  await registry.stop();
}
