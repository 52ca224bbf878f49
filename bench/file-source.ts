/**
 * FileSource reaction latency: from writeFile to the change notification, over 200 edits of 20
 * watched files and 50 new files, on a temp directory (chokidar over inotify, the source's 20 ms
 * debounce included). Prints p50, p90, p99 and max. Target p50 <= 100 ms: the source is only part
 * of the reaction of `plugctl run` to an edit, which bench/controller.ts measures up to the Docker
 * API request it causes. Needs no root and no services.
 *
 * Usage: node bench/file-source.ts [--edits 200] [--creates 50]
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pluginYaml, startSource, tempDir, until } from '../test/unit/sources/helpers.ts';

const { values } = parseArgs({
  options: { edits: { type: 'string', default: '200' }, creates: { type: 'string', default: '50' } },
});

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function main(): Promise<void> {
  const { dir, cleanup } = await tempDir();
  const files = 20;
  for (let i = 0; i < files; i++) await writeFile(join(dir, `p${i}.yaml`), pluginYaml(`p${i}`));
  const w = await startSource([dir]);
  let last: { key: string; at: number } | undefined;
  w.source.onChange((keys) => {
    if (last !== undefined && keys.has(last.key)) last.at = performance.now();
  });
  /** writes `key`'s file and returns ms until the notification naming it */
  const measure = async (key: string, text: string, what: string): Promise<number> => {
    const probe = { key, at: 0 };
    last = probe;
    const start = performance.now();
    await writeFile(join(dir, `${key}.yaml`), text);
    await until(() => probe.at > 0, what);
    return probe.at - start;
  };
  const edits: number[] = [];
  const creates: number[] = [];
  try {
    for (let i = 0; i < Number(values.edits); i++) {
      const key = `p${i % files}`;
      edits.push(await measure(key, pluginYaml(key, `n${i}`), `the notification for edit ${i}`));
    }
    for (let i = 0; i < Number(values.creates); i++) {
      const key = `new${i}`;
      creates.push(await measure(key, pluginYaml(key), `the notification for create ${i}`));
    }
  } finally {
    await w.source.close();
    await cleanup();
  }
  console.log('\nFileSource reaction latency: writeFile -> change notification (target p50 <= 100 ms)\n');
  console.log('| what   | n   | p50 ms | p90 ms | p99 ms | max ms |');
  console.log('|--------|-----|--------|--------|--------|--------|');
  for (const [name, samples] of [
    ['edit', edits],
    ['create', creates],
  ] as const) {
    const sorted = [...samples].sort((a, b) => a - b);
    const cells = [50, 90, 99, 100].map((p) => percentile(sorted, p).toFixed(1).padStart(6));
    console.log(`| ${name.padEnd(6)} | ${String(samples.length).padEnd(3)} | ${cells.join(' | ')} |`);
  }
}

await main();
