/**
 * Every bound plugctl puts on input it does not control, with its default, in one place: the YAML
 * documents it loads, the registries it talks to, and the build contexts it reads. A bound exists so
 * that a hostile or broken input fails fast with an error naming the bound, instead of costing
 * minutes of CPU, gigabytes of memory or a reconcile that never ends. docs/usage.md's "Limits" section
 * lists the same values; change both together.
 */

/** Bounds on one YAML file of DockerPlugin documents, checked while it is read and parsed. */
export interface DocumentLimits {
  /** largest file, bytes; checked before the file is read */
  maxFileBytes: number;
  /** most documents (`---` separated) in one file */
  maxDocuments: number;
  /** most entries in one list or map */
  maxEntries: number;
  /** most scalars, lists and maps in one document */
  maxNodes: number;
  /** largest scalar (a value or a key), bytes of its source text */
  maxValueBytes: number;
  /** deepest nesting of lists and maps */
  maxDepth: number;
}

/**
 * Generous for any real repository of documents (a DockerPlugin has a few dozen values and nests six
 * deep), small enough that a file at every bound loads in well under two seconds and 100 MB: loading
 * is linear in the file's size within them. A repository that needs more splits its documents into
 * several files (a directory is read file by file).
 */
export const DEFAULT_DOCUMENT_LIMITS: Readonly<DocumentLimits> = Object.freeze({
  maxFileBytes: 4 * 1024 * 1024,
  maxDocuments: 1000,
  maxEntries: 1000,
  maxNodes: 20_000,
  maxValueBytes: 64 * 1024,
  maxDepth: 32,
});

/** Deadlines of every registry request (see controller/registry/transfer-guard.ts). */
export interface TransferLimits {
  /** from sending a request to having its response headers, ms (a deadline, not an idle timeout) */
  headersTimeoutMs: number;
  /** longest silence while a response body is read, ms */
  bodyIdleTimeoutMs: number;
  /**
   * slowest acceptable download, bytes per second, averaged over `rateWindowMs`: a peer that sends a
   * byte every few seconds never trips an idle timeout, but trips this. Time during which plugctl
   * itself is not reading (its buffers are full) does not count.
   */
  minBytesPerSecond: number;
  /** the window minBytesPerSecond is averaged over, ms */
  rateWindowMs: number;
}

/** 30 s for headers and for silence; below 1 KiB/s over 30 s a transfer is aborted. */
export const DEFAULT_TRANSFER_LIMITS: Readonly<TransferLimits> = Object.freeze({
  headersTimeoutMs: 30_000,
  bodyIdleTimeoutMs: 30_000,
  minBytesPerSecond: 1024,
  rateWindowMs: 30_000,
});

/**
 * Overall deadline of one plugin's registry work, ms: the lookup of its remote before planning, and
 * separately its pull (manifest, config and every layer, unpacked). Per-request deadlines bound
 * each request; this bounds the sum, retries included, so that one plugin's registry can never hold
 * its reconcile for longer. 15 minutes pull a 4 GiB plugin at 5 MB/s.
 */
export const DEFAULT_PULL_TIMEOUT_MS = 15 * 60 * 1000;

/**
 * Longest wait between two attempts of one registry request, ms, including the wait a 429's
 * Retry-After asks for: a registry asking for a day is asked again after this, and its request is
 * reported in the plugin's condition.
 */
export const DEFAULT_RETRY_MAX_MS = 8_000;

/** Largest config.json of a build context, bytes (a plugin config is a few KiB). */
export const MAX_CONTEXT_CONFIG_BYTES = 1024 * 1024;

/** Largest secret file (spec.settings.env valueFrom.file) plugctl reads; an env value is small. */
export const MAX_SECRET_BYTES = 64 * 1024;
