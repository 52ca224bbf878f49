/**
 * Durations on the command line, the way kubectl and Go write them: `300ms`, `30s`, `5m`, `1h`, or
 * combinations such as `1h30m`. The shape is checked strictly (a bare number is not a duration);
 * the arithmetic and the rendering of defaults come from parse-duration and pretty-ms.
 */
import { InvalidArgumentError } from 'commander';
import parse from 'parse-duration';
import prettyMs from 'pretty-ms';

const GO_DURATION = /^(\d+(\.\d+)?(ms|s|m|h))+$/;

/**
 * Parses a duration into milliseconds; throws an InvalidArgumentError naming the flag when the text
 * is not a duration or is below `minMs`.
 */
export function parseDuration(text: string, flag: string, minMs = 0): number {
  const ms = GO_DURATION.test(text) ? parse(text) : null;
  if (ms === null || ms === undefined) {
    throw new InvalidArgumentError(`${flag}: "${text}" is not a duration (examples: 500ms, 30s, 5m, 1h30m)`);
  }
  if (ms < minMs)
    throw new InvalidArgumentError(`${flag}: ${text} is below the minimum of ${formatDuration(minMs)}`);
  return ms;
}

/** Renders milliseconds as a duration parseDuration reads back: `5m`, `1h30m`, `1m30s`, `500ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  return prettyMs(ms, { millisecondsDecimalDigits: 0 }).replaceAll(' ', '');
}
