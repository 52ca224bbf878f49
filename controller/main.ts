/**
 * CLI entry: parses flags, builds the object graph for the chosen command, runs it, and returns
 * the exit code. Nothing else lives here; commands are loaded only when they run.
 */
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { describeError } from './errors.ts';
import { formatDuration, parseDuration } from './cli/duration.ts';
import { createContext, type CommandContext, type GlobalOptions, type Output } from './cli/context.ts';
import { defaultOf, GLOBAL_OPTIONS, type GlobalOptionSpec } from './cli/global-options.ts';
import { packageVersion } from './cli/package-version.ts';
import { CompletingOption } from './cli/completion-hints.ts';
import type { GetOptions } from './cli/get.ts';
import type { WaitOptions } from './cli/wait.ts';
import { parseWaitFor } from './cli/wait-for.ts';
import type { LogsOptions } from './cli/plugin-verbs.ts';
// Types only: the modules load when their command runs (run-kube.ts pulls in the cluster side).
import type { RunOptions } from './cli/run.ts';
import type { RunKubeOptions } from './cli/run-kube.ts';

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** `-f PATH...`: no default, so that a missing -f is a usage error and never an empty desired state. */
const filenameOption = (description: string): Option =>
  new Option('-f, --filename <path>', `${description} (repeatable; - reads standard input)`).argParser(
    collect,
  );
const setOption = (): Option =>
  new Option(
    '--set <name>',
    'the apply set these documents belong to (default: derived from the -f paths; required with -f -)',
  );
const takeOwnershipOption = (): Option =>
  new Option(
    '--take-ownership',
    'take plugins owned by another apply set, or installed by hand under a declared name, into this set',
  ).default(false);

/**
 * Runs plugctl with `argv` (without node and script). Never calls process.exit: the caller sets
 * the exit code, so tests can run commands in-process.
 */
