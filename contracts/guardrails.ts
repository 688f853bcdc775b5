/**
 * Guardrails: the approved-image catalogue, complianceScan, EC2 Allowed AMIs enforcement.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';

/** In account lists: the worker's own account (no role assumed). */
export const SELF_ACCOUNT = 'self';

/**
 * An image made outside amiflow that counts as approved anyway: one image (`imageId` with its
 * `region`: image ids are regional), or every image of an owner (`owner`: a 12-digit account id, or
 * `amazon`). `reason` is required: reports and policy reviews show it.
 */
export interface AllowListEntry {
  imageId?: string;
  region?: string;
  owner?: string;
  reason: string;
}

/** What `approvedImages` reads: approval tags in `accounts` × `regions`, plus the allow list. */
export interface CatalogueInput {
  /** Accounts whose approval tags define the catalogue: 12 digits or `self`. Default `['self']`. */
  accounts?: string[];
  regions: string[];
  /** Only these pipelines' images; default every pipeline. */
  pipelines?: string[];
  allowList?: AllowListEntry[];
  /** (account, region) reads at once; default 4. */
  concurrency?: number;
}

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
 * not approved), `missing` (EC2 no longer describes it: deregistered, or no longer shared).
 */
export const IMAGE_CLASSIFICATIONS = ['approved', 'approved-deprecated', 'unknown', 'missing'] as const;
export type ImageClassification = (typeof IMAGE_CLASSIFICATIONS)[number];
export type ClassificationCounts = Record<ImageClassification, number> & { instances: number };

export function emptyCounts(): ClassificationCounts {
  return { approved: 0, 'approved-deprecated': 0, unknown: 0, missing: 0, instances: 0 };
}

export interface ComplianceScanInput {
  /** Names the scan (letters, digits, `-`, `_`, `.`): its workflow id, and where its last report is found. */
  name: string;
  /** Accounts to scan: 12 digits or `self`. Default `['self']`. */
  accounts?: string[];
  regions: string[];
  /**
   * Accounts whose approval tags define the catalogue (where golden-image pipelines run). Default
   * `['self']`. Images a scanned account owns and has tagged approved count as well.
   */
  catalogueAccounts?: string[];
  pipelines?: string[];
  allowList?: AllowListEntry[];
  /** (account, region) pairs scanned at once; default 4. */
  concurrency?: number;
  /** Non-approved instances listed per (account, region); the others are only counted. Default 100. */
  maxFindingsPerTarget?: number;
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

export interface EnforceAllowedAmisInput {
  /** Names the enforcement (letters, digits, `-`, `_`, `.`): its workflow id. */
  name: string;
  /** Accounts: 12 digits or `self`. Default `['self']`. */
  accounts?: string[];
  regions: string[];
  catalogueAccounts?: string[];
  pipelines?: string[];
  allowList?: AllowListEntry[];
  concurrency?: number;
  /** Carried across continue-as-new; callers leave it out. */
  carried?: AllowedAmisState;
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

/** The catalogue an enforcement derives its criteria from. */
export interface CatalogueSelection {
  catalogueAccounts?: string[];
  pipelines?: string[];
  allowList?: AllowListEntry[];
}

export interface SetAllowedAmisMode {
  mode: AllowedAmisMode;
  /** A new catalogue selection for this and later changes (e.g. an allow list with a new entry). */
  selection?: CatalogueSelection;
}

export const setAllowedAmisModeUpdate = defineUpdate<AllowedAmisState, [SetAllowedAmisMode]>(
  'setAllowedAmisMode',
);
export const allowedAmisStateQuery = defineQuery<AllowedAmisState>('allowedAmisState');
