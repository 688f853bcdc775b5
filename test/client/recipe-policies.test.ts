/**
 * IAM for image builds: the worker may run commands only on the instances amiflow launched,
 * with the build documents, pass only the builder role and only to EC2; the account IaC carries the
 * same statements; the builder profile gets SSM's managed policy and only the output it writes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TARGET_ROLE_STATEMENTS } from '../../client/account-iac';
import { policyFindings, workerPolicy } from '../../client/policies';
import { builderProfilePolicy, recipeBuildStatements } from '../../client/recipe-policies';

describe('recipe build permissions', () => {
  const statements = workerPolicy().policy.Statement;
  const bySid = (sid: string) => statements.find((s) => s.Sid === sid);

  it('GIVEN the worker policy WHEN read THEN SendCommand reaches instances amiflow launched (builders are) with the build documents', () => {
    // Instances: the Run Command statements shared with mode app-consistent (policies.ts).
    const send = bySid('RunCommandsOnInstancesAmiflowLaunched');
    assert.deepEqual(send?.Resource, 'arn:aws:ec2:*:*:instance/*');
    assert.deepEqual(send?.Condition, { StringEquals: { 'ssm:resourceTag/amiflow:managed-by': 'amiflow' } });
    assert.equal(
      bySid('RunCommandsWithTheShellDocument')?.Resource,
      'arn:aws:ssm:*::document/AWS-RunShellScript',
    );
    assert.deepEqual(bySid('RunBuildStepDocuments')?.Resource, [
      'arn:aws:ssm:*::document/AWS-RunPowerShellScript',
      'arn:aws:ssm:*::document/AWS-RunPatchBaseline',
    ]);
  });

  it('GIVEN the worker policy WHEN read THEN only the builder role may be passed, and only to EC2', () => {
    const pass = bySid('PassTheBuilderRoleOnly');
    assert.equal(pass?.Resource, 'arn:aws:iam::*:role/amiflow-builder');
    assert.deepEqual(pass?.Condition, { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } });
    assert.deepEqual(policyFindings({ Version: '2012-10-17', Statement: recipeBuildStatements('aws') }), []);
  });

  it('GIVEN the target-account role WHEN generated THEN it holds the build statements with its own account', () => {
    const pass = TARGET_ROLE_STATEMENTS.find((s) => s.Sid === 'PassTheBuilderRoleOnly');
    assert.equal(pass?.Resource, 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/amiflow-builder');
    assert.ok(TARGET_ROLE_STATEMENTS.some((s) => s.Sid === 'RunBuildStepDocuments'));
    assert.ok(TARGET_ROLE_STATEMENTS.some((s) => s.Sid === 'RunCommandsOnInstancesAmiflowLaunched'));
  });

  it('GIVEN step output sent to S3 and CloudWatch WHEN the builder profile policy is made THEN it writes only there', () => {
    const { managedPolicyArns, policy } = builderProfilePolicy({
      s3Bucket: 'build-logs',
      s3KeyPrefix: 'web/',
      cloudWatchLogGroup: '/amiflow/builds',
    });
    assert.deepEqual(managedPolicyArns, ['arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore']);
    assert.deepEqual(
      policy.Statement.map((s) => s.Resource),
      ['arn:aws:s3:::build-logs/web/*', 'arn:aws:logs:*:*:log-group:/amiflow/builds:*'],
    );
    assert.deepEqual(builderProfilePolicy().policy.Statement, []);
  });
});
