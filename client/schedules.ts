/**
 * Temporal Schedules for golden-image pipelines and backup plans: compiled from plan-file entries,
 * and managed here (create, list, describe with next run times and last results, update, pause and
 * unpause with a note, trigger now, backfill a window, delete) and by `apply`, which makes the
 * schedules of a plan what the file declares: it creates, updates and deletes only its own
 * (ids `amiflow/<plan>/<golden|backup>/<name>`).
 *
 * Runs a Schedule starts get the schedule's workflow id with the scheduled time appended
 * (`golden-image/<plan>/<name>-2026-01-19T02:00:00Z`) and Temporal's `TemporalScheduledStartTime`,
 * from which the run takes its version: triggering the same time twice makes one image.
 */
import { createHash } from 'node:crypto';
import type {
  Client,
  ScheduleDescription,
  ScheduleHandle,
  ScheduleOptions,
  ScheduleOverlapPolicy,
} from '@temporalio/client';
import { ScheduleNotFoundError, WorkflowFailedError } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import Long from 'long';
import { SearchAttr } from '../contracts';
import { backupInstances, goldenImage } from '../workflows';
import type { AmiflowWorkflow } from './distribution';
import type { OverlapPolicy, Plan, PlanEntry } from './plan-file';
import { entryKey } from './plan-file';
import type { ScheduleBounds } from './bounds';
import { checkedId } from './trust-input';
import { RefusedError, checkAmiflowSchedule, checkScheduleInterval, readScheduleBounds } from './bounds';

export const SCHEDULE_PREFIX = 'amiflow/';

export function scheduleIdOf(plan: string, entry: Pick<PlanEntry, 'kind' | 'name'>): string {
  return `${SCHEDULE_PREFIX}${plan}/${entry.kind}/${entry.name}`;
}

/** The workflow id a schedule gives its runs (Temporal appends `-<scheduled time>`). */
export function scheduledWorkflowIdOf(plan: string, entry: Pick<PlanEntry, 'kind' | 'name'>): string {
  return `${entry.kind === 'golden' ? 'golden-image' : 'backup'}/${plan}/${entry.name}`;
}

export function temporalOverlap(policy: OverlapPolicy): ScheduleOverlapPolicy {
  return policy.toUpperCase().replace('-', '_') as ScheduleOverlapPolicy;
}

function describeWhen(entry: PlanEntry): string {
  const s = entry.schedule;
  const when = s.cron
    ? `cron ${s.cron.join(' | ')}`
    : `every ${s.everySeconds ?? 0} s${s.offsetSeconds ? ` + ${s.offsetSeconds} s` : ''}`;
  return `${when} (${s.timeZone})`;
}

export interface CompiledSchedule {
  scheduleId: string;
  entry: PlanEntry;
  options: ScheduleOptions;
  /** Digest of everything the plan declares for it: apply compares it to find what changed. */
  digest: string;
}

export interface CompileOptions {
  taskQueue: string;
  /** Set AmiflowRegion on the runs (the namespace must have it registered). Default true. */
  searchAttributes?: boolean;
}

