/**
 * shareImage and unshareImage: launch and create-volume permissions, KMS access, expiry.
 */
import { defineUpdate } from '@temporalio/workflow';
import type { AwsTarget, Tags } from './common';
import { MANAGED_BY_VALUE, TAG } from './common';

/** An AMI: its region, the account that owns it (omitted: the worker's own) and its id. */
export interface ImageRef extends AwsTarget {
  imageId: string;
}

/** Who a share is for. At least one target; EC2 shares launch permission with each. */
export interface ShareTargets {
  accountIds?: string[];
  /** arn:aws:organizations::<management account>:organization/o-… */
  organizationArns?: string[];
  /** arn:aws:organizations::<management account>:ou/o-…/ou-… */
  organizationalUnitArns?: string[];
  /** Everyone (launch permission `Group=all`): refused unless the input also sets `allowPublic`. */
  public?: boolean;
}

/**
 * How target accounts get the use of a customer managed key the image's snapshots are encrypted with:
 * - `grant` (default): a KMS grant per target account, withdrawn with the share;
 * - `key-policy`: you manage the key policy; amiflow only reports the statement it needs.
 */
export const KMS_ACCESS_MODES = ['grant', 'key-policy'] as const;
export type KmsAccessMode = (typeof KMS_ACCESS_MODES)[number];

/** Exactly the operations a target account needs on the key to launch or copy the shared image. */
export const KMS_GRANT_OPERATIONS = [
  'DescribeKey',
  'CreateGrant',
  'Decrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
] as const;

/** The tags naming the run that made a resource: how retries find it and compensation proves it is ours. */
export function ownershipTags(workflowId: string, runId: string, workflowType: string): Tags {
  return {
    [TAG.managedBy]: MANAGED_BY_VALUE,
    [TAG.workflowId]: workflowId,
    [TAG.runId]: runId,
    [TAG.workflowType]: workflowType,
  };
}

/** EC2 allows 50 tags per resource. */
export const MAX_TAGS_PER_RESOURCE = 50;

/** A copy's tags: the given ones, the run's ownership tags, and where it was copied from. */
export function copyTagsOf(input: {
  tags: Tags;
  workflowId: string;
  runId: string;
  workflowType: string;
  source: { region: string; imageId: string };
}): Tags {
  return {
    ...input.tags,
    ...ownershipTags(input.workflowId, input.runId, input.workflowType),
    [TAG.sourceImage]: input.source.imageId,
    [TAG.sourceRegion]: input.source.region,
  };
}

/**
 * The name of the KMS grant a share run makes for one account: deterministic, so a retried
 * CreateGrant finds (or, in KMS, returns) the grant instead of making a second one; unique to the
 * run, so withdrawing it never touches a grant anyone else made.
 */
export function shareGrantName(runId: string, accountId: string): string {
  return `amiflow/${runId}/${accountId}`;
}

/** Longest share amiflow keeps a timer for (a time-limited share); without a duration a share is open-ended. */
export const MAX_SHARE_SECONDS = 366 * 24 * 3600;

export interface ShareImageInput extends ImageRef {
  targets: ShareTargets;
  /** Must be true for `targets.public`: sharing with everyone is never a default. */
  allowPublic?: boolean;
  /** Also give target accounts create-volume permission on the snapshots, so they can copy the image. */
  allowCopy?: boolean;
  kmsAccess?: KmsAccessMode;
  /**
   * A customer managed key (id, alias or ARN, in the image's region): copy the image under this key
   * first and share the copy. The way to share an image encrypted with the AWS managed key aws/ebs.
   */
  reencryptWith?: string;
  /** Name of the re-encrypted copy; default `<image name>-<key id prefix>`. */
  reencryptedName?: string;
  /** Tags for the re-encrypted copy. */
  tags?: Tags;
  /** Withdraw the share after this many seconds (a durable timer; change it with `setShareExpiry`). */
  durationSeconds?: number;
  timeouts?: { copyAvailableSeconds?: number };
}

/** One launch permission, as EC2 names it; exactly one field is set. */
export interface LaunchPermissionEntry {
  userId?: string;
  organizationArn?: string;
  organizationalUnitArn?: string;
  group?: 'all';
}

export interface SnapshotPermissionEntry {
  snapshotId: string;
  userIds: string[];
}

