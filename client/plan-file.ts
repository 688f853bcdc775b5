/**
 * The plan file: golden-image pipelines and backup plans, with their schedules, declared in YAML or
 * JSON that a team keeps in git and the CLI applies (`amiflow plan validate|apply <file>`).
 *
 * A thin loader: the YAML is read safely (size bound, bounded aliases, prototype keys refused,
 * null-prototype maps), its shape and value rules are the zod schema of contracts/plan.ts (the one
 * behind contracts/plan.schema.json, so editors flag what validate flags), and each entry, turned
 * into its workflow input (durations `90s`, `15m`, `2h`, `3d`, `1w` → `…Seconds`), is checked by the
 * validators the workflows run at start: a plan that validates here starts runs that accept their
 * input. Every problem is reported at once with its line, column and field
 * (`plan.yaml:14:11: pipelines[0].schedule.cron: …`).
 */
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import nodePath from 'node:path';
import type { Document } from 'yaml';
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { BackupInput, GoldenImageInput } from '../contracts';
import type { PlanFileSchedule, OVERLAP_POLICIES } from '../contracts/plan';
import { PLAN_API_VERSION, parseDuration, planFileSchema } from '../contracts/plan';
import type { InputIssue } from '../contracts/issues';
import { show } from '../contracts/issues';
import { approverPatternIssues } from '../workflows/approvers';
import { backupIssues, goldenImageIssues } from '../workflows/golden-validation';
import type { ScheduleBounds } from './bounds';
import { scheduleIntervalProblem } from './bounds';
import { RecipeFileError, loadRecipeFile } from './recipe';
import type { FileIssue, Path } from './yaml-file';
import { FileIssuesError, pathText, placedIssues, positionIn, syntaxIssues, zodIssues } from './yaml-file';

export {
  OVERLAP_POLICIES,
  PLAN_API_VERSION,
  cronProblem,
  isTimeZone,
  parseDuration,
} from '../contracts/plan';

export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

/** When and how a Schedule starts an entry's runs. */
export interface PlanSchedule {
  /** Cron expressions (5 fields, or @daily, @weekly, …), evaluated in `timeZone`. */
  cron?: string[];
  /** Or an interval (seconds), with an offset (seconds). */
  everySeconds?: number;
  offsetSeconds?: number;
  /** IANA time zone, always explicit (per schedule or in `defaults`). */
  timeZone: string;
  /** Missed runs (server down) are still started when at most this late. */
  catchupWindowSeconds: number;
  /** A run due while the previous one still runs: `skip` (default), or another Temporal policy. */
  overlap: OverlapPolicy;
  jitterSeconds?: number;
  pauseOnFailure: boolean;
  /** Declared state; unset: apply keeps whatever state the schedule has (an operator's pause stays). */
  paused?: boolean;
  note?: string;
}

export interface PlanPipeline {
  kind: 'golden';
  name: string;
  input: GoldenImageInput;
  schedule: PlanSchedule;
  line: number;
}

export interface PlanBackup {
  kind: 'backup';
  name: string;
  input: BackupInput;
  schedule: PlanSchedule;
  line: number;
}

export type PlanEntry = PlanPipeline | PlanBackup;

export interface Plan {
  apiVersion: typeof PLAN_API_VERSION;
  /** The plan's name: schedule ids start with `amiflow/<plan>/`; apply deletes only its own. */
  name: string;
  entries: PlanEntry[];
  /** Where it came from (for messages). */
  source: string;
  /** Digest of the file's content. */
  digest: string;
}

export type PlanIssue = FileIssue;

export class PlanFileError extends FileIssuesError {
  override name = 'PlanFileError';
}

/** `golden/<name>` or `backup/<name>`: how the CLI names one entry. */
export function entryKey(entry: Pick<PlanEntry, 'kind' | 'name'>): string {
  return `${entry.kind}/${entry.name}`;
}

// ---------------------------------------------------------------------------------------------
// Reading the YAML safely
// ---------------------------------------------------------------------------------------------

interface Issue {
  path: Path;
  message: string;
}

