/**
 * copyImage on the time-skipping server with stub activities: a five-destination fan-out (three
 * regions of the source account, two other accounts through a child shareImage, withdrawn after);
 * the per-region concurrency limit; one failed destination of five under `rollback` and under
 * `keep`; cancellation mid fan-out; resume on another worker mid fan-out without a second copy.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { CopyImageResult, DestinationOutcome } from '../../workflows/contracts';
import { FailureType } from '../../workflows/contracts';
import type { copyImage } from '../../workflows';
import { saveHistory } from '../support/histories';
import { uniqueTaskQueue } from '../support/temporal';
import {
  ACCOUNT_A,
  ACCOUNT_B,
  OWNER,
  SOURCE_IMAGE,
  blockingWaits,
  copyIdFor,
  copyInput,
  outcome,
  shareCopyActivities,
  start,
  shareCopyEnv,
} from './share-copy-stubs';
import { ActivityLog, injectedFailure, recorded, handedOver, succeeded } from './harness';

const { env, withLoggedWorker: withCopyWorker } = shareCopyEnv('copy');

const run = (tq: string, overrides: Parameters<typeof copyInput>[0] = {}) =>
  start<typeof copyImage>(env, 'copyImage', tq, copyInput(overrides));

/** The five destinations' copies, as the stubs name them. */
const COPIES = copyInput().destinations.map((d) =>
  copyIdFor({ region: d.region, accountId: d.accountId ?? OWNER }),
);
const FAILING_REGION = 'us-west-2';

function imageFailed(): never {
  throw ApplicationFailure.create({
    type: FailureType.ImageFailed,
    nonRetryable: true,
    message: 'injected: the copy ended failed (Client.InternalError)',
  });
}

const sorted = (xs: (string | undefined)[]) => [...xs].sort();

void describe('copyImage fan-out', () => {
  void it('GIVEN five destinations, two in other accounts WHEN copied THEN the source is shared with those two (child run), every destination copies once under its own account, and the share is withdrawn after', async () => {
    const log = new ActivityLog();
    const o = await withCopyWorker(log, shareCopyActivities(), async (tq) =>
      outcome<CopyImageResult>(await run(tq)),
    );
    await saveHistory(o, 'copy-image-five-destinations');

    const r = succeeded(o);
    assert.equal(r.outcome, 'complete');
    assert.deepEqual(
      r.destinations.map((d) => [d.region, d.status, d.exists, d.imageId]),
      copyInput().destinations.map((d, i) => [d.region, 'copied', true, COPIES[i]]),
    );
    assert.deepEqual(r.share && { ...r.share, workflowId: '' }, {
      workflowId: '',
      accountIds: [ACCOUNT_A, ACCOUNT_B],
      sharedImageId: SOURCE_IMAGE,
      withdrawn: true,
    });
    // The child shared with exactly the two other accounts, with copy rights.
    assert.deepEqual(log.inputs('addLaunchPermissions')[0]?.permissions, [
      { userId: ACCOUNT_A },
      { userId: ACCOUNT_B },
    ]);
    assert.deepEqual(log.inputs('addSnapshotPermissions')[0]?.permissions[0]?.userIds, [
      ACCOUNT_A,
      ACCOUNT_B,
    ]);
    // Each destination copied once, with its own account's credentials and key, and the tags.
    const copies = log.inputs('copyImage');
    assert.deepEqual(
      sorted(copies.map((c) => `${c.destination.accountId}/${c.destination.region}`)),
      sorted(copyInput().destinations.map((d) => `${d.accountId ?? OWNER}/${d.region}`)),
    );
    assert.deepEqual(copies.find((c) => c.destination.accountId === ACCOUNT_A)?.kmsKeyId, 'alias/copies');
    assert.deepEqual(copies[0]?.tags, { team: 'web', purpose: 'dr' });
    assert.deepEqual(
      log.inputs('checkKmsKey').map((c) => [c.target, c.keyId]),
      [[{ region: 'ap-southeast-2', accountId: ACCOUNT_A }, 'alias/copies']],
    );
    // Withdrawn after every copy: the last calls.
    assert.deepEqual(log.names().slice(-2), ['removeLaunchPermissions', 'removeSnapshotPermissions']);
    assert.equal(log.count('deleteImage'), 0);
    console.log(`copyImage, 5 destinations (2 cross-account): ${o.history.events?.length} history events`);
  });

  void it('GIVEN three destinations in one region and a limit of one copy per region WHEN copied THEN they run one after another, the waiting ones shown queued', async () => {
    const log = new ActivityLog();
    const happy = shareCopyActivities();
    let running = 0;
    let most = 0;
    const activities: Activities = {
      ...happy,
      waitForImageAvailable: async (input) => {
        running += 1;
        most = Math.max(most, running);
        await Context.current().sleep(30); // a copy that takes a moment, so overlaps would show
        running -= 1;
        return happy.waitForImageAvailable(input);
      },
    };
    const o = await withCopyWorker(log, activities, async (tq) =>
      outcome<CopyImageResult>(
        await run(tq, {
          concurrencyPerRegion: 1,
          destinations: [
            { region: 'us-east-1' },
            { region: 'us-east-1', accountId: ACCOUNT_A },
            { region: 'us-east-1', accountId: ACCOUNT_B },
          ],
        }),
      ),
    );
    await saveHistory(o, 'copy-image-one-per-region');

    assert.equal(succeeded(o).outcome, 'complete');
    assert.equal(most, 1, 'at most one copy at a time in us-east-1');
    const fanOut = log
      .names()
      .filter((n) => ['copyImage', 'waitForImageAvailable', 'tagSnapshots'].includes(n));
    assert.deepEqual(fanOut, Array(3).fill(['copyImage', 'waitForImageAvailable', 'tagSnapshots']).flat());
  });

  void it('GIVEN a key that does not exist in one destination WHEN copied THEN it fails before anything is shared or copied', async () => {
    const log = new ActivityLog();
    const activities: Activities = {
      ...shareCopyActivities(),
      checkKmsKey: () => {
        throw injectedFailure('checkKmsKey', FailureType.KmsKeyUnusable);
      },
    };
    const o = await withCopyWorker(log, activities, async (tq) => outcome(await run(tq)));
    await saveHistory(o, 'copy-image-key-missing');

    assert.ok(!o.ok);
    assert.deepEqual(log.names(), ['describeCopySource', 'checkKmsKey']);
  });
});

