/**
 * Input validation for `migrateInstance`, shared by the client (before anything starts) and the
 * workflow (again at start, before any AWS call). Pure and deterministic, like validation.ts, whose
 * checks it reuses: every issue names its field path.
 *
 * What only AWS can answer (does the AZ exist, is there a subnet there, does the source have an
 * Elastic IP) is checked by the workflow's first step, still before anything is touched.
 */
import type { MigrateInstanceInput } from '../contracts';
import { ELASTIC_IP_ACTIONS, SOURCE_ACTIONS } from '../contracts';
import type { InputIssue } from './validation';
import {
  InvalidInputError,
  checkAccountId,
  checkImageName,
  checkInstanceId,
  checkNoUnknownKeys,
  checkRegion,
  checkSeconds,
  show,
} from './validation';

/** `eu-west-1b`, and Local Zones such as `us-west-2-lax-1a`: the region, then a zone suffix. */
const ZONE_SUFFIX_RE = /^(-[a-z0-9]+)*[a-z]$/;
const ZONE_SHAPE_RE = /^[a-z]{2}(-[a-z0-9]+)+[a-z]$/;
/** Enough of a region name to compare an AZ with; checkRegion judges the region itself. */
const REGION_PREFIX_RE = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const SUBNET_RE = /^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/;
const SECURITY_GROUP_RE = /^sg-([0-9a-f]{8}|[0-9a-f]{17})$/;
/** `t3.micro`, `m7i-flex.large`, `u-6tb1.metal`: family, a dot, size. */
const INSTANCE_TYPE_RE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;
/** EC2 allows 5 security groups per interface by default, 16 at most with a quota increase. */
const MAX_SECURITY_GROUPS = 16;

const MIGRATE_FIELDS = [
  'region',
  'accountId',
  'instanceId',
  'targetAvailabilityZone',
  'sourceAction',
  'keepImage',
  'imageName',
  'elasticIp',
  'extraNetworkInterfaces',
  'overrides',
  'timeouts',
] as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkZone(issues: InputIssue[], field: string, value: unknown, region: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || value === '') {
    issues.push({ field, message: 'must be an Availability Zone name (e.g. eu-west-1b)' });
    return;
  }
  // Without a valid region (reported on its own field) only the shape can be checked.
  const regionOk = typeof region === 'string' && REGION_PREFIX_RE.test(region);
  if (regionOk && !value.startsWith(region)) {
    issues.push({
      field,
      message: `${show(value)} is not an Availability Zone of region ${show(region)} (e.g. ${region}b)`,
    });
    return;
  }
  if (regionOk ? !ZONE_SUFFIX_RE.test(value.slice(region.length)) : !ZONE_SHAPE_RE.test(value))
    issues.push({
      field,
      message: `${show(value)} is not an Availability Zone name (the region followed by a letter, e.g. eu-west-1b)`,
    });
}

function checkOverrides(issues: InputIssue[], value: unknown): void {
  if (value === undefined) return;
  if (!isObject(value)) {
    issues.push({ field: 'overrides', message: 'must be an object' });
    return;
  }
  checkNoUnknownKeys(issues, 'overrides.', value, ['instanceType', 'subnetId', 'securityGroupIds']);
  const { instanceType, subnetId, securityGroupIds } = value;
  if (
    instanceType !== undefined &&
    (typeof instanceType !== 'string' || instanceType.length > 32 || !INSTANCE_TYPE_RE.test(instanceType))
  )
    issues.push({
      field: 'overrides.instanceType',
      message: `${show(instanceType)} is not an EC2 instance type (e.g. m7i.large)`,
    });
  if (subnetId !== undefined && (typeof subnetId !== 'string' || !SUBNET_RE.test(subnetId)))
    issues.push({
      field: 'overrides.subnetId',
      message: `${show(subnetId)} is not a subnet id (subnet- followed by 8 or 17 lowercase hex digits)`,
    });
  if (securityGroupIds !== undefined) {
    const field = 'overrides.securityGroupIds';
    if (!Array.isArray(securityGroupIds) || securityGroupIds.length === 0) {
      issues.push({ field, message: 'must be a non-empty list of security group ids (sg-…)' });
      return;
    }
    if (securityGroupIds.length > MAX_SECURITY_GROUPS)
      issues.push({
        field,
        message: `has ${securityGroupIds.length} groups; at most ${MAX_SECURITY_GROUPS}`,
      });
    securityGroupIds.forEach((id: unknown, i) => {
      if (typeof id !== 'string' || !SECURITY_GROUP_RE.test(id))
        issues.push({
          field: `${field}.${i}`,
          message: `${show(id)} is not a security group id (sg- followed by 8 or 17 lowercase hex digits)`,
        });
    });
    if (new Set(securityGroupIds).size !== securityGroupIds.length)
      issues.push({ field, message: 'names a security group more than once' });
  }
}

