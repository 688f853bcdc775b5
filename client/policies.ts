/**
 * Policy statements for "instances launch only from approved images", generated from the catalogue
 * and printed for review. amiflow never applies them: an administrator reads, adapts and attaches.
 *
 * - IAM (launching principals): allow `ec2:RunInstances` on image resources only for approved image
 *   ids (`ec2:ImageID`), images tagged approved in the launching account (`ec2:ResourceTag/amiflow:approved`:
 *   its own copies; tags of images shared from another account are not visible to it) and owners the
 *   allow list approves (`ec2:Owner`). It allows nothing else: the other resources RunInstances
 *   touches (instance, volume, network interface, subnet, …) stay as the principal's own policy
 *   has them, so attaching this never widens a principal. And the same as one Deny statement for an
 *   SCP or permission boundary, where it overrides any Allow.
 * - KMS (image owner's keys): the key-policy statements that let the target accounts launch images
 *   whose snapshots are under a customer managed key (only through EC2, `kms:ViaService`, and only
 *   from those accounts, `kms:CallerAccount`, or the organization, `aws:PrincipalOrgID`), and the
 *   IAM policy their principals need.
 * - The worker's own role (`workerPolicy`): destructive EC2 actions only on what amiflow tagged.
 *
 * `policyFindings` checks any of these documents statement by statement (tests run it on every
 * generated document; `guardrails policy` prints its findings with the notes).
 */
import type { Catalogue, IamPolicyDocument } from '../contracts';
import {
  APPROVED_VALUE,
  KMS_GRANT_OPERATIONS,
  MANAGED_BY_VALUE,
  RUN_COMMANDS_ALLOWED,
  ROLLOUT_TARGET_VALUE,
  TAG,
} from '../contracts';
import { targetIamPolicy } from '../workflows/key-access';
import { partitionOfRegion } from '../workflows/share-validation';
import { recipeBuildStatements } from './recipe-policies';

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Principal?: { AWS: string | string[] };
  Action: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
}

/** An Allow of `Action` on `Resource`, under `Condition` when given: most statements here are one. */
export function allowStatement(
  Sid: string,
  Action: PolicyStatement['Action'],
  Resource: PolicyStatement['Resource'],
  Condition?: PolicyStatement['Condition'],
): PolicyStatement {
  return { Sid, Effect: 'Allow', Action, Resource, ...(Condition ? { Condition } : {}) };
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
    allow.push(
      allowStatement('AllowRunInstancesFromApprovedImageIds', 'ec2:RunInstances', images, {
        StringEquals: { 'ec2:ImageID': ids },
      }),
    );
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
    'the allow policy covers the image only: RunInstances on the instance, volumes, network interfaces, subnets and ' +
      "security groups comes from the principal's own policy (this one never widens a principal)",
  ];
  notes.push(...roleWildcardWarnings(roles));
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
  notes.push(...[...policyFindings(allowDoc), ...policyFindings(denyDoc)].map((f) => `CHECK: ${f}`));
  return { allow: allowDoc, deny: denyDoc, imageIds, notes };
}

/**
 * Warnings for amiflow role ARNs with wildcards: every role they match is exempt from the
 * approval-tag deny, i.e. may mark any image approved.
 */
