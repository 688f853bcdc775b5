/**
 * Verified approvers at the SDK level: the approver's client signs an STS GetCallerIdentity
 * request with its own credentials and the decision bound into a signed header; `verifyApprover`
 * sends it only to STS (here a local stand-in the worker is configured to trust, as the sandbox is)
 * and maps the answer to the IAM principal; a proof addressed elsewhere, bound to another decision,
 * too long-lived or refused by STS is refused without recording anyone.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from '../../activities';
import { approverActivities } from '../../activities/approvers';
import { activityClock } from '../../activities/waiting';
import { signApproval } from '../../client/approval-proof';
import { approverMatches, approverPatternIssues, principalOf } from '../../workflows/approvers';
import { APPROVAL_BINDING_HEADER, FailureType, approvalBinding } from '../../workflows/contracts';
import { errorOf, nonRetryableFailure } from './failures';
import { activityEnv } from './harness';

const CREDENTIALS = { accessKeyId: 'AKIAEXAMPLEAPPROVER', secretAccessKey: 'approver-secret' };
const ALICE = 'arn:aws:sts::111122223333:assumed-role/image-approvers/alice';
const WORKFLOW = 'golden-image/eu-west-1/self/web/2026-01-15T03:00:00.000Z';
const RUN = '0190e7a2-1111-7222-8333-444455556666';

interface Received {
  url: string;
  headers: IncomingHttpHeaders;
}
const received: Received[] = [];
let answer: { status: number; body: string } = { status: 200, body: '' };
let sts = '';
const server = createServer((req, res) => {
  received.push({ url: req.url ?? '', headers: req.headers });
  res.writeHead(answer.status, { 'content-type': 'text/xml' });
  res.end(answer.body);
});

function identity(arn: string): string {
  return `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>${arn}</Arn><UserId>AROAEXAMPLE:alice</UserId><Account>111122223333</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`;
}

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sts = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
});

function verify(stsEndpoint = sts) {
  return approverActivities({
    ...({} as ActivityDeps),
    clock: activityClock,
    ...(stsEndpoint ? { stsEndpoint } : {}),
  }).verifyApprover;
}

function proof(kind: 'approve' | 'reject' = 'approve', now?: Date) {
  return signApproval(kind, WORKFLOW, RUN, {
    credentials: CREDENTIALS,
    region: 'eu-west-1',
    endpoint: sts,
    ...(now ? { now } : {}),
  });
}

describe('signApproval and verifyApprover', () => {
  it("GIVEN a proof signed with the approver's credentials WHEN verified THEN STS gets exactly it, with the signed binding header, and the assumed role is the principal", async () => {
    answer = { status: 200, body: identity(ALICE) };
    received.length = 0;
    const p = await proof();

    const who = await activityEnv().run(verify(), {
      proof: p,
      binding: approvalBinding('approve', WORKFLOW, RUN),
    });

    assert.deepEqual(who, {
      arn: ALICE,
      principalArn: 'arn:aws:iam::111122223333:role/image-approvers',
      account: '111122223333',
    });
    assert.equal(new URL(received[0]?.url ?? '', sts).searchParams.get('Action'), 'GetCallerIdentity');
    const auth = String(received[0]?.headers.authorization);
    assert.match(
      auth,
      /^AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEAPPROVER\/\d{8}\/eu-west-1\/sts\/aws4_request, /,
    );
    assert.match(auth, new RegExp(`SignedHeaders=[^,]*${APPROVAL_BINDING_HEADER}`));
    assert.match(auth, /Signature=[0-9a-f]{64}$/);
    assert.equal(received[0]?.headers[APPROVAL_BINDING_HEADER], `approve ${RUN} ${WORKFLOW}`);
  });

  it('GIVEN a proof addressed to a server that is not STS WHEN verified THEN refused and nothing is sent', async () => {
    received.length = 0;
    const p = await proof();
    await nonRetryableFailure(
      activityEnv().run(verify(''), { proof: p, binding: approvalBinding('approve', WORKFLOW, RUN) }),
      FailureType.ApproverNotVerified,
      'not to an AWS STS endpoint',
    );
    assert.equal(received.length, 0);
  });

  it('GIVEN a proof made to reject, or for another run, WHEN used to approve this run THEN refused before STS', async () => {
    received.length = 0;
    const rejecting = await proof('reject');
    await nonRetryableFailure(
      activityEnv().run(verify(), { proof: rejecting, binding: approvalBinding('approve', WORKFLOW, RUN) }),
      FailureType.ApproverNotVerified,
      'another run or the other decision',
    );
    const approving = await proof('approve');
    await nonRetryableFailure(
      activityEnv().run(verify(), {
        proof: approving,
        binding: approvalBinding('approve', WORKFLOW, 'other-run'),
      }),
      FailureType.ApproverNotVerified,
      'another run or the other decision',
    );
    // Moving the binding header's value does not help: STS would refuse the signature (it is signed).
    assert.equal(received.length, 0);
  });

  it('GIVEN a proof signed 20 minutes ago WHEN verified THEN refused: a proof is for one decision, now', async () => {
    const p = await proof('approve', new Date(Date.now() - 20 * 60_000));
    await nonRetryableFailure(
      activityEnv().run(verify(), { proof: p, binding: approvalBinding('approve', WORKFLOW, RUN) }),
      FailureType.ApproverNotVerified,
      'accepted for 900 s after signing',
    );
  });

  it('GIVEN STS refuses the signature WHEN verified THEN ApproverNotVerified with its code; GIVEN STS is unavailable THEN a retryable error', async () => {
    const p = await proof();
    const binding = approvalBinding('approve', WORKFLOW, RUN);
    answer = {
      status: 403,
      body: '<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>Signature expired</Message></Error></ErrorResponse>',
    };
    await nonRetryableFailure(
      activityEnv().run(verify(), { proof: p, binding }),
      FailureType.ApproverNotVerified,
      'SignatureDoesNotMatch: Signature expired',
    );
    answer = { status: 503, body: '' };
    const err = await errorOf(activityEnv().run(verify(), { proof: p, binding }));
    assert.ok(!(err instanceof ApplicationFailure && err.nonRetryable), 'a 503 is retried');
  });
});

describe('approver principals and patterns', () => {
  it('GIVEN STS caller ARNs WHEN mapped THEN sessions stand for their role, users and roots for themselves, federated users for nobody', () => {
    assert.equal(principalOf(ALICE)?.principalArn, 'arn:aws:iam::111122223333:role/image-approvers');
    assert.equal(
      principalOf('arn:aws:iam::111122223333:user/ops/bob')?.principalArn,
      'arn:aws:iam::111122223333:user/bob',
    );
    assert.equal(
      principalOf('arn:aws-cn:iam::111122223333:root')?.principalArn,
      'arn:aws-cn:iam::111122223333:root',
    );
    assert.equal(principalOf('arn:aws:sts::111122223333:federated-user/carol'), undefined);
    assert.equal(principalOf('alice'), undefined);
  });

  it('GIVEN approver patterns WHEN matched THEN * stays within one name or account', () => {
    const approvers = ['arn:aws:iam::111122223333:role/approver-*', 'arn:aws:iam::*:user/bob'];
    assert.ok(approverMatches('arn:aws:iam::111122223333:role/approver-web', approvers));
    assert.ok(approverMatches('arn:aws:iam::444455556666:user/bob', approvers));
    assert.ok(!approverMatches('arn:aws:iam::111122223333:role/approver-web/x', approvers));
    assert.ok(!approverMatches('arn:aws:iam::444455556666:role/approver-web', approvers));
    assert.ok(!approverMatches('arn:aws:iam::111122223333:user/bobby', approvers));
  });

  it('GIVEN a plan naming approvers by name, with a role path or as every role WHEN checked THEN each is refused with its index', () => {
    const issues = approverPatternIssues('approval.approvers', [
      'alice@example.com',
      'arn:aws:iam::111122223333:role/teams/approvers',
      'arn:aws:iam::111122223333:role/*',
      'arn:aws:iam::111122223333:role/image-approvers',
    ]);
    assert.deepEqual(
      issues.map((i) => i.field),
      ['approval.approvers[0]', 'approval.approvers[1]', 'approval.approvers[2]'],
    );
    assert.match(issues[2]?.message ?? '', /names every role of account 111122223333/);
  });
});
