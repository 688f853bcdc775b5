/**
 * rolloutImage: put a new image into production through launch templates and Auto Scaling groups,
 * wave by wave (a canary first), baking each wave under CloudWatch alarms, and undoing every wave
 * (instance refreshes rolled back, previous default launch-template versions restored) when an
 * alarm fires, a refresh fails, or the run fails or is cancelled.
 */
import { z } from 'zod';
import { defineQuery } from '@temporalio/workflow';
import { accountId, region, seconds } from './fields';
import { show, strictObject } from './issues';

/** Launch template ids (lt- + 17 hex) and names (3–128 of letters, digits and ( ) . / - _). */
export const LAUNCH_TEMPLATE_ID_RE = /^lt-([0-9a-f]{8}|[0-9a-f]{17})$/;
export const LAUNCH_TEMPLATE_NAME_RE = /^[a-zA-Z0-9().\-/_]{3,128}$/;
/** Auto Scaling group names: 1–255 characters, no colon (a colon would make it an ARN). */
export const ASG_NAME_RE = /^[^:\s][^:]{0,254}$/;
/** CloudWatch alarm names (1–255 printable characters) or alarm ARNs. */
export const ALARM_ARN_RE = /^arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:\d{12}:alarm:(.{1,255})$/;
const ALARM_NAME_RE = /^[^\u0000-\u001f\u007f]{1,255}$/;
/** Tag keys and values, as EC2 and Auto Scaling take them. */
const TAG_KEY_RE = /^.{1,128}$/s;

function matching(re: RegExp, what: string, example: string) {
  return z
    .string({ error: (iss) => `must be ${what} (e.g. ${example}), got ${show(iss.input)}` })
    .refine((v) => re.test(v), { error: (iss) => `${show(iss.input)} is not ${what} (e.g. ${example})` });
}

const tagSelector = strictObject({
  key: z
    .string({ error: 'is required: a tag key' })
    .refine((v) => TAG_KEY_RE.test(v), { error: 'must be a tag key of 1 to 128 characters' }),
  /** Omitted: any value. */
  value: z
    .string({ error: 'must be a string' })
    .max(256, { error: 'must be at most 256 characters' })
    .optional(),
});
export type TagSelector = z.infer<typeof tagSelector>;

/** One launch template, by exactly one of id, name or tag (a tag may select several). */
export const launchTemplateRefSchema = strictObject({
  id: matching(LAUNCH_TEMPLATE_ID_RE, 'a launch template id', 'lt-0abc1234def567890').optional(),
  name: matching(LAUNCH_TEMPLATE_NAME_RE, 'a launch template name', 'web-servers').optional(),
  tag: tagSelector.optional(),
}).refine((r) => [r.id, r.name, r.tag].filter((v) => v !== undefined).length === 1, {
  error: 'give exactly one of id, name or tag',
});
export type LaunchTemplateRef = z.infer<typeof launchTemplateRefSchema>;

/** One Auto Scaling group by name, or every group carrying a tag. */
export const autoScalingGroupRefSchema = strictObject({
  name: matching(ASG_NAME_RE, 'an Auto Scaling group name', 'web-asg').optional(),
  tag: tagSelector.optional(),
}).refine((r) => [r.name, r.tag].filter((v) => v !== undefined).length === 1, {
  error: 'give exactly one of name or tag',
});
export type AutoScalingGroupRef = z.infer<typeof autoScalingGroupRefSchema>;

/** What to roll out to in one (account, region). */
export const rolloutTargetSchema = strictObject({
  region,
  accountId: accountId.optional(),
  launchTemplates: z.array(launchTemplateRefSchema, { error: 'must be a list' }).optional(),
  autoScalingGroups: z.array(autoScalingGroupRefSchema, { error: 'must be a list' }).optional(),
}).refine((t) => (t.launchTemplates?.length ?? 0) + (t.autoScalingGroups?.length ?? 0) > 0, {
  error: 'names nothing: give launchTemplates or autoScalingGroups (or both)',
});
export type RolloutTarget = z.infer<typeof rolloutTargetSchema>;

