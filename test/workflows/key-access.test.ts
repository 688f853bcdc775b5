/** The KMS statements a share reports for its targets: use of the key, and grants for AWS resources only. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyPolicyStatements, targetIamPolicy } from '../../workflows/key-access';

const ORG = 'arn:aws:organizations::111122223333:organization/o-abc123def4';
const OU = 'arn:aws:organizations::111122223333:ou/o-abc123def4/ou-ab12-cdef3456';
const KEY = 'arn:aws:kms:eu-west-1:111122223333:key/0a1b2c3d-0000-4000-8000-000000000001';

describe('key access statements', () => {
  it('GIVEN accounts, an organization and an OU WHEN the key policy is built THEN CreateGrant is never allowed without kms:GrantIsForAWSResource', () => {
    const statements = keyPolicyStatements('eu-west-1', {
      accountIds: ['444455556666'],
      organizationArns: [ORG],
      organizationalUnitArns: [OU],
    });
    assert.equal(statements.length, 6);
    for (const s of statements) {
      const actions = ([] as string[]).concat(s.Action);
      if (actions.includes('kms:CreateGrant')) {
        assert.deepEqual(actions, ['kms:CreateGrant'], `${s.Sid}: CreateGrant stands alone`);
        assert.deepEqual(
          s.Condition?.Bool,
          { 'kms:GrantIsForAWSResource': true },
          `${s.Sid}: grants only for AWS resources`,
        );
      }
    }
    const orgGrant = statements.find((s) => s.Sid === 'SharedImageOrganizationsGrants');
    assert.deepEqual(
      orgGrant?.Condition?.StringEquals,
      { 'aws:PrincipalOrgID': ['o-abc123def4'] },
      'keeps the org condition',
    );
    const accountUse = statements.find((s) => s.Sid === 'SharedImageAccounts');
    assert.deepEqual(accountUse?.Principal, { AWS: ['arn:aws:iam::444455556666:root'] });
    assert.ok(!([] as string[]).concat(accountUse?.Action ?? []).includes('kms:CreateGrant'));
  });

  it('GIVEN a China region WHEN built THEN principals use the aws-cn partition', () => {
    const [use] = keyPolicyStatements('cn-north-1', { accountIds: ['444455556666'] });
    assert.deepEqual(use?.Principal, { AWS: ['arn:aws-cn:iam::444455556666:root'] });
  });

  it('GIVEN a key WHEN the target IAM policy is built THEN it mirrors the key policy split', () => {
    const policy = targetIamPolicy(KEY);
    const grant = policy.Statement.find((s) => ([] as string[]).concat(s.Action).includes('kms:CreateGrant'));
    assert.deepEqual(grant?.Condition, { Bool: { 'kms:GrantIsForAWSResource': true } });
  });
});
