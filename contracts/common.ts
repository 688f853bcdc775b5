/**
 * Facts every feature shares: task queue, tag keys, failure type names, search-attribute keys,
 * workflow type names, and the shapes every input builds on (where an AWS call goes, tags, modes).
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';

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
  /**
   * On instances, set by their operators: amiflow may run SSM commands there (app-consistent
   * freeze/thaw). The worker's IAM policy allows ssm:SendCommand only on instances with this tag
   * (= `RUN_COMMANDS_ALLOWED`) or with amiflow:managed-by=amiflow (instances amiflow launched).
   */
  runCommands: 'amiflow:run-commands',
  /** On launch templates and Auto Scaling groups their owners let rollouts change (the IAM policy's condition). */
  rolloutTarget: 'amiflow:rollout-target',
  /** Recipe builds: the built image's recipe, content hash and parent (the skip-unchanged lookup reads them). */
  recipeBuild: {
    recipe: 'amiflow:recipe',
    contentHash: 'amiflow:recipe-hash',
    parentImage: 'amiflow:parent-image',
    /** On builder and test instances: which of the run's instances this is. */
    role: 'amiflow:build-role',
    /** On a builder kept for debugging: when any later sweep may terminate it (ISO time). */
    keepUntil: 'amiflow:keep-until',
  },
} as const;
export const MANAGED_BY_VALUE = 'amiflow';
export const RUN_COMMANDS_ALLOWED = 'allowed';
/** The value of `TAG.approved` on an approved image. */
export const APPROVED_VALUE = 'true';
/** The value of `TAG.rolloutTarget` on a launch template or group a rollout may change. */
export const ROLLOUT_TARGET_VALUE = 'true';
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
  // Eventual consistency and endpoints: an id AWS returned that is not visible yet (retryable),
  // a region with no endpoint, an API the endpoint does not implement (both permanent)
  NotVisibleYet: 'NotVisibleYet',
  AwsUnknownRegion: 'AwsUnknownRegion',
  AwsNotImplemented: 'AwsNotImplemented',
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
  // imageFromInstance mode app-consistent: the pre step (quiesce) failed and onPreFailure is `fail`
  QuiesceFailed: 'QuiesceFailed',
  // rolloutImage: a target that is not there or cannot be rolled out to, an alarm, a refresh
  RolloutTargetNotFound: 'RolloutTargetNotFound',
  RolloutTargetUnsupported: 'RolloutTargetUnsupported',
  RolloutAlarm: 'RolloutAlarm',
  RolloutAlarmNotFound: 'RolloutAlarmNotFound',
  RefreshFailed: 'RefreshFailed',
  RefreshConflict: 'RefreshConflict',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Search attributes for operators in the Web UI (registered by the dev-server helper and the compose setup). */
export const SearchAttr = {
  instanceId: defineSearchAttributeKey('AmiflowInstanceId', SearchAttributeType.KEYWORD),
  imageId: defineSearchAttributeKey('AmiflowImageId', SearchAttributeType.KEYWORD),
  region: defineSearchAttributeKey('AmiflowRegion', SearchAttributeType.KEYWORD),
  step: defineSearchAttributeKey('AmiflowStep', SearchAttributeType.KEYWORD),
  /** succeeded | succeeded-with-problems | failed | cancelled, set when the run ends. */
  outcome: defineSearchAttributeKey('AmiflowOutcome', SearchAttributeType.KEYWORD),
} as const;
/** Name → Temporal type, for `temporal operator search-attribute create` and the dev server. */
export const SEARCH_ATTRIBUTE_TYPES: Record<string, 'Keyword'> = {
  AmiflowInstanceId: 'Keyword',
  AmiflowImageId: 'Keyword',
  AmiflowRegion: 'Keyword',
  AmiflowStep: 'Keyword',
  AmiflowOutcome: 'Keyword',
};

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
 * - `app-consistent`: no downtime; a pre step over SSM (sync + fsfreeze, or the user's own) quiesces
 *   the instance for the CreateImage call only, a post step thaws it (docs/consistency-modes.md).
 */
export const CONSISTENCY_MODES = ['stop', 'reboot', 'no-reboot', 'app-consistent'] as const;
export type ConsistencyMode = (typeof CONSISTENCY_MODES)[number];
/**
 * What an image is: `application-consistent` when a pre step quiesced the instance (freeze, flush)
 * for the whole CreateImage call; `crash-consistent` what a power cut would leave on disk.
 */
export type Consistency = 'consistent' | 'application-consistent' | 'crash-consistent';

/** What a mode promises before the run (app-consistent may still fall back: see its result). */
export function consistencyOf(mode: ConsistencyMode): Consistency {
  if (mode === 'app-consistent') return 'application-consistent';
  return mode === 'no-reboot' ? 'crash-consistent' : 'consistent';
}

export type InstanceState = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

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
  buildImage: 'buildImage',
  rolloutImage: 'rolloutImage',
} as const;

/** How an SSM Run Command invocation ended (GetCommandInvocation's status and status details). */
export type CommandStatus =
  | 'Success'
  | 'Failed'
  | 'TimedOut'
  | 'Cancelled'
  | 'Undeliverable'
  | 'Terminated'
  | 'DeliveryTimedOut'
  | 'ExecutionTimedOut';