/** A plan is a page or two of YAML; anything far larger is a mistake or an attack, refused unread. */
export const MAX_PLAN_BYTES = 1024 * 1024;
/** YAML aliases (`*defaults`) are resolved, at most this many: a "billion laughs" document is refused. */
export const MAX_PLAN_ALIASES = 100;
/** Keys that would reach an object's prototype in code that copies plain data around. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** Keys whose numbers are account ids: an unquoted 12-digit id is taken as written (a leading 0 kept). */
const ACCOUNT_KEYS = new Set(['accountId', 'accountIds', 'account']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Prepares the document for plain data, in place: prototype keys are refused (the plan is not read
 * further), and a
 * 12-digit number under an account key becomes its digits as written, as YAML would lose a leading 0.
 */
function prepare(node: unknown, path: Path, issues: Issue[], accountKey = false): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (FORBIDDEN_KEYS.has(key))
        issues.push({ path: [...path, key], message: 'is not a plan key (it names an object prototype)' });
      else prepare(pair.value, [...path, key], issues, ACCOUNT_KEYS.has(key));
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => prepare(item, [...path, i], issues, accountKey));
  } else if (
    accountKey &&
    isScalar(node) &&
    typeof node.value === 'number' &&
    /^\d{12}$/.test(node.source ?? '')
  ) {
    node.value = node.source;
  }
}

/** The document as plain data: null-prototype maps, aliases bounded; an alias bomb is an issue. */
function plainData(doc: Document, issues: Issue[]): unknown {
  try {
    return doc.toJS({
      maxAliasCount: MAX_PLAN_ALIASES,
      reviver: (_key, value) =>
        isObject(value) ? Object.assign(Object.create(null) as object, value) : value,
    });
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    issues.push({
      path: [],
      message: `uses more than ${MAX_PLAN_ALIASES} YAML aliases: write the values out`,
    });
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Entries → workflow inputs
// ---------------------------------------------------------------------------------------------

/** Temporal's default catch-up window, when neither the schedule nor defaults give one. */
const DEFAULT_CATCHUP_SECONDS = 3600;

/**
 * Plan keys that are durations, and the input field each becomes (`timeout` → `timeoutSeconds`).
 * The reverse mapping names the plan's key in the validators' messages.
 */
const DURATION_KEYS: Record<string, string> = {
  timeout: 'timeoutSeconds',
  readyTimeout: 'readyTimeoutSeconds',
  maxAge: 'maxAgeSeconds',
  deprecateAfter: 'deprecateAfterSeconds',
  deregisterAfter: 'deregisterAfterSeconds',
  window: 'windowSeconds',
  instanceState: 'instanceStateSeconds',
  imageAvailable: 'imageAvailableSeconds',
  copyAvailable: 'copyAvailableSeconds',
};
const FROM_INPUT: Record<string, string> = Object.fromEntries(
  Object.entries(DURATION_KEYS).map(([k, v]) => [v, k]),
);

/**
 * Plan entry settings → workflow input: durations to seconds under the input's key names. A
 * duration the plan schema refused is left out (reported once, by the schema).
 */
function toInput(value: unknown, inTags = false): unknown {
  if (Array.isArray(value)) return value.map((v) => toInput(v));
  if (!isObject(value)) return value;
  // Fresh plain objects: the input travels to Temporal as JSON; prototype keys were refused on reading.
  const out: Record<string, unknown> = {};
  if (inTags) return Object.assign(out, value);
  for (const [k, v] of Object.entries(value)) {
    const inputKey = DURATION_KEYS[k];
    if (inputKey === undefined) out[k] = toInput(v, k === 'tags');
    else {
      const seconds = parseDuration(v);
      if (seconds !== undefined) out[inputKey] = seconds;
    }
  }
  return out;
}

/** A validator's field (`retention.deregisterAfterSeconds`) → the plan's path for it. */
function planPathOf(field: string, entryPath: Path, nameKey: string): Path {
  if (field === '(input)') return entryPath;
  if (field === nameKey) return [...entryPath, 'name'];
  const tags = /^(.*?\btags)\.(.+)$/.exec(field);
  const head = tags?.[1] ?? field;
  const parts: Path = head
    .split('.')
    .flatMap((part) => part.split(/\[(\d+)\]/).filter((p) => p !== ''))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : (FROM_INPUT[p] ?? p)));
  return [...entryPath, ...parts, ...(tags?.[2] ? [tags[2]] : [])];
}

interface EntryContext {
  defaults: Record<string, unknown>;
  /** The plan's folder: a pipeline's `recipe` file is found relative to it. */
  baseDir: string;
  issues: Issue[];
}

/**
 * A pipeline's `recipe: <file>`, relative to the plan, loaded and resolved as `amiflow recipe
 * validate` does (scripts and files read now, so the schedule carries the recipe as applied: apply
 * again after changing it). Its problems are the plan's, at the `recipe` key, naming the recipe
 * file's own line and field.
 */
function loadPipelineRecipe(value: unknown, at: Path, ctx: EntryContext): unknown {
  if (typeof value !== 'string' || value.trim() === '') {
    ctx.issues.push({
      path: at,
      message: `${show(value)} is not a recipe file: give its path, relative to the plan (e.g. recipes/web.yaml)`,
    });
    return undefined;
  }
  try {
    return loadRecipeFile(nodePath.resolve(ctx.baseDir, value)).input;
  } catch (err) {
    if (!(err instanceof RecipeFileError)) throw err;
    for (const i of err.issues)
      ctx.issues.push({ path: at, message: `${value}:${i.line}:${i.column}: ${i.field}: ${i.message}` });
    return undefined;
  }
}

