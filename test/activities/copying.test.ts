/**
 * activities/copying.ts at the SDK level: CopyImage's parameters (ClientToken, Encrypted/KmsKeyId,
 * TagSpecifications), a ClientToken stable across retries and distinct per run and destination,
 * the tag lookup that finds an earlier attempt's copy, IdempotentParameterMismatch and throttling,
 * name clashes, and a cross-account copy made with the destination account's assumed-role
 * credentials (signed requests read off a fake HTTP endpoint).
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { EC2Client } from '@aws-sdk/client-ec2';
import {
  CopyImageCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
} from '@aws-sdk/client-ec2';
import type { KMSClient } from '@aws-sdk/client-kms';
import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import { ApplicationFailure } from '@temporalio/activity';
import { AssumeRoleCommand, STSClient as RoleAssumingSTSClient } from '@aws-sdk/nested-clients/sts';
import type { HttpRequest, HttpResponse } from '@smithy/types';
import { mockClient } from 'aws-sdk-client-mock';
import type { CopyImageActivityInput } from '../../activities/copying';
import { COPY_SETTLE_GRACE_MS, copyClientToken } from '../../activities/copying';
import { createActivities } from '../../activities';
import type { AwsClients } from '../../activities/aws';
import { createAwsClients, sharedProvider } from '../../activities/aws';
import { classifyAwsError } from '../../activities/errors';
import { DEFAULT_POLL_POLICY } from '../../activities/waiting';
import { FailureType, MANAGED_BY_VALUE, TAG, WORKFLOW_TYPES } from '../../workflows/contracts';
import { awsError, errorOf, nonRetryableFailure } from './failures';
import { ACCOUNT, IMAGE_ID, REGION, RUN_ID, T0, USER_TAGS, WORKFLOW_ID, image, ownerTags } from './fixtures';
import { VirtualClock, activityEnv, commandNames, harness } from './harness';

const DEST_REGION = 'eu-central-1';
const COPY_ID = 'ami-0c0c0c0c0c0c0c0c1';
const DEST_KEY = `arn:aws:kms:${DEST_REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

const copyInput: CopyImageActivityInput = {
  source: { region: REGION, imageId: IMAGE_ID },
  destination: { region: DEST_REGION, accountId: ACCOUNT },
  imageName: 'web-2025-01-01',
  description: 'web server',
  kmsKeyId: DEST_KEY,
  tags: USER_TAGS,
  workflowId: WORKFLOW_ID,
  runId: RUN_ID,
  workflowType: WORKFLOW_TYPES.copyImage,
  purpose: 'copy',
};

const expectedTags = [
  ...Object.entries(USER_TAGS).map(([Key, Value]) => ({ Key, Value })),
  { Key: TAG.managedBy, Value: MANAGED_BY_VALUE },
  { Key: TAG.workflowId, Value: WORKFLOW_ID },
  { Key: TAG.runId, Value: RUN_ID },
  { Key: TAG.workflowType, Value: WORKFLOW_TYPES.copyImage },
  { Key: TAG.sourceImage, Value: IMAGE_ID },
  { Key: TAG.sourceRegion, Value: REGION },
];

function mockFreshCopy(h: ReturnType<typeof harness>) {
  h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
  h.ec2Mock.on(CopyImageCommand).resolves({ ImageId: COPY_ID });
  h.ec2Mock.on(CreateTagsCommand).resolves({});
}

void describe('copyImage: the CopyImage request', () => {
  void it('GIVEN a destination with a key WHEN copied THEN it looks for an earlier copy by its tags, then CopyImage with ClientToken, Encrypted+KmsKeyId and image+snapshot tags, then tags the copy', async () => {
    const h = harness();
    mockFreshCopy(h);

    const out = await activityEnv().run(h.activities.copyImage, copyInput);

    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages', 'CopyImage', 'CreateTags']);
    assert.deepEqual(h.ec2Mock.commandCalls(DescribeImagesCommand)[0]?.args[0].input, {
      Owners: ['self'],
      IncludeDisabled: true,
      Filters: [
        { Name: `tag:${TAG.workflowId}`, Values: [WORKFLOW_ID] },
        { Name: `tag:${TAG.runId}`, Values: [RUN_ID] },
        { Name: `tag:${TAG.sourceImage}`, Values: [IMAGE_ID] },
      ],
    });
    assert.deepEqual(h.ec2Mock.commandCalls(CopyImageCommand)[0]?.args[0].input, {
      SourceImageId: IMAGE_ID,
      SourceRegion: REGION,
      Name: 'web-2025-01-01',
      Description: 'web server',
      ClientToken: out.clientToken,
      Encrypted: true,
      KmsKeyId: DEST_KEY,
      TagSpecifications: [
        { ResourceType: 'image', Tags: expectedTags },
        { ResourceType: 'snapshot', Tags: expectedTags },
      ],
    });
    assert.deepEqual(h.ec2Mock.commandCalls(CreateTagsCommand)[0]?.args[0].input, {
      Resources: [COPY_ID],
      Tags: expectedTags,
    });
    assert.deepEqual(out, { imageId: COPY_ID, created: true, clientToken: out.clientToken, awsCalls: 3 });
    assert.deepEqual(h.targets, [copyInput.destination], 'EC2 of the destination account and region');
  });

  void it('GIVEN no key WHEN copied THEN neither Encrypted nor KmsKeyId is sent (the copy keeps the source encryption)', async () => {
    const h = harness();
    mockFreshCopy(h);
    const { kmsKeyId: _key, ...unkeyed } = copyInput;

    await activityEnv().run(h.activities.copyImage, unkeyed);

    const sent = h.ec2Mock.commandCalls(CopyImageCommand)[0]?.args[0].input;
    assert.equal(sent && 'Encrypted' in sent, false);
    assert.equal(sent && 'KmsKeyId' in sent, false);
  });
});

void describe('copyImage: idempotency', () => {
  void it('GIVEN the same run and destination WHEN CopyImage is retried (a later attempt) THEN the ClientToken is the same; another destination, run or purpose gets another; all fit in 64 characters', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    h.ec2Mock
      .on(CopyImageCommand)
      .rejectsOnce(awsError('RequestLimitExceeded', 503))
      .resolves({ ImageId: COPY_ID });
    h.ec2Mock.on(CreateTagsCommand).resolves({});

    await errorOf(activityEnv({ attempt: 1 }).run(h.activities.copyImage, copyInput));
    await activityEnv({ attempt: 2 }).run(h.activities.copyImage, copyInput);

    const tokens = h.ec2Mock.commandCalls(CopyImageCommand).map((c) => c.args[0].input.ClientToken);
    assert.equal(tokens.length, 2);
    assert.equal(tokens[0], tokens[1], 'the retry sends the first attempt’s token');
    const others = [
      copyClientToken({ ...copyInput, destination: { region: 'ap-southeast-2', accountId: ACCOUNT } }),
      copyClientToken({ ...copyInput, destination: { region: DEST_REGION, accountId: '444455556666' } }),
      copyClientToken({ ...copyInput, runId: 'another-run' }),
      copyClientToken({ ...copyInput, purpose: 'reencrypt' }),
    ];
    assert.equal(new Set([tokens[0], ...others]).size, 5);
    for (const t of [tokens[0] ?? '', ...others]) assert.ok(t.length <= 64, `${t} is ${t.length} characters`);
  });

  void it('GIVEN an earlier attempt started the copy WHEN retried THEN the copy is found by its tags and CopyImage is not called again', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand)
      .resolves({ Images: [image('pending', { ImageId: COPY_ID, Tags: ownerTags() })] });

    const out = await activityEnv({ attempt: 3 }).run(h.activities.copyImage, copyInput);

    assert.equal(out.imageId, COPY_ID);
    assert.equal(out.created, false);
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages']);
  });

  void it('GIVEN EC2 answers IdempotentParameterMismatch WHEN copied THEN a non-retryable failure naming the token', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    h.ec2Mock.on(CopyImageCommand).rejects(awsError('IdempotentParameterMismatch', 400));

    const err = await nonRetryableFailure(
      activityEnv().run(h.activities.copyImage, copyInput),
      FailureType.AwsMalformedRequest,
      'IdempotentParameterMismatch',
      copyClientToken(copyInput),
    );
    assert.deepEqual(err.details?.[0], {
      awsCode: 'IdempotentParameterMismatch',
      clientToken: copyClientToken(copyInput),
    });
    assert.equal(h.ec2Mock.commandCalls(CreateTagsCommand).length, 0);
  });

  void it('GIVEN CopyImage is throttled (RequestLimitExceeded, its 1-per-second bucket) WHEN copied THEN the SDK error is rethrown untouched, so Temporal retries it with backoff', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    const throttled = awsError('RequestLimitExceeded', 503);
    h.ec2Mock.on(CopyImageCommand).rejects(throttled);

    const err = await errorOf(activityEnv().run(h.activities.copyImage, copyInput));

    assert.equal(err, throttled);
    assert.deepEqual(classifyAwsError(err), {
      retry: true,
      code: 'RequestLimitExceeded',
      reason: 'throttling',
    });
  });

  void it("GIVEN the name is taken by this run's copy (an answer lost, no tags visible yet) WHEN copied THEN that copy is returned", async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).callsFake((input: { Filters?: { Name?: string }[] }) => ({
      Images:
        input.Filters?.[0]?.Name === 'name'
          ? [image('pending', { ImageId: COPY_ID, Name: copyInput.imageName })]
          : [],
    }));
    h.ec2Mock.on(CopyImageCommand).rejects(awsError('InvalidAMIName.Duplicate', 400));

    const out = await activityEnv().run(h.activities.copyImage, copyInput);

    assert.deepEqual([out.imageId, out.created], [COPY_ID, false]);
  });

  void it('GIVEN the name is taken by another image WHEN copied THEN ImageNameTaken naming it and the destination', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).callsFake((input: { Filters?: { Name?: string }[] }) => ({
      Images:
        input.Filters?.[0]?.Name === 'name'
          ? [image('available', { ImageId: 'ami-0eeeeeeeeeeeeeee1', Name: copyInput.imageName, Tags: [] })]
          : [],
    }));
    h.ec2Mock.on(CopyImageCommand).rejects(awsError('InvalidAMIName.Duplicate', 400));

    await nonRetryableFailure(
      activityEnv().run(h.activities.copyImage, copyInput),
      FailureType.ImageNameTaken,
      `'${copyInput.imageName}' already exists in ${DEST_REGION} (account ${ACCOUNT}) (ami-0eeeeeeeeeeeeeee1)`,
    );
  });
});

void describe('describeCopySource', () => {
  void it("GIVEN a source with tags WHEN described THEN the copy inherits only the user's tags, not aws:* or amiflow:*", async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [
        image('available', {
          OwnerId: ACCOUNT,
          Tags: [
            { Key: 'team', Value: 'web' },
            { Key: 'aws:cloudformation:stack-name', Value: 's' },
            ...ownerTags(),
          ],
          BlockDeviceMappings: [
            { DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Encrypted: true } },
          ],
        }),
      ],
    });

    const out = await activityEnv().run(h.activities.describeCopySource, {
      target: { region: REGION, accountId: ACCOUNT },
      imageId: IMAGE_ID,
    });

    assert.deepEqual(out.userTags, { team: 'web' });
    assert.equal(out.encrypted, true);
    assert.equal(out.ownerId, ACCOUNT);
  });
});

// ---------------------------------------------------------------------------------------------
// Cross-account: the destination account's role, assumed by the worker, signs the copy.
// ---------------------------------------------------------------------------------------------

const DEST_ACCOUNT = '444455556666';
const DEST_ROLE = `arn:aws:iam::${DEST_ACCOUNT}:role/amiflow`;
const assumeRole = mockClient(RoleAssumingSTSClient);

const EC2_NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const EC2_ANSWERS: Record<string, string> = {
  DescribeImages: `<DescribeImagesResponse xmlns="${EC2_NS}"><requestId>r</requestId><imagesSet/></DescribeImagesResponse>`,
  CopyImage: `<CopyImageResponse xmlns="${EC2_NS}"><requestId>r</requestId><imageId>${COPY_ID}</imageId></CopyImageResponse>`,
  CreateTags: `<CreateTagsResponse xmlns="${EC2_NS}"><requestId>r</requestId><return>true</return></CreateTagsResponse>`,
};

interface Seen {
  host: string;
  accessKeyId?: string;
  sessionToken?: string;
  body: string;
}

function bodyOf(request: HttpRequest): string {
  const b: unknown = request.body;
  return typeof b === 'string'
    ? b
    : Buffer.isBuffer(b)
      ? b.toString()
      : b instanceof Uint8Array
        ? Buffer.from(b).toString()
        : '';
}

function seen(request: HttpRequest, readBody: boolean): Seen {
  const credential = /Credential=([^/]+)\//.exec(request.headers.authorization ?? '')?.[1];
  const token = request.headers['x-amz-security-token'];
  return {
    host: request.hostname,
    ...(credential ? { accessKeyId: credential } : {}),
    ...(token ? { sessionToken: token } : {}),
    body: readBody ? bodyOf(request) : '',
  };
}

/** The worker's clients, with their HTTP answered here: every request is recorded, signed. */
function fakeEndpoints(inner: AwsClients): { clients: AwsClients; requests: Seen[] } {
  const requests: Seen[] = [];
  const ec2Handler = {
    handle: (request: HttpRequest): Promise<{ response: HttpResponse }> => {
      const s = seen(request, true);
      requests.push(s);
      const action = new URLSearchParams(s.body).get('Action') ?? '';
      return Promise.resolve({
        response: {
          statusCode: 200,
          headers: { 'content-type': 'text/xml;charset=UTF-8' },
          body: Buffer.from(EC2_ANSWERS[action] ?? ''),
        },
      });
    },
  };
  const kmsHandler = {
    handle: (request: HttpRequest): Promise<{ response: HttpResponse }> => {
      requests.push(seen(request, false));
      const meta = {
        KeyId: 'k',
        Arn: DEST_KEY,
        AWSAccountId: DEST_ACCOUNT,
        KeyManager: 'CUSTOMER',
        KeyState: 'Enabled',
        Enabled: true,
      };
      return Promise.resolve({
        response: {
          statusCode: 200,
          headers: { 'content-type': 'application/x-amz-json-1.1' },
          body: Buffer.from(JSON.stringify({ KeyMetadata: meta })),
        },
      });
    },
  };
  return {
    requests,
    clients: {
      async ec2(target) {
        const c: EC2Client = await inner.ec2(target);
        c.config.requestHandler = ec2Handler;
        return c;
      },
      async kms(target) {
        const c: KMSClient = await inner.kms(target);
        c.config.requestHandler = kmsHandler;
        return c;
      },
      destroy: () => inner.destroy(),
    },
  };
}

