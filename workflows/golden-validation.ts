/**
 * Input validation for goldenImage and backupInstances (and the approval decision), shared by the
 * client and the plan file (before anything starts) and the workflows (again at start, before any
 * AWS call). Pure and deterministic; the copy and share parts reuse the copyImage and shareImage
 * validators, with their field names mapped to where they sit in these inputs.
 */
import type { ApprovalDecision, BackupInput, GoldenImageInput } from '../contracts';
import { MAX_TAGS_PER_RESOURCE } from '../contracts';
import { rolloutStageIssues } from './rollout-plan';
import { copyImageIssues, shareImageIssues } from './share-validation';
import type { InputIssue } from './validation';
import {
  InvalidInputError,
  checkAccountId,
  checkImageName,
  checkInstanceId,
  checkNoUnknownKeys,
  checkRegion,
  checkSeconds,
  checkTags,
  show,
} from './validation';

/** Pipeline and backup-plan names: in image names, tags, workflow ids and schedule ids. */
export const PLAN_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
const SUBNET_RE = /^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/;
const SG_RE = /^sg-([0-9a-f]{8}|[0-9a-f]{17})$/;
const INSTANCE_TYPE_RE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;
const PROFILE_ARN_RE = /^arn:aws[a-z-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]{1,128}$/;
const SERIES_RE = /^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/;
/** SSM parameter names: letters, digits and _ . - /; a name with a slash is a path starting with one. */
const PARAMETER_RE = /^[A-Za-z0-9_.\-/]{1,1011}$/;
const PLACEHOLDER_IMAGE = 'ami-00000000';
const YEAR = 365 * 24 * 3600;
/** Golden images carry up to 14 tags of amiflow's own (run, lineage, approval); EC2 allows 50. */
export const MAX_GOLDEN_USER_TAGS = MAX_TAGS_PER_RESOURCE - 20;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkName(issues: InputIssue[], field: string, value: unknown, what: string): void {
  if (typeof value !== 'string' || value === '')
    issues.push({ field, message: `is required: the ${what}'s name (e.g. web-base)` });
  else if (!PLAN_NAME_RE.test(value))
    issues.push({
      field,
      message: `${show(value)} is not a valid ${what} name: 1 to 40 lowercase letters, digits and inner dashes`,
    });
}

function checkIsoTime(issues: InputIssue[], field: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(Date.parse(value)))
    issues.push({
      field,
      message: `must be an ISO 8601 time (e.g. 2026-01-15T03:00:00Z), got ${show(value)}`,
    });
}

function checkBoolean(issues: InputIssue[], field: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean')
    issues.push({ field, message: `must be true or false, got ${show(value)}` });
}

function checkText(issues: InputIssue[], field: string, value: unknown, max: number, required = false): void {
  if (value === undefined && !required) return;
  if (typeof value !== 'string' || value.trim() === '')
    issues.push({ field, message: `must be a non-empty string of at most ${max} characters` });
  else if (value.length > max)
    issues.push({ field, message: `must be at most ${max} characters, got ${value.length}` });
  else if (/[\r\n]/.test(value)) issues.push({ field, message: 'must be one line' });
}

function checkIdList(
  issues: InputIssue[],
  field: string,
  value: unknown,
  check: (issues: InputIssue[], field: string, value: unknown) => void,
): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) {
    issues.push({ field, message: `must be a list, got ${show(value)}` });
    return;
  }
  const seen = new Set<unknown>();
  value.forEach((v: unknown, i) => {
    if (seen.has(v)) issues.push({ field: `${field}[${i}]`, message: `${show(v)} is listed twice` });
    seen.add(v);
    check(issues, `${field}[${i}]`, v);
  });
}

