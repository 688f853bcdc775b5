/**
 * Infrastructure as code for each target account, generated (scripts/generate-account-iac.ts) so it
 * cannot drift from what amiflow does: the role the worker assumes there (its permissions, listed
 * once below per capability, as docs/production.md's Permissions section describes them), and the KMS
 * statements from the same functions `amiflow guardrails policy` prints (client/policies.ts:
 * `keyPolicies`). Rendered as a CloudFormation template (StackSet-ready: no account ids in it, all
 * parameters) and a Terraform module (JSON syntax, which Terraform reads as it reads HCL).
 */
import type { Catalogue, IamPolicyDocument } from '../contracts';
import type { PolicyStatement } from './policies';
import { keyPolicies, rolloutStatements, runCommandStatements } from './policies';
import { recipeBuildStatements } from './recipe-policies';

/** What the assumed role may do, per capability (docs/production.md, Permissions). */
export const TARGET_ROLE_STATEMENTS: readonly PolicyStatement[] = [
  {
    Sid: 'ImageInstances',
    Effect: 'Allow',
    Action: [
      'ec2:DescribeInstances',
      'ec2:StopInstances',
      'ec2:StartInstances',
      'ec2:CreateImage',
      'ec2:DescribeImages',
      'ec2:DescribeSnapshots',
      'ec2:DeregisterImage',
      'ec2:DeleteSnapshot',
    ],
    Resource: '*',
  },
  {
    Sid: 'TagWhatAmiflowMakes',
    Effect: 'Allow',
    Action: 'ec2:CreateTags',
    Resource: [
      'arn:${AWS::Partition}:ec2:*::image/*',
      'arn:${AWS::Partition}:ec2:*::snapshot/*',
      'arn:${AWS::Partition}:ec2:*:*:instance/*',
      'arn:${AWS::Partition}:ec2:*:*:volume/*',
    ],
  },
  {
    Sid: 'ShareAndCopyImages',
    Effect: 'Allow',
    Action: [
      'ec2:DescribeImageAttribute',
      'ec2:ModifyImageAttribute',
      'ec2:DescribeSnapshotAttribute',
      'ec2:ModifySnapshotAttribute',
      'ec2:CopyImage',
    ],
    Resource: '*',
  },
  {
    Sid: 'MigrateAndValidate',
    Effect: 'Allow',
    Action: [
      'ec2:DescribeInstanceAttribute',
      'ec2:DescribeSubnets',
      'ec2:DescribeAvailabilityZones',
      'ec2:DescribeVolumes',
      'ec2:DescribeAddresses',
      'ec2:DescribeInstanceTypeOfferings',
      'ec2:DescribeInstanceCreditSpecifications',
      'ec2:DescribePlacementGroups',
      'ec2:DescribeInstanceStatus',
      'ec2:RunInstances',
      'ec2:AssociateAddress',
      'ec2:TerminateInstances',
      'ec2:ModifyInstanceAttribute',
      'ec2:GetConsoleOutput',
    ],
    Resource: '*',
  },
  {
    Sid: 'RetireAndPublish',
    Effect: 'Allow',
    Action: [
      'ec2:EnableImageDeprecation',
      'ec2:DescribeImageReferences',
      'ec2:DescribeLaunchTemplateVersions',
      'ec2:EnableImageDeregistrationProtection',
      'ec2:DisableImageDeregistrationProtection',
      'ssm:GetParameter',
      'ssm:PutParameter',
      'ssm:DeleteParameter',
      'ssm:DescribeParameters',
      'imagebuilder:ListImageRecipes',
    ],
    Resource: '*',
  },
  {
    Sid: 'GuardrailsAllowedImages',
    Effect: 'Allow',
    Action: [
      'ec2:GetAllowedImagesSettings',
      'ec2:EnableAllowedImagesSettings',
      'ec2:ReplaceImageCriteriaInAllowedImagesSettings',
      'ec2:DisableAllowedImagesSettings',
    ],
    Resource: '*',
  },
  {
    Sid: 'UseCustomerManagedKeysThroughEc2',
    Effect: 'Allow',
    Action: [
      'kms:DescribeKey',
      'kms:ListGrants',
      'kms:CreateGrant',
      'kms:RevokeGrant',
      'kms:Decrypt',
      'kms:GenerateDataKeyWithoutPlaintext',
      'kms:ReEncryptFrom',
      'kms:ReEncryptTo',
    ],
    Resource: '*',
    Condition: { StringLike: { 'kms:ViaService': 'ec2.*.amazonaws.com' } },
  },
  // Mode app-consistent: freeze/thaw over SSM Run Command, on instances tagged for it (client/policies.ts).
  ...runCommandStatements('${AWS::Partition}', '${AWS::AccountId}'),
  {
    Sid: 'PassInstanceProfileRoles',
    Effect: 'Allow',
    Action: 'iam:PassRole',
    Resource: 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*',
    Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
  },
  // Image builds from recipes: SSM Run Command on build instances only, the builder role only.
  ...recipeBuildStatements('${AWS::Partition}', '${AWS::AccountId}'),
  // Rollouts: launch templates and Auto Scaling groups tagged as rollout targets only.
  ...rolloutStatements('${AWS::Partition}'),
];

