/**
 * activities/aws.ts: clients per (account, region), assumed-role credentials that refresh, and the
 * refusal to act in another account with the worker's own credentials. STS is mocked with
 * aws-sdk-client-mock; EC2 requests really go through the SDK (signing included) to a fake HTTP
 * handler, so the credentials a request is signed with can be read off its headers.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
// fromTemporaryCredentials sends AssumeRole through the SDK's internal ("nested") STS client.
import { AssumeRoleCommand, STSClient as RoleAssumingSTSClient } from '@aws-sdk/nested-clients/sts';
import type { HttpRequest, HttpResponse } from '@smithy/types';
import { mockClient } from 'aws-sdk-client-mock';
import type { AwsSettings } from '../../activities/aws';
import {
  createAwsClients,
  partitionOf,
  roleArnFor,
  sessionSecondsFor,
  stsRegionFor,
} from '../../activities/aws';
import { FailureType } from '../../workflows/contracts';
import { awsError, errorOf, nonRetryableFailure } from './failures';
import { ACCOUNT, REGION, T0 } from './fixtures';

const OTHER_ACCOUNT = '444455556666';
const WORKER_ACCOUNT = '999988887777';
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/amiflow-worker`;
const BASE_KEY = 'AKIDWORKERBASE';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const settings = (over: Partial<AwsSettings> = {}): AwsSettings => ({
  roleArns: {},
  roleSessionSeconds: 3600,
  sdkMaxAttempts: 1,
  credentials: { accessKeyId: BASE_KEY, secretAccessKey: 'base-secret' },
  ...over,
});

const assumeRole = mockClient(RoleAssumingSTSClient);
const workerSts = mockClient(STSClient);
let issued = 0;

beforeEach(() => {
  assumeRole.reset();
  workerSts.reset();
  issued = 0;
  // Each AssumeRole issues fresh credentials valid for one hour from "now".
  assumeRole.on(AssumeRoleCommand).callsFake(() => {
    issued += 1;
    return Promise.resolve({
      Credentials: {
        AccessKeyId: `ASIAASSUMED${issued}`,
        SecretAccessKey: `assumed-secret-${issued}`,
        SessionToken: `session-token-${issued}`,
        Expiration: new Date(Date.now() + HOUR),
      },
    });
  });
  workerSts.onAnyCommand().rejects(new Error('unexpected worker STS call'));
});

const EMPTY_DESCRIBE_INSTANCES =
  '<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">' +
  '<requestId>req-1</requestId><reservationSet/></DescribeInstancesResponse>';

/** Replaces the client's HTTP handler: requests are recorded (signed) and answered locally. */
function fakeEc2Endpoint(client: EC2Client): HttpRequest[] {
  const requests: HttpRequest[] = [];
  const handle = (request: HttpRequest): Promise<{ response: HttpResponse }> => {
    requests.push(request);
    return Promise.resolve({
      response: {
        statusCode: 200,
        headers: { 'content-type': 'text/xml;charset=UTF-8' },
        body: Buffer.from(EMPTY_DESCRIBE_INSTANCES),
      },
    });
  };
  client.config.requestHandler = { handle };
  return requests;
}

/** The access key id a SigV4-signed request was signed with. */
function signedWith(request: HttpRequest | undefined): { accessKeyId?: string; sessionToken?: string } {
  const credential = /Credential=([^/]+)\//.exec(request?.headers.authorization ?? '')?.[1];
  return {
    ...(credential ? { accessKeyId: credential } : {}),
    ...(request?.headers['x-amz-security-token']
      ? { sessionToken: request.headers['x-amz-security-token'] }
      : {}),
  };
}

async function describeInstances(client: EC2Client): Promise<void> {
  await client.send(new DescribeInstancesCommand({}));
}

