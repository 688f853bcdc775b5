/**
 * Recipe files: YAML a team keeps in git (contracts/recipe.ts declares the fields), loaded into the
 * resolved recipe the `buildImage` workflow takes. Script and file sources are read from disk,
 * relative to the recipe, and sent as content (the builder never fetches from the repo);
 * components are expanded with their parameters; a component that includes itself (directly or
 * through others) is refused. Every problem is reported at once with its line, column and field
 * (`web.recipe.yaml:14:9: build[2].script: …`), before anything connects.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { BuildImageInput, Phase, RecipeFile, RecipeFileStep, RecipeStep } from '../contracts/recipe';
import { PHASES, buildImageInputSchema, recipeFileSchema } from '../contracts/recipe';
import { show } from '../contracts/issues';
import type { FileIssue, Path } from './yaml-file';
import { FileIssuesError, pathText, placedIssues, positionIn, syntaxIssues, zodIssues } from './yaml-file';

export { positionIn, zodIssues } from './yaml-file';

export type RecipeIssue = FileIssue;

export class RecipeFileError extends FileIssuesError {
  override name = 'RecipeFileError';
}

/** Reads a file named by the recipe (relative to it); undefined when there is none. */
export type SourceReader = (relative: string) => string | undefined;

/** `build[2].script`, `components.base.steps[0].commands`: how a path reads in a message. */
export const fieldOf = (p: readonly PropertyKey[]): string => pathText(p) || '(recipe)';

const PARAM_RE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

interface Expansion {
  issues: { path: Path; message: string }[];
  read: SourceReader;
  components: NonNullable<RecipeFile['components']>;
}

/** Replaces a component's `{{ param }}` uses; a name the component does not declare is an issue. */
function substitute(
  text: string,
  values: Record<string, string> | undefined,
  at: Path,
  x: Expansion,
): string {
  if (values === undefined) return text; // outside a component nothing is a placeholder
  return text.replace(PARAM_RE, (whole, name: string) => {
    const value = values[name];
    if (value !== undefined) return value;
    x.issues.push({
      path: at,
      message: `uses {{ ${name} }} but the component declares no parameter ${show(name)} (declared: ${Object.keys(values).join(', ') || 'none'})`,
    });
    return whole;
  });
}

/** The content of an inline-or-file field pair: exactly one given; a file must exist and not be empty. */
function contentOf(
  inline: string | undefined,
  file: string | undefined,
  names: [string, string],
  at: Path,
  x: Expansion,
): string | undefined {
  if ((inline === undefined) === (file === undefined)) {
    x.issues.push({
      path: at,
      message:
        inline === undefined
          ? `needs ${names[0]} or ${names[1]}`
          : `gives both ${names[0]} and ${names[1]}; give one`,
    });
    return undefined;
  }
  if (inline !== undefined) return inline;
  const text = x.read(file as string);
  if (text === undefined) {
    x.issues.push({ path: [...at, names[1]], message: `${show(file)} was not found next to the recipe` });
    return undefined;
  }
  if (text.trim() === '') x.issues.push({ path: [...at, names[1]], message: `${show(file)} is empty` });
  return text;
}

/** One file step as the steps it stands for (a component: its steps, expanded). */
function expandStep(
  step: RecipeFileStep,
  at: Path,
  prefix: string,
  values: Record<string, string> | undefined,
  stack: string[],
  x: Expansion,
): RecipeStep[] {
  const name = `${prefix}${step.name ?? ''}`;
  const sub = (text: string, field: string) => substitute(text, values, [...at, field], x);
  const timeout =
    step.kind !== 'component' && step.timeoutSeconds !== undefined
      ? { timeoutSeconds: step.timeoutSeconds }
      : {};
  switch (step.kind) {
    case 'shell':
    case 'powershell': {
      const text = contentOf(step.commands, step.script, ['commands', 'script'], at, x);
      return [
        {
          kind: step.kind,
          name,
          commands: sub(text ?? 'missing', 'commands'),
          ...timeout,
          ...(step.workingDirectory
            ? { workingDirectory: sub(step.workingDirectory, 'workingDirectory') }
            : {}),
          ...(step.env
            ? { env: Object.fromEntries(Object.entries(step.env).map(([k, v]) => [k, sub(v, 'env')])) }
            : {}),
        },
      ];
    }
    case 'file': {
      const text = contentOf(step.content, step.source, ['content', 'source'], at, x);
      return [
        {
          kind: 'file',
          name,
          path: sub(step.path, 'path'),
          content: sub(text ?? '', 'content'),
          ...timeout,
          ...(step.mode ? { mode: step.mode } : {}),
          ...(step.owner ? { owner: step.owner } : {}),
        },
      ];
    }
    case 'reboot':
      return [{ kind: 'reboot', name, ...timeout }];
    case 'document':
      return [
        {
          kind: 'document',
          name,
          document: step.document,
          ...timeout,
          ...(step.parameters
            ? {
                parameters: Object.fromEntries(
                  Object.entries(step.parameters).map(([k, vs]) => [k, vs.map((v) => sub(v, 'parameters'))]),
                ),
              }
            : {}),
        },
      ];
    case 'component':
      return expandComponent(step, at, prefix, stack, x);
  }
}

