/**
 * The plan file: golden-image pipelines and backup plans, with their schedules, declared in YAML or
 * JSON that a team keeps in git and the CLI applies (`amiflow plan validate|apply <file>`).
 *
 * Every problem is reported with its line, column and field (`plan.yaml:14:11: pipelines[0].schedule.cron: …`),
 * all at once. The entries are checked by the same validators the workflows use at start, so a
 * plan that validates here starts runs that accept their input. Durations are written `90s`, `15m`,
 * `2h`, `3d`, `1w` (or a number of seconds); the workflow inputs take seconds (`…Seconds`).
 */
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import nodePath from 'node:path';
import type { Document } from 'yaml';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { BackupInput, GoldenImageInput } from '../contracts';
import { OVERLAP_POLICIES, PLAN_API_VERSION, PLAN_DURATION_RE } from '../contracts/plan';
import { approverPatternIssues } from '../workflows/approvers';
import type { ScheduleBounds } from './bounds';
import { RecipeFileError, loadRecipeFile, positionIn } from './recipe';
import { scheduleIntervalProblem } from './bounds';
import { PLAN_NAME_RE, backupIssues, goldenImageIssues } from '../workflows/golden-validation';
import type { InputIssue } from '../workflows/validation';
import { show } from '../workflows/validation';

export { OVERLAP_POLICIES, PLAN_API_VERSION } from '../contracts/plan';
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

export interface PlanIssue {
  line: number;
  column: number;
  field: string;
  message: string;
}

export class PlanFileError extends Error {
  override name = 'PlanFileError';
  constructor(
    readonly source: string,
    readonly issues: PlanIssue[],
  ) {
    super(
      `${source}: ${issues.length} problem(s):\n` +
        issues.map((i) => `  ${source}:${i.line}:${i.column}: ${i.field}: ${i.message}`).join('\n'),
    );
  }
}

/** `golden/<name>` or `backup/<name>`: how the CLI names one entry. */
export function entryKey(entry: Pick<PlanEntry, 'kind' | 'name'>): string {
  return `${entry.kind}/${entry.name}`;
}

// ---------------------------------------------------------------------------------------------
// Durations, cron, time zones
// ---------------------------------------------------------------------------------------------

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds of `90s`, `1h30m`, `3d`, or a whole number of seconds; undefined when it is not one. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  if (!PLAN_DURATION_RE.test(v)) return undefined;
  let total = 0;
  for (const [, n, unit] of v.matchAll(/(\d+)([smhdw])/g))
    total += Number(n) * (UNIT_SECONDS[unit ?? 's'] ?? 0);
  return total;
}

const CRON_MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const CRON_FIELDS: { name: string; min: number; max: number; names?: string[] }[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day of week', min: 0, max: 7, names: DAYS },
];

/** Why `expr` is not a 5-field cron expression (or macro) Temporal takes; undefined when it is one. */
export function cronProblem(expr: string): string | undefined {
  const e = expr.trim();
  if (e.startsWith('@'))
    return CRON_MACROS.includes(e) ? undefined : `unknown macro (use ${CRON_MACROS.join(', ')})`;
  const parts = e.split(/\s+/);
  if (parts.length !== 5)
    return `has ${parts.length} field(s); write 5: minute hour day-of-month month day-of-week (e.g. '0 3 * * MON')`;
  for (const [i, part] of parts.entries()) {
    const f = CRON_FIELDS[i];
    if (!f) continue;
    for (const item of part.split(',')) {
      const [range = '', step, extra] = item.split('/');
      if (extra !== undefined || (step !== undefined && !/^[1-9]\d*$/.test(step)))
        return `${f.name} '${item}': a step is '/<n>' with n ≥ 1`;
      if (range === '*') continue;
      const bounds = range.split('-');
      if (bounds.length > 2 || bounds.some((b) => b === ''))
        return `${f.name} '${item}' is not a value or a range`;
      for (const b of bounds) {
        const named = f.names?.indexOf(b.toUpperCase()) ?? -1;
        const n = named >= 0 ? named + (f.name === 'month' ? 1 : 0) : /^\d+$/.test(b) ? Number(b) : NaN;
        if (Number.isNaN(n) || n < f.min || n > f.max)
          return `${f.name} '${b}' is out of range (${f.min}–${f.max}${f.names ? ` or ${f.names[0]}–${f.names.at(-1)}` : ''})`;
      }
    }
  }
  return undefined;
}

