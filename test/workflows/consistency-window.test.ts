/**
 * Undo under EC2's eventual consistency, at the workflow level: the undo steps are handed the ids
 * AWS returned (the run's own record), and an undo that answers NotVisibleYet (the retryable failure
 * the real activities give for such an id within the consistency window; tier 2 proves that in
 * test/activities/consistency-window.test.ts) is retried until the resource is visible and undone,
 * never reported as "gone" or "none made", and the run ends as it should.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { DestinationOutcome, ImageFromInstanceResult } from '../../workflows/contracts';
import { FailureType } from '../../workflows/contracts';
import type { copyImage } from '../../workflows';
import { timeSkippingEnv, uniqueTaskQueue } from '../support/temporal';
import { NEW_ID, cancelledMigration, migrationActivities } from './migrate-stub-activities';
import { OWNER, copyIdFor, copyInput, outcome, shareCopyActivities, start } from './share-copy-stubs';
import {
  ActivityLog,
  IMAGE_ID,
  RUN_TIMEOUT,
  blockingUntilCancelled,
  happyActivities,
  imageInput,
  recorded,
  startImageFromInstance,
  startWorker,
} from './stub-activities';
import { cancelledWhileBlocked, assertWorkflowCancelled, workflowEnv } from './harness';

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

const assertCancelled = assertWorkflowCancelled;

void describe('undo by id within the consistency window', () => {
  it(
    'GIVEN imageFromInstance is cancelled right after CreateImage, while its image is not visible yet WHEN undoing THEN deleteImage is handed the id, retried until it sees it, and the run ends CANCELLED with the image deleted',
    RUN_TIMEOUT,
    async () => {
      const log = new ActivityLog();
      const wait = blockingUntilCancelled();
      const happy = happyActivities({ state: 'stopped' });
      const activities: Activities = {
        ...happy,
        waitForImageAvailable: wait.fn,
        deleteImage: notVisibleFor(2, `image ${IMAGE_ID}`, happy.deleteImage),
      };

      const o = await cancelledWhileBlocked<ImageFromInstanceResult>(
        env,
        recorded(log, activities),
        wait,
        (taskQueue) => startImageFromInstance(env, taskQueue, imageInput({ mode: 'stop' })),
      );

      assert.ok(!o.ok);
      assertCancelled(o.error);
      const deletes = log.inputs('deleteImage');
      assert.equal(deletes.length, 3, 'two NotVisibleYet answers, then the deletion');
      assert.ok(
        deletes.every((d) => d.imageId === IMAGE_ID),
        'every attempt acts on the id CreateImage returned',
      );
      assert.deepEqual(o.progress.compensations, [{ name: 'delete image and snapshots', state: 'done' }]);
    },
  );

  it(
    'GIVEN migrateInstance is cancelled while checking the new instance, which is not visible yet WHEN undoing THEN the new instance is terminated by its id after the retries, never "no instance launched", and the source started again',
    RUN_TIMEOUT,
    async () => {
      const log = new ActivityLog();
      const wait = blockingUntilCancelled();
      const happy = migrationActivities();
      const activities: Activities = {
        ...happy,
        waitForInstanceReady: wait.fn,
        terminateLaunchedInstance: notVisibleFor(2, `instance ${NEW_ID}`, happy.terminateLaunchedInstance),
      };

      const o = await cancelledMigration(env, recorded(log, activities), wait, { afterLaunch: true });

      assert.ok(!o.ok);
      assertCancelled(o.error);
      const terminations = log.inputs('terminateLaunchedInstance');
      assert.equal(terminations.length, 3);
      assert.ok(
        terminations.every((t) => t.instanceId === NEW_ID),
        'every attempt acts on the id RunInstances returned',
      );
      assert.equal(o.progress.phase, 'cancelled');
      assert.ok(
        o.progress.compensations.every((c) => c.state === 'done'),
        JSON.stringify(o.progress.compensations),
      );
      assert.equal(log.count('startInstance'), 1, 'the source is started again');
    },
  );

  it(
    "GIVEN copyImage's tagging of the new copy failed (the id returned, tags pending) and a later step fails WHEN rolling back THEN the copy is deleted by its id",
    RUN_TIMEOUT,
    async () => {
      const log = new ActivityLog();
      const happy = shareCopyActivities();
      const destination = { region: 'eu-central-1' };
      const copyId = copyIdFor({ region: destination.region, accountId: OWNER });
      const activities: Activities = {
        ...happy,
        copyImage: async (input) => ({
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
      const taskQueue = uniqueTaskQueue('copy-consistency');
      const worker = await startWorker(env, taskQueue, recorded(log, activities));
      const o = await worker.runUntil(async () =>
        outcome(
          await start<typeof copyImage>(
            env,
            'copyImage',
            taskQueue,
            copyInput({ destinations: [destination] }),
          ),
        ),
      );

      assert.ok(!o.ok);
      const deletes = log.inputs('deleteImage');
      assert.equal(deletes.length, 2, 'one NotVisibleYet answer, then the deletion');
      assert.ok(
        deletes.every((d) => d.imageId === copyId),
        'the rollback acts on the id CopyImage returned',
      );
      const failure = (o.error as WorkflowFailedError).cause;
      assert.ok(failure instanceof ApplicationFailure);
      assert.equal(failure.type, FailureType.CopyFailed);
      const outcomes = failure.details?.[0] as DestinationOutcome[];
      assert.deepEqual(
        outcomes.map((d) => [d.imageId, d.status, d.exists]),
        [[copyId, 'failed', false]],
      );
    },
  );
});