/** Placeholders the statements from `keyPolicies` are generated with, resolved by `Fn::Sub`. */
const KEY_ARN = 'arn:${AWS::Partition}:kms:${KeyRegion}:${KeyAccountId}:key/${KeyId}';
const SOURCE_KEY_ARN = '${SourceKeyArn}';

/**
 * The KMS statements, from `keyPolicies` itself: for the key's own policy (in the account that owns
 * the images' key) and for the principals in a target account that launch or copy those images.
 */
/** A catalogue of one approved image under `keyArn`: what `keyPolicies` is asked about. */
function oneKeyCatalogue(keyArn: string): Catalogue {
  return {
    images: [
      {
        imageId: 'ami-00000000000000000',
        region: '${AWS::Region}',
        ownerId: '${KeyAccountId}',
        state: 'available',
        deprecated: false,
        kmsKeyIds: [keyArn],
        basis: 'approval-tags',
      },
    ],
    allowedOwners: [],
    errors: [],
    readAt: '1970-01-01T00:00:00.000Z',
  };
}

/**
 * The KMS statements, from `keyPolicies` itself: for the key's own policy (in the account that owns
 * the images' key) and for the principals in a target account that launch or copy those images.
 */
export function kmsStatements(): {
  keyPolicyStatements: PolicyStatement[];
  targetIamPolicy: IamPolicyDocument;
} {
  const forKeyOwner = keyPolicies(oneKeyCatalogue(KEY_ARN), ['${TargetAccountId}']).keys[0];
  const forTargets = keyPolicies(oneKeyCatalogue(SOURCE_KEY_ARN), []).keys[0];
  if (!forKeyOwner || !forTargets) throw new Error('keyPolicies returned no key for a one-key catalogue');
  return {
    keyPolicyStatements: forKeyOwner.keyPolicyStatements,
    targetIamPolicy: forTargets.targetAccountIamPolicy,
  };
}

type Json = Record<string, unknown>;

const sub = (value: unknown): unknown =>
  typeof value === 'string' && value.includes('${') ? { 'Fn::Sub': value } : value;

/** Resource and condition strings with `${…}` placeholders become `Fn::Sub`s; everything else as is. */
function cfnStatement(s: PolicyStatement | IamPolicyDocument['Statement'][number]): Json {
  const out: Json = { ...s };
  for (const key of ['Resource', 'NotResource'] as const) {
    const v = out[key];
    if (v !== undefined) out[key] = Array.isArray(v) ? v.map(sub) : sub(v);
  }
  if (s.Condition)
    out.Condition = Object.fromEntries(
      Object.entries(s.Condition).map(([op, keys]) => [
        op,
        Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, Array.isArray(v) ? v.map(sub) : sub(v)])),
      ]),
    );
  return out;
}

export function accountCloudFormation(): Json {
  const kms = kmsStatements();
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description:
      'amiflow target account: the role the amiflow worker assumes (generated by scripts/generate-account-iac.ts; do not edit)',
    Parameters: {
      WorkerRoleArn: {
        Type: 'String',
        Description: 'ARN of the role the amiflow worker runs as (IRSA / Pod Identity role)',
        AllowedPattern: '^arn:aws[a-z-]*:iam::\\d{12}:role/.+$',
      },
      ExternalId: {
        Type: 'String',
        Default: '',
        Description: 'sts:ExternalId the worker sends (AMIFLOW_ROLE_EXTERNAL_ID); empty for none',
      },
      RoleName: { Type: 'String', Default: 'amiflow-target', Description: 'AMIFLOW_ROLE_NAME on the worker' },
      SourceKeyArn: {
        Type: 'String',
        Default: '',
        Description: 'Customer managed key of images shared into this account (empty for none)',
      },
      MaxSessionSeconds: { Type: 'Number', Default: 3600, MinValue: 3600, MaxValue: 43200 },
    },
    Conditions: {
      HasExternalId: { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'ExternalId' }, ''] }] },
      HasSourceKey: { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'SourceKeyArn' }, ''] }] },
    },
    Resources: {
      AmiflowTargetRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          RoleName: { Ref: 'RoleName' },
          MaxSessionDuration: { Ref: 'MaxSessionSeconds' },
          AssumeRolePolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'AmiflowWorker',
                Effect: 'Allow',
                Principal: { AWS: { Ref: 'WorkerRoleArn' } },
                Action: 'sts:AssumeRole',
                Condition: {
                  'Fn::If': [
                    'HasExternalId',
                    { StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } } },
                    { Ref: 'AWS::NoValue' },
                  ],
                },
              },
            ],
          },
          Policies: [
            {
              PolicyName: 'amiflow',
              PolicyDocument: { Version: '2012-10-17', Statement: TARGET_ROLE_STATEMENTS.map(cfnStatement) },
            },
            {
              'Fn::If': [
                'HasSourceKey',
                {
                  PolicyName: 'amiflow-shared-image-key',
                  PolicyDocument: {
                    Version: '2012-10-17',
                    Statement: kms.targetIamPolicy.Statement.map(cfnStatement),
                  },
                },
                { Ref: 'AWS::NoValue' },
              ],
            },
          ],
          Tags: [{ Key: 'amiflow:managed-by', Value: 'amiflow' }],
        },
      },
    },
    Outputs: {
      RoleArn: {
        Description: 'Put in AMIFLOW_ROLE_ARNS, or use AMIFLOW_ROLE_NAME',
        Value: { 'Fn::GetAtt': ['AmiflowTargetRole', 'Arn'] },
      },
    },
    Metadata: {
      // For the account that owns the images' key: these go into that key's policy (CloudFormation
      // cannot edit another account's key policy). ${TargetAccountId}: each target account.
      AmiflowKeyPolicyStatements: kms.keyPolicyStatements,
    },
  };
}

