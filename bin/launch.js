// Launcher, run by bin/plugctl.js once the Node.js version is known to be supported. The compile
// cache makes repeated CLI starts cheap; the compiled build is used when present (`make build`, and
// the npm package, which ships only dist/), otherwise Node 24 runs the TypeScript sources directly.
// For `plugctl run`, which idles for weeks and is judged by its resident memory, it also sets the
// process up to keep little memory (see startLongRunning).
import { enableCompileCache } from 'node:module';
import { existsSync } from 'node:fs';

const built = existsSync(new URL('../dist/controller/main.js', import.meta.url));
/** A module of the controller, from the compiled build when there is one. */
const load = (path) => import(built ? `../dist/controller/${path}.js` : `../controller/${path}.ts`);

/**
 * The global options that take a value, from their one definition (controller/cli/global-options.json,
 * which main.ts builds its options from), so that a value is not taken for the command. JSON, because
 * loading TypeScript before the compile cache is enabled (below) would cost every start its stripping.
 */
const { default: globalOptions } = await import(
  built ? '../dist/controller/cli/global-options.json' : '../controller/cli/global-options.json',
  { with: { type: 'json' } }
);
const valueOptions = new Set(globalOptions.filter((o) => o.value !== undefined).map((o) => o.flag));

/** The subcommand in `args`: the first word that is neither an option nor an option's value. */
function commandOf(args) {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') return args[i + 1];
    if (!arg.startsWith('-')) return arg;
    if (valueOptions.has(arg)) i++;
  }
  return undefined;
}

const args = process.argv.slice(2);
const longRunning = commandOf(args) === 'run';

/**
 * `plugctl run` caps V8's young generation at YOUNG_SEMI_SPACE_MB per semi-space. V8 sizes it from
 * its heap limit, which follows the machine's memory (64 MB semi-spaces on the 24 GB test host), and grows it
 * whenever enough objects have survived scavenges, which a controller that keeps reconciling always
 * gets to; it shrinks it again only at a full GC that sees almost no allocation. So a busy controller
 * ends up holding ~128 MB of young-generation garbage for good, whatever it retains (bench/soak.ts:
 * resident memory +57 % over 2 minutes of hand-made drift, back to the start after a forced GC, the
 * heap retained flat). 8 MB semi-spaces hold a reconcile's short-lived objects; the soak then stays
 * within a few % (docs/architecture.md, "Memory under load").
 * A heap-sizing flag only takes effect when node starts, so the launcher starts node again with it,
 * in the same process (execve: same PID for systemd, same open stdio), unless the flag is already
 * given (node's command line or NODE_OPTIONS: an operator's choice wins) or execve is unavailable.
 */
const YOUNG_SEMI_SPACE_MB = 8;
function restartWithYoungGenerationCap() {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((flag) =>
    /^--max[-_]semi[-_]space[-_]size\b/.test(flag),
  );
  if (given || typeof process.execve !== 'function') return;
  process.execve(process.execPath, [
    process.execPath,
    `--max-semi-space-size=${YOUNG_SEMI_SPACE_MB}`,
    ...process.execArgv,
    ...process.argv.slice(1),
  ]);
}
if (longRunning) restartWithYoungGenerationCap();

// `plugctl run` runs without TurboFan, V8's top-tier compiler: its machine code alone keeps ~6 MB of
// the node binary resident once it has run, and the controller's hot paths (a no-op resync) are as
// fast with Ignition, Sparkplug and Maglev (measured at 1000 and 10000 plugins, bench/controller.ts).
// Set before the compile cache is enabled, so `run` keeps its cache under its own V8-flags hash and
// the other commands' cache entries stay valid.
if (longRunning) process.getBuiltinModule('node:v8').setFlagsFromString('--no-turbofan');
enableCompileCache?.();

/**
 * Before `plugctl run` starts (measured with 20 plugins converged, bench/controller.ts --only idle):
 * - undici's HTTP parser (llhttp, WebAssembly) stays at baseline code. Tiering it up takes ~22 MB of
 *   compiler memory at once in the first busy seconds, which the C allocator keeps: ~8 MB resident
 *   for good (registry/parser-tiering.ts). It must be set before the store's first request.
 * - once the controller has gone quiet, one memory-reducing GC gives the heap's start-up high-water
 *   mark back (~9 MB, observe/memory.ts).
 * A young generation as small as --max-semi-space-size=1 would save as much as the trim, but costs
 * ~40% CPU per no-op resync of 1000 plugins; the cap above (8 MB) is what bounds it under load.
 */
async function startLongRunning() {
  (await load('registry/parser-tiering')).keepHttpParserBaseline();
  (await load('observe/memory')).startIdleTrim();
}

if (longRunning) await startLongRunning();
const { main } = await load('main');
process.exitCode = await main(args);
