/**
 * The CLI reference (docs/cli.md), generated from the command tree: every command with its usage,
 * description, arguments and flags as `--help` shows them. `npm run docs:cli` writes it; a test
 * fails when the file is stale.
 */
import type { Command } from 'commander';
import { newContext } from './context';
import { buildProgram, commandPath } from './program';

function isHidden(cmd: Command): boolean {
  return (cmd as Command & { _hidden?: boolean })._hidden === true;
}

function leaves(cmd: Command): Command[] {
  const subs = cmd.commands.filter((c) => !isHidden(c));
  return subs.length ? subs.flatMap(leaves) : [cmd];
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function section(cmd: Command): string[] {
  const help = cmd.createHelp();
  const lines = [
    `### ${commandPath(cmd)}`,
    '',
    cmd.description(),
    '',
    '```',
    `${help.commandUsage(cmd)}`,
    '```',
    '',
  ];
  const args = help.visibleArguments(cmd);
  if (args.length) {
    lines.push('| argument | meaning |', '| --- | --- |');
    for (const a of args)
      lines.push(`| \`${help.argumentTerm(a)}\` | ${cell(help.argumentDescription(a))} |`);
    lines.push('');
  }
  const options = help.visibleOptions(cmd).filter((o) => o.long !== '--help');
  if (options.length) {
    lines.push('| flag | meaning |', '| --- | --- |');
    for (const o of options) lines.push(`| \`${help.optionTerm(o)}\` | ${cell(help.optionDescription(o))} |`);
    lines.push('');
  }
  return lines;
}

export function cliReference(
  program: Command = buildProgram(newContext(() => Promise.reject(new Error('no connection')))),
): string {
  const help = program.createHelp();
  const globals = help.visibleOptions(program).filter((o) => o.long !== '--help');
  const groups = program.commands.filter((c) => !isHidden(c));
  return [
    '# amiflow CLI reference',
    '',
    '<!-- Generated from the command tree (client/cli/) by `npm run docs:cli`; do not edit by hand. -->',
    '',
    program.description(),
    '',
    'Every command takes `--help`. Exit codes: 0 done; 1 the run failed or something asked for is not',
    'there; 2 bad input or usage (the message names the flag), or a request refused with its reason',
    "(beyond the operator's bounds, not amiflow's to act on, an approver or a share record not verified);",
    '3 a `--strict` compliance check found violations; 4 the run completed with problems (e.g. a golden',
    'run whose retirement failed: shown as "succeeded with problems" with each problem listed, and as',
    '`outcome`/`problems` fields under `--output json`); 130 the run was cancelled. Under `--output json`',
    'results and errors are JSON on stdout.',
    '',
    '## Global flags (any command)',
    '',
    '| flag | meaning |',
    '| --- | --- |',
    ...globals.map((o) => `| \`${help.optionTerm(o)}\` | ${cell(help.optionDescription(o))} |`),
    '',
    '## Commands',
    '',
    ...groups.flatMap((g) => [`- \`${commandPath(g)}\`: ${g.description()}`]),
    '',
    ...groups.flatMap((g) => leaves(g).flatMap(section)),
  ].join('\n');
}
