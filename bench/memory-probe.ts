/**
 * Reads the memory of another Node.js process from outside, for benchmarks that judge a long-running
 * `plugctl run` by its resident memory. The process is started with `--inspect=127.0.0.1:PORT` (in
 * NODE_OPTIONS, by the benchmark only: plugctl itself has no debug endpoint), and this module talks
 * the Chrome DevTools Protocol to it over the inspector's WebSocket:
 * - `HeapProfiler.collectGarbage` forces full GCs, so the heap is read as what the process retains,
 *   not what V8 has not collected yet;
 * - `Runtime.evaluate` reads process.memoryUsage(), V8's heap spaces and the live libuv handles;
 * - `HeapProfiler.takeHeapSnapshot` writes a snapshot, which summarizeSnapshot() counts by constructor
 *   so that two of them can be compared (diffSummaries()).
 * RSS is read from /proc before anything else, as a snapshot or a GC changes it.
 */
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';

/** Resident memory from /proc/PID/status, MB: total, anonymous (heaps, malloc) and file-backed (code). */
export interface Rss {
  rss: number;
  anon: number;
  file: number;
}

/** Reads /proc/PID/status. */
export function readRss(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status);
    return match === null ? NaN : Number(match[1]) / 1024;
  };
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** What one reading found, MB unless said otherwise. */
export interface MemoryReading {
  /** RSS as the process had it, before the forced GC */
  before: Rss;
  /** RSS right after the forced GC */
  afterGc: Rss;
  /** V8 heap used before the forced GC (live and not yet collected) */
  heapUsedBeforeGc: number;
  /** V8 heap committed before the forced GC */
  heapTotalBeforeGc: number;
  /** V8's heap spaces before and after the GC: committed / used MB per space */
  spaces: { before: Record<string, string>; after: Record<string, string> };
  /** memory V8 itself has malloc'ed (outside the heap pages), before the GC */
  v8Malloced: number;
  /** V8 heap used after it: what the process retains */
  heapUsed: number;
  /** V8 heap reserved (committed) after it */
  heapTotal: number;
  /** memory of C++ objects bound to JS objects (Buffers' backing stores and more) */
  external: number;
  arrayBuffers: number;
  /** libuv handles by type (tcp, pipe, timer, ...), and the active resources Node reports */
  handles: Record<string, number>;
}

/** A Chrome DevTools Protocol session with one process's inspector. */
export class InspectorSession {
  readonly #socket: WebSocket;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #listeners = new Map<string, (params: Record<string, unknown>) => void>();

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener('message', (event: MessageEvent) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number;
        method?: string;
        params?: Record<string, unknown>;
        result?: unknown;
        error?: { message: string };
      };
      if (message.id !== undefined) {
        const waiter = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error !== undefined) waiter?.reject(new Error(message.error.message));
        else waiter?.resolve(message.result);
      } else if (message.method !== undefined) {
        this.#listeners.get(message.method)?.(message.params ?? {});
      }
    });
  }

  /** Connects to the inspector listening on 127.0.0.1:`port`, retrying while the process starts. */
  static async connect(port: number, timeoutMs = 30_000): Promise<InspectorSession> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
          webSocketDebuggerUrl: string;
        }[];
        const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl);
        await new Promise((resolve, reject) => {
          socket.addEventListener('open', resolve, { once: true });
          socket.addEventListener('error', () => reject(new Error('inspector WebSocket failed')), {
            once: true,
          });
        });
        return new InspectorSession(socket);
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /** Sends one command and waits for its result. */
  send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Evaluates an expression in the process and returns its value (JSON-serialisable). */
  async evaluate<T>(expression: string): Promise<T> {
    const answer = (await this.send('Runtime.evaluate', { expression, returnByValue: true })) as {
      result: { value: T };
      exceptionDetails?: { text: string };
    };
    if (answer.exceptionDetails !== undefined) throw new Error(answer.exceptionDetails.text);
    return answer.result.value;
  }

  /** Full GCs until the heap stops shrinking (weak references and finalizers need more than one). */
  async collectGarbage(): Promise<void> {
    for (let i = 0; i < 3; i++) await this.send('HeapProfiler.collectGarbage');
  }

  /** Writes a heap snapshot (V8 collects garbage first) to `path`. */
  async heapSnapshot(path: string): Promise<void> {
    const out = createWriteStream(path);
    this.#listeners.set('HeapProfiler.addHeapSnapshotChunk', (params) => out.write(String(params['chunk'])));
    try {
      await this.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    } finally {
      this.#listeners.delete('HeapProfiler.addHeapSnapshotChunk');
      out.end();
      await once(out, 'close');
    }
  }

  /** RSS as it is, then a forced GC, then what the process retains. */
  async read(pid: number): Promise<MemoryReading> {
    const before = readRss(pid);
    const spacesExpression = `(() => {
      const v8 = process.getBuiltinModule('node:v8');
      const spaces = {};
      for (const s of v8.getHeapSpaceStatistics())
        spaces[s.space_name] = (s.space_size / 1048576).toFixed(1) + ' / ' + (s.space_used_size / 1048576).toFixed(1);
      const h = v8.getHeapStatistics();
      return { spaces, used: h.used_heap_size, total: h.total_heap_size, malloced: h.malloced_memory };
    })()`;
    type Spaces = { spaces: Record<string, string>; used: number; total: number; malloced: number };
    const v8Before = await this.evaluate<Spaces>(spacesExpression);
    await this.collectGarbage();
    const v8After = await this.evaluate<Spaces>(spacesExpression);
    const inside = await this.evaluate<{
      usage: NodeJS.MemoryUsage;
      handles: Record<string, number>;
    }>(`(() => {
      const handles = {};
      for (const h of process.report.getReport().libuv) handles[h.type] = (handles[h.type] ?? 0) + 1;
      for (const r of process.getActiveResourcesInfo()) handles['active ' + r] = (handles['active ' + r] ?? 0) + 1;
      return { usage: process.memoryUsage(), handles };
    })()`);
    const mb = (bytes: number): number => bytes / 2 ** 20;
    return {
      before,
      afterGc: readRss(pid),
      heapUsedBeforeGc: mb(v8Before.used),
      heapTotalBeforeGc: mb(v8Before.total),
      spaces: { before: v8Before.spaces, after: v8After.spaces },
      v8Malloced: mb(v8Before.malloced),
      heapUsed: mb(inside.usage.heapUsed),
      heapTotal: mb(inside.usage.heapTotal),
      external: mb(inside.usage.external),
      arrayBuffers: mb(inside.usage.arrayBuffers),
      handles: inside.handles,
    };
  }

  close(): void {
    this.#socket.close();
  }
}

