/**
 * Watches the build contexts of plugins declared with spec.build, so that `plugctl run` rebuilds a
 * plugin when its context changes in the repository (a `git pull` that touches only rootfs/ changes
 * no document). Changes are coalesced per context: a checkout writes many files in a burst and one
 * reconcile per context is enough. The resync interval remains the safety net for missed events.
 */
import type { FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../runtime/clock.ts';
import type { Trigger, TriggerTarget } from './trigger.ts';

/** How long a context must be quiet before its change is reported. */
const SETTLE_MS = 100;

/** Follows a changing set of context paths and reports each one that changed. */
export class ContextWatcher {
  readonly #onChange: (context: string) => void;
  readonly #clock: Clock;
  #watcher: FSWatcher | undefined;
  #watched = new Set<string>();
  readonly #pending = new Map<string, ReturnType<Clock['setTimeout']>>();
  #closed = false;

  /** `onChange` receives the context path (as given to sync) after its files settle. */
  constructor(onChange: (context: string) => void, clock: Clock) {
    this.#onChange = onChange;
    this.#clock = clock;
  }

  /** Watches exactly `contexts` (absolute paths) from now on. chokidar is loaded on first need. */
  async sync(contexts: ReadonlySet<string>): Promise<void> {
    if (this.#closed) return;
    const added = [...contexts].filter((c) => !this.#watched.has(c));
    const removed = [...this.#watched].filter((c) => !contexts.has(c));
    this.#watched = new Set(contexts);
    if (this.#watcher === undefined) {
      if (added.length === 0) return;
      const { watch } = await import('chokidar');
      if (this.#closed) return;
      this.#watcher = watch(added, { ignoreInitial: true, followSymlinks: false, persistent: true });
      this.#watcher.on('all', (_event, path) => this.#changed(path));
      // A context that disappears or cannot be watched is reported by the reconcile that reads it.
      this.#watcher.on('error', () => undefined);
      return;
    }
    if (added.length > 0) this.#watcher.add(added);
    if (removed.length > 0) await this.#watcher.unwatch(removed);
  }

  #changed(path: string): void {
    for (const context of this.#watched) {
      if (path !== context && !path.startsWith(`${context}/`)) continue;
      const timer = this.#pending.get(context);
      if (timer !== undefined) this.#clock.clearTimeout(timer);
      this.#pending.set(
        context,
        this.#clock.setTimeout(() => {
          this.#pending.delete(context);
          if (!this.#closed) this.#onChange(context);
        }, SETTLE_MS),
      );
    }
  }

  /** Stops watching; nothing is reported afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#pending.values()) this.#clock.clearTimeout(timer);
    this.#pending.clear();
    await this.#watcher?.close();
  }
}

/**
 * The build-context trigger: watches the contexts of the documents selected for this host (asked of
 * the target whenever the desired state changes) and signals each context that changed.
 */
export class BuildContextTrigger implements Trigger {
  readonly #logger: Logger;
  readonly #clock: Clock;
  #target: TriggerTarget | undefined;
  #watcher: ContextWatcher | undefined;

  /** Nothing is watched until start(). */
  constructor(logger: Logger, clock: Clock = systemClock) {
    this.#logger = logger;
    this.#clock = clock;
  }

  start(target: TriggerTarget): void {
    this.#target = target;
    this.#watcher = new ContextWatcher((context) => target.contextChanged(context), this.#clock);
    this.desiredChanged();
  }

  desiredChanged(): void {
    if (this.#target === undefined || this.#watcher === undefined) return;
    this.#watcher.sync(this.#target.buildContexts()).catch((error: unknown) => {
      this.#logger.warn({ err: error }, 'cannot watch build contexts; changes are seen at resync');
    });
  }

  async stop(): Promise<void> {
    await this.#watcher?.close();
  }
}
