/**
 * Fake activities for shareImage / copyImage, typed against the real activity signatures and built
 * on `unplannedActivities()` (anything not planned fails loudly): an image, its snapshots and keys
 * as a scenario describes them, permissions and grants that succeed, copies with ids derived from
 * their destination. Used by the workflow tests and by the share/copy benchmark.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityDeps, Activities } from '../activities';
import { createActivities } from '../activities';
import type { KeyInfo } from '../activities/kms';
import type { ShareableImage } from '../activities/sharing';
import type {
  AwsTarget,
  CopyImageInput,
  ImageEncryption,
  LaunchPermissionEntry,
  ShareImageInput,
} from '../contracts';
import { FailureType, shareGrantName } from '../contracts';

/**
 * Every activity the worker registers, each failing at once (non-retryable) with its name: the
 * base of every stub set, so that an activity a test did not plan for fails loudly, and adding an
 * activity to createActivities does not break the stubs of other workflows. The names come from the
 * real factory (it only builds closures; nothing runs).
 */
export function unplannedActivities(): Activities {
  const names = Object.keys(createActivities({} as ActivityDeps));
  return Object.fromEntries(
    names.map((name) => [
      name,
      () => {
        throw ApplicationFailure.nonRetryable(`activity ${name} was not planned for in this test`);
      },
    ]),
  ) as unknown as Activities;
}

