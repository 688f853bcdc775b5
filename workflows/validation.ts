/**
 * Input validation shared by the client (before anything starts) and the workflow (again at start,
 * before any AWS call). Pure and deterministic: no I/O, safe inside the workflow sandbox.
 */
import type { ImageFromInstanceInput } from './contracts';
import { CONSISTENCY_MODES, RESERVED_TAG_PREFIXES } from './contracts';

export interface InputIssue {
  /** Dotted path of the offending field, e.g. `tags.Owner` or `timeouts.imageAvailableSeconds`. */
  field: string;
  message: string;
}

export class InvalidInputError extends Error {
  constructor(readonly issues: InputIssue[]) {
    super(formatIssues(issues));
    this.name = 'InvalidInputError';
  }
}

export function formatIssues(issues: InputIssue[]): string {
  return `invalid input: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`;
}

const REGION_RE =
  /^(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov|-iso|-isob|-isof)?-(north|south|east|west|central|northeast|northwest|southeast|southwest)-\d{1,2}$/;
const ACCOUNT_RE = /^\d{12}$/;
const INSTANCE_RE = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/;
export const IMAGE_ID_RE = /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/;
/** CreateImage's rule for names: 3–128 of letters, digits and ( ) [ ] space . / - ' @ _ */
const IMAGE_NAME_RE = /^[A-Za-z0-9()[\] ./\-'@_]+$/;
const MAX_USER_TAGS = 40; // EC2 allows 50 per resource; amiflow writes up to 6 of its own.

export function show(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

type Check = (issues: InputIssue[], field: string, value: unknown) => void;

/**
 * Whether a well-formed region exists, from the AWS SDK's endpoint data (activities/regions.ts).
 * Installed by the client before anything starts; the workflow sandbox cannot load the SDK, so
 * there only the pattern applies (and an unknown region then fails its first AWS call, permanently).
 */
let regionKnown: ((region: string) => string | undefined) | undefined;
export function useRegionCheck(check: (region: string) => string | undefined): void {
  regionKnown = check;
}

export const checkRegion: Check = (issues, field, value) => {
  if (typeof value !== 'string' || value === '')
    issues.push({ field, message: 'is required (e.g. eu-west-1)' });
  else if (!REGION_RE.test(value))
    issues.push({
      field,
      message: `${show(value)} is not an AWS region name (e.g. us-east-1, eu-central-2)`,
    });
  else {
    const problem = regionKnown?.(value);
    if (problem) issues.push({ field, message: problem });
  }
};

export const checkAccountId: Check = (issues, field, value) => {
  if (value === undefined) return;
  if (typeof value !== 'string' || !ACCOUNT_RE.test(value))
    issues.push({
      field,
      message: `${show(value)} is not an AWS account id (exactly 12 digits, as a string)`,
    });
};

export function checkInstanceId(issues: InputIssue[], field: string, value: unknown): void {
  if (typeof value !== 'string' || value === '')
    issues.push({ field, message: 'is required (e.g. i-0abc1234def567890)' });
  else if (!INSTANCE_RE.test(value))
    issues.push({
      field,
      message: `${show(value)} is not an EC2 instance id (i- followed by 8 or 17 lowercase hex digits)`,
    });
}

export function checkImageName(issues: InputIssue[], field: string, value: unknown): void {
  if (typeof value !== 'string' || value.trim() === '') {
    issues.push({ field, message: 'is required: a name of 3 to 128 characters' });
    return;
  }
  if (value.length < 3 || value.length > 128)
    issues.push({ field, message: `must be 3 to 128 characters long, got ${value.length}` });
  if (value !== value.trim()) issues.push({ field, message: 'must not start or end with white space' });
  if (!IMAGE_NAME_RE.test(value)) {
    const bad = [...new Set([...value].filter((c) => !IMAGE_NAME_RE.test(c)))].join('');
    issues.push({
      field,
      message: `contains characters EC2 refuses in image names (${show(bad)}); allowed: letters, digits and ( ) [ ] space . / - ' @ _`,
    });
  }
}

export function checkTags(issues: InputIssue[], field: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    issues.push({ field, message: 'must be an object of tag key → value strings' });
    return;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_USER_TAGS)
    issues.push({
      field,
      message: `has ${entries.length} tags; at most ${MAX_USER_TAGS} (EC2 allows 50, amiflow adds its own)`,
    });
  for (const [key, v] of entries) {
    const f = `${field}.${key}`;
    if (key.length < 1 || key.length > 128)
      issues.push({ field: f, message: 'tag keys must be 1 to 128 characters' });
    const reserved = RESERVED_TAG_PREFIXES.find((p) => key.toLowerCase().startsWith(p));
    if (reserved) issues.push({ field: f, message: `tag keys starting with '${reserved}' are reserved` });
    if (typeof v !== 'string')
      issues.push({ field: f, message: `tag values must be strings, got ${show(v)}` });
    else if (v.length > 256)
      issues.push({ field: f, message: `tag values must be at most 256 characters, got ${v.length}` });
  }
}

export function checkSeconds(
  issues: InputIssue[],
  field: string,
  value: unknown,
  min: number,
  max: number,
): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    issues.push({
      field,
      message: `must be a whole number of seconds from ${min} to ${max}, got ${show(value)}`,
    });
}

