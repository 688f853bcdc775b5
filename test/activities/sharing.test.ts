/**
 * activities/sharing.ts at the SDK level: what a share reads first (owner, state, snapshots, keys,
 * permissions already there), the aws/ebs refusal and its message, launch permissions for accounts,
 * organizations and OUs exactly as EC2 takes them, create-volume permissions, and withdrawal that
 * tolerates what is gone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as EC2 from '@aws-sdk/client-ec2';
import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import { FailureType } from '../../workflows/contracts';
import { awsError, errorOf, nonRetryableFailure } from './failures';
import { ACCOUNT, IMAGE_ID, REGION, SNAPSHOTS, TARGET, image } from './fixtures';
import { activityEnv, commandNames, harness } from './harness';

const ORG = 'arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5';
const OU = 'arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-cdef3456';
const OTHER = '444455556666';
const CMK = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const AWS_EBS = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0000aaaa-00aa-00aa-00aa-000000000000`;

function owned(extra = {}) {
  return image('available', { OwnerId: ACCOUNT, ...extra });
}

/** The reads of a share, for an image whose snapshots are encrypted with `keyArn` (or not at all). */
function sharingReads(
  h: ReturnType<typeof harness>,
  keyArn?: string,
  keyManager: 'AWS' | 'CUSTOMER' = 'CUSTOMER',
) {
  h.ec2Mock
    .on(EC2.DescribeImagesCommand, { ImageIds: [IMAGE_ID], Owners: ['self'] })
    .resolves({ Images: [owned()] });
  h.ec2Mock.on(EC2.DescribeSnapshotsCommand, { SnapshotIds: [...SNAPSHOTS] }).resolves({
    Snapshots: SNAPSHOTS.map((id) => ({
      SnapshotId: id,
      Encrypted: keyArn !== undefined,
      ...(keyArn ? { KmsKeyId: keyArn } : {}),
    })),
  });
  h.ec2Mock
    .on(EC2.DescribeImageAttributeCommand, { ImageId: IMAGE_ID, Attribute: 'launchPermission' })
    .resolves({ LaunchPermissions: [{ UserId: OTHER }, { OrganizationArn: ORG }] });
  h.ec2Mock
    .on(EC2.DescribeSnapshotAttributeCommand, { SnapshotId: SNAPSHOTS[0] })
    .resolves({ CreateVolumePermissions: [{ UserId: OTHER }] });
  h.ec2Mock
    .on(EC2.DescribeSnapshotAttributeCommand, { SnapshotId: SNAPSHOTS[1] })
    .resolves({ CreateVolumePermissions: [] });
  if (keyArn)
    h.kmsMock.on(DescribeKeyCommand, { KeyId: keyArn }).resolves({
      KeyMetadata: {
        KeyId: keyArn.split('/').pop(),
        Arn: keyArn,
        AWSAccountId: ACCOUNT,
        KeyManager: keyManager,
        KeyState: 'Enabled',
        Enabled: true,
      },
    });
}

