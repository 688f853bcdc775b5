/**
 * The one place for every fact that workflows, activities, the worker and the client share:
 * task queue, tag keys, failure type names, search attributes, inputs, outputs, queries.
 * Pure TypeScript: imported by the workflow bundle, so no Node built-ins and no AWS SDK here.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';

export const DEFAULT_TASK_QUEUE = 'amiflow';
export const DEFAULT_NAMESPACE = 'default';

/** Tags written on everything amiflow creates, so retries find it and sweeps can prove nothing leaked. */
export const TAG = {
  managedBy: 'amiflow:managed-by',
  workflowId: 'amiflow:workflow-id',
  runId: 'amiflow:run-id',
  workflowType: 'amiflow:workflow-type',
  sourceInstance: 'amiflow:source-instance',
  consistency: 'amiflow:consistency',
  /** On copies: the image and region they were copied from. */
  sourceImage: 'amiflow:source-image',
  sourceRegion: 'amiflow:source-region',
} as const;
export const MANAGED_BY_VALUE = 'amiflow';
/** User tags may not use these prefixes: `aws:` is reserved by AWS, `amiflow:` by us. */
export const RESERVED_TAG_PREFIXES = ['aws:', 'amiflow:'] as const;

/** Stable failure types. Activities and workflows throw `ApplicationFailure` with one of these. */
export const FailureType = {
  InvalidInput: 'InvalidInput',
  InstanceNotFound: 'InstanceNotFound',
  InstanceStateUnsupported: 'InstanceStateUnsupported',
  InstanceStoreRoot: 'InstanceStoreRoot',
  ImageNotFound: 'ImageNotFound',
  ImageNameTaken: 'ImageNameTaken',
  ImageFailed: 'ImageFailed',
  WaitTimedOut: 'WaitTimedOut',
  AwsUnauthorized: 'AwsUnauthorized',
  AwsMalformedRequest: 'AwsMalformedRequest',
  AwsNotFound: 'AwsNotFound',
  AwsLimitExceeded: 'AwsLimitExceeded',
  AwsPolicyRefused: 'AwsPolicyRefused',
  CompensationFailed: 'CompensationFailed',
  // migrateInstance: refusals before anything is touched, and the new instance's checks
  AvailabilityZoneUnknown: 'AvailabilityZoneUnknown',
  AvailabilityZoneUnchanged: 'AvailabilityZoneUnchanged',
  NoSubnetInZone: 'NoSubnetInZone',
  ElasticIpUnhandled: 'ElasticIpUnhandled',
  NetworkInterfacesUnhandled: 'NetworkInterfacesUnhandled',
  MigrationUnsupported: 'MigrationUnsupported',
  InstanceChecksFailed: 'InstanceChecksFailed',
  // shareImage / copyImage
  AwsManagedKeyNotShareable: 'AwsManagedKeyNotShareable',
  ImageNotOwned: 'ImageNotOwned',
  ImageNotAvailable: 'ImageNotAvailable',
  KmsKeyUnusable: 'KmsKeyUnusable',
  KmsGrantNeedsAccounts: 'KmsGrantNeedsAccounts',
  CopyFailed: 'CopyFailed',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Search attributes for operators in the Web UI (registered by the dev-server helper and the compose setup). */
export const SearchAttr = {
  instanceId: defineSearchAttributeKey('AmiflowInstanceId', SearchAttributeType.KEYWORD),
  imageId: defineSearchAttributeKey('AmiflowImageId', SearchAttributeType.KEYWORD),
  region: defineSearchAttributeKey('AmiflowRegion', SearchAttributeType.KEYWORD),
  step: defineSearchAttributeKey('AmiflowStep', SearchAttributeType.KEYWORD),
} as const;
/** Name → Temporal type, for `temporal operator search-attribute create` and the dev server. */
export const SEARCH_ATTRIBUTE_TYPES: Record<string, 'Keyword'> = {
  AmiflowInstanceId: 'Keyword',
  AmiflowImageId: 'Keyword',
  AmiflowRegion: 'Keyword',
  AmiflowStep: 'Keyword',
};

// ---------------------------------------------------------------------------------------------
// Shared shapes
// ---------------------------------------------------------------------------------------------

/** Where an AWS call goes: a region, and an account when the worker must assume a role in it. */
export interface AwsTarget {
  region: string;
  /** 12-digit account id; omitted means the worker's own credentials. */
  accountId?: string;
}

export type Tags = Record<string, string>;

/**
 * - `stop`: stop, image, start again. Consistent; downtime = stop + CreateImage call + start.
 * - `reboot`: EC2's default: EC2 reboots the instance during CreateImage. File-system consistent.
 * - `no-reboot`: no downtime, crash-consistent only: OS buffers are not flushed.
 */
export const CONSISTENCY_MODES = ['stop', 'reboot', 'no-reboot'] as const;
export type ConsistencyMode = (typeof CONSISTENCY_MODES)[number];
export type Consistency = 'consistent' | 'crash-consistent';

export function consistencyOf(mode: ConsistencyMode): Consistency {
  return mode === 'no-reboot' ? 'crash-consistent' : 'consistent';
}

export type InstanceState = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

// ---------------------------------------------------------------------------------------------
// imageFromInstance
// ---------------------------------------------------------------------------------------------

export interface ImageFromInstanceTimeouts {
  /** Longest wait for the instance to stop, or to run again. Default 900 s. */
  instanceStateSeconds?: number;
  /** Longest wait for the image to become `available`. Default 4 h (large volumes take hours). */
  imageAvailableSeconds?: number;
}

export interface ImageFromInstanceInput extends AwsTarget {
  instanceId: string;
  imageName: string;
  description?: string;
  /** Tags for the image and its snapshots. */
  tags?: Tags;
  mode: ConsistencyMode;
  timeouts?: ImageFromInstanceTimeouts;
}

export interface ImageFromInstanceResult {
  imageId: string;
  imageName: string;
  region: string;
  accountId?: string;
  snapshotIds: string[];
  instanceId: string;
  mode: ConsistencyMode;
  consistency: Consistency;
  /** A sentence for people: what the consistency mode means for this image. */
  consistencyNote: string;
  /** The state the instance was found in, and the one it was left in (always the same). */
  instanceInitialState: 'running' | 'stopped';
  instanceFinalState: 'running' | 'stopped';
  /** Seconds the instance was not running because of this run (stop mode; 0 otherwise, reboot excluded). */
  downtimeSeconds: number;
  startedAt: string;
  finishedAt: string;
}

export const DEFAULT_TIMEOUTS: Required<ImageFromInstanceTimeouts> = {
  instanceStateSeconds: 900,
  imageAvailableSeconds: 4 * 3600,
};

// ---------------------------------------------------------------------------------------------
// migrateInstance: move an instance to another Availability Zone (image it, launch from the image)
// ---------------------------------------------------------------------------------------------

/**
 * What happens to the source once the new instance runs and passed both status checks:
 * - `keep`: left as it was (running again after the `stop`-mode image, or still stopped);
 * - `stop`: stopped before it is imaged and left stopped (no writes after the image, so no split brain);
 * - `terminate`: stopped before it is imaged, terminated once the new instance passed its checks.
 */
export const SOURCE_ACTIONS = ['keep', 'stop', 'terminate'] as const;
export type SourceAction = (typeof SOURCE_ACTIONS)[number];
/** An Elastic IP on the source: `move` it to the new instance after its checks, or `leave` it on the source. */
export const ELASTIC_IP_ACTIONS = ['move', 'leave'] as const;
export type ElasticIpAction = (typeof ELASTIC_IP_ACTIONS)[number];

export interface MigrateInstanceOverrides {
  /** Instead of the source's instance type. */
  instanceType?: string;
  /** The subnet to launch into (it sets the target AZ); default: a subnet of the source's VPC in the target AZ. */
  subnetId?: string;
  /** Instead of the source's security groups (needed when the subnet is in another VPC). */
  securityGroupIds?: string[];
}

export interface MigrateInstanceTimeouts extends ImageFromInstanceTimeouts {
  /** Longest wait for the new instance to run and pass both status checks. Default 1800 s. */
  instanceReadySeconds?: number;
}

export interface MigrateInstanceInput extends AwsTarget {
  instanceId: string;
  /** e.g. `eu-west-1b`; may be omitted when `overrides.subnetId` names the target subnet. */
  targetAvailabilityZone?: string;
  sourceAction: SourceAction;
  /** Keep the intermediate AMI (and its snapshots) after a successful migration. Default false. */
  keepImage?: boolean;
  /** Name of the intermediate AMI; default `amiflow-migrate-<instance>-to-<az>-<run>`. */
  imageName?: string;
  /** Required when the source has an Elastic IP. */
  elasticIp?: ElasticIpAction;
  /** Required when the source has network interfaces besides its primary one: they stay with the source. */
  extraNetworkInterfaces?: 'leave';
  overrides?: MigrateInstanceOverrides;
  timeouts?: MigrateInstanceTimeouts;
}

export interface MigrateInstanceResult {
  region: string;
  accountId?: string;
  sourceInstanceId: string;
  newInstanceId: string;
  sourceAvailabilityZone: string;
  targetAvailabilityZone: string;
  subnetId: string;
  instanceType: string;
  sourceInitialState: 'running' | 'stopped';
  sourceFinalState: 'running' | 'stopped' | 'terminated';
  /** The new instance ends in the state the source started in. */
  newInstanceState: 'running' | 'stopped';
  elasticIp?: { allocationId: string; publicIp: string; movedToNewInstance: boolean };
  /** The intermediate AMI: kept when asked, otherwise deleted with its snapshots. */
  image: { imageId: string; snapshotIds: string[]; kept: boolean; deleted: boolean; error?: string };
  /**
   * Seconds the workload was not served because of this run: `keep`: the source's stop → start
   * while it was imaged; `stop`/`terminate`: the source's stop → the new instance passing its
   * checks (and the Elastic IP moved). 0 for a source that was stopped already.
   */
  downtimeSeconds: number;
  /** What could not be carried over to the new instance, in words (e.g. the private IP address). */
  notCarriedOver: string[];
  startedAt: string;
  finishedAt: string;
}

export const DEFAULT_MIGRATION_TIMEOUTS: Required<MigrateInstanceTimeouts> = {
  ...DEFAULT_TIMEOUTS,
  instanceReadySeconds: 1800,
};

// ---------------------------------------------------------------------------------------------
// Progress, answerable by query while the workflow runs and after it closes
// ---------------------------------------------------------------------------------------------

export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'compensated';

export interface StepProgress {
  name: string;
  state: StepState;
  startedAt?: string;
  finishedAt?: string;
  detail?: string;
}

export interface WorkflowProgress {
  workflowType: string;
  phase: 'running' | 'compensating' | 'succeeded' | 'failed' | 'cancelled';
  steps: StepProgress[];
  resources: Record<string, string>;
  compensations: { name: string; state: 'done' | 'failed'; error?: string }[];
  error?: string;
}

export const progressQuery = defineQuery<WorkflowProgress>('progress');

// ---------------------------------------------------------------------------------------------
// shareImage, unshareImage, copyImage
// ---------------------------------------------------------------------------------------------

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
  share: ShareRecord;
  /** Also deregister the re-encrypted copy the share made, and delete its snapshots. Default false. */
  deleteReencryptedCopy?: boolean;
}

