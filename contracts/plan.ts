/**
 * The plan file (`amiflow plan validate|apply <file>`) as editors see it: the zod schema behind
 * contracts/plan.schema.json (`npm run plan-schema` writes it; a test fails when it is stale), so
 * YAML and JSON editors complete and check plan files (`# yaml-language-server: $schema=…`).
 *
 * It is the plan file's one schema: which keys exist where, enums, ids, durations written `90s`,
 * `15m`, `2h`, `3d`, `1w`, `1h30m` (or seconds), cron expressions, IANA time zones, and the rules
 * between fields (cron or every, offset within every, a time zone here or in defaults, unique
 * names). client/plan-file.ts reads the YAML, validates it with this schema (messages with line and
 * field), then checks each entry as its workflow input with the workflow's own validators.
 */
import { z } from 'zod';
import { CONSISTENCY_MODES } from './common';
import { PLAN_NAME_RE, accountId, imageName, instanceId, oneOf, region, userTags } from './fields';
import type { Report } from './issues';
import { show, withRules } from './issues';
import { appConsistentOptionsSchema } from './image';
import { goldenRolloutStageSchema } from './rollout';
import { KMS_ACCESS_MODES } from './share';

export const PLAN_API_VERSION = 'amiflow/v1';
export const OVERLAP_POLICIES = [
  'skip',
  'buffer-one',
  'buffer-all',
  'cancel-other',
  'terminate-other',
  'allow-all',
] as const;
export const PLAN_DURATION_RE = /^(\d+[smhdw])+$/;
/** Temporal refuses a catch-up window below 10 seconds. */
export const MIN_CATCHUP_SECONDS = 10;

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

/** Why one comma-separated item of cron field `f` is not a value, range or step; undefined when it is one. */
function cronItemProblem(f: (typeof CRON_FIELDS)[number], item: string): string | undefined {
  const [range = '', step, extra] = item.split('/');
  if (extra !== undefined || (step !== undefined && !/^[1-9]\d*$/.test(step)))
    return `${f.name} '${item}': a step is '/<n>' with n ≥ 1`;
  if (range === '*') return undefined;
  const bounds = range.split('-');
  if (bounds.length > 2 || bounds.some((b) => b === ''))
    return `${f.name} '${item}' is not a value or a range`;
  for (const b of bounds) {
    const named = f.names?.indexOf(b.toUpperCase()) ?? -1;
    const n = named >= 0 ? named + (f.name === 'month' ? 1 : 0) : /^\d+$/.test(b) ? Number(b) : NaN;
    if (Number.isNaN(n) || n < f.min || n > f.max)
      return `${f.name} '${b}' is out of range (${f.min}–${f.max}${f.names ? ` or ${f.names[0]}–${f.names.at(-1)}` : ''})`;
  }
  return undefined;
}

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
    const problem = f
      ? part
          .split(',')
          .map((item) => cronItemProblem(f, item))
          .find(Boolean)
      : undefined;
    if (problem) return problem;
  }
  return undefined;
}

/** Whether the runtime's ICU knows `zone` as an IANA time zone (Temporal's server takes the same names). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const planNameProblem = (v: unknown) =>
  `${v === undefined ? 'is required' : `${show(v)} is not a valid plan name`}: 1 to 40 lowercase letters, digits and inner dashes (schedule ids start with amiflow/<plan>/)`;

const notADuration = (v: unknown) =>
  `${show(v)} is not a duration: write e.g. 90s, 15m, 2h, 3d, 1w, 1h30m (or a number of seconds)`;
const duration = z
  .union(
    [
      z.string().regex(PLAN_DURATION_RE, { error: (iss) => notADuration(iss.input) }),
      z
        .number()
        .int({ error: (iss) => notADuration(iss.input) })
        .min(0, { error: (iss) => notADuration(iss.input) }),
    ],
    { error: (iss) => notADuration(iss.input) },
  )
  .describe('a duration: 90s, 15m, 2h, 3d, 1w, 1h30m, or a number of seconds');
const text = (max: number) =>
  z.string({ error: 'must be a string' }).max(max, { error: `must be at most ${max} characters` });
/**
 * A plan map: an unknown key names the known ones; keys whose schema is `never` (refused with
 * their own message, like `scheduledTime`) are not offered as known.
 */