void describe('describeImageForSharing', () => {
  void it('GIVEN an unencrypted image with permissions already in place WHEN described THEN they are read once, and no KMS call is made', async () => {
    const h = harness();
    sharingReads(h);

    const out = await activityEnv().run(h.activities.describeImageForSharing, {
      target: TARGET,
      imageId: IMAGE_ID,
    });

    assert.equal(out.encryption, 'unencrypted');
    assert.equal(out.ownerId, ACCOUNT);
    assert.deepEqual(out.launchPermissions, [{ userId: OTHER }, { organizationArn: ORG }]);
    assert.deepEqual(out.snapshotPermissions, [
      { snapshotId: SNAPSHOTS[0], userIds: [OTHER] },
      { snapshotId: SNAPSHOTS[1], userIds: [] },
    ]);
    assert.deepEqual(commandNames(h.ec2Mock), [
      'DescribeImages',
      'DescribeSnapshots',
      'DescribeImageAttribute',
      'DescribeSnapshotAttribute',
      'DescribeSnapshotAttribute',
    ]);
    assert.equal(h.kmsMock.calls().length, 0);
  });

  void it('GIVEN snapshots under a customer managed key WHEN described THEN the key is read in the image account and region and the image is customer-managed-key', async () => {
    const h = harness();
    sharingReads(h, CMK);

    const out = await activityEnv().run(h.activities.describeImageForSharing, {
      target: TARGET,
      imageId: IMAGE_ID,
      refuseAwsManagedKey: true,
    });

    assert.equal(out.encryption, 'customer-managed-key');
    assert.deepEqual(
      out.keys.map((k) => [k.keyArn, k.keyManager]),
      [[CMK, 'CUSTOMER']],
    );
    assert.equal(h.kmsMock.commandCalls(DescribeKeyCommand).length, 1, 'one DescribeKey per distinct key');
    assert.deepEqual(h.kmsTargets, [TARGET]);
  });

  void it('GIVEN snapshots under the AWS managed key aws/ebs WHEN a share describes it THEN AwsManagedKeyNotShareable, non-retryable, saying why and how to fix it', async () => {
    const h = harness();
    sharingReads(h, AWS_EBS, 'AWS');

    const err = await nonRetryableFailure(
      activityEnv().run(h.activities.describeImageForSharing, {
        target: TARGET,
        imageId: IMAGE_ID,
        refuseAwsManagedKey: true,
      }),
      FailureType.AwsManagedKeyNotShareable,
    );

    assert.equal(
      err.message,
      `AMI ${IMAGE_ID} is encrypted with the AWS managed key aws/ebs, which cannot be shared; ` +
        'copy it with a customer managed key (reencryptWith / --reencrypt-with)',
    );
    assert.equal(
      h.ec2Mock.commandCalls(EC2.DescribeImageAttributeCommand).length,
      0,
      'refused before reading permissions',
    );
  });

  void it('GIVEN aws/ebs and a share that re-encrypts first WHEN described THEN it is reported, not refused', async () => {
    const h = harness();
    sharingReads(h, AWS_EBS, 'AWS');

    const out = await activityEnv().run(h.activities.describeImageForSharing, {
      target: TARGET,
      imageId: IMAGE_ID,
    });

    assert.equal(out.encryption, 'aws-managed-key');
  });

  void it('GIVEN an image another account owns WHEN described THEN ImageNotOwned naming the owner', async () => {
    const h = harness();
    // DescribeImages with Owners=self does not list it; without, it is visible (shared with us).
    h.ec2Mock.on(EC2.DescribeImagesCommand).callsFake((input: { Owners?: string[] }) => ({
      Images: input.Owners ? [] : [owned({ OwnerId: OTHER })],
    }));

    await nonRetryableFailure(
      activityEnv().run(h.activities.describeImageForSharing, {
        target: { region: REGION },
        imageId: IMAGE_ID,
      }),
      FailureType.ImageNotOwned,
      `belongs to account ${OTHER}`,
      `set accountId to ${OTHER}`,
    );
  });

  void it('GIVEN no such image WHEN described THEN ImageNotFound', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', 400));

    await nonRetryableFailure(
      activityEnv().run(h.activities.describeImageForSharing, { target: TARGET, imageId: IMAGE_ID }),
      FailureType.ImageNotFound,
      IMAGE_ID,
    );
  });

  void it('GIVEN a pending image WHEN described THEN ImageNotAvailable', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeImagesCommand).resolves({ Images: [image('pending', { OwnerId: ACCOUNT })] });

    await nonRetryableFailure(
      activityEnv().run(h.activities.describeImageForSharing, { target: TARGET, imageId: IMAGE_ID }),
      FailureType.ImageNotAvailable,
      "is 'pending'",
    );
  });
});

