/**
 * Named timeouts and retry policies for activity calls; call sites pick one, never literals.
 * Short AWS calls run as local activities (one marker event each, no extra workflow task); waits
 * run as heartbeating activities whose deadline is computed once by the workflow, so retries
 * never extend it.
 */
import type { Duration } from '@temporalio/common';
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { ActivityCancellationType } from '@temporalio/workflow';
import type { Since } from './patches';

const awsRetry = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
} as const;

/**
 * A heartbeating activity: it may run `startToCloseTimeout`, a worker lost mid-run is noticed within
 * `heartbeatTimeout`, and AWS errors retry with the shared backoff, as `retry` bounds it.
 */
function heartbeating(
  startToCloseTimeout: Duration,
  heartbeatTimeout: Duration,
  retry: { maximumInterval?: Duration; maximumAttempts: number },
): ActivityOptions {
  return { startToCloseTimeout, heartbeatTimeout, retry: { ...awsRetry, ...retry } };
}

/**
 * One quick AWS call (describe, create, tag): seconds, and a total budget of seconds too. A local
 * activity is invisible while it retries (no pending activity in the Web UI, only timers in the
 * history) and ends as "Local Activity timed out", so it must fail fast: throttling gets a few
 * jittered retries here (the SDK's own, then these); a permanent answer (unknown region, action not
 * implemented, access denied) fails at once with AWS's code. What may need longer is a normal
 * activity (`settledAwsActivity`).
 */
export const fastAwsCall: LocalActivityOptions = {
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '40s',
  localRetryThreshold: '10s',
  retry: awsRetry,
};

/** Waiting minutes for an instance to stop or run: heartbeats every ~48 s. */
export function instanceWait(waitSeconds: number): ActivityOptions {
  return heartbeating(`${waitSeconds + 120}s`, '1m', { maximumAttempts: 10 });
}

/**
 * Waiting hours for an image: heartbeats every ~4.8 min, so an hour of waiting costs about 13
 * heartbeat actions; a crashed worker is noticed within the 6-minute heartbeat timeout.
 */
export function longImageWait(waitSeconds: number): ActivityOptions {
  return heartbeating(`${waitSeconds + 600}s`, '6m', { maximumInterval: '1m', maximumAttempts: 20 });
}

/**
 * A quick AWS call whose effect can land after a cancellation (CopyImage, CreateGrant, adding
 * permissions): on cancel the workflow waits until the call has ended before undoing anything, so
 * the undo never runs first. (Temporal's effective default is TRY_CANCEL.)
 */
export const settledAwsCall: LocalActivityOptions = {
  ...fastAwsCall,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
};

/**
 * A start call that may need minutes of retries (CopyImage refills at 1/s per region; RunInstances
 * meets InsufficientInstanceCapacity) and whose effect can land after a cancellation: a normal
 * activity, visible as pending in the Web UI with its last failure, and the undo waits for it to end.
 */
export const settledAwsActivity: ActivityOptions = {
  startToCloseTimeout: '1m',
  scheduleToCloseTimeout: '15m',
  retry: { ...awsRetry, maximumInterval: '1m' },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
};

/**
 * Waiting hours for an AMI copy: as `longImageWait`, plus more patience with a busy region
 * (throttling on DescribeImages while many copies run).
 */
export function copyWait(waitSeconds: number): ActivityOptions {
  return {
    ...longImageWait(waitSeconds),
    retry: { ...awsRetry, maximumInterval: '2m', maximumAttempts: 30 },
  };
}

/** Compensations: idempotent, retried patiently (they run when something already went wrong). */
export const compensationCall: ActivityOptions = heartbeating('20m', '2m', {
  maximumInterval: '1m',
  maximumAttempts: 30,
});

/** Waiting for a new instance to run and pass both status checks: minutes (Windows can take 15). */
export function statusChecksWait(waitSeconds: number): ActivityOptions {
  return heartbeating(`${waitSeconds + 120}s`, '2m', { maximumAttempts: 10 });
}

/** `instanceWait` for a stop whose effect can land after a cancellation: the undo waits for it to end. */
export function settledInstanceWait(waitSeconds: number): ActivityOptions {
  return {
    ...instanceWait(waitSeconds),
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  };
}

/**
 * Reading a whole account and region (the guardrails' listings): minutes for a large fleet. It
 * heartbeats per page and backs off throttling inside; Temporal retries what gets through.
 */
export const scanCall: ActivityOptions = heartbeating('30m', '2m', {
  maximumInterval: '2m',
  maximumAttempts: 8,
});

/**
 * Waiting seconds to minutes for AWS to settle on something it reports (SSM's asynchronous
 * validation of an aws:ec2:image parameter, a marker on a test instance's console): heartbeats ~48 s.
 */
export function settleWait(waitSeconds: number): ActivityOptions {
  return heartbeating(`${waitSeconds + 120}s`, '1m', { maximumAttempts: 10 });
}