export function roleWildcardWarnings(roles: readonly string[]): string[] {
  return roles
    .filter((r) => r.includes('*') || r.includes('?'))
    .map((r) => {
      const name = /:(?:role|user)\/(.*)$/.exec(r)?.[1] ?? '';
      const account = /^arn:[^:]*:iam::([^:]*):/.exec(r)?.[1] ?? '';
      const everything = /^[*?/]*$/.test(name) || account.includes('*');
      return everything
        ? `WARNING: --amiflow-role ${r} matches every role${account.includes('*') ? ' of every account' : ` of account ${account}`}: ` +
            "all of them are exempt from the approval-tag deny and can mark any image approved; name the worker's role(s) exactly"
        : `WARNING: --amiflow-role ${r} is a pattern: every role it matches is exempt from the approval-tag deny and can mark images approved`;
    });
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
  opts: LaunchPolicyOptions & {
    /** `o-…`: also require the callers to be in this organization (`aws:PrincipalOrgID`). */
    organizationId?: string;
  } = {},
): KeyPolicies {
  const byKey = new Map<string, Set<string>>();
  for (const i of catalogue.images.filter((x) => opts.includeDeprecated || !x.deprecated))
    for (const k of i.kmsKeyIds) byKey.set(k, (byKey.get(k) ?? new Set()).add(i.imageId));
  const use = KMS_GRANT_OPERATIONS.filter((op) => op !== 'CreateGrant').map((op) => `kms:${op}`);
  const keys = [...byKey]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([keyArn, ids]): KeyPolicyReview => {
      const partition = /^arn:([^:]+):/.exec(keyArn)?.[1] ?? 'aws';
      const accounts = [...targetAccounts].sort();
      const principals = accounts.map((a) => `arn:${partition}:iam::${a}:root`);
      // Only through EC2 (launch, copy: the EC2 of any region, for cross-region copies), only by
      // the target accounts' own principals, and only within the organization when it is named.
      const onlyTheseAccountsViaEc2 = {
        StringEquals: {
          'kms:CallerAccount': accounts,
          ...(opts.organizationId ? { 'aws:PrincipalOrgID': opts.organizationId } : {}),
        },
        StringLike: {
          'kms:ViaService': `ec2.*.${partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com'}`,
        },
      };
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
            Condition: onlyTheseAccountsViaEc2,
          },
          {
            Sid: 'AllowApprovedImageAccountsGrantsForEc2',
            Effect: 'Allow',
            Principal: { AWS: principals },
            Action: 'kms:CreateGrant',
            Resource: '*',
            Condition: { ...onlyTheseAccountsViaEc2, Bool: { 'kms:GrantIsForAWSResource': true } },
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
  for (const k of keys)
    notes.push(
      ...policyFindings({ Version: '2012-10-17', Statement: k.keyPolicyStatements }).map(
        (f) => `CHECK ${k.keyArn}: ${f}`,
      ),
    );
  return { keys, notes };
}

// ---------------------------------------------------------------------------------------------
// Checks, statement by statement
// ---------------------------------------------------------------------------------------------

/** EC2 actions that destroy or retire: amiflow's role may take them only on what amiflow tagged. */
export const DESTRUCTIVE_EC2_ACTIONS = [
  'ec2:DeregisterImage',
  'ec2:DeleteSnapshot',
  'ec2:TerminateInstances',
  'ec2:DisableImageDeregistrationProtection',
  'ec2:EnableImageDeprecation',
] as const;

const KMS_KEY_USE = /^kms:(Decrypt|GenerateDataKey.*|ReEncrypt.*|CreateGrant|Encrypt|\*)$/i;
const READ_ONLY = /^[a-z0-9-]+:(Describe|List|Get)[A-Za-z*]*$/;

function listOf(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function hasConditionKey(st: PolicyStatement, key: string): boolean {
  return Object.values(st.Condition ?? {}).some((keys) =>
    Object.keys(keys).some((k) => k.toLowerCase() === key.toLowerCase()),
  );
}

function actionCovers(pattern: string, action: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
  return re.test(action);
}

/**
 * What is unsafe in a policy document, one finding per statement and rule: an Allow with
 * NotResource/NotAction (it allows everything it does not name), a write Allow on every resource
 * without a condition, KMS key use for other accounts without `kms:ViaService` or without
 * `kms:CallerAccount`/`aws:PrincipalOrgID`, CreateGrant without `kms:GrantIsForAWSResource` or
 * `kms:GrantOperations`, and destructive EC2 actions without `ec2:ResourceTag/amiflow:managed-by`.
 */
export function policyFindings(doc: PolicyDocument): string[] {
  const findings: string[] = [];
  doc.Statement.forEach((st, i) => {
    if (st.Effect !== 'Allow') return;
    const name = st.Sid || `statement ${i}`;
    const actions = listOf(st.Action);
    const conditioned = Object.keys(st.Condition ?? {}).length > 0;
    if (st.NotResource !== undefined || (st as { NotAction?: unknown }).NotAction !== undefined)
      findings.push(
        `${name}: an Allow with NotResource/NotAction allows everything it does not name (it widens the principal)`,
      );
    const everyResource = listOf(st.Resource).some((r) => r === '*' || /^arn:[^:]+:[^:]+:\*:\*:\*$/.test(r));
    if (everyResource && !conditioned && actions.some((a) => !READ_ONLY.test(a)))
      findings.push(`${name}: allows ${actions.join(', ')} on every resource without a condition`);
    const crossAccount = listOf(st.Principal?.AWS).length > 0;
    if (crossAccount && actions.some((a) => KMS_KEY_USE.test(a))) {
      if (!hasConditionKey(st, 'kms:ViaService'))
        findings.push(`${name}: lets other accounts use the key outside EC2 (no kms:ViaService condition)`);
      if (!hasConditionKey(st, 'kms:CallerAccount') && !hasConditionKey(st, 'aws:PrincipalOrgID'))
        findings.push(
          `${name}: names no caller account or organization (kms:CallerAccount / aws:PrincipalOrgID)`,
        );
    }
    if (
      actions.some((a) => actionCovers(a, 'kms:CreateGrant')) &&
      !hasConditionKey(st, 'kms:GrantIsForAWSResource') &&
      !hasConditionKey(st, 'kms:GrantOperations')
    )
      findings.push(
        `${name}: CreateGrant for any operation (no kms:GrantIsForAWSResource or kms:GrantOperations)`,
      );
    const destructive = DESTRUCTIVE_EC2_ACTIONS.filter((d) => actions.some((a) => actionCovers(a, d)));
    if (destructive.length > 0 && !hasConditionKey(st, `ec2:ResourceTag/${TAG.managedBy}`))
      findings.push(
        `${name}: ${destructive.join(', ')} without an ec2:ResourceTag/${TAG.managedBy} condition (not only on what amiflow made)`,
      );
  });
  return findings;
}

export interface WorkerPolicyOptions {
  /** Default `aws`. */
  partition?: string;
  /** The roles the worker assumes in other accounts (settings `aws.roleArns` / `roleName`). */
  assumeRoleArns?: string[];
}

/**
 * SSM Run Command (app-consistent freeze/thaw, recipe steps): SendCommand only on instances tagged
 * for it (amiflow:run-commands=allowed, set by their operators) or launched by amiflow, and only with
 * the AWS-RunShellScript document (a document of your own needs its ARN added here); reading and
 * cancelling commands, and the agents' status, cannot be scoped by resource.
 */
export function runCommandStatements(
  partition: string,
  /** The policy variable naming this account; IaC passes its own (`${AWS::AccountId}`). */
  ownAccount = '${aws:PrincipalAccount}',
): PolicyStatement[] {
  const instances = `arn:${partition}:ec2:*:*:instance/*`;
  return [
    {
      Sid: 'RunCommandsOnInstancesTaggedForIt',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: instances,
      Condition: { StringEquals: { [`ssm:resourceTag/${TAG.runCommands}`]: RUN_COMMANDS_ALLOWED } },
    },
    {
      Sid: 'RunCommandsOnInstancesAmiflowLaunched',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: instances,
      Condition: { StringEquals: { [`ssm:resourceTag/${TAG.managedBy}`]: MANAGED_BY_VALUE } },
    },
    {
      Sid: 'RunCommandsWithTheShellDocument',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: `arn:${partition}:ssm:*::document/AWS-RunShellScript`,
    },
    {
      Sid: 'FollowCommands',
      Effect: 'Allow',
      Action: ['ssm:GetCommandInvocation', 'ssm:ListCommands', 'ssm:DescribeInstanceInformation'],
      Resource: '*',
    },
    {
      // A command is named by its id only: it cannot be scoped by tag, only to this account's own.
      Sid: 'CancelOwnAccountCommands',
      Effect: 'Allow',
      Action: 'ssm:CancelCommand',
      Resource: '*',
      Condition: { StringEquals: { 'aws:ResourceAccount': ownAccount } },
    },
  ];
}

/**
 * The IAM policy of the worker's own role: reads; creating images, copies and test instances;
 * sharing; and destroying only resources tagged `amiflow:managed-by=amiflow` (what amiflow made).
 * KMS grants only for the operations a share gives (`kms:GrantOperations`).
 */
export function workerPolicy(opts: WorkerPolicyOptions = {}): { policy: PolicyDocument; notes: string[] } {
  const p = opts.partition ?? 'aws';
  const ec2 = (type: string) => `arn:${p}:ec2:*:*:${type}/*`;
  const image = `arn:${p}:ec2:*::image/*`;
  const snapshot = `arn:${p}:ec2:*::snapshot/*`;
  const statements: PolicyStatement[] = [
    { Sid: 'Read', Effect: 'Allow', Action: ['ec2:Describe*', 'ec2:GetConsoleOutput'], Resource: '*' },
    {
      Sid: 'MakeImagesCopiesAndTestInstances',
      Effect: 'Allow',
      Action: ['ec2:CreateImage', 'ec2:CopyImage', 'ec2:RunInstances', 'ec2:CreateTags'],
      Resource: [
        image,
        snapshot,
        ec2('instance'),
        ec2('volume'),
        ec2('network-interface'),
        ec2('subnet'),
        ec2('security-group'),
      ],
    },
    {
      Sid: 'StopAndStartInstancesItImages',
      Effect: 'Allow',
      Action: ['ec2:StopInstances', 'ec2:StartInstances'],
      Resource: ec2('instance'),
    },
    {
      Sid: 'ShareImages',
      Effect: 'Allow',
      Action: ['ec2:ModifyImageAttribute', 'ec2:ModifySnapshotAttribute'],
      Resource: [image, snapshot],
    },
    {
      Sid: 'DestroyOnlyWhatAmiflowMade',
      Effect: 'Allow',
      Action: [...DESTRUCTIVE_EC2_ACTIONS],
      Resource: [image, snapshot, ec2('instance')],
      Condition: { StringEquals: { [`ec2:ResourceTag/${TAG.managedBy}`]: MANAGED_BY_VALUE } },
    },
    {
      Sid: 'GrantKeysOnlyForSharing',
      Effect: 'Allow',
      Action: 'kms:CreateGrant',
      Resource: `arn:${p}:kms:*:*:key/*`,
      Condition: { 'ForAllValues:StringEquals': { 'kms:GrantOperations': [...KMS_GRANT_OPERATIONS] } },
    },
    {
      Sid: 'ReadAndRevokeGrants',
      Effect: 'Allow',
      Action: ['kms:DescribeKey', 'kms:ListGrants', 'kms:RevokeGrant'],
      Resource: `arn:${p}:kms:*:*:key/*`,
    },
    ...runCommandStatements(p),
    ...recipeBuildStatements(p),
    ...rolloutStatements(p),
    ...(opts.assumeRoleArns?.length
      ? [
          {
            Sid: 'ActInTargetAccounts',
            Effect: 'Allow' as const,
            Action: 'sts:AssumeRole',
            Resource: [...opts.assumeRoleArns].sort(),
          },
        ]
      : []),
  ];
  const policy: PolicyDocument = { Version: '2012-10-17', Statement: statements };
  const notes = [
    `SSM commands (mode app-consistent) run only on instances tagged ${TAG.runCommands}=${RUN_COMMANDS_ALLOWED} ` +
      `or ${TAG.managedBy}=${MANAGED_BY_VALUE}, with AWS-RunShellScript (builds also PowerShell and the patch baseline); add the ARNs of your own SSM documents to use them`,
    `rollouts change only launch templates and Auto Scaling groups tagged ${TAG.rolloutTarget}=${ROLLOUT_TARGET_VALUE}: tag those a rollout may change`,
    `deregistering, deleting snapshots and terminating need ${TAG.managedBy}=${MANAGED_BY_VALUE} on the resource: ` +
      'amiflow tags everything it makes; migrate with --terminate-source needs TerminateInstances on the source instance as well',
    ...policyFindings(policy).map((f) => `CHECK: ${f}`),
  ];
  return { policy, notes };
}

/**
 * Rollouts: new launch-template versions and default changes, instance refreshes (start, cancel,
 * roll back), only on launch templates and groups their owners tagged as rollout targets (EC2 and
 * Auto Scaling both evaluate the resource's tags for these actions); reads of groups, refreshes and
 * alarms, which take no resource-level conditions.
 */
export function rolloutStatements(p: string): PolicyStatement[] {
  return [
    {
      Sid: 'RolloutLaunchTemplateVersions',
      Effect: 'Allow',
      Action: ['ec2:CreateLaunchTemplateVersion', 'ec2:ModifyLaunchTemplate'],
      Resource: `arn:${p}:ec2:*:*:launch-template/*`,
      Condition: { StringEquals: { [`ec2:ResourceTag/${TAG.rolloutTarget}`]: ROLLOUT_TARGET_VALUE } },
    },
    {
      Sid: 'RolloutInstanceRefreshes',
      Effect: 'Allow',
      Action: [
        'autoscaling:StartInstanceRefresh',
        'autoscaling:CancelInstanceRefresh',
        'autoscaling:RollbackInstanceRefresh',
      ],
      Resource: `arn:${p}:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*`,
      Condition: { StringEquals: { [`autoscaling:ResourceTag/${TAG.rolloutTarget}`]: ROLLOUT_TARGET_VALUE } },
    },
    {
      Sid: 'RolloutReads',
      Effect: 'Allow',
      Action: [
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeInstanceRefreshes',
        'cloudwatch:DescribeAlarms',
      ],
      Resource: '*',
    },
  ];
}
