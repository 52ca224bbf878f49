/**
 * In-process locks of the embedded store.
 *
 * ReadWriteLock serialises blob GC against pulls, upgrades and creates, exactly as moby's muGC
 * does: those hold it shared from before their first blob is written until their config.json is
 * published, GC holds it exclusively, so GC never sees a blob a pull has committed but not yet
 * referenced. It prefers the writer: once GC waits, new readers queue behind it, so a steady
 * stream of pulls cannot starve GC.
 *
 * KeyedMutex serialises operations on one key (a plugin ID or name) while letting different keys
 * run concurrently.
 */

/** A writer-preferring reader-writer lock for async code. */
export class ReadWriteLock {
  #readers = 0;
  #writer = false;
  readonly #waitingWriters: (() => void)[] = [];
  readonly #waitingReaders: (() => void)[] = [];

  /** Runs `fn` holding the lock shared. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#writer || this.#waitingWriters.length > 0) {
      await new Promise<void>((resolve) => this.#waitingReaders.push(resolve));
    } else {
      this.#readers++;
    }
    try {
      return await fn();
    } finally {
      this.#readers--;
      this.#wake();
    }
  }

  /** Runs `fn` holding the lock exclusively. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#writer || this.#readers > 0) {
      await new Promise<void>((resolve) => this.#waitingWriters.push(resolve));
    } else {
      this.#writer = true;
    }
    try {
      return await fn();
    } finally {
      this.#writer = false;
      this.#wake();
    }
  }

  /** Readers holding the lock now (for tests and metrics). */
  get readers(): number {
    return this.#readers;
  }

  /** Hands the lock to the next writer when free, else to every waiting reader. */
  #wake(): void {
    if (this.#writer || this.#readers > 0) return;
    const writer = this.#waitingWriters.shift();
    if (writer !== undefined) {
      this.#writer = true;
      writer();
      return;
    }
    const readers = this.#waitingReaders.splice(0);
    this.#readers += readers.length;
    for (const reader of readers) reader();
  }
}

/** One async mutex per key; keys are forgotten when idle. */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `fn` after every earlier `run` with the same key has settled. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
