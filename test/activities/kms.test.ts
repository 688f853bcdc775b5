/**
 * activities/kms.ts at the SDK level: a grant per target account with exactly the parameters EC2
 * needs, found again by its name on a retry (no second grant), withdrawn by name touching no other
 * grant; keys checked before use (AWS managed, disabled, missing) with a message saying what to do.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CreateGrantCommand,
  DescribeKeyCommand,
  KMSServiceException,
  KeyManagerType,
  KeyState,
  ListGrantsCommand,
  RevokeGrantCommand,
} from '@aws-sdk/client-kms';
import type { KeyMetadata } from '@aws-sdk/client-kms';
import { ApplicationFailure } from '@temporalio/activity';
import { FailureType, KMS_GRANT_OPERATIONS, shareGrantName } from '../../workflows/contracts';
import { errorOf, nonRetryableFailure } from './failures';
import { ACCOUNT, REGION, RUN_ID, T0, TARGET } from './fixtures';
import { activityEnv, harness } from './harness';

const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const TARGETS = ['444455556666', '555566667777'];

function kmsError(name: string, httpStatusCode: number): KMSServiceException {
  return new KMSServiceException({
    name,
    $fault: httpStatusCode >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode, requestId: 'req-test' },
    message: `simulated ${name}`,
  });
}

const grantInput = { target: TARGET, keyArn: KEY_ARN, accountIds: TARGETS, runId: RUN_ID };

void describe('grantKeyAccess', () => {
  void it('GIVEN two target accounts and no grant yet WHEN access is granted THEN one CreateGrant each, with exactly the account root, the grant operations of the contract and a name from the run', async () => {
    const h = harness();
    h.kmsMock.on(ListGrantsCommand).resolves({ Grants: [], Truncated: false });
    let n = 0;
    h.kmsMock.on(CreateGrantCommand).callsFake(() => ({ GrantId: `grant-${++n}`, GrantToken: 'token' }));

    const records = await activityEnv().run(h.activities.grantKeyAccess, grantInput);

    assert.deepEqual(
      h.kmsMock.commandCalls(CreateGrantCommand).map((c) => c.args[0].input),
      TARGETS.map((account) => ({
        KeyId: KEY_ARN,
        GranteePrincipal: `arn:aws:iam::${account}:root`,
        // The one list the activity and the key-policy statement (workflows/key-access.ts) both use.
        Operations: [...KMS_GRANT_OPERATIONS],
        Name: `amiflow/${RUN_ID}/${account}`,
      })),
    );
    assert.deepEqual(records, [
      {
        keyArn: KEY_ARN,
        granteeAccountId: TARGETS[0],
        grantId: 'grant-1',
        grantName: shareGrantName(RUN_ID, TARGETS[0] ?? ''),
      },
      {
        keyArn: KEY_ARN,
        granteeAccountId: TARGETS[1],
        grantId: 'grant-2',
        grantName: shareGrantName(RUN_ID, TARGETS[1] ?? ''),
      },
    ]);
    assert.deepEqual(h.kmsTargets, [TARGET], 'KMS in the key (image) account and region');
  });

  void it('GIVEN an earlier attempt made the first grant WHEN retried THEN the grant is found by name (across ListGrants pages) and only the missing one is made', async () => {
    const h = harness();
    const page1 = {
      Grants: [
        { GrantId: 'someone-elses', Name: 'backup-role', GranteePrincipal: 'arn:aws:iam::999988887777:root' },
      ],
      Truncated: true,
      NextMarker: 'page-2',
    };
    const page2 = {
      Grants: [
        {
          GrantId: 'grant-earlier',
          Name: shareGrantName(RUN_ID, TARGETS[0] ?? ''),
          GranteePrincipal: `arn:aws:iam::${TARGETS[0]}:root`,
        },
      ],
      Truncated: false,
    };
    h.kmsMock
      .on(ListGrantsCommand)
      .callsFake((input: { Marker?: string }) => (input.Marker === 'page-2' ? page2 : page1));
    h.kmsMock.on(CreateGrantCommand).resolves({ GrantId: 'grant-new' });

    const records = await activityEnv({ attempt: 2 }).run(h.activities.grantKeyAccess, grantInput);

    assert.deepEqual(
      records.map((r) => [r.granteeAccountId, r.grantId]),
      [
        [TARGETS[0], 'grant-earlier'],
        [TARGETS[1], 'grant-new'],
      ],
    );
    assert.equal(h.kmsMock.commandCalls(CreateGrantCommand).length, 1);
    assert.equal(
      h.kmsMock.commandCalls(CreateGrantCommand)[0]?.args[0].input.GranteePrincipal,
      `arn:aws:iam::${TARGETS[1]}:root`,
    );
  });

  void it('GIVEN a China region WHEN access is granted THEN the grantee is in the aws-cn partition', async () => {
    const h = harness();
    h.kmsMock.on(ListGrantsCommand).resolves({ Grants: [] });
    h.kmsMock.on(CreateGrantCommand).resolves({ GrantId: 'g' });

    await activityEnv().run(h.activities.grantKeyAccess, {
      ...grantInput,
      target: { region: 'cn-north-1', accountId: ACCOUNT },
      accountIds: ['444455556666'],
    });

    assert.equal(
      h.kmsMock.commandCalls(CreateGrantCommand)[0]?.args[0].input.GranteePrincipal,
      'arn:aws-cn:iam::444455556666:root',
    );
  });

  void it('GIVEN KMS throttles WHEN granting THEN the error is rethrown as is (retried); AccessDenied is AwsUnauthorized, non-retryable', async () => {
    const h = harness();
    h.kmsMock.on(ListGrantsCommand).resolves({ Grants: [] });
    const throttled = kmsError('ThrottlingException', 400);
    h.kmsMock.on(CreateGrantCommand).rejectsOnce(throttled).rejects(kmsError('AccessDeniedException', 400));

    assert.equal(await errorOf(activityEnv().run(h.activities.grantKeyAccess, grantInput)), throttled);
    await nonRetryableFailure(
      activityEnv().run(h.activities.grantKeyAccess, grantInput),
      FailureType.AwsUnauthorized,
      `granting account ${TARGETS[0]} the use of ${KEY_ARN}`,
    );
  });
});

void describe('revokeKeyGrants', () => {
  void it("GIVEN this run's grants among others WHEN revoked THEN only this run's are revoked, by id, and a missing one is reported absent", async () => {
    const h = harness();
    h.kmsMock.on(ListGrantsCommand).resolves({
      Grants: [
        { GrantId: 'ours-1', Name: shareGrantName(RUN_ID, TARGETS[0] ?? '') },
        { GrantId: 'theirs', Name: 'amiflow/another-run/444455556666' },
        { GrantId: 'unnamed' },
      ],
    });
    h.kmsMock.on(RevokeGrantCommand).resolves({});

    const out = await activityEnv().run(h.activities.revokeKeyGrants, {
      target: TARGET,
      keyArn: KEY_ARN,
      grantNames: TARGETS.map((a) => shareGrantName(RUN_ID, a)),
    });

    assert.deepEqual(
      h.kmsMock.commandCalls(RevokeGrantCommand).map((c) => c.args[0].input),
      [{ KeyId: KEY_ARN, GrantId: 'ours-1' }],
    );
    assert.deepEqual(out, {
      revoked: [shareGrantName(RUN_ID, TARGETS[0] ?? '')],
      absent: [shareGrantName(RUN_ID, TARGETS[1] ?? '')],
    });
  });

  void it('GIVEN the grant disappears between listing and revoking WHEN revoked THEN that is success', async () => {
    const h = harness();
    h.kmsMock
      .on(ListGrantsCommand)
      .resolves({ Grants: [{ GrantId: 'ours-1', Name: shareGrantName(RUN_ID, ACCOUNT) }] });
    h.kmsMock.on(RevokeGrantCommand).rejects(kmsError('NotFoundException', 400));

    const out = await activityEnv().run(h.activities.revokeKeyGrants, {
      target: TARGET,
      keyArn: KEY_ARN,
      grantNames: [shareGrantName(RUN_ID, ACCOUNT)],
    });

    assert.deepEqual(out.revoked, [shareGrantName(RUN_ID, ACCOUNT)]);
  });
});

void describe('revokeKeyGrants within the consistency window', () => {
  /** The undo was scheduled at T0, where the virtual clock starts: inside the window. */
  const fresh = { scheduledTimestampMs: T0 };
  const OURS = shareGrantName(RUN_ID, ACCOUNT);
  const revoke = { target: TARGET, keyArn: KEY_ARN, grantNames: [OURS] };

  async function notVisibleYet(p: Promise<unknown>, fragment: string): Promise<void> {
    const err = await errorOf(p);
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.type, FailureType.NotVisibleYet, err.message);
    assert.equal(err.nonRetryable, false, 'not visible yet must be retried by Temporal');
    assert.ok(err.message.includes(fragment), `${err.message} should contain ${fragment}`);
  }

  void it('GIVEN a grant just made is not listed yet WHEN undoing THEN NotVisibleYet (retried), not "absent"; the retry that sees it revokes it', async () => {
    const h = harness();
    h.kmsMock
      .on(ListGrantsCommand)
      .resolvesOnce({ Grants: [] })
      .resolves({ Grants: [{ GrantId: 'ours-1', Name: OURS }] });
    h.kmsMock.on(RevokeGrantCommand).resolves({});

    await notVisibleYet(activityEnv(fresh).run(h.activities.revokeKeyGrants, revoke), OURS);
    h.clock.advance(5_000);
    const out = await activityEnv({ ...fresh, attempt: 2 }).run(h.activities.revokeKeyGrants, revoke);

    assert.deepEqual(out, { revoked: [OURS], absent: [] });
    assert.deepEqual(
      h.kmsMock.commandCalls(RevokeGrantCommand).map((c) => c.args[0].input.GrantId),
      ['ours-1'],
    );
  });

  void it('GIVEN a listed grant is unknown to RevokeGrant yet WHEN undoing THEN NotVisibleYet, not "revoked"', async () => {
    const h = harness();
    h.kmsMock.on(ListGrantsCommand).resolves({ Grants: [{ GrantId: 'ours-1', Name: OURS }] });
    h.kmsMock.on(RevokeGrantCommand).rejects(kmsError('NotFoundException', 400));

    await notVisibleYet(activityEnv(fresh).run(h.activities.revokeKeyGrants, revoke), 'ours-1');
  });

  void it('GIVEN an earlier attempt revoked one grant and another was not listed yet WHEN retried THEN the revoked one counts as revoked (listed still or not) and nothing is revoked twice', async () => {
    const h = harness();
    const other = shareGrantName(RUN_ID, TARGETS[0] ?? '');
    const both = { ...revoke, grantNames: [OURS, other] };
    h.kmsMock
      .on(ListGrantsCommand)
      .resolvesOnce({ Grants: [{ GrantId: 'ours-1', Name: OURS }] })
      .resolves({ Grants: [{ GrantId: 'other-1', Name: other }] });
    h.kmsMock.on(RevokeGrantCommand).resolves({});
    const first = activityEnv(fresh);

    await notVisibleYet(first.run(h.activities.revokeKeyGrants, both), other);
    const out = await activityEnv({ ...fresh, attempt: 2, heartbeatDetails: first.heartbeats.at(-1) }).run(
      h.activities.revokeKeyGrants,
      both,
    );

    assert.deepEqual(out, { revoked: [OURS, other], absent: [] });
    assert.deepEqual(
      h.kmsMock.commandCalls(RevokeGrantCommand).map((c) => c.args[0].input.GrantId),
      ['ours-1', 'other-1'],
    );
  });

  void it('GIVEN the grant is still not listed once the window has passed WHEN undoing THEN it is reported absent', async () => {
    const h = harness();
    h.deps.consistencyWindowMs = 60_000;
    h.kmsMock.on(ListGrantsCommand).resolves({ Grants: [] });
    h.clock.advance(60_001);

    const out = await activityEnv(fresh).run(h.activities.revokeKeyGrants, revoke);

    assert.deepEqual(out, { revoked: [], absent: [OURS] });
  });
});