void describe('copyImage with one failed destination of five', () => {
  void it("GIVEN the 'rollback' policy WHEN one copy fails while the others are in flight THEN the others are cancelled, every copy is deleted, the share withdrawn, and CopyFailed says nothing remains", async () => {
    const log = new ActivityLog();
    const happy = shareCopyActivities();
    const waits = blockingWaits(happy.waitForImageAvailable, (t) => t.region !== FAILING_REGION);
    const activities: Activities = {
      ...happy,
      waitForImageAvailable: async (input) => {
        if (input.target.region !== FAILING_REGION) return waits.fn(input);
        await waits.entered(4); // the other four copies are in flight when this one fails
        return imageFailed();
      },
    };

    const o = await withCopyWorker(log, activities, async (tq) => {
      const r = await outcome<CopyImageResult>(await run(tq));
      await waits.cancelled(4);
      return r;
    });
    await saveHistory(o, 'copy-image-rollback');

    assert.ok(!o.ok);
    assert.ok(o.error instanceof WorkflowFailedError && o.error.cause instanceof ApplicationFailure);
    const failure = o.error.cause;
    assert.equal(failure.type, FailureType.CopyFailed);
    assert.match(
      failure.message,
      /copy to us-west-2 failed: .*ImageFailed|copy to us-west-2 failed: .*injected/,
    );
    assert.match(failure.message, /the copies this run made are deregistered by their ids/);
    const outcomes = failure.details?.[0] as DestinationOutcome[];
    assert.deepEqual(
      outcomes.map((d) => [d.region, d.status, d.exists]),
      copyInput().destinations.map((d) => [
        d.region,
        d.region === FAILING_REGION ? 'failed' : 'rolled-back',
        false,
      ]),
    );
    assert.deepEqual(sorted(log.inputs('deleteImage').map((d) => d.imageId)), sorted(COPIES));
    assert.equal(log.count('removeLaunchPermissions'), 1, 'the share is withdrawn');
    assert.ok(o.progress.compensations.every((c) => c.state === 'done'));
    assert.equal(o.progress.phase, 'failed');
  });

  void it("GIVEN the 'keep' policy WHEN one copy fails THEN only that copy is deleted, the four others are kept, and the result says exactly what exists", async () => {
    const log = new ActivityLog();
    const happy = shareCopyActivities();
    const activities: Activities = {
      ...happy,
      waitForImageAvailable: (input) =>
        input.target.region === FAILING_REGION
          ? Promise.resolve(imageFailed())
          : happy.waitForImageAvailable(input),
    };

    const o = await withCopyWorker(log, activities, async (tq) =>
      outcome<CopyImageResult>(await run(tq, { partialFailure: 'keep' })),
    );
    await saveHistory(o, 'copy-image-keep-partial');

    const r = succeeded(o);
    assert.equal(r.outcome, 'partial');
    assert.deepEqual(
      r.destinations.map((d) => [d.region, d.status, d.exists]),
      copyInput().destinations.map((d) => [
        d.region,
        d.region === FAILING_REGION ? 'failed' : 'copied',
        d.region !== FAILING_REGION,
      ]),
    );
    assert.match(r.destinations.find((d) => d.region === FAILING_REGION)?.error ?? '', /injected/);
    assert.deepEqual(
      log.inputs('deleteImage').map((d) => d.imageId),
      [copyIdFor({ region: FAILING_REGION, accountId: OWNER })],
    );
    assert.equal(r.share?.withdrawn, true);
  });
});