/** Puts the pipeline's resolved recipe into `input`; false (and no recipe) when it failed to load. */
function resolveRecipe(
  input: Record<string, unknown>,
  file: unknown,
  path: Path,
  ctx: EntryContext,
): boolean {
  const recipe = loadPipelineRecipe(file, [...path, 'recipe'], ctx);
  if (recipe === undefined) delete input.recipe;
  else input.recipe = recipe;
  return recipe !== undefined;
}

/**
 * One entry's workflow input (defaults' region and account filled in, `approval: true` as `{}`, a
 * recipe file resolved), and the issues the workflow's own validators find in it, at plan paths.
 */
function entryInput(kind: 'golden' | 'backup', item: Record<string, unknown>, path: Path, ctx: EntryContext) {
  const { name, schedule: _schedule, scheduledTime: _pinned, ...settings } = item;
  const nameKey = kind === 'golden' ? 'pipeline' : 'plan';
  const { region, accountId } = ctx.defaults;
  const input = toInput({
    ...(region !== undefined && settings.region === undefined ? { region } : {}),
    ...(accountId !== undefined && settings.accountId === undefined ? { accountId } : {}),
    ...settings,
    [nameKey]: name,
  }) as Record<string, unknown>;
  if (input.approval === true) input.approval = {};
  // After toInput: the resolved recipe's own keys (a step's timeoutSeconds, …) are the workflow's.
  const recipeFailed = settings.recipe !== undefined && !resolveRecipe(input, settings.recipe, path, ctx);
  const found: InputIssue[] =
    kind === 'golden'
      ? [
          ...goldenImageIssues(input),
          // Plans name approvers as IAM principals: the worker verifies who approves by STS.
          ...approverPatternIssues('approval.approvers', approversOf(input.approval)),
        ]
      : backupIssues(input);
  const issues = found
    // An unknown key is the plan schema's to name (in the plan's words); a recipe that failed to
    // load was reported above, its absence is no second problem.
    .filter((i) => !i.message.startsWith('is not a known field'))
    .filter((i) => !(recipeFailed && i.field === 'builderInstanceId'))
    .map((i) => ({ path: planPathOf(i.field, path, nameKey), message: i.message }));
  return { input, issues };
}

/** An entry's schedule as Temporal takes it: durations in seconds, defaults filled in. */
function scheduleOf(s: PlanFileSchedule, defaults: Record<string, unknown>): PlanSchedule {
  const seconds = (v: unknown) => parseDuration(v);
  const cron =
    s.cron === undefined ? undefined : (Array.isArray(s.cron) ? s.cron : [s.cron]).map((c) => c.trim());
  const everySeconds = seconds(s.every);
  const offsetSeconds = seconds(s.offset);
  const jitterSeconds = seconds(s.jitter);
  return {
    ...(cron ? { cron } : {}),
    ...(everySeconds !== undefined ? { everySeconds } : {}),
    ...(offsetSeconds !== undefined ? { offsetSeconds } : {}),
    timeZone: String(s.timeZone ?? defaults.timeZone),
    catchupWindowSeconds: seconds(s.catchupWindow ?? defaults.catchupWindow) ?? DEFAULT_CATCHUP_SECONDS,
    overlap: (s.overlap ?? defaults.overlap ?? 'skip') as OverlapPolicy,
    ...(jitterSeconds !== undefined ? { jitterSeconds } : {}),
    pauseOnFailure: s.pauseOnFailure === true,
    ...(s.paused !== undefined ? { paused: s.paused } : {}),
    ...(s.note !== undefined ? { note: s.note } : {}),
  };
}

/**
 * The plan schema's issues and the workflow validators' (at plan paths), one per field: where both
 * name the same field, the workflow's message (the rule it runs at start) is kept.
 */