/** Retention fields; `allowed` lists those the workflow takes. */
export function checkRetention(
  issues: InputIssue[],
  field: string,
  value: unknown,
  allowed: readonly string[],
): void {
  if (value === undefined) return;
  if (!isObject(value)) {
    issues.push({ field, message: 'must be an object' });
    return;
  }
  checkNoUnknownKeys(issues, `${field}.`, value, allowed);
  const keep = value.keep;
  if (keep !== undefined && (typeof keep !== 'number' || !Number.isInteger(keep) || keep < 1 || keep > 1000))
    issues.push({
      field: `${field}.keep`,
      message: `must be a whole number from 1 to 1000 (the newest image is never retired), got ${show(keep)}`,
    });
  checkSeconds(issues, `${field}.maxAgeSeconds`, value.maxAgeSeconds, 3600, 10 * YEAR);
  checkSeconds(issues, `${field}.deprecateAfterSeconds`, value.deprecateAfterSeconds, 0, 10 * YEAR);
  checkSeconds(issues, `${field}.deregisterAfterSeconds`, value.deregisterAfterSeconds, 0, 10 * YEAR);
  checkBoolean(issues, `${field}.protectNewest`, value.protectNewest);
  checkBoolean(issues, `${field}.retireShared`, value.retireShared);
}

function checkImageTimeouts(issues: InputIssue[], value: unknown): void {
  if (value === undefined) return;
  if (!isObject(value)) {
    issues.push({ field: 'timeouts', message: 'must be an object' });
    return;
  }
  checkNoUnknownKeys(issues, 'timeouts.', value, [
    'instanceStateSeconds',
    'imageAvailableSeconds',
    'copyAvailableSeconds',
  ]);
  checkSeconds(issues, 'timeouts.instanceStateSeconds', value.instanceStateSeconds, 30, 24 * 3600);
  checkSeconds(issues, 'timeouts.imageAvailableSeconds', value.imageAvailableSeconds, 60, 7 * 24 * 3600);
  checkSeconds(issues, 'timeouts.copyAvailableSeconds', value.copyAvailableSeconds, 60, 7 * 24 * 3600);
}

/** Issues of another validator, with their fields renamed to where they sit here (undefined: dropped). */
function adopt(
  issues: InputIssue[],
  found: InputIssue[],
  rename: (field: string, issue: InputIssue) => string | undefined,
): void {
  for (const i of found) {
    const field = rename(i.field, i);
    if (field !== undefined) issues.push({ field, message: i.message });
  }
}

function checkValidation(issues: InputIssue[], value: unknown): void {
  if (value === undefined) return;
  if (!isObject(value)) {
    issues.push({ field: 'validation', message: 'must be an object with at least subnetId' });
    return;
  }
  checkNoUnknownKeys(issues, 'validation.', value, [
    'subnetId',
    'instanceType',
    'securityGroupIds',
    'instanceProfileArn',
    'readyTimeoutSeconds',
    'healthCheck',
  ]);
  if (typeof value.subnetId !== 'string' || !SUBNET_RE.test(value.subnetId))
    issues.push({
      field: 'validation.subnetId',
      message: `${value.subnetId === undefined ? 'is required' : `${show(value.subnetId)} is not a subnet id`} (subnet- followed by 8 or 17 lowercase hex digits): the test instance is launched there`,
    });
  if (
    value.instanceType !== undefined &&
    (typeof value.instanceType !== 'string' || !INSTANCE_TYPE_RE.test(value.instanceType))
  )
    issues.push({
      field: 'validation.instanceType',
      message: `${show(value.instanceType)} is not an instance type (e.g. t3.micro)`,
    });
  checkIdList(issues, 'validation.securityGroupIds', value.securityGroupIds, (iss, f, v) => {
    if (typeof v !== 'string' || !SG_RE.test(v))
      iss.push({
        field: f,
        message: `${show(v)} is not a security group id (sg- followed by 8 or 17 hex digits)`,
      });
  });
  if (
    value.instanceProfileArn !== undefined &&
    (typeof value.instanceProfileArn !== 'string' || !PROFILE_ARN_RE.test(value.instanceProfileArn))
  )
    issues.push({
      field: 'validation.instanceProfileArn',
      message: `${show(value.instanceProfileArn)} is not an instance profile ARN (arn:aws:iam::<account>:instance-profile/<name>)`,
    });
  checkSeconds(issues, 'validation.readyTimeoutSeconds', value.readyTimeoutSeconds, 60, 3 * 3600);
  const h = value.healthCheck;
  if (h === undefined) return;
  if (!isObject(h)) {
    issues.push({ field: 'validation.healthCheck', message: 'must be an object with successMarker' });
    return;
  }
  checkNoUnknownKeys(issues, 'validation.healthCheck.', h, [
    'successMarker',
    'failureMarker',
    'timeoutSeconds',
  ]);
  checkText(issues, 'validation.healthCheck.successMarker', h.successMarker, 200, true);
  checkText(issues, 'validation.healthCheck.failureMarker', h.failureMarker, 200);
  if (typeof h.successMarker === 'string' && h.successMarker === h.failureMarker)
    issues.push({ field: 'validation.healthCheck.failureMarker', message: 'must differ from successMarker' });
  checkSeconds(issues, 'validation.healthCheck.timeoutSeconds', h.timeoutSeconds, 30, 24 * 3600);
}

