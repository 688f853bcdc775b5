/**
 * The wait lease workflow (workflows/wait-lease.ts) releases what a stopping worker's hold says it
 * could not hand off (issue 13): the hold fails with WAIT_HAND_OFF_INCOMPLETE and the waits' list,
 * and the same releaseWaits step as after a timeout fails exactly those from a live worker.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import type { WaitRef } from '../../activities/image-wait-watcher';
import { WAIT_HAND_OFF_INCOMPLETE } from '../../contracts/wait-lease';
import { lastListed } from '../../workflows/wait-lease';

const refs = (...ns: number[]): WaitRef[] =>
  ns.map((n) => ({ workflowId: `wf-${n}`, runId: 'run', activityId: '7' }));

const holdFailed = (cause: ApplicationFailure) =>
  new ActivityFailure('activity failed', 'holdWaitLease', '1', RetryState.NON_RETRYABLE_FAILURE, 'w', cause);

void describe('wait lease of a stopping worker', () => {
  void it('GIVEN a hold that failed listing the waits its worker could not hand off THEN exactly those are released, not every wait the lease knew', () => {
    const incomplete = ApplicationFailure.create({
      type: WAIT_HAND_OFF_INCOMPLETE,
      nonRetryable: true,
      message: '1 waits could not be handed off',
      details: [{ refs: refs(2) }],
    });
    assert.deepEqual(lastListed(holdFailed(incomplete), refs(1, 2, 3)), { refs: refs(2) });
  });

  void it('GIVEN a hold that failed for another reason THEN the lease releases every wait it knew', () => {
    const other = ApplicationFailure.create({ type: 'Other', message: 'x', details: [{ refs: refs(2) }] });
    assert.deepEqual(lastListed(holdFailed(other), refs(1, 2, 3)), { refs: refs(1, 2, 3) });
  });
});
