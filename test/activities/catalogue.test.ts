/**
 * activities/catalogue.ts and throttled-reads.ts at the SDK level: the DescribeImages request the
 * catalogue sends (owner, approval tag and pipeline filters, deprecated and disabled included,
 * paginated), what it makes of the approval tags, deprecation by time and by disabling, allow-listed
 * ids described in batches that split around an id EC2 does not know, throttling backed off inside
 * the activity (and rethrown, retryable, past the bound), and permanent errors non-retryable.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Image } from '@aws-sdk/client-ec2';
import { DescribeImagesCommand, EC2ServiceException } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/activity';
import { THROTTLE_BACKOFF } from '../../activities/throttled-reads';
import { APPROVED_VALUE, FailureType, TAG } from '../../workflows/contracts';
import { awsError, errorOf, nonRetryableFailure } from './failures';
import { ACCOUNT, REGION, T0, TARGET } from './fixtures';
import { activityEnv, commandNames, harness } from './harness';

const DAY = 24 * 3600 * 1000;
const KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

function approved(imageId: string, version: string, extra: Partial<Image> = {}, pipeline = 'web'): Image {
  return {
    ImageId: imageId,
    Name: `${pipeline}-${version}`,
    OwnerId: ACCOUNT,
    State: 'available',
    CreationDate: '2024-12-01T00:00:00.000Z',
    Tags: [
      { Key: TAG.approved, Value: APPROVED_VALUE },
      { Key: TAG.pipeline, Value: pipeline },
      { Key: TAG.version, Value: version },
      { Key: TAG.approvedBy, Value: 'alice@example.com' },
      { Key: TAG.approvedAt, Value: '2024-12-02T10:00:00Z' },
      { Key: TAG.sourceImage, Value: 'ami-0000000000000000a' },
    ],
    BlockDeviceMappings: [
      {
        DeviceName: '/dev/xvda',
        Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Encrypted: true, KmsKeyId: KEY },
      },
      {
        DeviceName: '/dev/xvdb',
        Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa2', Encrypted: true, KmsKeyId: KEY },
      },
    ],
    ...extra,
  };
}

const A = 'ami-0aaaaaaaaaaaaaaa1';
const B = 'ami-0aaaaaaaaaaaaaaa2';
const C = 'ami-0aaaaaaaaaaaaaaa3';
const VENDOR = 'ami-0bbbbbbbbbbbbbbb1';
const GONE = 'ami-0bbbbbbbbbbbbbbb2';

void describe('listApprovedImages', () => {
  void it('GIVEN approved images over two pages WHEN listed THEN DescribeImages asks for own images tagged approved of the pipelines, deprecated and disabled included, and follows NextToken', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand, { NextToken: undefined })
      .resolves({ Images: [approved(A, '1.9.0')], NextToken: 'page-2' })
      .on(DescribeImagesCommand, { NextToken: 'page-2' })
      .resolves({
        Images: [
          approved(B, '1.10.0', { DeprecationTime: new Date(T0 - DAY).toISOString() }),
          approved(C, '1.11.0', { DeprecationTime: new Date(T0 + DAY).toISOString() }),
        ],
      });

    const out = await activityEnv().run(h.activities.listApprovedImages, {
      target: TARGET,
      pipelines: ['web', 'api'],
    });

    const sent = h.ec2Mock.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input);
    assert.equal(sent.length, 2);
    assert.deepEqual(sent[0], {
      Owners: ['self'],
      Filters: [
        { Name: `tag:${TAG.approved}`, Values: [APPROVED_VALUE] },
        { Name: `tag:${TAG.pipeline}`, Values: ['web', 'api'] },
      ],
      IncludeDeprecated: true,
      IncludeDisabled: true,
      MaxResults: 1000,
    });
    assert.equal(sent[1]?.NextToken, 'page-2');
    assert.deepEqual(h.targets, [TARGET]);
    assert.deepEqual(
      out.images.map((i) => [i.imageId, i.version, i.deprecated]),
      [
        [A, '1.9.0', false],
        [B, '1.10.0', true], // deprecated yesterday
        [C, '1.11.0', false], // deprecated tomorrow: still current
      ],
    );
    assert.deepEqual(out.images[0], {
      imageId: A,
      region: REGION,
      ownerId: ACCOUNT,
      name: 'web-1.9.0',
      pipeline: 'web',
      version: '1.9.0',
      approvedBy: 'alice@example.com',
      approvedAt: '2024-12-02T10:00:00Z',
      sourceImage: 'ami-0000000000000000a',
      creationDate: '2024-12-01T00:00:00.000Z',
      state: 'available',
      deprecated: false,
      kmsKeyIds: [KEY],
      basis: 'approval-tags',
    });
    assert.equal(out.awsCalls, 2);
    assert.equal(out.throttled, 0);
  });

  void it('GIVEN a disabled approved image and one an endpoint returned without the approval tag WHEN listed THEN the disabled one is deprecated and the untagged one left out', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [
        approved(A, '1', { State: 'disabled' }),
        { ImageId: B, OwnerId: ACCOUNT, State: 'available', Tags: [] },
      ],
    });

    const out = await activityEnv().run(h.activities.listApprovedImages, { target: TARGET });

    assert.deepEqual(
      out.images.map((i) => [i.imageId, i.state, i.deprecated]),
      [[A, 'disabled', true]],
    );
    assert.deepEqual(h.ec2Mock.commandCalls(DescribeImagesCommand)[0]?.args[0].input.Filters, [
      { Name: `tag:${TAG.approved}`, Values: [APPROVED_VALUE] },
    ]);
  });

  void it('GIVEN two allow-listed ids, one EC2 no longer knows WHEN listed THEN the batch failing with InvalidAMIID.NotFound is split, the known one described and the other listed as not visible', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand, { Owners: ['self'] })
      .resolves({ Images: [] })
      .on(DescribeImagesCommand, { ImageIds: [VENDOR, GONE] })
      .rejects(awsError('InvalidAMIID.NotFound', 400, `The image id '[${GONE}]' does not exist`))
      .on(DescribeImagesCommand, { ImageIds: [VENDOR] })
      .resolves({
        Images: [{ ImageId: VENDOR, OwnerId: '679593333241', Name: 'vendor-os-2024', State: 'available' }],
      })
      .on(DescribeImagesCommand, { ImageIds: [GONE] })
      .rejects(awsError('InvalidAMIID.NotFound', 400));

    const out = await activityEnv().run(h.activities.listApprovedImages, {
      target: TARGET,
      allowListImageIds: [VENDOR, GONE],
    });

    assert.deepEqual(
      h.ec2Mock.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input.ImageIds),
      [undefined, [VENDOR, GONE], [VENDOR], [GONE]],
    );
    assert.deepEqual(h.ec2Mock.commandCalls(DescribeImagesCommand)[1]?.args[0].input, {
      ImageIds: [VENDOR, GONE],
      IncludeDeprecated: true,
      IncludeDisabled: true,
    });
    assert.deepEqual(
      out.images.map((i) => [i.imageId, i.basis, i.state, i.ownerId, i.name]),
      [
        [VENDOR, 'allow-list', 'available', '679593333241', 'vendor-os-2024'],
        [GONE, 'allow-list', 'not-visible', '', undefined],
      ],
    );
  });

  void it('GIVEN DescribeImages throttled twice WHEN listed THEN the same request is sent again after 1 s and 2 s of backoff, with a heartbeat before each wait', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand)
      .rejectsOnce(awsError('RequestLimitExceeded', 503))
      .rejectsOnce(awsError('Throttling', 400))
      .resolves({ Images: [approved(A, '1')] });
    const env = activityEnv();

    const out = await env.run(h.activities.listApprovedImages, { target: TARGET });

    assert.equal(out.images.length, 1);
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages', 'DescribeImages', 'DescribeImages']);
    assert.deepEqual(h.clock.sleeps, [1000, 2000]); // random 0.5: the jitter's midpoint
    assert.equal(env.heartbeats.length, 2);
    assert.equal(out.throttled, 2);
    assert.equal(out.awsCalls, 3);
  });

  void it('GIVEN throttling that does not let up WHEN listed THEN after the bound the SDK error is rethrown as it is, for Temporal to retry the activity later', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).rejects(awsError('RequestLimitExceeded', 503));

    const err = await errorOf(activityEnv().run(h.activities.listApprovedImages, { target: TARGET }));

    assert.ok(err instanceof EC2ServiceException && !(err instanceof ApplicationFailure), String(err));
    assert.equal(err.name, 'RequestLimitExceeded');
    assert.equal(h.ec2Mock.commandCalls(DescribeImagesCommand).length, THROTTLE_BACKOFF.attempts);
    assert.deepEqual(h.clock.sleeps, [1000, 2000, 4000, 8000, 16000, 20000, 20000]);
  });

  void it('GIVEN the role may not describe images WHEN listed THEN a non-retryable AwsUnauthorized names the action and the region', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).rejects(awsError('UnauthorizedOperation', 403));

    await nonRetryableFailure(
      activityEnv().run(h.activities.listApprovedImages, { target: TARGET }),
      FailureType.AwsUnauthorized,
      `listing approved images in region ${REGION}, account ${ACCOUNT}`,
      'UnauthorizedOperation',
    );
    assert.equal(h.clock.sleeps.length, 0);
  });
});
