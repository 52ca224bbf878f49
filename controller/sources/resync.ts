/**
 * The resync trigger: every key is looked at again on a fixed interval, so that drift nobody
 * announced (a missed event, a change made while plugctl was down) is corrected within it.
 */
import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.ts';
import type { Trigger, TriggerTarget } from './trigger.ts';

/** Signals a resync every `intervalMs` from start() until stop(). */
export class ResyncTrigger implements Trigger {
  readonly #intervalMs: number;
  readonly #clock: Clock;
  #timer: TimerHandle | undefined;
  #stopped = false;

  /** `intervalMs` is the resync period (the caller enforces its minimum). */
  constructor(intervalMs: number, clock: Clock = systemClock) {
    this.#intervalMs = intervalMs;
    this.#clock = clock;
  }

  start(target: TriggerTarget): void {
    const tick = (): void => {
      if (this.#stopped) return;
      target.resync('resync interval');
      this.#timer = this.#clock.setTimeout(tick, this.#intervalMs);
    };
    this.#timer = this.#clock.setTimeout(tick, this.#intervalMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
  }
}