/** The Temporal Schedule for one plan entry. */
export function compileSchedule(plan: Plan, entry: PlanEntry, opts: CompileOptions): CompiledSchedule {
  const scheduleId = scheduleIdOf(plan.name, entry);
  const s = entry.schedule;
  const start =
    entry.kind === 'golden'
      ? scheduleStartAction(goldenImage, entry.input)
      : scheduleStartAction(backupInstances, entry.input);
  const declared = {
    spec: {
      ...(s.cron ? { cronExpressions: s.cron } : {}),
      ...(s.everySeconds !== undefined
        ? { intervals: [{ every: s.everySeconds * 1000, offset: (s.offsetSeconds ?? 0) * 1000 }] }
        : {}),
      timezone: s.timeZone,
      ...(s.jitterSeconds !== undefined ? { jitter: s.jitterSeconds * 1000 } : {}),
    },
    // The type's name, as before the action named the function: an unchanged entry keeps its digest.
    workflowType: start.workflowType.name,
    args: start.args,
    taskQueue: opts.taskQueue,
    workflowId: scheduledWorkflowIdOf(plan.name, entry),
    policies: {
      overlap: temporalOverlap(s.overlap),
      catchupWindow: s.catchupWindowSeconds * 1000,
      pauseOnFailure: s.pauseOnFailure,
    },
    state: { ...(s.paused !== undefined ? { paused: s.paused } : {}), ...(s.note ? { note: s.note } : {}) },
  };
  const digest = createHash('sha256').update(JSON.stringify(declared)).digest('hex').slice(0, 16);
  const summary =
    entry.kind === 'golden'
      ? `Golden image ${entry.name} (plan ${plan.name}) from ${entry.input.builderInstanceId ?? `recipe ${entry.input.recipe?.recipe ?? '?'}`}, ${entry.input.region}`
      : `Backups ${entry.name} (plan ${plan.name}), ${entry.input.mode ?? 'reboot'}, ${entry.input.region}`;
  const options: ScheduleOptions = {
    scheduleId,
    spec: declared.spec,
    action: {
      ...start,
      taskQueue: declared.taskQueue,
      workflowId: declared.workflowId,
      staticSummary: summary,
      memo: {
        amiflowPlan: plan.name,
        amiflowEntry: entryKey(entry),
        amiflowDigest: digest,
        amiflowWhen: describeWhen(entry),
      },
      ...(opts.searchAttributes !== false
        ? { typedSearchAttributes: [{ key: SearchAttr.region, value: entry.input.region }] }
        : {}),
    },
    policies: declared.policies,
    memo: { amiflowPlan: plan.name, amiflowEntry: entryKey(entry) },
    state: {
      ...(s.paused !== undefined ? { paused: s.paused } : {}),
      note: s.note ?? `declared in plan ${plan.name} (${plan.source})`,
    },
  };
  return { scheduleId, entry, options, digest };
}

/** A schedule's start of `workflow`, typed by it: the input must be that workflow's. */
export function scheduleStartAction<I, R>(workflow: AmiflowWorkflow<I, R>, input: I) {
  return { type: 'startWorkflow' as const, workflowType: workflow, args: [input] as [I] };
}

export interface ApplyReport {
  plan: string;
  created: string[];
  updated: string[];
  unchanged: string[];
  deleted: string[];
  dryRun: boolean;
}

export interface RecentRun {
  scheduledAt: string;
  takenAt: string;
  workflowId: string;
  runId: string;
  status: string;
  /** The most recent finished run only: a line about its result or failure. */
  outcome?: string;
}

export interface ScheduleDetails {
  scheduleId: string;
  plan?: string;
  entry?: string;
  workflowType: string;
  workflowId: string;
  taskQueue: string;
  when?: string;
  timeZone?: string;
  overlap: string;
  catchupWindowSeconds: number;
  pauseOnFailure: boolean;
  paused: boolean;
  note?: string;
  nextRuns: string[];
  recentRuns: RecentRun[];
  running: string[];
  actionsTaken: number;
  skippedOverlap: number;
  missedCatchupWindow: number;
  createdAt: string;
}

export interface ScheduleListItem {
  scheduleId: string;
  plan?: string;
  entry?: string;
  workflowType?: string;
  paused: boolean;
  note?: string;
  nextRuns: string[];
  lastRun?: { scheduledAt: string; workflowId: string };
}

function memoString(memo: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = memo?.[key];
  return typeof v === 'string' ? v : undefined;
}

function oneLine(result: unknown): string {
  if (typeof result !== 'object' || result === null) return 'completed';
  const r = result as {
    version?: string;
    images?: { imageId: string; region: string }[];
    instances?: { status: string }[];
    reused?: boolean;
  };
  if (r.version !== undefined && r.images)
    return `version ${r.version}${r.reused ? ' (reused)' : ''}: ${r.images.map((i) => `${i.imageId} (${i.region})`).join(', ')}`;
  if (r.instances)
    return `${r.instances.filter((i) => i.status === 'backed-up').length}/${r.instances.length} instance(s) backed up`;
  return 'completed';
}

/** The innermost message of a failed run: what went wrong, for one line. */
function failureLine(err: unknown): string {
  let e: unknown = err instanceof WorkflowFailedError ? err.cause : err;
  let message = e instanceof Error ? e.message : String(e);
  for (; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    const type = (e as Error & { type?: unknown }).type;
    if (typeof type === 'string') return `${type}: ${e.message}`;
    message = e.message;
  }
  return message;
}

