/**
 * shareImage and unshareImage on the time-skipping server with stub activities: a 30-day share
 * withdrawn on time in seconds of wall time, withdrawing exactly what it added; the end moved by an
 * update (extended, cut short, a bad one refused); aws/ebs refused or re-encrypted; grants for a
 * customer managed key; compensation in reverse on failure and on cancellation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { ShareImageInput, ShareImageResult } from '../../workflows/contracts';
import { FailureType, setShareExpiryUpdate, shareGrantName } from '../../workflows/contracts';
import type { shareImage } from '../../workflows';
import { saveHistory } from '../support/histories';
import type { RunOutcome } from './share-copy-stubs';
import {
  ACCOUNT_A,
  ACCOUNT_B,
  CMK_ARN,
  DAY,
  OWNER,
  REENCRYPTED_IMAGE,
  REENCRYPT_KEY,
  SOURCE_IMAGE,
  SOURCE_SNAPSHOTS,
  outcome,
  shareCopyActivities,
  shareInput,
  start,
  stepIs,
  unshare,
  withReadShareRun,
  shareCopyEnv,
} from './share-copy-stubs';
import {
  ActivityLog,
  type ActivityName,
  assertActivityFailure,
  assertCalls,
  assertWorkflowCancelled,
  failed,
  failing,
  scheduledActivities,
  stepStates,
  succeeded,
} from './harness';

const { env, withLoggedWorker: withShareWorker } = shareCopyEnv('share');

/** A shareImage run of `input` to its end, on a fresh worker serving `activities`, recorded in `log`. */
const runShare = (log: ActivityLog, activities: Activities, input: unknown) =>
  withShareWorker(log, activities, async (tq) =>
    outcome<ShareImageResult>(await start(env, 'shareImage', tq, input)),
  );

/** A share of `days` days, started and holding its permissions until it expires. */
async function heldShare(tq: string, days: number) {
  const handle = await start<typeof shareImage>(
    env,
    'shareImage',
    tq,
    shareInput({ durationSeconds: days * DAY }),
  );
  await stepIs(handle, 'shared until expiry', ['running']);
  return handle;
}

/** The workflow's own failure (not an activity's): its type, and a message matching `message`. */
function assertRefused(o: RunOutcome<unknown>, type: FailureType, message?: RegExp): void {
  const err = failed(o);
  assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
  assert.equal(err.cause.type, type);
  if (message) assert.match(err.cause.message, message);
}

/**
 * A CMK-encrypted share's calls: grants, then create-volume, then launch (by the image's share
 * ledger, after its own read of the image); then the reverse, whether withdrawn or undone.
 */
const CMK_SHARE_THEN_UNDO: ActivityName[] = [
  'describeImageForSharing',
  'grantKeyAccess',
  'describeImageForSharing',
  'addSnapshotPermissions',
  'addLaunchPermissions',
  'removeLaunchPermissions',
  'removeSnapshotPermissions',
  'revokeKeyGrants',
];

const ms = (iso: string | undefined) => Date.parse(iso ?? 'invalid');