export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the document with positions
// ---------------------------------------------------------------------------------------------

type Path = (string | number)[];

/** `a.b[0].c` → ['a', 'b', 0, 'c'] (tag keys with dots are kept whole after `tags.`). */
function pathOf(field: string): Path {
  const out: Path = [];
  const tags = /^(.*?\btags)\.(.+)$/.exec(field);
  const head = tags ? (tags[1] ?? '') : field;
  for (const part of head.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const idx of (m[2] ?? '').matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  if (tags?.[2]) out.push(tags[2]);
  return out;
}

function fieldOf(path: Path): string {
  return path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p),
    '',
  );
}

/** Keys whose numbers are account ids: an unquoted 12-digit id is taken as written. */
const ACCOUNT_KEYS = new Set(['accountId', 'accountIds', 'account']);

/** A plan is a page or two of YAML; anything far larger is a mistake or an attack, refused unread. */
export const MAX_PLAN_BYTES = 1024 * 1024;
/**
 * YAML aliases (`*defaults`) are resolved, but at most this many, and to at most `MAX_PLAN_NODES`
 * values in all: a "billion laughs" document (aliases of aliases) cannot blow up in memory.
 */
export const MAX_PLAN_ALIASES = 100;
const MAX_PLAN_NODES = 100_000;
/** Keys that would reach an object's prototype in code that copies plain data around. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

interface PlainState {
  doc: Document;
  issues: { path: Path; message: string }[];
  aliases: number;
  nodes: number;
}

/**
 * The document as plain data: maps become null-prototype objects, prototype keys are refused,
 * aliases are resolved within bounds, 12-digit numbers under account keys become the digits as written.
 */
function toPlain(node: unknown, path: Path, st: PlainState, key?: string): unknown {
  st.nodes += 1;
  if (st.nodes > MAX_PLAN_NODES) return undefined;
  if (isAlias(node)) {
    st.aliases += 1;
    if (st.aliases > MAX_PLAN_ALIASES) {
      if (st.aliases === MAX_PLAN_ALIASES + 1)
        st.issues.push({
          path,
          message: `uses more than ${MAX_PLAN_ALIASES} YAML aliases: write the values out`,
        });
      return undefined;
    }
    return toPlain(node.resolve(st.doc), path, st, key);
  }
  if (isMap(node)) {
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (FORBIDDEN_KEYS.has(k)) {
        st.issues.push({ path: [...path, k], message: 'is not a plan key (it names an object prototype)' });
        continue;
      }
      out[k] = toPlain(pair.value, [...path, k], st, k);
    }
    return out;
  }
  if (isSeq(node)) return node.items.map((item, i) => toPlain(item, [...path, i], st, key));
  if (isScalar(node)) {
    if (typeof node.value === 'number' && key && ACCOUNT_KEYS.has(key) && /^\d{12}$/.test(node.source ?? ''))
      return node.source;
    return node.value;
  }
  return node === null ? null : undefined;
}

// ---------------------------------------------------------------------------------------------
// The plan's shape
// ---------------------------------------------------------------------------------------------

const TOP_FIELDS = ['apiVersion', 'plan', 'defaults', 'pipelines', 'backups'];
const DEFAULT_FIELDS = ['timeZone', 'catchupWindow', 'overlap', 'region', 'accountId'];
const SCHEDULE_FIELDS = [
  'cron',
  'every',
  'offset',
  'timeZone',
  'catchupWindow',
  'overlap',
  'jitter',
  'pauseOnFailure',
  'paused',
  'note',
];
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

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface Ctx {
  issues: { path: Path; message: string }[];
  /** Each entry's index in its list (`pipelines[2]`), for issues found once entries are built. */
  entryIndex: Map<PlanEntry, number>;
  /** The plan's folder: a pipeline's `recipe` file is found relative to it. */
  baseDir: string;
}

/**
 * A pipeline's `recipe: <file>`, relative to the plan, loaded and resolved as `amiflow recipe
 * validate` does (scripts and files read now, so the schedule carries the recipe as applied: apply
 * again after changing it). Its problems are the plan's, at the `recipe` key, naming the recipe
 * file's own line and field.
 */
