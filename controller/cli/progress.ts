/**
 * Progress of `apply` while it pulls and changes plugins, in the docker CLI's spirit:
 * - `tty` (a terminal): one bar per layer with bytes and speed, drawn by cli-progress, and one line
 *   above the bars per step (pull, set, enable, ...);
 * - `plain` (not a terminal, or `--progress=plain`): one line per step and per layer, never a redraw;
 * - `quiet` (`-q`): nothing but the results.
 * Both stores report layers (the docker store from the engine's progress stream, the embedded store
 * from its own download); the reporter wraps the store, so the reconcile code knows nothing of it.
 */
import type { MultiBar, SingleBar } from 'cli-progress';
import prettyBytes from 'pretty-bytes';
import prettyMs from 'pretty-ms';
import type { PullOptions, PullProgress, Store } from '../store/store.ts';

/** `--progress`: auto picks tty on a terminal (and TERM is not dumb), plain otherwise. */
export type ProgressMode = 'auto' | 'tty' | 'plain' | 'quiet';

/** Where progress goes. */
export interface ProgressOutput {
  /** the terminal stream bars are drawn on (stderr) */
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** where plain lines go */
  line: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** time source, ms (tests) */
  now?: () => number;
}

/** Reports what a wrapped store does; close() before printing results. */
export interface ProgressReporter {
  readonly mode: 'tty' | 'plain' | 'quiet';
  /** The store with its writes reported (reads untouched). */
  wrap(store: Store): Store;
  /** Stops drawing and leaves the last state of the bars on screen. */
  close(): void;
}

/** Resolves `auto`: a terminal that can redraw gets bars. */
export function resolveMode(
  mode: ProgressMode,
  output: Pick<ProgressOutput, 'stream' | 'env'>,
): 'tty' | 'plain' | 'quiet' {
  if (mode !== 'auto') return mode;
  return output.stream.isTTY === true && output.env.TERM !== 'dumb' ? 'tty' : 'plain';
}

/** Builds a reporter for `mode` writing to `output` (cli-progress is loaded only for a terminal). */
export async function createProgress(mode: ProgressMode, output: ProgressOutput): Promise<ProgressReporter> {
  const resolved = resolveMode(mode, output);
  if (resolved === 'quiet') return { mode: resolved, wrap: (store) => store, close: () => undefined };
  const view =
    resolved === 'tty' ? new BarView(output, (await import('cli-progress')).MultiBar) : new PlainView(output);
  return {
    mode: resolved,
    wrap: (store) => reporting(store, view, output.now ?? Date.now),
    close: () => view.close(),
  };
}

/** What a view is told. */
interface View {
  step(plugin: string, text: string): void;
  layer(plugin: string, event: PullProgress): void;
  close(): void;
}

const VERBS: Record<string, [string, string]> = {
  pull: ['pulling', 'pulled'],
  upgrade: ['upgrading', 'upgraded'],
  create: ['building', 'built'],
  set: ['setting', 'set'],
  enable: ['enabling', 'enabled'],
  disable: ['disabling', 'disabled'],
  remove: ['removing', 'removed'],
};

