/**
 * Input validation for shareImage, unshareImage, copyImage and the share-expiry update, shared by
 * the client (before anything starts) and the workflows (again at start, before any AWS call).
 * Pure and deterministic, like validation.ts, whose checks it reuses.
 */
import type { CopyImageInput, ShareExpiryUpdate, ShareImageInput, UnshareImageInput } from '../contracts';
import { KMS_ACCESS_MODES, MAX_SHARE_SECONDS, PARTIAL_FAILURE_POLICIES } from '../contracts';
import type { InputIssue } from './validation';
import {
  IMAGE_ID_RE,
  InvalidInputError,
  checkAccountId,
  checkImageName,
  checkNoUnknownKeys,
  checkRegion,
  checkSeconds,
  checkTags,
  show,
} from './validation';

const ACCOUNT_RE = /^\d{12}$/;
const SNAPSHOT_ID_RE = /^snap-([0-9a-f]{8}|[0-9a-f]{17})$/;
/** arn:<partition>:organizations::<management account>:organization/o-<10 to 32 lowercase letters or digits> */
const ORG_ARN_RE = /^arn:(aws[a-z-]*):organizations::(\d{12}):organization\/o-[a-z0-9]{10,32}$/;
/** arn:<partition>:organizations::<management account>:ou/o-…/ou-<4 to 32>-<8 to 32> */
const OU_ARN_RE =
  /^arn:(aws[a-z-]*):organizations::(\d{12}):ou\/o-[a-z0-9]{10,32}\/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$/;
const KEY_ID_RE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const ALIAS_RE = /^alias\/[A-Za-z0-9/_-]{1,250}$/;
const KMS_ARN_RE = /^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):(key|alias)\/(.+)$/;
export const MAX_COPY_DESTINATIONS = 50;
export const MAX_COPY_CONCURRENCY_PER_REGION = 50;
const COPY_WAIT_RANGE = [60, 7 * 24 * 3600] as const;

/** The AWS partition a region belongs to (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, …). */
export function partitionOfRegion(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  const iso = /^[a-z]{2}-(iso[a-z]?)-/.exec(region)?.[1];
  const isoPartitions: Record<string, string> = {
    iso: 'aws-iso',
    isob: 'aws-iso-b',
    isoe: 'aws-iso-e',
    isof: 'aws-iso-f',
  };
  return (iso && isoPartitions[iso]) ?? 'aws';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkBoolean(issues: InputIssue[], field: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean')
    issues.push({ field, message: `must be true or false, got ${show(value)}` });
}

function checkImageId(issues: InputIssue[], field: string, value: unknown): void {
  if (typeof value !== 'string' || value === '')
    issues.push({ field, message: 'is required (e.g. ami-0abc1234def567890)' });
  else if (!IMAGE_ID_RE.test(value))
    issues.push({
      field,
      message: `${show(value)} is not an AMI id (ami- followed by 8 or 17 lowercase hex digits)`,
    });
}

/** A list of strings, each checked by `each`; duplicates are named. Returns the valid strings. */
function checkList(
  issues: InputIssue[],
  field: string,
  value: unknown,
  each: (field: string, item: string) => boolean,
): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    issues.push({ field, message: `must be a list, got ${show(value)}` });
    return [];
  }
  const seen = new Map<string, number>();
  const valid: string[] = [];
  value.forEach((item: unknown, i) => {
    const f = `${field}[${i}]`;
    if (typeof item !== 'string') {
      issues.push({ field: f, message: `must be a string, got ${show(item)}` });
      return;
    }
    const first = seen.get(item);
    if (first !== undefined) {
      issues.push({ field: f, message: `${show(item)} is listed twice (also ${field}[${first}])` });
      return;
    }
    seen.set(item, i);
    if (each(f, item)) valid.push(item);
  });
  return valid;
}

/**
 * A KMS key as CopyImage takes it: key id, alias name, key ARN or alias ARN. An ARN must be in
 * `region` (a key is regional: a key from another region cannot encrypt snapshots here) and in the
 * region's partition. `refuseAwsManaged`: an `alias/aws/…` key cannot make an image shareable.
 */
