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
  /** Approval, written by golden-image runs on approved images (with `sourceImage`): the catalogue reads them. */
  pipeline: 'amiflow:pipeline',
  version: 'amiflow:version',
  approved: 'amiflow:approved',
  approvedBy: 'amiflow:approved-by',
  approvedAt: 'amiflow:approved-at',
  /** Golden images: the scheduled time of the run that made it (a second run for the same time reuses it). */
  scheduledTime: 'amiflow:scheduled-time',
  /** Backups: the backup plan that made the image (with `sourceInstance`): retention counts per plan and instance. */
  backupPlan: 'amiflow:backup-plan',
} as const;
export const MANAGED_BY_VALUE = 'amiflow';
/** The value of `TAG.approved` on an approved image. */
export const APPROVED_VALUE = 'true';
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
  // goldenImage / backupInstances
  ValidationFailed: 'ValidationFailed',
  ApprovalRejected: 'ApprovalRejected',
  ApprovalTimedOut: 'ApprovalTimedOut',
  BackupIncomplete: 'BackupIncomplete',
  // guardrails: catalogue, complianceScan, enforceAllowedAmis
  NoApprovedImage: 'NoApprovedImage',
  AllowedAmisAuditFirst: 'AllowedAmisAuditFirst',
  AllowedAmisManagedByPolicy: 'AllowedAmisManagedByPolicy',
  AllowedAmisNoProviders: 'AllowedAmisNoProviders',
  AllowedAmisChangedOutside: 'AllowedAmisChangedOutside',
  // trust boundary: a withdrawal that does not match what the named run made
  ShareRunRefused: 'ShareRunRefused',
  ApproverNotVerified: 'ApproverNotVerified',
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
  goldenImage: 'goldenImage',
  backupInstances: 'backupInstances',
  approvedImages: 'approvedImages',
  complianceScan: 'complianceScan',
  enforceAllowedAmis: 'enforceAllowedAmis',
} as const;

// ---------------------------------------------------------------------------------------------
// Guardrails: the approved-image catalogue, complianceScan, EC2 Allowed AMIs enforcement
// ---------------------------------------------------------------------------------------------

/** In account lists: the worker's own account (no role assumed). */
export const SELF_ACCOUNT = 'self';

/**
 * An image made outside amiflow that counts as approved anyway: one image (`imageId` with its
 * `region`: image ids are regional), or every image of an owner (`owner`: a 12-digit account id, or
 * `amazon`). `reason` is required: reports and policy reviews show it.
 */
export interface AllowListEntry {
  imageId?: string;
  region?: string;
  owner?: string;
  reason: string;
}

/** What `approvedImages` reads: approval tags in `accounts` × `regions`, plus the allow list. */
export interface CatalogueInput {
  /** Accounts whose approval tags define the catalogue: 12 digits or `self`. Default `['self']`. */
  accounts?: string[];
  regions: string[];
  /** Only these pipelines' images; default every pipeline. */
  pipelines?: string[];
  allowList?: AllowListEntry[];
  /** (account, region) reads at once; default 4. */
  concurrency?: number;
}

/** Why an image is approved. */
export type ApprovalBasis = 'approval-tags' | 'allow-list';

export interface ApprovedImage {
  imageId: string;
  region: string;
  /** The account that owns the image ('' for an allow-listed image that is not visible). */
  ownerId: string;
  name?: string;
  pipeline?: string;
  version?: string;
  approvedBy?: string;
  approvedAt?: string;
  sourceImage?: string;
  creationDate?: string;
  /** EC2's state (`available`, `disabled`, …), or `not-visible` for an allow-listed id EC2 did not return. */
  state: string;
  deprecationTime?: string;
  /** Its deprecation time has passed, or it is disabled: no longer for new launches. */
  deprecated: boolean;
  /** KMS keys of its snapshots: other accounts need their use to launch it. */
  kmsKeyIds: string[];
  basis: ApprovalBasis;
  /** The allow list's reason. */
  reason?: string;
}

export interface GuardrailError {
  /** `self` or 12 digits. */
  account: string;
  region: string;
  type?: string;
  message: string;
}

export interface Catalogue {
  images: ApprovedImage[];
  /** Owners the allow list approves as a whole. */
  allowedOwners: { owner: string; reason: string }[];
  /** Reads that failed: the images approved there are missing from `images`. */
  errors: GuardrailError[];
  readAt: string;
}