export interface UnshareImageResult {
  image: ImageRef;
  sharedImageId: string;
  /** What was withdrawn (including entries someone had already removed: withdrawing is idempotent). */
  withdrawn: ShareAdded;
  deletedReencryptedCopy?: string;
  finishedAt: string;
}

export interface CopyDestination {
  region: string;
  /** The account that will own the copy (assumed role); omitted: the source image's account. */
  accountId?: string;
  /** Key for the copy's snapshots (id, alias or ARN in the destination region): the copy is encrypted. */
  kmsKeyId?: string;
  /** Name of the copy; default the source's name. Required for a copy in the source's own account and region. */
  name?: string;
  description?: string;
}

export const PARTIAL_FAILURE_POLICIES = ['rollback', 'keep'] as const;
export type PartialFailurePolicy = (typeof PARTIAL_FAILURE_POLICIES)[number];

export interface CopyImageInput extends ImageRef {
  destinations: CopyDestination[];
  /** Tags for every copy, on top of the source's own tags. */
  tags?: Tags;
  /** `rollback` (default): one failed destination deregisters every copy; `keep`: keep those that made it. */
  partialFailure?: PartialFailurePolicy;
  /** Copies running at once per destination region (EC2 limits concurrent copies per region). */
  concurrencyPerRegion?: number;
  /** For cross-account destinations of an aws/ebs-encrypted source: re-encrypt under this key to share it. */
  reencryptWith?: string;
  timeouts?: { copyAvailableSeconds?: number };
}