/** Retiring an image (deregister, delete its snapshots): one intent, heartbeating its progress, retried patiently. */
export const retireCall: ActivityOptions = heartbeating('10m', '2m', {
  maximumInterval: '1m',
  maximumAttempts: 10,
});

/**
 * Waiting on an instance refresh (or its undo): minutes to hours. The wait returns at each status
 * change or quarter of progress; heartbeats every ~1.6 min, so a lost worker is noticed in 2.
 */
export function refreshWait(waitSeconds: number): ActivityOptions {
  return heartbeating(`${waitSeconds + 600}s`, '2m', { maximumInterval: '1m', maximumAttempts: 20 });
}

/** Undoing a rollout on one group: a rollback or a refresh back, waited on; patient like every undo. */
export function refreshUndo(waitSeconds: number): ActivityOptions {
  return heartbeating(`${waitSeconds + 600}s`, '2m', { maximumInterval: '1m', maximumAttempts: 30 });
}

/** A bake's alarm watch: one activity for the length of the bake, heartbeating; cancelled when the bake timer fires. */
export function bakeWatch(bakeSeconds: number): ActivityOptions {
  return {
    ...heartbeating(`${bakeSeconds + 900}s`, '2m', { maximumInterval: '1m', maximumAttempts: 20 }),
    cancellationType: ActivityCancellationType.TRY_CANCEL,
  };
}

/**
 * An image wait completed asynchronously by the worker's watcher (issue 13): no heartbeat timeout
 * (the worker's lease notices a crash, for all its waits at once), only a backstop past the
 * deadline; retried without an attempt limit, since a hand-off on every deploy is a retry: the
 * deadline bounds the wait (the watcher fails it there), not the attempt count.
 */
export function asyncImageWait(waitSeconds: number): ActivityOptions {
  return {
    startToCloseTimeout: `${waitSeconds + 600}s`,
    scheduleToCloseTimeout: `${waitSeconds + 900}s`,
    // Explicitly none: a proxy's default (compensationCall's 2 minutes) would otherwise apply.
    heartbeatTimeout: undefined,
    // Infinity, not unset: a proxy's default retry (compensationCall's 30 attempts) would apply.
    retry: { ...awsRetry, maximumInterval: '1m', maximumAttempts: Number.POSITIVE_INFINITY },
  };
}

/**
 * Runs from this marker on wait for images with `asyncImageWait`; runs before it keep the options
 * they started with (heartbeat timeout, attempt limit). Options only, yet behind a marker: which
 * retries a run may take depends on them.
 */
export const ASYNC_IMAGE_WAIT_PATCH = 'amiflow-async-image-wait';

/** The options of an image wait: `asyncImageWait`, or `before` for runs started before it (`since`: the run's `progress.since`). */
export function imageWait(
  waitSeconds: number,
  before: (waitSeconds: number) => ActivityOptions,
  since: Since,
): ActivityOptions {
  return since(ASYNC_IMAGE_WAIT_PATCH) ? asyncImageWait(waitSeconds) : before(waitSeconds);
}

/**
 * How long a lease's hold may wait to be picked up before the lease counts its worker lost: twice
 * the hold's heartbeat timeout, at least 30 s and at most 2 min (default settings: 2 min; the chaos
 * stack's 10 s: 30 s). It was 30 s for all: at 10,000 runs the lease (started with task priority,
 * so during the runs' start burst) saw its first hold start 35 s after it was scheduled and its
 * second not within 30 s, on a worker and server at full CPU; the lease was lost and released 430
 * waits of a live worker (docs/evidence/fleet-light-10000-s9-lost-lease.txt). Only the server checks it, so
 * histories with 30 s replay.
 */
export function leaseScheduleToStartMs(heartbeatTimeoutMs: number): number {
  return Math.min(120_000, Math.max(30_000, 2 * heartbeatTimeoutMs));
}

/** A worker's wait lease (activities/wait-lease.ts) on its own queue: one attempt, since a lost lease is what it exists to report. */
export function leaseHold(
  leaseQueue: string,
  tier: 'solo' | 'shared',
  heartbeatTimeoutMs?: Record<'solo' | 'shared', number>,
): ActivityOptions {
  // The timeouts come in the lease's input (the worker's setting), so they are the same on replay.
  const fallback = tier === 'shared' ? '1m' : '6m';
  const timeoutMs = heartbeatTimeoutMs ? heartbeatTimeoutMs[tier] : tier === 'shared' ? 60_000 : 360_000;
  return {
    taskQueue: leaseQueue,
    heartbeatTimeout: heartbeatTimeoutMs ? heartbeatTimeoutMs[tier] : fallback,
    scheduleToStartTimeout: leaseScheduleToStartMs(timeoutMs),
    startToCloseTimeout: '7h',
    retry: { maximumAttempts: 1 },
  };
}