export function checkNoUnknownKeys(
  issues: InputIssue[],
  prefix: string,
  value: object,
  known: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key))
      issues.push({ field: prefix + key, message: `is not a known field (known: ${known.join(', ')})` });
  }
}

const IMAGE_FROM_INSTANCE_FIELDS = [
  'region',
  'accountId',
  'instanceId',
  'imageName',
  'description',
  'tags',
  'mode',
  'timeouts',
] as const;

/** Every problem with an `imageFromInstance` input, in field order; empty when it is valid. */
export function imageFromInstanceIssues(input: unknown): InputIssue[] {
  const issues: InputIssue[] = [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return [{ field: '(input)', message: 'must be an object' }];
  }
  const i = input as Record<string, unknown>;
  checkNoUnknownKeys(issues, '', i, IMAGE_FROM_INSTANCE_FIELDS);
  checkRegion(issues, 'region', i.region);
  checkAccountId(issues, 'accountId', i.accountId);
  checkInstanceId(issues, 'instanceId', i.instanceId);
  checkImageName(issues, 'imageName', i.imageName);
  if (i.description !== undefined && (typeof i.description !== 'string' || i.description.length > 255))
    issues.push({ field: 'description', message: 'must be a string of at most 255 characters' });
  checkTags(issues, 'tags', i.tags);
  if (!CONSISTENCY_MODES.includes(i.mode as never))
    issues.push({
      field: 'mode',
      message: `${show(i.mode)} is not a consistency mode; use one of ${CONSISTENCY_MODES.join(', ')}`,
    });
  if (i.timeouts !== undefined) {
    if (typeof i.timeouts !== 'object' || i.timeouts === null || Array.isArray(i.timeouts)) {
      issues.push({ field: 'timeouts', message: 'must be an object' });
    } else {
      const t = i.timeouts as Record<string, unknown>;
      checkNoUnknownKeys(issues, 'timeouts.', t, ['instanceStateSeconds', 'imageAvailableSeconds']);
      checkSeconds(issues, 'timeouts.instanceStateSeconds', t.instanceStateSeconds, 30, 24 * 3600);
      checkSeconds(issues, 'timeouts.imageAvailableSeconds', t.imageAvailableSeconds, 60, 7 * 24 * 3600);
    }
  }
  return issues;
}

/** Returns the input typed when valid; throws `InvalidInputError` naming every bad field otherwise. */
export function parseImageFromInstanceInput(input: unknown): ImageFromInstanceInput {
  const issues = imageFromInstanceIssues(input);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input as ImageFromInstanceInput;
}
