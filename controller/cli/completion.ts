/**
 * `plugctl completion bash|zsh|fish`: a shell completion script generated from the commander program
 * itself (its commands, options, option values and arguments), so a command or option added to
 * main.ts is completed without another edit. The scripts are static: pressing TAB never starts node.
 *
 * What is completed: command names; each command's options and the global ones; the values of an
 * option or argument that has choices (`--store`, `completion SHELL`) or completion words
 * (CompletingOption, for values choices cannot check, such as `-o jsonpath=...`); files and
 * directories for `<path>`, `<dir>`, `<context>` values; DockerPlugin field paths for `explain`.
 */
import { Help, type Command, type Option } from 'commander';
import { allFields, dockerPluginFields } from '../api/fields.ts';
import { KIND } from '../api/types.ts';
import { CompletingOption } from './completion-hints.ts';
import type { Output } from './context.ts';

/** The shells a script can be generated for. */
export const SHELLS = ['bash', 'zsh', 'fish'] as const;
/** One of SHELLS. */
export type Shell = (typeof SHELLS)[number];

/** What completes a value: fixed words, files, directories, or nothing (free text). */
type Values = { words: readonly string[] } | 'file' | 'dir' | 'none';

/** One option as the scripts need it. */
interface OptionModel {
  short?: string;
  long?: string;
  description: string;
  /** undefined: a switch; else what completes its value */
  value?: Values;
}

/** One command as the scripts need it. */
interface CommandModel {
  name: string;
  description: string;
  options: OptionModel[];
  /** what completes the positional arguments, in order (the last one repeats if variadic) */
  args: Values[];
}

/** The program as the scripts need it. */
interface ProgramModel {
  name: string;
  globals: OptionModel[];
  commands: CommandModel[];
}

/** Value placeholders that name a file system path. */
const FILE_PLACEHOLDERS = new Set(['path', 'file', 'context']);
const DIR_PLACEHOLDERS = new Set(['dir']);

function placeholderValues(placeholder: string | undefined): Values {
  if (placeholder === undefined) return 'none';
  if (FILE_PLACEHOLDERS.has(placeholder)) return 'file';
  if (DIR_PLACEHOLDERS.has(placeholder)) return 'dir';
  return 'none';
}

function optionModel(option: Option): OptionModel {
  const takesValue = option.required || option.optional;
  const placeholder = /<([^>]+)>|\[([^\]]+)\]/.exec(option.flags);
  const value: Values | undefined = !takesValue
    ? undefined
    : option.argChoices !== undefined
      ? { words: option.argChoices }
      : option instanceof CompletingOption && option.completions.length > 0
        ? { words: option.completions }
        : placeholderValues(placeholder?.[1] ?? placeholder?.[2]);
  return {
    ...(option.short === undefined ? {} : { short: option.short }),
    ...(option.long === undefined ? {} : { long: option.long }),
    description: option.description,
    ...(value === undefined ? {} : { value }),
  };
}

/** `explain` completes DockerPlugin field paths (`dockerplugin.spec.settings`). */
function explainPaths(): string[] {
  const kind = KIND.toLowerCase();
  return [kind, ...allFields(dockerPluginFields()).map((field) => `${kind}.${field.path}`)];
}

/** The model of `program`, read through commander's public Help API (help options included). */
function programModel(program: Command): ProgramModel {
  const help = new Help();
  const globals = help.visibleOptions(program).map(optionModel);
  // --help is both the program's and each command's: listed once, with the globals
  const globalNames = new Set(globals.flatMap(spellings));
  return {
    name: program.name(),
    globals,
    commands: help.visibleCommands(program).map((command) => ({
      name: command.name(),
      description: command.description(),
      options: help
        .visibleOptions(command)
        .map(optionModel)
        .filter((option) => !spellings(option).some((name) => globalNames.has(name))),
      args: command.registeredArguments.map((argument) =>
        command.name() === 'explain'
          ? { words: explainPaths() }
          : argument.argChoices !== undefined
            ? { words: argument.argChoices }
            : command.name() === 'help'
              ? { words: help.visibleCommands(program).map((c) => c.name()) }
              : placeholderValues(argument.name()),
      ),
    })),
  };
}

/** Every spelling of an option (`-o`, `--output`). */
function spellings(option: OptionModel): string[] {
  return [option.short, option.long].filter((s): s is string => s !== undefined);
}

/** A word list as one shell-quoted string (the words never hold a quote: they are names). */
function quoteWords(words: readonly string[]): string {
  return `'${words.join(' ').replaceAll("'", "'\\''")}'`;
}

