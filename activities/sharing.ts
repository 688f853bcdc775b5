/**
 * Sharing an AMI: read the image, its snapshots, their keys and the permissions already there (so a
 * share records only what it adds), then add or remove launch permissions (accounts, organizations,
 * OUs) and snapshot create-volume permissions. Adding and removing are idempotent in EC2 itself:
 * adding a permission that is there, or removing one that is not, changes nothing.
 */
import type { EC2Client, Image, LaunchPermission } from '@aws-sdk/client-ec2';
import {
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  GetImageBlockPublicAccessStateCommand,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
} from '@aws-sdk/client-ec2';
import type {
  AwsTarget,
  ImageEncryption,
  LaunchPermissionEntry,
  SnapshotPermissionEntry,
  Tags,
} from '../contracts';
import { FailureType, RESERVED_TAG_PREFIXES } from '../contracts';
import type { ActivityDeps } from './deps';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { snapshotIdsOf } from './images';
import type { KeyInfo } from './kms';
import { describeKey } from './kms';

export interface ImageLookup {
  target: AwsTarget;
  imageId: string;
}

export interface SharingLookup extends ImageLookup {
  /**
   * Refuse an image encrypted with the AWS managed key (aws/ebs), which cannot be shared: set unless
   * the share re-encrypts the image under a customer managed key first.
   */
  refuseAwsManagedKey?: boolean;
}

export interface SnapshotInfo {
  snapshotId: string;
  encrypted: boolean;
  kmsKeyId?: string;
}

export interface ShareableImage {
  imageId: string;
  imageName: string;
  ownerId: string;
  snapshots: SnapshotInfo[];
  /** The distinct keys the snapshots are encrypted with. */
  keys: KeyInfo[];
  encryption: ImageEncryption;
  launchPermissions: LaunchPermissionEntry[];
  /** Accounts that may already create volumes from each snapshot. */
  snapshotPermissions: SnapshotPermissionEntry[];
  /** Snapshots anyone may create volumes from already (create-volume permission `Group=all`). */
  publicSnapshotIds: string[];
}

export interface LaunchPermissionsInput {
  target: AwsTarget;
  imageId: string;
  permissions: LaunchPermissionEntry[];
}

export interface SnapshotPermissionsInput {
  target: AwsTarget;
  permissions: SnapshotPermissionEntry[];
}

export interface PermissionsChanged {
  /** ModifyImageAttribute / ModifySnapshotAttribute calls made. */
  calls: number;
  /** Resources that no longer exist (nothing to withdraw there). */
  gone: string[];
}

export function toLaunchPermission(p: LaunchPermissionEntry): LaunchPermission {
  if (p.userId) return { UserId: p.userId };
  if (p.organizationArn) return { OrganizationArn: p.organizationArn };
  if (p.organizationalUnitArn) return { OrganizationalUnitArn: p.organizationalUnitArn };
  return { Group: 'all' };
}

export function fromLaunchPermission(p: LaunchPermission): LaunchPermissionEntry | undefined {
  if (p.UserId) return { userId: p.UserId };
  if (p.OrganizationArn) return { organizationArn: p.OrganizationArn };
  if (p.OrganizationalUnitArn) return { organizationalUnitArn: p.OrganizationalUnitArn };
  if (p.Group === 'all') return { group: 'all' };
  return undefined;
}

/**
 * Block public access for AMIs (`block-new-sharing`, on by default in new accounts) makes EC2 refuse
 * to make any image public in that region
 * (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/block-public-access-to-amis.html): refused
 * here, before anything is shared, with that reason rather than EC2's bare OperationNotPermitted.
 */
async function refuseIfPublicSharingBlocked(ec2: EC2Client, input: LaunchPermissionsInput): Promise<void> {
  const out = await aws(`reading block public access for AMIs in ${input.target.region}`, () =>
    ec2.send(new GetImageBlockPublicAccessStateCommand({})),
  );
  if (out.ImageBlockPublicAccessState === 'block-new-sharing')
    throw failure(
      FailureType.AwsPolicyRefused,
      `image ${input.imageId} cannot be made public: block public access for AMIs is on (block-new-sharing) in ` +
        `${input.target.region}${input.target.accountId ? ` for account ${input.target.accountId}` : ''}; ` +
        'turn it off there (DisableImageBlockPublicAccess) if the image really must be public, or share with accounts, organizations or OUs',
      { imageBlockPublicAccessState: out.ImageBlockPublicAccessState },
    );
}