export async function main(
  argv: string[],
  io: Output = {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    readStdin: () => readAll(process.stdin),
  },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let exitCode = 0;
  let context: CommandContext | undefined;
  const program = new Command('plugctl')
    .description(
      'Declare Docker managed plugins as DockerPlugin documents and keep the host converged to them.',
    )
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  for (const spec of GLOBAL_OPTIONS) program.addOption(globalOption(spec, env));

  const run =
    <O>(command: (options: O, ctx: CommandContext) => Promise<number>, defaultLogLevel?: 'info') =>
    async (options: O): Promise<void> => {
      context = createContext(program.opts<GlobalOptions>(), io, env, defaultLogLevel);
      exitCode = await command(options, context);
    };

  program
    .command('apply')
    .description('converge the host to the documents once')
    .addOption(filenameOption('file or directory of DockerPlugin documents'))
    .addOption(setOption())
    .addOption(takeOwnershipOption())
    .option('--dry-run', 'print the plan instead of executing it', false)
    .option('--no-prune', 'never remove managed plugins that are no longer declared')
    .option('--concurrency <n>', 'plugins worked on at once', (v) => positiveInt(v, '--concurrency'), 4)
    .addOption(
      new Option('--progress <mode>', 'bars on a terminal (tty), one line per step (plain), or none (quiet)')
        .choices(['auto', 'tty', 'plain', 'quiet'])
        .default('auto'),
    )
    .option('-q, --quiet', 'print only the results', false)
    .action(run(async (o, ctx) => (await import('./cli/apply.ts')).applyCommand(o, ctx)));

  program
    .command('diff')
    .description('show what apply would do (exit 0: no differences, 1: differences, 2: errors)')
    .addOption(filenameOption('file or directory of DockerPlugin documents'))
    .addOption(setOption())
    .addOption(takeOwnershipOption())
    .option('--no-prune', 'do not plan removals of managed plugins that are no longer declared')
    .action(run(async (o, ctx) => (await import('./cli/diff.ts')).diffCommand(o, ctx)));

  program
    .command('get')
    .description(
      "list the host's plugins, which plugctl manages, their status and (with -f) whether they are in sync",
    )
    .argument('[name...]', 'document names (metadata.name), plugin names or ID prefixes; default: all')
    .addOption(filenameOption('documents to compare with'))
    .addOption(setOption())
    .option('-l, --selector <selector>', "label selector, kubectl's syntax (e.g. role=storage,!gpu)")
    .addOption(
      new CompletingOption('-o, --output <format>', 'table, wide, name, json, yaml or jsonpath=TEMPLATE')
        .default('table')
        .completeWith(['table', 'wide', 'name', 'json', 'yaml', 'jsonpath=']),
    )
    .option('--no-headers', 'leave out the header line of tables')
    .option('-w, --watch', 'after listing, print every change until interrupted', false)
    .action(async (names: string[], options: GetOptions) => {
      context = createContext(program.opts<GlobalOptions>(), io, env);
      exitCode = await (await import('./cli/get.ts')).getCommand(names, options, context);
    });

  program
    .command('wait')
    .description('wait until a running controller reports a condition (kubectl wait), e.g. Ready')
    .argument('<object...>', 'dockerplugin/NAME (document name or plugin name)')
    .requiredOption(
      '--for <condition>',
      'condition=TYPE[=VALUE] (Ready, Reconciling, Stalled; VALUE defaults to True) or delete',
      (v) => parseWaitFor(v),
    )
    .addOption(
      new Option('--timeout <duration>', 'give up after this long (0: check once)')
        .argParser((v) => parseDuration(v, '--timeout'))
        .default(30_000, '30s'),
    )
    .action(async (objects: string[], options: WaitOptions) => {
      context = createContext(program.opts<GlobalOptions>(), io, env);
      exitCode = await (await import('./cli/wait.ts')).waitCommand(objects, options, context);
    });

  program
    .command('reconcile')
    .description('ask the running plugctl run to reconcile now (all, or the NAMEs) and wait for the result')
    .argument('[name...]', 'document names or plugin names; default: every plugin')
    .addOption(
      new Option('--timeout <duration>', 'how long to wait for the result')
        .argParser((v) => parseDuration(v, '--timeout', 1))
        .default(300_000, '5m'),
    )
    .action(async (names: string[], options: { timeout: number }) => {
      context = createContext(program.opts<GlobalOptions>(), io, env);
      exitCode = await (await import('./cli/reconcile.ts')).reconcileCommand(names, options, context);
    });

  program
    .command('inspect')
    .description("show the store's record of plugins, as docker plugin inspect does (both stores)")
    .argument('<name...>', 'document names, plugin names or ID prefixes')
    .action(async (names: string[]) => {
      context = createContext(program.opts<GlobalOptions>(), io, env);
      exitCode = await (await import('./cli/plugin-verbs.ts')).inspectCommand(names, context);
    });

  program
    .command('logs')
    .description("print a plugin's output (embedded store); for the docker store, say where dockerd keeps it")
    .argument('<name>', 'document name, plugin name or ID prefix')
    .option('-f, --follow', 'keep printing new output until interrupted', false)
    .option('--tail <n>', 'print only the last N lines first', (v) => positiveInt(v, '--tail'))
    .action(async (name: string, options: LogsOptions) => {
      context = createContext(program.opts<GlobalOptions>(), io, env);
      exitCode = await (await import('./cli/plugin-verbs.ts')).logsCommand(name, options, context);
    });

  program
    .command('rm')
    .description('remove plugins (docker plugin rm); a plugin plugctl manages only with --force')
    .argument('<name...>', 'document names, plugin names or ID prefixes')
    .option(
      '--force',
      'remove an enabled plugin, or one plugctl manages (the controller reinstalls it)',
      false,
    )
    .action(async (names: string[], options: { force: boolean }) => {
      context = createContext(program.opts<GlobalOptions>(), io, env);
      exitCode = await (await import('./cli/plugin-verbs.ts')).removeCommand(names, options, context);
    });

  program
    .command('run')
    .description(
      'keep the host converged: watch the documents and the engine, correct drift, serve health and metrics',
    )
    .addOption(filenameOption('file or directory of DockerPlugin documents'))
    .addOption(setOption())
    .addOption(takeOwnershipOption())
    .addOption(
      new Option('--resync <duration>', 'reconcile every plugin at least this often (at least 1s)')
        .argParser((v) => parseDuration(v, '--resync', 1000))
        .default(300_000, formatDuration(300_000)),
    )
    .option('--listen <host:port>', 'address of /healthz, /readyz and /metrics', '127.0.0.1:9365')
    .option('--workers <n>', 'plugins reconciled in parallel', (v) => positiveInt(v, '--workers'), 4)
    .addOption(
      new Option(
        '--shutdown-timeout <duration>',
        'how long reconciles in flight may take to finish at shutdown',
      )
        .argParser((v) => parseDuration(v, '--shutdown-timeout'))
        .default(30_000, formatDuration(30_000)),
    )
    .option('--kube', "Kubernetes mode: the cluster's DockerPlugins selecting this node, instead of -f")
    .option('--node-name <name>', 'with --kube: this node (default $NODE_NAME, else the hostname)')
    .option('--kubeconfig <path>', 'with --kube: the cluster (default $KUBECONFIG, else in-cluster)')
    .option(
      '--namespace <ns>',
      "with --kube: the agent's namespace, where pull Secrets are read (default $POD_NAMESPACE, else the service account's)",
    )
    .addOption(
      new Option(
        '--watch-silence <duration>',
        'with --kube: restart a watch that delivered nothing, not even a bookmark, for this long',
      )
        .argParser((v) => parseDuration(v, '--watch-silence', 1000))
        .default(90_000, formatDuration(90_000)),
    )
    .addOption(
      new Option('--relist <duration>', 'with --kube: list every resource again this often')
        .argParser((v) => parseDuration(v, '--relist', 1000))
        .default(30 * 60_000, formatDuration(30 * 60_000)),
    )
    .action(
      run(async (o: RunOptions & RunKubeOptions & { kube?: boolean }, ctx) => {
        if (o.kube !== true) return (await import('./cli/run.ts')).runCommand(o, ctx);
        if (o.filename !== undefined) {
          ctx.io.err('error: plugctl run takes either -f or --kube, not both\n');
          return 2;
        }
        return (await import('./cli/run-kube.ts')).runKubeCommand(o, ctx);
      }, 'info'),
    );

  program
    .command('prune')
    .description('remove every plugin an apply set owns, e.g. a set whose documents no longer exist')
    .requiredOption('--set <name>', 'the apply set to remove (as `plugctl get` shows it)')
    .option('--dry-run', 'print what would be removed instead of removing it', false)
    .action(run(async (o, ctx) => (await import('./cli/prune.ts')).pruneCommand(o, ctx)));

  program
    .command('create')
    .description('create a plugin in the embedded store from a directory or tar with config.json and rootfs/')
    .argument('<name>', 'local name, e.g. my/plugin:1.0')
    .argument('<context>', 'directory or .tar file holding config.json and rootfs/')
    .action(async (name: string, contextPath: string) => {
      context = createContext(program.opts<GlobalOptions>(), io, env);
      exitCode = await (await import('./cli/build.ts')).createCommand(name, contextPath, context);
    });

  program
    .command('push')
    .description('push a plugin of the embedded store to a registry')
    .argument('<name>', 'local name')
    .argument('[remote]', 'where to push (default: the name)')
    .action(async (name: string, remote: string | undefined) => {
      context = createContext(program.opts<GlobalOptions>(), io, env);
      exitCode = await (await import('./cli/build.ts')).pushCommand(name, remote, context);
    });

  program
    .command('gc')
    .description('delete blobs of the embedded store that no plugin references')
    .action(run(async (_o, ctx) => (await import('./cli/build.ts')).gcCommand(ctx)));

  program
    .command('version')
    .description(
      "print plugctl's version and, with the docker store, the engine's version, API version and known hazards",
    )
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'),
    )
    .action(
      run(async (o: { output: 'text' | 'json' | 'yaml' }, ctx) =>
        (await import('./cli/version.ts')).versionCommand(o, ctx, env),
      ),
    );

  program
    .command('explain')
    .description('document a DockerPlugin field, as kubectl explain does (e.g. dockerplugin.spec.settings)')
    .argument('<field>', 'dockerplugin[.field...]')
    .option('--recursive', 'print every field below as a tree of names and types', false)
    .action(async (field: string, options: { recursive: boolean }) => {
      exitCode = (await import('./cli/explain.ts')).explainCommand(field, options, io);
    });

  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish) for plugctl')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh', 'fish']))
    .action(async (shell: 'bash' | 'zsh' | 'fish') => {
      exitCode = (await import('./cli/completion.ts')).completionCommand(shell, program, io);
    });

  try {
    await program.parseAsync(splitShortAssignments(argv), { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were already printed.
      return error.exitCode === 0 ? 0 : 2;
    }
    io.err(`error: ${describeError(error)}\n`);
    exitCode = 2;
  } finally {
    await context?.close();
  }
  return exitCode;
}