function loadPipelineRecipe(value: unknown, at: Path, ctx: Ctx): unknown {
  if (typeof value !== 'string' || value.trim() === '') {
    ctx.issues.push({
      path: at,
      message: `${show(value)} is not a recipe file: give its path, relative to the plan (e.g. recipes/web.yaml)`,
    });
    return undefined;
  }
  const file = nodePath.resolve(ctx.baseDir, value);
  try {
    return loadRecipeFile(file).input;
  } catch (err) {
    if (!(err instanceof RecipeFileError)) throw err;
    for (const i of err.issues)
      ctx.issues.push({ path: at, message: `${value}:${i.line}:${i.column}: ${i.field}: ${i.message}` });
    return undefined;
  }
}

/** Plan entry (minus name/schedule) → workflow input: durations to seconds, named keys renamed. */
function toInput(value: unknown, path: Path, ctx: Ctx): unknown {
  if (Array.isArray(value)) return value.map((v, i) => toInput(v, [...path, i], ctx));
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  const inTags = path.at(-1) === 'tags';
  for (const [k, v] of Object.entries(value)) {
    const inputKey = !inTags ? DURATION_KEYS[k] : undefined;
    if (inputKey) {
      const seconds = parseDuration(v);
      if (seconds === undefined) {
        ctx.issues.push({
          path: [...path, k],
          message: `${show(v)} is not a duration: write e.g. 90s, 15m, 2h, 3d, 1w, 1h30m (or a number of seconds)`,
        });
        continue;
      }
      out[inputKey] = seconds;
    } else {
      out[k] = inTags ? v : toInput(v, [...path, k], ctx);
    }
  }
  return out;
}

/** A validator's field (input terms) → the plan's path for it. */
function planPathOf(field: string, entryPath: Path, nameKey: string): Path {
  if (field === '(input)') return entryPath;
  if (field === nameKey) return [...entryPath, 'name'];
  return [...entryPath, ...pathOf(field).map((p) => (typeof p === 'string' ? (FROM_INPUT[p] ?? p) : p))];
}

/** A validator's list of known fields, in the plan's words (`name`, `schedule`, durations without `Seconds`). */
function planTerms(message: string, nameKey: string): string {
  const m = /^is not a known field \(known: (.*)\)$/.exec(message);
  if (!m?.[1]) return message;
  const known = m[1]
    .split(', ')
    .filter((k) => k !== 'scheduledTime')
    .map((k) => (k === nameKey ? 'name' : (FROM_INPUT[k] ?? k)));
  return `is not a known field (known: ${[...known, ...(known.includes('name') ? ['schedule'] : [])].join(', ')})`;
}

