/**
 * Guardrails: the approved-image catalogue, complianceScan, EC2 Allowed AMIs enforcement.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import { IMAGE_ID_RE, accountId, oneOf, region } from './fields';
import { show, strictObject } from './issues';

/** In account lists: the worker's own account (no role assumed). */
export const SELF_ACCOUNT = 'self';

/** Why an image is approved. */
export type ApprovalBasis = 'approval-tags' | 'allow-list';

export interface ApprovedImage {
  imageId: string;
  region: string;
  /** The account that owns the image ('' for an allow-listed image that is not visible). */
  ownerId: string;
  name?: string;
  pipeline?: string;
  version?: string;
  approvedBy?: string;
  approvedAt?: string;
  sourceImage?: string;
  creationDate?: string;
  /** EC2's state (`available`, `disabled`, …), or `not-visible` for an allow-listed id EC2 did not return. */
  state: string;
  deprecationTime?: string;
  /** Its deprecation time has passed, or it is disabled: no longer for new launches. */
  deprecated: boolean;
  /** KMS keys of its snapshots: other accounts need their use to launch it. */
  kmsKeyIds: string[];
  basis: ApprovalBasis;
  /** The allow list's reason. */
  reason?: string;
}

export interface GuardrailError {
  /** `self` or 12 digits. */
  account: string;
  region: string;
  type?: string;
  message: string;
}

export interface Catalogue {
  images: ApprovedImage[];
  /** Owners the allow list approves as a whole. */
  allowedOwners: { owner: string; reason: string }[];
  /** Reads that failed: the images approved there are missing from `images`. */
  errors: GuardrailError[];
  readAt: string;
}

/**
 * How an instance's image stands: `approved` (in the catalogue or allow list, not deprecated),
 * `approved-deprecated` (approved, but deprecated or disabled since: retired), `unknown` (exists,
 * not approved), `not-allowed` (hidden by the account's Allowed AMIs in state `enabled`: DescribeImages
 * then shows only allowed images), `missing` (EC2 no longer describes it: deregistered, or no longer shared).
 */
export const IMAGE_CLASSIFICATIONS = [
  'approved',
  'approved-deprecated',
  'unknown',
  'not-allowed',
  'missing',
] as const;
export type ImageClassification = (typeof IMAGE_CLASSIFICATIONS)[number];
export type ClassificationCounts = Record<ImageClassification, number> & { instances: number };

export function emptyCounts(): ClassificationCounts {
  return { approved: 0, 'approved-deprecated': 0, unknown: 0, 'not-allowed': 0, missing: 0, instances: 0 };
}

/** One image in use in an (account, region), and how it stands. */
export interface ImageUsage {
  imageId: string;
  classification: ImageClassification;
  instances: number;
  ownerId?: string;
  name?: string;
  pipeline?: string;
  version?: string;
  deprecationTime?: string;
  basis?: ApprovalBasis;
  /** EC2 Allowed AMIs' verdict (`ImageAllowed`), where the account has Allowed AMIs in audit or enabled mode. */
  allowedByEc2?: boolean;
}

/** An instance whose image is not approved (or is retired). */
export interface InstanceFinding {
  instanceId: string;
  imageId: string;
  state: string;
  classification: Exclude<ImageClassification, 'approved'>;
  name?: string;
  launchTime?: string;
}

export interface TargetReport {
  /** `self` or 12 digits. */
  account: string;
  region: string;
  status: 'scanned' | 'failed';
  error?: string;
  errorType?: string;
  counts: ClassificationCounts;
  images: ImageUsage[];
  findings: InstanceFinding[];
  /** Findings beyond `maxFindingsPerTarget`: counted, not listed. */
  findingsOmitted: number;
  awsCalls: number;
  /** Throttled AWS calls, retried after a backoff. */
  throttled: number;
  warnings: string[];
}

export interface ComplianceReport {
  name: string;
  workflowId: string;
  runId: string;
  startedAt: string;
  finishedAt?: string;
  /** False while the scan runs: the `complianceReport` query then shows the report so far. */
  complete: boolean;
  accounts: string[];
  regions: string[];
  totals: ClassificationCounts;
  /** Every target scanned and every instance found runs an approved, non-deprecated image. */
  compliant: boolean;
  byAccount: Record<string, ClassificationCounts>;
  byRegion: Record<string, ClassificationCounts>;
  /** In input order: accounts, then regions. */
  targets: TargetReport[];
  failedTargets: number;
  catalogue: { images: number; errors: GuardrailError[] };
  awsCalls: number;
}