/**
 * `-o=json` as kubectl takes it: commander reads `-o=json` as the value `=json`, so a short flag
 * joined to its value by `=` is split into the flag and the value. Arguments after `--` stay as given.
 */
export function splitShortAssignments(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  const head = end < 0 ? argv : argv.slice(0, end);
  const split = head.flatMap((arg) => {
    const match = /^(-[A-Za-z])=(.*)$/s.exec(arg);
    return match === null ? [arg] : [match[1]!, match[2]!];
  });
  return end < 0 ? split : [...split, ...argv.slice(end)];
}

/** The whole of a stream as text (standard input for `-f -`). */
async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream) text += String(chunk);
  return text;
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} must be a positive integer`);
  return n;
}

/** commander's option for a global option (the list is cli/global-options.json). */
function globalOption(spec: GlobalOptionSpec, env: NodeJS.ProcessEnv): Option {
  const option = new Option(
    spec.value === undefined ? spec.flag : `${spec.flag} ${spec.value}`,
    spec.description,
  );
  if (spec.choices !== undefined) option.choices(spec.choices);
  if (spec.repeatable === true) option.argParser(collect);
  const value = defaultOf(spec, env);
  if (spec.duration === true) {
    option.argParser((v) => parseDuration(v, spec.flag));
    if (typeof value === 'string') option.default(parseDuration(value, spec.flag), value);
    return option;
  }
  if (value !== undefined) option.default(value, spec.defaultDescription);
  return option;
}