/**
 * How an instance's image stands: `approved` (in the catalogue or allow list, not deprecated),
 * `approved-deprecated` (approved, but deprecated or disabled since: retired), `unknown` (exists,
 * not approved), `missing` (EC2 no longer describes it: deregistered, or no longer shared).
 */
export const IMAGE_CLASSIFICATIONS = ['approved', 'approved-deprecated', 'unknown', 'missing'] as const;
export type ImageClassification = (typeof IMAGE_CLASSIFICATIONS)[number];
export type ClassificationCounts = Record<ImageClassification, number> & { instances: number };

export function emptyCounts(): ClassificationCounts {
  return { approved: 0, 'approved-deprecated': 0, unknown: 0, missing: 0, instances: 0 };
}

export interface ComplianceScanInput {
  /** Names the scan (letters, digits, `-`, `_`, `.`): its workflow id, and where its last report is found. */
  name: string;
  /** Accounts to scan: 12 digits or `self`. Default `['self']`. */
  accounts?: string[];
  regions: string[];
  /**
   * Accounts whose approval tags define the catalogue (where golden-image pipelines run). Default
   * `['self']`. Images a scanned account owns and has tagged approved count as well.
   */
  catalogueAccounts?: string[];
  pipelines?: string[];
  allowList?: AllowListEntry[];
  /** (account, region) pairs scanned at once; default 4. */
  concurrency?: number;
  /** Non-approved instances listed per (account, region); the others are only counted. Default 100. */
  maxFindingsPerTarget?: number;
}

/** One image in use in an (account, region), and how it stands. */
export interface ImageUsage {
  imageId: string;
  classification: ImageClassification;
  instances: number;
  ownerId?: string;
  name?: string;
  pipeline?: string;
  version?: string;
  deprecationTime?: string;
  basis?: ApprovalBasis;
  /** EC2 Allowed AMIs' verdict (`ImageAllowed`), where the account has Allowed AMIs in audit or enabled mode. */
  allowedByEc2?: boolean;
}

/** An instance whose image is not approved (or is retired). */
export interface InstanceFinding {
  instanceId: string;
  imageId: string;
  state: string;
  classification: Exclude<ImageClassification, 'approved'>;
  name?: string;
  launchTime?: string;
}

export interface TargetReport {
  /** `self` or 12 digits. */
  account: string;
  region: string;
  status: 'scanned' | 'failed';
  error?: string;
  errorType?: string;
  counts: ClassificationCounts;
  images: ImageUsage[];
  findings: InstanceFinding[];
  /** Findings beyond `maxFindingsPerTarget`: counted, not listed. */
  findingsOmitted: number;
  awsCalls: number;
  /** Throttled AWS calls, retried after a backoff. */
  throttled: number;
  warnings: string[];
}

export interface ComplianceReport {
  name: string;
  workflowId: string;
  runId: string;
  startedAt: string;
  finishedAt?: string;
  /** False while the scan runs: the `complianceReport` query then shows the report so far. */
  complete: boolean;
  accounts: string[];
  regions: string[];
  totals: ClassificationCounts;
  /** Every target scanned and every instance found runs an approved, non-deprecated image. */
  compliant: boolean;
  byAccount: Record<string, ClassificationCounts>;
  byRegion: Record<string, ClassificationCounts>;
  /** In input order: accounts, then regions. */
  targets: TargetReport[];
  failedTargets: number;
  catalogue: { images: number; errors: GuardrailError[] };
  awsCalls: number;
}

export const complianceReportQuery = defineQuery<ComplianceReport>('complianceReport');

/** `off` restores each account and region's settings as they were before amiflow changed them. */
export const ALLOWED_AMIS_MODES = ['audit', 'enabled', 'off'] as const;
export type AllowedAmisMode = (typeof ALLOWED_AMIS_MODES)[number];
/** EC2's Allowed AMIs states. */
export type AllowedImagesState = 'disabled' | 'audit-mode' | 'enabled';

/** One EC2 `ImageCriterion`, with EC2's own field names, so settings read are restored exactly. */
export interface AllowedImagesCriterion {
  ImageProviders?: string[];
  ImageNames?: string[];
  MarketplaceProductCodes?: string[];
  CreationDateCondition?: { MaximumDaysSinceCreated?: number };
  DeprecationTimeCondition?: { MaximumDaysSinceDeprecated?: number };
  [field: string]: unknown;
}

export interface AllowedImagesSettings {
  state: AllowedImagesState;
  criteria: AllowedImagesCriterion[];
  /** `account`, or `declarative-policy` (an organization policy: the account cannot change it). */
  managedBy?: string;
}