export const complianceReportQuery = defineQuery<ComplianceReport>('complianceReport');

/** `off` restores each account and region's settings as they were before amiflow changed them. */
export const ALLOWED_AMIS_MODES = ['audit', 'enabled', 'off'] as const;
export type AllowedAmisMode = (typeof ALLOWED_AMIS_MODES)[number];
/** EC2's Allowed AMIs states. */
export type AllowedImagesState = 'disabled' | 'audit-mode' | 'enabled';

/** One EC2 `ImageCriterion`, with EC2's own field names, so settings read are restored exactly. */
export interface AllowedImagesCriterion {
  ImageProviders?: string[];
  ImageNames?: string[];
  MarketplaceProductCodes?: string[];
  CreationDateCondition?: { MaximumDaysSinceCreated?: number };
  DeprecationTimeCondition?: { MaximumDaysSinceDeprecated?: number };
  [field: string]: unknown;
}

export interface AllowedImagesSettings {
  state: AllowedImagesState;
  criteria: AllowedImagesCriterion[];
  /** `account`, or `declarative-policy` (an organization policy: the account cannot change it). */
  managedBy?: string;
}

export interface AllowedAmisTarget {
  account: string;
  region: string;
  /** The settings before amiflow's first change: what `off` restores. */
  original?: AllowedImagesSettings;
  /** What amiflow set last. */
  applied?: AllowedImagesSettings & { at: string };
  /** The last change's failure, if it failed here. */
  error?: string;
  warning?: string;
}

export interface AllowedAmisState {
  name: string;
  /** `none` until the first mode is set. */
  mode: AllowedAmisMode | 'none';
  /** When audit mode was first set: `enabled` is refused before it. */
  auditSince?: string;
  targets: AllowedAmisTarget[];
  /** Where the criteria come from: as the last mode change gave it (or the start). */
  selection: CatalogueSelection;
  /** The last mode changes, newest last. */
  changes: { mode: AllowedAmisMode; at: string; failedTargets: number }[];
}

export const setAllowedAmisModeUpdate = defineUpdate<AllowedAmisState, [SetAllowedAmisMode]>(
  'setAllowedAmisMode',
);
export const allowedAmisStateQuery = defineQuery<AllowedAmisState>('allowedAmisState');

// ---------------------------------------------------------------------------------------------
// Inputs, as schemas: the client checks them before anything starts, the workflows again at start
// ---------------------------------------------------------------------------------------------

/** Names of scans and enforcements: they become workflow ids, so no `/` and nothing exotic. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Pipeline names as golden-image runs tag them. */
const PIPELINE_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
/** An owner in the allow list: an account id, or an alias EC2 uses for owners. */
const OWNER_ALIASES = ['amazon', 'aws-marketplace', 'aws-backup-vault'] as const;
export const MAX_GUARDRAIL_CONCURRENCY = 32;
export const DEFAULT_GUARDRAIL_CONCURRENCY = 4;
export const DEFAULT_MAX_FINDINGS_PER_TARGET = 100;
const MAX_TARGETS = 2_000;
const MAX_ALLOW_LIST = 1_000;

/** Rules over a list or object that must run even when an item is bad (every issue at once). */
const always = { when: () => true };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Each value once: the second and later mentions are issues at their index. */
function listedOnce(list: unknown, ctx: z.RefinementCtx): void {
  if (!Array.isArray(list)) return;
  const seen = new Set<unknown>();
  list.forEach((v: unknown, i) => {
    if (seen.has(v)) ctx.addIssue({ code: 'custom', message: `${show(v)} is listed twice`, path: [i] });
    seen.add(v);
  });
}

