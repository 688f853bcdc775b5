/**
 * What principals need on a customer managed key to launch or copy an image shared with them:
 * an IAM policy for the target accounts, and the key-policy statements that stand in for grants.
 * Pure: built in the workflow from facts the activities read, and returned in the share's result.
 */
import type { IamPolicyDocument, IamPolicyStatement, KeyAccessNeeded, ShareTargets } from '../contracts';
import { KMS_GRANT_OPERATIONS } from '../contracts';
import { partitionOfRegion } from './share-validation';

const KMS_ACTIONS = KMS_GRANT_OPERATIONS.map((op) => `kms:${op}`);
/** Use of the key without CreateGrant, which EC2 needs only for AWS resources (its volumes). */
const USE_ACTIONS = KMS_ACTIONS.filter((a) => a !== 'kms:CreateGrant');

/** The IAM policy principals in a target account need: use of the key, and grants for EC2 only. */
export function targetIamPolicy(keyArn: string): IamPolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'UseKeyOfSharedImage', Effect: 'Allow', Action: USE_ACTIONS, Resource: keyArn },
      {
        Sid: 'LetEc2UseKeyOfSharedImage',
        Effect: 'Allow',
        Action: ['kms:CreateGrant'],
        Resource: keyArn,
        Condition: { Bool: { 'kms:GrantIsForAWSResource': true } },
      },
    ],
  };
}

function orgIdOf(arn: string): string {
  return /organization\/(o-[a-z0-9]+)$/.exec(arn)?.[1] ?? arn;
}

/** `o-…/*\/ou-…/*`: the organization path of everything under the OU, for aws:PrincipalOrgPaths. */
function orgPathOf(ouArn: string): string {
  const m = /ou\/(o-[a-z0-9]+)\/(ou-[a-z0-9-]+)$/.exec(ouArn);
  return m ? `${m[1]}/*/${m[2]}/*` : ouArn;
}

/**
 * Key-policy statements giving the targets the use of the key, two per kind of target: use of the
 * key, and CreateGrant only for AWS resources (EC2 attaching the image's volumes), never for anything else.
 */
export function keyPolicyStatements(region: string, targets: ShareTargets): IamPolicyStatement[] {
  const partition = partitionOfRegion(region);
  const forTargets = (
    sid: string,
    principal: IamPolicyStatement['Principal'],
    condition?: IamPolicyStatement['Condition'],
  ): IamPolicyStatement[] => [
    {
      Sid: sid,
      Effect: 'Allow',
      Principal: principal,
      Action: USE_ACTIONS,
      Resource: '*',
      ...(condition ? { Condition: condition } : {}),
    },
    {
      Sid: `${sid}Grants`,
      Effect: 'Allow',
      Principal: principal,
      Action: ['kms:CreateGrant'],
      Resource: '*',
      Condition: { ...condition, Bool: { 'kms:GrantIsForAWSResource': true } },
    },
  ];
  const statements: IamPolicyStatement[] = [];
  if (targets.accountIds?.length)
    statements.push(
      ...forTargets('SharedImageAccounts', {
        AWS: targets.accountIds.map((a) => `arn:${partition}:iam::${a}:root`),
      }),
    );
  if (targets.organizationArns?.length)
    statements.push(
      ...forTargets(
        'SharedImageOrganizations',
        { AWS: '*' },
        { StringEquals: { 'aws:PrincipalOrgID': targets.organizationArns.map(orgIdOf) } },
      ),
    );
  if (targets.organizationalUnitArns?.length)
    statements.push(
      ...forTargets(
        'SharedImageOrganizationalUnits',
        { AWS: '*' },
        {
          'ForAnyValue:StringLike': {
            'aws:PrincipalOrgPaths': targets.organizationalUnitArns.map(orgPathOf),
          },
        },
      ),
    );
  return statements;
}

export function keyAccessNeeded(keyArn: string, region: string, targets: ShareTargets): KeyAccessNeeded {
  return {
    keyArn,
    targetIamPolicy: targetIamPolicy(keyArn),
    keyPolicyStatements: keyPolicyStatements(region, targets),
  };
}
