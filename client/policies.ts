/**
 * Policy statements for "instances launch only from approved images", generated from the catalogue
 * and printed for review. amiflow never applies them: an administrator reads, adapts and attaches.
 *
 * - IAM (launching principals): allow `ec2:RunInstances` on image resources only for approved image
 *   ids (`ec2:ImageID`), images tagged approved in the launching account (`ec2:ResourceTag/amiflow:approved`:
 *   its own copies; tags of images shared from another account are not visible to it) and owners the
 *   allow list approves (`ec2:Owner`); every other resource RunInstances touches stays allowed.
 *   And the same as one Deny statement for an SCP or permission boundary, where it overrides any Allow.
 * - KMS (image owner's keys): the key-policy statements that let the target accounts launch images
 *   whose snapshots are under a customer managed key, and the IAM policy their principals need.
 */
import type { Catalogue, IamPolicyDocument } from '../contracts';
import { APPROVED_VALUE, KMS_GRANT_OPERATIONS, TAG } from '../contracts';
import { targetIamPolicy } from '../workflows/key-access';
import { partitionOfRegion } from '../workflows/share-validation';

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Principal?: { AWS: string | string[] };
  Action: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

/** IAM's size limits (characters, white space excluded) for what the documents are attached as. */
export const POLICY_SIZE_LIMITS = { managedPolicy: 6_144, serviceControlPolicy: 5_120 } as const;

export interface LaunchPolicies {
  /** For the roles and users that launch instances (alongside their other permissions). */
  allow: PolicyDocument;
  /** For an SCP or a permission boundary: denies RunInstances from any image not approved. */
  deny: PolicyDocument;
  /** Approved image ids the conditions name, per region. */
  imageIds: Record<string, string[]>;
  notes: string[];
}

export interface LaunchPolicyOptions {
  /** Also allow deprecated approved images (default false: retired versions launch no more). */
  includeDeprecated?: boolean;
  /**
   * The roles amiflow's worker acts as: the deny policy then reserves the approval tags to them, so
   * nobody else can mark an image approved (the tag conditions and the scan trust those tags).
   */
  amiflowRoleArns?: string[];
}

/** The tags that make an image approved: only amiflow may write them. */
export const APPROVAL_TAG_KEYS = [TAG.approved, TAG.pipeline, TAG.version, TAG.approvedBy, TAG.approvedAt];

function size(doc: PolicyDocument): number {
  return JSON.stringify(doc).length;
}

export function launchPolicies(catalogue: Catalogue, opts: LaunchPolicyOptions = {}): LaunchPolicies {
  const usable = catalogue.images.filter((i) => opts.includeDeprecated || !i.deprecated);
  const regions = [...new Set(catalogue.images.map((i) => i.region))].sort();
  const partitions = [...new Set(regions.map(partitionOfRegion))];
  const partition = partitions[0] ?? 'aws';
  const images = `arn:${partition}:ec2:*::image/*`;
  const ids = [...new Set(usable.map((i) => i.imageId))].sort();
  const owners = [...new Set(catalogue.allowedOwners.map((o) => o.owner))].sort();
  const imageIds = Object.fromEntries(
    regions.map((r) => [r, [...new Set(usable.filter((i) => i.region === r).map((i) => i.imageId))].sort()]),
  );

  const allow: PolicyStatement[] = [];
  if (ids.length)
    allow.push({
      Sid: 'AllowRunInstancesFromApprovedImageIds',
      Effect: 'Allow',
      Action: 'ec2:RunInstances',
      Resource: images,
      Condition: { StringEquals: { 'ec2:ImageID': ids } },
    });
  allow.push({
    Sid: 'AllowRunInstancesFromImagesTaggedApproved',
    Effect: 'Allow',
    Action: 'ec2:RunInstances',
    Resource: images,
    Condition: { StringEquals: { [`ec2:ResourceTag/${TAG.approved}`]: APPROVED_VALUE } },
  });
  if (owners.length)
    allow.push({
      Sid: 'AllowRunInstancesFromAllowListedOwners',
      Effect: 'Allow',
      Action: 'ec2:RunInstances',
      Resource: images,
      Condition: { StringEquals: { 'ec2:Owner': owners } },
    });
  allow.push({
    Sid: 'AllowRunInstancesOnResourcesOtherThanImages',
    Effect: 'Allow',
    Action: 'ec2:RunInstances',
    NotResource: images,
  });

  // Keys within one operator are ANDed: denied when the image matches none of the three.
  const notApproved: Record<string, string | string[]> = {
    [`ec2:ResourceTag/${TAG.approved}`]: APPROVED_VALUE,
    ...(ids.length ? { 'ec2:ImageID': ids } : {}),
    ...(owners.length ? { 'ec2:Owner': owners } : {}),
  };
  const deny: PolicyStatement[] = [
    {
      Sid: 'DenyRunInstancesFromUnapprovedImages',
      Effect: 'Deny',
      Action: 'ec2:RunInstances',
      Resource: images,
      Condition: { StringNotEquals: notApproved },
    },
  ];
  const roles = [...new Set(opts.amiflowRoleArns ?? [])].sort();
  if (roles.length)
    // Condition key names ignore case (ec2:ResourceTag/AMIFLOW:APPROVED is the same key): so must this.
    deny.push({
      Sid: 'DenyApprovalTagsExceptByAmiflow',
      Effect: 'Deny',
      Action: 'ec2:CreateTags',
      Resource: images,
      Condition: {
        'ForAnyValue:StringEqualsIgnoreCase': { 'aws:TagKeys': APPROVAL_TAG_KEYS },
        ArnNotLike: { 'aws:PrincipalArn': roles },
      },
    });

  const allowDoc: PolicyDocument = { Version: '2012-10-17', Statement: allow };
  const denyDoc: PolicyDocument = { Version: '2012-10-17', Statement: deny };
  const notes = [
    `${ids.length} approved image id(s) in ${regions.length} region(s)` +
      (opts.includeDeprecated ? ', deprecated ones included' : ', deprecated ones left out'),
    `ec2:ResourceTag/${TAG.approved} matches only images the launching account owns (its copies): ` +
      'tags of images shared from another account are not visible to it, so those match by id or owner',
    'the policies name image ids: generate them again when a golden-image run approves or retires a version',
  ];
  if (!roles.length)
    notes.push(
      `anyone allowed ec2:CreateTags on images can tag one ${TAG.approved}=${APPROVED_VALUE} and pass the tag ` +
        "statement (and the scan): give --amiflow-role <the worker's role ARN> to reserve the approval tags to amiflow",
    );
  if (!ids.length && !owners.length)
    notes.push(
      'the catalogue has no approved image: the deny statement denies every image not tagged approved',
    );
  if (partitions.length > 1)
    notes.push(`regions in ${partitions.length} partitions: generate one policy per partition`);
  if (catalogue.errors.length)
    notes.push(
      `the catalogue is incomplete (${catalogue.errors.map((e) => `${e.account}/${e.region}: ${e.message}`).join('; ')}): ` +
        'images approved there are missing from the policies',
    );
  if (size(allowDoc) > POLICY_SIZE_LIMITS.managedPolicy)
    notes.push(
      `the allow policy is ${size(allowDoc)} characters, over the ${POLICY_SIZE_LIMITS.managedPolicy} of a managed policy: ` +
        'narrow it with --pipeline or rely on the tag and owner statements',
    );
  if (size(denyDoc) > POLICY_SIZE_LIMITS.serviceControlPolicy)
    notes.push(
      `the deny policy is ${size(denyDoc)} characters, over the ${POLICY_SIZE_LIMITS.serviceControlPolicy} of an SCP: ` +
        'narrow it with --pipeline, or attach it as a permission boundary (6,144)',
    );
  return { allow: allowDoc, deny: denyDoc, imageIds, notes };
}