export interface EnforceAllowedAmisInput {
  /** Names the enforcement (letters, digits, `-`, `_`, `.`): its workflow id. */
  name: string;
  /** Accounts: 12 digits or `self`. Default `['self']`. */
  accounts?: string[];
  regions: string[];
  catalogueAccounts?: string[];
  pipelines?: string[];
  allowList?: AllowListEntry[];
  concurrency?: number;
  /** Carried across continue-as-new; callers leave it out. */
  carried?: AllowedAmisState;
}

export interface AllowedAmisTarget {
  account: string;
  region: string;
  /** The settings before amiflow's first change: what `off` restores. */
  original?: AllowedImagesSettings;
  /** What amiflow set last. */
  applied?: AllowedImagesSettings & { at: string };
  /** The last change's failure, if it failed here. */
  error?: string;
  warning?: string;
}

export interface AllowedAmisState {
  name: string;
  /** `none` until the first mode is set. */
  mode: AllowedAmisMode | 'none';
  /** When audit mode was first set: `enabled` is refused before it. */
  auditSince?: string;
  targets: AllowedAmisTarget[];
  /** Where the criteria come from: as the last mode change gave it (or the start). */
  selection: CatalogueSelection;
  /** The last mode changes, newest last. */
  changes: { mode: AllowedAmisMode; at: string; failedTargets: number }[];
}

/** The catalogue an enforcement derives its criteria from. */
export interface CatalogueSelection {
  catalogueAccounts?: string[];
  pipelines?: string[];
  allowList?: AllowListEntry[];
}

export interface SetAllowedAmisMode {
  mode: AllowedAmisMode;
  /** A new catalogue selection for this and later changes (e.g. an allow list with a new entry). */
  selection?: CatalogueSelection;
}

export const setAllowedAmisModeUpdate = defineUpdate<AllowedAmisState, [SetAllowedAmisMode]>(
  'setAllowedAmisMode',
);
export const allowedAmisStateQuery = defineQuery<AllowedAmisState>('allowedAmisState');

// ---------------------------------------------------------------------------------------------
// goldenImage, backupInstances and retention (runs started by Temporal Schedules)
// ---------------------------------------------------------------------------------------------

/**
 * Search attributes Temporal itself sets on a run a Schedule started: the time it was scheduled for
 * (also appended to the schedule's workflow id) and the schedule's id. A golden run derives its
 * version from the scheduled time, so a second run for the same time finds the image of the first.
 */
export const ScheduleAttr = {
  scheduledStartTime: defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME),
  scheduledById: defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD),
} as const;

/** What retirement keeps and removes, per region and account (golden) or per instance (backups). */
export interface RetentionPolicy {
  /** The newest N images are kept (at least 1: the newest is never retired). */
  keep?: number;
  /** Images older than this are retired too (never the newest). */
  maxAgeSeconds?: number;
  /**
   * Retired images are first deprecated (EnableImageDeprecation) at retirement + this many seconds
   * (0: at once). Unset: no deprecation stage (backups): retired images are deregistered directly.
   */
  deprecateAfterSeconds?: number;
  /**
   * Deregister (and delete the snapshots of) a retired image this long after its deprecation time
   * (or at once without a deprecation stage), unless something still references it. Unset: never.
   */
  deregisterAfterSeconds?: number;
  /** Turn on deregistration protection on the newest image (golden default: true). */
  protectNewest?: boolean;
}

export const DEFAULT_GOLDEN_RETENTION = {
  keep: 3,
  deprecateAfterSeconds: 0,
  deregisterAfterSeconds: 30 * 24 * 3600,
  protectNewest: true,
} as const satisfies RetentionPolicy;
export const DEFAULT_BACKUP_RETENTION = {
  keep: 7,
  deregisterAfterSeconds: 0,
  protectNewest: false,
} as const satisfies RetentionPolicy;

export type RetentionActionKind = 'protect' | 'deprecate' | 'deregister' | 'keep';

/** One decision of retirement, and what came of it; the result lists every one. */
export interface RetentionAction {
  region: string;
  accountId?: string;
  imageId: string;
  imageName?: string;
  version?: string;
  action: RetentionActionKind;
  /** Why, for people: "newest approved", "3rd newest of 3 kept", "referenced by i-…", … */
  reason: string;
  /** `deprecate`: when the image becomes deprecated (ISO 8601). */
  deprecateAt?: string;
  /** Resources still using the image (ARNs): it is kept for them. */
  references?: string[];
  outcome: 'done' | 'skipped' | 'failed';
  /** `deregister`: the snapshots deleted with it. */
  deletedSnapshotIds?: string[];
  error?: string;
}

