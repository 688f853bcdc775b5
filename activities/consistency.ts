/**
 * EC2 is eventually consistent: an id CreateImage, CopyImage or RunInstances just returned can be
 * unknown to DescribeImages, CreateTags or DeregisterImage for seconds (rarely minutes). Within the
 * consistency window, NotFound for an id this run received from AWS means "not visible yet": the
 * step fails retryably and Temporal asks again with backoff. Only once the window has passed (or
 * the id was seen before) may NotFound mean "gone", and only for an id a caller supplied is it
 * permanent at once.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { FailureType } from '../contracts';
import type { ActivityDeps } from './deps';
import { awsErrorCode } from './errors';

/** Minutes, not seconds: EC2 documents "eventually", and the cost of waiting is small next to a leak. */
export const DEFAULT_CONSISTENCY_WINDOW_MS = 180_000;

/** `AMIFLOW_CONSISTENCY_WINDOW`: seconds ("180"), or with a unit ("90s", "3m"); empty: the default. */
export function parseConsistencyWindow(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return DEFAULT_CONSISTENCY_WINDOW_MS;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(raw);
  if (!m?.[1])
    throw new Error(
      `AMIFLOW_CONSISTENCY_WINDOW=${raw} is not a duration: give seconds (180) or a unit (90s, 3m, 500ms)`,
    );
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(unit === 'ms' ? n : unit === 'm' ? n * 60_000 : n * 1000);
}

export function consistencyWindowMs(deps: Pick<ActivityDeps, 'consistencyWindowMs'>): number {
  return deps.consistencyWindowMs ?? parseConsistencyWindow(process.env.AMIFLOW_CONSISTENCY_WINDOW);
}

/** The NotFound codes of the ids amiflow receives from AWS. */
export const NOT_FOUND_CODES = {
  image: ['InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable'],
  snapshot: ['InvalidSnapshot.NotFound'],
  instance: ['InvalidInstanceID.NotFound'],
  grant: ['NotFoundException', 'InvalidGrantIdException'],
} as const;

export type ResourceKind = keyof typeof NOT_FOUND_CODES;

export function isNotFound(err: unknown, kind: ResourceKind): boolean {
  return (NOT_FOUND_CODES[kind] as readonly string[]).includes(awsErrorCode(err));
}

/**
 * Milliseconds this step has been trying, counted from its first attempt's scheduling (every id it
 * acts on was received before that), on the worker's clock.
 */
export function stepAgeMs(deps: Pick<ActivityDeps, 'clock'>): number {
  return deps.clock.now() - Context.current().info.scheduledTimestampMs;
}

export function withinWindow(deps: Pick<ActivityDeps, 'clock' | 'consistencyWindowMs'>): boolean {
  return stepAgeMs(deps) < consistencyWindowMs(deps);
}

/**
 * The retryable failure for "AWS gave us this id but does not show it yet". Its own type, so the
 * Web UI's last failure says what is going on; retryable, so Temporal backs off and asks again.
 */
export function notVisibleYet(
  deps: Pick<ActivityDeps, 'clock' | 'consistencyWindowMs'>,
  what: string,
  cause?: unknown,
): ApplicationFailure {
  const windowS = Math.round(consistencyWindowMs(deps) / 1000);
  const ageS = Math.round(stepAgeMs(deps) / 1000);
  return ApplicationFailure.create({
    type: FailureType.NotVisibleYet,
    nonRetryable: false,
    message:
      `${what} is not visible yet (${awsErrorCode(cause ?? {})}); EC2 is eventually consistent, so this is retried ` +
      `for the consistency window (${ageS}s of ${windowS}s; AMIFLOW_CONSISTENCY_WINDOW)`,
    cause: cause instanceof Error ? cause : undefined,
  });
}