void describe('copyImage across accounts', () => {
  beforeEach(() => {
    assumeRole.reset();
    assumeRole.on(AssumeRoleCommand).resolves({
      Credentials: {
        AccessKeyId: 'ASIADESTINATION',
        SecretAccessKey: 'dest-secret',
        SessionToken: 'dest-session',
        Expiration: new Date(Date.now() + 3600_000),
      },
    });
  });

  void it("GIVEN a destination account with a configured role and its own key WHEN its copy is made THEN the key check and CopyImage (with KmsKeyId) are signed with that account's assumed-role credentials, in the destination region, assuming the role once", async () => {
    const inner = createAwsClients({
      roleArns: { [DEST_ACCOUNT]: DEST_ROLE },
      roleSessionSeconds: 3600,
      sdkMaxAttempts: 1,
      credentials: { accessKeyId: 'AKIDWORKER', secretAccessKey: 'worker-secret' },
    });
    const { clients, requests } = fakeEndpoints(inner);
    const activities = createActivities({
      aws: clients,
      clock: new VirtualClock(),
      random: () => 0.5,
      policy: DEFAULT_POLL_POLICY,
    });
    const destination = { region: DEST_REGION, accountId: DEST_ACCOUNT };
    const key = `arn:aws:kms:${DEST_REGION}:${DEST_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
    try {
      await activityEnv().run(activities.checkKmsKey, {
        target: destination,
        keyId: key,
        purpose: 'the copy',
      });
      const out = await activityEnv().run(activities.copyImage, { ...copyInput, destination, kmsKeyId: key });

      assert.equal(out.imageId, COPY_ID);
      assert.deepEqual(
        assumeRole.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input.RoleArn),
        [DEST_ROLE],
        'one AssumeRole, shared by the KMS and EC2 clients of the account',
      );
      assert.deepEqual(
        requests.map((r) => [r.host, r.accessKeyId, r.sessionToken]),
        [
          [`kms.${DEST_REGION}.amazonaws.com`, 'ASIADESTINATION', 'dest-session'],
          [`ec2.${DEST_REGION}.amazonaws.com`, 'ASIADESTINATION', 'dest-session'],
          [`ec2.${DEST_REGION}.amazonaws.com`, 'ASIADESTINATION', 'dest-session'],
          [`ec2.${DEST_REGION}.amazonaws.com`, 'ASIADESTINATION', 'dest-session'],
        ],
      );
      const copy = new URLSearchParams(requests.find((r) => r.body.includes('Action=CopyImage'))?.body ?? '');
      assert.equal(copy.get('SourceImageId'), IMAGE_ID);
      assert.equal(copy.get('SourceRegion'), REGION);
      assert.equal(copy.get('Encrypted'), 'true');
      assert.equal(copy.get('KmsKeyId'), key);
      assert.equal(copy.get('ClientToken'), copyClientToken({ ...copyInput, destination }));
    } finally {
      clients.destroy();
    }
  });
});

void describe('sharedProvider: one assumed role per account for its EC2 and KMS clients', () => {
  void it('GIVEN concurrent first calls WHEN credentials are asked for THEN the role is assumed once; near expiry it is assumed again', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: T0 });
    let calls = 0;
    const provider = sharedProvider(() => {
      calls += 1;
      return Promise.resolve({
        accessKeyId: `ASIA${calls}`,
        secretAccessKey: 's',
        expiration: new Date(Date.now() + 3600_000),
      });
    });

    const [a, b] = await Promise.all([provider(), provider()]);
    t.mock.timers.tick(50 * 60_000);
    const c = await provider();
    t.mock.timers.tick(6 * 60_000); // 4 minutes before expiry: inside the refresh margin
    const d = await provider();

    assert.deepEqual(
      [a, b, c, d].map((x) => x.accessKeyId),
      ['ASIA1', 'ASIA1', 'ASIA1', 'ASIA2'],
    );
    assert.equal(calls, 2);
  });
});

void describe('copyImage: what settles by itself on real EC2', () => {
  const SOURCE_OWNER = '444455556666';
  const SOURCE_KEY = `arn:aws:kms:${REGION}:${SOURCE_OWNER}:key/0000aaaa-12ab-34cd-56ef-1234567890ab`;
  const crossInput: CopyImageActivityInput = { ...copyInput, sourceOwnerId: SOURCE_OWNER };
  /** The attempt made `ms` after the first, retries 15 s apart. */
  const attemptAfter = (ms: number) => activityEnv({ attempt: 1 + Math.floor(ms / 15_000) });

  async function retryableAfter(p: Promise<unknown>, delayMs: number, ...fragments: string[]) {
    const err = await errorOf(p);
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.nonRetryable, false, err.message);
    assert.equal(err.nextRetryDelay, delayMs);
    for (const f of fragments) assert.ok(err.message.includes(f), err.message);
  }

  /** As the destination account in the source region, EC2 shows the shared source image (or not). */
  function sourceAsDestination(h: ReturnType<typeof harness>, visible: boolean, encrypted = false) {
    h.ec2Mock.on(DescribeImagesCommand).callsFake((input: { ImageIds?: string[] }) => {
      if (!input.ImageIds) return { Images: [] };
      if (!visible) throw awsError('InvalidAMIID.NotFound', 400);
      return {
        Images: [
          image('available', {
            OwnerId: SOURCE_OWNER,
            BlockDeviceMappings: [
              {
                DeviceName: '/dev/xvda',
                Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Encrypted: encrypted },
              },
            ],
          }),
        ],
      };
    });
    h.ec2Mock.on(DescribeSnapshotsCommand).resolves({
      Snapshots: [{ SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Encrypted: true, KmsKeyId: SOURCE_KEY }],
    });
    h.ec2Mock.on(CopyImageCommand).resolves({ ImageId: COPY_ID });
    h.ec2Mock.on(CreateTagsCommand).resolves({});
  }

  void it('GIVEN a name EC2 still holds for a just-deregistered image (none visible) WHEN copied THEN retried in 15 s, not ImageNameTaken', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    h.ec2Mock.on(CopyImageCommand).rejects(awsError('InvalidAMIName.Duplicate', 400));

    await retryableAfter(attemptAfter(0).run(h.activities.copyImage, copyInput), 15_000, 'still held');
  });

  void it('GIVEN the name is still held after the grace WHEN copied again THEN ImageNameTaken, saying no image of that name is visible', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    h.ec2Mock.on(CopyImageCommand).rejects(awsError('InvalidAMIName.Duplicate', 400));

    await nonRetryableFailure(
      attemptAfter(COPY_SETTLE_GRACE_MS).run(h.activities.copyImage, copyInput),
      FailureType.ImageNameTaken,
      'no image of that name is visible',
    );
  });

  void it('GIVEN a cross-account copy right after the share WHEN the destination cannot see the image yet THEN no CopyImage; retried in 15 s, asked as the destination in the source region', async () => {
    const h = harness();
    sourceAsDestination(h, false);

    await retryableAfter(attemptAfter(0).run(h.activities.copyImage, crossInput), 15_000, 'not visible');

    assert.equal(h.ec2Mock.commandCalls(CopyImageCommand).length, 0);
    assert.deepEqual(h.targets.at(-1), { region: REGION, accountId: ACCOUNT });
  });

  void it('GIVEN the image stays invisible past the grace WHEN copied THEN ImageNotFound naming the account and the launch permissions', async () => {
    const h = harness();
    sourceAsDestination(h, false);

    await nonRetryableFailure(
      attemptAfter(COPY_SETTLE_GRACE_MS).run(h.activities.copyImage, crossInput),
      FailureType.ImageNotFound,
      `not visible to account ${ACCOUNT}`,
      'launch permissions',
    );
  });

  void it('GIVEN an encrypted shared image whose key grant is not usable yet WHEN copied THEN no CopyImage, retried; once DescribeKey answers THEN copied', async () => {
    const h = harness();
    sourceAsDestination(h, true, true);
    h.kmsMock
      .on(DescribeKeyCommand)
      .rejectsOnce(awsError('AccessDeniedException', 400))
      .resolves({
        KeyMetadata: {
          KeyId: 'k',
          Arn: SOURCE_KEY,
          KeyManager: 'CUSTOMER',
          KeyState: 'Enabled',
          Enabled: true,
        },
      });

    await retryableAfter(
      attemptAfter(0).run(h.activities.copyImage, crossInput),
      15_000,
      'grant not effective',
    );
    assert.equal(h.ec2Mock.commandCalls(CopyImageCommand).length, 0);
    assert.deepEqual(h.kmsTargets.at(-1), { region: REGION, accountId: ACCOUNT });
    assert.equal(h.kmsMock.commandCalls(DescribeKeyCommand)[0]?.args[0].input.KeyId, SOURCE_KEY);

    const out = await attemptAfter(20_000).run(h.activities.copyImage, crossInput);
    assert.deepEqual([out.imageId, out.created], [COPY_ID, true]);
  });

  void it('GIVEN the grant never becomes usable WHEN the grace is over THEN KmsKeyUnusable naming the key and what to do', async () => {
    const h = harness();
    sourceAsDestination(h, true, true);
    h.kmsMock.on(DescribeKeyCommand).rejects(awsError('AccessDeniedException', 400));

    await nonRetryableFailure(
      attemptAfter(COPY_SETTLE_GRACE_MS).run(h.activities.copyImage, crossInput),
      FailureType.KmsKeyUnusable,
      SOURCE_KEY,
      'grant it the key',
    );
  });

  void it('GIVEN a copy within the source account WHEN copied THEN no visibility check', async () => {
    const h = harness();
    mockFreshCopy(h);
    await activityEnv().run(h.activities.copyImage, { ...copyInput, sourceOwnerId: ACCOUNT });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages', 'CopyImage', 'CreateTags']);
  });
});
