/**
 * Undo under EC2's eventual consistency, at the workflow level: the undo steps are handed the ids
 * AWS returned (the run's own record), and an undo that answers NotVisibleYet (the retryable failure
 * the real activities give for such an id within the consistency window; tier 2 proves that in
 * test/activities/consistency-window.test.ts) is retried until the resource is visible and undone,
 * never reported as "gone" or "none made", and the run ends as it should.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { DestinationOutcome } from '../../workflows/contracts';
import { FailureType } from '../../workflows/contracts';
import type { copyImage } from '../../workflows';
import { timeSkippingEnv } from '../support/temporal';
import { NEW_ID, cancelledMigration, migrationActivities } from './migrate-stub-activities';
import { OWNER, copyIdFor, copyInput, outcome, shareCopyActivities, start } from './share-copy-stubs';
import { IMAGE_ID, happyActivities, imageInput, startImageFromInstance } from './stub-activities';
import {
  assertWorkflowCancelled,
  blockedAt,
  cancelledRun,
  recorded,
  test,
  type WorkflowOutcome,
  withWorker,
  workflowEnv,
} from './harness';

const env = workflowEnv(timeSkippingEnv);

/** `impl`, after answering NotVisibleYet `times` times, as the real undo does inside the window. */
function notVisibleFor<A extends unknown[], R>(
  times: number,
  what: string,
  impl: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  let calls = 0;
  return (...args: A) => {
    calls += 1;
    if (calls <= times)
      throw ApplicationFailure.create({
        type: FailureType.NotVisibleYet,
        nonRetryable: false,
        message: `${what} is not visible yet (injected)`,
      });
    return impl(...args);
  };
}

/** The undo ran `times` times (NotVisibleYet answers, then the undo), every time on `id`. */
function assertUndoneBy(ids: (string | undefined)[], id: string, times: number, returnedBy: string): void {
  assert.equal(ids.length, times, `${times - 1} NotVisibleYet answer(s), then the undo`);
  assert.ok(
    ids.every((i) => i === id),
    `every attempt acts on the id ${returnedBy} returned (${id}): ${ids.join(', ')}`,
  );
}

/** The run ended CANCELLED, its undo answered NotVisibleYet twice and then undid `id`. */
function assertCancelledUndoneBy(
  o: WorkflowOutcome<unknown>,
  ids: (string | undefined)[],
  id: string,
  returnedBy: string,
): void {
  assert.ok(!o.ok);
  assertWorkflowCancelled(o.error);
  assertUndoneBy(ids, id, 3, returnedBy);
}

void describe('undo by id within the consistency window', () => {
  test('GIVEN imageFromInstance is cancelled right after CreateImage, while its image is not visible yet WHEN undoing THEN deleteImage is handed the id, retried until it sees it, and the run ends CANCELLED with the image deleted', async (log) => {
    const happy = happyActivities({ state: 'stopped' });
    const o = await cancelledRun(env, {
      log,
      activities: { ...happy, deleteImage: notVisibleFor(2, `image ${IMAGE_ID}`, happy.deleteImage) },
      block: ['waitForImageAvailable'],
      start: (taskQueue) => startImageFromInstance(env, taskQueue, imageInput({ mode: 'stop' })),
    });

    assertCancelledUndoneBy(
      o,
      log.inputs('deleteImage').map((d) => d.imageId),
      IMAGE_ID,
      'CreateImage',
    );
    assert.deepEqual(o.progress.compensations, [{ name: 'delete image and snapshots', state: 'done' }]);
  });

  test('GIVEN migrateInstance is cancelled while checking the new instance, which is not visible yet WHEN undoing THEN the new instance is terminated by its id after the retries, never "no instance launched", and the source started again', async (log) => {
    const happy = migrationActivities();
    const { activities, blocked } = blockedAt(
      {
        ...happy,
        terminateLaunchedInstance: notVisibleFor(2, `instance ${NEW_ID}`, happy.terminateLaunchedInstance),
      },
      'waitForInstanceReady',
    );

    const o = await cancelledMigration(env, recorded(log, activities), blocked, { afterLaunch: true });

    const terminated = log.inputs('terminateLaunchedInstance').map((t) => t.instanceId);
    assertCancelledUndoneBy(o, terminated, NEW_ID, 'RunInstances');
    assert.equal(o.progress.phase, 'cancelled');
    assert.ok(
      o.progress.compensations.every((c) => c.state === 'done'),
      JSON.stringify(o.progress.compensations),
    );
    assert.equal(log.count('startInstance'), 1, 'the source is started again');
  });

  test("GIVEN copyImage's tagging of the new copy failed (the id returned, tags pending) and a later step fails WHEN rolling back THEN the copy is deleted by its id", async (log) => {
    const happy = shareCopyActivities();
    const destination = { region: 'eu-central-1' };
    const copyId = copyIdFor({ region: destination.region, accountId: OWNER });
    const activities = {
      ...happy,
      copyImage: async (input: Parameters<typeof happy.copyImage>[0]) => ({
        ...(await happy.copyImage(input)),
        tagsPending: 'InvalidAMIID.NotFound',
      }),
      waitForImageAvailable: () => {
        throw ApplicationFailure.create({
          type: FailureType.ImageFailed,
          nonRetryable: true,
          message: 'injected: the copy ended failed',
        });
      },
      deleteImage: notVisibleFor(1, `image ${copyId}`, happy.deleteImage),
    };
    const o = await withWorker(
      env,
      recorded(log, activities),
      async (taskQueue) =>
        outcome(
          await start<typeof copyImage>(
            env,
            'copyImage',
            taskQueue,
            copyInput({ destinations: [destination] }),
          ),
        ),
      'copy-consistency',
    );

    assert.ok(!o.ok);
    assertUndoneBy(
      log.inputs('deleteImage').map((d) => d.imageId),
      copyId,
      2,
      'CopyImage',
    );
    const failure = (o.error as WorkflowFailedError).cause;
    assert.ok(failure instanceof ApplicationFailure);
    assert.equal(failure.type, FailureType.CopyFailed);
    const outcomes = failure.details?.[0] as DestinationOutcome[];
    assert.deepEqual(
      outcomes.map((d) => [d.imageId, d.status, d.exists]),
      [[copyId, 'failed', false]],
    );
  });
});