/** The image's tags other than AWS's and amiflow's own. */
export function userTagsOf(image: Image): Tags {
  return Object.fromEntries(
    (image.Tags ?? []).flatMap((t) =>
      t.Key && t.Value !== undefined && !RESERVED_TAG_PREFIXES.some((p) => t.Key?.toLowerCase().startsWith(p))
        ? [[t.Key, t.Value]]
        : [],
    ),
  );
}

/**
 * The image, owned by the account asked for. An image only shared with that account cannot be
 * shared on (or copied as its owner would), hence `ImageNotOwned` naming the owner.
 */
export async function ownedImage(ec2: EC2Client, lookup: ImageLookup): Promise<Image> {
  const describe = async (owners?: string[]) => {
    try {
      const out = await ec2.send(
        new DescribeImagesCommand({ ImageIds: [lookup.imageId], ...(owners ? { Owners: owners } : {}) }),
      );
      return out.Images?.find((i) => i.ImageId === lookup.imageId);
    } catch (err) {
      if (isAwsCode(err, 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable')) return undefined;
      rethrowAws(err, `reading image ${lookup.imageId}`);
    }
  };
  const where = `${lookup.target.region}${lookup.target.accountId ? ` (account ${lookup.target.accountId})` : ''}`;
  const image = await describe(['self']);
  if (!image) {
    const visible = await describe();
    if (visible?.OwnerId)
      throw failure(
        FailureType.ImageNotOwned,
        `image ${lookup.imageId} belongs to account ${visible.OwnerId}, not to the account it is used from; ` +
          `only its owner can share or copy it as the source: set accountId to ${visible.OwnerId}`,
        { ownerId: visible.OwnerId },
      );
    throw failure(FailureType.ImageNotFound, `image ${lookup.imageId} not found in ${where}`);
  }
  if (lookup.target.accountId && image.OwnerId && image.OwnerId !== lookup.target.accountId)
    throw failure(
      FailureType.ImageNotOwned,
      `image ${lookup.imageId} belongs to account ${image.OwnerId}, not ${lookup.target.accountId}; ` +
        `only its owner can share or copy it as the source`,
      { ownerId: image.OwnerId },
    );
  if (image.State !== 'available')
    throw failure(
      FailureType.ImageNotAvailable,
      `image ${lookup.imageId} is '${image.State ?? 'unknown'}'; share or copy it once it is available`,
      { state: image.State },
    );
  return image;
}

function encryptionOf(snapshots: SnapshotInfo[], keys: KeyInfo[]): ImageEncryption {
  if (!snapshots.some((s) => s.encrypted)) return 'unencrypted';
  return keys.some((k) => k.keyManager === 'AWS') ? 'aws-managed-key' : 'customer-managed-key';
}

export function sharingActivities(deps: ActivityDeps) {
  return {
    /**
     * Everything a share decides on, read once: owner, state, snapshots and their keys (AWS managed
     * or customer managed), and the launch and create-volume permissions already in place.
     */
    async describeImageForSharing(input: SharingLookup): Promise<ShareableImage> {
      const ec2 = await deps.aws.ec2(input.target);
      const image = await ownedImage(ec2, input);
      const snapshotIds = snapshotIdsOf(image);
      const snapshots: SnapshotInfo[] = [];
      if (snapshotIds.length > 0) {
        const out = await aws(`reading the snapshots of ${input.imageId}`, () =>
          ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds })),
        );
        for (const s of out.Snapshots ?? [])
          if (s.SnapshotId)
            snapshots.push({
              snapshotId: s.SnapshotId,
              encrypted: s.Encrypted === true,
              ...(s.KmsKeyId ? { kmsKeyId: s.KmsKeyId } : {}),
            });
      }
      const keyIds = [...new Set(snapshots.flatMap((s) => (s.encrypted && s.kmsKeyId ? [s.kmsKeyId] : [])))];
      const keys: KeyInfo[] = [];
      if (keyIds.length > 0) {
        const kms = await deps.aws.kms(input.target);
        for (const keyId of keyIds) keys.push(await describeKey(kms, keyId, `snapshots of ${input.imageId}`));
      }
      const awsManaged = keys.find((k) => k.keyManager === 'AWS');
      if (input.refuseAwsManagedKey && awsManaged)
        throw failure(
          FailureType.AwsManagedKeyNotShareable,
          `AMI ${input.imageId} is encrypted with the AWS managed key aws/ebs, which cannot be shared; ` +
            'copy it with a customer managed key (reencryptWith / --reencrypt-with)',
          { keyArn: awsManaged.keyArn },
        );
      const attr = await aws(`reading the launch permissions of ${input.imageId}`, () =>
        ec2.send(
          new DescribeImageAttributeCommand({ ImageId: input.imageId, Attribute: 'launchPermission' }),
        ),
      );
      const launchPermissions = (attr.LaunchPermissions ?? []).flatMap((p) => {
        const e = fromLaunchPermission(p);
        return e ? [e] : [];
      });
      const snapshotPermissions: SnapshotPermissionEntry[] = [];
      const publicSnapshotIds: string[] = [];
      for (const { snapshotId } of snapshots) {
        const out = await aws(`reading the create-volume permissions of ${snapshotId}`, () =>
          ec2.send(
            new DescribeSnapshotAttributeCommand({
              SnapshotId: snapshotId,
              Attribute: 'createVolumePermission',
            }),
          ),
        );
        const perms = out.CreateVolumePermissions ?? [];
        if (perms.some((p) => p.Group === 'all')) publicSnapshotIds.push(snapshotId);
        snapshotPermissions.push({ snapshotId, userIds: perms.flatMap((p) => (p.UserId ? [p.UserId] : [])) });
      }
      return {
        imageId: input.imageId,
        imageName: image.Name ?? '',
        ownerId: image.OwnerId ?? '',
        snapshots,
        keys,
        encryption: encryptionOf(snapshots, keys),
        launchPermissions,
        snapshotPermissions,
        publicSnapshotIds,
      };
    },

    async addLaunchPermissions(input: LaunchPermissionsInput): Promise<PermissionsChanged> {
      if (input.permissions.length === 0) return { calls: 0, gone: [] };
      const ec2 = await deps.aws.ec2(input.target);
      let calls = 1;
      if (input.permissions.some((p) => p.group === 'all')) {
        calls += 1;
        await refuseIfPublicSharingBlocked(ec2, input);
      }
      await aws(`sharing ${input.imageId} (ModifyImageAttribute launchPermission add)`, () =>
        ec2.send(
          new ModifyImageAttributeCommand({
            ImageId: input.imageId,
            LaunchPermission: { Add: input.permissions.map(toLaunchPermission) },
          }),
        ),
      );
      return { calls, gone: [] };
    },

    /** Withdraws exactly these launch permissions; an image that is gone has nothing to withdraw. */
    async removeLaunchPermissions(input: LaunchPermissionsInput): Promise<PermissionsChanged> {
      if (input.permissions.length === 0) return { calls: 0, gone: [] };
      const ec2 = await deps.aws.ec2(input.target);
      try {
        await ec2.send(
          new ModifyImageAttributeCommand({
            ImageId: input.imageId,
            LaunchPermission: { Remove: input.permissions.map(toLaunchPermission) },
          }),
        );
        return { calls: 1, gone: [] };
      } catch (err) {
        if (isAwsCode(err, 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable'))
          return { calls: 1, gone: [input.imageId] };
        rethrowAws(err, `withdrawing launch permissions of ${input.imageId}`);
      }
    },

    async addSnapshotPermissions(input: SnapshotPermissionsInput): Promise<PermissionsChanged> {
      const ec2 = await deps.aws.ec2(input.target);
      let calls = 0;
      for (const p of input.permissions) {
        if (p.userIds.length === 0) continue;
        calls += 1;
        await aws(`letting ${p.userIds.join(', ')} copy ${p.snapshotId} (createVolumePermission add)`, () =>
          ec2.send(
            new ModifySnapshotAttributeCommand({
              SnapshotId: p.snapshotId,
              Attribute: 'createVolumePermission',
              OperationType: 'add',
              UserIds: p.userIds,
            }),
          ),
        );
      }
      return { calls, gone: [] };
    },

    /** Withdraws exactly these create-volume permissions; snapshots that are gone are skipped. */
    async removeSnapshotPermissions(input: SnapshotPermissionsInput): Promise<PermissionsChanged> {
      const ec2 = await deps.aws.ec2(input.target);
      let calls = 0;
      const gone: string[] = [];
      for (const p of input.permissions) {
        if (p.userIds.length === 0) continue;
        calls += 1;
        try {
          await ec2.send(
            new ModifySnapshotAttributeCommand({
              SnapshotId: p.snapshotId,
              Attribute: 'createVolumePermission',
              OperationType: 'remove',
              UserIds: p.userIds,
            }),
          );
        } catch (err) {
          if (isAwsCode(err, 'InvalidSnapshot.NotFound')) gone.push(p.snapshotId);
          else rethrowAws(err, `withdrawing create-volume permissions of ${p.snapshotId}`);
        }
      }
      return { calls, gone };
    },
  };
}
