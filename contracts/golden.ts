/**
 * goldenImage and retention: pipelines started by Temporal Schedules, approval, retirement.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { AwsTarget } from './common';
import { copyConcurrencyPerRegion, copyDestinationRules, copyDestinationsSchema } from './copy';
import {
  INSTANCE_TYPE_RE,
  SECURITY_GROUP_ID_RE,
  SUBNET_ID_RE,
  accountId,
  description,
  flag,
  imageName,
  instanceId,
  isoTime,
  planName,
  region,
  seconds,
  text,
  uniqueList,
  userTags,
  whole,
} from './fields';
import { appConsistentOptionsSchema, appConsistentRule, imageFromInstanceTimeoutsSchema } from './image';
import { buildImageInputSchema } from './recipe';
import type { InputIssue } from './issues';
import { issuesFor, show, strictObject, withRules } from './issues';
import type { GoldenRolloutStage, RolloutImageResult } from './rollout';
import { MAX_TAGS_PER_RESOURCE, kmsAccessMode, shareTargetRules, shareTargetsSchema } from './share';

/**
 * Search attributes Temporal itself sets on a run a Schedule started: the time it was scheduled for
 * (also appended to the schedule's workflow id) and the schedule's id. A golden run derives its
 * version from the scheduled time, so a second run for the same time finds the image of the first.
 */
export const ScheduleAttr = {
  scheduledStartTime: defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME),
  scheduledById: defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD),
} as const;

const YEAR = 365 * 24 * 3600;

/** What retirement keeps and removes, per region and account (golden) or per instance (backups). */
export const retentionPolicySchema = strictObject({
  /** The newest N images are kept (at least 1: the newest is never retired). */
  keep: whole(1, 1000, ' (the newest image is never retired)').optional(),
  /** Images older than this are retired too (never the newest). */
  maxAgeSeconds: seconds(3600, 10 * YEAR).optional(),
  /**
   * Retired images are first deprecated (EnableImageDeprecation) at retirement + this many seconds
   * (0: at once). Unset: no deprecation stage (backups): retired images are deregistered directly.
   */
  deprecateAfterSeconds: seconds(0, 10 * YEAR).optional(),
  /**
   * Deregister (and delete the snapshots of) a retired image this long after its deprecation time
   * (or at once without a deprecation stage), unless something still references it. Unset: never.
   */
  deregisterAfterSeconds: seconds(0, 10 * YEAR).optional(),
  /** Turn on deregistration protection on the newest image (golden default: true). */
  protectNewest: flag.optional(),
  /**
   * Deregister retired images that other accounts, organizations or everyone may launch. Default
   * false: a shared image is kept and reported, since EC2 shows amiflow only this account's users.
   */
  retireShared: flag.optional(),
});
export type RetentionPolicy = z.infer<typeof retentionPolicySchema>;

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

const notASubnet = (v: unknown) =>
  `${v === undefined ? 'is required' : `${show(v)} is not a subnet id`} (subnet- followed by 8 or 17 lowercase hex digits): the test instance is launched there`;
const notAGroup = (v: unknown) =>
  `${show(v)} is not a security group id (sg- followed by 8 or 17 hex digits)`;
const notAProfile = (v: unknown) =>
  `${show(v)} is not an instance profile ARN (arn:aws:iam::<account>:instance-profile/<name>)`;
const PROFILE_ARN_RE = /^arn:aws[a-z-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]{1,128}$/;

/**
 * Optional health check, read from the instance's serial console (GetConsoleOutput): the image's
 * boot writes `successMarker` to the console once its own checks pass (or `failureMarker` when
 * they fail). No agent, network path or instance role is needed for this.
 */
const healthCheckSchema = withRules(
  strictObject(
    {
      successMarker: text(200),
      failureMarker: text(200).optional(),
      timeoutSeconds: seconds(30, 24 * 3600).optional(),
    },
    'must be an object with successMarker',
  ),
  (h, report) => {
    if (typeof h.successMarker === 'string' && h.successMarker === h.failureMarker)
      report(['failureMarker'], 'must differ from successMarker');
  },
);