void describe('checkKmsKey', () => {
  const meta = (extra: Partial<KeyMetadata>) => ({
    KeyMetadata: {
      KeyId: 'k',
      Arn: KEY_ARN,
      AWSAccountId: ACCOUNT,
      KeyState: KeyState.Enabled,
      Enabled: true,
      ...extra,
    },
  });
  const check = { target: TARGET, keyId: 'alias/aws/ebs', purpose: 'the copy to eu-west-1' };

  void it('GIVEN the AWS managed key WHEN a shareable copy asks for it THEN KmsKeyUnusable naming the reason', async () => {
    const h = harness();
    h.kmsMock.on(DescribeKeyCommand).resolves(meta({ KeyManager: KeyManagerType.AWS }));

    await nonRetryableFailure(
      activityEnv().run(h.activities.checkKmsKey, {
        ...check,
        refuseAwsManaged: 'use a customer managed key',
      }),
      FailureType.KmsKeyUnusable,
      'is an AWS managed key: use a customer managed key',
    );
  });

  for (const [spec, usage] of [
    ['RSA_2048', 'ENCRYPT_DECRYPT'],
    ['ECC_NIST_P256', 'SIGN_VERIFY'],
    ['HMAC_256', 'GENERATE_VERIFY_MAC'],
  ] as const) {
    void it(`GIVEN a ${spec} key for ${usage} WHEN checked for a copy THEN KmsKeyUnusable: EBS needs a symmetric encrypt/decrypt key`, async () => {
      const h = harness();
      h.kmsMock
        .on(DescribeKeyCommand)
        .resolves(meta({ KeyManager: KeyManagerType.CUSTOMER, KeySpec: spec, KeyUsage: usage }));

      await nonRetryableFailure(
        activityEnv().run(h.activities.checkKmsKey, { ...check, keyId: KEY_ARN }),
        FailureType.KmsKeyUnusable,
        `is ${spec} for ${usage}`,
        'EBS encrypts only with symmetric keys',
      );
    });
  }

  void it('GIVEN a symmetric encrypt/decrypt customer managed key WHEN checked THEN accepted, its spec and usage reported', async () => {
    const h = harness();
    h.kmsMock.on(DescribeKeyCommand).resolves(
      meta({
        KeyManager: KeyManagerType.CUSTOMER,
        KeySpec: 'SYMMETRIC_DEFAULT',
        KeyUsage: 'ENCRYPT_DECRYPT',
      }),
    );

    const key = await activityEnv().run(h.activities.checkKmsKey, { ...check, keyId: KEY_ARN });

    assert.deepEqual([key.keySpec, key.keyUsage], ['SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT']);
  });

  void it('GIVEN a disabled key WHEN checked THEN KmsKeyUnusable saying to enable it', async () => {
    const h = harness();
    h.kmsMock
      .on(DescribeKeyCommand)
      .resolves(meta({ KeyManager: KeyManagerType.CUSTOMER, KeyState: KeyState.Disabled, Enabled: false }));

    await nonRetryableFailure(
      activityEnv().run(h.activities.checkKmsKey, { ...check, keyId: KEY_ARN }),
      FailureType.KmsKeyUnusable,
      'is Disabled: enable it',
    );
  });

  void it('GIVEN no such key in the region WHEN checked THEN KmsKeyUnusable, not a raw NotFound', async () => {
    const h = harness();
    h.kmsMock.on(DescribeKeyCommand).rejects(kmsError('NotFoundException', 400));

    const err = await nonRetryableFailure(
      activityEnv().run(h.activities.checkKmsKey, { ...check, keyId: 'alias/copies' }),
      FailureType.KmsKeyUnusable,
      `does not exist in ${REGION} (account ${ACCOUNT})`,
    );
    assert.ok(err instanceof ApplicationFailure);
  });

  void it('GIVEN a KMS server error WHEN checked THEN it is retried (rethrown as is)', async () => {
    const h = harness();
    const internal = kmsError('KMSInternalException', 500);
    h.kmsMock.on(DescribeKeyCommand).rejects(internal);

    assert.equal(await errorOf(activityEnv().run(h.activities.checkKmsKey, check)), internal);
  });
});
