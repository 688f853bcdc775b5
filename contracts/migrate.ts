/**
 * migrateInstance: move an instance to another Availability Zone.
 */
import { z } from 'zod';
import { accountId, imageName, instanceId, region, seconds } from './fields';
import { DEFAULT_TIMEOUTS, imageFromInstanceTimeoutsSchema } from './image';
import { show, strictObject } from './issues';

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

/** `eu-west-1b`, and Local Zones such as `us-west-2-lax-1a`: the region, then a zone suffix. */
const ZONE_SUFFIX_RE = /^(-[a-z0-9]+)*[a-z]$/;
const ZONE_SHAPE_RE = /^[a-z]{2}(-[a-z0-9]+)+[a-z]$/;
/** Enough of a region name to compare an AZ with; the region field judges the region itself. */
const REGION_PREFIX_RE = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const SUBNET_RE = /^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/;
const SECURITY_GROUP_RE = /^sg-([0-9a-f]{8}|[0-9a-f]{17})$/;
/** `t3.micro`, `m7i-flex.large`, `u-6tb1.metal`: family, a dot, size. */
const INSTANCE_TYPE_RE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;
/** EC2 allows 5 security groups per interface by default, 16 at most with a quota increase. */
const MAX_SECURITY_GROUPS = 16;

const notAZone = 'must be an Availability Zone name (e.g. eu-west-1b)';
const notAType = (v: unknown) => `${show(v)} is not an EC2 instance type (e.g. m7i.large)`;
const notASubnet = (v: unknown) =>
  `${show(v)} is not a subnet id (subnet- followed by 8 or 17 lowercase hex digits)`;
const notAGroup = (v: unknown) =>
  `${show(v)} is not a security group id (sg- followed by 8 or 17 lowercase hex digits)`;
const sourceActionMessage = (v: unknown) =>
  `${v === undefined ? 'is required' : `${show(v)} is not an action`}: say what happens to the source once the new instance passed its checks: ${SOURCE_ACTIONS.join(', ')}`;

export const migrateInstanceOverridesSchema = strictObject({
  /** Instead of the source's instance type. */
  instanceType: z
    .string({ error: (iss) => notAType(iss.input) })
    .refine((v) => v.length <= 32 && INSTANCE_TYPE_RE.test(v), { error: (iss) => notAType(iss.input) })
    .optional(),
  /** The subnet to launch into (it sets the target AZ); default: a subnet of the source's VPC in the target AZ. */
  subnetId: z
    .string({ error: (iss) => notASubnet(iss.input) })
    .regex(SUBNET_RE, { error: (iss) => notASubnet(iss.input) })
    .optional(),
  /** Instead of the source's security groups (needed when the subnet is in another VPC). */
  securityGroupIds: z
    .array(
      z
        .string({ error: (iss) => notAGroup(iss.input) })
        .regex(SECURITY_GROUP_RE, { error: (iss) => notAGroup(iss.input) }),
      {
        error: 'must be a non-empty list of security group ids (sg-…)',
      },
    )
    .min(1, { error: 'must be a non-empty list of security group ids (sg-…)' })
    .max(MAX_SECURITY_GROUPS, {
      error: (iss) => `has ${(iss.input as unknown[]).length} groups; at most ${MAX_SECURITY_GROUPS}`,
    })
    .refine((ids) => new Set(ids).size === ids.length, { error: 'names a security group more than once' })
    .optional(),
});
export type MigrateInstanceOverrides = z.infer<typeof migrateInstanceOverridesSchema>;

export const migrateInstanceTimeoutsSchema = strictObject({
  ...imageFromInstanceTimeoutsSchema.shape,
  /** Longest wait for the new instance to run and pass both status checks. Default 1800 s. */
  instanceReadySeconds: seconds(60, 24 * 3600).optional(),
});
export type MigrateInstanceTimeouts = z.infer<typeof migrateInstanceTimeoutsSchema>;

export const migrateInstanceInputSchema = strictObject({
  region,
  accountId: accountId.optional(),
  instanceId,
  /** e.g. `eu-west-1b`; may be omitted when `overrides.subnetId` names the target subnet. */
  targetAvailabilityZone: z.string({ error: notAZone }).min(1, { error: notAZone }).optional(),
  sourceAction: z.enum(SOURCE_ACTIONS, { error: (iss) => sourceActionMessage(iss.input) }),
  /** Keep the intermediate AMI (and its snapshots) after a successful migration. Default false. */
  keepImage: z.boolean({ error: (iss) => `must be true or false, got ${show(iss.input)}` }).optional(),
  /** Name of the intermediate AMI; default `amiflow-migrate-<instance>-to-<az>-<run>`. */
  imageName: imageName.optional(),
  /** Required when the source has an Elastic IP. */
  elasticIp: z
    .enum(ELASTIC_IP_ACTIONS, {
      error: (iss) =>
        `${show(iss.input)} is not an Elastic IP action; use ${ELASTIC_IP_ACTIONS.join(' or ')}`,
    })
    .optional(),
  /** Required when the source has network interfaces besides its primary one: they stay with the source. */
  extraNetworkInterfaces: z
    .literal('leave', {
      error: (iss) =>
        `${show(iss.input)} is not supported; the only choice is 'leave' (network interfaces cannot change AZ)`,
    })
    .optional(),
  overrides: migrateInstanceOverridesSchema.optional(),
  timeouts: migrateInstanceTimeoutsSchema.optional(),
}).superRefine(zoneRules, { when: () => true });
export type MigrateInstanceInput = z.infer<typeof migrateInstanceInputSchema>;

/**
 * The rules between fields: the target zone belongs to the region, and is needed unless a subnet
 * says where to launch. They run even when other fields are bad (every issue at once), so they
 * read the raw values and judge only what they can.
 */
function zoneRules(raw: unknown, ctx: z.RefinementCtx): void {
  if (typeof raw !== 'object' || raw === null) return; // "must be an object" says it all
  const input = raw as Record<string, unknown>;
  const zone = input.targetAvailabilityZone;
  const overrides = input.overrides;
  const subnetGiven =
    typeof overrides === 'object' &&
    overrides !== null &&
    (overrides as Record<string, unknown>).subnetId !== undefined;
  const issue = (message: string) =>
    ctx.addIssue({ code: 'custom', message, path: ['targetAvailabilityZone'] });
  if (zone === undefined) {
    if (!subnetGiven) issue('is required unless overrides.subnetId names the subnet to launch into');
    return;
  }
  if (typeof zone !== 'string' || zone === '') return; // the field's own schema said so
  // Without a valid region (reported on its own field) only the shape can be checked.
  const r = input.region;
  const regionOk = typeof r === 'string' && REGION_PREFIX_RE.test(r);
  if (regionOk && !zone.startsWith(r))
    issue(`${show(zone)} is not an Availability Zone of region ${show(r)} (e.g. ${r}b)`);
  else if (regionOk ? !ZONE_SUFFIX_RE.test(zone.slice(r.length)) : !ZONE_SHAPE_RE.test(zone))
    issue(
      `${show(zone)} is not an Availability Zone name (the region followed by a letter, e.g. eu-west-1b)`,
    );
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