export interface KeyGrantRecord {
  keyArn: string;
  granteeAccountId: string;
  grantId: string;
  /** Deterministic (`amiflow/<run id>/<account>`): a retry finds the grant instead of making another. */
  grantName: string;
}

/** What a share added, and so exactly what its expiry, `unshareImage` and its compensation withdraw. */
export interface ShareAdded {
  launchPermissions: LaunchPermissionEntry[];
  snapshotPermissions: SnapshotPermissionEntry[];
  grants: KeyGrantRecord[];
}

export type ImageEncryption = 'unencrypted' | 'customer-managed-key' | 'aws-managed-key';

export interface IamPolicyStatement {
  Sid?: string;
  Effect: 'Allow';
  Principal?: { AWS: string | string[] };
  Action: string[];
  Resource: string;
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
}

export interface IamPolicyDocument {
  Version: '2012-10-17';
  Statement: IamPolicyStatement[];
}

/** For each customer managed key: what the target accounts' principals need, and the key policy alternative. */
export interface KeyAccessNeeded {
  keyArn: string;
  /** Attach in each target account to the principals that launch or copy the image. */
  targetIamPolicy: IamPolicyDocument;
  /** For the key policy instead of grants (`kmsAccess: 'key-policy'`; the only way for organizations and OUs). */
  keyPolicyStatements: IamPolicyStatement[];
}

/** The copy a share made to re-encrypt the image under a customer managed key. */
export interface ReencryptedCopy {
  imageId: string;
  imageName: string;
  kmsKeyId: string;
  /** The run that made it (its `amiflow:workflow-id` / `amiflow:run-id` tags). */
  workflowId: string;
  runId: string;
}

/** What unshareImage needs: the shared image and what the share added. A ShareImageResult is one. */
export interface ShareRecord {
  /** The image asked for. */
  image: ImageRef;
  /** The image shared: `image.imageId`, or the re-encrypted copy's id. */
  sharedImageId: string;
  added: ShareAdded;
  reencryptedCopy?: ReencryptedCopy;
}

export interface ShareImageResult extends ShareRecord {
  encryption: ImageEncryption;
  /** Launch and snapshot permissions the targets had before: left alone, never withdrawn. */
  alreadyPresent: {
    launchPermissions: LaunchPermissionEntry[];
    snapshotPermissions: SnapshotPermissionEntry[];
  };
  keyAccess: KeyAccessNeeded[];
  sharedAt: string;
  /** Time-limited shares: when it was due to end, and when it was withdrawn (the run ends then). */
  expiresAt?: string;
  withdrawnAt?: string;
  /**
   * The share ledger (workflow id) the run holds its launch and create-volume permissions through;
   * absent for runs before the ledger, which added and remove them on their own.
   */
  shareLedger?: string;
}

/** Change a time-limited share's end: a new time (`expiresAt`, ISO 8601) or seconds from now (0: now). */
export interface ShareExpiryUpdate {
  expiresAt?: string;
  expiresInSeconds?: number;
}

export interface ShareExpiryResult {
  expiresAt: string;
}

export const setShareExpiryUpdate = defineUpdate<ShareExpiryResult, [ShareExpiryUpdate]>('setShareExpiry');

export interface UnshareImageInput {
  /**
   * The share run to withdraw (its workflow id; its latest run unless `shareRunId`). The run's own
   * result in Temporal names what it added: that, and nothing else, is withdrawn.
   */
  shareWorkflowId?: string;
  shareRunId?: string;
  /**
   * Optional with `shareWorkflowId`: a record the caller holds, only compared with the run's own
   * (any difference refuses the unshare). Runs started before `shareWorkflowId` existed carry only this.
   */
  share?: ShareRecord;
  /** Also deregister the re-encrypted copy the share made, and delete its snapshots. Default false. */
  deleteReencryptedCopy?: boolean;
}

export interface UnshareImageResult {
  image: ImageRef;
  sharedImageId: string;
  /** What was withdrawn (including entries someone had already removed: withdrawing is idempotent). */
  withdrawn: ShareAdded;
  deletedReencryptedCopy?: string;
  /** Asked to delete the re-encrypted copy, but it was kept: what still uses or protects it. */
  keptReencryptedCopy?: { imageId: string; because: string[] };
  /** Permissions the share held that stay: another live share holds them too, or they predate amiflow. */
  kept?: { permission: string; because: string }[];
  finishedAt: string;
}
