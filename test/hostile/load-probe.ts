/**
 * Loads one generated file in a fresh process and prints what it cost, so the suite measures time
 * and peak memory of a load without the test runner's own heap in the way. Usage:
 * `node load-probe.ts FILE` prints `{"ms":..., "extraMB":..., "documents":..., "errors":...}`.
 */
import { loadDocuments } from '../../controller/api/load.ts';

const file = process.argv[2] as string;
// warm up the modules and the JIT on a small load, then measure from a settled heap
await loadDocuments(['/dev/null']);
const before = process.memoryUsage().rss;
const started = performance.now();
const result = await loadDocuments([file]);
const ms = performance.now() - started;
const peak = process.resourceUsage().maxRSS * 1024;
process.stdout.write(
  JSON.stringify({
    ms: Math.round(ms),
    extraMB: Math.round((peak - before) / 1e6),
    documents: result.documents.length,
    errors: result.errors.length,
    firstError: result.errors[0]?.message,
  }),
);
