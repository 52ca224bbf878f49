/**
 * Whether a command colours its output, by the conventions every terminal tool follows: NO_COLOR
 * (any non-empty value) turns colour off, FORCE_COLOR (other than 0) turns it on, and otherwise only
 * a terminal that is not `dumb` gets colour. The styles themselves come from node:util's styleText.
 */
import { styleText } from 'node:util';

/** Decides colour for output written to `stream`. */
export function colorEnabled(env: NodeJS.ProcessEnv, stream: { isTTY?: boolean }): boolean {
  if ((env.NO_COLOR ?? '') !== '') return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '' && force !== '0') return true;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/** A painter: `paint('green', text)` styles text when colour is on, and returns it unchanged when off. */
export type Painter = (style: Parameters<typeof styleText>[0], text: string) => string;

/** The painter for `enabled`. */
export function painter(enabled: boolean): Painter {
  // validateStream: false, because the decision was made above from the environment the command got
  return enabled
    ? (style, text) => styleText(style, text, { validateStream: false })
    : (_style, text) => text;
}
