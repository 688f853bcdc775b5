/**
 * What every stage of a golden run reads: the parsed input, the run's progress and undo list (from
 * the shared bootstrap), and the facts fixed at its start (target, child ids, scheduled time,
 * timeouts, retention). Also the pure helpers that name versions and child runs, so tests and other
 * workflows (backup) use the same ones.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { AwsTarget, GoldenImageInput, RetentionPolicy } from '../../contracts';
import { DEFAULT_GOLDEN_RETENTION, DEFAULT_TIMEOUTS, ScheduleAttr, SearchAttr } from '../../contracts';
import type { BuildImageInput } from '../../contracts/recipe';
import type { Run } from '../bootstrap';
import { targetOf } from '../bootstrap';
import type { UndoHandle } from '../compensation';

export const GOLDEN_IMAGE_STEPS = [
  'plan version',
  'image builder',
  'tag image',
  'launch test instance',
  'wait for status checks',
  'health check',
  'terminate test instance',
  'await approval',
  'copy',
  'share',
  'mark approved',
  'publish parameter',
  'retire old versions',
] as const;

/** Golden runs started before the rollout stage existed replay without it. */
export const GOLDEN_ROLLOUT_STAGE_PATCH = 'golden-image-rollout-stage';
/** Golden runs from before recipe sources replay as builder runs (only a recipe run takes the branch). */
export const GOLDEN_RECIPE_SOURCE_PATCH = 'golden-image-recipe-source';

/** Child workflow ids of a golden run: found again under these after a restart. */
export function goldenChildIds(workflowId: string) {
  return {
    rollout: `${workflowId}/rollout`,
    image: `${workflowId}/image`,
    build: `${workflowId}/build`,
    copy: `${workflowId}/copy`,
    share: (t: AwsTarget) => `${workflowId}/share/${t.accountId ?? 'self'}/${t.region}`,
  };
}

/** `2026.01.15-030000`: the scheduled time in UTC; sorts as it reads, fits image names. */
export function dateVersion(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getUTCFullYear()}.${p(d.getUTCMonth() + 1)}.${p(d.getUTCDate())}-` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
  );
}

/** `<series>.<n>`: one more than the highest patch number the pipeline has in this series (0 first). */
export function nextSemver(series: string, versions: readonly (string | undefined)[]): string {
  const prefix = `${series}.`;
  const patches = versions.flatMap((v) => {
    if (!v?.startsWith(prefix)) return [];
    const n = Number(v.slice(prefix.length));
    return Number.isInteger(n) && n >= 0 ? [n] : [];
  });
  return `${series}.${patches.length ? Math.max(...patches) + 1 : 0}`;
}

const SCHEDULED_SUFFIX_RE = /-(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)$/;

/**
 * The time this run stands for: set by Temporal for a scheduled run (search attribute, and the
 * suffix Schedules append to the workflow id), else the input's, else the run's start.
 */
export function scheduledTimeOf(input: { scheduledTime?: string }): { at: number; scheduleId?: string } {
  const info = workflowInfo();
  let fromSchedule: Date | undefined;
  let scheduleId: string | undefined;
  try {
    fromSchedule = info.typedSearchAttributes.get(ScheduleAttr.scheduledStartTime);
    scheduleId = info.typedSearchAttributes.get(ScheduleAttr.scheduledById);
  } catch {
    fromSchedule = undefined; // an attribute of another type under that name: not a schedule's
  }
  if (fromSchedule) return { at: fromSchedule.getTime(), ...(scheduleId ? { scheduleId } : {}) };
  if (input.scheduledTime) return { at: Date.parse(input.scheduledTime) };
  const suffix = SCHEDULED_SUFFIX_RE.exec(info.workflowId)?.[1];
  if (suffix) return { at: Date.parse(suffix) };
  return { at: info.startTime.getTime() };
}

export function where(t: AwsTarget): string {
  return `${t.region}${t.accountId ? ` · ${t.accountId}` : ''}`;
}
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
/** An epoch-ms deadline `seconds` from now by the workflow clock (activities wait until it). */
export function deadline(seconds: number): number {
  return Date.now() + seconds * 1000;
}
/** The target of an image the run holds (its region, and its account when not the worker's own). */
export function targetOfImage(img: { region: string; accountId?: string | undefined }): AwsTarget {
  return { region: img.region, ...(img.accountId ? { accountId: img.accountId } : {}) };
}

export interface GoldenRun extends Run<GoldenImageInput> {
  target: AwsTarget;
  ids: ReturnType<typeof goldenChildIds>;
  scheduled: { at: number; scheduleId?: string };
  scheduledTime: string;
  timeouts: typeof DEFAULT_TIMEOUTS & { copyAvailableSeconds: number };
  retention: RetentionPolicy;
  /** Whether the server knows amiflow's search attributes (old test servers do not). */
  withSearchAttributes: boolean;
  /** The recipe this run builds from, when it takes the recipe branch (see GOLDEN_RECIPE_SOURCE_PATCH). */
  recipe: BuildImageInput | undefined;
  builderInstanceId: string;
  /** Registers an undo that stays until the version is committed. */
  undo: (name: string, fn: () => Promise<unknown>, step: string) => UndoHandle;
  /** The version is committed: nothing registered by `undo` is undone any more. */
  commit: () => void;
}

/** The run's fixed facts, from its parsed input; records the pipeline and scheduled time. */
export function goldenRunOf(run: Run<GoldenImageInput>): GoldenRun {
  const { input, progress, comp } = run;
  const scheduled = scheduledTimeOf(input);
  const scheduledTime = iso(scheduled.at);
  const undos: UndoHandle[] = [];
  progress.resource('pipeline', input.pipeline);
  progress.resource('scheduledTime', scheduledTime);
  // The schema lets exactly one source through; `patched` only where a recipe run takes the branch.
  const recipe =
    input.recipe !== undefined && progress.since(GOLDEN_RECIPE_SOURCE_PATCH) ? input.recipe : undefined;
  return {
    ...run,
    target: targetOf(input),
    ids: goldenChildIds(run.workflowId),
    scheduled,
    scheduledTime,
    timeouts: { ...DEFAULT_TIMEOUTS, copyAvailableSeconds: 12 * 3600, ...input.timeouts },
    retention: { ...DEFAULT_GOLDEN_RETENTION, ...input.retention },
    withSearchAttributes: workflowInfo().typedSearchAttributes.get(SearchAttr.region) !== undefined,
    recipe,
    builderInstanceId: input.builderInstanceId ?? '',
    undo: (name, fn, step) => {
      const handle = comp.add(name, fn, step);
      undos.push(handle);
      return handle;
    },
    commit: () => {
      for (const handle of undos) handle.discard();
    },
  };
}