function checkDistribution(issues: InputIssue[], input: Record<string, unknown>): void {
  const d = input.distribution;
  if (d === undefined) return;
  if (!isObject(d)) {
    issues.push({ field: 'distribution', message: 'must be an object with copies and/or shareWith' });
    return;
  }
  checkNoUnknownKeys(issues, 'distribution.', d, ['copies', 'shareWith', 'concurrencyPerRegion']);
  if (d.copies !== undefined || d.concurrencyPerRegion !== undefined) {
    const copies = Array.isArray(d.copies) ? (d.copies as unknown[]) : d.copies;
    adopt(
      issues,
      copyImageIssues({
        region: input.region,
        ...(input.accountId !== undefined ? { accountId: input.accountId } : {}),
        imageId: PLACEHOLDER_IMAGE,
        destinations: copies,
        ...(d.concurrencyPerRegion !== undefined ? { concurrencyPerRegion: d.concurrencyPerRegion } : {}),
      }),
      (field, issue) => {
        if (field === 'destinations') return 'distribution.copies';
        if (field.startsWith('destinations[')) {
          // A copy into the original's own account and region: said once, below, in golden terms.
          if (field.endsWith('.name') && issue.message.startsWith('is required for a copy')) return undefined;
          return `distribution.copies${field.slice('destinations'.length)}`;
        }
        if (field === 'concurrencyPerRegion') return 'distribution.concurrencyPerRegion';
        return undefined; // region, accountId: reported once for the input itself
      },
    );
    if (Array.isArray(copies))
      copies.forEach((c: unknown, i) => {
        if (!isObject(c)) return;
        const sameAccount = c.accountId === undefined || c.accountId === input.accountId;
        if (sameAccount && c.region === input.region)
          issues.push({
            field: `distribution.copies[${i}]`,
            message: `the original is made in ${String(input.region)} already: copy to other regions or accounts`,
          });
      });
  }
  const s = d.shareWith;
  if (s !== undefined) {
    if (!isObject(s)) {
      issues.push({
        field: 'distribution.shareWith',
        message: 'must be an object (accountIds, organizationArns, …)',
      });
      return;
    }
    checkNoUnknownKeys(issues, 'distribution.shareWith.', s, [
      'accountIds',
      'organizationArns',
      'organizationalUnitArns',
      'allowCopy',
      'kmsAccess',
    ]);
    const targets = {
      ...(s.accountIds !== undefined ? { accountIds: s.accountIds } : {}),
      ...(s.organizationArns !== undefined ? { organizationArns: s.organizationArns } : {}),
      ...(s.organizationalUnitArns !== undefined ? { organizationalUnitArns: s.organizationalUnitArns } : {}),
    };
    adopt(
      issues,
      shareImageIssues({
        region: input.region,
        ...(input.accountId !== undefined ? { accountId: input.accountId } : {}),
        imageId: PLACEHOLDER_IMAGE,
        targets,
        ...(s.allowCopy !== undefined ? { allowCopy: s.allowCopy } : {}),
        ...(s.kmsAccess !== undefined ? { kmsAccess: s.kmsAccess } : {}),
      }),
      (field) => {
        if (field === 'targets') return 'distribution.shareWith';
        if (field.startsWith('targets.')) return `distribution.shareWith.${field.slice('targets.'.length)}`;
        if (field === 'allowCopy' || field === 'kmsAccess') return `distribution.shareWith.${field}`;
        return undefined;
      },
    );
  }
}