/** Objects of one kind in a heap snapshot: how many, and their own size in bytes. */
export interface Census {
  count: number;
  size: number;
}

/**
 * Counts a heap snapshot's nodes by constructor (objects), function name (closures) or node type
 * (strings, code, arrays, ...). Streams nothing: a snapshot of a controller is tens of MB.
 */
export async function summarizeSnapshot(path: string): Promise<Map<string, Census>> {
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(path)) chunks.push(chunk as Buffer);
  const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = parsed.snapshot.meta.node_fields;
  const types = parsed.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const census = new Map<string, Census>();
  for (let i = 0; i < parsed.nodes.length; i += width) {
    const type = types[parsed.nodes[i + typeAt]!]!;
    const name = parsed.strings[parsed.nodes[i + nameAt]!]!;
    const key =
      type === 'object' || type === 'closure' || type === 'native'
        ? `${type} ${name.slice(0, 60)}`
        : `(${type})`;
    const entry = census.get(key) ?? { count: 0, size: 0 };
    entry.count++;
    entry.size += parsed.nodes[i + sizeAt]!;
    census.set(key, entry);
  }
  return census;
}

/** The kinds whose count or size grew most from `before` to `after`, largest growth in size first. */
export function diffSummaries(
  before: ReadonlyMap<string, Census>,
  after: ReadonlyMap<string, Census>,
  top = 25,
): { key: string; count: number; countDelta: number; size: number; sizeDelta: number }[] {
  const rows = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(key) ?? { count: 0, size: 0 };
    const b = after.get(key) ?? { count: 0, size: 0 };
    rows.push({
      key,
      count: b.count,
      countDelta: b.count - a.count,
      size: b.size,
      sizeDelta: b.size - a.size,
    });
  }
  return rows
    .filter((r) => r.countDelta !== 0 || r.sizeDelta !== 0)
    .sort((x, y) => Math.abs(y.sizeDelta) - Math.abs(x.sizeDelta))
    .slice(0, top);
}

/** One mapping of /proc/PID/smaps: its address range, permissions, what backs it, sizes in kB. */
export interface Mapping {
  range: string;
  perms: string;
  name: string;
  sizeKb: number;
  rssKb: number;
}

/** Reads /proc/PID/smaps (every mapping with its resident size). */
export function readSmaps(pid: number): Mapping[] {
  const mappings: Mapping[] = [];
  let current: Mapping | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^([0-9a-f]+-[0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header !== null) {
      current = { range: header[1]!, perms: header[2]!, name: header[3]!, sizeKb: 0, rssKb: 0 };
      mappings.push(current);
      continue;
    }
    const field = /^(Size|Rss):\s+(\d+) kB/.exec(line);
    if (field !== null && current !== undefined) {
      if (field[1] === 'Size') current.sizeKb = Number(field[2]);
      else current.rssKb = Number(field[2]);
    }
  }
  return mappings;
}

/**
 * Where resident memory grew between two smaps readings, mapping by mapping (matched by address
 * start address; a mapping that appeared counts whole), largest growth first, plus the total per kind of
 * mapping: the C heap (`[heap]`, the main thread's malloc arena), other anonymous mappings (V8's
 * heap pages, thread arenas, WebAssembly memories), and files.
 */
export function diffSmaps(
  before: readonly Mapping[],
  after: readonly Mapping[],
  top = 12,
): { byKind: Record<string, number>; grown: (Mapping & { deltaKb: number })[] } {
  // keyed by start address: the C heap's range grows at its end
  const startOf = (m: Mapping): string => m.range.split('-')[0]!;
  const old = new Map(before.map((m) => [startOf(m), m.rssKb]));
  const kind = (m: Mapping): string =>
    m.name === '' ? 'anonymous' : m.name.startsWith('[') ? m.name : m.name.startsWith('/') ? 'files' : m.name;
  const byKind: Record<string, number> = {};
  const grown: (Mapping & { deltaKb: number })[] = [];
  for (const m of after) {
    const deltaKb = m.rssKb - (old.get(startOf(m)) ?? 0);
    byKind[kind(m)] = (byKind[kind(m)] ?? 0) + deltaKb;
    if (deltaKb !== 0) grown.push({ ...m, deltaKb });
  }
  const now = new Set(after.map(startOf));
  for (const m of before) if (!now.has(startOf(m))) byKind[kind(m)] = (byKind[kind(m)] ?? 0) - m.rssKb;
  grown.sort((a, b) => b.deltaKb - a.deltaKb);
  return { byKind, grown: grown.slice(0, top) };
}
