/**
 * shareImage and unshareImage: launch and create-volume permissions, KMS access, expiry.
 */
import { defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { AwsTarget, Tags } from './common';
import { MANAGED_BY_VALUE, TAG } from './common';
import {
  ACCOUNT_RE,
  KMS_ARN_RE,
  ORG_ARN_RE,
  OU_ARN_RE,
  SNAPSHOT_ID_RE,
  accountId,
  arnPartitionProblem,
  flag,
  imageId,
  imageName,
  kmsKeyRef,
  kmsKeyRegionProblems,
  present,
  region,
  runRef,
  seconds,
  uniqueList,
  userTags,
  oneOf,
} from './fields';
import type { InputIssue } from './issues';
import { issuesFor, show, strictObject, withRules } from './issues';

/** An AMI: its region, the account that owns it (omitted: the worker's own) and its id. */
export interface ImageRef extends AwsTarget {
  imageId: string;
}

function arnList(re: RegExp, what: string, example: string) {
  const bad = (v: unknown) => `${show(v)} is not an ${what} ARN (${example})`;
  return uniqueList(
    z.string({ error: (iss) => bad(iss.input) }).regex(re, { error: (iss) => bad(iss.input) }),
  );
}

/** Who a share is for. At least one target; EC2 shares launch permission with each. */
export const shareTargetsSchema = strictObject(
  {
    accountIds: uniqueList(accountId).optional().describe('accounts to share with'),
    /** arn:aws:organizations::<management account>:organization/o-… */
    organizationArns: arnList(
      ORG_ARN_RE,
      'organization',
      'arn:aws:organizations::111122223333:organization/o-exampleorgid',
    )
      .optional()
      .describe('organizations to share with'),
    /** arn:aws:organizations::<management account>:ou/o-…/ou-… */
    organizationalUnitArns: arnList(
      OU_ARN_RE,
      'organizational unit',
      'arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-examplerootid-exampleouid',
    )
      .optional()
      .describe('organizational units to share with'),
    /** Everyone (launch permission `Group=all`): refused unless the input also sets `allowPublic`. */
    public: flag.optional().describe('share with everyone (needs allowPublic)'),
  },
  'is required: an object with accountIds, organizationArns and/or organizationalUnitArns',
);
export type ShareTargets = z.infer<typeof shareTargetsSchema>;

/**
 * How target accounts get the use of a customer managed key the image's snapshots are encrypted with:
 * - `grant` (default): a KMS grant per target account, withdrawn with the share;
 * - `key-policy`: you manage the key policy; amiflow only reports the statement it needs.
 */
export const KMS_ACCESS_MODES = ['grant', 'key-policy'] as const;
export type KmsAccessMode = (typeof KMS_ACCESS_MODES)[number];
export const kmsAccessMode = oneOf(KMS_ACCESS_MODES, 'a KMS access mode').describe(
  'how targets get the CMK: a KMS grant per account, or your own key policy',
);

/** Exactly the operations a target account needs on the key to launch or copy the shared image. */
export const KMS_GRANT_OPERATIONS = [
  'DescribeKey',
  'CreateGrant',
  'Decrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
] as const;

/** The tags naming the run that made a resource: how retries find it and compensation proves it is ours. */
export function ownershipTags(workflowId: string, runId: string, workflowType: string): Tags {
  return {
    [TAG.managedBy]: MANAGED_BY_VALUE,
    [TAG.workflowId]: workflowId,
    [TAG.runId]: runId,
    [TAG.workflowType]: workflowType,
  };
}

/** EC2 allows 50 tags per resource. */
export const MAX_TAGS_PER_RESOURCE = 50;

/** A copy's tags: the given ones, the run's ownership tags, and where it was copied from. */
export function copyTagsOf(input: {
  tags: Tags;
  workflowId: string;
  runId: string;
  workflowType: string;
  source: { region: string; imageId: string };
}): Tags {
  return {
    ...input.tags,
    ...ownershipTags(input.workflowId, input.runId, input.workflowType),
    [TAG.sourceImage]: input.source.imageId,
    [TAG.sourceRegion]: input.source.region,
  };
}

/**
 * The name of the KMS grant a share run makes for one account: deterministic, so a retried
 * CreateGrant finds (or, in KMS, returns) the grant instead of making a second one; unique to the
 * run, so withdrawing it never touches a grant anyone else made.
 */
export function shareGrantName(runId: string, accountId: string): string {
  return `amiflow/${runId}/${accountId}`;
}

/** Longest share amiflow keeps a timer for (a time-limited share); without a duration a share is open-ended. */
export const MAX_SHARE_SECONDS = 366 * 24 * 3600;

/** A copy's longest wait for `available`. */
export const copyTimeoutsSchema = strictObject({
  copyAvailableSeconds: seconds(60, 7 * 24 * 3600)
    .optional()
    .describe('longest wait for a copy to become available'),
});

export const shareImageInputSchema = withRules(
  strictObject({
    region,
    accountId: accountId.optional(),
    imageId,
    targets: shareTargetsSchema,
    /** Must be true for `targets.public`: sharing with everyone is never a default. */
    allowPublic: flag.optional().describe('confirms a public share'),
    /** Also give target accounts create-volume permission on the snapshots, so they can copy the image. */
    allowCopy: flag.optional().describe('also let the targets copy it (snapshot create-volume permission)'),
    kmsAccess: kmsAccessMode.optional(),
    /**
     * A customer managed key (id, alias or ARN, in the image's region): copy the image under this key
     * first and share the copy. The way to share an image encrypted with the AWS managed key aws/ebs.
     */
    reencryptWith: kmsKeyRef('a copy under it could not be shared either; use a customer managed key')
      .optional()
      .describe('customer managed KMS key (id, alias or ARN) to re-encrypt with'),
    /** Name of the re-encrypted copy; default `<image name>-<key id prefix>`. */
    reencryptedName: imageName.optional().describe('name of the re-encrypted copy'),
    /** Tags for the re-encrypted copy. */
    tags: userTags.optional(),
    /** Withdraw the share after this many seconds (a durable timer; change it with `setShareExpiry`). */
    durationSeconds: seconds(60, MAX_SHARE_SECONDS).optional().describe('withdraw the share after this long'),
    timeouts: copyTimeoutsSchema.optional(),
  }),
  (input, report) => {
    const t =
      typeof input.targets === 'object' && input.targets !== null
        ? (input.targets as Record<string, unknown>)
        : undefined;
    if (t) shareTargetRules(input, t, report);
    for (const problem of kmsKeyRegionProblems(input.reencryptWith, input.region))
      report(['reencryptWith'], problem);
    if (input.reencryptedName !== undefined && input.reencryptWith === undefined)
      report(['reencryptedName'], 'names the re-encrypted copy: give reencryptWith too');
  },
);
export type ShareImageInput = z.infer<typeof shareImageInputSchema>;

const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * The rules between a share's targets and the rest: not the owner, the region's partition, public
 * only when allowed, someone named, copy permission only where EC2 can give it. Golden images'
 * `distribution.shareWith` keeps them too (`at` is where the targets sit there).
 */
export function shareTargetRules(
  input: Record<string, unknown>,
  t: Record<string, unknown>,
  report: (path: readonly (string | number)[], message: string) => void,
  at: { targets: readonly string[]; allowCopy: readonly string[] } = {
    targets: ['targets'],
    allowCopy: ['allowCopy'],
  },
): void {
  listOf(t.accountIds).forEach((id, i) => {
    if (typeof id === 'string' && id === input.accountId)
      report(
        [...at.targets, 'accountIds', i],
        `${id} is the image's own account: an image is always available to its owner; name other accounts`,
      );
  });
  for (const key of ['organizationArns', 'organizationalUnitArns'] as const)
    listOf(t[key]).forEach((arn, i) => {
      const problem = arnPartitionProblem(arn, input.region);
      if (problem) report([...at.targets, key, i], problem);
    });
  if (t.public === true && input.allowPublic !== true)
    report(
      [...at.targets, 'public'],
      'sharing with everyone (launch permission Group=all) is refused unless allowPublic is true as well (--allow-public)',
    );
  const accounts = listOf(t.accountIds).length;
  const orgs = listOf(t.organizationArns).length + listOf(t.organizationalUnitArns).length;
  if (accounts + orgs === 0 && t.public !== true)
    report(
      at.targets,
      'names no one: give at least one account id, organization ARN or organizational unit ARN',
    );
  if (input.allowCopy === true && t.public === true)
    report(
      at.allowCopy,
      'with a public share it would make the snapshots public; share copies with accounts instead',
    );
  else if (input.allowCopy === true && accounts === 0 && orgs > 0)
    report(
      at.allowCopy,
      'EC2 gives snapshot create-volume permission (needed to copy) only to accounts, not to organizations or OUs: list the accounts in targets.accountIds',
    );
}

/** One launch permission, as EC2 names it; exactly one field is set. */
export interface LaunchPermissionEntry {
  userId?: string;
  organizationArn?: string;
  organizationalUnitArn?: string;
  group?: 'all';
}

export interface SnapshotPermissionEntry {
  snapshotId: string;
  userIds: string[];
}

export interface KeyGrantRecord {
  keyArn: string;
  granteeAccountId: string;
  grantId: string;
  /** Deterministic (`amiflow/<run id>/<account>`): a retry finds the grant instead of making another. */
  grantName: string;
}

/** What a share added, and so exactly what its expiry, `unshareImage` and its compensation withdraw. */
export interface ShareAdded {
  launchPermissions: LaunchPermissionEntry[];
  snapshotPermissions: SnapshotPermissionEntry[];
  grants: KeyGrantRecord[];
}

export type ImageEncryption = 'unencrypted' | 'customer-managed-key' | 'aws-managed-key';

export interface IamPolicyStatement {
  Sid?: string;
  Effect: 'Allow';
  Principal?: { AWS: string | string[] };
  Action: string[];
  Resource: string;
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
}

export interface IamPolicyDocument {
  Version: '2012-10-17';
  Statement: IamPolicyStatement[];
}

/** For each customer managed key: what the target accounts' principals need, and the key policy alternative. */
export interface KeyAccessNeeded {
  keyArn: string;
  /** Attach in each target account to the principals that launch or copy the image. */
  targetIamPolicy: IamPolicyDocument;
  /** For the key policy instead of grants (`kmsAccess: 'key-policy'`; the only way for organizations and OUs). */
  keyPolicyStatements: IamPolicyStatement[];
}

/** The copy a share made to re-encrypt the image under a customer managed key. */
export interface ReencryptedCopy {
  imageId: string;
  imageName: string;
  kmsKeyId: string;
  /** The run that made it (its `amiflow:workflow-id` / `amiflow:run-id` tags). */
  workflowId: string;
  runId: string;
}

/** What unshareImage needs: the shared image and what the share added. A ShareImageResult is one. */
export interface ShareRecord {
  /** The image asked for. */
  image: ImageRef;
  /** The image shared: `image.imageId`, or the re-encrypted copy's id. */
  sharedImageId: string;
  added: ShareAdded;
  reencryptedCopy?: ReencryptedCopy;
}

export interface ShareImageResult extends ShareRecord {
  encryption: ImageEncryption;
  /** Launch and snapshot permissions the targets had before: left alone, never withdrawn. */
  alreadyPresent: {
    launchPermissions: LaunchPermissionEntry[];
    snapshotPermissions: SnapshotPermissionEntry[];
  };
  keyAccess: KeyAccessNeeded[];
  sharedAt: string;
  /** Time-limited shares: when it was due to end, and when it was withdrawn (the run ends then). */
  expiresAt?: string;
  withdrawnAt?: string;
  /**
   * The share ledger (workflow id) the run holds its launch and create-volume permissions through;
   * absent for runs before the ledger, which added and remove them on their own.
   */
  shareLedger?: string;
  /**
   * The holder this run is counted as in that ledger (`ledgerHolder(workflowId, runId)`). A parent
   * (copyImage, goldenImage) withdraws its child share by releasing this hold; unshareImage never
   * takes it from a record, only from the share run Temporal names.
   */
  shareLedgerHolder?: string;
}

/** Change a time-limited share's end: a new time (`expiresAt`, ISO 8601) or seconds from now (0: now). */
export const shareExpiryUpdateSchema = withRules(
  strictObject({
    expiresAt: z
      .string({ error: (iss) => `${show(iss.input)} is not an ISO 8601 time` })
      .refine((v) => !Number.isNaN(Date.parse(v)), {
        error: (iss) => `${show(iss.input)} is not an ISO 8601 time`,
      })
      .optional(),
    expiresInSeconds: seconds(0, MAX_SHARE_SECONDS).optional(),
  }),
  (update, report) => {
    if ([update.expiresAt, update.expiresInSeconds].filter((v) => v !== undefined).length !== 1)
      report([], 'give exactly one of expiresAt (ISO 8601 time) and expiresInSeconds (0: withdraw now)');
  },
);
export type ShareExpiryUpdate = z.infer<typeof shareExpiryUpdateSchema>;

/**
 * Problems with a request to change a share's end, given the workflow clock and the share's start;
 * `expiresAt` is the new end (epoch ms) when there are none. The shape first, then the times.
 */
export function shareExpiryIssues(
  update: unknown,
  now: number,
  sharedSince: number,
): { issues: InputIssue[]; expiresAt?: number } {
  const issues = issuesFor(shareExpiryUpdateSchema, update, '', '(update)');
  if (issues.length > 0) return { issues };
  const u = update as ShareExpiryUpdate;
  const field = u.expiresAt !== undefined ? 'expiresAt' : 'expiresInSeconds';
  const expiresAt =
    u.expiresAt !== undefined ? Date.parse(u.expiresAt) : now + (u.expiresInSeconds ?? 0) * 1000;
  if (expiresAt < now)
    return {
      issues: [
        {
          field,
          message: `${new Date(expiresAt).toISOString()} has passed already; use expiresInSeconds: 0 to withdraw now`,
        },
      ],
    };
  const latest = sharedSince + MAX_SHARE_SECONDS * 1000;
  if (expiresAt > latest)
    return {
      issues: [
        {
          field,
          message: `would end the share after ${new Date(latest).toISOString()}, ${MAX_SHARE_SECONDS / 86400} days after it began: the longest time-limited share`,
        },
      ],
    };
  return { issues, expiresAt };
}

export interface ShareExpiryResult {
  expiresAt: string;
}

export const setShareExpiryUpdate = defineUpdate<ShareExpiryResult, [ShareExpiryUpdate]>('setShareExpiry');

const LAUNCH_PERMISSION_KINDS: Record<string, (v: string) => boolean> = {
  userId: (v) => ACCOUNT_RE.test(v),
  organizationArn: (v) => ORG_ARN_RE.test(v),
  organizationalUnitArn: (v) => OU_ARN_RE.test(v),
  group: (v) => v === 'all',
};
const launchPermissionSchema = z.unknown().superRefine((p, ctx) => {
  const entries =
    typeof p === 'object' && p !== null ? Object.entries(p).filter(([, v]) => v !== undefined) : [];
  const [only] = entries;
  const ok =
    entries.length === 1 &&
    only &&
    typeof only[1] === 'string' &&
    LAUNCH_PERMISSION_KINDS[only[0]]?.(only[1]);
  if (!ok)
    ctx.addIssue({
      code: 'custom',
      message: `${show(p)} is not one launch permission ({ userId } | { organizationArn } | { organizationalUnitArn } | { group: 'all' })`,
    });
});

/**
 * A share's record as its result gives it (so a ShareImageResult, with its other fields, is one):
 * what unshareImage compares with the share run's own record.
 */
export const shareRecordSchema = withRules(
  z.looseObject(
    {
      image: z.looseObject(
        { region, accountId: accountId.optional(), imageId },
        { error: 'is required: { region, accountId?, imageId }' },
      ),
      sharedImageId: imageId,
      added: z.looseObject(
        {
          launchPermissions: z.array(launchPermissionSchema, { error: 'must be a list' }),
          snapshotPermissions: z.array(
            z.looseObject(
              {
                snapshotId: z
                  .string({ error: 'must be a snapshot id (snap-…)' })
                  .regex(SNAPSHOT_ID_RE, { error: 'must be a snapshot id (snap-…)' }),
                userIds: z.array(accountId, { error: 'must be a list of 12-digit account ids' }),
              },
              { error: 'must be { snapshotId, userIds }' },
            ),
            { error: 'must be a list' },
          ),
          grants: z.array(
            z.looseObject(
              {
                keyArn: z
                  .string({ error: (iss) => `${show(iss.input)} is not a KMS key ARN` })
                  .regex(KMS_ARN_RE, { error: (iss) => `${show(iss.input)} is not a KMS key ARN` }),
                granteeAccountId: z.string({ error: 'is required' }).pipe(accountId),
                grantId: present,
                grantName: present,
              },
              { error: 'must be { keyArn, granteeAccountId, grantId, grantName }' },
            ),
            { error: 'must be a list' },
          ),
        },
        { error: 'is required: what the share added' },
      ),
      reencryptedCopy: z
        .looseObject({ imageId, imageName: present, workflowId: present, runId: present })
        .optional(),
    },
    { error: 'must be the record to compare with the share run (or left out)' },
  ),
  (record, report) => {
    const image = record.image as Record<string, unknown> | undefined;
    const added = record.added as Record<string, unknown> | undefined;
    listOf(added?.grants).forEach((g, i) => {
      const keyArn = typeof g === 'object' && g !== null ? (g as Record<string, unknown>).keyArn : undefined;
      for (const problem of kmsKeyRegionProblems(keyArn, image?.region))
        report(['added', 'grants', i, 'keyArn'], problem);
    });
  },
);

export const unshareImageInputSchema = withRules(
  strictObject({
    /**
     * The share run to withdraw (its workflow id; its latest run unless `shareRunId`). The run's own
     * result in Temporal names what it added: that, and nothing else, is withdrawn.
     */
    shareWorkflowId: runRef.optional(),
    shareRunId: runRef.optional(),
    /**
     * Optional with `shareWorkflowId`: a record the caller holds, only compared with the run's own
     * (any difference refuses the unshare). Runs started before `shareWorkflowId` existed carry only this.
     */
    share: shareRecordSchema.optional(),
    /** Also deregister the re-encrypted copy the share made, and delete its snapshots. Default false. */
    deleteReencryptedCopy: flag.optional(),
  }),
  (input, report) => {
    if (input.shareRunId !== undefined && input.shareWorkflowId === undefined)
      report(['shareRunId'], 'needs shareWorkflowId');
    if (input.share === undefined && input.shareWorkflowId === undefined)
      report(
        ['share'],
        "is required: the share run's workflow id (shareWorkflowId), whose own result names what it added",
      );
    const share = input.share as Record<string, unknown> | undefined;
    if (input.deleteReencryptedCopy === true && share !== undefined && share.reencryptedCopy === undefined)
      report(['deleteReencryptedCopy'], 'this share made no re-encrypted copy');
  },
);
export type UnshareImageInput = Omit<z.infer<typeof unshareImageInputSchema>, 'share'> & {
  share?: ShareRecord;
};

export interface UnshareImageResult {
  image: ImageRef;
  sharedImageId: string;
  /** What was withdrawn (including entries someone had already removed: withdrawing is idempotent). */
  withdrawn: ShareAdded;
  deletedReencryptedCopy?: string;
  /** Asked to delete the re-encrypted copy, but it was kept: what still uses or protects it. */
  keptReencryptedCopy?: { imageId: string; because: string[] };
  /** Permissions the share held that stay: another live share holds them too, or they predate amiflow. */
  kept?: { permission: string; because: string }[];
  finishedAt: string;
}