export function checkParameterName(issues: InputIssue[], field: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') {
    issues.push({ field, message: 'is required: the SSM parameter name (e.g. /golden/web/latest)' });
    return;
  }
  if (!PARAMETER_RE.test(value))
    issues.push({
      field,
      message: `${show(value)} is not an SSM parameter name (letters, digits and _ . - /)`,
    });
  else if (/^\/?(aws|ssm)/i.test(value))
    issues.push({ field, message: `${show(value)}: names starting with aws or ssm are reserved by AWS` });
  else if (value.includes('/') && !value.startsWith('/'))
    issues.push({ field, message: `${show(value)}: a parameter path must start with / (e.g. /${value})` });
  else if (value.split('/').length - 1 > 15)
    issues.push({ field, message: `${show(value)} is deeper than SSM's 15 levels` });
}

const GOLDEN_FIELDS = [
  'region',
  'accountId',
  'pipeline',
  'builderInstanceId',
  'mode',
  'versioning',
  'imageNamePrefix',
  'description',
  'tags',
  'scheduledTime',
  'validation',
  'approval',
  'distribution',
  'publish',
  'rollout',
  'retention',
  'timeouts',
] as const;
export const GOLDEN_RETENTION_FIELDS = [
  'keep',
  'maxAgeSeconds',
  'deprecateAfterSeconds',
  'deregisterAfterSeconds',
  'protectNewest',
  'retireShared',
] as const;
/** The longest version a name can get (`2026.01.15-030000`, or a semver series and a count). */
const LONGEST_VERSION = '2026.01.15-030000';

