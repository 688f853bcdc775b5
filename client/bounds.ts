/**
 * Bounds the client library keeps on what it asks Temporal to do, so a typo or a hostile caller
 * cannot turn amiflow into a load generator or a tool against other teams' work:
 *
 * - a shortest interval per scheduled workflow type (default 1 h for golden images, backups and
 *   compliance scans), set by the operator (`AMIFLOW_MIN_INTERVAL_<TYPE>` in the client's
 *   environment, or `ScheduleBounds` given to the client), never by the request;
 * - backfills of at most `maxBackfillRuns` runs (default 50, `AMIFLOW_MAX_BACKFILL_RUNS`), counted
 *   with Temporal's own matching times, and `allow-all` overlap only when confirmed;
 * - cancel, pause, unpause, trigger, backfill and delete only on amiflow's workflows and schedules,
 *   by workflow type and id prefix; cancelling a closed run says it is closed.
 */
import { checkedId } from './trust-input';
import { WORKFLOW_TYPES } from '../contracts';

export type ScheduledWorkflowType = 'goldenImage' | 'backupInstances' | 'complianceScan';

export interface ScheduleBounds {
  /** Shortest interval between scheduled runs, in seconds, per workflow type. */
  minIntervalSeconds: Record<ScheduledWorkflowType, number>;
  /** Most runs one backfill may start. */
  maxBackfillRuns: number;
}

export const DEFAULT_SCHEDULE_BOUNDS: ScheduleBounds = {
  minIntervalSeconds: { goldenImage: 3600, backupInstances: 3600, complianceScan: 3600 },
  maxBackfillRuns: 50,
};

const ENV_KEYS: Record<ScheduledWorkflowType, string> = {
  goldenImage: 'AMIFLOW_MIN_INTERVAL_GOLDEN',
  backupInstances: 'AMIFLOW_MIN_INTERVAL_BACKUP',
  complianceScan: 'AMIFLOW_MIN_INTERVAL_SCAN',
};

function positiveInt(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${key}: '${raw}' is not a positive whole number`);
  return n;
}

/** The operator's bounds from the client's environment (seconds; runs), the defaults otherwise. */
export function readScheduleBounds(env: NodeJS.ProcessEnv = process.env): ScheduleBounds {
  const d = DEFAULT_SCHEDULE_BOUNDS;
  return {
    minIntervalSeconds: {
      goldenImage: positiveInt(env, ENV_KEYS.goldenImage, d.minIntervalSeconds.goldenImage),
      backupInstances: positiveInt(env, ENV_KEYS.backupInstances, d.minIntervalSeconds.backupInstances),
      complianceScan: positiveInt(env, ENV_KEYS.complianceScan, d.minIntervalSeconds.complianceScan),
    },
    maxBackfillRuns: positiveInt(env, 'AMIFLOW_MAX_BACKFILL_RUNS', d.maxBackfillRuns),
  };
}

/** A request the library refuses to pass to Temporal: out of bounds, or not amiflow's to act on. */
export class RefusedError extends Error {
  override readonly name = 'RefusedError';
}

function literal(field: string | undefined): boolean {
  return field !== undefined && /^\d+$/.test(field);
}

/**
 * The shortest time between two firings of a cron expression, bounded from below: a minute field
 * that is not one number fires every minute at worst; one minute with any hour fires hourly; one
 * minute and one hour, daily. With a seconds field (6 or 7 fields), a non-literal one is 1 s.
 */
export function cronMinIntervalSeconds(expr: string): number {
  if (expr.trim().startsWith('@')) {
    const macro = expr.trim().toLowerCase();
    if (macro.startsWith('@every')) return 0; // Temporal's @every <duration>: checked as an interval
    return macro === '@hourly' ? 3600 : 86400;
  }
  const fields = expr.trim().split(/\s+/);
  const withSeconds = fields.length >= 6;
  const [sec, min, hour] = withSeconds ? fields : ['0', ...fields];
  if (!literal(sec)) return 1;
  if (!literal(min)) return 60;
  if (!literal(hour)) return 3600;
  return 86400;
}

function human(seconds: number): string {
  return seconds % 3600 === 0
    ? `${seconds / 3600} h`
    : seconds % 60 === 0
      ? `${seconds / 60} min`
      : `${seconds} s`;
}

/** Why an interval or cron is shorter than the operator's bound for the type (naming the bound); undefined when it is not. */
export function scheduleIntervalProblem(
  bounds: ScheduleBounds,
  type: ScheduledWorkflowType,
  spec: { everySeconds?: number; cron?: readonly string[] },
): string | undefined {
  const min = bounds.minIntervalSeconds[type];
  const shortest = Math.min(spec.everySeconds ?? Infinity, ...(spec.cron ?? []).map(cronMinIntervalSeconds));
  if (shortest >= min) return undefined;
  return (
    `${type} runs at most every ${human(min)} (the operator's bound, ${ENV_KEYS[type]}); ` +
    `this schedule would start one every ${shortest <= 0 ? 'moment' : human(shortest)}`
  );
}

/** Refuses an interval or cron shorter than the operator's bound for the type, naming the bound. */
export function checkScheduleInterval(
  bounds: ScheduleBounds,
  type: ScheduledWorkflowType,
  spec: { everySeconds?: number; cron?: readonly string[] },
  field: string,
): void {
  const problem = scheduleIntervalProblem(bounds, type, spec);
  if (problem) throw new RefusedError(`${field}: ${problem}`);
}

/** Where amiflow's workflow ids start, per workflow type (children extend their parent's id). */
export const AMIFLOW_WORKFLOW_ID_PREFIXES = [
  'image-from-instance/',
  'share-image/',
  'unshare-image/',
  'copy-image/',
  'migrate-instance/',
  'golden-image/',
  'backup/',
  'approved-images/',
  'compliance-scan/',
  'enforce-allowed-amis/',
] as const;

/** amiflow's schedules: plan schedules and compliance scans. */
export const AMIFLOW_SCHEDULE_ID_PREFIXES = ['amiflow/', 'compliance-scan/'] as const;

const TYPES = new Set<string>(Object.values(WORKFLOW_TYPES));

/** Refuses a workflow that is not amiflow's, by its type and id. */
export function checkAmiflowRun(workflowId: string, workflowType: string, action: string): void {
  checkedId('workflowId', workflowId);
  if (!TYPES.has(workflowType) || !AMIFLOW_WORKFLOW_ID_PREFIXES.some((p) => workflowId.startsWith(p)))
    throw new RefusedError(
      `${workflowId} is a ${workflowType} run, not one of amiflow's (types ${[...TYPES].join(', ')}; ids ` +
        `${AMIFLOW_WORKFLOW_ID_PREFIXES.join('…, ')}…): not going to ${action} it`,
    );
}

/** Refuses a schedule id that is not amiflow's. */
export function checkAmiflowSchedule(scheduleId: string, action: string): void {
  checkedId('scheduleId', scheduleId, 'schedule id');
  if (!AMIFLOW_SCHEDULE_ID_PREFIXES.some((p) => scheduleId.startsWith(p)))
    throw new RefusedError(
      `schedule ${scheduleId} is not one of amiflow's (${AMIFLOW_SCHEDULE_ID_PREFIXES.map((p) => `${p}…`).join(', ')}): not going to ${action} it`,
    );
}
