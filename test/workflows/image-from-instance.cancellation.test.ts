/**
 * imageFromInstance, cancelled while waiting for the image to be available: the image this run
 * made is deleted, the instance ends in the state it started in, and the run ends cancelled.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivityFailure, CancelledFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { ConsistencyMode, ImageFromInstanceResult, InstanceState } from '../../workflows/contracts';
import { FailureType } from '../../workflows/contracts';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv } from '../support/temporal';
import type { ExpectedCall, Outcome } from './stub-activities';
import {
  ActivityLog,
  IMAGE_ID,
  assertCalls,
  assertWorkflowFailure,
  blockingUntilCancelled,
  failing,
  happyActivities,
  imageInput,
  outcomeOf,
  RUN_TIMEOUT,
  recorded,
  startImageFromInstance,
  stepReached,
  stepStates,
  withWorker,
  IMAGE_AS_IS,
  STOP_AND_IMAGE,
} from './stub-activities';
import { cancelledWhileBlocked, assertWorkflowCancelled, workflowEnv } from './harness';

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
    it(
      `GIVEN ${c.given} WHEN cancelled while waiting for the image THEN the image is deleted, the instance is left ${c.state}, and the run ends cancelled`,
      RUN_TIMEOUT,
      async () => {
        const log = new ActivityLog();
        const wait = blockingUntilCancelled();
        const activities: Activities = {
          ...happyActivities({ state: c.state }),
          waitForImageAvailable: wait.fn,
        };

        // the waiting activity itself was stopped, not left polling
        const outcome = await cancelledWhileBlocked<ImageFromInstanceResult>(
          env,
          recorded(log, activities),
          wait,
          (taskQueue) => startImageFromInstance(env, taskQueue, imageInput({ mode: c.mode })),
          { beforeCancel: (handle) => stepReached(handle, 'start instance', [c.startStep]) },
        );

        assertCancelled(outcome);
        assertCalls(log, c.calls);
        assert.equal(log.inputs('deleteImage')[0]?.imageId, IMAGE_ID);
        // Instance state: every stop this run made is followed by a start that succeeded.
        const stops = log.count('stopInstance');
        assert.equal(log.count('startInstance'), stops);
        if (c.state === 'stopped' || c.mode !== 'stop') assert.equal(stops, 0);
        assert.deepEqual(outcome.progress.compensations, [{ name: DELETE, state: 'done' }]);
        assert.equal(stepStates(outcome.progress)['create image'], 'compensated');
      },
    );
  }

  it(
    'GIVEN a running instance in stop mode that is still starting again WHEN cancelled while waiting THEN the image is deleted and the instance is started by the compensation',
    RUN_TIMEOUT,
    async () => {
      const log = new ActivityLog();
      const wait = blockingUntilCancelled();
      const forwardStart = blockingUntilCancelled();
      const happy = happyActivities({ state: 'running' });
      let starts = 0;
      const activities: Activities = {
        ...happy,
        waitForImageAvailable: wait.fn,
        // The start after CreateImage hangs; the compensation's start (a second call) succeeds.
        startInstance: (input) => {
          starts += 1;
          return starts === 1 ? forwardStart.fn() : happy.startInstance(input);
        },
      };

      const outcome = await withWorker(env, recorded(log, activities), async (taskQueue) => {
        const handle = await startImageFromInstance(env, taskQueue, imageInput({ mode: 'stop' }));
        await Promise.all([wait.entered, forwardStart.entered]);
        await stepReached(handle, 'start instance', ['running']);

        await handle.cancel();

        const o = await outcomeOf(handle);
        await Promise.all([wait.cancelled, forwardStart.cancelled]);
        return o;
      });

      assertCancelled(outcome);
      assertCalls(log, [...STOP_AND_IMAGE, 'deleteImage', 'startInstance']);
      assert.deepEqual(outcome.progress.compensations, [
        { name: DELETE, state: 'done' },
        { name: 'start instance again', state: 'done' },
      ]);
      assert.equal(stepStates(outcome.progress)['stop instance'], 'compensated');
    },
  );

  it(
    'GIVEN the undo of a cancelled run fails WHEN cancelled while waiting for the image THEN the run fails CompensationFailed naming the image it left, not a clean CANCELLED',
    RUN_TIMEOUT,
    async () => {
      const log = new ActivityLog();
      const wait = blockingUntilCancelled();
      const activities: Activities = {
        ...failing(happyActivities({ state: 'stopped' }), 'deleteImage', FailureType.AwsUnauthorized),
        waitForImageAvailable: wait.fn,
      };

      const { outcome, workflowId } = await withWorker(env, recorded(log, activities), async (taskQueue) => {
        const handle = await startImageFromInstance(env, taskQueue, imageInput({ mode: 'stop' }));
        await wait.entered;

        await handle.cancel();

        return { outcome: await outcomeOf(handle), workflowId: handle.workflowId };
      });
      await saveHistory(
        { history: outcome.history, workflowId },
        'image-from-instance-cancelled-undo-failed',
      );

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
      assert.deepEqual(
        outcome.progress.compensations.map((c) => [c.name, c.state]),
        [[DELETE, 'failed']],
      );
    },
  );
});