void describe('partitionOf and roleArnFor', () => {
  for (const [region, partition] of [
    ['eu-west-1', 'aws'],
    ['us-east-1', 'aws'],
    ['cn-north-1', 'aws-cn'],
    ['cn-northwest-1', 'aws-cn'],
    ['us-gov-west-1', 'aws-us-gov'],
    ['us-iso-east-1', 'aws-iso'],
    ['us-isob-east-1', 'aws-iso-b'],
    ['us-isof-south-1', 'aws-iso-f'],
    ['eu-isoe-west-1', 'aws-iso-e'],
  ] as const) {
    void it(`GIVEN a role name and region ${region} WHEN the role ARN is built THEN it is in partition ${partition}`, () => {
      assert.equal(partitionOf(region), partition);
      assert.equal(
        roleArnFor(settings({ roleName: 'amiflow' }), ACCOUNT, region),
        `arn:${partition}:iam::${ACCOUNT}:role/amiflow`,
      );
    });
  }

  void it('GIVEN an explicit role ARN for the account WHEN the role ARN is built THEN the explicit one wins over the role name', () => {
    const s = settings({ roleArns: { [ACCOUNT]: ROLE_ARN }, roleName: 'other' });
    assert.equal(roleArnFor(s, ACCOUNT, 'cn-north-1'), ROLE_ARN);
    assert.equal(roleArnFor(s, OTHER_ACCOUNT, REGION), `arn:aws:iam::${OTHER_ACCOUNT}:role/other`);
  });

  void it('GIVEN neither WHEN the role ARN is built THEN there is none', () => {
    assert.equal(roleArnFor(settings(), ACCOUNT, REGION), undefined);
  });
});

void describe('createAwsClients with a role configured for the account', () => {
  void it('GIVEN a role ARN and an external id WHEN an EC2 call is made THEN it is signed with credentials from AssumeRole with the configured parameters', async () => {
    const clients = createAwsClients(
      settings({ roleArns: { [ACCOUNT]: ROLE_ARN }, externalId: 'amiflow-ext-1', roleSessionSeconds: 7200 }),
    );
    try {
      const ec2 = await clients.ec2({ region: REGION, accountId: ACCOUNT });
      const requests = fakeEc2Endpoint(ec2);

      await describeInstances(ec2);

      assert.deepEqual(
        assumeRole.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input),
        [
          {
            RoleArn: ROLE_ARN,
            RoleSessionName: `amiflow-${ACCOUNT}`,
            DurationSeconds: 7200,
            ExternalId: 'amiflow-ext-1',
          },
        ],
      );
      assert.deepEqual(signedWith(requests[0]), {
        accessKeyId: 'ASIAASSUMED1',
        sessionToken: 'session-token-1',
      });
      assert.equal(requests[0]?.hostname, `ec2.${REGION}.amazonaws.com`);
      const stsClient = assumeRole.call(0).thisValue as RoleAssumingSTSClient;
      assert.equal(await stsClient.config.region(), REGION, 'AssumeRole goes to the target region');
      assert.equal(workerSts.calls().length, 0, 'no GetCallerIdentity when a role is configured');
    } finally {
      clients.destroy();
    }
  });

  void it('GIVEN AMIFLOW_ROLE_NAME and a China region WHEN an EC2 client is made THEN the role is assumed in the aws-cn partition through STS in that region', async () => {
    const clients = createAwsClients(settings({ roleName: 'amiflow' }));
    try {
      const ec2 = await clients.ec2({ region: 'cn-north-1', accountId: ACCOUNT });
      const requests = fakeEc2Endpoint(ec2);

      await describeInstances(ec2);

      const sent = assumeRole.commandCalls(AssumeRoleCommand)[0]?.args[0].input;
      assert.equal(sent?.RoleArn, `arn:aws-cn:iam::${ACCOUNT}:role/amiflow`);
      assert.equal(sent && 'ExternalId' in sent, false, 'no external id configured, none sent');
      const stsClient = assumeRole.call(0).thisValue as RoleAssumingSTSClient;
      assert.equal(await stsClient.config.region(), 'cn-north-1');
      assert.equal(requests[0]?.hostname, 'ec2.cn-north-1.amazonaws.com.cn');
    } finally {
      clients.destroy();
    }
  });

  void it('GIVEN assumed-role credentials valid for one hour WHEN calls continue past their expiry THEN they are reused while fresh and the role is assumed again before they expire', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: T0 });
    const clients = createAwsClients(settings({ roleArns: { [ACCOUNT]: ROLE_ARN } }));
    try {
      const ec2 = await clients.ec2({ region: REGION, accountId: ACCOUNT });
      const requests = fakeEc2Endpoint(ec2);

      await describeInstances(ec2);
      t.mock.timers.tick(30 * MINUTE);
      await describeInstances(ec2);
      assert.equal(assumeRole.commandCalls(AssumeRoleCommand).length, 1, 'fresh credentials are cached');

      t.mock.timers.tick(27 * MINUTE); // 3 minutes before expiry: inside the SDK's refresh window
      await describeInstances(ec2);
      t.mock.timers.tick(2 * HOUR); // long past the first credentials' expiry
      await describeInstances(ec2);

      assert.equal(assumeRole.commandCalls(AssumeRoleCommand).length, 3);
      assert.deepEqual(
        requests.map((r) => signedWith(r).accessKeyId),
        ['ASIAASSUMED1', 'ASIAASSUMED1', 'ASIAASSUMED2', 'ASIAASSUMED3'],
      );
      assert.equal(requests[3]?.headers['x-amz-date']?.slice(0, 8), '20250101', 'signed at the virtual time');
    } finally {
      clients.destroy();
    }
  });

  void it('GIVEN the same account and region asked twice WHEN clients are made THEN one client is reused; another region gets its own', async () => {
    const clients = createAwsClients(settings({ roleArns: { [ACCOUNT]: ROLE_ARN } }));
    try {
      const a = await clients.ec2({ region: REGION, accountId: ACCOUNT });
      const b = await clients.ec2({ region: REGION, accountId: ACCOUNT });
      const c = await clients.ec2({ region: 'us-east-1', accountId: ACCOUNT });

      assert.equal(a, b);
      assert.notEqual(a, c);
      assert.equal(await c.config.region(), 'us-east-1');
    } finally {
      clients.destroy();
    }
  });

  void it('GIVEN an endpoint override (the sandbox) WHEN an EC2 call is made THEN it goes there', async () => {
    const clients = createAwsClients(settings({ endpoint: 'http://127.0.0.1:5055' }));
    try {
      const ec2 = await clients.ec2({ region: REGION });
      const requests = fakeEc2Endpoint(ec2);

      await describeInstances(ec2);

      assert.equal(requests[0]?.hostname, '127.0.0.1');
      assert.equal(requests[0]?.port, 5055);
    } finally {
      clients.destroy();
    }
  });
});

