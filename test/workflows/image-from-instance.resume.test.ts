/**
 * imageFromInstance survives its worker: shut the worker down while the run waits for the image,
 * start another on the same task queue, and the run completes there without repeating any
 * finished step.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { timeSkippingEnv } from '../support/temporal';
// stub-activities re-exports the harness: one import for the image fakes and the run helpers.
import {
  type ActivityName,
  IMAGE_ID,
  STOP_AND_IMAGE,
  assertCalls,
  collapseReadOnlyRepeats,
  happyActivities,
  imageInput,
  localActivityMarkers,
  resumedRun,
  scheduledActivities,
  startImageFromInstance,
  stepReached,
  stepStates,
  succeeded,
  test,
  workflowEnv,
} from './stub-activities';

const env = workflowEnv(timeSkippingEnv);

describe('imageFromInstance resumed on another worker', () => {
  test('GIVEN a stop-mode run waiting for its image WHEN its worker shuts down and another starts on the same task queue THEN the run completes there and no finished activity runs again', async () => {
    // GIVEN: the first worker has run every step up to the wait, and the wait is in progress.
    // WHEN: it shuts down (its waiting activity is interrupted) and a second worker takes over.
    const { outcome, first, second } = await resumedRun(env, {
      first: happyActivities({ state: 'running' }),
      block: ['waitForImageAvailable'],
      start: (tq) => startImageFromInstance(env, tq, imageInput({ mode: 'stop' })),
      ready: (handle) => stepReached(handle, 'start instance', ['done']),
      second: happyActivities({ state: 'running' }),
      queuePrefix: 'resume',
    });

    // THEN
    const result = succeeded(outcome);
    assert.equal(result.imageId, IMAGE_ID);
    assert.equal(result.instanceFinalState, 'running');
    // The first worker keeps no workflow cache, so a read-only local activity (describe, name
    // check) can run again when its task is replayed: local activities are at least once.
    assertCalls(collapseReadOnlyRepeats(first), [...STOP_AND_IMAGE]);
    assertCalls(second, ['waitForImageAvailable', 'tagSnapshots']);
    const total = (name: ActivityName) => first.count(name) + second.count(name);
    for (const readOnly of ['describeInstance', 'checkImageName'] as const) {
      assert.ok(
        total(readOnly) >= 1 && second.count(readOnly) === 0,
        `${readOnly} did not run on the second worker`,
      );
    }
    // What changed AWS ran exactly once across both workers.
    for (const finished of ['stopInstance', 'createImage', 'startInstance'] as const) {
      assert.equal(total(finished), 1, `${finished} ran ${total(finished)} times across both workers`);
    }
    assert.equal(total('deleteImage'), 0);
    // The retried wait keeps the deadline the workflow computed once: retries never extend it.
    assert.equal(
      second.inputs('waitForImageAvailable')[0]?.deadline,
      first.inputs('waitForImageAvailable')[0]?.deadline,
    );
    assert.ok(Object.values(stepStates(outcome.progress)).every((s) => s === 'done'));
    // History agrees: each activity completed once, the wait by the second worker on its second attempt.
    const started = (outcome.history.events ?? []).flatMap((e) => {
      const a = e.activityTaskStartedEventAttributes;
      return a ? [{ identity: a.identity, attempt: a.attempt }] : [];
    });
    assert.deepEqual(started, [
      { identity: 'first worker', attempt: 1 }, // stopInstance
      { identity: 'first worker', attempt: 1 }, // createImage
      { identity: 'first worker', attempt: 1 }, // startInstance
      { identity: 'second worker', attempt: 2 }, // waitForImageAvailable
    ]);
    assert.deepEqual(scheduledActivities(outcome.history), [
      'stopInstance',
      'createImage',
      'startInstance',
      'waitForImageAvailable',
    ]);
    assert.equal(localActivityMarkers(outcome.history), 3); // describe, check name, tag snapshots (create is a normal activity)
  });
});