function checkSchedule(
  raw: unknown,
  path: Path,
  defaults: Record<string, unknown>,
  ctx: Ctx,
): PlanSchedule | undefined {
  const issue = (p: Path, message: string) => ctx.issues.push({ path: p, message });
  if (!isObject(raw)) {
    issue(path, "is required: when to run (cron: '0 3 * * MON' or every: 6h) and timeZone");
    return undefined;
  }
  for (const k of Object.keys(raw))
    if (!SCHEDULE_FIELDS.includes(k))
      issue([...path, k], `is not a schedule field (known: ${SCHEDULE_FIELDS.join(', ')})`);
  let cron: string[] | undefined;
  let everySeconds: number | undefined;
  let offsetSeconds: number | undefined;
  if (raw.cron !== undefined && raw.every !== undefined)
    issue([...path, 'every'], 'give cron or every, not both');
  if (raw.cron !== undefined) {
    const list: unknown[] = Array.isArray(raw.cron) ? raw.cron : [raw.cron];
    cron = [];
    list.forEach((c, i) => {
      const p = Array.isArray(raw.cron) ? [...path, 'cron', i] : [...path, 'cron'];
      if (typeof c !== 'string') return issue(p, `must be a cron expression string, got ${show(c)}`);
      const problem = cronProblem(c);
      if (problem) issue(p, `${show(c)} is not a cron expression: ${problem}`);
      else cron?.push(c.trim());
    });
    if (list.length === 0) issue([...path, 'cron'], 'is empty');
  } else if (raw.every !== undefined) {
    everySeconds = parseDuration(raw.every);
    if (everySeconds === undefined || everySeconds < 1)
      issue([...path, 'every'], `${show(raw.every)} is not a duration of at least 1s (e.g. 6h, 1d)`);
    if (raw.offset !== undefined) {
      offsetSeconds = parseDuration(raw.offset);
      if (offsetSeconds === undefined) issue([...path, 'offset'], `${show(raw.offset)} is not a duration`);
      else if (everySeconds !== undefined && offsetSeconds >= everySeconds)
        issue([...path, 'offset'], `must be shorter than every (${everySeconds} s)`);
    }
  } else {
    issue(path, "says not when to run: give cron ('0 3 * * MON') or every (6h)");
  }
  if (raw.offset !== undefined && raw.every === undefined) issue([...path, 'offset'], 'goes with every');
  const zone = raw.timeZone ?? defaults.timeZone;
  if (zone === undefined)
    issue(
      [...path, 'timeZone'],
      'is required (here or in defaults): schedules never assume a time zone; e.g. UTC, Europe/Berlin',
    );
  else if (typeof zone !== 'string' || !isTimeZone(zone))
    issue(
      raw.timeZone !== undefined ? [...path, 'timeZone'] : path,
      `${show(zone)} is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)`,
    );
  const catchupRaw = raw.catchupWindow ?? defaults.catchupWindow;
  const catchup = catchupRaw === undefined ? DEFAULT_CATCHUP_SECONDS : parseDuration(catchupRaw);
  if (catchup === undefined || catchup < 10)
    issue(
      [...path, 'catchupWindow'],
      `${show(catchupRaw)} is not a duration of at least 10s (Temporal's minimum)`,
    );
  const overlapRaw = raw.overlap ?? defaults.overlap ?? 'skip';
  if (!OVERLAP_POLICIES.includes(overlapRaw as OverlapPolicy))
    issue(
      [...path, 'overlap'],
      `${show(overlapRaw)} is not an overlap policy; use one of ${OVERLAP_POLICIES.join(', ')}`,
    );
  let jitterSeconds: number | undefined;
  if (raw.jitter !== undefined) {
    jitterSeconds = parseDuration(raw.jitter);
    if (jitterSeconds === undefined) issue([...path, 'jitter'], `${show(raw.jitter)} is not a duration`);
  }
  for (const k of ['pauseOnFailure', 'paused'] as const)
    if (raw[k] !== undefined && typeof raw[k] !== 'boolean')
      issue([...path, k], `must be true or false, got ${show(raw[k])}`);
  if (raw.note !== undefined && (typeof raw.note !== 'string' || raw.note.length > 1000))
    issue([...path, 'note'], 'must be a string of at most 1000 characters');
  if (typeof zone !== 'string' || catchup === undefined) return undefined;
  return {
    ...(cron ? { cron } : {}),
    ...(everySeconds !== undefined ? { everySeconds } : {}),
    ...(offsetSeconds !== undefined ? { offsetSeconds } : {}),
    timeZone: zone,
    catchupWindowSeconds: catchup,
    overlap: overlapRaw as OverlapPolicy,
    ...(jitterSeconds !== undefined ? { jitterSeconds } : {}),
    pauseOnFailure: raw.pauseOnFailure === true,
    ...(typeof raw.paused === 'boolean' ? { paused: raw.paused } : {}),
    ...(typeof raw.note === 'string' ? { note: raw.note } : {}),
  };
}