/** Test launch of a golden image before anyone may use it. */
export const goldenValidationSchema = strictObject(
  {
    /** The subnet the test instance is launched in (its AZ and VPC follow). */
    subnetId: z
      .string({ error: (iss) => notASubnet(iss.input) })
      .regex(SUBNET_ID_RE, { error: (iss) => notASubnet(iss.input) })
      .describe('a test instance is launched here from the new image'),
    /** Default t3.micro. */
    instanceType: z
      .string({ error: (iss) => `${show(iss.input)} is not an instance type (e.g. t3.micro)` })
      .regex(INSTANCE_TYPE_RE, {
        error: (iss) => `${show(iss.input)} is not an instance type (e.g. t3.micro)`,
      })
      .optional(),
    /** Default: the VPC's default security group. */
    securityGroupIds: uniqueList(
      z
        .string({ error: (iss) => notAGroup(iss.input) })
        .regex(SECURITY_GROUP_ID_RE, { error: (iss) => notAGroup(iss.input) }),
    ).optional(),
    /** An instance profile for the test instance (e.g. so it can reach what its boot checks need). */
    instanceProfileArn: z
      .string({ error: (iss) => notAProfile(iss.input) })
      .regex(PROFILE_ARN_RE, { error: (iss) => notAProfile(iss.input) })
      .optional(),
    /** Longest wait for `running` and both status checks. Default 900 s. */
    readyTimeoutSeconds: seconds(60, 3 * 3600).optional(),
    healthCheck: healthCheckSchema.optional(),
  },
  'must be an object with at least subnetId',
);
export type GoldenValidation = z.infer<typeof goldenValidationSchema>;

export const DEFAULT_VALIDATION = {
  instanceType: 't3.micro',
  readyTimeoutSeconds: 900,
  healthTimeoutSeconds: 900,
} as const;

const SERIES_RE = /^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/;
const notASeries = (v: unknown) =>
  `${show(v)} is not <major>.<minor> (e.g. 1.4): runs count the patch number up`;
/** Versions: `date` (`2026.01.15-030000`, from the scheduled time, UTC) or `semver` (`<series>.<n>`, n counting up). */
export const goldenVersioningSchema = z.discriminatedUnion(
  'scheme',
  [
    strictObject({ scheme: z.literal('date') }),
    strictObject({
      scheme: z.literal('semver'),
      series: z
        .string({ error: (iss) => notASeries(iss.input) })
        .regex(SERIES_RE, { error: (iss) => notASeries(iss.input) }),
    }),
  ],
  { error: "must be { scheme: 'date' } or { scheme: 'semver', series: '<major>.<minor>' }" },
);
export type GoldenVersioning = z.infer<typeof goldenVersioningSchema>;

const { public: _public, ...shareTargetFields } = shareTargetsSchema.shape;
export const goldenDistributionSchema = strictObject(
  {
    /** Copies: other regions of the builder's account, or other accounts (assumed roles). */
    copies: copyDestinationsSchema.optional(),
    /** Share every image in the builder's account (the original and its same-account copies) with these. */
    shareWith: strictObject(
      { ...shareTargetFields, allowCopy: flag.optional(), kmsAccess: kmsAccessMode.optional() },
      'must be an object (accountIds, organizationArns, …)',
    ).optional(),
    concurrencyPerRegion: copyConcurrencyPerRegion.optional(),
  },
  'must be an object with copies and/or shareWith',
);
export type GoldenDistribution = z.infer<typeof goldenDistributionSchema>;

const PARAMETER_RE = /^[A-Za-z0-9_.\-/]{1,1011}$/;
/** SSM parameter names: letters, digits and _ . - /; a name with a slash is a path starting with one. */
export const parameterName = z
  .string({ error: 'is required: the SSM parameter name (e.g. /golden/web/latest)' })
  .superRefine((v, ctx) => {
    const issue = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (v === '') issue('is required: the SSM parameter name (e.g. /golden/web/latest)');
    else if (!PARAMETER_RE.test(v))
      issue(`${show(v)} is not an SSM parameter name (letters, digits and _ . - /)`);
    else if (/^\/?(aws|ssm)/i.test(v))
      issue(`${show(v)}: names starting with aws or ssm are reserved by AWS`);
    else if (v.includes('/') && !v.startsWith('/'))
      issue(`${show(v)}: a parameter path must start with / (e.g. /${v})`);
    else if (v.split('/').length - 1 > 15) issue(`${show(v)} is deeper than SSM's 15 levels`);
  })
  .describe('SSM parameter name, e.g. /golden/web/latest');

/** Golden images carry up to 14 tags of amiflow's own (run, lineage, approval); EC2 allows 50. */
export const MAX_GOLDEN_USER_TAGS = MAX_TAGS_PER_RESOURCE - 20;
/** The longest version a name can get (`2026.01.15-030000`, or a semver series and a count). */
const LONGEST_VERSION = '2026.01.15-030000';

/** Image and copy timeouts of the runs that image instances and copy the images. */
export const imageAndCopyTimeoutsSchema = strictObject({
  ...imageFromInstanceTimeoutsSchema.shape,
  copyAvailableSeconds: seconds(60, 7 * 24 * 3600).optional(),
});

