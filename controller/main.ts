/**
 * CLI entry: parses flags, builds the object graph for the chosen command, runs it, and returns
 * the exit code. Nothing else lives here; commands are loaded only when they run.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { describeError } from './errors.ts';
import { parseDuration } from './cli/duration.ts';
import { DEFAULT_PULL_TIMEOUT_MS } from './limits.ts';
import { createContext, type CommandContext, type GlobalOptions, type Output } from './cli/context.ts';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/**
 * Runs plugctl with `argv` (without node and script). Never calls process.exit: the caller sets
 * the exit code, so tests can run commands in-process.
 */
export async function main(
  argv: string[],
  io: Output = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let exitCode = 0;
  let context: CommandContext | undefined;
  const program = new Command('plugctl')
    .description(
      'Declare Docker managed plugins as DockerPlugin documents and keep the host converged to them.',
    )
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .option(
      '--docker-host <url>',
      'Docker Engine address (unix:///path or tcp://127.0.0.1:port); default $DOCKER_HOST or unix:///var/run/docker.sock',
    )
    .addOption(
      new Option(
        '--store <kind>',
        'plugin store: docker (the Engine API) or embedded (plugctl runs plugins with runc)',
      )
        .choices(['auto', 'docker', 'embedded'])
        .default(
          'auto',
          'docker when DOCKER_HOST or --docker-host is set or /var/run/docker.sock exists, else embedded',
        ),
    )
    .option(
      '--root <dir>',
      "the embedded store's plugins directory (moby's layout)",
      '/var/lib/plugctl/plugins',
    )
    .option(
      '--state-dir <dir>',
      'where plugctl keeps its inventory of managed plugins',
      env.PLUGCTL_STATE_DIR ?? '/var/lib/plugctl',
    )
    .option(
      '--insecure-registry <host[:port]>',
      'a registry that may be reached over plain http (loopback ones always may; repeatable)',
      collect,
      [],
    )
    .option(
      '--pull-timeout <duration>',
      "overall deadline of one plugin's registry lookup, and of its pull (embedded store)",
      (v) => parseDuration(v, '--pull-timeout'),
      DEFAULT_PULL_TIMEOUT_MS,
    )
    .option(
      '--node-labels <k=v,...>',
      "this host's labels, matched against spec.nodeSelector (kubernetes.io/hostname is added)",
    )
    .addOption(
      new Option('--log-level <level>', 'log level (logs go to stderr)')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
        .default('error'),
    );

  const run =
    <O>(command: (options: O, ctx: CommandContext) => Promise<number>) =>
    async (options: O): Promise<void> => {
      context = createContext(program.opts<GlobalOptions>(), io, env);
      exitCode = await command(options, context);
    };

  program
    .command('apply')
    .description('converge the host to the documents once')
    .requiredOption(
      '-f, --filename <path>',
      'file or directory of DockerPlugin documents (repeatable)',
      collect,
      [],
    )
    .option('--dry-run', 'print the plan instead of executing it', false)
    .option('--no-prune', 'never remove managed plugins that are no longer declared')
    .option('--concurrency <n>', 'plugins worked on at once', (v) => positiveInt(v, '--concurrency'), 4)
    .action(run(async (o, ctx) => (await import('./cli/apply.ts')).applyCommand(o, ctx)));

  program
    .command('diff')
    .description('show what apply would do (exit 0: no changes, 1: changes, 2: error)')
    .requiredOption(
      '-f, --filename <path>',
      'file or directory of DockerPlugin documents (repeatable)',
      collect,
      [],
    )
    .option('--no-prune', 'do not plan removals of managed plugins that are no longer declared')
    .action(run(async (o, ctx) => (await import('./cli/diff.ts')).diffCommand(o, ctx)));

  program
    .command('get')
    .description("list the host's plugins, which plugctl manages, and (with -f) whether they are in sync")
    .option('-f, --filename <path>', 'documents to compare with (repeatable)', collect, [])
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'json', 'yaml'])
        .default('table'),
    )
    .action(run(async (o, ctx) => (await import('./cli/get.ts')).getCommand(o, ctx)));

  program
    .command('run')
    .description(
      'keep the host converged: watch the documents and the engine, correct drift, serve health and metrics',
    )
    .requiredOption(
      '-f, --filename <path>',
      'file or directory of DockerPlugin documents (repeatable)',
      collect,
      [],
    )
    .option(
      '--resync <duration>',
      'reconcile every plugin at least this often',
      (v) => parseDuration(v, '--resync'),
      300_000,
    )
    .option('--listen <host:port>', 'address of /healthz, /readyz and /metrics', '127.0.0.1:9365')
    .option('--workers <n>', 'plugins reconciled in parallel', (v) => positiveInt(v, '--workers'), 4)
    .option(
      '--shutdown-timeout <duration>',
      'how long reconciles in flight may take to finish at shutdown',
      (v) => parseDuration(v, '--shutdown-timeout'),
      30_000,
    )
    .action(run(async (o, ctx) => (await import('./cli/run.ts')).runCommand(o, ctx)));

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

  try {
    await program.parseAsync(argv, { from: 'user' });
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

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} must be a positive integer`);
  return n;
}
