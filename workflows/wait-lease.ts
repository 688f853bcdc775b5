/**
 * waitLease: one per worker holding asynchronously completed waits (activities/wait-lease.ts).
 * Runs the worker's `holdWaitLease` on the queue only that worker polls; when that activity times
 * out (the worker died, or never picked it up), fails every wait the worker last listed as
 * retryable, so Temporal resumes them on a live worker within about a minute instead of after their
 * backstop timeout. Ends when the worker holds no more waits or handed them off itself.
 */
import {
  ActivityFailure,
  TimeoutFailure,
  continueAsNew,
  isCancellation,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { WaitRef } from '../activities/image-wait-watcher';
import type { LeaseHeartbeat, LeaseTier, WaitLeaseInput, WaitLeaseKeeper } from '../activities/wait-lease';
import { compensationCall, leaseHold } from './presets';

type LeaseActivities = ReturnType<WaitLeaseKeeper['activities']>;

/** Turns before continuing as new, so the lease's history stays short however long the worker lives. */
const TURNS_PER_RUN = 100;

const release = proxyActivities<Activities>(compensationCall);

export interface WaitLeaseResult {
  /** Waits failed as retryable because the lease was lost. */
  released: number;
}

/** The list the lease last recorded: its heartbeat when it timed out after starting, else `known`. */
export function lastListed(err: unknown, known: WaitRef[]): WaitRef[] {
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) {
    const beat = err.cause.lastHeartbeatDetails as LeaseHeartbeat | undefined;
    if (beat && Array.isArray(beat.refs)) return beat.refs;
  }
  return known;
}

export async function waitLease(input: WaitLeaseInput): Promise<WaitLeaseResult> {
  let tier: LeaseTier = input.tier;
  let refs = input.refs;
  for (let turn = 0; turn < TURNS_PER_RUN; turn++) {
    // The worker's own heartbeat timeout, when it set one, replaces the tier's (activity options
    // only: the commands stay the same, so earlier leases replay).
    const options = {
      ...leaseHold(input.leaseQueue, tier),
      ...(input.heartbeatTimeoutMs ? { heartbeatTimeout: input.heartbeatTimeoutMs } : {}),
    };
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
