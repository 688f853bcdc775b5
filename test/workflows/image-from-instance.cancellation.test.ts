/**
 * imageFromInstance, cancelled while waiting for the image to be available: the image this run
 * made is deleted, the instance ends in the state it started in, and the run ends cancelled.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { ActivityFailure, CancelledFailure } from '@temporalio/common';
import type { ConsistencyMode, InstanceState } from '../../workflows/contracts';
import { FailureType } from '../../workflows/contracts';
import { timeSkippingEnv } from '../support/temporal';
import type { ExpectedCall, Outcome } from './stub-activities';
import {
  IMAGE_ID,
  IMAGE_AS_IS,
  STOP_AND_IMAGE,
  happyActivities,
  imageInput,
  startImageFromInstance,
} from './stub-activities';
import {
  assertCalls,
  assertWorkflowCancelled,
  assertWorkflowFailure,
  cancelledRun,
  compensationStates,
  failing,
  stepReached,
  stepStates,
  workflowEnv,
  test,
} from './harness';

const env = workflowEnv(timeSkippingEnv);

function assertCancelled(outcome: Outcome): void {
  assert.ok(!outcome.ok, 'the run should not succeed');
  assertWorkflowCancelled(outcome.error);
  assert.equal(outcome.progress.phase, 'cancelled');
}

const DELETE = 'delete image and snapshots';

describe('imageFromInstance cancelled while waiting for the image', () => {
  const cases: {
    given: string;
    mode: ConsistencyMode;
    state: InstanceState;
    /** What the workflow shows for 'start instance' when the cancel arrives. */
    startStep: 'done' | 'skipped';
    calls: ExpectedCall[];
  }[] = [
    {
      given: 'a running instance in stop mode, already started again after CreateImage',
      mode: 'stop',
      state: 'running',
      startStep: 'done',
      calls: [...STOP_AND_IMAGE, 'deleteImage'],
    },
    {
      given: 'a running instance in no-reboot mode (never stopped)',
      mode: 'no-reboot',
      state: 'running',
      startStep: 'skipped',
      calls: [...IMAGE_AS_IS, 'deleteImage'],
    },
    {
      given: 'a stopped instance in stop mode (left stopped throughout)',
      mode: 'stop',
      state: 'stopped',
      startStep: 'skipped',
      calls: [...IMAGE_AS_IS, 'deleteImage'],
    },
  ];
  for (const c of cases) {
    test(`GIVEN ${c.given} WHEN cancelled while waiting for the image THEN the image is deleted, the instance is left ${c.state}, and the run ends cancelled`, async (log) => {
      // the waiting activity itself was stopped, not left polling
      const outcome = await cancelledRun(env, {
        log,
        activities: happyActivities({ state: c.state }),
        block: ['waitForImageAvailable'],
        start: (taskQueue) => startImageFromInstance(env, taskQueue, imageInput({ mode: c.mode })),
        beforeCancel: (handle) => stepReached(handle, 'start instance', [c.startStep]),
      });

      assertCancelled(outcome);
      assertCalls(log, c.calls);
      assert.equal(log.inputs('deleteImage')[0]?.imageId, IMAGE_ID);
      // Instance state: every stop this run made is followed by a start that succeeded.
      const stops = log.count('stopInstance');
      assert.equal(log.count('startInstance'), stops);
      if (c.state === 'stopped' || c.mode !== 'stop') assert.equal(stops, 0);
      assert.deepEqual(outcome.progress.compensations, [{ name: DELETE, state: 'done' }]);
      assert.equal(stepStates(outcome.progress)['create image'], 'compensated');
    });
  }

  test('GIVEN a running instance in stop mode that is still starting again WHEN cancelled while waiting THEN the image is deleted and the instance is started by the compensation', async (log) => {
    const outcome = await cancelledRun(env, {
      log,
      activities: happyActivities({ state: 'running' }),
      // The start after CreateImage hangs; the compensation's start (a second call) succeeds.
      block: ['waitForImageAvailable', 'startInstance'],
      start: (taskQueue) => startImageFromInstance(env, taskQueue, imageInput({ mode: 'stop' })),
      beforeCancel: (handle) => stepReached(handle, 'start instance', ['running']),
    });

    assertCancelled(outcome);
    assertCalls(log, [...STOP_AND_IMAGE, 'deleteImage', 'startInstance']);
    assert.deepEqual(outcome.progress.compensations, [
      { name: DELETE, state: 'done' },
      { name: 'start instance again', state: 'done' },
    ]);
    assert.equal(stepStates(outcome.progress)['stop instance'], 'compensated');
  });

  test('GIVEN the undo of a cancelled run fails WHEN cancelled while waiting for the image THEN the run fails CompensationFailed naming the image it left, not a clean CANCELLED', async (log) => {
    const outcome = await cancelledRun(env, {
      log,
      activities: failing(happyActivities({ state: 'stopped' }), 'deleteImage', FailureType.AwsUnauthorized),
      block: ['waitForImageAvailable'],
      start: (taskQueue) => startImageFromInstance(env, taskQueue, imageInput({ mode: 'stop' })),
      history: 'image-from-instance-cancelled-undo-failed',
    });

    assert.ok(!outcome.ok, 'the run should not succeed');
    const failure = assertWorkflowFailure(outcome.error, FailureType.CompensationFailed);
    assert.match(
      failure.message,
      /^cancelled as requested; but undoing failed for: delete image and snapshots \(/,
    );
    assert.match(failure.message, /injected AwsUnauthorized in deleteImage/);
    assert.match(failure.message, /Resources may be left behind/);
    // The cause is the cancellation that met the waiting step.
    assert.ok(failure.cause instanceof ActivityFailure, `cause: ${String(failure.cause)}`);
    assert.ok(
      failure.cause.cause instanceof CancelledFailure,
      `not cancelled: ${String(failure.cause.cause)}`,
    );
    assertCalls(log, [...IMAGE_AS_IS, 'deleteImage']);
    assert.equal(outcome.progress.phase, 'failed');
    assert.equal(outcome.progress.outcome, 'failed');
    assert.deepEqual(compensationStates(outcome.progress), [[DELETE, 'failed']]);
  });
});
