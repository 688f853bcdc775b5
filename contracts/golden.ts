/**
 * goldenImage and retention: pipelines started by Temporal Schedules, approval, retirement.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineUpdate } from '@temporalio/workflow';
import type { AwsTarget, Tags } from './common';
import type { ImageFromInstanceTimeouts } from './image';
import type { KmsAccessMode, ShareTargets } from './share';
import type { CopyDestination } from './copy';
import type { GoldenRolloutStage, RolloutImageResult } from './rollout';

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
  /**
   * Deregister retired images that other accounts, organizations or everyone may launch. Default
   * false: a shared image is kept and reported, since EC2 shows amiflow only this account's users.
   */
  retireShared?: boolean;
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
  /** Kept because these may launch it (account ids, organization/OU ARNs, `public`). */
  sharedWith?: string[];
  /** Deregistration protection's cooldown holds it until then (ISO 8601); a later run retires it. */
  retireAfter?: string;
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
  /** Roll the approved image out to launch templates and Auto Scaling groups (child `rolloutImage`), last. */
  rollout?: GoldenRolloutStage;
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
  /** The `rollout` stage's result; a rollout that failed (and rolled itself back) is a problem of the run instead. */
  rollout?: RolloutImageResult;
  startedAt: string;
  finishedAt: string;
}