void describe('shareImage with an expiry', () => {
  void it('GIVEN a 30-day share of a CMK-encrypted image to two accounts, one of which can launch it already, WHEN it runs THEN it adds only what was missing, and 30 days later withdraws exactly that, in seconds of wall time', async () => {
    const log = new ActivityLog();
    const activities = shareCopyActivities({
      encryption: 'customer-managed-key',
      launchPermissions: [{ userId: ACCOUNT_A }],
      snapshotUserIds: [ACCOUNT_A],
    });
    const wallStart = Date.now();

    const o = await runShare(log, activities, shareInput({ durationSeconds: 30 * DAY }));
    await saveHistory(o, 'share-image-expiry-withdrawn');
    const wall = Date.now() - wallStart;

    const r = succeeded(o);
    // THEN: 30 days on the workflow clock, a few seconds on the wall clock
    const shared = ms(r.withdrawnAt) - ms(r.sharedAt);
    assert.ok(shared >= 30 * DAY * 1000 && shared < 30 * DAY * 1000 + 60_000, `shared for ${shared} ms`);
    assert.equal(r.expiresAt, new Date(ms(r.sharedAt) + 30 * DAY * 1000).toISOString());
    assert.ok(wall < 15_000, `took ${wall} ms of wall time`);
    // THEN: what it added, and nothing it found
    assert.deepEqual(r.added.launchPermissions, [{ userId: ACCOUNT_B }]);
    assert.deepEqual(r.alreadyPresent.launchPermissions, [{ userId: ACCOUNT_A }]);
    assert.deepEqual(
      r.added.snapshotPermissions,
      SOURCE_SNAPSHOTS.map((snapshotId) => ({ snapshotId, userIds: [ACCOUNT_B] })),
    );
    assert.deepEqual(
      r.added.grants.map((g) => [g.keyArn, g.granteeAccountId]),
      [
        [CMK_ARN, ACCOUNT_A],
        [CMK_ARN, ACCOUNT_B],
      ],
    );
    assert.deepEqual(r.keyAccess[0]?.targetIamPolicy.Statement[1]?.Condition, {
      Bool: { 'kms:GrantIsForAWSResource': true },
    });
    // THEN: grants, then create-volume, then launch (by the image's share ledger, after its own
    // read of the image); at the end the reverse, with the same entries
    assertCalls(log, CMK_SHARE_THEN_UNDO);
    assert.deepEqual(log.inputs('removeLaunchPermissions')[0]?.permissions, [{ userId: ACCOUNT_B }]);
    assert.deepEqual(log.inputs('removeSnapshotPermissions')[0]?.permissions, r.added.snapshotPermissions);
    const runId = r.added.grants[0]?.grantName.split('/')[1] ?? '';
    assert.deepEqual(log.inputs('revokeKeyGrants')[0]?.grantNames, [
      shareGrantName(runId, ACCOUNT_A),
      shareGrantName(runId, ACCOUNT_B),
    ]);
    assert.equal(stepStates(o.progress)['shared until expiry'], 'done');
    assert.deepEqual(o.progress.compensations, []);
    // THEN: 30 days of waiting is one timer: history stays small
    // (the permission steps are normal activities since 'share-permissions-as-activities': 3 events each)
    assert.ok((o.history.events ?? []).length < 50, `${o.history.events?.length} history events`);
    // THEN: the grant is a normal activity (since 'share-grants-as-activities'): the server records
    // CreateGrant's step before it runs, so a worker lost mid-call cannot drop the record of a grant
    assert.ok(scheduledActivities(o.history).includes('grantKeyAccess'), 'grantKeyAccess scheduled');
  });

  void it('GIVEN a 30-day share in place WHEN an update extends it to 40 days and a bad update is sent THEN the bad one is refused, the run goes on, and it is withdrawn at 40 days', async () => {
    const log = new ActivityLog();
    const o = await withShareWorker(log, shareCopyActivities(), async (tq) => {
      const handle = await heldShare(tq, 30);
      const refused = await handle
        .executeUpdate(setShareExpiryUpdate, { args: [{ expiresAt: '2001-01-01T00:00:00Z' }] })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(refused instanceof WorkflowUpdateFailedError, `refused: ${String(refused)}`);
      assert.ok(refused.cause instanceof ApplicationFailure);
      assert.equal(refused.cause.type, FailureType.InvalidInput);
      assert.match(refused.cause.message, /expiresAt: .* has passed already; use expiresInSeconds: 0/);

      const moved = await handle.executeUpdate(setShareExpiryUpdate, {
        args: [{ expiresInSeconds: 40 * DAY }],
      });
      const r = await outcome<ShareImageResult>(handle);
      return { ...r, moved };
    });
    await saveHistory(o, 'share-image-expiry-extended-by-update');

    const r = succeeded(o);
    assert.equal(r.expiresAt, o.moved.expiresAt);
    const shared = ms(r.withdrawnAt) - ms(r.sharedAt);
    assert.ok(
      shared >= 40 * DAY * 1000 && shared < 40 * DAY * 1000 + 60_000,
      `shared for ${shared / 86_400_000} days`,
    );
    assert.equal(log.count('removeLaunchPermissions'), 1);
  });

  void it('GIVEN a 30-day share in place WHEN an update brings the end to now THEN it is withdrawn at once', async () => {
    const log = new ActivityLog();
    const o = await withShareWorker(log, shareCopyActivities(), async (tq) => {
      const handle = await heldShare(tq, 30);
      await handle.executeUpdate(setShareExpiryUpdate, { args: [{ expiresInSeconds: 0 }] });
      return outcome<ShareImageResult>(handle);
    });
    await saveHistory(o, 'share-image-expiry-ended-by-update');

    const r = succeeded(o);
    assert.ok(ms(r.withdrawnAt) - ms(r.sharedAt) < 60_000);
    assertCalls(log, [
      'describeImageForSharing',
      'describeImageForSharing',
      'addSnapshotPermissions',
      'addLaunchPermissions',
      'removeLaunchPermissions',
      'removeSnapshotPermissions',
    ]);
  });

  void it('GIVEN a time-limited share in place WHEN the run is cancelled THEN compensation withdraws what it added and it ends cancelled', async () => {
    const log = new ActivityLog();
    const o = await withShareWorker(
      log,
      shareCopyActivities({ encryption: 'customer-managed-key' }),
      async (tq) => {
        const handle = await heldShare(tq, 7);
        await handle.cancel();
        return outcome<ShareImageResult>(handle);
      },
    );
    await saveHistory(o, 'share-image-cancelled');

    assertWorkflowCancelled(failed(o));
    assert.deepEqual(
      o.progress.compensations.map((c) => [c.name, c.state]),
      [
        ['release permissions held through the share ledger', 'done'],
        [`revoke grants on ${CMK_ARN}`, 'done'],
      ],
    );
    assert.equal(log.count('removeLaunchPermissions') + log.count('removeSnapshotPermissions'), 2);
    assert.equal(o.progress.phase, 'cancelled');
  });
});