const percent = (min: number) =>
  z
    .number({ error: (iss) => `must be a whole percentage from ${min} to 100, got ${show(iss.input)}` })
    .refine((v) => Number.isInteger(v) && v >= min && v <= 100, {
      error: (iss) => `must be a whole percentage from ${min} to 100, got ${show(iss.input)}`,
    });

/** StartInstanceRefresh preferences. */
export const refreshPreferencesSchema = strictObject({
  /** Default 90: at most a tenth of a group is replaced at a time. */
  minHealthyPercentage: percent(0).optional(),
  /** Default: the group's own default instance warm-up. */
  instanceWarmupSeconds: seconds(0, 3600).optional(),
  /** Refresh pauses at these percentages (ascending, the last 100) for `checkpointDelaySeconds`. */
  checkpointPercentages: z
    .array(percent(1), { error: 'must be a list of percentages' })
    .min(1, { error: 'must name at least one percentage (the last 100)' })
    .refine((ps) => ps.every((p, i) => i === 0 || p > (ps[i - 1] ?? 0)) && ps[ps.length - 1] === 100, {
      error: 'must be strictly ascending and end with 100',
    })
    .optional(),
  checkpointDelaySeconds: seconds(0, 2 * 24 * 3600).optional(),
  /** Default true: instances already on the new image are not replaced. */
  skipMatching: z.boolean({ error: 'must be true or false' }).optional(),
  /** Longest wait for one group's refresh. Default 4 h. */
  timeoutSeconds: seconds(60, 2 * 24 * 3600).optional(),
});
export type RefreshPreferences = z.infer<typeof refreshPreferencesSchema>;

/** The canary: one named group, or a percentage of the selected groups (rounded up, at least one). */
export const canarySchema = strictObject({
  group: matching(ASG_NAME_RE, 'an Auto Scaling group name', 'web-asg-canary').optional(),
  percentage: percent(1).optional(),
}).refine((c) => (c.group === undefined) !== (c.percentage === undefined), {
  error: 'give exactly one of group or percentage',
});

export const alarmRefSchema = z
  .string({ error: (iss) => `must be a CloudWatch alarm name or ARN, got ${show(iss.input)}` })
  .refine((v) => (v.startsWith('arn:') ? ALARM_ARN_RE.test(v) : ALARM_NAME_RE.test(v) && v.trim() === v), {
    error: (iss) =>
      `${show(iss.input)} is not a CloudWatch alarm name (1 to 255 printable characters, no surrounding spaces) or ARN (arn:aws:cloudwatch:<region>:<account>:alarm:<name>)`,
  });

export const rolloutWavesSchema = strictObject({
  canary: canarySchema.optional(),
  /** Groups per wave after the canary. Default: all remaining groups in one wave. */
  size: z
    .number({ error: (iss) => `must be a whole number of groups from 1 to 500, got ${show(iss.input)}` })
    .refine((v) => Number.isInteger(v) && v >= 1 && v <= 500, {
      error: (iss) =>
        `must be a whole number of groups from 1 to 500 (a wave cannot be empty), got ${show(iss.input)}`,
    })
    .optional(),
  /** At most this many instance refreshes run at once within a wave. Default 2. */
  concurrency: z
    .number({ error: (iss) => `must be a whole number from 1 to 50, got ${show(iss.input)}` })
    .refine((v) => Number.isInteger(v) && v >= 1 && v <= 50, {
      error: (iss) => `must be a whole number from 1 to 50, got ${show(iss.input)}`,
    })
    .optional(),
});

export const rolloutBakeSchema = strictObject({
  /** How long each wave must run with every alarm OK before the next starts. Default 900 s. */
  seconds: seconds(0, 7 * 24 * 3600).optional(),
  /** Alarms (names in the target's region, or ARNs) that must stay OK; ALARM rolls everything back. */
  alarms: z.array(alarmRefSchema, { error: 'must be a list of alarm names or ARNs' }).max(100).optional(),
  /** How often the alarms are read during a bake. Default 60 s. */
  checkIntervalSeconds: seconds(10, 3600).optional(),
  /** Treat INSUFFICIENT_DATA as a failure too. Default false (a new alarm has no data yet). */
  failOnInsufficientData: z.boolean({ error: 'must be true or false' }).optional(),
});

