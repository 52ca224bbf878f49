/**
 * The global options, those given before the command (`plugctl --store embedded apply ...`). They are
 * defined once, in global-options.json: main.ts builds commander's options from it, and the launcher
 * (bin/plugctl.js) reads the same file to find the command in argv before any TypeScript is loaded
 * (`run` is set up differently, and loading TypeScript before the compile cache is enabled would cost
 * every start ~150 ms of type stripping), which is why the list is JSON and not code.
 */
import options from './global-options.json' with { type: 'json' };

/** One global option, as global-options.json declares it. */
export interface GlobalOptionSpec {
  /** the long flag; commander names the option's property after it (`--state-dir` -> stateDir) */
  flag: `--${string}`;
  /** the value's placeholder (`<dir>`) when the option takes a value; none for a switch */
  value?: `<${string}>`;
  /** one line for --help */
  description: string;
  /** the only values allowed */
  choices?: readonly string[];
  /** the value when the option is not given */
  default?: string | readonly string[];
  /** an environment variable that, when set, replaces `default` */
  defaultFromEnv?: string;
  /** how --help describes the default, when not by its value */
  defaultDescription?: string;
  /** may be given more than once; every value is collected into a list */
  repeatable?: boolean;
  /** the value is a Go-style duration (`15m`), parsed into milliseconds, default included */
  duration?: boolean;
}

/** Every global option, in the order --help lists them. */
export const GLOBAL_OPTIONS = options as readonly GlobalOptionSpec[];

/** The option's default in `env` (read when the program is built, never at import). */
export function defaultOf(
  spec: GlobalOptionSpec,
  env: NodeJS.ProcessEnv,
): string | readonly string[] | undefined {
  const fromEnv = spec.defaultFromEnv === undefined ? undefined : env[spec.defaultFromEnv];
  return fromEnv ?? spec.default;
}
