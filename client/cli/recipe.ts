/**
 * `amiflow recipe validate|render FILE` (never connect) and `amiflow image build --recipe FILE`:
 * recipes are read, resolved and checked (every problem with its line and field) before anything
 * connects; the build's progress names the step being run and how long it has run.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { BuildImageInput } from '../../contracts/recipe';
import { loadRecipeFile } from '../recipe';
import type { CliContext } from './context';
import { emit, outputOf } from './context';

/** One line per resolved step: phase, kind, name and what it runs. */
export function describeSteps(input: BuildImageInput): string[] {
  const lines: string[] = [];
  for (const phase of ['build', 'validate', 'test'] as const)
    for (const [i, s] of (input[phase] ?? []).entries()) {
      const what =
        s.kind === 'shell' || s.kind === 'powershell'
          ? `${s.commands.split('\n').filter((l) => l.trim()).length} line(s)`
          : s.kind === 'file'
            ? `${s.path} (${s.content.length} bytes${s.mode ? `, mode ${s.mode}` : ''})`
            : s.kind === 'document'
              ? s.document
              : 'wait for the SSM agent to be back';
      lines.push(`  ${phase}[${i}] ${s.kind.padEnd(10)} ${s.name}: ${what}`);
    }
  return lines;
}

export function registerRecipeCommands(program: Command, ctx: CliContext): void {
  void ctx;
  const recipe = program.command('recipe').description('image recipes: check and show them (never connects)');
  recipe
    .command('validate')
    .description(
      'check a recipe file: fields, script files, components and their parameters (never connects)',
    )
    .argument('<recipe-file>', 'recipe file (YAML)')
    .action((file: string, _opts: unknown, cmd: Command) => {
      const loaded = loadRecipeFile(file);
      const count = (['build', 'validate', 'test'] as const).map(
        (p) => `${loaded.input[p]?.length ?? 0} ${p}`,
      );
      emit(
        outputOf(cmd),
        {
          recipe: loaded.input.recipe,
          valid: true,
          steps: describeSteps(loaded.input).length,
          warnings: loaded.warnings,
        },
        () =>
          [
            `${file}: recipe ${loaded.input.recipe} is valid: ${count.join(', ')} step(s)`,
            ...loaded.warnings.map((w) => `warning: ${w}`),
          ].join('\n'),
      );
    });
  recipe
    .command('render')
    .description('print the resolved recipe the build runs: components expanded, scripts and files inlined')
    .argument('<recipe-file>', 'recipe file (YAML)')
    .action((file: string, _opts: unknown, cmd: Command) => {
      const loaded = loadRecipeFile(file);
      emit(outputOf(cmd), loaded.input, () =>
        [
          `# ${file}: ${loaded.input.recipe}`,
          ...describeSteps(loaded.input).map((l) => `#${l}`),
          stringify(loaded.input),
        ].join('\n'),
      );
    });
}