export const rolloutApprovalSchema = strictObject({
  /** IAM role or user ARNs (or patterns) allowed to approve; the decision is verified by STS. */
  approvers: z
    .array(z.string({ error: 'must be an IAM role or user ARN' }), { error: 'must be a list' })
    .optional(),
  /** Default 24 h; no decision in time rolls everything back. */
  timeoutSeconds: seconds(60, 30 * 24 * 3600).optional(),
});

/** The rollout settings a golden pipeline's `rollout` stage takes (the image is the pipeline's). */
export const goldenRolloutStageSchema = strictObject({
  targets: z.array(rolloutTargetSchema, { error: 'must be a list of targets' }).min(1).max(50),
  setDefaultVersion: z.boolean({ error: 'must be true or false' }).optional(),
  refresh: refreshPreferencesSchema.optional(),
  waves: rolloutWavesSchema.optional(),
  bake: rolloutBakeSchema.optional(),
  approval: rolloutApprovalSchema.optional(),
});

export const rolloutImageInputSchema = strictObject({
  /** The image to roll out (in every target region: copy it there first). Or per region in `imageIds`. */
  imageId: matching(/^ami-([0-9a-f]{8}|[0-9a-f]{17})$/, 'an AMI id', 'ami-0abc1234def567890').optional(),
  /** The image per region (a golden pipeline's copies), when regions differ. */
  imageIds: z
    .record(region, matching(/^ami-([0-9a-f]{8}|[0-9a-f]{17})$/, 'an AMI id', 'ami-0abc1234def567890'), {
      error: 'must be an object of region → AMI id',
    })
    .optional(),
  targets: z
    .array(rolloutTargetSchema, { error: 'must be a list of targets' })
    .min(1, { error: 'must name at least one target (region with launch templates or Auto Scaling groups)' })
    .max(50, { error: 'must name at most 50 targets' }),
  /** Make each new launch-template version the default. Default true. */
  setDefaultVersion: z.boolean({ error: 'must be true or false' }).optional(),
  refresh: refreshPreferencesSchema.optional(),
  waves: rolloutWavesSchema.optional(),
  bake: rolloutBakeSchema.optional(),
  /** A person approves after the canary's bake (the golden pipeline's verified approvals). */
  approval: rolloutApprovalSchema.optional(),
}).superRefine((input, ctx) => {
  if (input.imageId === undefined && input.imageIds === undefined)
    ctx.addIssue({ code: 'custom', path: ['imageId'], message: 'is required: the AMI id to roll out' });
  if (input.imageId !== undefined && input.imageIds !== undefined)
    ctx.addIssue({ code: 'custom', path: ['imageIds'], message: 'give imageId or imageIds, not both' });
  if (input.imageIds)
    input.targets.forEach((t, i) => {
      if (!input.imageIds?.[t.region])
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i, 'region'],
          message: `has no image in imageIds (regions given: ${Object.keys(input.imageIds ?? {}).join(', ')})`,
        });
    });
  const seen = new Set<string>();
  input.targets.forEach((t, i) => {
    const key = `${t.accountId ?? ''}/${t.region}`;
    if (seen.has(key))
      ctx.addIssue({
        code: 'custom',
        path: ['targets', i],
        message: `repeats ${t.region}${t.accountId ? ` in ${t.accountId}` : ''}: list each account and region once`,
      });
    seen.add(key);
  });
  const bake = input.bake;
  if (bake?.checkIntervalSeconds !== undefined && bake.seconds !== undefined && bake.seconds > 0)
    if (bake.checkIntervalSeconds > bake.seconds)
      ctx.addIssue({
        code: 'custom',
        path: ['bake', 'checkIntervalSeconds'],
        message: `${bake.checkIntervalSeconds} s is longer than the bake (${bake.seconds} s): the alarms would never be read`,
      });
  const hasGroups = input.targets.some((t) => (t.autoScalingGroups?.length ?? 0) > 0);
  if (input.waves?.canary && !hasGroups)
    ctx.addIssue({
      code: 'custom',
      path: ['waves', 'canary'],
      message: 'needs Auto Scaling groups in targets: a canary is a group',
    });
  if (input.refresh && !hasGroups)
    ctx.addIssue({
      code: 'custom',
      path: ['refresh'],
      message: 'applies to Auto Scaling groups, and targets name none',
    });
});
export type RolloutImageInput = z.infer<typeof rolloutImageInputSchema>;