export interface RetentionReport {
  actions: RetentionAction[];
  /** Failed actions (also in `actions`): retirement runs after the new image is committed, so they do not fail the run. */
  failures: number;
  /** Scopes (region, account) where retirement could not even look (e.g. not authorized): nothing was done there. */
  errors: { region: string; accountId?: string; error: string }[];
}

/** Test launch of a golden image before anyone may use it. */
export interface GoldenValidation {
  /** The subnet the test instance is launched in (its AZ and VPC follow). */
  subnetId: string;
  /** Default t3.micro. */
  instanceType?: string;
  /** Default: the VPC's default security group. */
  securityGroupIds?: string[];
  /** An instance profile for the test instance (e.g. so it can reach what its boot checks need). */
  instanceProfileArn?: string;
  /** Longest wait for `running` and both status checks. Default 900 s. */
  readyTimeoutSeconds?: number;
  /**
   * Optional health check, read from the instance's serial console (GetConsoleOutput): the image's
   * boot writes `successMarker` to the console once its own checks pass (or `failureMarker` when
   * they fail). No agent, network path or instance role is needed for this.
   */
  healthCheck?: { successMarker: string; failureMarker?: string; timeoutSeconds?: number };
}

export const DEFAULT_VALIDATION = {
  instanceType: 't3.micro',
  readyTimeoutSeconds: 900,
  healthTimeoutSeconds: 900,
} as const;

/** Versions: `date` (`2026.01.15-030000`, from the scheduled time, UTC) or `semver` (`<series>.<n>`, n counting up). */
export type GoldenVersioning = { scheme: 'date' } | { scheme: 'semver'; series: string };

export interface GoldenDistribution {
  /** Copies: other regions of the builder's account, or other accounts (assumed roles). */
  copies?: CopyDestination[];
  /** Share every image in the builder's account (the original and its same-account copies) with these. */
  shareWith?: ShareTargets & { allowCopy?: boolean; kmsAccess?: KmsAccessMode };
  concurrencyPerRegion?: number;
}

export interface GoldenImageInput extends AwsTarget {
  /** The pipeline's name: in the image name, the tags, the workflow and schedule ids. */
  pipeline: string;
  /** The builder instance, kept patched by its owners: it is imaged, never changed otherwise. */
  builderInstanceId: string;
  /** `stop` (default: consistent, the builder is down for the CreateImage call) or `reboot`. */
  mode?: 'stop' | 'reboot';
  versioning?: GoldenVersioning;
  /** Image name prefix; default the pipeline name. The name is `<prefix>-<version>`. */
  imageNamePrefix?: string;
  description?: string;
  tags?: Tags;
  /**
   * The time this run stands for (ISO 8601). Runs a Schedule starts take it from Temporal's
   * `TemporalScheduledStartTime`; manual runs from here, else their start time.
   */
  scheduledTime?: string;
  validation?: GoldenValidation;
  /** Present: a person must approve (the `approve` update) before the image is distributed. */
  approval?: {
    /** The run fails (and cleans up) when no decision came within this. Default 3 days. */
    timeoutSeconds?: number;
    /**
     * Who may approve or reject: IAM role or user ARNs, `*` matching any characters within one
     * name (`arn:aws:iam::111122223333:role/approver-*`). An assumed-role session counts as its
     * role. Default: any principal whose identity STS verifies (still recorded by ARN).
     */
    approvers?: string[];
  };
  distribution?: GoldenDistribution;
  /** Publish the new image id as an SSM parameter (data type aws:ec2:image) in every region and account it is in. */
  publish?: { parameterName: string };
  retention?: RetentionPolicy;
  timeouts?: ImageFromInstanceTimeouts & { copyAvailableSeconds?: number };
}

export const DEFAULT_APPROVAL_TIMEOUT_SECONDS = 3 * 24 * 3600;
/** `approved-by` on images no person had to approve (the pipeline has no approval gate). */
export const AUTO_APPROVER = 'amiflow:validation';

export interface ApprovalDecision {
  /**
   * Who claims to decide. Only informative: with `proof`, the run records the principal ARN STS
   * verified instead (runs from before verified approvals recorded this name as given).
   */
  by?: string;
  comment?: string;
  /** The approver's identity, proven: see `ApproverProof`. Required by runs that verify approvers. */
  proof?: ApproverProof;
}

