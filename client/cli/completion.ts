/**
 * Shell completion generated from the command tree: `amiflow completion bash|zsh|fish` prints a
 * small script that asks `amiflow __complete -- <words>` for candidates, so every shell completes
 * exactly the commands, flags and flag choices the tree declares (and a new flag needs nothing here).
 */
import type { Command, Option } from 'commander';
import { UsageError } from './flags';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

function visibleCommands(cmd: Command): Command[] {
  return cmd.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden);
}

function optionsInScope(cmd: Command): Option[] {
  const out: Option[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) out.push(...c.options.filter((o) => !o.hidden));
  return out;
}

function findOption(cmd: Command, word: string): Option | undefined {
  const name = word.split('=')[0];
  return optionsInScope(cmd).find((o) => o.long === name || o.short === name);
}

/**
 * Candidates for the last of `words` (the words typed after `amiflow`, the last possibly empty).
 * An empty answer lets the shell fall back to file names (plan files, allow lists, records).
 */
export function completions(program: Command, words: readonly string[]): string[] {
  let cmd = program;
  const typed = words.slice(0, -1);
  const current = words[words.length - 1] ?? '';
  let expectsValueOf: Option | undefined;
  for (const word of typed) {
    if (expectsValueOf) {
      expectsValueOf = undefined;
      continue;
    }
    if (word.startsWith('-')) {
      const option = findOption(cmd, word);
      if (option && (option.required || option.optional) && !word.includes('=')) expectsValueOf = option;
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub) cmd = sub;
  }
  if (expectsValueOf) return (expectsValueOf.argChoices ?? []).filter((c) => c.startsWith(current));
  if (current.startsWith('-')) {
    const used = new Set(typed);
    return optionsInScope(cmd)
      .filter((o) => o.long && (o.variadic || !used.has(o.long) || /repeatable/.test(o.description)))
      .map((o) => o.long as string)
      .filter((f) => f.startsWith(current));
  }
  return visibleCommands(cmd)
    .map((c) => c.name())
    .filter((n) => n.startsWith(current));
}

/** The script that wires `shell`'s completion of `bin` to `amiflow __complete`. */
export function completionScript(shell: Shell, bin = 'amiflow'): string {
  const fn = `_${bin.replace(/\W/g, '_')}_complete`;
  switch (shell) {
    case 'bash':
      return [
        `# ${bin} completion for bash: source <(${bin} completion bash)`,
        `${fn}() {`,
        `  local IFS=$'\\n'`,
        `  COMPREPLY=( $(${bin} __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )`,
        `}`,
        `complete -o default -F ${fn} ${bin}`,
        '',
      ].join('\n');
    case 'zsh':
      return [
        `#compdef ${bin}`,
        `# ${bin} completion for zsh: source <(${bin} completion zsh)`,
        `${fn}() {`,
        `  local -a candidates`,
        `  candidates=("\${(@f)$(${bin} __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")`,
        `  if [[ -n "\${candidates[1]}" ]]; then compadd -a candidates; else _files; fi`,
        `}`,
        `compdef ${fn} ${bin}`,
        '',
      ].join('\n');
    case 'fish':
      return [
        `# ${bin} completion for fish: ${bin} completion fish | source`,
        `function ${fn}`,
        `  set -l words (commandline -opc) (commandline -ct)`,
        `  ${bin} __complete -- $words[2..-1] 2>/dev/null`,
        `end`,
        `complete -c ${bin} -f -a '(${fn})'`,
        '',
      ].join('\n');
  }
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print the shell completion script (bash, zsh or fish)')
    .argument('<shell>', SHELLS.join(' | '))
    .addHelpText(
      'after',
      '\n  bash: source <(amiflow completion bash)\n  zsh:  source <(amiflow completion zsh)\n  fish: amiflow completion fish | source',
    )
    .action((shell: string) => {
      if (!SHELLS.includes(shell as Shell))
        throw new UsageError(`completion: '${shell}' is not a supported shell: ${SHELLS.join(', ')}`);
      process.stdout.write(completionScript(shell as Shell));
    });
  program
    .command('__complete', { hidden: true })
    .description('completion candidates for the words after --')
    .argument('[words...]')
    .action((words: string[] = []) => {
      const out = completions(program, words.length ? words : ['']);
      if (out.length) process.stdout.write(`${out.join('\n')}\n`);
    });
}