export function checkKmsKeyRef(
  issues: InputIssue[],
  field: string,
  value: unknown,
  region: string | undefined,
  opts: { refuseAwsManaged?: string } = {},
): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || value === '') {
    issues.push({ field, message: 'must be a KMS key id, alias (alias/…), key ARN or alias ARN' });
    return;
  }
  const arn = KMS_ARN_RE.exec(value);
  let aliasName: string | undefined;
  if (arn) {
    const [, partition, keyRegion, , kind, rest] = arn;
    if (kind === 'key' && !KEY_ID_RE.test(rest ?? ''))
      issues.push({ field, message: `${show(value)} is not a KMS key ARN (…:key/<key id>)` });
    if (kind === 'alias') aliasName = `alias/${rest}`;
    if (region !== undefined && keyRegion !== region)
      issues.push({
        field,
        message: `${show(value)} is a key in ${keyRegion}, but the copy is made in ${region}: KMS keys are regional; use a key in ${region}`,
      });
    if (region !== undefined && partition !== partitionOfRegion(region))
      issues.push({
        field,
        message: `${show(value)} is in partition ${partition}, but region ${region} is in ${partitionOfRegion(region)}`,
      });
  } else if (value.startsWith('alias/')) {
    if (!ALIAS_RE.test(value))
      issues.push({ field, message: `${show(value)} is not a valid KMS alias name` });
    aliasName = value;
  } else if (value.startsWith('arn:')) {
    issues.push({
      field,
      message: `${show(value)} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>) or alias ARN`,
    });
  } else if (!KEY_ID_RE.test(value)) {
    issues.push({
      field,
      message: `${show(value)} is not a KMS key id (a UUID or mrk-…), alias (alias/…), key ARN or alias ARN`,
    });
  }
  if (opts.refuseAwsManaged && aliasName?.startsWith('alias/aws/'))
    issues.push({ field, message: `${show(value)} is an AWS managed key: ${opts.refuseAwsManaged}` });
}

function checkOrgArns(
  issues: InputIssue[],
  field: string,
  value: unknown,
  re: RegExp,
  what: string,
  example: string,
  region: unknown,
): string[] {
  return checkList(issues, field, value, (f, arn) => {
    const m = re.exec(arn);
    if (!m) {
      issues.push({ field: f, message: `${show(arn)} is not an ${what} ARN (${example})` });
      return false;
    }
    if (typeof region === 'string' && m[1] !== partitionOfRegion(region)) {
      issues.push({
        field: f,
        message: `${show(arn)} is in partition ${m[1]}, but region ${region} is in ${partitionOfRegion(region)}`,
      });
      return false;
    }
    return true;
  });
}

function checkCopyTimeouts(issues: InputIssue[], value: unknown): void {
  if (value === undefined) return;
  if (!isObject(value)) {
    issues.push({ field: 'timeouts', message: 'must be an object' });
    return;
  }
  checkNoUnknownKeys(issues, 'timeouts.', value, ['copyAvailableSeconds']);
  checkSeconds(issues, 'timeouts.copyAvailableSeconds', value.copyAvailableSeconds, ...COPY_WAIT_RANGE);
}

// ---------------------------------------------------------------------------------------------
// shareImage
// ---------------------------------------------------------------------------------------------

const SHARE_FIELDS = [
  'region',
  'accountId',
  'imageId',
  'targets',
  'allowPublic',
  'allowCopy',
  'kmsAccess',
  'reencryptWith',
  'reencryptedName',
  'tags',
  'durationSeconds',
  'timeouts',
] as const;
const TARGET_FIELDS = ['accountIds', 'organizationArns', 'organizationalUnitArns', 'public'] as const;

