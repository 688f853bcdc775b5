/**
 * What image builds from recipes need in IAM, for the worker's role (or the role it assumes in a
 * target account) and for the builder instance profile:
 *
 * - SSM Run Command on instances amiflow launched (tagged `amiflow:managed-by`), following and
 *   cancelling commands: `runCommandStatements` (policies.ts, shared with mode app-consistent);
 *   builds add the PowerShell and patch baseline documents (a recipe's own SSM documents need
 *   their ARNs added);
 * - `iam:PassRole` for the builder's role only (recipes name its instance profile), and only to EC2;
 * - reading AWS's public parameters (`/aws/service/…`) that name parent images.
 *
 * The builder profile itself needs AmazonSSMManagedInstanceCore (the agent's channel to SSM), and,
 * when a recipe sends full step output there, s3:PutObject on its bucket prefix or
 * logs:CreateLogStream/PutLogEvents on its log group (`builderProfilePolicy`).
 */
import type { PolicyDocument, PolicyStatement } from './policies';
import { allowStatement } from './policies';

/** The builder role's default name (the instance profile of the same name is what recipes name). */
export const DEFAULT_BUILDER_ROLE = 'amiflow-builder';

export function recipeBuildStatements(
  partition: string,
  account = '*',
  builderRole = DEFAULT_BUILDER_ROLE,
): PolicyStatement[] {
  const ssmDocument = (name: string) => `arn:${partition}:ssm:*::document/${name}`;
  return [
    // Sending to instances amiflow launched (builders and test instances are tagged
    // amiflow:managed-by), following and cancelling commands: runCommandStatements (policies.ts),
    // shared with mode app-consistent. Builds add the other step documents.
    {
      Sid: 'RunBuildStepDocuments',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: [ssmDocument('AWS-RunPowerShellScript'), ssmDocument('AWS-RunPatchBaseline')],
    },
    {
      Sid: 'ReadPublicParentImageParameters',
      Effect: 'Allow',
      Action: 'ssm:GetParameter',
      Resource: `arn:${partition}:ssm:*::parameter/aws/service/*`,
    },
    {
      Sid: 'PassTheBuilderRoleOnly',
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: `arn:${partition}:iam::${account}:role/${builderRole}`,
      Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    },
  ];
}

export interface BuilderProfileOptions {
  partition?: string;
  /** Where recipes send full step output (`logs` in the recipe). */
  s3Bucket?: string;
  s3KeyPrefix?: string;
  cloudWatchLogGroup?: string;
}

/**
 * The builder role's inline policy besides the managed AmazonSSMManagedInstanceCore: writing step
 * output where recipes send it. Empty when output stays in SSM (the last 24,000 characters).
 */
export function builderProfilePolicy(opts: BuilderProfileOptions = {}): {
  managedPolicyArns: string[];
  policy: PolicyDocument;
} {
  const p = opts.partition ?? 'aws';
  const statements: PolicyStatement[] = [];
  if (opts.s3Bucket)
    statements.push(
      allowStatement(
        'WriteStepOutput',
        's3:PutObject',
        `arn:${p}:s3:::${opts.s3Bucket}/${opts.s3KeyPrefix ?? ''}*`,
      ),
    );
  if (opts.cloudWatchLogGroup)
    statements.push(
      allowStatement(
        'WriteStepLogs',
        ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        `arn:${p}:logs:*:*:log-group:${opts.cloudWatchLogGroup}:*`,
      ),
    );
  return {
    managedPolicyArns: [`arn:${p}:iam::aws:policy/AmazonSSMManagedInstanceCore`],
    policy: { Version: '2012-10-17', Statement: statements },
  };
}