export type DestinationStatus = 'copied' | 'failed' | 'rolled-back' | 'cancelled' | 'not-started';

export interface DestinationOutcome {
  region: string;
  accountId?: string;
  kmsKeyId?: string;
  imageName: string;
  status: DestinationStatus;
  /** The copy, when CopyImage got that far (it may since have been rolled back: see `exists`). */
  imageId?: string;
  snapshotIds?: string[];
  /** True when the copy exists now, made by this run. */
  exists: boolean;
  error?: string;
}

export interface CopyImageResult {
  source: ImageRef & { imageName: string };
  /** `partial` only under the `keep` policy: some destinations failed, their copies are gone. */
  outcome: 'complete' | 'partial';
  destinations: DestinationOutcome[];
  /** The share made for cross-account destinations, withdrawn once they had copied. */
  share?: { workflowId: string; accountIds: string[]; sharedImageId: string; withdrawn: boolean };
  startedAt: string;
  finishedAt: string;
}

export const DEFAULT_COPY_TIMEOUTS = { copyAvailableSeconds: 12 * 3600 } as const;
export const DEFAULT_COPY_CONCURRENCY_PER_REGION = 5;

export const WORKFLOW_TYPES = {
  imageFromInstance: 'imageFromInstance',
  shareImage: 'shareImage',
  unshareImage: 'unshareImage',
  copyImage: 'copyImage',
  migrateInstance: 'migrateInstance',
} as const;
