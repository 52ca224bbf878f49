/**
 * Structured logging with pino. Logs go to stderr so that command output on stdout stays clean;
 * they are pretty-printed when stderr is a terminal and JSON otherwise.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

/** Options for the root logger. */
export interface LoggerOptions {
  level: LevelWithSilent;
  /** pretty output; defaults to whether stderr is a terminal */
  pretty?: boolean;
  /** colours in pretty output (default true); false where NO_COLOR asks for none */
  color?: boolean;
}

/** Builds the root logger; every reconcile takes a child of it carrying its key. */
export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const redact = {
    paths: ['*.password', '*.auth', '*.identitytoken', '*.registryAuth', 'headers["x-registry-auth"]'],
    censor: '[redacted]',
  };
  if (pretty) {
    return pino({
      level: options.level,
      redact,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, colorize: options.color ?? true },
      },
    });
  }
  return pino({ level: options.level, redact }, pino.destination({ fd: 2, sync: true }));
}
