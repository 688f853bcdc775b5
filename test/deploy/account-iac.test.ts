/**
 * deploy/accounts: the CloudFormation template and the Terraform module are what
 * scripts/generate-account-iac.ts renders now (not stale), their KMS statements are exactly what
 * `keyPolicies` (guardrails policy) produces, and cfn-lint accepts the template (and refuses a
 * broken one, so the check can fail).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { TARGET_ROLE_STATEMENTS, accountCloudFormation, kmsStatements } from '../../client/account-iac';
import { keyPolicies } from '../../client/policies';
import { GENERATED, render } from '../../scripts/generate-account-iac';
import { validator } from '../support/tools';

const cfnLint = validator('AMIFLOW_CFN_LINT', 'cfn-lint');
const skip = 'missing' in cfnLint ? cfnLint.missing : false;

function lint(file: string): { ok: boolean; output: string } {
  if (!('path' in cfnLint)) throw new Error(cfnLint.missing);
  const res = spawnSync(cfnLint.path, [file], { encoding: 'utf8' });
  return { ok: res.status === 0, output: `${res.stdout}${res.stderr}` };
}

type Doc = Record<string, unknown>;

void describe('target-account IaC', () => {
  void it('GIVEN the committed files WHEN rendered again THEN identical (run scripts/generate-account-iac.ts)', () => {
    const fresh = render();
    for (const key of Object.keys(GENERATED) as (keyof typeof GENERATED)[])
      assert.equal(
        readFileSync(GENERATED[key], 'utf8'),
        fresh[key],
        `${path.basename(GENERATED[key])} is stale: node --import tsx scripts/generate-account-iac.ts`,
      );
  });

  void it('GIVEN keyPolicies WHEN the IaC is generated THEN it carries its statements unchanged', () => {
    const { keyPolicyStatements, targetIamPolicy } = kmsStatements();
    const keyArn = 'arn:${AWS::Partition}:kms:${KeyRegion}:${KeyAccountId}:key/${KeyId}';
    const catalogue = {
      images: [
        {
          imageId: 'ami-1',
          region: 'eu-west-1',
          ownerId: '111122223333',
          state: 'available',
          deprecated: false,
          kmsKeyIds: [keyArn],
          basis: 'approval-tags' as const,
        },
      ],
      allowedOwners: [],
      errors: [],
      readAt: '2026-01-01T00:00:00.000Z',
    };
    assert.deepEqual(
      keyPolicyStatements,
      keyPolicies(catalogue, ['${TargetAccountId}']).keys[0]?.keyPolicyStatements,
    );
    const template = accountCloudFormation();
    assert.deepEqual((template.Metadata as Doc).AmiflowKeyPolicyStatements, keyPolicyStatements);
    const role = ((template.Resources as Doc).AmiflowTargetRole as Doc).Properties as Doc;
    const policies = JSON.stringify(role.Policies);
    for (const s of [...TARGET_ROLE_STATEMENTS, ...targetIamPolicy.Statement])
      assert.ok(policies.includes(`"Sid":"${s.Sid}"`), s.Sid);
    const terraform = readFileSync(GENERATED.terraform, 'utf8');
    for (const s of [...TARGET_ROLE_STATEMENTS, ...targetIamPolicy.Statement, ...keyPolicyStatements])
      assert.ok(terraform.includes(s.Sid ?? ''), `Terraform carries ${s.Sid}`);
    assert.doesNotMatch(terraform, /\d{12}/, 'no account id baked in');
    assert.doesNotMatch(
      readFileSync(GENERATED.cloudFormation, 'utf8'),
      /\d{12}/,
      'StackSet-ready: no account id baked in',
    );
  });

  void it('GIVEN the CloudFormation template WHEN linted THEN cfn-lint accepts it', { skip }, () => {
    const { ok, output } = lint(GENERATED.cloudFormation);
    assert.ok(ok, output);
  });

  void it('GIVEN a template with a malformed property WHEN linted THEN cfn-lint refuses it', { skip }, () => {
    const template = accountCloudFormation();
    const role = ((template.Resources as Doc).AmiflowTargetRole as Doc).Properties as Doc;
    role.MaxSessionDuration = 'one hour';
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'amiflow-cfn-')), 'bad.json');
    writeFileSync(file, JSON.stringify(template));
    const { ok, output } = lint(file);
    assert.equal(ok, false);
    assert.match(output, /MaxSessionDuration|one hour/);
  });
});