function checkEntries(
  kind: 'golden' | 'backup',
  raw: unknown,
  listKey: 'pipelines' | 'backups',
  defaults: Record<string, unknown>,
  ctx: Ctx,
  lineOf: (path: Path) => number,
): PlanEntry[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    ctx.issues.push({ path: [listKey], message: 'must be a list of entries (- name: …)' });
    return [];
  }
  const entries: PlanEntry[] = [];
  const seen = new Map<string, number>();
  raw.forEach((item: unknown, i) => {
    const path: Path = [listKey, i];
    if (!isObject(item)) {
      ctx.issues.push({ path, message: 'must be a map with name, schedule and the entry’s settings' });
      return;
    }
    const name = item.name;
    if (typeof name !== 'string' || !PLAN_NAME_RE.test(name))
      ctx.issues.push({
        path: [...path, 'name'],
        message: `${name === undefined ? 'is required' : `${show(name)} is not a valid name`}: 1 to 40 lowercase letters, digits and inner dashes`,
      });
    else if (seen.has(name))
      ctx.issues.push({
        path: [...path, 'name'],
        message: `'${name}' is declared twice (also ${listKey}[${seen.get(name)}])`,
      });
    else seen.set(name, i);
    const schedule = checkSchedule(item.schedule, [...path, 'schedule'], defaults, ctx);
    const { name: _name, schedule: _schedule, ...settings } = item;
    if (settings.scheduledTime !== undefined)
      ctx.issues.push({
        path: [...path, 'scheduledTime'],
        message: 'is set by the schedule for each run (Temporal’s scheduled time): remove it from the plan',
      });
    const nameKey = kind === 'golden' ? 'pipeline' : 'plan';
    const converted = toInput(
      {
        ...(defaults.region !== undefined && settings.region === undefined
          ? { region: defaults.region }
          : {}),
        ...(defaults.accountId !== undefined && settings.accountId === undefined
          ? { accountId: defaults.accountId }
          : {}),
        ...settings,
        [nameKey]: name,
      },
      path,
      ctx,
    ) as Record<string, unknown>;
    if (kind === 'golden' && converted.approval === true) converted.approval = {};
    // After toInput: the resolved recipe's own keys (a step's timeoutSeconds, …) are the workflow's.
    if (kind === 'golden' && settings.recipe !== undefined) {
      const recipe = loadPipelineRecipe(settings.recipe, [...path, 'recipe'], ctx);
      if (recipe === undefined) delete converted.recipe;
      else converted.recipe = recipe;
    }
    const found: InputIssue[] =
      kind === 'golden'
        ? [
            ...goldenImageIssues(converted),
            // Plans name approvers as IAM principals: the worker verifies who approves by STS.
            ...approverPatternIssues('approval.approvers', approversOf(converted.approval)),
          ]
        : backupIssues(converted);
    for (const issue of found) {
      // A recipe that failed to load was reported above; its absence is no second problem.
      if (
        settings.recipe !== undefined &&
        converted.recipe === undefined &&
        issue.field === 'builderInstanceId'
      )
        continue;
      ctx.issues.push({
        path: planPathOf(issue.field, path, nameKey),
        message: planTerms(issue.message, nameKey),
      });
    }
    if (typeof name === 'string' && schedule) {
      const entry: PlanEntry =
        kind === 'golden'
          ? { kind, name, input: converted as unknown as GoldenImageInput, schedule, line: lineOf(path) }
          : { kind, name, input: converted as unknown as BackupInput, schedule, line: lineOf(path) };
      ctx.entryIndex.set(entry, i);
      entries.push(entry);
    }
  });
  return entries;
}

