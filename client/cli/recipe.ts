/**
 * `amiflow recipe validate|render FILE` (never connect) and `amiflow image build --recipe FILE`:
 * recipes are read, resolved and checked (every problem with its line and field) before anything
 * connects; the build's progress names the step being run and how long it has run.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { BuildImageInput } from '../../contracts/recipe';
import type { BuildImageResult } from '../../contracts/recipe';
import { loadRecipeFile } from '../recipe';
import { formatBuildResult } from '../recipe-build';
import type { CliContext } from './context';
import { emit, outputOf, startAndFollow } from './context';
import { FOLLOW_FLAGS, addFlags, followIssues, refuse } from './flags';

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

/** `amiflow image build --recipe FILE`: registered under the `image` group, declared here with the recipes. */
function registerImageBuild(program: Command, ctx: CliContext): void {
  const image = program.commands.find((c) => c.name() === 'image');
  if (!image) throw new Error('the image command group must be registered before image build');
  addFlags(
    image
      .command('build')
      .description(
        'build an image from a recipe: builder, SSM steps, image, test instance (skips unchanged builds)',
      )
      .requiredOption('--recipe <file>', 'recipe file (YAML; amiflow recipe validate checks it)')
      .option('--force', 'build even when an image of the same parent and recipe exists'),
    FOLLOW_FLAGS,
  ).action(
    async (
      opts: { recipe: string; force?: boolean; id?: string; watch?: boolean; wait?: boolean },
      cmd: Command,
    ) => {
      const loaded = loadRecipeFile(opts.recipe);
      refuse(FOLLOW_FLAGS, followIssues(opts));
      for (const w of loaded.warnings) console.error(`warning: ${w}`);
      const input = { ...loaded.input, ...(opts.force ? { force: true } : {}) };
      await startAndFollow<BuildImageResult>(ctx, cmd, opts, {
        start: (client, options) => client.startBuildImage(input, options),
        format: formatBuildResult,
      });
    },
  );
}

export function registerRecipeCommands(program: Command, ctx: CliContext): void {
  registerImageBuild(program, ctx);
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