void describe('createAwsClients without a role for the account', () => {
  void it("GIVEN the worker's own credentials belong to another account WHEN a client for the account is asked for THEN AwsUnauthorized, non-retryable, telling to set AMIFLOW_ROLE_ARNS or AMIFLOW_ROLE_NAME", async () => {
    workerSts.on(GetCallerIdentityCommand).resolves({ Account: WORKER_ACCOUNT });
    const clients = createAwsClients(
      settings({ roleArns: { [OTHER_ACCOUNT]: `arn:aws:iam::${OTHER_ACCOUNT}:role/x` } }),
    );
    try {
      await nonRetryableFailure(
        clients.ec2({ region: REGION, accountId: ACCOUNT }),
        FailureType.AwsUnauthorized,
        `no role is configured for account ${ACCOUNT}`,
        `belong to ${WORKER_ACCOUNT}`,
        'AMIFLOW_ROLE_ARNS',
        'AMIFLOW_ROLE_NAME',
      );
      assert.equal(assumeRole.calls().length, 0);
    } finally {
      clients.destroy();
    }
  });

  void it("GIVEN the account is the worker's own WHEN clients are made THEN requests are signed with the worker's credentials, and the identity is asked once", async () => {
    workerSts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT });
    const clients = createAwsClients(settings());
    try {
      const ec2 = await clients.ec2({ region: REGION, accountId: ACCOUNT });
      await clients.ec2({ region: REGION, accountId: ACCOUNT });
      const requests = fakeEc2Endpoint(ec2);

      await describeInstances(ec2);

      assert.deepEqual(signedWith(requests[0]), { accessKeyId: BASE_KEY });
      assert.equal(workerSts.commandCalls(GetCallerIdentityCommand).length, 1);
      assert.equal(assumeRole.calls().length, 0);
    } finally {
      clients.destroy();
    }
  });

  void it('GIVEN no account in the target WHEN a client is made THEN no STS call at all', async () => {
    const clients = createAwsClients(settings());
    try {
      const ec2 = await clients.ec2({ region: REGION });
      const requests = fakeEc2Endpoint(ec2);

      await describeInstances(ec2);

      assert.deepEqual(signedWith(requests[0]), { accessKeyId: BASE_KEY });
      assert.equal(workerSts.calls().length + assumeRole.calls().length, 0);
    } finally {
      clients.destroy();
    }
  });

  void it('GIVEN GetCallerIdentity is throttled WHEN a client is asked for THEN the error is retryable as is, and the next attempt asks again', async () => {
    const throttled = awsError('Throttling', 400);
    workerSts.on(GetCallerIdentityCommand).rejectsOnce(throttled).resolves({ Account: ACCOUNT });
    const clients = createAwsClients(settings());
    try {
      assert.equal(await errorOf(clients.ec2({ region: REGION, accountId: ACCOUNT })), throttled);

      const ec2 = await clients.ec2({ region: REGION, accountId: ACCOUNT });

      assert.ok(ec2 instanceof EC2Client);
      assert.equal(
        workerSts.commandCalls(GetCallerIdentityCommand).length,
        2,
        'a failed identity lookup is not cached',
      );
    } finally {
      clients.destroy();
    }
  });

  void it('GIVEN the worker may not call GetCallerIdentity WHEN a client is asked for THEN AwsUnauthorized naming sts:GetCallerIdentity', async () => {
    workerSts.on(GetCallerIdentityCommand).rejects(awsError('AccessDenied', 403));
    const clients = createAwsClients(settings());
    try {
      await nonRetryableFailure(
        clients.ec2({ region: REGION, accountId: ACCOUNT }),
        FailureType.AwsUnauthorized,
        'sts:GetCallerIdentity',
        'AccessDenied',
      );
    } finally {
      clients.destroy();
    }
  });
});