function strict<S extends z.ZodRawShape>(shape: S, notAMap = 'must be a map') {
  const known = Object.entries(shape)
    .filter(([, s]) => !(s instanceof z.ZodOptional && s.unwrap() instanceof z.ZodNever))
    .map(([k]) => k)
    .join(', ');
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `is not a known field (known: ${known})` : notAMap),
  });
}
const overlap = oneOf(OVERLAP_POLICIES, 'an overlap policy').describe(
  'a run due while the previous one still runs',
);
const timeZone = z
  .string({ error: 'must be an IANA time zone name, e.g. UTC, Europe/Berlin' })
  .refine(isTimeZone, {
    error: (iss) => `${show(iss.input)} is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)`,
  })
  .describe('IANA time zone, e.g. Europe/Berlin (here or in defaults)');
const entryName = (what: string) =>
  z
    .string({
      error: (iss) =>
        `${iss.input === undefined ? 'is required' : `${show(iss.input)} is not a valid name`}: 1 to 40 lowercase letters, digits and inner dashes`,
    })
    .regex(PLAN_NAME_RE, {
      error: (iss) =>
        `${show(iss.input)} is not a valid name: 1 to 40 lowercase letters, digits and inner dashes`,
    })
    .describe(what);

/** The rules between a schedule's fields: cron or every (not both), offset within every, bounds. */
function scheduleRules(s: Record<string, unknown>, report: Report): void {
  if (s.cron !== undefined && s.every !== undefined) report(['every'], 'give cron or every, not both');
  if (s.cron === undefined && s.every === undefined)
    report([], "says not when to run: give cron ('0 3 * * MON') or every (6h)");
  const list: unknown[] = Array.isArray(s.cron) ? s.cron : [s.cron];
  list.forEach((c, i) => {
    const problem = typeof c === 'string' ? cronProblem(c) : undefined;
    if (problem)
      report(
        Array.isArray(s.cron) ? ['cron', i] : ['cron'],
        `${show(c)} is not a cron expression: ${problem}`,
      );
  });
  const every = parseDuration(s.every);
  if (every !== undefined && every < 1)
    report(['every'], `${show(s.every)} is not a duration of at least 1s (e.g. 6h, 1d)`);
  const offset = parseDuration(s.offset);
  if (s.offset !== undefined && s.every === undefined) report(['offset'], 'goes with every');
  else if (offset !== undefined && every !== undefined && offset >= every)
    report(['offset'], `must be shorter than every (${every} s)`);
}

/** Checks a catch-up window (here or in defaults) against Temporal's minimum. */
function catchupRule(s: Record<string, unknown>, report: Report): void {
  const catchup = parseDuration(s.catchupWindow);
  if (catchup !== undefined && catchup < MIN_CATCHUP_SECONDS)
    report(
      ['catchupWindow'],
      `${show(s.catchupWindow)} is not a duration of at least 10s (Temporal's minimum)`,
    );
}

