/**
 * Reads the host's labels for spec.nodeSelector: the well-known labels, the Docker engine's own
 * labels (`dockerd --label`, daemon.json), a labels file, and the command line's overrides (see
 * api/labels.ts for why persistent and override labels are kept apart). For `plugctl run` the
 * persistent sources are read again on an interval, and a change makes every key be looked at again.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import {
  hostLabelsOf,
  parseLabelsFile,
  wellKnownLabels,
  type HostLabels,
  type Labels,
} from '../api/labels.ts';
import { describeError, PlugctlError } from '../errors.ts';
import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.ts';
import type { PluginReader } from '../store/store.ts';
import type { Trigger, TriggerTarget } from './trigger.ts';

/** Where a host's labels come from. */
export interface HostLabelSources {
  /** the store, for the engine's own labels */
  engine: Pick<PluginReader, 'engineLabels'>;
  /** the labels file (`<state-dir>/labels` or --labels-file) */
  labelsFile: string;
  /** true when the file was named explicitly: then a missing file is an error, not "no labels" */
  labelsFileRequired: boolean;
  /** `--node-labels`: one-off overrides, never persisted */
  overrides: Labels;
  /** for tests; default os.hostname() */
  hostname?: string;
}

/**
 * Reads every source once. Throws HOST_LABELS_UNREADABLE when a source that exists cannot be read
 * (an unreadable or invalid labels file, an engine that does not answer): selecting documents with
 * half the labels could remove plugins, so nothing is decided without all of them.
 */
export async function resolveHostLabels(sources: HostLabelSources): Promise<HostLabels> {
  const known = wellKnownLabels(sources.hostname ?? hostname(), process.platform, process.arch);
  let engine: Labels;
  try {
    engine = await sources.engine.engineLabels();
  } catch (error) {
    throw new PlugctlError(
      'HOST_LABELS_UNREADABLE',
      `cannot read the engine's labels: ${describeError(error)}; nodeSelector cannot be decided without them`,
      { cause: error },
    );
  }
  return hostLabelsOf([known, engine, await readLabelsFile(sources)], sources.overrides);
}

async function readLabelsFile(sources: HostLabelSources): Promise<Labels> {
  let text: string;
  try {
    text = await readFile(sources.labelsFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !sources.labelsFileRequired) return {};
    throw new PlugctlError(
      'HOST_LABELS_UNREADABLE',
      `cannot read the labels file ${sources.labelsFile}: ${(error as Error).message}`,
      { kind: 'stalled', cause: error },
    );
  }
  return parseLabelsFile(text, sources.labelsFile);
}

/** True when two label sets hold the same pairs. */
function sameLabels(a: Labels, b: Labels): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

/**
 * The host's labels for a long-running controller: `current()` is what selection uses now; the
 * persistent sources are read again every `intervalMs`, and a change is signalled as a resync. A
 * failed re-read keeps the last labels read (and says so), never half of them.
 */
export class HostLabelsWatcher implements Trigger {
  readonly #sources: HostLabelSources;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  readonly #clock: Clock;
  #current: HostLabels;
  #timer: TimerHandle | undefined;
  #stopped = false;

  /** Starts from labels already read with resolveHostLabels. */
  constructor(
    sources: HostLabelSources,
    initial: HostLabels,
    intervalMs: number,
    logger: Logger,
    clock: Clock = systemClock,
  ) {
    this.#sources = sources;
    this.#current = initial;
    this.#intervalMs = intervalMs;
    this.#logger = logger;
    this.#clock = clock;
  }

  /** The labels to select documents with now. The object changes only when a label changed. */
  current(): HostLabels {
    return this.#current;
  }

  start(target: TriggerTarget): void {
    const tick = (): void => {
      if (this.#stopped) return;
      void this.#refresh(target).finally(() => {
        if (!this.#stopped) this.#timer = this.#clock.setTimeout(tick, this.#intervalMs);
      });
    };
    this.#timer = this.#clock.setTimeout(tick, this.#intervalMs);
  }

  async #refresh(target: TriggerTarget): Promise<void> {
    try {
      const next = await resolveHostLabels(this.#sources);
      if (
        sameLabels(next.effective, this.#current.effective) &&
        sameLabels(next.persistent, this.#current.persistent)
      )
        return;
      this.#current = next;
      this.#logger.info({ labels: next.effective }, 'host labels changed');
      target.resync('host labels changed');
    } catch (error) {
      this.#logger.warn({ err: error }, `keeping the last host labels: ${describeError(error)}`);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
  }
}
