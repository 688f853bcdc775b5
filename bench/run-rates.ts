/**
 * Pure arithmetic for the 10,000-wait bench (bench/fleet-light.ts): per-run latency summaries,
 * CPU seconds from /proc/<pid>/stat, the open-loop start schedule, the workflow tasks a run needs
 * before its wait, whether a measured CPU cost per run can fit a deadline on a given number of
 * cores, and the worker options the bench varies. Kept apart from the processes so test/bench can
 * check each against hand-made inputs.
 */
import type { WorkerOptions } from '@temporalio/worker';

export interface LatencySummary {
  count: number;
  medianS: number;
  p99S: number;
  maxS: number;
}

/** Nearest-rank percentile (p in 0..100) of values sorted ascending; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? NaN;
}

/** Median, p99 and max of latencies given in milliseconds, as seconds. */
export function summariseLatencies(ms: readonly number[]): LatencySummary {
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    count: sorted.length,
    medianS: percentile(sorted, 50) / 1000,
    p99S: percentile(sorted, 99) / 1000,
    maxS: (sorted[sorted.length - 1] ?? NaN) / 1000,
  };
}

/**
 * Each run's latency from its own start to an event: `startedAt` and `eventAt` map a run's key to
 * epoch ms. Runs with no event are left out and counted, so a missing run cannot pass unnoticed.
 */
export function latenciesBetween(
  startedAt: ReadonlyMap<string, number>,
  eventAt: ReadonlyMap<string, number>,
): { ms: number[]; missing: number } {
  const ms: number[] = [];
  let missing = 0;
  for (const [key, start] of startedAt) {
    const at = eventAt.get(key);
    if (at === undefined) missing += 1;
    else ms.push(at - start);
  }
  return { ms, missing };
}

/** Linux's USER_HZ: /proc reports CPU time in these ticks (100 on every mainstream kernel). */
export const CLOCK_TICKS_PER_SECOND = 100;

/**
 * User + system CPU seconds of a process (all its threads) from the text of /proc/<pid>/stat.
 * The command name (field 2) may hold spaces and parentheses, so fields are counted after the
 * last ')': utime and stime are fields 14 and 15 of the line.
 */
export function cpuSecondsFromStat(stat: string): number {
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/<pid>/stat line: ${stat.slice(0, 60)}`);
  // After ')' the fields start at field 3 (state): utime is field 14, so index 11 here.
  const fields = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime))
    throw new Error(`no utime/stime in /proc/<pid>/stat: ${stat.slice(0, 60)}`);
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/** The parent pid (field 4) and command name (field 2) from /proc/<pid>/stat. */
export function parentAndNameFromStat(stat: string): { ppid: number; name: string } {
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  const fields = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  return { ppid: Number(fields[1]), name: stat.slice(open + 1, close) };
}

/** Open loop: when (ms after the first) run i of a paced start is due, at `perSecond` starts a second. */
export function pacedOffsetMs(i: number, perSecond: number): number {
  if (!(perSecond > 0)) throw new Error(`starts per second must be > 0, got ${perSecond}`);
  return (i * 1000) / perSecond;
}

export interface HistoryEventLite {
  eventType: string;
  /** For ACTIVITY_TASK_SCHEDULED: the activity's type name. */
  activityType?: string;
}

/**
 * What one run costs before it waits, from its history: workflow tasks completed and activities
 * scheduled before the first `activity` was scheduled (the events up to and including the
 * workflow task that scheduled it). Undefined when the run never scheduled that activity.
 */
export function costBeforeActivity(
  events: readonly HistoryEventLite[],
  activity: string,
): { workflowTasks: number; activitiesBefore: number; events: number } | undefined {
  let workflowTasks = 0;
  let activitiesBefore = 0;
  for (const [i, e] of events.entries()) {
    if (e.eventType === 'WORKFLOW_TASK_COMPLETED') workflowTasks += 1;
    if (e.eventType === 'ACTIVITY_TASK_SCHEDULED') {
      if (e.activityType === activity) return { workflowTasks, activitiesBefore, events: i + 1 };
      activitiesBefore += 1;
    }
  }
  return undefined;
}

export interface CpuBudget {
  /** CPU ms per run summed over the processes given. */
  cpuMsPerRun: number;
  cpuSecondsNeeded: number;
  cpuSecondsAvailable: number;
  /** The shortest wall time the runs could take if every core did nothing else. */
  minSeconds: number;
  fits: boolean;
}

/** Can `runs` runs at the measured CPU cost per run finish within `seconds` on `cores` cores? */
export function cpuBudget(cpuMsPerRun: number, runs: number, cores: number, seconds: number): CpuBudget {
  const cpuSecondsNeeded = (cpuMsPerRun * runs) / 1000;
  const cpuSecondsAvailable = cores * seconds;
  return {
    cpuMsPerRun,
    cpuSecondsNeeded,
    cpuSecondsAvailable,
    minSeconds: cpuSecondsNeeded / cores,
    fits: cpuSecondsNeeded <= cpuSecondsAvailable,
  };
}

/**
 * Worker options the 10,000-wait bench varies (bench/fleet-light.ts), each from a BENCH_ variable;
 * unset keeps the worker's own default. Returns the options and what was set, for the report.
 */
export function benchWorkerOptions(env: NodeJS.ProcessEnv): Partial<WorkerOptions> {
  const num = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${raw}`);
    return n;
  };
  const out: Partial<WorkerOptions> = {};
  const wfPolls = num('BENCH_WORKFLOW_TASK_POLLS');
  const actPolls = num('BENCH_ACTIVITY_TASK_POLLS');
  const wfExecutions = num('BENCH_WORKFLOW_TASK_EXECUTIONS');
  const threads = num('BENCH_WORKFLOW_THREADS');
  if (wfPolls !== undefined) out.maxConcurrentWorkflowTaskPolls = wfPolls;
  if (actPolls !== undefined) out.maxConcurrentActivityTaskPolls = actPolls;
  if (wfExecutions !== undefined) out.maxConcurrentWorkflowTaskExecutions = wfExecutions;
  if (threads !== undefined) out.workflowThreadPoolSize = threads;
  return out;
}

/** The variables of `env` named `prefix`NAME, as NAME=value (how a bench passes settings to its worker). */
export function prefixedOverrides(env: NodeJS.ProcessEnv, prefix: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).flatMap(([k, v]) =>
      k.startsWith(prefix) && k.length > prefix.length && v !== undefined
        ? [[k.slice(prefix.length), v]]
        : [],
    ),
  );
}
