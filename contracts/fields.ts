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
 * Whether a well-formed region exists, from the AWS SDK's endpoint data (activities/regions.ts).
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
