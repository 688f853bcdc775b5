/**
 * The fields every feature's inputs are made of (region, account, instance and image ids, image
 * names, tags, durations), as zod schemas with amiflow's messages: a message says what was wrong,
 * with the value, and what a good one looks like.
 */
import { z } from 'zod';
import { RESERVED_TAG_PREFIXES } from './common';
import { show } from './issues';

export const REGION_RE =
  /^(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov|-iso|-isob|-isof)?-(north|south|east|west|central|northeast|northwest|southeast|southwest)-\d{1,2}$/;
export const ACCOUNT_RE = /^\d{12}$/;
export const INSTANCE_RE = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/;
export const IMAGE_ID_RE = /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/;
/** CreateImage's rule for names: 3–128 of letters, digits and ( ) [ ] space . / - ' @ _ */
export const IMAGE_NAME_RE = /^[A-Za-z0-9()[\] ./\-'@_]+$/;
/** EC2 allows 50 tags per resource; amiflow writes up to 6 of its own. */
export const MAX_USER_TAGS = 40;

/** A string field that must be present and match `re`; `example` shows a good value. */
function requiredMatching(re: RegExp, required: string, bad: (v: string) => string) {
  return z.string({ error: required }).superRefine((v, ctx) => {
    if (v === '') ctx.addIssue({ code: 'custom', message: required });
    else if (!re.test(v)) ctx.addIssue({ code: 'custom', message: bad(v) });
  });
}

/**
 * Whether a well-formed region exists, from the AWS SDK's endpoint data (shared/regions.ts).
 * Installed by the client before anything starts; the workflow sandbox cannot load the SDK, so
 * there only the pattern applies (and an unknown region then fails its first AWS call, permanently).
 */
let regionKnown: ((region: string) => string | undefined) | undefined;
export function useRegionCheck(check: (region: string) => string | undefined): void {
  regionKnown = check;
}

export const region = requiredMatching(
  REGION_RE,
  'is required (e.g. eu-west-1)',
  (v) => `${show(v)} is not an AWS region name (e.g. us-east-1, eu-central-2)`,
)
  .superRefine((v, ctx) => {
    const problem = REGION_RE.test(v) ? regionKnown?.(v) : undefined;
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe('AWS region name, e.g. eu-west-1');

const notAnAccount = (v: unknown) => `${show(v)} is not an AWS account id (exactly 12 digits, as a string)`;
/** Omitted means the worker's own account (no role assumed). */
export const accountId = z
  .string({ error: (iss) => notAnAccount(iss.input) })
  .regex(ACCOUNT_RE, { error: (iss) => notAnAccount(iss.input) })
  .describe('12-digit AWS account id, as a string');

export const instanceId = requiredMatching(
  INSTANCE_RE,
  'is required (e.g. i-0abc1234def567890)',
  (v) => `${show(v)} is not an EC2 instance id (i- followed by 8 or 17 lowercase hex digits)`,
).describe('EC2 instance id, e.g. i-0abc1234def567890');

export const imageName = z
  .string({ error: 'is required: a name of 3 to 128 characters' })
  .superRefine((v, ctx) => {
    const issue = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (v.trim() === '') return issue('is required: a name of 3 to 128 characters');
    if (v.length < 3 || v.length > 128) issue(`must be 3 to 128 characters long, got ${v.length}`);
    if (v !== v.trim()) issue('must not start or end with white space');
    if (!IMAGE_NAME_RE.test(v)) {
      const bad = [...new Set([...v].filter((c) => !IMAGE_NAME_RE.test(c)))].join('');
      issue(
        `contains characters EC2 refuses in image names (${show(bad)}); allowed: letters, digits and ( ) [ ] space . / - ' @ _`,
      );
    }
  })
  .describe("AMI name: 3 to 128 letters, digits and ( ) [ ] space . / - ' @ _");

/** Tags a caller adds (to images, snapshots, copies): amiflow's own and AWS's prefixes are reserved. */
export const userTags = z
  .record(z.string(), z.string({ error: (iss) => `tag values must be strings, got ${show(iss.input)}` }), {
    error: 'must be an object of tag key → value strings',
  })
  .superRefine(
    (tags: Record<string, unknown>, ctx) => {
      // Also when a value is not a string (reported by the record), so every bad tag is named at once.
      if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) return;
      const entries = Object.entries(tags);
      if (entries.length > MAX_USER_TAGS)
        ctx.addIssue({
          code: 'custom',
          message: `has ${entries.length} tags; at most ${MAX_USER_TAGS} (EC2 allows 50, amiflow adds its own)`,
        });
      for (const [key, value] of entries) {
        const issue = (message: string) => ctx.addIssue({ code: 'custom', message, path: [key] });
        if (key.length < 1 || key.length > 128) issue('tag keys must be 1 to 128 characters');
        const reserved = RESERVED_TAG_PREFIXES.find((p) => key.toLowerCase().startsWith(p));
        if (reserved) issue(`tag keys starting with '${reserved}' are reserved`);
        if (typeof value === 'string' && value.length > 256)
          issue(`tag values must be at most 256 characters, got ${value.length}`);
      }
    },
    { when: () => true },
  )
  .describe('Tag key → value; keys starting with aws: or amiflow: are reserved');

/** A whole number of seconds from `min` to `max`. */
export function seconds(min: number, max: number) {
  const message = (v: unknown) => `must be a whole number of seconds from ${min} to ${max}, got ${show(v)}`;
  // One refinement, not .int().min().max(): one issue per bad value, however many bounds it misses.
  return z
    .number({ error: (iss) => message(iss.input) })
    .refine((v) => Number.isInteger(v) && v >= min && v <= max, { error: (iss) => message(iss.input) })
    .meta({ description: `seconds, ${min} to ${max}`, type: 'integer', minimum: min, maximum: max });
}

export const SNAPSHOT_ID_RE = /^snap-([0-9a-f]{8}|[0-9a-f]{17})$/;
/** arn:<partition>:organizations::<management account>:organization/o-<10 to 32 lowercase letters or digits> */
export const ORG_ARN_RE = /^arn:(aws[a-z-]*):organizations::(\d{12}):organization\/o-[a-z0-9]{10,32}$/;
/** arn:<partition>:organizations::<management account>:ou/o-…/ou-<4 to 32>-<8 to 32> */
export const OU_ARN_RE =
  /^arn:(aws[a-z-]*):organizations::(\d{12}):ou\/o-[a-z0-9]{10,32}\/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$/;
const KEY_ID_RE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const ALIAS_RE = /^alias\/[A-Za-z0-9/_-]{1,250}$/;
export const KMS_ARN_RE = /^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):(key|alias)\/(.+)$/;

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

export const imageId = requiredMatching(
  IMAGE_ID_RE,
  'is required (e.g. ami-0abc1234def567890)',
  (v) => `${show(v)} is not an AMI id (ami- followed by 8 or 17 lowercase hex digits)`,
).describe('AMI id, e.g. ami-0abc1234def567890');

/** true or false, nothing else (a YAML `yes` or a CLI string must not pass as true). */
export const flag = z.boolean({ error: (iss) => `must be true or false, got ${show(iss.input)}` });

/** A whole number from `min` to `max` (not seconds: counts, concurrency). */
export function whole(min: number, max: number, why = '') {
  const message = (v: unknown) => `must be a whole number from ${min} to ${max}${why}, got ${show(v)}`;
  return z
    .number({ error: (iss) => message(iss.input) })
    .refine((v) => Number.isInteger(v) && v >= min && v <= max, { error: (iss) => message(iss.input) })
    .meta({ type: 'integer', minimum: min, maximum: max });
}

/** A description EC2 accepts on images. */
export const description = z
  .string({ error: 'must be a string of at most 255 characters' })
  .max(255, { error: 'must be a string of at most 255 characters' });

/** A list of strings, each `item`; a string listed twice is named (and only once). */
export function uniqueList<T extends z.ZodType<string>>(item: T, what = 'a list') {
  return z
    .array(item, { error: (iss) => `must be ${what}, got ${show(iss.input)}` })
    .superRefine((items: string[], ctx) => {
      items.forEach((v, i) => {
        const first = items.indexOf(v);
        if (first < i)
          ctx.addIssue({
            code: 'custom',
            path: [i],
            message: `${show(v)} is listed twice (also #${first + 1})`,
          });
      });
    });
}

/**
 * A KMS key as CopyImage takes it: key id, alias name, key ARN or alias ARN. `refuseAwsManaged`:
 * why an `alias/aws/…` key will not do here. Whether an ARN is in the copy's region is a rule
 * between fields: `kmsKeyRegionProblems`.
 */
export function kmsKeyRef(refuseAwsManaged?: string) {
  return z
    .string({ error: 'must be a KMS key id, alias (alias/…), key ARN or alias ARN' })
    .superRefine((v, ctx) => {
      const issue = (message: string) => ctx.addIssue({ code: 'custom', message });
      if (v === '') return issue('must be a KMS key id, alias (alias/…), key ARN or alias ARN');
      const arn = KMS_ARN_RE.exec(v);
      let aliasName: string | undefined;
      if (arn) {
        if (arn[4] === 'key' && !KEY_ID_RE.test(arn[5] ?? ''))
          issue(`${show(v)} is not a KMS key ARN (…:key/<key id>)`);
        if (arn[4] === 'alias') aliasName = `alias/${arn[5]}`;
      } else if (v.startsWith('alias/')) {
        if (!ALIAS_RE.test(v)) issue(`${show(v)} is not a valid KMS alias name`);
        aliasName = v;
      } else if (v.startsWith('arn:'))
        issue(`${show(v)} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>) or alias ARN`);
      else if (!KEY_ID_RE.test(v))
        issue(`${show(v)} is not a KMS key id (a UUID or mrk-…), alias (alias/…), key ARN or alias ARN`);
      if (refuseAwsManaged && aliasName?.startsWith('alias/aws/'))
        issue(`${show(v)} is an AWS managed key: ${refuseAwsManaged}`);
    })
    .describe('KMS key: id, alias/…, key ARN or alias ARN');
}

/** A key ARN must be in the region it encrypts in (keys are regional) and in that region's partition. */
export function kmsKeyRegionProblems(key: unknown, region: unknown): string[] {
  if (typeof key !== 'string' || typeof region !== 'string') return [];
  const arn = KMS_ARN_RE.exec(key);
  if (!arn) return [];
  const [, partition, keyRegion] = arn;
  const problems: string[] = [];
  if (keyRegion !== region)
    problems.push(
      `${show(key)} is a key in ${keyRegion}, but the copy is made in ${region}: KMS keys are regional; use a key in ${region}`,
    );
  if (partition !== partitionOfRegion(region))
    problems.push(
      `${show(key)} is in partition ${partition}, but region ${region} is in ${partitionOfRegion(region)}`,
    );
  return problems;
}

/** An organization or OU ARN must be in the partition of the image's region. */
export function arnPartitionProblem(arn: unknown, region: unknown): string | undefined {
  if (typeof arn !== 'string' || typeof region !== 'string') return undefined;
  const partition = /^arn:(aws[a-z-]*):/.exec(arn)?.[1];
  if (partition === undefined || partition === partitionOfRegion(region)) return undefined;
  return `${show(arn)} is in partition ${partition}, but region ${region} is in ${partitionOfRegion(region)}`;
}

/** A workflow or run id: printable, at most 1,000 characters (Temporal's own limit). */
export const runRef = z
  .string({
    error: (iss) => `${show(iss.input)} is not a workflow or run id (printable, 1 to 1,000 characters)`,
  })
  .refine((v) => v !== '' && v.length <= 1000 && !/[\u0000-\u001f\u007f]/.test(v), {
    error: (iss) => `${show(iss.input)} is not a workflow or run id (printable, 1 to 1,000 characters)`,
  });

/** A string that must be there and not be empty. */
export const present = z.string({ error: 'is required' }).min(1, { error: 'is required' });

/** One line of text people type (a marker, an approver): not empty, at most `max` characters. */
export function text(max: number) {
  return z
    .string({ error: `must be a non-empty string of at most ${max} characters` })
    .superRefine((v, ctx) => {
      const issue = (message: string) => ctx.addIssue({ code: 'custom', message });
      if (v.trim() === '') issue(`must be a non-empty string of at most ${max} characters`);
      else if (v.length > max) issue(`must be at most ${max} characters, got ${v.length}`);
      else if (/[\r\n]/.test(v)) issue('must be one line');
    });
}

/** A time as ISO 8601 with a date and a time (`2026-01-15T03:00:00Z`). */
export const isoTime = z
  .string({ error: (iss) => `must be an ISO 8601 time (e.g. 2026-01-15T03:00:00Z), got ${show(iss.input)}` })
  .refine((v) => /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v)), {
    error: (iss) => `must be an ISO 8601 time (e.g. 2026-01-15T03:00:00Z), got ${show(iss.input)}`,
  })
  .describe('ISO 8601 time, e.g. 2026-01-15T03:00:00Z');

/** Pipeline and backup-plan names: in image names, tags, workflow ids and schedule ids. */
export const PLAN_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
export function planName(what: string) {
  return requiredMatching(
    PLAN_NAME_RE,
    `is required: the ${what}'s name (e.g. web-base)`,
    (v) => `${show(v)} is not a valid ${what} name: 1 to 40 lowercase letters, digits and inner dashes`,
  ).describe(`the ${what}'s name: 1 to 40 lowercase letters, digits and inner dashes`);
}

export const SUBNET_ID_RE = /^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/;
export const SECURITY_GROUP_ID_RE = /^sg-([0-9a-f]{8}|[0-9a-f]{17})$/;
/** `t3.micro`, `m7i-flex.large`, `u-6tb1.metal`: family, a dot, size. */
export const INSTANCE_TYPE_RE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;

/** One of `values`; anything else is refused as not `what`, naming the choices. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T, what: string) {
  return z.enum(values, {
    error: (iss) => `${show(iss.input)} is not ${what}; use one of ${values.join(', ')}`,
  });
}