/** For one key: what goes into its key policy, and what the target accounts' principals need. */
export interface KeyPolicyReview {
  keyArn: string;
  /** Approved images whose snapshots use the key. */
  imageIds: string[];
  /** Add to the key's policy (in the account that owns the key). */
  keyPolicyStatements: PolicyStatement[];
  /** Attach in each target account to the principals that launch the images. */
  targetAccountIamPolicy: IamPolicyDocument;
}

export interface KeyPolicies {
  keys: KeyPolicyReview[];
  notes: string[];
}

/**
 * The use of the key for the target accounts: exactly the operations EC2 needs to launch (or copy)
 * an image whose snapshots are under it (`KMS_GRANT_OPERATIONS`, the same list shareImage grants),
 * with CreateGrant only for grants to AWS resources (the volumes EC2 makes).
 */
export function keyPolicies(
  catalogue: Catalogue,
  targetAccounts: readonly string[],
  opts: LaunchPolicyOptions = {},
): KeyPolicies {
  const byKey = new Map<string, Set<string>>();
  for (const i of catalogue.images.filter((x) => opts.includeDeprecated || !x.deprecated))
    for (const k of i.kmsKeyIds) byKey.set(k, (byKey.get(k) ?? new Set()).add(i.imageId));
  const use = KMS_GRANT_OPERATIONS.filter((op) => op !== 'CreateGrant').map((op) => `kms:${op}`);
  const keys = [...byKey]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([keyArn, ids]): KeyPolicyReview => {
      const partition = /^arn:([^:]+):/.exec(keyArn)?.[1] ?? 'aws';
      const principals = [...targetAccounts].sort().map((a) => `arn:${partition}:iam::${a}:root`);
      return {
        keyArn,
        imageIds: [...ids].sort(),
        keyPolicyStatements: [
          {
            Sid: 'AllowApprovedImageAccountsUseOfTheKey',
            Effect: 'Allow',
            Principal: { AWS: principals },
            Action: use,
            Resource: '*',
          },
          {
            Sid: 'AllowApprovedImageAccountsGrantsForEc2',
            Effect: 'Allow',
            Principal: { AWS: principals },
            Action: 'kms:CreateGrant',
            Resource: '*',
            Condition: { Bool: { 'kms:GrantIsForAWSResource': true } },
          },
        ],
        targetAccountIamPolicy: targetIamPolicy(keyArn),
      };
    });
  const notes: string[] = [];
  if (keys.length === 0) notes.push('no approved image is encrypted with a KMS key: no key policy needed');
  if (keys.some((k) => !k.keyArn.startsWith('arn:')))
    notes.push('some keys are given by id, not ARN: use the key ARN in the target accounts’ IAM policy');
  notes.push(
    'an image encrypted with the AWS managed key aws/ebs cannot be used from other accounts at all: ' +
      'its key policy cannot be changed; copy it under a customer managed key (amiflow image share --reencrypt-with)',
  );
  return { keys, notes };
}
