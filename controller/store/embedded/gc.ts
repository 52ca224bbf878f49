/**
 * Blob garbage collection. A blob is kept when any installed plugin references it: its config
 * (`Config`), its manifest (`Manifest`), its layers (`Blobsums`), and — for plugins dockerd pulled,
 * whose Blobsums dockerd leaves empty for gzip layers (storeFetchMetadata in fetch_linux.go does not
 * list MediaTypeDockerSchema2LayerGzip) and whose manifests and layers dockerd's own GC therefore
 * deletes — every blob the plugin's stored manifest lists. Everything else is deleted.
 *
 * The caller runs this holding the store's GC lock exclusively, so no pull is between committing
 * a blob and publishing the plugin that references it.
 */
import type { ContentStore } from './content.ts';
import type { StoredPlugin } from './layout.ts';

/** What a GC pass did. */
export interface GcResult {
  /** blobs deleted */
  removed: number;
  /** bytes freed */
  bytes: number;
  /** blobs kept */
  kept: number;
  /** digests deleted, sorted */
  digests: string[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Digests a manifest blob lists (config and layers); [] for anything unparsable. */
function manifestChildren(bytes: Uint8Array): string[] {
  try {
    const json: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    if (!isObject(json)) return [];
    const out: string[] = [];
    const config = json['config'];
    if (isObject(config) && typeof config['digest'] === 'string') out.push(config['digest']);
    const layers = json['layers'];
    if (Array.isArray(layers)) {
      for (const layer of layers) {
        if (isObject(layer) && typeof layer['digest'] === 'string') out.push(layer['digest']);
      }
    }
    return out;
  } catch {
    return [];
  }
}

/** Every digest the plugins reference, directly or through their manifests. */
export async function referencedBlobs(
  content: ContentStore,
  plugins: Iterable<StoredPlugin>,
): Promise<Set<string>> {
  const used = new Set<string>();
  for (const plugin of plugins) {
    if (plugin.configDigest !== undefined) used.add(plugin.configDigest);
    for (const digest of plugin.blobsums) used.add(digest);
    const manifest = plugin.manifestDigest;
    if (manifest === undefined) continue;
    used.add(manifest);
    const bytes = await content.read(manifest);
    if (bytes !== undefined) for (const digest of manifestChildren(bytes)) used.add(digest);
  }
  return used;
}

/** Deletions in flight at once: enough to keep the thread pool busy. */
const PARALLEL_DELETES = 16;

/** Deletes every blob no plugin references (see the module comment); returns what it did. */
export async function collectGarbage(
  content: ContentStore,
  plugins: Iterable<StoredPlugin>,
): Promise<GcResult> {
  const used = await referencedBlobs(content, plugins);
  const result: GcResult = { removed: 0, bytes: 0, kept: 0, digests: [] };
  const doomed: string[] = [];
  for (const digest of await content.digests()) {
    if (used.has(digest)) result.kept++;
    else doomed.push(digest);
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < doomed.length) {
      const digest = doomed[next++] as string;
      const size = await content.delete(digest);
      result.bytes += size;
      result.removed++;
      result.digests.push(digest);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_DELETES, doomed.length) }, worker));
  result.digests.sort();
  return result;
}
