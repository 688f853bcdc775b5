/**
 * Generic run helpers the feature tests share, on top of the harness (test/workflows/harness.ts):
 * one workflow type run to its end on a fresh worker, a worker hand-over with each worker's calls in
 * a log of its own, and a result list read as rows.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Activities } from '../../activities';
import { uniqueTaskQueue } from '../support/temporal';
import type { ActivityName } from './harness';
import { ActivityLog, blockingUntilCancelled, handedOver, recorded, withLog, withWorker } from './harness';

/** How a test file runs its workflow type: how to start one, and how to read its end. */
export interface RunOf<H extends WorkflowHandle, O> {
  /** The task queue's name starts with this. */
  queuePrefix: string;
  start: (env: TestWorkflowEnvironment, taskQueue: string, input: unknown) => Promise<H>;
  outcome: (handle: H) => Promise<O>;
}

/** A run of `input` on a fresh worker serving `activities`, to its end: its outcome. */
export async function runTo<H extends WorkflowHandle, O>(
  env: TestWorkflowEnvironment,
  of: RunOf<H, O>,
  activities: Activities,
  input: unknown,
): Promise<O> {
  return withWorker(
    env,
    activities,
    async (tq) => of.outcome(await of.start(env, tq, input)),
    of.queuePrefix,
  );
}

/** `runTo` with every activity call recorded: the outcome, and the calls in `log`. */
export function runLogged<H extends WorkflowHandle, O>(
  env: TestWorkflowEnvironment,
  of: RunOf<H, O>,
  activities: Activities,
  input: unknown,
): Promise<{ outcome: O; log: ActivityLog }> {
  return withLog(activities, (recordedActivities) => runTo(env, of, recordedActivities, input));
}

/** A run handed from one worker to another while `blocked` runs on the first: see `handedOverLogged`. */
export interface LoggedHandOver<H extends WorkflowHandle, T> {
  /** The task queue's name starts with this. */
  queuePrefix: string;
  /** What both workers serve; the second worker's may differ (`second`). */
  activities: Activities;
  /** The activity the first worker is running when it shuts down: it blocks until cancelled there. */
  blocked: ActivityName;
  start: (taskQueue: string) => Promise<H>;
  /** What the second worker serves, when it is not `activities`. */
  second?: Activities;
  /** What to do with the run on the second worker, e.g. read its outcome. */
  then: (handle: H, taskQueue: string) => Promise<T>;
  /** The two workers' identities, as the history records them. */
  identities?: [string, string];
}

/**
 * `handedOver` with each worker's calls recorded in a log of its own: a run started on a first
 * worker, which shuts down while `blocked` runs; a second worker takes the run over. Returns what
 * `then` returned, the two logs and the task queue.
 */
export async function handedOverLogged<H extends WorkflowHandle, T>(
  env: TestWorkflowEnvironment,
  run: LoggedHandOver<H, T>,
): Promise<{ outcome: T; first: ActivityLog; second: ActivityLog; taskQueue: string }> {
  const taskQueue = uniqueTaskQueue(run.queuePrefix);
  const first = new ActivityLog();
  const second = new ActivityLog();
  const wait = blockingUntilCancelled();
  const outcome = await handedOver(env, {
    taskQueue,
    first: recorded(first, { ...run.activities, [run.blocked]: wait.fn }),
    blocked: wait,
    start: run.start,
    second: recorded(second, run.second ?? run.activities),
    then: (handle) => run.then(handle, taskQueue),
    ...(run.identities ? { identities: run.identities } : {}),
  });
  return { outcome, first, second, taskQueue };
}

/** `items` as rows of the values of `keys`, in that order: a table to compare in one assertion. */
export function rowsOf<T, K extends keyof T>(items: readonly T[], keys: readonly K[]): T[K][][] {
  return items.map((item) => keys.map((k) => item[k]));
}
