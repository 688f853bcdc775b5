/**
 * The start every workflow shares, in one place: the progress record and the `progress` query that
 * answers it (registered first, so even a run refused for bad input shows why), the input parsed by
 * its schema (bad input fails the run at once, non-retryable, naming every field), the saga's undo
 * list, the AWS target of the input's region and account, and the activity options with a summary
 * for the Web UI. None of it issues a command, so moving a workflow onto it changes no history.
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { proxyActivities, proxyLocalActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AwsTarget, Tags } from '../contracts';
import { MANAGED_BY_VALUE, TAG, progressQuery } from '../contracts';
import { Compensations } from './compensation';
import { parsedOrFail } from './input';
import type { RunOutcome } from './metric-names';
import { compensationCall, fastAwsCall } from './presets';
import { Progress } from './progress';

/** Quick AWS calls (describe, tag, one write), as local activities: options per call via `local()`. */
export const la = proxyLocalActivities<Activities>(fastAwsCall);
/** Activities that may outlast a local one (waits, undos): options per call via `remote()`. */
export const act = proxyActivities<Activities>(compensationCall);

export interface RunStart<I> {
  /** The workflow type, as the progress record and metrics name it. */
  workflowType: string;
  /** The steps shown from the start (more may be added as they run). */
  steps: readonly string[];
  /** The input's schema parse (contracts/), which throws InvalidInputError naming every bad field. */
  parse: (raw: unknown) => I;
  raw: unknown;
  /** Called once with the run's outcome, bad input included (per-workflow metrics). */
  onEnd?: (outcome: RunOutcome) => void;
}

export interface Run<I> {
  input: I;
  progress: Progress;
  /** The undo list; `guarded` runs it on failure and on cancellation. */
  comp: Compensations;
  workflowId: string;
  runId: string;
  /** When the run started, by the workflow clock (ISO 8601). */
  startedAt: string;
}

/** Starts a run: progress and its query, the end hook, then the parsed input (or the run fails). */
export function startRun<I>(start: RunStart<I>): Run<I> {
  const progress = new Progress(start.workflowType, start.steps);
  setHandler(progressQuery, () => progress.record);
  const startedAt = new Date().toISOString();
  if (start.onEnd) progress.onEnd(start.onEnd);
  const input = parsedOrFail(start.parse, start.raw, progress);
  const { workflowId, runId } = workflowInfo();
  return { input, progress, comp: new Compensations(progress), workflowId, runId, startedAt };
}

/**
 * Runs the workflow's body under its compensations (undone newest first on failure or cancellation)
 * and marks the run succeeded when it returns.
 */
export async function guarded<I, T>(run: Run<I>, body: () => Promise<T>): Promise<T> {
  const result = await run.comp.guard(body);
  run.progress.setPhase('succeeded');
  return result;
}

/**
 * The tags naming the run that made a resource (tags.ts): what retries, undos and sweeps find it by,
 * and what destructive steps check before acting on it.
 */
export function ownerTags(workflowType: string, owner: { workflowId: string; runId: string }): Tags {
  return {
    [TAG.managedBy]: MANAGED_BY_VALUE,
    [TAG.workflowId]: owner.workflowId,
    [TAG.runId]: owner.runId,
    [TAG.workflowType]: workflowType,
  };
}

/** The account and region an input names (no account: the worker's own). */
export function targetOf(input: { region: string; accountId?: string | undefined }): AwsTarget {
  return { region: input.region, ...(input.accountId ? { accountId: input.accountId } : {}) };
}

/** A local activity's options with its summary for the Web UI (default: one quick AWS call). */
export function local(summary: string, options: LocalActivityOptions = fastAwsCall): LocalActivityOptions {
  return { ...options, summary };
}

/** An activity's options with its summary for the Web UI (default: a compensation's). */
export function remote(summary: string, options: ActivityOptions = compensationCall): ActivityOptions {
  return { ...options, summary };
}
