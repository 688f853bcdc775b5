/**
 * Issue 16 points 3 and 4 in a share's re-encrypting copy: CopyImage there meets what a copy
 * elsewhere meets (a concurrency limit, retried no sooner than 30 s; a name EC2 still holds after a
 * rollback, retried every 15 s for minutes). The copy step must wait those out as `copyImage` does,
 * not end the share after a local activity's 40-second budget. On the dev server, in wall time: the
 * time-skipping server skips the retry timers, so a local activity's schedule-to-close never runs
 * out there. About 45 s.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { NOT_SETTLED_FAILURE } from '../../activities/errors';
import type { ShareImageResult } from '../../workflows/contracts';
import { devServerEnv, uniqueTaskQueue } from '../support/temporal';
import {
  REENCRYPTED_IMAGE,
  REENCRYPT_KEY,
  outcome,
  shareCopyActivities,
  shareInput,
  start,
} from './share-copy-stubs';
import { ActivityLog, RUN_TIMEOUT, recorded, startWorker } from './stub-activities';
import { workflowEnv } from './harness';

const env = workflowEnv(devServerEnv, { per: 'file' });

/** Longer than a local activity's 40-second schedule-to-close (workflows/presets.ts fastAwsCall). */
const HELD_MS = 42_000;

void describe('shareImage: the re-encrypting copy waits for EC2 to settle', () => {
  void it(
    'GIVEN CopyImage refused for 42 s (name still held) WHEN an aws/ebs image is shared with reencryptWith THEN the copy is retried until EC2 takes it and the share succeeds',
    RUN_TIMEOUT,
    async () => {
      const log = new ActivityLog();
      const activities = shareCopyActivities({ encryption: 'aws-managed-key' });
      const copy = activities.copyImage;
      let firstCall: number | undefined;
      let refusals = 0;
      // As activities/copying.ts answers a held name: retryable, a few seconds later, until EC2 frees it.
      activities.copyImage = (input) => {
        firstCall ??= Date.now();
        if (Date.now() - firstCall < HELD_MS) {
          refusals += 1;
          return Promise.reject(
            ApplicationFailure.create({
              type: NOT_SETTLED_FAILURE,
              nonRetryable: false,
              message: `the name '${input.imageName}' is still held by an image no longer visible; retrying`,
              nextRetryDelay: 5_000,
            }),
          );
        }
        return copy(input);
      };
      const taskQueue = uniqueTaskQueue('share-reencrypt-settle');
      const worker = await startWorker(env, taskQueue, recorded(log, activities));
      const o = await worker.runUntil(
        start(env, 'shareImage', taskQueue, shareInput({ reencryptWith: REENCRYPT_KEY })).then((h) =>
          outcome<ShareImageResult>(h),
        ),
      );
      assert.ok(o.ok, `the share failed: ${o.ok ? '' : String(o.error)}`);
      assert.equal(o.result.sharedImageId, REENCRYPTED_IMAGE);
      assert.ok(refusals >= 8, `${refusals} refusals over ${HELD_MS / 1000} s were waited out`);
    },
  );
});