void describe('STS endpoints and session lengths on real AWS', () => {
  for (const [region, stsRegion] of [
    ['af-south-1', 'us-east-1'],
    ['il-central-1', 'us-east-1'],
    ['eu-west-1', 'eu-west-1'],
    ['cn-north-1', 'cn-north-1'],
  ] as const) {
    void it(`GIVEN a target in ${region} WHEN STS is needed THEN it is asked in ${stsRegion} (opt-in regions may be disabled for the worker's account)`, () => {
      assert.equal(stsRegionFor({}, region), stsRegion);
    });
  }

  void it('GIVEN a role in an opt-in region WHEN an EC2 call is made THEN AssumeRole goes to us-east-1 and EC2 to the opt-in region', async () => {
    const clients = createAwsClients(settings({ roleArns: { [ACCOUNT]: ROLE_ARN } }));
    try {
      const ec2 = await clients.ec2({ region: 'af-south-1', accountId: ACCOUNT });
      const requests = fakeEc2Endpoint(ec2);

      await describeInstances(ec2);

      const stsClient = assumeRole.call(0).thisValue as RoleAssumingSTSClient;
      assert.equal(await stsClient.config.region(), 'us-east-1');
      assert.equal(requests[0]?.hostname, 'ec2.af-south-1.amazonaws.com');
    } finally {
      clients.destroy();
    }
  });

  void it('GIVEN AMIFLOW_STS_REGION WHEN the worker identity is read for an opt-in region THEN GetCallerIdentity goes to that region', async () => {
    workerSts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT });
    const clients = createAwsClients(settings({ stsRegion: 'eu-central-1' }));
    try {
      await clients.ec2({ region: 'me-south-1', accountId: ACCOUNT });
      const stsClient = workerSts.call(0).thisValue as STSClient;
      assert.equal(await stsClient.config.region(), 'eu-central-1');
    } finally {
      clients.destroy();
    }
  });

  void it('GIVEN base credentials that are a role session and 2-hour sessions configured WHEN a role is assumed THEN DurationSeconds is 3600 (role chaining)', async () => {
    const clients = createAwsClients(
      settings({
        roleArns: { [ACCOUNT]: ROLE_ARN },
        roleSessionSeconds: 7200,
        credentials: { accessKeyId: 'ASIAWORKERROLE', secretAccessKey: 's', sessionToken: 'worker-session' },
      }),
    );
    try {
      const ec2 = await clients.ec2({ region: REGION, accountId: ACCOUNT });
      fakeEc2Endpoint(ec2);

      await describeInstances(ec2);

      assert.equal(assumeRole.commandCalls(AssumeRoleCommand)[0]?.args[0].input.DurationSeconds, 3600);
      assert.equal(sessionSecondsFor(7200, { accessKeyId: 'AKID', secretAccessKey: 's' }), 7200);
      assert.equal(
        sessionSecondsFor(900, { accessKeyId: 'ASIA', secretAccessKey: 's', sessionToken: 't' }),
        900,
      );
    } finally {
      clients.destroy();
    }
  });
});
