/**
 * A minimum transfer rate for every registry response, as an undici interceptor. undici's body
 * timeout is an idle timeout: a peer that sends one byte every few seconds resets it forever, and a
 * manifest or layer served that way would hold a pull (and a reconcile) without end. The guard
 * counts the bytes that arrive and, every `rateWindowMs` of time the body was being waited for,
 * aborts the response when fewer than `minBytesPerSecond * rateWindowMs / 1000` arrived. Time
 * during which plugctl is not reading (the consumer paused the body: its buffers are full, the disk
 * is behind) is not counted: only the peer's slowness is.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

/** The error a response too slow to finish is aborted with (code PLUGCTL_TRANSFER_TOO_SLOW). */
export class TransferTooSlowError extends Error {
  readonly code = 'PLUGCTL_TRANSFER_TOO_SLOW';
  constructor(received: number, windowMs: number, minBytesPerSecond: number) {
    super(
      `only ${received} bytes arrived in ${windowMs / 1000} s, below the minimum of ${minBytesPerSecond} bytes/s`,
    );
    this.name = 'TransferTooSlowError';
  }
}

/** The rate a response body must keep up. */
export interface RateLimit {
  minBytesPerSecond: number;
  rateWindowMs: number;
}

type Controller = Dispatcher.DispatchController;
type Handler = Dispatcher.DispatchHandler;

/** Forwards every callback to `inner`, watching the body's rate in between. */
class GuardedHandler implements Handler {
  readonly #inner: Handler;
  readonly #limit: RateLimit;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | undefined;
  #received = 0;
  #waited = 0;

  constructor(inner: Handler, limit: RateLimit) {
    this.#inner = inner;
    this.#limit = limit;
    // a few ticks per window, so a paused stretch is subtracted with that precision
    this.#tickMs = Math.max(10, Math.min(1000, Math.floor(limit.rateWindowMs / 10)));
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#inner.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(
    controller: Controller,
    statusCode: number,
    headers: Record<string, string | string[]>,
    socket: Duplex,
  ): void {
    this.#inner.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: Record<string, string | string[]>,
    statusMessage?: string,
  ): void {
    if (statusCode >= 200 && this.#timer === undefined) this.#watch(controller);
    this.#inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.#received += chunk.byteLength;
    this.#inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Controller, trailers: Record<string, string | string[]>): void {
    this.#stop();
    this.#inner.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Controller, error: Error): void {
    this.#stop();
    this.#inner.onResponseError?.(controller, error);
  }

  #watch(controller: Controller): void {
    const { minBytesPerSecond, rateWindowMs } = this.#limit;
    const needed = (minBytesPerSecond * rateWindowMs) / 1000;
    this.#timer = setInterval(() => {
      if (controller.aborted) {
        this.#stop();
        return;
      }
      // paused by the consumer: not the peer's time
      if (controller.paused) return;
      this.#waited += this.#tickMs;
      if (this.#waited < rateWindowMs) return;
      if (this.#received < needed) {
        this.#stop();
        controller.abort(new TransferTooSlowError(this.#received, rateWindowMs, minBytesPerSecond));
        return;
      }
      this.#waited = 0;
      this.#received = 0;
    }, this.#tickMs);
    this.#timer.unref();
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}

/**
 * An interceptor (for `dispatcher.compose`) that aborts any response whose body arrives slower
 * than `limit` with TransferTooSlowError. A rate of 0 disables it.
 */
export function transferGuard(limit: RateLimit): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) =>
    limit.minBytesPerSecond > 0
      ? dispatch(options, new GuardedHandler(handler, limit))
      : dispatch(options, handler);
}