function expandComponent(
  step: Extract<RecipeFileStep, { kind: 'component' }>,
  at: Path,
  prefix: string,
  stack: string[],
  x: Expansion,
): RecipeStep[] {
  const component = x.components[step.component];
  if (!component) {
    const known = Object.keys(x.components);
    x.issues.push({
      path: [...at, 'component'],
      message: `${show(step.component)} is not a component of this recipe (declared: ${known.join(', ') || 'none'})`,
    });
    return [];
  }
  if (stack.includes(step.component)) {
    x.issues.push({
      path: [...at, 'component'],
      message: `includes itself: ${[...stack, step.component].join(' → ')}; a component may not include itself, directly or through others`,
    });
    return [];
  }
  const declared = component.parameters ?? {};
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(step.with ?? {})) {
    if (!(k in declared))
      x.issues.push({
        path: [...at, 'with', k],
        message: `is not a parameter of component ${show(step.component)} (declared: ${Object.keys(declared).join(', ') || 'none'})`,
      });
    else values[k] = String(v);
  }
  for (const [k, spec] of Object.entries(declared)) {
    if (values[k] !== undefined) continue;
    if (spec.default === undefined)
      x.issues.push({
        path: [...at, 'with'],
        message: `must give ${show(k)}: component ${show(step.component)} declares it without a default`,
      });
    else values[k] = String(spec.default);
  }
  const inner = `${prefix}${step.name ?? step.component}/`;
  return component.steps.flatMap((s, j) =>
    expandStep(s, ['components', step.component, 'steps', j], inner, values, [...stack, step.component], x),
  );
}

/** The file's phases as plain steps, each with the file path it came from (for messages). */
function expandPhases(
  file: RecipeFile,
  x: Expansion,
): Record<Phase, { steps: RecipeStep[]; origins: Path[] }> {
  const out = {} as Record<Phase, { steps: RecipeStep[]; origins: Path[] }>;
  for (const phase of PHASES) {
    const steps: RecipeStep[] = [];
    const origins: Path[] = [];
    for (const [i, step] of (file[phase] ?? []).entries()) {
      const made = expandStep(step, [phase, i], '', undefined, [], x);
      steps.push(...made);
      origins.push(...made.map(() => [phase, i]));
    }
    out[phase] = { steps, origins };
  }
  return out;
}

/** A component declared but never included: most often a typo in the include; said, not refused. */
export function unusedComponents(file: RecipeFile): string[] {
  const used = new Set<string>();
  const visit = (steps: RecipeFileStep[] | undefined) => {
    for (const s of steps ?? [])
      if (s.kind === 'component' && !used.has(s.component)) {
        used.add(s.component);
        visit(file.components?.[s.component]?.steps);
      }
  };
  for (const phase of PHASES) visit(file[phase]);
  return Object.keys(file.components ?? {}).filter((c) => !used.has(c));
}

export interface LoadedRecipe {
  input: BuildImageInput;
  source: string;
  warnings: string[];
}

/** Parses and resolves a recipe; throws `RecipeFileError` naming every problem's line and field. */
export function parseRecipe(text: string, source: string, read: SourceReader): LoadedRecipe {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new RecipeFileError(source, syntaxIssues(doc));
  const position = positionIn(doc, lineCounter);
  const fail = (issues: { path: Path; message: string }[]): never => {
    throw new RecipeFileError(source, placedIssues(issues, position, '(recipe)'));
  };
  const raw: unknown = doc.toJS();
  const parsed = recipeFileSchema.safeParse(raw);
  if (!parsed.success) return fail(zodIssues(parsed.error));
  const file = parsed.data;
  const x: Expansion = { issues: [], read, components: file.components ?? {} };
  const phases = expandPhases(file, x);
  if (x.issues.length > 0) return fail(x.issues);
  const input: BuildImageInput = {
    region: file.region,
    ...(file.accountId ? { accountId: file.accountId } : {}),
    recipe: file.recipe,
    parent: file.parent,
    builder: file.builder,
    build: phases.build.steps,
    ...(phases.validate.steps.length ? { validate: phases.validate.steps } : {}),
    ...(phases.test.steps.length ? { test: phases.test.steps } : {}),
    output: file.output,
    ...(file.logs ? { logs: file.logs } : {}),
    ...(file.timeouts ? { timeouts: file.timeouts } : {}),
  };
  // The resolved recipe is what the workflow checks again; its issues point back at the file's step.
  const checked = buildImageInputSchema.safeParse(input);
  if (!checked.success)
    return fail(
      zodIssues(checked.error).map((i) => {
        const [phase, n, ...rest] = i.path;
        const origin =
          typeof phase === 'string' && typeof n === 'number' ? phases[phase as Phase]?.origins[n] : undefined;
        return origin
          ? {
              path: [...origin, ...rest],
              message: `${i.message} (resolved step ${show(input[phase as Phase]?.[n as number]?.name)})`,
            }
          : i;
      }),
    );
  const unused = unusedComponents(file);
  return {
    input,
    source,
    warnings: unused.length ? [`component(s) declared but never included: ${unused.join(', ')}`] : [],
  };
}

/** Loads `file`; script and file sources are read relative to it, and never from outside its folder tree's parent. */
export function loadRecipeFile(file: string): LoadedRecipe {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RecipeFileError(file, FileIssuesError.unreadable(err));
  }
  const dir = path.dirname(path.resolve(file));
  return parseRecipe(text, file, (relative) => {
    try {
      return readFileSync(path.resolve(dir, relative), 'utf8');
    } catch {
      return undefined;
    }
  });
}