/** Parses and validates a plan; throws `PlanFileError` listing every problem with line and field. */
export function parsePlan(text: string, source = '(plan)', bounds?: ScheduleBounds): Plan {
  if (text.length > MAX_PLAN_BYTES)
    throw new PlanFileError(source, [
      { line: 1, column: 1, field: '(file)', message: `is larger than ${MAX_PLAN_BYTES} bytes: not a plan` },
    ]);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0)
    throw new PlanFileError(
      source,
      doc.errors.map((e) => ({
        line: e.linePos?.[0].line ?? 1,
        column: e.linePos?.[0].col ?? 1,
        field: '(syntax)',
        message: e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? e.message,
      })),
    );
  /** The line and column of the deepest node along a path that exists (recipe files use the same). */
  const position = positionIn(doc, lineCounter);
  // `(plan)` (text without a file): recipe files are found relative to the working directory.
  const baseDir = source === '(plan)' ? process.cwd() : nodePath.dirname(nodePath.resolve(source));
  const ctx: Ctx = { issues: [], entryIndex: new Map(), baseDir };
  const root = toPlain(doc.contents, [], { doc, issues: ctx.issues, aliases: 0, nodes: 0 });
  const fail = (): never => {
    throw new PlanFileError(
      source,
      ctx.issues
        .map((i) => ({ ...position(i.path), field: fieldOf(i.path) || '(plan)', message: i.message }))
        .sort((a, b) => a.line - b.line || a.column - b.column),
    );
  };
  if (!isObject(root)) {
    ctx.issues.push({
      path: [],
      message: `must be a map with apiVersion: ${PLAN_API_VERSION}, plan, pipelines and/or backups`,
    });
    return fail();
  }
  for (const k of Object.keys(root))
    if (!TOP_FIELDS.includes(k))
      ctx.issues.push({ path: [k], message: `is not a plan field (known: ${TOP_FIELDS.join(', ')})` });
  if (root.apiVersion !== PLAN_API_VERSION)
    ctx.issues.push({
      path: ['apiVersion'],
      message: `${root.apiVersion === undefined ? 'is required' : `${show(root.apiVersion)} is not supported`}: this amiflow reads apiVersion: ${PLAN_API_VERSION}`,
    });
  if (typeof root.plan !== 'string' || !PLAN_NAME_RE.test(root.plan))
    ctx.issues.push({
      path: ['plan'],
      message: `${root.plan === undefined ? 'is required' : `${show(root.plan)} is not a valid plan name`}: 1 to 40 lowercase letters, digits and inner dashes (schedule ids start with amiflow/<plan>/)`,
    });
  const defaults = isObject(root.defaults) ? root.defaults : {};
  if (root.defaults !== undefined && !isObject(root.defaults))
    ctx.issues.push({ path: ['defaults'], message: 'must be a map' });
  for (const k of Object.keys(defaults))
    if (!DEFAULT_FIELDS.includes(k))
      ctx.issues.push({
        path: ['defaults', k],
        message: `is not a default (known: ${DEFAULT_FIELDS.join(', ')})`,
      });
  const lineOf = (path: Path) => position(path).line;
  const entries = [
    ...checkEntries('golden', root.pipelines, 'pipelines', defaults, ctx, lineOf),
    ...checkEntries('backup', root.backups, 'backups', defaults, ctx, lineOf),
  ];
  if (bounds) checkIntervals(entries, bounds, ctx);
  if (root.pipelines === undefined && root.backups === undefined)
    ctx.issues.push({ path: [], message: 'declares nothing: add pipelines and/or backups' });
  if (ctx.issues.length > 0) fail();
  return {
    apiVersion: PLAN_API_VERSION,
    name: root.plan as string,
    entries,
    source,
    digest: createHash('sha256').update(text).digest('hex').slice(0, 16),
  };
}

/**
 * Entries scheduled more often than the operator's bound for their workflow type (client/bounds.ts),
 * refused at validate already, not only when apply creates the schedule.
 */
function checkIntervals(entries: PlanEntry[], bounds: ScheduleBounds, ctx: Ctx): void {
  entries.forEach((entry) => {
    const list = entry.kind === 'golden' ? 'pipelines' : 'backups';
    const type = entry.kind === 'golden' ? 'goldenImage' : 'backupInstances';
    const problem = scheduleIntervalProblem(bounds, type, entry.schedule);
    if (problem) {
      const at = entry.schedule.everySeconds !== undefined ? 'every' : 'cron';
      // The entry's index is its place among its kind's entries, which keep the file's order.
      const index = ctx.entryIndex.get(entry) ?? 0;
      ctx.issues.push({ path: [list, index, 'schedule', at], message: problem });
    }
  });
}

export async function loadPlanFile(file: string, bounds?: ScheduleBounds): Promise<Plan> {
  let text: string;
  try {
    const size = (await stat(file)).size;
    if (size > MAX_PLAN_BYTES) throw new Error(`it has ${size} bytes; a plan has at most ${MAX_PLAN_BYTES}`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PlanFileError(file, [
      {
        line: 1,
        column: 1,
        field: '(file)',
        message: `cannot be read: ${err instanceof Error ? err.message : String(err)}`,
      },
    ]);
  }
  return parsePlan(text, file, bounds);
}

/** `approval.approvers` when the approval block is an object (its own checks name anything else). */
export function approversOf(approval: unknown): unknown {
  return typeof approval === 'object' && approval !== null && Object.hasOwn(approval, 'approvers')
    ? (approval as { approvers?: unknown }).approvers
    : undefined;
}
