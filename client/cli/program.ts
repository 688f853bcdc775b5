/**
 * The amiflow command tree, declared once with commander: every command group registers itself
 * from its own file; help, `--version`, shell completion and docs/cli.md all come from this tree.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { registerCompletion } from './completion';
import type { CliContext } from './context';
import { registerGuardrailCommands } from './guardrails';
import { registerImage } from './image';
import { registerInstance } from './instance';
import { registerPlanCommands } from './plans';
import { registerRecipeCommands } from './recipe';
import { registerRunCommands } from './runs';
import { UsageError } from './flags';
import type { InputIssue } from '../../contracts/issues';
import { InvalidInputError } from '../../contracts/issues';
import { idIssues } from '../trust-input';

/** Bad command-line syntax, found by commander: exit 2, with the command whose help lists the flags. */
export class CommandLineError extends UsageError {
  constructor(
    message: string,
    readonly commandPath: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The full name of a command (`amiflow image create`). */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Turns commander's "error: option '--x <v>' argument 'y' is invalid. why" into "--x: why". */
function plainMessage(message: string, code: string, cmd: Command): string {
  const text = message.replace(/^error: /, '');
  if (code === 'commander.invalidArgument') {
    const m = /^option '(?:-\w, )?(--[\w-]+)[^']*' argument '([^']*)' is invalid\. ([\s\S]*)$/.exec(text);
    const choices = /^Allowed choices are (.*)\.$/.exec(m?.[3] ?? '');
    if (m && choices) return `${m[1]}: '${m[2]}' is not one of ${choices[1]}`;
    if (m) return `${m[1]}: ${m[3]}`;
  }
  if (code === 'commander.unknownCommand') {
    const m = /^unknown command '([^']+)'/.exec(text);
    if (m)
      return `unknown command '${commandPath(cmd).replace(/^amiflow ?/, '')}${cmd.parent ? ' ' : ''}${m[1]}'`;
  }
  return text;
}

/** A commander Command whose errors are thrown (not printed, not exiting) so `main` reports them once. */
class AmiflowCommand extends Command {
  override createCommand(name?: string): Command {
    return new AmiflowCommand(name);
  }

  override error(message: string, errorOptions?: { code?: string; exitCode?: number }): never {
    const code = errorOptions?.code ?? 'commander.error';
    throw new CommandLineError(plainMessage(message, code, this), commandPath(this), code);
  }
}

/** The package's version, read from package.json beside the sources (or beside dist/). */
export function packageVersion(): string {
  for (const dir of [path.resolve(__dirname, '..', '..'), path.resolve(__dirname, '..', '..', '..')]) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'amiflow' && pkg.version) return pkg.version;
    } catch {
      // not this directory; try the next
    }
  }
  return '0.0.0';
}

/** Refuses (InvalidInputError, exit 2) a workflow or schedule id argument or `--id` that is not one. */
function checkCommandIds(cmd: Command): void {
  const issues: InputIssue[] = [];
  cmd.registeredArguments.forEach((arg, i) => {
    const name = arg.name();
    const value: unknown = cmd.processedArgs[i];
    if (value === undefined || !/(?:^|-)(?:workflow|schedule)-id$/.test(name)) return;
    issues.push(...idIssues(`<${name}>`, value, name.startsWith('schedule') ? 'schedule id' : 'workflow id'));
  });
  const id: unknown = cmd.opts<{ id?: unknown }>().id;
  if (id !== undefined) issues.push(...idIssues('--id', id));
  if (issues.length > 0) throw new InvalidInputError(issues);
}

/** Text commander would print on stdout (help, version), captured so `run` decides where it goes. */
export interface Printed {
  out: string[];
}

export function buildProgram(ctx: CliContext, printed: Printed = { out: [] }): Command {
  const program = new AmiflowCommand('amiflow')
    .description('AMI lifecycle as durable Temporal workflows: image, share, copy, migrate, refresh, guard.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .addOption(new Option('--output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--json', 'same as --output json')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => printed.out.push(s),
      writeErr: (s) => printed.out.push(s),
      outputError: () => undefined,
    })
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .addHelpText(
      'after',
      '\nConnection: a temporal.toml profile (TEMPORAL_PROFILE), TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,\n' +
        'TEMPORAL_API_KEY, TEMPORAL_TLS_*; AMIFLOW_TASK_QUEUE. Durations: 90s, 15m, 2h, 1d or seconds.',
    );
  program
    .addOption(
      new Option('--profile <name>', 'temporal.toml profile (default: TEMPORAL_PROFILE, then "default")'),
    )
    .addOption(
      new Option('--address <host:port>', 'Temporal frontend (overrides the profile and TEMPORAL_ADDRESS)'),
    )
    .addOption(
      new Option(
        '--namespace <namespace>',
        'Temporal namespace (overrides the profile and TEMPORAL_NAMESPACE)',
      ),
    );
  // Every id a command takes (positional `<…-id>` arguments, `--id`) is checked before its action
  // runs, so a bad one is refused, naming it, before anything connects.
  program.hook('preAction', (_program, action) => checkCommandIds(action));
  registerImage(program, ctx);
  registerRecipeCommands(program, ctx);
  registerInstance(program, ctx);
  registerRunCommands(program, ctx);
  registerPlanCommands(program, ctx);
  registerGuardrailCommands(program, ctx);
  registerCompletion(program);
  return program;
}