export const guardrailName = requiredName();
function requiredName() {
  return z.string({ error: 'is required (e.g. prod-daily)' }).superRefine((v, ctx) => {
    if (v === '') ctx.addIssue({ code: 'custom', message: 'is required (e.g. prod-daily)' });
    else if (!NAME_RE.test(v))
      ctx.addIssue({
        code: 'custom',
        message: `${show(v)} is not a valid name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
      });
  });
}

/** A list of accounts: each 12 digits or `self`, no duplicates. */
const accountList = z
  .array(z.union([z.literal(SELF_ACCOUNT), accountId], { error: (iss) => accountIdMessage(iss.input) }), {
    error: `must be a non-empty list of 12-digit account ids or '${SELF_ACCOUNT}'`,
  })
  .min(1, { error: `must be a non-empty list of 12-digit account ids or '${SELF_ACCOUNT}'` })
  .superRefine(listedOnce, always);
const accountIdMessage = (v: unknown) =>
  `${show(v)} is not an AWS account id (exactly 12 digits, as a string)`;

const regionList = z
  .array(region, { error: 'is required: a non-empty list of regions (e.g. eu-west-1)' })
  .min(1, { error: 'is required: a non-empty list of regions (e.g. eu-west-1)' })
  .superRefine(listedOnce, always);

const pipelineMessage = 'must be a non-empty list of pipeline names (or left out for every pipeline)';
const pipelineList = z
  .array(
    z
      .string({ error: (iss) => notAPipeline(iss.input) })
      .regex(PIPELINE_RE, { error: (iss) => notAPipeline(iss.input) }),
    { error: pipelineMessage },
  )
  .min(1, { error: pipelineMessage });
const notAPipeline = (v: unknown) =>
  `${show(v)} is not a pipeline name (1 to 128 letters, digits, '.', '_', '-', '/')`;

function whole(min: number, max: number) {
  const message = (v: unknown) => `must be a whole number from ${min} to ${max}, got ${show(v)}`;
  return z
    .number({ error: (iss) => message(iss.input) })
    .refine((v) => Number.isInteger(v) && v >= min && v <= max, { error: (iss) => message(iss.input) });
}

/**
 * An image made outside amiflow that counts as approved anyway: one image (`imageId` with its
 * `region`) or every image of an `owner`, always with the `reason`.
 */
export const allowListEntrySchema = strictObject({
  imageId: z
    .string({ error: (iss) => notAnImage(iss.input) })
    .regex(IMAGE_ID_RE, { error: (iss) => notAnImage(iss.input) })
    .optional(),
  region: z.unknown().optional(),
  owner: z
    .string({ error: (iss) => notAnOwner(iss.input) })
    .refine((o) => /^\d{12}$/.test(o) || (OWNER_ALIASES as readonly string[]).includes(o), {
      error: (iss) => notAnOwner(iss.input),
    })
    .optional(),
  reason: z.string({ error: 'is required: say why this image or owner is allowed' }).superRefine((r, ctx) => {
    if (r.trim() === '')
      ctx.addIssue({ code: 'custom', message: 'is required: say why this image or owner is allowed' });
    else if (r.length > 256)
      ctx.addIssue({ code: 'custom', message: `must be at most 256 characters, got ${r.length}` });
  }),
})
  .superRefine(oneImageOrOwner, always)
  .transform((e) => e as { imageId?: string; region?: string; owner?: string; reason: string });
export type AllowListEntry = z.infer<typeof allowListEntrySchema>;
const notAnImage = (v: unknown) => `${show(v)} is not an AMI id (ami- and 8 or 17 hex digits)`;
const notAnOwner = (v: unknown) =>
  `${show(v)} is not an owner: a 12-digit account id or one of ${OWNER_ALIASES.join(', ')}`;

/** Either one image (with its region) or an owner (every region). */
function oneImageOrOwner(raw: unknown, ctx: z.RefinementCtx): void {
  if (!isRecord(raw)) return;
  const issue = (message: string, path: string[] = []) => ctx.addIssue({ code: 'custom', message, path });
  if (raw.imageId !== undefined && raw.owner !== undefined)
    issue('names either one image (imageId, region) or an owner, not both');
  else if (raw.imageId !== undefined) {
    const r = region.safeParse(raw.region);
    if (!r.success) for (const i of r.error.issues) issue(i.message, ['region']);
  } else if (raw.owner !== undefined) {
    if (raw.region !== undefined)
      issue('applies to an imageId only; an owner is allowed in every region', ['region']);
  } else issue('needs imageId (with region) or owner');
}

export const allowListSchema = z
  .array(
    z.unknown().superRefine((raw, ctx) => {
      if (!isRecord(raw))
        return ctx.addIssue({
          code: 'custom',
          message: 'must be an object with imageId and region, or owner, and a reason',
        });
      const r = allowListEntrySchema.safeParse(raw);
      if (!r.success)
        for (const i of r.error.issues)
          for (const path of i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k]) : [i.path])
            ctx.addIssue({ code: 'custom', message: i.message, path });
    }),
    { error: 'must be a list of entries' },
  )
  .max(MAX_ALLOW_LIST, {
    error: (iss) => `has ${(iss.input as unknown[]).length} entries; at most ${MAX_ALLOW_LIST}`,
  })
  .transform((list) => list as AllowListEntry[]);

/** Where the catalogue comes from (shared by the catalogue, the scan and the enforcement). */
const selection = {
  regions: regionList.describe('regions to read'),
  pipelines: pipelineList.optional().describe('golden pipelines whose approved images count'),
  allowList: allowListSchema
    .optional()
    .describe('JSON or YAML list of images or owners allowed besides the catalogue'),
  concurrency: whole(1, MAX_GUARDRAIL_CONCURRENCY).optional().describe('targets read at once'),
};

/** At most MAX_TARGETS accounts × regions per run. */
function targetsBound(raw: unknown, ctx: z.RefinementCtx): void {
  if (!isRecord(raw)) return;
  const accounts = Array.isArray(raw.accounts) ? raw.accounts.length : 1;
  const regions = Array.isArray(raw.regions) ? raw.regions.length : 0;
  if (accounts * regions > MAX_TARGETS)
    ctx.addIssue({
      code: 'custom',
      path: ['accounts'],
      message: `${accounts} accounts × ${regions} regions is ${accounts * regions} targets; at most ${MAX_TARGETS} per run`,
    });
}

/** What `approvedImages` reads: approval tags in `accounts` × `regions`, plus the allow list. */
export const catalogueInputSchema = strictObject({
  /** Accounts whose approval tags define the catalogue: 12 digits or `self`. Default `['self']`. */
  accounts: accountList.optional(),
  ...selection,
});
export type CatalogueInput = z.infer<typeof catalogueInputSchema>;

export const complianceScanInputSchema = strictObject({
  /** The scan's name: its workflow id, and how the last report is found. */
  name: guardrailName.describe('name of the scan or enforcement'),
  /** Accounts scanned: 12 digits or `self`. Default `['self']`. */
  accounts: accountList.optional().describe('account: 12 digits, or self (the worker’s own)'),
  regions: selection.regions,
  /** Accounts whose approval tags define the catalogue. Default `['self']`. */
  catalogueAccounts: accountList.optional().describe('account whose approved images count'),
  pipelines: selection.pipelines,
  allowList: selection.allowList,
  concurrency: selection.concurrency,
  /** Findings listed per account and region (counts are always complete). */
  maxFindingsPerTarget: whole(0, 10_000).optional().describe('findings kept per target'),
}).superRefine(targetsBound, always);
export type ComplianceScanInput = z.infer<typeof complianceScanInputSchema>;

export const enforceAllowedAmisInputSchema = strictObject({
  name: guardrailName,
  accounts: accountList.optional(),
  regions: selection.regions,
  catalogueAccounts: accountList.optional(),
  pipelines: selection.pipelines,
  allowList: selection.allowList,
  concurrency: selection.concurrency,
  /** Set by the workflow itself when it continues as new. */
  carried: z
    .custom<AllowedAmisState>(isRecord, { error: 'is set by the workflow itself when it continues as new' })
    .optional(),
}).superRefine(targetsBound, always);
export type EnforceAllowedAmisInput = z.infer<typeof enforceAllowedAmisInputSchema>;

export const catalogueSelectionSchema = strictObject({
  catalogueAccounts: accountList.optional(),
  pipelines: pipelineList.optional(),
  allowList: allowListSchema.optional(),
});
export type CatalogueSelection = z.infer<typeof catalogueSelectionSchema>;

export const setAllowedAmisModeSchema = strictObject({
  mode: oneOf(ALLOWED_AMIS_MODES, 'a mode'),
  /** The catalogue to enforce from now on; unset: the one the enforcement has. */
  selection: catalogueSelectionSchema.optional(),
});
export type SetAllowedAmisMode = z.infer<typeof setAllowedAmisModeSchema>;