export const OWNER = '111122223333';
export const REGION = 'eu-west-1';
export const SOURCE_IMAGE = 'ami-0aaaabbbbccccdddd';
export const SOURCE_SNAPSHOTS = ['snap-0aaaaaaaaaaaaaaa1', 'snap-0aaaaaaaaaaaaaaa2'];
export const CMK_ARN = `arn:aws:kms:${REGION}:${OWNER}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
export const AWS_EBS_ARN = `arn:aws:kms:${REGION}:${OWNER}:key/0000aaaa-00aa-00aa-00aa-000000000000`;
export const REENCRYPT_KEY = `arn:aws:kms:${REGION}:${OWNER}:key/9999ffff-99ff-99ff-99ff-999999999999`;
export const REENCRYPTED_IMAGE = 'ami-0eeeeeeeeeeeeeee1';
export const ACCOUNT_A = '444455556666';
export const ACCOUNT_B = '555566667777';
export const DAY = 24 * 3600;

export interface ImageScenario {
  encryption?: ImageEncryption;
  /** Launch permissions the image has before the share. */
  launchPermissions?: LaunchPermissionEntry[];
  /** Accounts that may already create volumes from every snapshot. */
  snapshotUserIds?: string[];
}

function key(keyArn: string, keyManager: 'AWS' | 'CUSTOMER'): KeyInfo {
  return {
    keyArn,
    keyId: keyArn.split('/').pop() ?? keyArn,
    accountId: OWNER,
    keyManager,
    keyState: 'Enabled',
    enabled: true,
  };
}

function shareable(imageId: string, s: ImageScenario): ShareableImage {
  const encryption = s.encryption ?? 'unencrypted';
  const keyArn = encryption === 'aws-managed-key' ? AWS_EBS_ARN : CMK_ARN;
  const snapshots = (imageId === SOURCE_IMAGE ? SOURCE_SNAPSHOTS : [`snap-0${imageId.slice(5)}`]).map(
    (snapshotId) => ({
      snapshotId,
      encrypted: encryption !== 'unencrypted',
      ...(encryption !== 'unencrypted' ? { kmsKeyId: keyArn } : {}),
    }),
  );
  return {
    imageId,
    imageName: imageId === SOURCE_IMAGE ? 'web-2026-01-01' : 'web-2026-01-01 reencrypted',
    ownerId: OWNER,
    snapshots,
    keys:
      encryption === 'unencrypted'
        ? []
        : [key(keyArn, encryption === 'aws-managed-key' ? 'AWS' : 'CUSTOMER')],
    encryption,
    launchPermissions: s.launchPermissions ?? [],
    snapshotPermissions: snapshots.map((x) => ({
      snapshotId: x.snapshotId,
      userIds: s.snapshotUserIds ?? [],
    })),
    publicSnapshotIds: [],
  };
}

/** The id of the copy made in a destination: stable, so tests can name it. */
export function copyIdFor(target: AwsTarget): string {
  const seed = `${target.accountId ?? OWNER}/${target.region}`;
  let h = 0;
  for (const c of seed) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `ami-0${h.toString(16).padStart(8, '0')}${'c'.repeat(8)}`;
}

/** Activities for shareImage and copyImage that all succeed, as AWS would answer. */
export function shareCopyActivities(scenario: ImageScenario = {}): Activities {
  return {
    ...unplannedActivities(),
    describeImageForSharing: (input) => {
      if (input.refuseAwsManagedKey && scenario.encryption === 'aws-managed-key')
        throw ApplicationFailure.create({
          type: FailureType.AwsManagedKeyNotShareable,
          nonRetryable: true,
          message: `AMI ${input.imageId} is encrypted with the AWS managed key aws/ebs, which cannot be shared; copy it with a customer managed key (reencryptWith / --reencrypt-with)`,
        });
      // The re-encrypted copy is under the customer managed key, with no permissions yet.
      return Promise.resolve(
        input.imageId === SOURCE_IMAGE
          ? shareable(input.imageId, scenario)
          : shareable(input.imageId, { encryption: 'customer-managed-key' }),
      );
    },
    describeCopySource: (input) =>
      Promise.resolve({
        imageId: input.imageId,
        imageName: 'web-2026-01-01',
        ownerId: OWNER,
        encrypted: (scenario.encryption ?? 'unencrypted') !== 'unencrypted',
        snapshotIds: SOURCE_SNAPSHOTS,
        userTags: { team: 'web' },
      }),
    checkKmsKey: (input) => Promise.resolve(key(input.keyId, 'CUSTOMER')),
    grantKeyAccess: (input) =>
      Promise.resolve(
        input.accountIds.map((a) => ({
          keyArn: input.keyArn,
          granteeAccountId: a,
          grantId: `grant-${a}`,
          grantName: shareGrantName(input.runId, a),
        })),
      ),
    revokeKeyGrants: (input) => Promise.resolve({ revoked: input.grantNames, absent: [] }),
    addLaunchPermissions: (input) => Promise.resolve({ calls: input.permissions.length ? 1 : 0, gone: [] }),
    removeLaunchPermissions: (input) =>
      Promise.resolve({ calls: input.permissions.length ? 1 : 0, gone: [] }),
    addSnapshotPermissions: (input) => Promise.resolve({ calls: input.permissions.length, gone: [] }),
    removeSnapshotPermissions: (input) => Promise.resolve({ calls: input.permissions.length, gone: [] }),
    copyImage: (input) =>
      Promise.resolve({
        imageId: input.purpose === 'reencrypt' ? REENCRYPTED_IMAGE : copyIdFor(input.destination),
        created: true,
        clientToken: `token-${input.destination.region}`,
        awsCalls: 3,
      }),
    waitForImageAvailable: (input) =>
      Promise.resolve({
        imageId: input.imageId,
        snapshotIds: [`snap-0${input.imageId.slice(5)}`],
        awsCalls: 4,
        polls: 4,
        heartbeats: 1,
      }),
    tagSnapshots: (input) => Promise.resolve({ snapshotIds: [`snap-0${input.imageId.slice(5)}`] }),
    deleteImage: (input) =>
      Promise.resolve({
        ...(input.imageId ? { imageId: input.imageId } : {}),
        deregistered: input.imageId !== undefined,
        deletedSnapshotIds: input.imageId ? [`snap-0${input.imageId.slice(5)}`] : [],
      }),
  };
}

export function shareInput(overrides: Partial<ShareImageInput> = {}): ShareImageInput {
  return {
    region: REGION,
    accountId: OWNER,
    imageId: SOURCE_IMAGE,
    targets: { accountIds: [ACCOUNT_A, ACCOUNT_B] },
    allowCopy: true,
    ...overrides,
  };
}

/** Five destinations: three regions of the source account, two other accounts. */
export function copyInput(overrides: Partial<CopyImageInput> = {}): CopyImageInput {
  return {
    region: REGION,
    accountId: OWNER,
    imageId: SOURCE_IMAGE,
    destinations: [
      { region: 'eu-central-1' },
      { region: 'us-east-1' },
      { region: 'us-west-2' },
      { region: 'ap-southeast-2', accountId: ACCOUNT_A, kmsKeyId: 'alias/copies' },
      { region: 'eu-north-1', accountId: ACCOUNT_B },
    ],
    tags: { purpose: 'dr' },
    ...overrides,
  };
}