export const goldenImageInputSchema = withRules(
  strictObject({
    region,
    accountId: accountId.optional(),
    /** The pipeline's name: in the image name, the tags, the workflow and schedule ids. */
    pipeline: planName('pipeline'),
    /**
     * The builder instance, kept patched by its owners: it is imaged, never changed otherwise.
     * Exactly one of this and `recipe`.
     */
    builderInstanceId: instanceId.optional(),
    /**
     * Or build the image from a recipe (the resolved `buildImage` input, as `loadRecipeFile` makes
     * it): the run starts `buildImage` as a child and takes its image. Exactly one of this and
     * `builderInstanceId`; the recipe's region and account must be the pipeline's.
     */
    recipe: buildImageInputSchema.optional(),
    /**
     * `stop` (default: consistent, the builder is down for the CreateImage call), `reboot`, or
     * `app-consistent` (no downtime: frozen over SSM for the CreateImage call).
     */
    mode: z
      .enum(['stop', 'reboot', 'app-consistent'], {
        error: (iss) =>
          `${show(iss.input)} is not a mode for a golden image: stop (consistent, default), reboot or app-consistent; no-reboot images are crash-consistent only`,
      })
      .optional(),
    /** Options of mode app-consistent (refused with any other mode). */
    appConsistent: appConsistentOptionsSchema.optional(),
    versioning: goldenVersioningSchema.optional(),
    /** Image name prefix; default the pipeline name. The name is `<prefix>-<version>`. */
    imageNamePrefix: z.string({ error: 'must be a string' }).optional(),
    description: description.optional(),
    tags: userTags.optional(),
    /**
     * The time this run stands for (ISO 8601). Runs a Schedule starts take it from Temporal's
     * `TemporalScheduledStartTime`; manual runs from here, else their start time.
     */
    scheduledTime: isoTime.optional(),
    validation: goldenValidationSchema.optional(),
    /** Present: a person must approve (the `approve` update) before the image is distributed. */
    approval: strictObject(
      {
        /** The run fails (and cleans up) when no decision came within this. Default 3 days. */
        timeoutSeconds: seconds(60, 90 * 24 * 3600).optional(),
        /**
         * Who may approve or reject: IAM role or user ARNs, `*` matching any characters within one
         * name (`arn:aws:iam::111122223333:role/approver-*`). An assumed-role session counts as its
         * role. Default: any principal whose identity STS verifies (still recorded by ARN).
         */
        approvers: uniqueList(text(128)).optional(),
      },
      'must be an object ({} for the defaults)',
    ).optional(),
    distribution: goldenDistributionSchema.optional(),
    /** Publish the new image id as an SSM parameter (data type aws:ec2:image) in every region and account it is in. */
    publish: strictObject({ parameterName }, 'must be an object with parameterName').optional(),
    retention: retentionPolicySchema.optional(),
    timeouts: imageAndCopyTimeoutsSchema.optional(),
    /**
     * Roll the approved image out to launch templates and Auto Scaling groups (child `rolloutImage`),
     * last. Checked by `rolloutStageIssues` (workflows/rollout-plan.ts): the rollout input's own
     * schema, fields under `rollout.`, plus the approver patterns.
     */
    rollout: z.custom<GoldenRolloutStage>(() => true).optional(),
  }),
  goldenRules,
);
export type GoldenImageInput = z.infer<typeof goldenImageInputSchema>;

/** The rules between a golden input's fields: names it makes, tag room, where copies and shares go. */
function goldenRules(
  input: Record<string, unknown>,
  report: (path: readonly (string | number)[], message: string) => void,
): void {
  appConsistentRule(input, report);
  sourceRule(input, report);
  const prefix = input.imageNamePrefix ?? input.pipeline;
  if (typeof prefix === 'string' && !imageName.safeParse(`${prefix}-${LONGEST_VERSION}`).success)
    report(
      ['imageNamePrefix'],
      `${show(prefix)} does not make valid image names ('<prefix>-<version>', at most 128 characters of letters, digits and ( ) [ ] space . / - ' @ _)`,
    );
  const tags = input.tags;
  if (typeof tags === 'object' && tags !== null && Object.keys(tags).length > MAX_GOLDEN_USER_TAGS)
    report(
      ['tags'],
      `has ${Object.keys(tags).length} tags; a golden image takes at most ${MAX_GOLDEN_USER_TAGS} (amiflow adds its approval and lineage tags; EC2 allows 50)`,
    );
  const d = input.distribution;
  if (typeof d !== 'object' || d === null) return;
  const { copies, shareWith } = d as Record<string, unknown>;
  copyDestinationRules(
    copies,
    { region: input.region, accountId: input.accountId },
    report,
    ['distribution', 'copies'],
    `the original is made in ${String(input.region)} already: copy to other regions or accounts`,
  );
  if (typeof shareWith === 'object' && shareWith !== null) {
    const s = shareWith as Record<string, unknown>;
    shareTargetRules(
      { region: input.region, accountId: input.accountId, allowCopy: s.allowCopy },
      s,
      report,
      {
        targets: ['distribution', 'shareWith'],
        allowCopy: ['distribution', 'shareWith', 'allowCopy'],
      },
    );
  }
}

