/**
 * Completion values for an option whose values commander cannot check with `.choices()`, such as
 * `-o table|json|...|jsonpath=TEMPLATE`: `new CompletingOption(flags, description).completeWith([...])`
 * behaves as a plain commander Option when parsing, and `plugctl completion` offers the words. Kept
 * apart from completion.ts so that main.ts can use it without loading the script generators.
 */
import { Option } from 'commander';

/** A commander Option that also carries the words shell completion offers for its value. */
export class CompletingOption extends Option {
  /** the words offered for the value; empty until completeWith */
  completions: readonly string[] = [];

  /** Sets the words offered for the value (not a restriction: parsing accepts anything). */
  completeWith(words: readonly string[]): this {
    this.completions = words;
    return this;
  }
}