export const DEFAULT_ROLLOUT = {
  minHealthyPercentage: 90,
  skipMatching: true,
  refreshTimeoutSeconds: 4 * 3600,
  canaryPercentage: 10,
  concurrency: 2,
  bakeSeconds: 900,
  checkIntervalSeconds: 60,
  approvalTimeoutSeconds: 24 * 3600,
} as const;

/** A launch template as the rollout found it, and what it did to it. */
export interface LaunchTemplateChange {
  region: string;
  accountId?: string;
  launchTemplateId: string;
  launchTemplateName: string;
  /** The default version before this run. */
  previousDefaultVersion: number;
  /** The version this run created (with the new image). */
  newVersion: number;
  /** Whether this run made `newVersion` the default. */
  madeDefault: boolean;
  wave: number;
}

/** Instance refresh states, as Auto Scaling reports them. */
export const REFRESH_STATES = [
  'Pending',
  'InProgress',
  'Successful',
  'Failed',
  'Cancelling',
  'Cancelled',
  'RollbackInProgress',
  'RollbackFailed',
  'RollbackSuccessful',
  'Baking',
] as const;
export type RefreshState = (typeof REFRESH_STATES)[number];

export interface GroupRefresh {
  region: string;
  accountId?: string;
  autoScalingGroupName: string;
  launchTemplateId: string;
  /** The group's launch template version before this run (`$Default`, `$Latest` or a number). */
  previousVersion: string;
  newVersion: number;
  instanceRefreshId?: string;
  status?: RefreshState;
  percentageComplete?: number;
  instancesToUpdate?: number;
  wave: number;
}

/** What an undo did, per resource, in the order it was done. */
export interface RolloutRestore {
  kind: 'rollback-refresh' | 'cancel-refresh' | 'refresh-to-previous' | 'restore-default-version';
  region: string;
  accountId?: string;
  /** The group or launch template. */
  resource: string;
  /** E.g. "default version 3 again (was 4)", "instance refresh abc rolled back: RollbackSuccessful". */
  detail: string;
  outcome: 'done' | 'failed';
  error?: string;
}

export interface RolloutImageResult {
  imageIds: Record<string, string>;
  waves: { wave: number; groups: string[]; launchTemplates: string[]; bakedSeconds: number }[];
  launchTemplates: LaunchTemplateChange[];
  refreshes: GroupRefresh[];
  approval?: { by: string; at: string; verifiedArn?: string };
  startedAt: string;
  finishedAt: string;
}

/** Live view of the rollout: the current wave and every group's refresh (percentage, instances to update). */
export interface RolloutProgress {
  wave: number;
  waves: number;
  phase: 'planning' | 'rolling' | 'baking' | 'awaiting approval' | 'rolling back' | 'done';
  refreshes: GroupRefresh[];
  launchTemplates: LaunchTemplateChange[];
  restored: RolloutRestore[];
}
export const rolloutProgressQuery = defineQuery<RolloutProgress>('rolloutProgress');

/**
 * The `rollout` stage a golden pipeline can end with: a rollout input without the image, which is
 * the pipeline's new image in each region (the original or its copy in the pipeline's account).
 */
export type GoldenRolloutStage = Omit<RolloutImageInput, 'imageId' | 'imageIds'>;