void describe('copyImage cancelled or resumed mid fan-out', () => {
  void it('GIVEN five copies in flight WHEN the run is cancelled THEN every copy is deleted, the share withdrawn, and the run ends cancelled', async () => {
    const log = new ActivityLog();
    const happy = shareCopyActivities();
    const waits = blockingWaits(happy.waitForImageAvailable);
    const o = await withCopyWorker(log, { ...happy, waitForImageAvailable: waits.fn }, async (tq) => {
      const handle = await run(tq);
      await waits.entered(5);
      await handle.cancel();
      const r = await outcome<CopyImageResult>(handle);
      await waits.cancelled(5);
      return r;
    });
    await saveHistory(o, 'copy-image-cancelled');

    assert.ok(!o.ok);
    assert.ok(
      o.error instanceof WorkflowFailedError && o.error.cause instanceof CancelledFailure,
      String(o.error),
    );
    assert.equal(o.progress.phase, 'cancelled');
    assert.deepEqual(sorted(log.inputs('deleteImage').map((d) => d.imageId)), sorted(COPIES));
    assert.equal(log.count('removeLaunchPermissions'), 1);
    assert.equal(log.count('removeSnapshotPermissions'), 1);
    assert.ok(
      o.progress.compensations.every((c) => c.state === 'done'),
      JSON.stringify(o.progress.compensations),
    );
  });

  void it('GIVEN a fan-out with four copies waiting and one queued WHEN its worker shuts down and another takes over THEN it completes there, and no destination is copied twice', async () => {
    const taskQueue = uniqueTaskQueue('copy-resume');
    const first = new ActivityLog();
    const second = new ActivityLog();
    const happy = shareCopyActivities();
    const waits = blockingWaits(happy.waitForImageAvailable);
    // us-east-1 twice with one slot per region: one of those two is queued when the worker stops.
    const input = copyInput({
      concurrencyPerRegion: 1,
      destinations: [
        { region: 'eu-central-1' },
        { region: 'us-east-1' },
        { region: 'us-east-1', accountId: ACCOUNT_A },
        { region: 'ap-southeast-2', accountId: ACCOUNT_B },
        { region: 'eu-north-1' },
      ],
    });

    const o = await handedOver(env, {
      taskQueue,
      first: recorded(first, { ...happy, waitForImageAvailable: waits.fn }),
      blocked: { entered: waits.entered(4), cancelled: waits.cancelled(4) },
      start: (tq) => start<typeof copyImage>(env, 'copyImage', tq, input),
      second: recorded(second, happy),
      then: (handle) => outcome<CopyImageResult>(handle),
    });
    await saveHistory(o, 'copy-image-resumed-on-another-worker');

    const r = succeeded(o);
    assert.equal(r.outcome, 'complete');
    const copiesOf = (log: ActivityLog) =>
      log.inputs('copyImage').map((c) => `${c.destination.accountId}/${c.destination.region}`);
    const all = [...copiesOf(first), ...copiesOf(second)];
    assert.equal(first.count('copyImage'), 4);
    assert.equal(second.count('copyImage'), 1, 'only the queued destination is copied on the second worker');
    assert.deepEqual(
      sorted(all),
      sorted(input.destinations.map((d) => `${d.accountId ?? OWNER}/${d.region}`)),
      'each destination once',
    );
    assert.equal(
      second.count('describeCopySource') + second.count('addLaunchPermissions'),
      0,
      'finished steps not run again',
    );
    assert.equal(second.count('waitForImageAvailable'), 5);
  });
});