void describe('shareImage failures and encryption', () => {
  void it('GIVEN an aws/ebs-encrypted image and no reencryptWith WHEN shared THEN AwsManagedKeyNotShareable with its message, and nothing is added', async () => {
    const log = new ActivityLog();
    const o = await runShare(log, shareCopyActivities({ encryption: 'aws-managed-key' }), shareInput());
    await saveHistory(o, 'share-image-aws-managed-key-refused');

    const cause = assertActivityFailure(failed(o), {
      activityType: 'describeImageForSharing',
      local: true,
      type: FailureType.AwsManagedKeyNotShareable,
    });
    assert.equal(
      cause.message,
      `AMI ${SOURCE_IMAGE} is encrypted with the AWS managed key aws/ebs, which cannot be shared; copy it with a customer managed key (reencryptWith / --reencrypt-with)`,
    );
    assert.equal(log.inputs('describeImageForSharing')[0]?.refuseAwsManagedKey, true);
    assertCalls(log, ['describeImageForSharing']);
  });

  void it('GIVEN an aws/ebs-encrypted image and reencryptWith a CMK WHEN shared THEN it is copied under the CMK in its region and the copy is shared, with grants on the CMK', async () => {
    const log = new ActivityLog();
    const o = await runShare(
      log,
      shareCopyActivities({ encryption: 'aws-managed-key' }),
      shareInput({ reencryptWith: REENCRYPT_KEY }),
    );
    await saveHistory(o, 'share-image-reencrypted');

    const r = succeeded(o);
    assert.equal(r.sharedImageId, REENCRYPTED_IMAGE);
    assert.equal(r.reencryptedCopy?.imageId, REENCRYPTED_IMAGE);
    assertCalls(log, [
      'describeImageForSharing',
      'checkKmsKey',
      'copyImage',
      'waitForImageAvailable',
      'tagSnapshots',
      'describeImageForSharing',
      'grantKeyAccess',
      'describeImageForSharing',
      'addSnapshotPermissions',
      'addLaunchPermissions',
    ]);
    const copy = log.inputs('copyImage')[0];
    assert.deepEqual(
      [copy?.destination, copy?.kmsKeyId, copy?.purpose],
      [{ region: 'eu-west-1', accountId: OWNER }, REENCRYPT_KEY, 'reencrypt'],
    );
    assert.equal(log.inputs('addLaunchPermissions')[0]?.imageId, REENCRYPTED_IMAGE);
  });

  void it("GIVEN the launch permission step fails WHEN shared THEN the undos run newest first, that step's own included (its call may have landed): launch, create-volume permissions, then grants", async () => {
    const log = new ActivityLog();
    const activities = failing(
      shareCopyActivities({ encryption: 'customer-managed-key' }),
      'addLaunchPermissions',
      FailureType.AwsPolicyRefused,
    );
    const o = await runShare(log, activities, shareInput());
    // The first name holds the run from before 'share-permissions-as-activities' (local activities);
    // keep it when re-recording, so runs open from then still replay.
    await saveHistory(o, 'share-image-launch-permission-activity-failed');

    // The share ledger ran the step: it let go of what the failed request held, and the share
    // fails with AWS's refusal, then revokes its grants.
    assertRefused(o, FailureType.AwsPolicyRefused);
    assertCalls(log, CMK_SHARE_THEN_UNDO);
    assert.deepEqual(
      o.progress.compensations.map((c) => c.name),
      ['release permissions held through the share ledger', `revoke grants on ${CMK_ARN}`],
    );
    assert.deepEqual(log.inputs('removeLaunchPermissions')[0]?.permissions, [
      { userId: ACCOUNT_A },
      { userId: ACCOUNT_B },
    ]);
  });

  void it('GIVEN a CMK-encrypted image and an organization target WHEN shared with grants THEN KmsGrantNeedsAccounts with the key-policy statements, before anything is added', async () => {
    const log = new ActivityLog();
    const org = 'arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5';
    const o = await withShareWorker(
      log,
      shareCopyActivities({ encryption: 'customer-managed-key' }),
      async (tq) =>
        outcome(
          await start(
            env,
            'shareImage',
            tq,
            shareInput({ allowCopy: false, targets: { organizationArns: [org] } }),
          ),
        ),
    );

    assertRefused(o, FailureType.KmsGrantNeedsAccounts, /kmsAccess 'key-policy'/);
    assertCalls(log, ['describeImageForSharing']);
  });

  void it("GIVEN the image owner's own account among the targets (found only at run time) WHEN shared THEN InvalidInput naming the field", async () => {
    const log = new ActivityLog();
    const { accountId: _owner, ...noOwner } = shareInput();
    const o = await runShare(log, shareCopyActivities(), {
      ...noOwner,
      targets: { accountIds: [ACCOUNT_A, OWNER] },
    });
    await saveHistory(o, 'share-image-own-account-refused');

    assertRefused(
      o,
      FailureType.InvalidInput,
      /targets\.accountIds\[1\]: 111122223333 is the image's own account/,
    );
    assertCalls(log, ['describeImageForSharing']);
  });
});

