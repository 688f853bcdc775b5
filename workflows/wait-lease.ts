/**
 * waitLease: one per worker holding asynchronously completed waits (activities/wait-lease.ts).
 * Runs the worker's `holdWaitLease` on the queue only that worker polls; when that activity times
 * out (the worker died, or never picked it up), fails every wait the worker last listed as
 * retryable, so Temporal resumes them on a live worker within about a minute instead of after their
 * backstop timeout. Ends when the worker holds no more waits or handed them off itself.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  continueAsNew,
  defineSignal,
  isCancellation,
  setHandler,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { WaitRef } from '../activities/image-wait-watcher';
import type { LeaseHeartbeat, LeaseTier, WaitLeaseInput, WaitLeaseKeeper } from '../activities/wait-lease';
import { WAIT_HAND_OFF_INCOMPLETE } from '../contracts/wait-lease';
import { compensationCall, leaseHold } from './presets';

type LeaseActivities = ReturnType<WaitLeaseKeeper['activities']>;

/** Turns before continuing as new, so the lease's history stays short however long the worker lives. */
const TURNS_PER_RUN = 100;

const release = proxyActivities<Activities>(compensationCall);

/**
 * The waits the worker holds now, sent while the lease's hold has not started (activities/wait-lease.ts):
 * released with the others if the hold never starts. A handler adds no command, so it is replay-safe.
 */
export const waitLeaseRefsSignal = defineSignal<[WaitRef[]]>('waitLeaseRefs');

export interface WaitLeaseResult {
  /** Waits failed as retryable because the lease was lost. */
  released: number;
}

/**
 * The list the lease last recorded: its heartbeat when it timed out after starting; the waits a
 * stopping worker could not hand off when its hold says so (WAIT_HAND_OFF_INCOMPLETE); else `known`.
 * Either way the same releaseWaits call follows, so histories from before either case replay.
 */
export function lastListed(err: unknown, known: WaitRef[]): WaitRef[] {
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) {
    const beat = err.cause.lastHeartbeatDetails as LeaseHeartbeat | undefined;
    if (beat && Array.isArray(beat.refs)) return beat.refs;
  }
  if (
    err instanceof ActivityFailure &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === WAIT_HAND_OFF_INCOMPLETE
  ) {
    const left = err.cause.details?.[0] as LeaseHeartbeat | undefined;
    if (left && Array.isArray(left.refs)) return left.refs;
  }
  return known;
}

export async function waitLease(input: WaitLeaseInput): Promise<WaitLeaseResult> {
  let tier: LeaseTier = input.tier;
  let refs = input.refs;
  setHandler(waitLeaseRefsSignal, (now) => {
    if (Array.isArray(now)) refs = now;
  });
  for (let turn = 0; turn < TURNS_PER_RUN; turn++) {
    const options = leaseHold(input.leaseQueue, tier, input.heartbeatTimeoutMs);
    const hold = proxyActivities<LeaseActivities>(options);
    try {
      const out = await hold.holdWaitLease.executeWithOptions(
        { ...options, summary: `hold ${refs.length} waits (${tier})` },
        [{ tier }],
      );
      if (out.next === undefined) return { released: 0 };
      tier = out.next;
      refs = out.refs;
    } catch (err) {
      if (isCancellation(err)) throw err;
      const lost = lastListed(err, refs);
      const done = await release.releaseWaits.executeWithOptions(
        { ...compensationCall, summary: `hand ${lost.length} waits to a live worker` },
        [{ refs: lost, lease: workflowInfo().workflowId }],
      );
      return { released: done.released };
    }
  }
  return continueAsNew<typeof waitLease>({ ...input, tier, refs });
}