const schedule = withRules(
  strict(
    {
      cron: z
        .union([z.string(), z.array(z.string()).min(1, { error: 'is empty' })], {
          error: (iss) => `must be a cron expression string or a list of them, got ${show(iss.input)}`,
        })
        .describe('cron (5 fields, or @daily, @weekly, …), evaluated in timeZone; or a list of them'),
      every: duration.describe('or an interval'),
      offset: duration.describe('offset of the interval'),
      timeZone,
      catchupWindow: duration.describe('runs missed while Temporal was down start if at most this late'),
      overlap,
      jitter: duration,
      pauseOnFailure: z.boolean({ error: (iss) => `must be true or false, got ${show(iss.input)}` }),
      paused: z
        .boolean({ error: (iss) => `must be true or false, got ${show(iss.input)}` })
        .describe('declared state; unset: apply keeps an operator’s pause'),
      note: text(1000),
    },
    "is required: when to run (cron: '0 3 * * MON' or every: 6h) and timeZone",
  ).partial(),
  (s, report) => {
    scheduleRules(s, report);
    catchupRule(s, report);
  },
);
export type PlanFileSchedule = z.infer<typeof schedule>;
/** A schedule's fields (the CLI's `--overlap` and `--note` of `schedule …` are derived from them). */
export const planScheduleSchema = schedule;

const retention = {
  keep: z.number().int().min(1).max(1000).describe('newest versions kept (the newest is never retired)'),
  maxAge: duration,
};

const ENTRY_NOT_A_MAP = 'must be a map with name, schedule and the entry’s settings';
/** Temporal's scheduled time of each run names the image version: a plan cannot pin it. */
const scheduledTime = z
  .never({
    error: 'is set by the schedule for each run (Temporal’s scheduled time): remove it from the plan',
  })
  .optional();

const pipeline = strict(
  {
    name: entryName('the pipeline: schedule id amiflow/<plan>/<name>, image name prefix'),
    region: region.optional(),
    accountId: accountId.optional(),
    builderInstanceId: instanceId
      .optional()
      .describe('the instance kept patched by its owners; amiflow images it (or give recipe)'),
    recipe: z
      .string()
      .optional()
      .describe(
        'or build the image from this recipe file (path relative to the plan; amiflow recipe validate)',
      ),
    mode: z.enum(CONSISTENCY_MODES).optional(),
    /** Options of mode app-consistent (seconds, as the workflow takes them). */
    appConsistent: appConsistentOptionsSchema.optional(),
    versioning: z
      .union([
        strict({ scheme: z.literal('date') }),
        strict({ scheme: z.literal('semver'), series: z.string() }),
      ])
      .optional(),
    imageNamePrefix: imageName.optional(),
    description: text(255).optional(),
    tags: userTags.optional(),
    validation: strict({
      subnetId: z.string().describe('a test instance is launched here from the new image'),
      instanceType: z.string().optional(),
      securityGroupIds: z.array(z.string()).optional(),
      instanceProfileArn: z.string().optional(),
      readyTimeout: duration.optional(),
      healthCheck: strict({
        successMarker: text(200),
        failureMarker: text(200).optional(),
        timeout: duration.optional(),
      }).optional(),
    }).optional(),
    approval: z
      .union([
        z.literal(true),
        strict({ timeout: duration.optional(), approvers: z.array(z.string()).optional() }),
      ])
      .optional()
      .describe('wait for an approver before distributing (true: with the default timeout)'),
    distribution: strict({
      copies: z
        .array(
          strict({
            region,
            accountId: accountId.optional(),
            kmsKeyId: z.string().optional(),
            name: imageName.optional(),
            description: text(255).optional(),
          }),
        )
        .optional(),
      shareWith: strict({
        accountIds: z.array(accountId).optional(),
        organizationArns: z.array(z.string()).optional(),
        organizationalUnitArns: z.array(z.string()).optional(),
        allowCopy: z.boolean().optional(),
        kmsAccess: z.enum(KMS_ACCESS_MODES).optional(),
      }).optional(),
      concurrencyPerRegion: z.number().int().min(1).optional(),
    }).optional(),
    publish: strict({ parameterName: z.string() }).optional(),
    retention: strict({
      ...retention,
      deprecateAfter: duration,
      deregisterAfter: duration,
      protectNewest: z.boolean(),
    })
      .partial()
      .optional(),
    timeouts: strict({ instanceState: duration, imageAvailable: duration, copyAvailable: duration })
      .partial()
      .optional(),
    /** Roll the approved image out last (contracts/rollout.ts; seconds, as the workflow takes them). */
    rollout: goldenRolloutStageSchema.optional(),
    scheduledTime,
    schedule,
  },
  ENTRY_NOT_A_MAP,
);