/** Every problem with a `goldenImage` input, in field order; empty when it is valid. */
export function goldenImageIssues(input: unknown): InputIssue[] {
  if (!isObject(input)) return [{ field: '(input)', message: 'must be an object' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', input, GOLDEN_FIELDS);
  issues.push(...rolloutStageIssues(input.rollout));
  checkRegion(issues, 'region', input.region);
  checkAccountId(issues, 'accountId', input.accountId);
  checkName(issues, 'pipeline', input.pipeline, 'pipeline');
  checkInstanceId(issues, 'builderInstanceId', input.builderInstanceId);
  if (input.mode !== undefined && input.mode !== 'stop' && input.mode !== 'reboot')
    issues.push({
      field: 'mode',
      message: `${show(input.mode)} is not a mode for a golden image: stop (consistent, default) or reboot; no-reboot images are crash-consistent only`,
    });
  const v = input.versioning;
  if (v !== undefined) {
    if (!isObject(v) || (v.scheme !== 'date' && v.scheme !== 'semver'))
      issues.push({
        field: 'versioning',
        message: "must be { scheme: 'date' } or { scheme: 'semver', series: '<major>.<minor>' }",
      });
    else if (v.scheme === 'semver') {
      checkNoUnknownKeys(issues, 'versioning.', v, ['scheme', 'series']);
      if (typeof v.series !== 'string' || !SERIES_RE.test(v.series))
        issues.push({
          field: 'versioning.series',
          message: `${show(v.series)} is not <major>.<minor> (e.g. 1.4): runs count the patch number up`,
        });
    } else checkNoUnknownKeys(issues, 'versioning.', v, ['scheme']);
  }
  const prefix = input.imageNamePrefix ?? input.pipeline;
  if (input.imageNamePrefix !== undefined || typeof input.pipeline === 'string') {
    const probe: InputIssue[] = [];
    checkImageName(probe, 'imageNamePrefix', `${String(prefix)}-${LONGEST_VERSION}`);
    if (probe.length > 0)
      issues.push({
        field: 'imageNamePrefix',
        message: `${show(prefix)} does not make valid image names ('<prefix>-<version>', at most 128 characters of letters, digits and ( ) [ ] space . / - ' @ _)`,
      });
  }
  if (
    input.description !== undefined &&
    (typeof input.description !== 'string' || input.description.length > 255)
  )
    issues.push({ field: 'description', message: 'must be a string of at most 255 characters' });
  checkTags(issues, 'tags', input.tags);
  if (isObject(input.tags) && Object.keys(input.tags).length > MAX_GOLDEN_USER_TAGS)
    issues.push({
      field: 'tags',
      message: `has ${Object.keys(input.tags).length} tags; a golden image takes at most ${MAX_GOLDEN_USER_TAGS} (amiflow adds its approval and lineage tags; EC2 allows 50)`,
    });
  checkIsoTime(issues, 'scheduledTime', input.scheduledTime);
  checkValidation(issues, input.validation);
  const a = input.approval;
  if (a !== undefined) {
    if (!isObject(a)) issues.push({ field: 'approval', message: 'must be an object ({} for the defaults)' });
    else {
      checkNoUnknownKeys(issues, 'approval.', a, ['timeoutSeconds', 'approvers']);
      checkSeconds(issues, 'approval.timeoutSeconds', a.timeoutSeconds, 60, 90 * 24 * 3600);
      checkIdList(issues, 'approval.approvers', a.approvers, (iss, f, x) => checkText(iss, f, x, 128, true));
    }
  }
  checkDistribution(issues, input);
  const p = input.publish;
  if (p !== undefined) {
    if (!isObject(p)) issues.push({ field: 'publish', message: 'must be an object with parameterName' });
    else {
      checkNoUnknownKeys(issues, 'publish.', p, ['parameterName']);
      checkParameterName(issues, 'publish.parameterName', p.parameterName);
    }
  }
  checkRetention(issues, 'retention', input.retention, GOLDEN_RETENTION_FIELDS);
  checkImageTimeouts(issues, input.timeouts);
  return issues;
}

export function parseGoldenImageInput(input: unknown): GoldenImageInput {
  const issues = goldenImageIssues(input);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input as GoldenImageInput;
}

const BACKUP_FIELDS = [
  'region',
  'accountId',
  'plan',
  'instanceIds',
  'selector',
  'mode',
  'windowSeconds',
  'retention',
  'copyTo',
  'concurrency',
  'tags',
  'scheduledTime',
  'timeouts',
] as const;

/** Every problem with a `backupInstances` input, in field order; empty when it is valid. */
export function backupIssues(input: unknown): InputIssue[] {
  if (!isObject(input)) return [{ field: '(input)', message: 'must be an object' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', input, BACKUP_FIELDS);
  checkRegion(issues, 'region', input.region);
  checkAccountId(issues, 'accountId', input.accountId);
  checkName(issues, 'plan', input.plan, 'backup plan');
  checkIdList(issues, 'instanceIds', input.instanceIds, checkInstanceId);
  const sel = input.selector;
  if (sel !== undefined) {
    if (!isObject(sel) || !isObject(sel.tags) || Object.keys(sel.tags).length === 0)
      issues.push({
        field: 'selector',
        message: 'must be { tags: { key: value, … } } with at least one tag',
      });
    else {
      checkNoUnknownKeys(issues, 'selector.', sel, ['tags']);
      for (const [k, val] of Object.entries(sel.tags))
        if (typeof val !== 'string')
          issues.push({ field: `selector.tags.${k}`, message: `must be a string, got ${show(val)}` });
    }
  }
  const hasIds = Array.isArray(input.instanceIds) && input.instanceIds.length > 0;
  if (!hasIds && sel === undefined)
    issues.push({
      field: 'instanceIds',
      message: 'names no instance: give instanceIds or a selector (by tags)',
    });
  if (input.mode !== undefined && input.mode !== 'reboot' && input.mode !== 'stop')
    issues.push({
      field: 'mode',
      message: `${show(input.mode)} is not a backup mode: reboot (default) or stop; no-reboot backups are crash-consistent only (what AWS Backup makes)`,
    });
  checkSeconds(issues, 'windowSeconds', input.windowSeconds, 60, 24 * 3600);
  checkRetention(issues, 'retention', input.retention, ['keep', 'maxAgeSeconds']);
  const c = input.copyTo;
  if (c !== undefined) {
    if (!isObject(c)) issues.push({ field: 'copyTo', message: 'must be { region, kmsKeyId? }' });
    else {
      checkNoUnknownKeys(issues, 'copyTo.', c, ['region', 'kmsKeyId']);
      adopt(
        issues,
        copyImageIssues({
          region: input.region,
          imageId: PLACEHOLDER_IMAGE,
          destinations: [{ region: c.region, ...(c.kmsKeyId !== undefined ? { kmsKeyId: c.kmsKeyId } : {}) }],
        }),
        (field) =>
          field.startsWith('destinations[0].') && !field.endsWith('.name')
            ? `copyTo.${field.slice('destinations[0].'.length)}`
            : undefined,
      );
      if (c.region === input.region)
        issues.push({
          field: 'copyTo.region',
          message: `the backups are in ${String(input.region)} already: name another region`,
        });
    }
  }
  const n = input.concurrency;
  if (n !== undefined && (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 20))
    issues.push({ field: 'concurrency', message: `must be a whole number from 1 to 20, got ${show(n)}` });
  checkTags(issues, 'tags', input.tags);
  checkIsoTime(issues, 'scheduledTime', input.scheduledTime);
  checkImageTimeouts(issues, input.timeouts);
  return issues;
}

export function parseBackupInput(input: unknown): BackupInput {
  const issues = backupIssues(input);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input as BackupInput;
}

/**
 * Problems with an approve/reject decision. With a `proof` the approver is checked against
 * `approvers` by the identity STS verifies for it (in the workflow); without one (runs from before
 * verified approvals) `by` is matched against them as a name.
 */
export function approvalDecisionIssues(decision: unknown, approvers?: readonly string[]): InputIssue[] {
  if (!isObject(decision))
    return [{ field: '(decision)', message: 'must be an object { proof, by?, comment? }' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', decision, ['by', 'comment', 'proof']);
  const proof = decision.proof;
  checkText(issues, 'by', decision.by, 128, proof === undefined);
  if (
    decision.comment !== undefined &&
    (typeof decision.comment !== 'string' || decision.comment.length > 1000)
  )
    issues.push({ field: 'comment', message: 'must be a string of at most 1000 characters' });
  if (proof !== undefined) {
    const headers = isObject(proof) ? proof.headers : undefined;
    if (!isObject(proof) || typeof proof.url !== 'string' || proof.url.length > 4096)
      issues.push({
        field: 'proof.url',
        message: 'must be the URL of a signed STS GetCallerIdentity request',
      });
    if (!isObject(headers) || !Object.values(headers).every((v) => typeof v === 'string'))
      issues.push({ field: 'proof.headers', message: 'must be the signed headers, names to strings' });
  } else if (
    approvers &&
    approvers.length > 0 &&
    typeof decision.by === 'string' &&
    !approvers.includes(decision.by)
  )
    issues.push({
      field: 'by',
      message: `${show(decision.by)} is not one of this pipeline's approvers (${approvers.join(', ')})`,
    });
  return issues;
}

export function parseApprovalDecision(decision: unknown, approvers?: readonly string[]): ApprovalDecision {
  const issues = approvalDecisionIssues(decision, approvers);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return decision as ApprovalDecision;
}
