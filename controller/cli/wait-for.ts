/**
 * `--for` of `plugctl wait`, kept apart from the command so that main.ts can parse it without
 * loading the command.
 */
import { InvalidArgumentError } from 'commander';

/** A parsed `--for`. */
export type WaitFor = { kind: 'condition'; type: string; value: string } | { kind: 'delete' };

/** Parses `--for` (commander's argParser: a bad value is a usage error). */
export function parseWaitFor(text: string): WaitFor {
  if (text === 'delete') return { kind: 'delete' };
  const match = /^condition=([A-Za-z][A-Za-z0-9]*)(?:=(.+))?$/.exec(text);
  if (match === null)
    throw new InvalidArgumentError(
      `"${text}": expected condition=TYPE[=VALUE] (e.g. condition=Ready) or delete`,
    );
  const known = ['Ready', 'Reconciling', 'Stalled'].find((t) => t.toLowerCase() === match[1]!.toLowerCase());
  return { kind: 'condition', type: known ?? match[1]!, value: match[2] ?? 'True' };
}