const backup = strict(
  {
    name: entryName('the backup plan: schedule id amiflow/<plan>/<name>'),
    region: region.optional(),
    accountId: accountId.optional(),
    instanceIds: z.array(instanceId).optional(),
    selector: strict({ tags: userTags }).optional(),
    mode: z.enum(CONSISTENCY_MODES).optional(),
    /** Options of mode app-consistent, for every instance (seconds, as the workflow takes them). */
    appConsistent: appConsistentOptionsSchema.optional(),
    window: duration.optional().describe('instances not started within this long are skipped'),
    retention: strict(retention).partial().optional(),
    copyTo: strict({ region, kmsKeyId: z.string().optional() }).optional(),
    concurrency: z.number().int().min(1).optional(),
    tags: userTags.optional(),
    timeouts: strict({ instanceState: duration, imageAvailable: duration, copyAvailable: duration })
      .partial()
      .optional(),
    scheduledTime,
    schedule,
  },
  ENTRY_NOT_A_MAP,
);

/**
 * The rules across a plan: a schedule's time zone is given here or in defaults (never assumed),
 * entry names are unique per list, and a plan declares something.
 */
function planRules(plan: Record<string, unknown>, report: Report): void {
  const defaults = isRecord(plan.defaults) ? plan.defaults : {};
  for (const list of ['pipelines', 'backups'] as const) {
    const entries = plan[list];
    if (!Array.isArray(entries)) continue;
    const seen = new Map<unknown, number>();
    entries.forEach((entry: unknown, i) => {
      if (!isRecord(entry)) return;
      if (typeof entry.name === 'string' && seen.has(entry.name))
        report(
          [list, i, 'name'],
          `${show(entry.name)} is declared twice (also ${list}[${seen.get(entry.name)}])`,
        );
      else seen.set(entry.name, i);
      if (
        isRecord(entry.schedule) &&
        entry.schedule.timeZone === undefined &&
        defaults.timeZone === undefined
      )
        report(
          [list, i, 'schedule', 'timeZone'],
          'is required (here or in defaults): schedules never assume a time zone; e.g. UTC, Europe/Berlin',
        );
    });
  }
  if (plan.pipelines === undefined && plan.backups === undefined)
    report([], 'declares nothing: add pipelines and/or backups');
}

export const planFileSchema = withRules(
  strict(
    {
      apiVersion: z.literal(PLAN_API_VERSION, {
        error: (iss) =>
          `${iss.input === undefined ? 'is required' : `${show(iss.input)} is not supported`}: this amiflow reads apiVersion: ${PLAN_API_VERSION}`,
      }),
      plan: z
        .string({ error: (iss) => planNameProblem(iss.input) })
        .regex(PLAN_NAME_RE, { error: (iss) => planNameProblem(iss.input) })
        .describe('the plan’s name: apply creates, updates and deletes only its own schedules'),
      defaults: withRules(
        strict({ timeZone, catchupWindow: duration, overlap, region, accountId }).partial(),
        catchupRule,
      ).optional(),
      pipelines: z
        .array(pipeline, { error: 'must be a list of entries (- name: …)' })
        .optional()
        .describe('golden-image pipelines'),
      backups: z
        .array(backup, { error: 'must be a list of entries (- name: …)' })
        .optional()
        .describe('backup plans'),
    },
    `must be a map with apiVersion: ${PLAN_API_VERSION}, plan, pipelines and/or backups`,
  ),
  planRules,
).describe('amiflow plan: golden-image pipelines and backup plans, with their schedules');
export type PlanFile = z.input<typeof planFileSchema>;

/** The JSON Schema of plan files, as committed in contracts/plan.schema.json. */
export function planJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(planFileSchema, { target: 'draft-7', io: 'input', unrepresentable: 'any' });
}