/** The bash code that completes `values` from `$cur`, then returns. */
function bashValues(values: Values): string {
  if (values === 'file')
    return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return';
  if (values === 'dir')
    return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")); return';
  if (values === 'none') return 'return';
  return `COMPREPLY=($(compgen -W ${quoteWords(values.words)} -- "$cur")); return`;
}

function bashScript(model: ProgramModel): string {
  const fn = `_${model.name}`;
  const valueFlags = (options: OptionModel[]) =>
    options.filter((o) => o.value !== undefined).flatMap(spellings);
  const globalValueFlags = valueFlags(model.globals);
  // the value of the option before the cursor: per command (its own options), then the globals
  const valueCases: string[] = [];
  for (const command of model.commands) {
    for (const option of command.options) {
      if (option.value === undefined) continue;
      const patterns = spellings(option).map((s) => `${command.name}:${s}`);
      valueCases.push(`    ${patterns.join('|')}) ${bashValues(option.value)} ;;`);
    }
  }
  for (const option of model.globals) {
    if (option.value === undefined) continue;
    valueCases.push(`    *:${spellings(option).join('|*:')}) ${bashValues(option.value)} ;;`);
  }
  const optionCases = model.commands.map(
    (c) =>
      `      ${c.name}) words=${quoteWords([...c.options.flatMap(spellings), ...model.globals.flatMap(spellings)])} ;;`,
  );
  const argCases = model.commands
    .filter((c) => c.args.length > 0)
    .map((c) => {
      const cases = c.args.map((values, i) => `        ${i}) ${bashValues(values)} ;;`);
      return `    ${c.name})\n      case $argn in\n${cases.join('\n')}\n      esac ;;`;
    });
  const commandValueFlags = model.commands.flatMap((c) => valueFlags(c.options).map((s) => `${c.name}:${s}`));
  return `# bash completion for ${model.name}, generated by \`${model.name} completion bash\`.
# Load it now with \`source <(${model.name} completion bash)\`, or for every shell:
#   ${model.name} completion bash > /etc/bash_completion.d/${model.name}
${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cmd= argn=0 i word words
  COMPREPLY=()
  # the command is the first word that is neither an option nor an option's value
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    case "$cmd:$word" in
      ${[...globalValueFlags.map((s) => `*:${s}`), ...commandValueFlags].join('|')}) ((i++)) ;;
      *:-*) ;;
      :*) cmd=$word ;;
      *) ((argn++)) ;;
    esac
  done
  case "$cmd:$prev" in
${valueCases.join('\n')}
  esac
  if [[ $cur == -* ]]; then
    case $cmd in
${optionCases.join('\n')}
      *) words=${quoteWords(model.globals.flatMap(spellings))} ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    return
  fi
  case $cmd in
    '') COMPREPLY=($(compgen -W ${quoteWords(model.commands.map((c) => c.name))} -- "$cur")) ;;
${argCases.join('\n')}
  esac
}
complete -F ${fn} ${model.name}
`;
}

/** Text in a single-quoted zsh word: a name or description of `_describe`, or a value message. */
function zshText(text: string): string {
  return text.replaceAll("'", "'\\''").replaceAll(':', '\\:');
}

/** An option's explanation, between the brackets of an `_arguments` spec (colons are fine there). */
function zshExplanation(text: string): string {
  return text.replaceAll("'", "'\\''").replaceAll('[', '\\[').replaceAll(']', '\\]');
}

function zshAction(values: Values): string {
  if (values === 'file') return '_files';
  if (values === 'dir') return '_files -/';
  if (values === 'none') return ' ';
  return `(${values.words.map((w) => w.replaceAll(/([\\()' ])/g, '\\$1')).join(' ')})`;
}

/** One `_arguments` spec per option: `'(-o --output)'{-o,--output=}'[desc]:value:action'`. */
function zshOption(option: OptionModel): string {
  const names = spellings(option);
  const description = `[${zshExplanation(option.description.split('\n')[0] ?? '')}]`;
  const value = option.value === undefined ? '' : `:value:${zshText(zshAction(option.value))}`;
  const repeat = option.value === undefined ? '' : '*';
  const forms = names.map((n) => (option.value !== undefined && n.startsWith('--') ? `${n}=` : n));
  if (forms.length === 1) return `'${repeat}${forms[0]}${description}${value}'`;
  const exclusion = repeat === '' ? `(${names.join(' ')})` : '';
  return `'${exclusion}${repeat}'{${forms.join(',')}}'${description}${value}'`;
}