function mergeIssues(schema: Issue[], workflow: Issue[]): Issue[] {
  const key = (i: Issue) => pathText(i.path);
  const byWorkflow = new Set(workflow.map(key));
  const seen = new Set<string>();
  return [...schema.filter((i) => !byWorkflow.has(key(i))), ...workflow].filter((i) => {
    const id = `${key(i)}\u0000${i.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Parses and validates a plan; throws `PlanFileError` listing every problem with line and field. */
export function parsePlan(text: string, source = '(plan)', bounds?: ScheduleBounds): Plan {
  if (text.length > MAX_PLAN_BYTES)
    throw new PlanFileError(source, [
      { line: 1, column: 1, field: '(file)', message: `is larger than ${MAX_PLAN_BYTES} bytes: not a plan` },
    ]);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new PlanFileError(source, syntaxIssues(doc));
  /** The line and column of the deepest node along a path that exists (recipe files use the same). */
  const position = positionIn(doc, lineCounter);
  const fail = (issues: Issue[]): never => {
    throw new PlanFileError(source, placedIssues(issues, position, '(plan)'));
  };
  const early: Issue[] = [];
  prepare(doc.contents, [], early);
  if (early.length > 0) return fail(early);
  const raw = plainData(doc, early);
  if (early.length > 0) return fail(early);
  const parsed = planFileSchema.safeParse(raw);
  const schemaIssues = parsed.success ? [] : zodIssues(parsed.error);
  // The entries' workflow checks run even when the schema found problems, so all are named at once.
  const root = isObject(raw) ? raw : {};
  const ctx: EntryContext = {
    defaults: isObject(root.defaults) ? root.defaults : {},
    // `(plan)` (text without a file): recipe files are found relative to the working directory.
    baseDir: source === '(plan)' ? process.cwd() : nodePath.dirname(nodePath.resolve(source)),
    issues: [],
  };
  const inputs = (['pipelines', 'backups'] as const).map((list) =>
    (Array.isArray(root[list]) ? (root[list] as unknown[]) : []).map((item, i) =>
      isObject(item)
        ? entryInput(list === 'pipelines' ? 'golden' : 'backup', item, [list, i], ctx)
        : undefined,
    ),
  );
  const workflowIssues = [...ctx.issues, ...inputs.flat().flatMap((e) => e?.issues ?? [])];
  const issues = mergeIssues(schemaIssues, workflowIssues);
  if (!parsed.success || issues.length > 0) return fail(issues);
  const plan = parsed.data;
  const defaults = plan.defaults ?? {};
  const lineOf = (path: Path) => position(path).line;
  // What a pipeline's and a backup plan's entry have alike: name, resolved schedule, line in the file.
  const placed = (
    section: 'pipelines' | 'backups',
    e: { name: string; schedule: PlanFileSchedule },
    i: number,
  ) => ({
    name: e.name,
    schedule: scheduleOf(e.schedule, defaults),
    line: lineOf([section, i]),
  });
  const entries: PlanEntry[] = [
    ...(plan.pipelines ?? []).map((p, i): PlanEntry => ({
      kind: 'golden',
      ...placed('pipelines', p, i),
      input: inputs[0]?.[i]?.input as unknown as GoldenImageInput,
    })),
    ...(plan.backups ?? []).map((b, i): PlanEntry => ({
      kind: 'backup',
      ...placed('backups', b, i),
      input: inputs[1]?.[i]?.input as unknown as BackupInput,
    })),
  ];
  if (bounds) {
    const late = intervalIssues(entries, bounds);
    if (late.length > 0) fail(late);
  }
  return {
    apiVersion: PLAN_API_VERSION,
    name: plan.plan,
    entries,
    source,
    digest: createHash('sha256').update(text).digest('hex').slice(0, 16),
  };
}

/**
 * Entries scheduled more often than the operator's bound for their workflow type (client/bounds.ts),
 * refused at validate already, not only when apply creates the schedule.
 */
function intervalIssues(entries: PlanEntry[], bounds: ScheduleBounds): Issue[] {
  const index = { golden: 0, backup: 0 };
  return entries.flatMap((entry) => {
    // Entries keep the file's order per kind: the count so far is the entry's place in its list.
    const at = index[entry.kind]++;
    const type = entry.kind === 'golden' ? 'goldenImage' : 'backupInstances';
    const problem = scheduleIntervalProblem(bounds, type, entry.schedule);
    if (!problem) return [];
    const list = entry.kind === 'golden' ? 'pipelines' : 'backups';
    const key = entry.schedule.everySeconds !== undefined ? 'every' : 'cron';
    return [{ path: [list, at, 'schedule', key], message: problem }];
  });
}

export async function loadPlanFile(file: string, bounds?: ScheduleBounds): Promise<Plan> {
  let text: string;
  try {
    const size = (await stat(file)).size;
    if (size > MAX_PLAN_BYTES) throw new Error(`it has ${size} bytes; a plan has at most ${MAX_PLAN_BYTES}`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PlanFileError(file, FileIssuesError.unreadable(err));
  }
  return parsePlan(text, file, bounds);
}

/** `approval.approvers` when the approval block is an object (its own checks name anything else). */
export function approversOf(approval: unknown): unknown {
  return typeof approval === 'object' && approval !== null && Object.hasOwn(approval, 'approvers')
    ? (approval as { approvers?: unknown }).approvers
    : undefined;
}