/** The store with each write announced, timed, and pulls' layers reported. */
function reporting(store: Store, view: View, now: () => number): Store {
  const step = async <T>(verb: string, plugin: string, detail: string, run: () => Promise<T>): Promise<T> => {
    const [doing, done] = VERBS[verb]!;
    view.step(plugin, `${doing}${detail}`);
    const started = now();
    try {
      const result = await run();
      view.step(plugin, `${done} in ${prettyMs(now() - started)}`);
      return result;
    } catch (error) {
      view.step(plugin, `${verb} failed after ${prettyMs(now() - started)}`);
      throw error;
    }
  };
  const withLayers = (plugin: string, options: PullOptions): PullOptions => ({
    ...options,
    onProgress: (event) => {
      options.onProgress?.(event);
      view.layer(plugin, event);
    },
  });
  const overrides: Partial<Store> = {
    pull: (name: string, options: PullOptions) =>
      step('pull', name, ` ${options.remote}`, () => store.pull(name, withLayers(name, options))),
    upgrade: (name: string, options: PullOptions) =>
      step('upgrade', name, ` to ${options.remote}`, () => store.upgrade(name, withLayers(name, options))),
    create: (name: string, context: string) =>
      step('create', name, ` from ${context}`, () => store.create(name, context)),
    // Only the names: by now secret values are revealed for the store, and progress goes to a terminal or a log.
    set: (name: string, settings: string[]) =>
      step('set', name, ` ${settings.map((s) => s.split('=')[0]).join(' ')}`, () =>
        store.set(name, settings),
      ),
    enable: (name: string, timeout: number) => step('enable', name, '', () => store.enable(name, timeout)),
    disable: (name: string, force: boolean) => step('disable', name, '', () => store.disable(name, force)),
    remove: (name: string, force: boolean) => step('remove', name, '', () => store.remove(name, force)),
  };
  // A proxy, not a subclass: the stores keep their state in private fields, so every other method
  // must run on the store itself
  return new Proxy(store, {
    get(target, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof Store];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The short form of a layer: 12 hex digits, as docker prints IDs. */
function shortLayer(layer: string): string {
  return layer.replace(/^sha256:/, '').slice(0, 12);
}

function speed(bytes: number, ms: number): string {
  return ms <= 0 ? '' : `${prettyBytes((bytes * 1000) / ms)}/s`;
}

/** Lines only: a step per line, a layer when it starts and when it is done. */
class PlainView implements View {
  readonly #output: ProgressOutput;
  readonly #layers = new Map<string, { started: number; status: string; total?: number }>();

  constructor(output: ProgressOutput) {
    this.#output = output;
  }

  step(plugin: string, text: string): void {
    this.#output.line(`${plugin}: ${text}\n`);
  }

  layer(plugin: string, event: PullProgress): void {
    const now = (this.#output.now ?? Date.now)();
    if (event.layer === undefined) {
      this.step(plugin, event.status);
      return;
    }
    const key = `${plugin}\0${event.layer}`;
    const seen = this.#layers.get(key);
    const id = shortLayer(event.layer);
    if (seen === undefined) {
      this.#layers.set(key, {
        started: now,
        status: event.status,
        ...(event.total !== undefined ? { total: event.total } : {}),
      });
      const size = event.total !== undefined ? ` (${prettyBytes(event.total)})` : '';
      this.step(plugin, `layer ${id}: ${event.status.toLowerCase()}${size}`);
      return;
    }
    if (event.total !== undefined) seen.total = event.total;
    // byte counts repeat their status; only a new status is a step
    if (event.status === seen.status) return;
    seen.status = event.status;
    const complete = /complete|exists/i.test(event.status);
    const bytes = event.current ?? seen.total;
    const rate =
      complete && bytes !== undefined
        ? `, ${prettyBytes(bytes)} in ${prettyMs(now - seen.started)} (${speed(bytes, now - seen.started)})`
        : '';
    this.step(plugin, `layer ${id}: ${event.status.toLowerCase()}${rate}`);
  }

  close(): void {}
}

/**
 * Bars on a terminal, one per layer, with the steps as lines above them. Once every bar is full the
 * bars are left on screen as they are and the next pull starts a new set below.
 */
class BarView implements View {
  readonly #output: ProgressOutput;
  readonly #MultiBar: typeof MultiBar;
  #bars: MultiBar | undefined;
  readonly #layers = new Map<string, { bar: SingleBar; started: number; total: number; done: boolean }>();

  constructor(output: ProgressOutput, multiBar: typeof MultiBar) {
    this.#output = output;
    this.#MultiBar = multiBar;
  }

  #multiBar(): MultiBar {
    this.#bars ??= new this.#MultiBar({
      stream: this.#output.stream,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      barsize: 20,
      format: (options, params, payload: { label: string; status: string; speed: string }) => {
        const width = options.barsize ?? 20;
        const filled = Math.min(width, Math.round(params.progress * width));
        const head = filled === 0 ? '' : filled === width ? '=' : '>';
        const bar = `[${'='.repeat(Math.max(0, filled - 1))}${head}${' '.repeat(width - filled)}]`;
        const bytes =
          params.total > 0
            ? `${prettyBytes(params.value)}/${prettyBytes(params.total)}`
            : prettyBytes(params.value);
        return `${payload.label} ${payload.status.padEnd(13)} ${bar} ${bytes} ${payload.speed}`.trimEnd();
      },
    });
    return this.#bars;
  }

  step(plugin: string, text: string): void {
    const line = `${plugin}: ${text}\n`;
    if (this.#bars !== undefined && [...this.#layers.values()].every((l) => l.done)) this.#finishBars();
    if (this.#bars === undefined) {
      this.#output.stream.write(line);
      return;
    }
    this.#bars.log(line);
    this.#bars.update();
  }

  layer(plugin: string, event: PullProgress): void {
    if (event.layer === undefined) {
      this.step(plugin, event.status);
      return;
    }
    const now = (this.#output.now ?? Date.now)();
    const key = `${plugin}\0${event.layer}`;
    let entry = this.#layers.get(key);
    const label = `${plugin} ${shortLayer(event.layer)}`;
    if (entry === undefined) {
      const total = event.total ?? 0;
      const bar = this.#multiBar().create(total, 0, { label, status: event.status, speed: '' });
      entry = { bar, started: now, total, done: false };
      this.#layers.set(key, entry);
    }
    if (event.total !== undefined && event.total !== entry.total) {
      entry.total = event.total;
      entry.bar.setTotal(event.total);
    }
    const complete = /complete|exists/i.test(event.status);
    entry.done ||= complete;
    const value = event.current ?? (complete ? entry.total : undefined);
    const payload = {
      label,
      status: event.status,
      speed: value !== undefined && value > 0 ? speed(value, now - entry.started) : '',
    };
    if (value !== undefined) entry.bar.update(value, payload);
    else entry.bar.update(payload);
  }

  /** Draws the bars one last time and leaves them; the next layer starts a new set. */
  #finishBars(): void {
    this.#bars?.stop();
    this.#bars = undefined;
    this.#layers.clear();
  }

  close(): void {
    this.#bars?.update();
    this.#finishBars();
  }
}