/** Every problem with a `migrateInstance` input, in field order; empty when it is valid. */
export function migrateInstanceIssues(input: unknown): InputIssue[] {
  if (!isObject(input)) return [{ field: '(input)', message: 'must be an object' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', input, MIGRATE_FIELDS);
  checkRegion(issues, 'region', input.region);
  checkAccountId(issues, 'accountId', input.accountId);
  checkInstanceId(issues, 'instanceId', input.instanceId);
  checkZone(issues, 'targetAvailabilityZone', input.targetAvailabilityZone, input.region);
  const subnetGiven = isObject(input.overrides) && input.overrides.subnetId !== undefined;
  if (input.targetAvailabilityZone === undefined && !subnetGiven)
    issues.push({
      field: 'targetAvailabilityZone',
      message: 'is required unless overrides.subnetId names the subnet to launch into',
    });
  if (!SOURCE_ACTIONS.includes(input.sourceAction as never))
    issues.push({
      field: 'sourceAction',
      message: `${input.sourceAction === undefined ? 'is required' : `${show(input.sourceAction)} is not an action`}: say what happens to the source once the new instance passed its checks: ${SOURCE_ACTIONS.join(', ')}`,
    });
  if (input.keepImage !== undefined && typeof input.keepImage !== 'boolean')
    issues.push({ field: 'keepImage', message: `must be true or false, got ${show(input.keepImage)}` });
  if (input.imageName !== undefined) checkImageName(issues, 'imageName', input.imageName);
  if (input.elasticIp !== undefined && !ELASTIC_IP_ACTIONS.includes(input.elasticIp as never))
    issues.push({
      field: 'elasticIp',
      message: `${show(input.elasticIp)} is not an Elastic IP action; use ${ELASTIC_IP_ACTIONS.join(' or ')}`,
    });
  if (input.extraNetworkInterfaces !== undefined && input.extraNetworkInterfaces !== 'leave')
    issues.push({
      field: 'extraNetworkInterfaces',
      message: `${show(input.extraNetworkInterfaces)} is not supported; the only choice is 'leave' (network interfaces cannot change AZ)`,
    });
  checkOverrides(issues, input.overrides);
  if (input.timeouts !== undefined) {
    if (!isObject(input.timeouts)) {
      issues.push({ field: 'timeouts', message: 'must be an object' });
    } else {
      const t = input.timeouts;
      checkNoUnknownKeys(issues, 'timeouts.', t, [
        'instanceStateSeconds',
        'imageAvailableSeconds',
        'instanceReadySeconds',
      ]);
      checkSeconds(issues, 'timeouts.instanceStateSeconds', t.instanceStateSeconds, 30, 24 * 3600);
      checkSeconds(issues, 'timeouts.imageAvailableSeconds', t.imageAvailableSeconds, 60, 7 * 24 * 3600);
      checkSeconds(issues, 'timeouts.instanceReadySeconds', t.instanceReadySeconds, 60, 24 * 3600);
    }
  }
  return issues;
}

/** Returns the input typed when valid; throws `InvalidInputError` naming every bad field otherwise. */
export function parseMigrateInstanceInput(input: unknown): MigrateInstanceInput {
  const issues = migrateInstanceIssues(input);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input as MigrateInstanceInput;
}