/**
 * The image comes from exactly one source: a builder instance, or a recipe built for this run in
 * the pipeline's own region and account (the image is validated, copied and shared from there).
 */
function sourceRule(
  input: Record<string, unknown>,
  report: (path: readonly (string | number)[], message: string) => void,
): void {
  const hasBuilder = input.builderInstanceId !== undefined;
  const recipe = input.recipe;
  if (hasBuilder && recipe !== undefined)
    report(['recipe'], 'give either builderInstanceId or recipe, not both: the image comes from one source');
  else if (!hasBuilder && recipe === undefined)
    report(
      ['builderInstanceId'],
      'is required (the builder instance to image), unless recipe is given (build the image from a recipe)',
    );
  if (typeof recipe !== 'object' || recipe === null) return;
  const r = recipe as Record<string, unknown>;
  if (r.region !== undefined && r.region !== input.region)
    report(
      ['recipe', 'region'],
      `${show(r.region)} is not the pipeline's region ${show(input.region)}: the recipe is built where the pipeline makes its image`,
    );
  if ((r.accountId ?? undefined) !== (input.accountId ?? undefined))
    report(
      ['recipe', 'accountId'],
      `${show(r.accountId ?? '(this account)')} is not the pipeline's account ${show(input.accountId ?? '(this account)')}`,
    );
  if (input.mode !== undefined)
    report(
      ['mode'],
      'applies to imaging a builder instance; a recipe build stops its own builder before imaging it',
    );
}

export const DEFAULT_APPROVAL_TIMEOUT_SECONDS = 3 * 24 * 3600;
/** `approved-by` on images no person had to approve (the pipeline has no approval gate). */
export const AUTO_APPROVER = 'amiflow:validation';

/**
 * An STS GetCallerIdentity request signed with the approver's own AWS credentials (SigV4, accepted
 * for 15 minutes after its signing time), with the header `APPROVAL_BINDING_HEADER` signed into it
 * naming the decision, the workflow and the run: the worker sends it to STS, which answers with the
 * signer's ARN, and it cannot be replayed for another run or the other decision.
 */
export const approverProofSchema = z.object(
  {
    url: z
      .string({ error: 'must be the URL of a signed STS GetCallerIdentity request' })
      .max(4096, { error: 'must be the URL of a signed STS GetCallerIdentity request' }),
    headers: z.record(z.string(), z.string(), { error: 'must be the signed headers, names to strings' }),
  },
  { error: 'must be a signed STS GetCallerIdentity request { url, headers }' },
);
export type ApproverProof = z.infer<typeof approverProofSchema>;

export const approvalDecisionSchema = withRules(
  strictObject(
    {
      /**
       * Who claims to decide. Only informative: with `proof`, the run records the principal ARN STS
       * verified instead (runs from before verified approvals recorded this name as given).
       */
      by: text(128).optional(),
      comment: z
        .string({ error: 'must be a string of at most 1000 characters' })
        .max(1000, { error: 'must be a string of at most 1000 characters' })
        .optional(),
      /** The approver's identity, proven: see `ApproverProof`. Required by runs that verify approvers. */
      proof: approverProofSchema.optional(),
    },
    'must be an object { proof, by?, comment? }',
  ),
  (decision, report) => {
    if (decision.proof === undefined && decision.by === undefined)
      report(['by'], 'must be a non-empty string of at most 128 characters');
  },
);
export type ApprovalDecision = z.infer<typeof approvalDecisionSchema>;

/**
 * Problems with an approve/reject decision. With a `proof` the approver is checked against
 * `approvers` by the identity STS verifies for it (in the workflow); without one (runs from before
 * verified approvals) `by` is matched against them as a name.
 */
export function approvalDecisionIssues(decision: unknown, approvers?: readonly string[]): InputIssue[] {
  const issues = issuesFor(approvalDecisionSchema, decision, '', '(decision)');
  if (issues.length > 0) return issues;
  const d = decision as ApprovalDecision;
  if (
    d.proof === undefined &&
    approvers &&
    approvers.length > 0 &&
    d.by !== undefined &&
    !approvers.includes(d.by)
  )
    return [
      {
        field: 'by',
        message: `${show(d.by)} is not one of this pipeline's approvers (${approvers.join(', ')})`,
      },
    ];
  return [];
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
  /** The builder imaged ('' for a recipe run that reused an approved image). */
  builderInstanceId: string;
  /** The AMI the builder runs (what the golden image was made from; a recipe's parent image). */
  builderImageId?: string;
  /** A recipe run: the child `buildImage` that made the image. */
  build?: { workflowId: string; recipe: string; contentHash: string; parentImageId: string };
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
