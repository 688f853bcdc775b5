/**
 * The plan file (`amiflow plan validate|apply <file>`) as editors see it: the zod schema behind
 * contracts/plan.schema.json (`npm run plan-schema` writes it; a test fails when it is stale), so
 * YAML and JSON editors complete and check plan files (`# yaml-language-server: $schema=…`).
 *
 * It states the file's shape: which keys exist where, enums, ids, and durations written `90s`,
 * `15m`, `2h`, `3d`, `1w`, `1h30m` (or seconds). The value rules and the messages with line and field
 * stay in client/plan-file.ts and the workflow validators; as those move onto schemas in contracts/,
 * the entries below should become those schemas with durations in place of seconds.
 */
import { z } from 'zod';
import { CONSISTENCY_MODES } from './common';
import { accountId, imageName, instanceId, region, userTags } from './fields';
import { appConsistentOptionsSchema } from './image';
import { goldenRolloutStageSchema } from './rollout';
import { KMS_ACCESS_MODES } from './share';

export const PLAN_API_VERSION = 'amiflow/v1';
export const OVERLAP_POLICIES = [
  'skip',
  'buffer-one',
  'buffer-all',
  'cancel-other',
  'terminate-other',
  'allow-all',
] as const;
export const PLAN_DURATION_RE = /^(\d+[smhdw])+$/;

const duration = z
  .union([z.string().regex(PLAN_DURATION_RE), z.number().int().min(0)])
  .describe('a duration: 90s, 15m, 2h, 3d, 1w, 1h30m, or a number of seconds');
const text = (max: number) => z.string().max(max);
const strict = <S extends z.ZodRawShape>(shape: S) => z.strictObject(shape);

const schedule = strict({
  cron: z
    .union([z.string(), z.array(z.string()).min(1)])
    .describe('cron (5 fields, or @daily, @weekly, …), evaluated in timeZone; or a list of them'),
  every: duration.describe('or an interval'),
  offset: duration.describe('offset of the interval'),
  timeZone: z.string().describe('IANA time zone, e.g. Europe/Berlin (here or in defaults)'),
  catchupWindow: duration.describe('runs missed while Temporal was down start if at most this late'),
  overlap: z.enum(OVERLAP_POLICIES).describe('a run due while the previous one still runs'),
  jitter: duration,
  pauseOnFailure: z.boolean(),
  paused: z.boolean().describe('declared state; unset: apply keeps an operator’s pause'),
  note: text(500),
}).partial();

const retention = {
  keep: z.number().int().min(1).max(1000).describe('newest versions kept (the newest is never retired)'),
  maxAge: duration,
};

const pipeline = strict({
  name: z.string().describe('the pipeline: schedule id amiflow/<plan>/<name>, image name prefix'),
  region: region.optional(),
  accountId: accountId.optional(),
  builderInstanceId: instanceId
    .optional()
    .describe('the instance kept patched by its owners; amiflow images it (or give recipe)'),
  recipe: z
    .string()
    .optional()
    .describe(
      'or build the image from this recipe file (path relative to the plan; amiflow recipe validate)',
    ),
  mode: z.enum(CONSISTENCY_MODES).optional(),
  /** Options of mode app-consistent (seconds, as the workflow takes them). */
  appConsistent: appConsistentOptionsSchema.optional(),
  versioning: z
    .union([
      strict({ scheme: z.literal('date') }),
      strict({ scheme: z.literal('semver'), series: z.string() }),
    ])
    .optional(),
  imageNamePrefix: imageName.optional(),
  description: text(255).optional(),
  tags: userTags.optional(),
  validation: strict({
    subnetId: z.string().describe('a test instance is launched here from the new image'),
    instanceType: z.string().optional(),
    securityGroupIds: z.array(z.string()).optional(),
    instanceProfileArn: z.string().optional(),
    readyTimeout: duration.optional(),
    healthCheck: strict({
      successMarker: text(200),
      failureMarker: text(200).optional(),
      timeout: duration.optional(),
    }).optional(),
  }).optional(),
  approval: strict({
    timeout: duration.optional(),
    approvers: z.array(z.string()).optional(),
  }).optional(),
  distribution: strict({
    copies: z
      .array(
        strict({
          region,
          accountId: accountId.optional(),
          kmsKeyId: z.string().optional(),
          name: imageName.optional(),
          description: text(255).optional(),
        }),
      )
      .optional(),
    shareWith: strict({
      accountIds: z.array(accountId).optional(),
      organizationArns: z.array(z.string()).optional(),
      organizationalUnitArns: z.array(z.string()).optional(),
      allowCopy: z.boolean().optional(),
      kmsAccess: z.enum(KMS_ACCESS_MODES).optional(),
    }).optional(),
    concurrencyPerRegion: z.number().int().min(1).optional(),
  }).optional(),
  publish: strict({ parameterName: z.string() }).optional(),
  retention: strict({
    ...retention,
    deprecateAfter: duration,
    deregisterAfter: duration,
    protectNewest: z.boolean(),
  })
    .partial()
    .optional(),
  timeouts: strict({ instanceState: duration, imageAvailable: duration, copyAvailable: duration })
    .partial()
    .optional(),
  /** Roll the approved image out last (contracts/rollout.ts; seconds, as the workflow takes them). */
  rollout: goldenRolloutStageSchema.optional(),
  schedule,
});

const backup = strict({
  name: z.string().describe('the backup plan: schedule id amiflow/<plan>/<name>'),
  region: region.optional(),
  accountId: accountId.optional(),
  instanceIds: z.array(instanceId).optional(),
  selector: strict({ tags: userTags }).optional(),
  mode: z.enum(CONSISTENCY_MODES).optional(),
  /** Options of mode app-consistent, for every instance (seconds, as the workflow takes them). */
  appConsistent: appConsistentOptionsSchema.optional(),
  window: duration.optional().describe('instances not started within this long are skipped'),
  retention: strict(retention).partial().optional(),
  copyTo: strict({ region, kmsKeyId: z.string().optional() }).optional(),
  concurrency: z.number().int().min(1).optional(),
  tags: userTags.optional(),
  timeouts: strict({ instanceState: duration, imageAvailable: duration, copyAvailable: duration })
    .partial()
    .optional(),
  schedule,
});

export const planFileSchema = strict({
  apiVersion: z.literal(PLAN_API_VERSION),
  plan: z.string().describe('the plan’s name: apply creates, updates and deletes only its own schedules'),
  defaults: strict({
    timeZone: z.string(),
    catchupWindow: duration,
    overlap: z.enum(OVERLAP_POLICIES),
    region,
    accountId,
  })
    .partial()
    .optional(),
  pipelines: z.array(pipeline).optional().describe('golden-image pipelines'),
  backups: z.array(backup).optional().describe('backup plans'),
}).describe('amiflow plan: golden-image pipelines and backup plans, with their schedules');
export type PlanFile = z.input<typeof planFileSchema>;

/** The JSON Schema of plan files, as committed in contracts/plan.schema.json. */
export function planJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(planFileSchema, { target: 'draft-7', io: 'input', unrepresentable: 'any' });
}