export class AmiflowSchedules {
  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
    private readonly bounds: ScheduleBounds = readScheduleBounds(),
  ) {}

  /** The entry's schedule; refused (`RefusedError`) when it would run more often than the operator allows. */
  compile(plan: Plan, entry: PlanEntry, opts: { searchAttributes?: boolean } = {}): CompiledSchedule {
    checkScheduleInterval(
      this.bounds,
      entry.kind === 'golden' ? 'goldenImage' : 'backupInstances',
      {
        ...(entry.schedule.everySeconds !== undefined ? { everySeconds: entry.schedule.everySeconds } : {}),
        ...(entry.schedule.cron ? { cron: entry.schedule.cron } : {}),
      },
      `${plan.name}: ${entry.kind} ${entry.name}: schedule`,
    );
    return compileSchedule(plan, entry, { taskQueue: this.taskQueue, ...opts });
  }

  /** The schedule's handle; an id that is not one (empty, too long, control characters) is refused first. */
  handle(scheduleId: string): ScheduleHandle {
    return this.client.schedule.getHandle(checkedId('scheduleId', scheduleId, 'schedule id'));
  }

  /** The schedule's description, or undefined when it does not exist. */
  async find(scheduleId: string): Promise<ScheduleDescription | undefined> {
    try {
      return await this.handle(scheduleId).describe();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return undefined;
      throw err;
    }
  }

  /** Creates the schedule of one plan entry (refused when it exists: use `update` or `apply`). */
  async create(plan: Plan, entry: PlanEntry, opts: { searchAttributes?: boolean } = {}): Promise<string> {
    const compiled = this.compile(plan, entry, opts);
    await this.client.schedule.create<Workflow>(compiled.options);
    return compiled.scheduleId;
  }

  /**
   * Replaces an existing schedule's spec, action and policies with the entry's. Its paused state and
   * note stay as they are unless the plan declares `paused`.
   */
  async update(plan: Plan, entry: PlanEntry, opts: { searchAttributes?: boolean } = {}): Promise<string> {
    const compiled = this.compile(plan, entry, opts);
    const o = compiled.options;
    await this.handle(compiled.scheduleId).update<Workflow>((previous) => ({
      spec: o.spec,
      action: o.action,
      ...(o.policies ? { policies: o.policies } : {}),
      state:
        entry.schedule.paused !== undefined
          ? { paused: entry.schedule.paused, ...(o.state?.note ? { note: o.state.note } : {}) }
          : { paused: previous.state.paused, ...(previous.state.note ? { note: previous.state.note } : {}) },
    }));
    return compiled.scheduleId;
  }

  /**
   * Makes the plan's schedules what the file declares: creates the missing, updates the changed
   * (by digest), leaves the rest, and (unless `prune: false`) deletes schedules of this plan the
   * file no longer declares. `dryRun` only reports. Listing is eventually consistent in Temporal: a
   * schedule created seconds ago may be pruned only by the next apply.
   */
  async apply(
    plan: Plan,
    opts: { dryRun?: boolean; prune?: boolean; searchAttributes?: boolean } = {},
  ): Promise<ApplyReport> {
    const report: ApplyReport = {
      plan: plan.name,
      created: [],
      updated: [],
      unchanged: [],
      deleted: [],
      dryRun: opts.dryRun === true,
    };
    const declared = new Set<string>();
    for (const entry of plan.entries) {
      const compiled = this.compile(plan, entry, opts);
      declared.add(compiled.scheduleId);
      const existing = await this.find(compiled.scheduleId);
      if (!existing) {
        if (!opts.dryRun) await this.client.schedule.create<Workflow>(compiled.options);
        report.created.push(compiled.scheduleId);
      } else if (memoString(existing.action.memo, 'amiflowDigest') === compiled.digest) {
        report.unchanged.push(compiled.scheduleId);
      } else {
        if (!opts.dryRun) await this.update(plan, entry, opts);
        report.updated.push(compiled.scheduleId);
      }
    }
    if (opts.prune !== false) {
      const prefix = `${SCHEDULE_PREFIX}${plan.name}/`;
      for await (const s of this.client.schedule.list()) {
        if (!s.scheduleId.startsWith(prefix) || declared.has(s.scheduleId)) continue;
        if (!opts.dryRun) await this.handle(s.scheduleId).delete();
        report.deleted.push(s.scheduleId);
      }
    }
    return report;
  }

  /** amiflow's schedules (ids starting with `amiflow/`), optionally of one plan. */
  async list(opts: { plan?: string } = {}): Promise<ScheduleListItem[]> {
    const prefix = `${SCHEDULE_PREFIX}${opts.plan ? `${opts.plan}/` : ''}`;
    const out: ScheduleListItem[] = [];
    for await (const s of this.client.schedule.list()) {
      if (!s.scheduleId.startsWith(prefix)) continue;
      const last = s.info.recentActions.at(-1);
      const plan = memoString(s.memo, 'amiflowPlan');
      const entry = memoString(s.memo, 'amiflowEntry');
      out.push({
        scheduleId: s.scheduleId,
        ...(plan ? { plan } : {}),
        ...(entry ? { entry } : {}),
        ...(s.action?.workflowType ? { workflowType: s.action.workflowType } : {}),
        paused: s.state.paused,
        ...(s.state.note ? { note: s.state.note } : {}),
        nextRuns: s.info.nextActionTimes.map((d) => d.toISOString()),
        ...(last
          ? {
              lastRun: {
                scheduledAt: last.scheduledAt.toISOString(),
                workflowId: last.action.workflow.workflowId,
              },
            }
          : {}),
      });
    }
    return out.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
  }

  /** Everything about one schedule: spec, policies, state, next run times, recent runs and their status. */
  async describe(scheduleId: string): Promise<ScheduleDetails> {
    const d = await this.handle(scheduleId).describe();
    const recentRuns: RecentRun[] = [];
    for (const a of d.info.recentActions) {
      const wf = a.action.workflow;
      let status = 'UNKNOWN';
      try {
        status = (await this.client.workflow.getHandle(wf.workflowId, wf.firstExecutionRunId).describe())
          .status.name;
      } catch {
        status = 'UNKNOWN (not visible)';
      }
      recentRuns.push({
        scheduledAt: a.scheduledAt.toISOString(),
        takenAt: a.takenAt.toISOString(),
        workflowId: wf.workflowId,
        runId: wf.firstExecutionRunId,
        status,
      });
    }
    const lastDone = [...recentRuns]
      .reverse()
      .find((r) => r.status !== 'RUNNING' && !r.status.startsWith('UNKNOWN'));
    if (lastDone) {
      try {
        lastDone.outcome = oneLine(
          await this.client.workflow.getHandle(lastDone.workflowId, lastDone.runId).result(),
        );
      } catch (err) {
        lastDone.outcome = failureLine(err);
      }
    }
    const plan = memoString(d.memo, 'amiflowPlan');
    const entry = memoString(d.memo, 'amiflowEntry');
    const when = memoString(d.action.memo, 'amiflowWhen');
    return {
      scheduleId,
      ...(plan ? { plan } : {}),
      ...(entry ? { entry } : {}),
      workflowType: d.action.workflowType,
      workflowId: d.action.workflowId ?? '',
      taskQueue: d.action.taskQueue,
      ...(when ? { when } : {}),
      ...(d.spec.timezone ? { timeZone: d.spec.timezone } : {}),
      overlap: d.policies.overlap ?? 'SKIP',
      catchupWindowSeconds: d.policies.catchupWindow / 1000,
      pauseOnFailure: d.policies.pauseOnFailure,
      paused: d.state.paused,
      ...(d.state.note ? { note: d.state.note } : {}),
      nextRuns: d.info.nextActionTimes.map((t) => t.toISOString()),
      recentRuns,
      running: d.info.runningActions.map((a) => a.workflow.workflowId),
      actionsTaken: d.info.numActionsTaken,
      skippedOverlap: d.info.numActionsSkippedOverlap,
      missedCatchupWindow: d.info.numActionsMissedCatchupWindow,
      createdAt: d.info.createdAt.toISOString(),
    };
  }

  async pause(scheduleId: string, note?: string): Promise<void> {
    checkAmiflowSchedule(scheduleId, 'pause');
    await this.handle(scheduleId).pause(note ?? 'paused with amiflow');
  }

  async unpause(scheduleId: string, note?: string): Promise<void> {
    checkAmiflowSchedule(scheduleId, 'unpause');
    await this.handle(scheduleId).unpause(note ?? 'unpaused with amiflow');
  }

  /**
   * Starts a run now (also while paused), under the schedule's overlap policy unless `overlap` says
   * otherwise. With `waitForStart`, resolves with the run it started (or undefined when the overlap
   * policy skipped it), found in the schedule's recent actions.
   */
  async trigger(
    scheduleId: string,
    opts: { overlap?: OverlapPolicy; waitForStart?: boolean; timeoutMs?: number } = {},
  ): Promise<{ workflowId: string; runId: string } | undefined> {
    checkAmiflowSchedule(scheduleId, 'trigger');
    const handle = this.handle(scheduleId);
    const before = opts.waitForStart ? await handle.describe() : undefined;
    await handle.trigger(opts.overlap ? temporalOverlap(opts.overlap) : undefined);
    if (!before) return undefined;
    const seen = new Set(before.info.recentActions.map((a) => a.action.workflow.firstExecutionRunId));
    const until = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      const now = await handle.describe();
      const started = now.info.recentActions.find((a) => !seen.has(a.action.workflow.firstExecutionRunId));
      if (started)
        return {
          workflowId: started.action.workflow.workflowId,
          runId: started.action.workflow.firstExecutionRunId,
        };
      if (now.info.numActionsSkippedOverlap > before.info.numActionsSkippedOverlap || Date.now() > until)
        return undefined;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Takes the actions the schedule would have taken between `from` and `to`, now: at most
   * `maxBackfillRuns` of them (counted with Temporal's own matching times), and with `allow-all`
   * overlap (every run at once) only when `confirmAllowAll` says so.
   */
  async backfill(
    scheduleId: string,
    from: Date,
    to: Date,
    overlap?: OverlapPolicy,
    opts: { confirmAllowAll?: boolean } = {},
  ): Promise<{ runs: number }> {
    checkAmiflowSchedule(scheduleId, 'backfill');
    if (!(from < to))
      throw new RangeError(
        `backfill: --from (${from.toISOString()}) must be before --to (${to.toISOString()})`,
      );
    if (overlap === 'allow-all' && opts.confirmAllowAll !== true)
      throw new RefusedError(
        `backfill: overlap allow-all starts every run of the window at once; confirm it (confirmAllowAll) or use buffer-all, which runs them one after another`,
      );
    const runs = await this.matchingTimes(scheduleId, from, to);
    if (runs > this.bounds.maxBackfillRuns)
      throw new RefusedError(
        `backfill: ${from.toISOString()} to ${to.toISOString()} would start ${runs > MATCH_COUNT_CAP ? `more than ${MATCH_COUNT_CAP}` : runs} runs; ` +
          `at most ${this.bounds.maxBackfillRuns} per backfill (the operator's bound, AMIFLOW_MAX_BACKFILL_RUNS): narrow the window`,
      );
    await this.handle(scheduleId).backfill({
      start: from,
      end: to,
      ...(overlap ? { overlap: temporalOverlap(overlap) } : {}),
    });
    return { runs };
  }

  /** How many times the schedule's spec matches in [from, to] (Temporal's own answer; capped). */
  private async matchingTimes(scheduleId: string, from: Date, to: Date): Promise<number> {
    const out = await this.client.workflowService.listScheduleMatchingTimes({
      namespace: this.client.options.namespace,
      scheduleId,
      startTime: { seconds: Long.fromNumber(Math.floor(from.getTime() / 1000)) },
      endTime: { seconds: Long.fromNumber(Math.ceil(to.getTime() / 1000)) },
    });
    return Math.min(out.startTime?.length ?? 0, MATCH_COUNT_CAP + 1);
  }

  async delete(scheduleId: string): Promise<void> {
    checkAmiflowSchedule(scheduleId, 'delete');
    await this.handle(scheduleId).delete();
  }
}

/** Counting stops here: enough to say "more than" about a window from 1970. */
const MATCH_COUNT_CAP = 100_000;