/** Every problem with a `shareImage` input, in field order; empty when it is valid. */
export function shareImageIssues(input: unknown): InputIssue[] {
  if (!isObject(input)) return [{ field: '(input)', message: 'must be an object' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', input, SHARE_FIELDS);
  checkRegion(issues, 'region', input.region);
  checkAccountId(issues, 'accountId', input.accountId);
  checkImageId(issues, 'imageId', input.imageId);
  const region = typeof input.region === 'string' ? input.region : undefined;

  let accounts: string[] = [];
  const t = input.targets;
  if (!isObject(t)) {
    issues.push({
      field: 'targets',
      message: 'is required: an object with accountIds, organizationArns and/or organizationalUnitArns',
    });
  } else {
    checkNoUnknownKeys(issues, 'targets.', t, TARGET_FIELDS);
    accounts = checkList(issues, 'targets.accountIds', t.accountIds, (f, id) => {
      if (!ACCOUNT_RE.test(id)) {
        issues.push({ field: f, message: `${show(id)} is not an AWS account id (exactly 12 digits)` });
        return false;
      }
      if (id === input.accountId) {
        issues.push({
          field: f,
          message: `${id} is the image's own account: an image is always available to its owner; name other accounts`,
        });
        return false;
      }
      return true;
    });
    const orgs = checkOrgArns(
      issues,
      'targets.organizationArns',
      t.organizationArns,
      ORG_ARN_RE,
      'organization',
      'arn:aws:organizations::111122223333:organization/o-exampleorgid',
      region,
    );
    const ous = checkOrgArns(
      issues,
      'targets.organizationalUnitArns',
      t.organizationalUnitArns,
      OU_ARN_RE,
      'organizational unit',
      'arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-examplerootid-exampleouid',
      region,
    );
    checkBoolean(issues, 'targets.public', t.public);
    if (t.public === true && input.allowPublic !== true)
      issues.push({
        field: 'targets.public',
        message:
          'sharing with everyone (launch permission Group=all) is refused unless allowPublic is true as well (--allow-public)',
      });
    const listed = [t.accountIds, t.organizationArns, t.organizationalUnitArns].some(
      (l) => Array.isArray(l) && l.length > 0,
    );
    if (!listed && t.public !== true)
      issues.push({
        field: 'targets',
        message: 'names no one: give at least one account id, organization ARN or organizational unit ARN',
      });
    if (input.allowCopy === true && t.public === true)
      issues.push({
        field: 'allowCopy',
        message: 'with a public share it would make the snapshots public; share copies with accounts instead',
      });
    else if (input.allowCopy === true && accounts.length === 0 && orgs.length + ous.length > 0)
      issues.push({
        field: 'allowCopy',
        message:
          'EC2 gives snapshot create-volume permission (needed to copy) only to accounts, not to organizations or OUs: list the accounts in targets.accountIds',
      });
  }
  checkBoolean(issues, 'allowPublic', input.allowPublic);
  checkBoolean(issues, 'allowCopy', input.allowCopy);
  if (input.kmsAccess !== undefined && !KMS_ACCESS_MODES.includes(input.kmsAccess as never))
    issues.push({
      field: 'kmsAccess',
      message: `${show(input.kmsAccess)} is not a KMS access mode; use one of ${KMS_ACCESS_MODES.join(', ')}`,
    });
  checkKmsKeyRef(issues, 'reencryptWith', input.reencryptWith, region, {
    refuseAwsManaged: 'a copy under it could not be shared either; use a customer managed key',
  });
  if (input.reencryptedName !== undefined) {
    checkImageName(issues, 'reencryptedName', input.reencryptedName);
    if (input.reencryptWith === undefined)
      issues.push({
        field: 'reencryptedName',
        message: 'names the re-encrypted copy: give reencryptWith too',
      });
  }
  checkTags(issues, 'tags', input.tags);
  checkSeconds(issues, 'durationSeconds', input.durationSeconds, 60, MAX_SHARE_SECONDS);
  checkCopyTimeouts(issues, input.timeouts);
  return issues;
}

export function parseShareImageInput(input: unknown): ShareImageInput {
  const issues = shareImageIssues(input);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input as ShareImageInput;
}

// ---------------------------------------------------------------------------------------------
// unshareImage
// ---------------------------------------------------------------------------------------------

/** Every problem with an `unshareImage` input (a share's record, as its result gives it). */
export function unshareImageIssues(input: unknown): InputIssue[] {
  if (!isObject(input)) return [{ field: '(input)', message: 'must be an object' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', input, ['share', 'shareWorkflowId', 'shareRunId', 'deleteReencryptedCopy']);
  checkBoolean(issues, 'deleteReencryptedCopy', input.deleteReencryptedCopy);
  checkRunRef(issues, 'shareWorkflowId', input.shareWorkflowId);
  checkRunRef(issues, 'shareRunId', input.shareRunId);
  if (input.shareRunId !== undefined && input.shareWorkflowId === undefined)
    issues.push({ field: 'shareRunId', message: 'needs shareWorkflowId' });
  const share = input.share;
  if (share === undefined && typeof input.shareWorkflowId === 'string') return issues;
  if (!isObject(share)) {
    issues.push({
      field: 'share',
      message:
        input.shareWorkflowId === undefined
          ? "is required: the share run's workflow id (shareWorkflowId), whose own result names what it added"
          : 'must be the record to compare with the share run (or left out)',
    });
    return issues;
  }
  const image = share.image;
  let region: string | undefined;
  if (!isObject(image))
    issues.push({ field: 'share.image', message: 'is required: { region, accountId?, imageId }' });
  else {
    checkRegion(issues, 'share.image.region', image.region);
    checkAccountId(issues, 'share.image.accountId', image.accountId);
    checkImageId(issues, 'share.image.imageId', image.imageId);
    region = typeof image.region === 'string' ? image.region : undefined;
  }
  checkImageId(issues, 'share.sharedImageId', share.sharedImageId);
  const added = share.added;
  if (!isObject(added)) {
    issues.push({ field: 'share.added', message: 'is required: what the share added' });
    return issues;
  }
  const lp = added.launchPermissions;
  if (!Array.isArray(lp)) issues.push({ field: 'share.added.launchPermissions', message: 'must be a list' });
  else
    lp.forEach((p: unknown, i) => {
      const f = `share.added.launchPermissions[${i}]`;
      const keys = isObject(p) ? Object.keys(p).filter((k) => p[k] !== undefined) : [];
      const [key] = keys;
      const v = isObject(p) && key ? p[key] : undefined;
      const ok =
        keys.length === 1 &&
        typeof v === 'string' &&
        ((key === 'userId' && ACCOUNT_RE.test(v)) ||
          (key === 'organizationArn' && ORG_ARN_RE.test(v)) ||
          (key === 'organizationalUnitArn' && OU_ARN_RE.test(v)) ||
          (key === 'group' && v === 'all'));
      if (!ok)
        issues.push({
          field: f,
          message: `${show(p)} is not one launch permission ({ userId } | { organizationArn } | { organizationalUnitArn } | { group: 'all' })`,
        });
    });
  const sp = added.snapshotPermissions;
  if (!Array.isArray(sp))
    issues.push({ field: 'share.added.snapshotPermissions', message: 'must be a list' });
  else
    sp.forEach((p: unknown, i) => {
      const f = `share.added.snapshotPermissions[${i}]`;
      if (!isObject(p) || typeof p.snapshotId !== 'string' || !SNAPSHOT_ID_RE.test(p.snapshotId))
        issues.push({ field: `${f}.snapshotId`, message: 'must be a snapshot id (snap-…)' });
      if (
        !isObject(p) ||
        !Array.isArray(p.userIds) ||
        !p.userIds.every((u) => typeof u === 'string' && ACCOUNT_RE.test(u))
      )
        issues.push({ field: `${f}.userIds`, message: 'must be a list of 12-digit account ids' });
    });
  const grants = added.grants;
  if (!Array.isArray(grants)) issues.push({ field: 'share.added.grants', message: 'must be a list' });
  else
    grants.forEach((g: unknown, i) => {
      const f = `share.added.grants[${i}]`;
      if (!isObject(g)) {
        issues.push({ field: f, message: 'must be { keyArn, granteeAccountId, grantId, grantName }' });
        return;
      }
      if (typeof g.keyArn !== 'string' || !KMS_ARN_RE.test(g.keyArn))
        issues.push({ field: `${f}.keyArn`, message: `${show(g.keyArn)} is not a KMS key ARN` });
      else checkKmsKeyRef(issues, `${f}.keyArn`, g.keyArn, region);
      checkAccountId(issues, `${f}.granteeAccountId`, g.granteeAccountId ?? '');
      for (const k of ['grantId', 'grantName'] as const)
        if (typeof g[k] !== 'string' || g[k] === '')
          issues.push({ field: `${f}.${k}`, message: 'is required' });
    });
  const copy = share.reencryptedCopy;
  if (copy !== undefined) {
    if (!isObject(copy)) issues.push({ field: 'share.reencryptedCopy', message: 'must be an object' });
    else {
      checkImageId(issues, 'share.reencryptedCopy.imageId', copy.imageId);
      for (const k of ['imageName', 'workflowId', 'runId'] as const)
        if (typeof copy[k] !== 'string' || copy[k] === '')
          issues.push({ field: `share.reencryptedCopy.${k}`, message: 'is required' });
    }
  }
  if (input.deleteReencryptedCopy === true && copy === undefined)
    issues.push({ field: 'deleteReencryptedCopy', message: 'this share made no re-encrypted copy' });
  return issues;
}

/** A workflow or run id: printable, at most 1,000 characters (Temporal's own limit). */
function checkRunRef(issues: InputIssue[], field: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || value === '' || value.length > 1000 || /[\u0000-\u001f\u007f]/.test(value))
    issues.push({
      field,
      message: `${show(value)} is not a workflow or run id (printable, 1 to 1,000 characters)`,
    });
}

export function parseUnshareImageInput(input: unknown): UnshareImageInput {
  const issues = unshareImageIssues(input);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input as UnshareImageInput;
}

// ---------------------------------------------------------------------------------------------
// The share-expiry update
// ---------------------------------------------------------------------------------------------

/**
 * Problems with a request to change a share's end, given the workflow clock and the share's start;
 * `expiresAt` is the new end (epoch ms) when there are none.
 */
export function shareExpiryIssues(
  update: unknown,
  now: number,
  sharedSince: number,
): { issues: InputIssue[]; expiresAt?: number } {
  if (!isObject(update)) return { issues: [{ field: '(update)', message: 'must be an object' }] };
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', update, ['expiresAt', 'expiresInSeconds']);
  const latest = sharedSince + MAX_SHARE_SECONDS * 1000;
  const given = [update.expiresAt, update.expiresInSeconds].filter((v) => v !== undefined).length;
  if (given !== 1) {
    issues.push({
      field: '(update)',
      message: 'give exactly one of expiresAt (ISO 8601 time) and expiresInSeconds (0: withdraw now)',
    });
    return { issues };
  }
  let expiresAt: number | undefined;
  if (update.expiresInSeconds !== undefined) {
    const before = issues.length;
    checkSeconds(issues, 'expiresInSeconds', update.expiresInSeconds, 0, MAX_SHARE_SECONDS);
    if (issues.length === before) expiresAt = now + (update.expiresInSeconds as number) * 1000;
  } else {
    const at = typeof update.expiresAt === 'string' ? Date.parse(update.expiresAt) : NaN;
    if (Number.isNaN(at))
      issues.push({ field: 'expiresAt', message: `${show(update.expiresAt)} is not an ISO 8601 time` });
    else if (at < now)
      issues.push({
        field: 'expiresAt',
        message: `${new Date(at).toISOString()} has passed already; use expiresInSeconds: 0 to withdraw now`,
      });
    else expiresAt = at;
  }
  if (expiresAt !== undefined && expiresAt > latest) {
    issues.push({
      field: update.expiresAt !== undefined ? 'expiresAt' : 'expiresInSeconds',
      message: `would end the share after ${new Date(latest).toISOString()}, ${MAX_SHARE_SECONDS / 86400} days after it began: the longest time-limited share`,
    });
    expiresAt = undefined;
  }
  return expiresAt !== undefined && issues.length === 0 ? { issues, expiresAt } : { issues };
}

/** Shape-only check of an expiry update for the client (the workflow checks the times against its clock). */
export function parseShareExpiryUpdate(update: unknown): ShareExpiryUpdate {
  const { issues } = shareExpiryIssues(update, 0, 0);
  const shapeOnly = issues.filter((i) => !/has passed already|would end the share/.test(i.message));
  if (shapeOnly.length > 0) throw new InvalidInputError(shapeOnly);
  return update as ShareExpiryUpdate;
}

// ---------------------------------------------------------------------------------------------
// copyImage
// ---------------------------------------------------------------------------------------------

const COPY_FIELDS = [
  'region',
  'accountId',
  'imageId',
  'destinations',
  'tags',
  'partialFailure',
  'concurrencyPerRegion',
  'reencryptWith',
  'timeouts',
] as const;
const DESTINATION_FIELDS = ['region', 'accountId', 'kmsKeyId', 'name', 'description'] as const;

/** Every problem with a `copyImage` input, in field order; empty when it is valid. */
export function copyImageIssues(input: unknown): InputIssue[] {
  if (!isObject(input)) return [{ field: '(input)', message: 'must be an object' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', input, COPY_FIELDS);
  checkRegion(issues, 'region', input.region);
  checkAccountId(issues, 'accountId', input.accountId);
  checkImageId(issues, 'imageId', input.imageId);
  const dests = input.destinations;
  if (!Array.isArray(dests) || dests.length === 0) {
    issues.push({
      field: 'destinations',
      message: 'is required: at least one { region, accountId?, kmsKeyId?, name? }',
    });
  } else if (dests.length > MAX_COPY_DESTINATIONS) {
    issues.push({
      field: 'destinations',
      message: `has ${dests.length} entries; at most ${MAX_COPY_DESTINATIONS} per run (start more runs)`,
    });
  } else {
    const seen = new Map<string, number>();
    dests.forEach((d: unknown, i) => {
      const f = `destinations[${i}]`;
      if (!isObject(d)) {
        issues.push({ field: f, message: 'must be an object { region, accountId?, kmsKeyId?, name? }' });
        return;
      }
      checkNoUnknownKeys(issues, `${f}.`, d, DESTINATION_FIELDS);
      checkRegion(issues, `${f}.region`, d.region);
      checkAccountId(issues, `${f}.accountId`, d.accountId);
      const region = typeof d.region === 'string' ? d.region : undefined;
      checkKmsKeyRef(issues, `${f}.kmsKeyId`, d.kmsKeyId, region);
      if (d.name !== undefined) checkImageName(issues, `${f}.name`, d.name);
      if (d.description !== undefined && (typeof d.description !== 'string' || d.description.length > 255))
        issues.push({ field: `${f}.description`, message: 'must be a string of at most 255 characters' });
      const account = (d.accountId ?? input.accountId ?? 'self') as string;
      const key = `${account}/${String(d.region)}`;
      const first = seen.get(key);
      if (first !== undefined)
        issues.push({
          field: f,
          message: `copies to ${String(d.region)} in ${account === 'self' ? "the source's account" : `account ${account}`} again (as destinations[${first}]): one copy per account and region`,
        });
      else seen.set(key, i);
      const sameAccount = d.accountId === undefined || d.accountId === input.accountId;
      if (sameAccount && d.region === input.region && d.name === undefined)
        issues.push({
          field: `${f}.name`,
          message:
            "is required for a copy in the source's own account and region: AMI names are unique per account and region",
        });
    });
  }
  checkTags(issues, 'tags', input.tags);
  if (input.partialFailure !== undefined && !PARTIAL_FAILURE_POLICIES.includes(input.partialFailure as never))
    issues.push({
      field: 'partialFailure',
      message: `${show(input.partialFailure)} is not a partial-failure policy; use one of ${PARTIAL_FAILURE_POLICIES.join(', ')}`,
    });
  const c = input.concurrencyPerRegion;
  if (
    c !== undefined &&
    (typeof c !== 'number' || !Number.isInteger(c) || c < 1 || c > MAX_COPY_CONCURRENCY_PER_REGION)
  )
    issues.push({
      field: 'concurrencyPerRegion',
      message: `must be a whole number from 1 to ${MAX_COPY_CONCURRENCY_PER_REGION}, got ${show(c)}`,
    });
  checkKmsKeyRef(
    issues,
    'reencryptWith',
    input.reencryptWith,
    typeof input.region === 'string' ? input.region : undefined,
    {
      refuseAwsManaged: 'a copy under it could not be shared with other accounts; use a customer managed key',
    },
  );
  checkCopyTimeouts(issues, input.timeouts);
  return issues;
}

export function parseCopyImageInput(input: unknown): CopyImageInput {
  const issues = copyImageIssues(input);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input as CopyImageInput;
}