/** Terraform's `${…}` is interpolation; CloudFormation placeholders become Terraform expressions. */
function tfString(value: string): string {
  return value
    .replace(/\$\{AWS::Partition\}/g, '${data.aws_partition.current.partition}')
    .replace(/\$\{AWS::AccountId\}/g, '${data.aws_caller_identity.current.account_id}')
    .replace(/\$\{SourceKeyArn\}/g, '${var.source_key_arn}')
    .replace(/\$\{TargetAccountId\}/g, '${each.value}');
}

function tfDocument(
  statements: readonly (PolicyStatement | IamPolicyDocument['Statement'][number])[],
): string {
  return `\${jsonencode(${JSON.stringify({ Version: '2012-10-17', Statement: statements }, null, 0)})}`;
}

export function accountTerraform(): Json {
  const kms = kmsStatements();
  return {
    '//': 'amiflow target account module: generated by scripts/generate-account-iac.ts from client/account-iac.ts and client/policies.ts; do not edit',
    terraform: { required_providers: { aws: { source: 'hashicorp/aws', version: '>= 5.0' } } },
    variable: {
      worker_role_arn: { type: 'string', description: 'ARN of the role the amiflow worker runs as' },
      external_id: {
        type: 'string',
        default: '',
        description: 'sts:ExternalId the worker sends; empty for none',
      },
      role_name: {
        type: 'string',
        default: 'amiflow-target',
        description: 'AMIFLOW_ROLE_NAME on the worker',
      },
      source_key_arn: {
        type: 'string',
        default: '',
        description: 'CMK of images shared into this account; empty for none',
      },
      max_session_seconds: { type: 'number', default: 3600 },
    },
    data: { aws_partition: { current: {} }, aws_caller_identity: { current: {} } },
    resource: {
      aws_iam_role: {
        amiflow_target: {
          name: '${var.role_name}',
          max_session_duration: '${var.max_session_seconds}',
          assume_role_policy: tfString(
            '${jsonencode({Version = "2012-10-17", Statement = [merge({Sid = "AmiflowWorker", Effect = "Allow", Principal = {AWS = var.worker_role_arn}, Action = "sts:AssumeRole"}, var.external_id == "" ? {} : {Condition = {StringEquals = {"sts:ExternalId" = var.external_id}}})]})}',
          ),
          tags: { 'amiflow:managed-by': 'amiflow' },
        },
      },
      aws_iam_role_policy: {
        amiflow: {
          name: 'amiflow',
          role: '${aws_iam_role.amiflow_target.id}',
          policy: tfString(tfDocument(TARGET_ROLE_STATEMENTS)),
        },
        shared_image_key: {
          count: '${var.source_key_arn == "" ? 0 : 1}',
          name: 'amiflow-shared-image-key',
          role: '${aws_iam_role.amiflow_target.id}',
          policy: tfString(tfDocument(kms.targetIamPolicy.Statement)),
        },
      },
    },
    output: {
      role_arn: { value: '${aws_iam_role.amiflow_target.arn}', description: 'For AMIFLOW_ROLE_ARNS' },
      key_policy_statements_template: {
        description:
          'For the key owner: statements for the key policy; replace ${TargetAccountId}, ${KeyRegion}, ${KeyAccountId}, ${KeyId}',
        // Terraform would interpolate `${…}`: `$${…}` keeps the placeholders literal.
        value: JSON.stringify(kms.keyPolicyStatements).replace(/\$\{/g, () => '$${'),
      },
    },
  };
}