/**
 * An STS GetCallerIdentity request signed with the approver's own AWS credentials (SigV4, accepted
 * for 15 minutes after its signing time), with the header `APPROVAL_BINDING_HEADER` signed into it
 * naming the decision, the workflow and the run: the worker sends it to STS, which answers with the
 * signer's ARN, and it cannot be replayed for another run or the other decision.
 */
export interface ApproverProof {
  url: string;
  headers: Record<string, string>;
}

/** The signed header that binds a proof to one decision on one run. */
export const APPROVAL_BINDING_HEADER = 'x-amiflow-approval';

export function approvalBinding(kind: 'approve' | 'reject', workflowId: string, runId: string): string {
  return `${kind} ${runId} ${workflowId}`;
}

/** The caller identity STS answered for a proof, and the IAM principal it stands for. */
export interface VerifiedApprover {
  /** As STS returned it, e.g. `arn:aws:sts::111122223333:assumed-role/approvers/alice`. */
  arn: string;
  /** The IAM role or user: an assumed-role session maps to its role (`arn:aws:iam::…:role/approvers`). */
  principalArn: string;
  account: string;
}
export interface ApprovalAck {
  workflowId: string;
  imageId: string;
  version: string;
  decision: 'approved' | 'rejected';
  at: string;
}
export const approveUpdate = defineUpdate<ApprovalAck, [ApprovalDecision]>('approve');
export const rejectUpdate = defineUpdate<ApprovalAck, [ApprovalDecision]>('reject');

export interface GoldenImageOut extends AwsTarget {
  imageId: string;
  role: 'original' | 'copy';
  /** The SSM parameter written for it, if any. */
  parameter?: { name: string; version?: number; previousValue?: string };
  /** The share workflow that shared it, if any. */
  shareWorkflowId?: string;
}

export interface GoldenImageResult {
  pipeline: string;
  version: string;
  imageName: string;
  scheduledTime: string;
  scheduleId?: string;
  /** True when an approved image for this pipeline and scheduled time existed already: nothing was made. */
  reused: boolean;
  builderInstanceId: string;
  /** The AMI the builder runs (what the golden image was made from). */
  builderImageId?: string;
  images: GoldenImageOut[];
  validation?: {
    testInstanceId: string;
    subnetId: string;
    statusChecks: 'ok';
    healthCheck?: { marker: string; seenAt: string };
  };
  approval: {
    /** The verified principal ARN (runs from before verified approvals: the name given). */
    by: string;
    at: string;
    comment?: string;
    gate: boolean;
    /** The caller identity STS returned for the approver's proof, as it returned it. */
    verifiedArn?: string;
  };
  retention: RetentionReport;
  startedAt: string;
  finishedAt: string;
}

export interface BackupSelector {
  /** Instances carrying every one of these tags (running or stopped). */
  tags: Tags;
}

export interface BackupInput extends AwsTarget {
  /** The backup plan's name: in image names, tags, workflow and schedule ids. */
  plan: string;
  instanceIds?: string[];
  selector?: BackupSelector;
  /** `reboot` (default: consistent, one reboot, no stop) or `stop`. */
  mode?: 'reboot' | 'stop';
  /** Imaging an instance must begin within this long after the scheduled time; later ones are skipped. */
  windowSeconds?: number;
  retention?: Pick<RetentionPolicy, 'keep' | 'maxAgeSeconds'>;
  /** Also copy each backup to another region of the same account (with its own retention there). */
  copyTo?: { region: string; kmsKeyId?: string };
  /** Instances imaged at once. Default 2. */
  concurrency?: number;
  tags?: Tags;
  scheduledTime?: string;
  timeouts?: ImageFromInstanceTimeouts & { copyAvailableSeconds?: number };
}

export type BackupStatus = 'backed-up' | 'failed' | 'skipped';

export interface BackupOutcome {
  instanceId: string;
  status: BackupStatus;
  imageId?: string;
  imageName?: string;
  copy?: { region: string; imageId?: string; error?: string };
  downtimeSeconds?: number;
  error?: string;
}

export interface BackupResult {
  plan: string;
  region: string;
  accountId?: string;
  scheduledTime: string;
  mode: 'reboot' | 'stop';
  instances: BackupOutcome[];
  retention: RetentionReport;
  startedAt: string;
  finishedAt: string;
}
