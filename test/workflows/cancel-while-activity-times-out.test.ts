/**
 * Cancellation means cancelled: a run whose cancellation was requested ends CANCELLED, with its
 * compensations run and reported, even when the step in flight then ends in a timeout because the
 * worker running it died (it never heard of the cancellation, so it never reported it).
 *
 * The time-skipping server does not move its clock while an activity is in flight, so a real
 * heartbeat timeout cannot be reached here without minutes of wall time (nor does the test server
 * stop retrying a cancel-requested activity); the stub ends the cancelled step with a non-retryable
 * failure other than a cancellation, which is what the guard decides on (a timeout is one). The
 * e2e/chaos tier kills real workers.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { timeSkippingEnv } from '../support/temporal';
import {
  STOP_TIMED_OUT_WHEN_CANCELLED,
  happyActivities,
  imageInput,
  startImageFromInstance,
} from './stub-activities';
import { assertWorkflowCancelled, cancelledRun, stepReached, stepStates, test, workflowEnv } from './harness';

const env = workflowEnv(timeSkippingEnv);

void describe('imageFromInstance cancelled while the stop runs on a worker that died', () => {
  test('GIVEN stopInstance is in flight WHEN the run is cancelled and the activity then ends timed out (its worker died) THEN the run ends CANCELLED, the instance is started again, and the undo is reported', async (log) => {
    const outcome = await cancelledRun(env, {
      log,
      activities: happyActivities({ state: 'running' }),
      // Stops, hears of the cancellation, and ends as a dead worker's activity does: timed out.
      block: [STOP_TIMED_OUT_WHEN_CANCELLED],
      start: (taskQueue) => startImageFromInstance(env, taskQueue, imageInput({ mode: 'stop' })),
      beforeCancel: (handle) => stepReached(handle, 'stop instance', ['running']),
    });

    assert.ok(!outcome.ok, 'the run should not succeed');
    assertWorkflowCancelled(outcome.error);
    assert.match(outcome.progress.error ?? '', /heartbeat timeout \(worker lost\)/);
    assert.equal(outcome.progress.phase, 'cancelled');
    assert.deepEqual(outcome.progress.compensations, [{ name: 'start instance again', state: 'done' }]);
    assert.equal(
      log.count('startInstance'),
      1,
      'the instance this run stopped (or may have) is started again',
    );
    assert.equal(log.count('createImage'), 0);
    assert.equal(
      stepStates(outcome.progress)['stop instance'],
      'failed',
      'a step that failed is never shown as done',
    );
  });
});
