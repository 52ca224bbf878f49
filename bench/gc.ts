/**
 * Blob GC of the embedded store over 1000 blobs and 100 plugins: how long gc() takes and what it
 * removed. The root is laid out as a pulled store would be: each plugin has a config blob, a
 * manifest blob and layers; half of the plugins record their layers in Blobsums (as plugctl
 * writes), the other half only in their manifest (as dockerd writes them), so both ways GC finds
 * references are exercised. The remaining blobs are unreferenced and must go; nothing else may.
 *
 * Usage: node bench/gc.ts [--blobs 1000] [--plugins 100] [--rounds 5]
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { RegistryClient } from '../controller/registry/client.ts';
import { parsePluginConfig } from '../controller/plugin/config.ts';
import { pluginManifest } from '../controller/store/embedded/build.ts';
import { ContentStore } from '../controller/store/embedded/content.ts';
import { StoreLayout, generatePluginId, newStoredPlugin } from '../controller/store/embedded/layout.ts';
import { openEmbeddedStore } from '../controller/store/embedded/store.ts';
import { idleRuntime } from '../test/idle-runtime.ts';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Lays out `plugins` plugins (config + manifest + layers each) and fills up to `blobs` blobs. */
async function populate(
  root: string,
  blobs: number,
  plugins: number,
): Promise<{ referenced: Set<string>; bytes: number }> {
  const layout = new StoreLayout(root);
  await mkdir(layout.tmp, { recursive: true, mode: 0o700 });
  const content = new ContentStore(layout);
  const referenced = new Set<string>();
  const config = parsePluginConfig(
    { Entrypoint: ['/p'], Interface: { Socket: 'p.sock', Types: ['docker.volumedriver/1.0'] } },
    'bench/gc',
  );
  let written = 0;
  let unreferencedBytes = 0;
  for (let p = 0; p < plugins; p++) {
    const layers: { digest: string; size: number }[] = [];
    for (let l = 0; l < 4; l++) {
      const bytes = randomBytes(4096 + ((p * 7 + l * 13) % 64) * 1024);
      layers.push({ digest: await content.put(bytes), size: bytes.byteLength });
    }
    const configBytes = Buffer.from(JSON.stringify({ plugin: p, ...config }));
    const configDigest = await content.put(configBytes);
    const manifest = pluginManifest({ digest: configDigest, size: configBytes.byteLength }, layers);
    const manifestDigest = await content.put(manifest);
    written += 6;
    for (const digest of [configDigest, manifestDigest, ...layers.map((layer) => layer.digest)])
      referenced.add(digest);
    const id = generatePluginId();
    const record = newStoredPlugin({
      id,
      name: `bench/gc-${p}:1.0`,
      reference: `127.0.0.1:5000/bench/gc-${p}:1.0`,
      config,
      configDigest,
      manifestDigest,
      // plugctl records its layers; dockerd leaves gzip layers out and only the manifest has them
      blobsums: p % 2 === 0 ? layers.map((layer) => layer.digest) : [],
    });
    await mkdir(join(layout.pluginDir(id), 'rootfs'), { recursive: true, mode: 0o700 });
    await writeFile(layout.configFile(id), record.serialize(), { mode: 0o600 });
  }
  for (; written < blobs; written++) {
    const bytes = randomBytes(16 * 1024);
    await content.put(bytes);
    unreferencedBytes += bytes.byteLength;
  }
  return { referenced, bytes: unreferencedBytes };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      blobs: { type: 'string', default: '1000' },
      plugins: { type: 'string', default: '100' },
      rounds: { type: 'string', default: '5' },
    },
  });
  const blobs = Number(values.blobs);
  const plugins = Number(values.plugins);
  const rounds = Number(values.rounds);
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const registry = new RegistryClient({ credentials: async () => undefined });
  const times: number[] = [];
  const opens: number[] = [];
  let last: { removed: number; bytes: number; kept: number } | undefined;
  try {
    for (let round = 0; round < rounds; round++) {
      const root = await mkdtemp(join(tmpdir(), 'plugctl-bench-gc-'));
      try {
        const { referenced, bytes } = await populate(root, blobs, plugins);
        const openStart = performance.now();
        const store = await openEmbeddedStore({
          root,
          runtime: idleRuntime,
          registry,
          logger,
          runDir: join(root, 'run'),
        });
        opens.push(performance.now() - openStart);
        const start = performance.now();
        const result = await store.gc();
        times.push(performance.now() - start);
        const left = new Set((await store.content.list()).map((blob) => blob.digest));
        await store.close();
        if (left.size !== referenced.size || [...referenced].some((digest) => !left.has(digest))) {
          throw new Error('gc removed a referenced blob or kept an unreferenced one');
        }
        if (result.removed !== blobs - referenced.size || result.bytes !== bytes) {
          throw new Error(
            `gc removed ${result.removed} blobs (${result.bytes} bytes), expected ${blobs - referenced.size} (${bytes})`,
          );
        }
        last = result;
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    }
  } finally {
    await registry.close();
  }
  console.log(
    `embedded store GC: ${blobs} blobs, ${plugins} plugins (half recording layers only in their manifest), ${rounds} rounds`,
  );
  console.log(`  open (reload of ${plugins} plugins): median ${median(opens).toFixed(1)} ms`);
  console.log(
    `  gc(): median ${median(times).toFixed(1)} ms, min ${Math.min(...times).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms`,
  );
  if (last !== undefined) {
    console.log(
      `  removed ${last.removed} unreferenced blobs (${(last.bytes / 1024 / 1024).toFixed(1)} MiB), kept ${last.kept}; every referenced blob verified present`,
    );
  }
}

await main();