async function openEndedShare(tq: string, input = shareInput({ targets: { accountIds: [ACCOUNT_B] } })) {
  const handle = await start(env, 'shareImage', tq, input);
  return { workflowId: handle.workflowId, shared: succeeded(await outcome<ShareImageResult>(handle)) };
}

/**
 * An open-ended share of `input` on a worker serving `activities` (with the real readShareRun),
 * then `then` on the same worker: what `then` returned, and every call of the two in `log`.
 */
async function afterOpenShare<T>(
  activities: Activities,
  then: (tq: string, share: Awaited<ReturnType<typeof openEndedShare>>, log: ActivityLog) => Promise<T>,
  input?: ShareImageInput,
): Promise<{ o: T; log: ActivityLog }> {
  const log = new ActivityLog();
  const o = await withShareWorker(log, withReadShareRun(env, activities), async (tq) =>
    then(tq, await openEndedShare(tq, input), log),
  );
  return { o, log };
}

void describe('unshareImage', () => {
  void it('GIVEN an open-ended share run WHEN unshared by its workflow id THEN exactly what the run added is withdrawn, read from its own result, and the re-encrypted copy kept unless asked', async () => {
    const { o, log } = await afterOpenShare(
      shareCopyActivities({ encryption: 'customer-managed-key' }),
      async (tq, { workflowId, shared }) => ({
        shared,
        un: await unshare(env, tq, { shareWorkflowId: workflowId }),
      }),
    );

    await saveHistory(o.un, 'unshare-image');
    const r = succeeded(o.un);
    assert.deepEqual(r.withdrawn, o.shared.added);
    assert.deepEqual(log.inputs('removeLaunchPermissions')[0]?.permissions, [{ userId: ACCOUNT_B }]);
    assert.deepEqual(
      log.inputs('revokeKeyGrants')[0]?.grantNames,
      o.shared.added.grants.map((g) => g.grantName),
    );
    assert.equal(log.count('deleteImage') + log.count('retireImage'), 0);
    assert.equal(stepStates(o.un.progress)['read share run'], 'done');
    assert.equal(stepStates(o.un.progress)['delete re-encrypted copy'], 'skipped');
  });

  void it("GIVEN a forged record naming another account's permission and a grant not made by amiflow WHEN unshared with a real share run THEN refused, nothing withdrawn", async () => {
    const { o, log } = await afterOpenShare(
      shareCopyActivities({ encryption: 'customer-managed-key' }),
      async (tq, { workflowId, shared }) => {
        const forged = {
          image: shared.image,
          sharedImageId: shared.sharedImageId,
          added: {
            launchPermissions: [{ userId: ACCOUNT_A }],
            snapshotPermissions: [{ snapshotId: SOURCE_SNAPSHOTS[0], userIds: [ACCOUNT_A] }],
            grants: [
              { keyArn: CMK_ARN, granteeAccountId: ACCOUNT_A, grantId: 'g-1', grantName: 'their-grant' },
            ],
          },
        };
        return unshare(env, tq, { shareWorkflowId: workflowId, share: forged });
      },
    );

    assertRefused(o, FailureType.ShareRunRefused, /differs from the run's own in added/);
    assert.equal(log.count('removeLaunchPermissions'), 0);
    assert.equal(log.count('removeSnapshotPermissions'), 0);
    assert.equal(log.count('revokeKeyGrants'), 0);
  });

  void it('GIVEN only a hand-written record and no share run WHEN unshared THEN refused as invalid input before any activity', async () => {
    const { o, log } = await afterOpenShare(shareCopyActivities(), (tq, { shared }, calls) => {
      calls.calls.length = 0;
      return unshare(env, tq, { share: shared });
    });

    assertRefused(o, FailureType.InvalidInput, /shareWorkflowId: is required/);
    assertCalls(log, []);
  });

  void it('GIVEN the id of a run that is not a share WHEN unshared THEN refused, nothing withdrawn', async () => {
    const { o, log } = await afterOpenShare(shareCopyActivities(), async (tq, { workflowId }, calls) => {
      const first = await unshare(env, tq, { shareWorkflowId: workflowId });
      assert.ok(succeeded(first).withdrawn.launchPermissions.length > 0);
      calls.calls.length = 0;
      return unshare(env, tq, { shareWorkflowId: first.workflowId });
    });

    assertRefused(o, FailureType.ShareRunRefused, /is a unshareImage run, not a shareImage run/);
    assertCalls(log, ['readShareRun']);
  });

  void it("GIVEN a re-encrypted share whose copy an instance uses WHEN unshared with deleteReencryptedCopy THEN the copy goes through the retirement checks with the run's tags and is kept", async () => {
    const activities: Activities = {
      ...shareCopyActivities({ encryption: 'aws-managed-key' }),
      retireImage: (input) =>
        Promise.resolve({
          imageId: input.imageId,
          deregistered: false,
          deletedSnapshotIds: [],
          references: [`arn:aws:ec2:eu-west-1:${OWNER}:instance/i-0123456789abcdef0`],
        }),
    };
    const { o, log } = await afterOpenShare(
      activities,
      async (tq, { workflowId, shared }) => ({
        shared,
        un: await unshare(env, tq, { shareWorkflowId: workflowId, deleteReencryptedCopy: true }),
      }),
      shareInput({ targets: { accountIds: [ACCOUNT_B] }, reencryptWith: REENCRYPT_KEY }),
    );

    const r = succeeded(o.un);
    const copy = o.shared.reencryptedCopy;
    assert.ok(copy);
    assert.equal(log.count('deleteImage'), 0);
    const retire = log.inputs('retireImage')[0];
    assert.equal(retire?.imageId, REENCRYPTED_IMAGE);
    assert.deepEqual(retire?.requiredTags, {
      'amiflow:managed-by': 'amiflow',
      'amiflow:workflow-id': copy.workflowId,
      'amiflow:run-id': copy.runId,
    });
    assert.equal(retire?.honourProtection, true);
    assert.equal(retire?.keepApproved, true);
    assert.equal(r.deletedReencryptedCopy, undefined);
    assert.deepEqual(r.keptReencryptedCopy?.imageId, REENCRYPTED_IMAGE);
    assert.match(r.keptReencryptedCopy?.because.join(' ') ?? '', /instance\/i-0123456789abcdef0/);
  });
});