void describe('launch permissions', () => {
  void it('GIVEN an account, an organization and an OU WHEN added THEN one ModifyImageAttribute with exactly those three launch permissions', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.ModifyImageAttributeCommand).resolves({});

    await activityEnv().run(h.activities.addLaunchPermissions, {
      target: TARGET,
      imageId: IMAGE_ID,
      permissions: [{ userId: OTHER }, { organizationArn: ORG }, { organizationalUnitArn: OU }],
    });

    assert.deepEqual(
      h.ec2Mock.commandCalls(EC2.ModifyImageAttributeCommand).map((c) => c.args[0].input),
      [
        {
          ImageId: IMAGE_ID,
          LaunchPermission: {
            Add: [{ UserId: OTHER }, { OrganizationArn: ORG }, { OrganizationalUnitArn: OU }],
          },
        },
      ],
    );
  });

  void it('GIVEN block public access for AMIs is on WHEN the image is made public THEN AwsPolicyRefused with that reason, and nothing shared', async () => {
    const h = harness();
    h.ec2Mock
      .on(EC2.GetImageBlockPublicAccessStateCommand)
      .resolves({ ImageBlockPublicAccessState: 'block-new-sharing' });

    await nonRetryableFailure(
      activityEnv().run(h.activities.addLaunchPermissions, {
        target: TARGET,
        imageId: IMAGE_ID,
        permissions: [{ userId: OTHER }, { group: 'all' }],
      }),
      FailureType.AwsPolicyRefused,
      'block public access for AMIs is on (block-new-sharing)',
      REGION,
    );
    assert.equal(h.ec2Mock.commandCalls(EC2.ModifyImageAttributeCommand).length, 0);
  });

  void it('GIVEN block public access is off WHEN the image is made public THEN its state is read, then the image shared', async () => {
    const h = harness();
    h.ec2Mock
      .on(EC2.GetImageBlockPublicAccessStateCommand)
      .resolves({ ImageBlockPublicAccessState: 'unblocked' });
    h.ec2Mock.on(EC2.ModifyImageAttributeCommand).resolves({});

    const out = await activityEnv().run(h.activities.addLaunchPermissions, {
      target: TARGET,
      imageId: IMAGE_ID,
      permissions: [{ group: 'all' }],
    });

    assert.deepEqual(commandNames(h.ec2Mock), ['GetImageBlockPublicAccessState', 'ModifyImageAttribute']);
    assert.equal(out.calls, 2);
  });

  void it('GIVEN the permissions a share added WHEN withdrawn THEN exactly those are removed', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.ModifyImageAttributeCommand).resolves({});

    const out = await activityEnv().run(h.activities.removeLaunchPermissions, {
      target: TARGET,
      imageId: IMAGE_ID,
      permissions: [{ organizationalUnitArn: OU }],
    });

    assert.deepEqual(out, { calls: 1, gone: [] });
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.ModifyImageAttributeCommand)[0]?.args[0].input, {
      ImageId: IMAGE_ID,
      LaunchPermission: { Remove: [{ OrganizationalUnitArn: OU }] },
    });
  });

  void it('GIVEN the image was deregistered meanwhile WHEN withdrawn THEN nothing is left to withdraw: success, reported gone', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.ModifyImageAttributeCommand).rejects(awsError('InvalidAMIID.NotFound', 400));

    const out = await activityEnv().run(h.activities.removeLaunchPermissions, {
      target: TARGET,
      imageId: IMAGE_ID,
      permissions: [{ userId: OTHER }],
    });

    assert.deepEqual(out, { calls: 1, gone: [IMAGE_ID] });
  });

  void it('GIVEN nothing to add WHEN added THEN no call', async () => {
    const h = harness();
    await activityEnv().run(h.activities.addLaunchPermissions, {
      target: TARGET,
      imageId: IMAGE_ID,
      permissions: [],
    });
    assert.equal(h.ec2Mock.calls().length, 0);
  });

  void it('GIVEN throttling WHEN adding THEN the SDK error is rethrown as is (Temporal retries it); an unknown organization is non-retryable', async () => {
    const h = harness();
    const throttled = awsError('RequestLimitExceeded', 503);
    h.ec2Mock
      .on(EC2.ModifyImageAttributeCommand)
      .rejectsOnce(throttled)
      .rejects(awsError('InvalidAMIAttributeItemValue', 400));
    const input = { target: TARGET, imageId: IMAGE_ID, permissions: [{ organizationArn: ORG }] };

    assert.equal(await errorOf(activityEnv().run(h.activities.addLaunchPermissions, input)), throttled);
    await nonRetryableFailure(
      activityEnv().run(h.activities.addLaunchPermissions, input),
      FailureType.AwsMalformedRequest,
      'InvalidAMIAttributeItemValue',
    );
  });
});

void describe('snapshot create-volume permissions', () => {
  void it('GIVEN accounts to let copy WHEN added THEN one ModifySnapshotAttribute add per snapshot with exactly those accounts', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.ModifySnapshotAttributeCommand).resolves({});

    const out = await activityEnv().run(h.activities.addSnapshotPermissions, {
      target: TARGET,
      permissions: [
        { snapshotId: SNAPSHOTS[0], userIds: ['555566667777'] },
        { snapshotId: SNAPSHOTS[1], userIds: [OTHER, '555566667777'] },
      ],
    });

    assert.equal(out.calls, 2);
    assert.deepEqual(
      h.ec2Mock.commandCalls(EC2.ModifySnapshotAttributeCommand).map((c) => c.args[0].input),
      [
        {
          SnapshotId: SNAPSHOTS[0],
          Attribute: 'createVolumePermission',
          OperationType: 'add',
          UserIds: ['555566667777'],
        },
        {
          SnapshotId: SNAPSHOTS[1],
          Attribute: 'createVolumePermission',
          OperationType: 'add',
          UserIds: [OTHER, '555566667777'],
        },
      ],
    );
  });

  void it('GIVEN one snapshot deleted meanwhile WHEN withdrawn THEN the other is withdrawn and the gone one reported', async () => {
    const h = harness();
    h.ec2Mock
      .on(EC2.ModifySnapshotAttributeCommand, { SnapshotId: SNAPSHOTS[0] })
      .rejects(awsError('InvalidSnapshot.NotFound', 400));
    h.ec2Mock.on(EC2.ModifySnapshotAttributeCommand, { SnapshotId: SNAPSHOTS[1] }).resolves({});

    const out = await activityEnv().run(h.activities.removeSnapshotPermissions, {
      target: TARGET,
      permissions: [
        { snapshotId: SNAPSHOTS[0], userIds: [OTHER] },
        { snapshotId: SNAPSHOTS[1], userIds: [OTHER] },
      ],
    });

    assert.deepEqual(out, { calls: 2, gone: [SNAPSHOTS[0]] });
    assert.equal(
      h.ec2Mock.commandCalls(EC2.ModifySnapshotAttributeCommand)[1]?.args[0].input.OperationType,
      'remove',
    );
  });
});
