/**
 * Completion words for options whose values are open-ended: commander's `choices` would refuse a
 * value such as `jsonpath={.items}`, yet the shell should still offer the usual ones.
 */
import type { Option } from 'commander';

const hints = new WeakMap<Option, readonly string[]>();

/** Records `words` as what completion offers for `option`; returns the option for chaining. */
export function withCompletions(option: Option, words: readonly string[]): Option {
  hints.set(option, words);
  return option;
}

/** The words recorded for `option` by withCompletions, if any. */
export function completionsOf(option: Option): readonly string[] | undefined {
  return hints.get(option);
}
