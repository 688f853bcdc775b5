/**
 * waitLease: one per worker holding asynchronously completed waits (activities/wait-lease.ts).
 * Runs the worker's `holdWaitLease` on the queue only that worker polls; when that activity times
 * out (the worker died, or never picked it up), fails every wait the worker last listed as
 * retryable, so Temporal resumes them on a live worker within about a minute instead of after their
 * backstop timeout, and with them the waits still started on that worker that its list lacked. Ends when the worker holds no more waits or handed them off itself.
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
import type {
  LeaseTier,
  PackedRefs,
  ReleaseWaitsInput,
  WaitLeaseInput,
  WaitLeaseKeeper,
} from '../activities/wait-lease';
import type { WaitRefsChange } from '../contracts/wait-lease';
import { WAIT_HAND_OFF_INCOMPLETE, applyTold } from '../contracts/wait-lease';
import { compensationCall, leaseHold } from './presets';

type LeaseActivities = ReturnType<WaitLeaseKeeper['activities']>;

/** Turns before continuing as new, so the lease's history stays short however long the worker lives. */
const TURNS_PER_RUN = 100;

const release = proxyActivities<Activities>(compensationCall);

/**
 * The waits the worker holds now, sent while the lease's hold has not started (activities/wait-lease.ts):
 * released with the others if the hold never starts. What changed since the worker's last signal, or
 * (its first form, and after a refused signal) the whole list. A handler adds no command, so it is
 * replay-safe.
 */
export const waitLeaseRefsSignal = defineSignal<[WaitRef[] | WaitRefsChange<WaitRef>]>('waitLeaseRefs');

/** The waits a lost lease releases: a plain list, or the packed list of its hold's last heartbeat. */
export type Listed = Pick<ReleaseWaitsInput, 'refs' | 'packed'>;

/** The list of a heartbeat (LeaseHeartbeat) or hand-off report, in either form; undefined when it holds none. */
function listedIn(details: unknown): Listed | undefined {
  const d = details as { refs?: unknown; packed?: { data?: unknown } } | null | undefined;
  if (Array.isArray(d?.refs)) return { refs: d.refs as WaitRef[] };
  if (typeof d?.packed?.data === 'string') return { refs: [], packed: d.packed as PackedRefs };
  return undefined;
}

export interface WaitLeaseResult {
  /** Waits failed as retryable because the lease was lost. */
  released: number;
}

/**
 * The list the lease last recorded: its heartbeat when it timed out after starting (plain `refs`, or
 * `packed`, which only `releaseWaits` unpacks); the waits a stopping worker could not hand off when
 * its hold says so (WAIT_HAND_OFF_INCOMPLETE); else `known`. Either way the same releaseWaits call
 * follows, so histories from before either case replay.
 */
export function lastListed(err: unknown, known: WaitRef[]): Listed {
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) {
    const beat = listedIn(err.cause.lastHeartbeatDetails);
    if (beat) return beat;
  }
  if (
    err instanceof ActivityFailure &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === WAIT_HAND_OFF_INCOMPLETE
  ) {
    const left = listedIn(err.cause.details?.[0]);
    if (left) return left;
  }
  return { refs: known };
}

export async function waitLease(input: WaitLeaseInput): Promise<WaitLeaseResult> {
  let tier: LeaseTier = input.tier;
  let refs = input.refs;
  setHandler(waitLeaseRefsSignal, (told) => {
    refs = applyTold(refs, told);
  });
  for (let turn = 0; turn < TURNS_PER_RUN; turn++) {
    const options = leaseHold(input.leaseQueue, tier, input.heartbeatTimeoutMs);
    const hold = proxyActivities<LeaseActivities>(options);
    try {
      const out = await hold.holdWaitLease.executeWithOptions(
        { ...options, summary: `hold ${refs.length} waits (${tier})` },
        [{ tier, packed: true }],
      );
      if (out.next === undefined) return { released: 0 };
      tier = out.next;
      refs = out.refs;
    } catch (err) {
      if (isCancellation(err)) throw err;
      const lost = lastListed(err, refs);
      const count = lost.refs.length + (lost.packed?.count ?? 0);
      const done = await release.releaseWaits.executeWithOptions(
        { ...compensationCall, summary: `hand ${count} waits to a live worker` },
        [
          {
            ...lost,
            lease: workflowInfo().workflowId,
            // Waits the worker took but no list named yet (a SIGKILL right after the server handed them over).
            ...(input.workerIdentity
              ? { sweep: { taskQueue: workflowInfo().taskQueue, workerIdentity: input.workerIdentity } }
              : {}),
          },
        ],
      );
      return { released: done.released };
    }
  }
  return continueAsNew<typeof waitLease>({ ...input, tier, refs });
}
