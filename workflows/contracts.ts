/**
 * The one place for every fact that workflows, activities, the worker and the client share:
 * task queue, tag keys, failure type names, search attributes, inputs, outputs, queries.
 * Pure TypeScript: imported by the workflow bundle, so no Node built-ins and no AWS SDK here.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';

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

export const WORKFLOW_TYPES = { imageFromInstance: 'imageFromInstance' } as const;