function zshScript(model: ProgramModel): string {
  const fn = `_${model.name}`;
  const commands = model.commands.map((c) => `    '${zshText(c.name)}:${zshText(c.description)}'`);
  const globals = model.globals.map((o) => `    ${zshOption(o)} \\`);
  const perCommand = model.commands.map((c) => {
    const specs = [
      ...c.options.map(zshOption),
      ...model.globals.map(zshOption),
      ...c.args.map((values, i) => `'${i + 1}:${zshText(c.name)} argument:${zshText(zshAction(values))}'`),
    ];
    return `        (${c.name})\n          _arguments -s \\\n            ${specs.join(' \\\n            ')}\n          ;;`;
  });
  return `#compdef ${model.name}
# zsh completion for ${model.name}, generated by \`${model.name} completion zsh\`.
# Load it now with \`source <(${model.name} completion zsh)\`, or for every shell put it in a
# directory of $fpath as _${model.name}:  ${model.name} completion zsh > "\${fpath[1]}/_${model.name}"

${fn}() {
  local curcontext=$curcontext state line
  local -a commands
  commands=(
${commands.join('\n')}
  )
  _arguments -C -s \\
${globals.join('\n')}
    '1:command:->command' \\
    '*::argument:->argument'
  case $state in
    (command)
      _describe -t commands '${model.name} command' commands
      ;;
    (argument)
      curcontext=\${curcontext%:*:*}:${model.name}-$line[1]:
      case $line[1] in
${perCommand.join('\n')}
      esac
      ;;
  esac
}

if [[ $funcstack[1] == ${fn} ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${model.name}
fi
`;
}

/** A fish string in single quotes. */
function fishQuote(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

function fishOption(name: string, condition: string, option: OptionModel): string {
  const parts = [`complete -c ${name} -n ${fishQuote(condition)}`];
  if (option.short !== undefined) parts.push(`-s ${option.short.replace(/^-/, '')}`);
  if (option.long !== undefined) parts.push(`-l ${option.long.replace(/^--/, '')}`);
  const value = option.value;
  if (value === 'file') parts.push('-r -F');
  else if (value === 'dir')
    parts.push(`-x -a ${fishQuote('(__fish_complete_directories (commandline -ct))')}`);
  else if (value === 'none') parts.push('-x');
  else if (value !== undefined) parts.push(`-x -a ${fishQuote(value.words.join(' '))}`);
  parts.push(`-d ${fishQuote(option.description.split('\n')[0] ?? '')}`);
  return parts.join(' ');
}

function fishScript(model: ProgramModel): string {
  const names = model.commands.map((c) => c.name).join(' ');
  const noCommand = `not __fish_seen_subcommand_from ${names}`;
  const lines = [
    `# fish completion for ${model.name}, generated by \`${model.name} completion fish\`.`,
    `# Load it now with \`${model.name} completion fish | source\`, or for every shell:`,
    `#   ${model.name} completion fish > ~/.config/fish/completions/${model.name}.fish`,
    `complete -c ${model.name} -f`,
    ...model.globals.map((o) => fishOption(model.name, 'true', o)),
    ...model.commands.map(
      (c) =>
        `complete -c ${model.name} -n ${fishQuote(noCommand)} -a ${c.name} -d ${fishQuote(c.description)}`,
    ),
  ];
  for (const c of model.commands) {
    const inCommand = `__fish_seen_subcommand_from ${c.name}`;
    lines.push(...c.options.map((o) => fishOption(model.name, inCommand, o)));
    const first = c.args[0];
    if (first === 'file' || first === 'dir')
      lines.push(`complete -c ${model.name} -n ${fishQuote(inCommand)} -F`);
    else if (first !== undefined && first !== 'none') {
      lines.push(
        `complete -c ${model.name} -n ${fishQuote(inCommand)} -a ${fishQuote(first.words.join(' '))}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The completion script of `program` for `shell`. */
export function renderCompletion(program: Command, shell: Shell): string {
  const model = programModel(program);
  switch (shell) {
    case 'bash':
      return bashScript(model);
    case 'zsh':
      return zshScript(model);
    case 'fish':
      return fishScript(model);
  }
}

/** `plugctl completion SHELL`: prints the script; exit 0. (commander rejects other shells, exit 2.) */
export function completionCommand(shell: Shell, program: Command, io: Output): number {
  io.out(renderCompletion(program, shell));
  return 0;
}
