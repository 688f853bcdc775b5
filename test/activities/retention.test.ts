/**
 * Retirement activities against EC2 mocked at the SDK level: what the sandbox cannot do
 * (moto has no EnableImageDeprecation, DescribeImageReferences, Enable/DisableImageDeregistrationProtection).
 * The commands and parameters sent, pagination and batching, protection turned off before
 * deregistering, references stopping a retirement, ownership checks, retries after a partial
 * retirement, and error classification.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImageReferencesCommand,
  DescribeImagesCommand,
  DisableImageDeregistrationProtectionCommand,
  EnableImageDeprecationCommand,
  EnableImageDeregistrationProtectionCommand,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/activity';
import { REFERENCE_TYPES } from '../../activities/retention';
import { FailureType, MANAGED_BY_VALUE, TAG } from '../../workflows/contracts';
import {
  IMAGE_ID,
  SNAPSHOTS,
  T0,
  TARGET,
  activityEnv,
  awsError,
  commandNames,
  errorOf,
  harness,
  image,
  nonRetryableFailure,
} from './harness';

const PIPELINE_TAGS = [
  { Key: TAG.managedBy, Value: MANAGED_BY_VALUE },
  { Key: TAG.pipeline, Value: 'web' },
  { Key: TAG.approved, Value: 'true' },
];
const OWNED = { [TAG.managedBy]: MANAGED_BY_VALUE, [TAG.pipeline]: 'web' };
const LT_ARN = 'arn:aws:ec2:eu-west-1:111122223333:launch-template/lt-0123456789abcdef0';

describe('listManagedImages', () => {
  it('GIVEN tags WHEN listing THEN DescribeImages asks for own images by every tag, deprecated and disabled included, across pages', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand)
      .resolvesOnce({
        Images: [
          image('available', {
            Tags: PIPELINE_TAGS,
            CreationDate: '2026-01-01T00:00:00.000Z',
            DeprecationTime: '2026-02-01T00:00:00.000Z',
            DeregistrationProtection: 'enabled-without-cooldown',
          }),
        ],
        NextToken: 'page-2',
      })
      .resolves({
        Images: [
          image('available', {
            ImageId: 'ami-0ffffffffffffffff',
            Tags: PIPELINE_TAGS,
            DeregistrationProtection: 'disabled',
          }),
          // A lenient endpoint's extra answer without the tags: not selected.
          image('available', { ImageId: 'ami-0eeeeeeeeeeeeeeee', Tags: [] }),
        ],
      });

    const images = await activityEnv().run(h.activities.listManagedImages, {
      target: TARGET,
      tags: { [TAG.pipeline]: 'web', [TAG.approved]: 'true' },
    });

    const [first, second] = h.ec2Mock.commandCalls(DescribeImagesCommand);
    assert.deepEqual(first?.args[0].input, {
      Owners: ['self'],
      Filters: [
        { Name: `tag:${TAG.pipeline}`, Values: ['web'] },
        { Name: `tag:${TAG.approved}`, Values: ['true'] },
      ],
      IncludeDeprecated: true,
      IncludeDisabled: true,
    });
    assert.equal(second?.args[0].input.NextToken, 'page-2');
    assert.deepEqual(
      images.map((i) => [i.imageId, i.protected, i.deprecationTime]),
      [
        [IMAGE_ID, true, '2026-02-01T00:00:00.000Z'],
        ['ami-0ffffffffffffffff', false, undefined],
      ],
    );
    assert.deepEqual(images[0]?.snapshotIds, [...SNAPSHOTS]);
  });

  it('GIVEN no tags WHEN listing THEN refused: retirement never selects every image of an account', async () => {
    const h = harness();
    await nonRetryableFailure(
      activityEnv().run(h.activities.listManagedImages, { target: TARGET, tags: {} }),
      FailureType.InvalidInput,
    );
    assert.deepEqual(commandNames(h.ec2Mock), []);
  });
});

describe('findImageReferences', () => {
  it('GIVEN 60 images WHEN asking what references them THEN two batched DescribeImageReferences calls for live instances, launch templates, parameters and recipes, grouped by image', async () => {
    const h = harness();
    const ids = Array.from({ length: 60 }, (_, i) => `ami-0${i.toString(16).padStart(16, '0')}`);
    h.ec2Mock
      .on(DescribeImageReferencesCommand)
      .resolvesOnce({
        ImageReferences: [
          { ImageId: ids[0], ResourceType: 'ec2:LaunchTemplate', Arn: LT_ARN },
          {
            ImageId: ids[0],
            ResourceType: 'ec2:Instance',
            Arn: 'arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0',
          },
        ],
        NextToken: 'more',
      })
      .resolvesOnce({ ImageReferences: [] })
      .resolves({
        ImageReferences: [
          {
            ImageId: ids[55],
            ResourceType: 'ssm:Parameter',
            Arn: 'arn:aws:ssm:eu-west-1:111122223333:parameter/pinned',
          },
        ],
      });

    const refs = await activityEnv().run(h.activities.findImageReferences, { target: TARGET, imageIds: ids });

    const calls = h.ec2Mock.commandCalls(DescribeImageReferencesCommand).map((c) => c.args[0].input);
    assert.equal(calls.length, 3, 'two batches, the first with a second page');
    assert.deepEqual(calls[0]?.ImageIds, ids.slice(0, 50));
    assert.equal(calls[1]?.NextToken, 'more');
    assert.deepEqual(calls[2]?.ImageIds, ids.slice(50));
    assert.deepEqual(calls[0]?.ResourceTypes, REFERENCE_TYPES);
    const instanceStates = REFERENCE_TYPES.find((t) => t.ResourceType === 'ec2:Instance')
      ?.ResourceTypeOptions?.[0]?.OptionValues;
    assert.ok(!instanceStates?.includes('terminated'), 'a terminated instance does not keep an image');
    assert.deepEqual(refs, {
      [ids[0] ?? '']: [LT_ARN, 'arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0'],
      [ids[55] ?? '']: ['arn:aws:ssm:eu-west-1:111122223333:parameter/pinned'],
    });
  });

  it('GIVEN throttling WHEN asking THEN the error is left for Temporal to retry (not a non-retryable failure)', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImageReferencesCommand).rejects(awsError('RequestLimitExceeded', 503));
    const err = await errorOf(
      activityEnv().run(h.activities.findImageReferences, { target: TARGET, imageIds: [IMAGE_ID] }),
    );
    assert.ok(!(err instanceof ApplicationFailure), String(err));
  });
});

describe('protectImage and deprecateImage', () => {
  it('GIVEN the newest image WHEN protected THEN EnableImageDeregistrationProtection without the 24-hour cooldown', async () => {
    const h = harness();
    h.ec2Mock.on(EnableImageDeregistrationProtectionCommand).resolves({ Return: 'true' });
    await activityEnv().run(h.activities.protectImage, { target: TARGET, imageId: IMAGE_ID });
    assert.deepEqual(h.ec2Mock.commandCalls(EnableImageDeregistrationProtectionCommand)[0]?.args[0].input, {
      ImageId: IMAGE_ID,
      WithCooldown: false,
    });
  });

  it('GIVEN a deprecation time in the past or within a minute WHEN deprecating THEN EC2 is given the next whole minute at least a minute away', async () => {
    const h = harness();
    h.ec2Mock.on(EnableImageDeprecationCommand).resolves({ Return: true });
    const now = await activityEnv().run(h.activities.deprecateImage, {
      target: TARGET,
      imageId: IMAGE_ID,
      deprecateAt: T0 - 5000,
    });
    const later = await activityEnv().run(h.activities.deprecateImage, {
      target: TARGET,
      imageId: IMAGE_ID,
      deprecateAt: T0 + 7 * 86_400_000 + 30_000,
    });
    const sent = h.ec2Mock
      .commandCalls(EnableImageDeprecationCommand)
      .map((c) => c.args[0].input.DeprecateAt?.toISOString());
    assert.deepEqual(sent, ['2025-01-01T00:01:00.000Z', '2025-01-08T00:01:00.000Z']);
    assert.equal(now.deprecateAt, '2025-01-01T00:01:00.000Z');
    assert.equal(later.deprecateAt, '2025-01-08T00:01:00.000Z');
  });

  it('GIVEN no permission WHEN deprecating THEN AwsUnauthorized, non-retryable, naming the action', async () => {
    const h = harness();
    h.ec2Mock.on(EnableImageDeprecationCommand).rejects(awsError('UnauthorizedOperation', 403));
    await nonRetryableFailure(
      activityEnv().run(h.activities.deprecateImage, { target: TARGET, imageId: IMAGE_ID, deprecateAt: T0 }),
      FailureType.AwsUnauthorized,
      `deprecating ${IMAGE_ID}`,
    );
  });
});

describe('retireImage', () => {
  it('GIVEN a protected, unreferenced image of the pipeline WHEN retired THEN protection off, deregistered, snapshots deleted, in that order', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [
        image('available', { Tags: PIPELINE_TAGS, DeregistrationProtection: 'enabled-without-cooldown' }),
      ],
    });
    h.ec2Mock.on(DescribeImageReferencesCommand).resolves({ ImageReferences: [] });
    h.ec2Mock.on(DisableImageDeregistrationProtectionCommand).resolves({ Return: 'false' });
    h.ec2Mock.on(DeregisterImageCommand).resolves({});
    h.ec2Mock.on(DeleteSnapshotCommand).resolves({});

    const out = await activityEnv().run(h.activities.retireImage, {
      target: TARGET,
      imageId: IMAGE_ID,
      requiredTags: OWNED,
    });

    assert.deepEqual(commandNames(h.ec2Mock), [
      'DescribeImages',
      'DescribeImageReferences',
      'DisableImageDeregistrationProtection',
      'DeregisterImage',
      'DeleteSnapshot',
      'DeleteSnapshot',
    ]);
    assert.deepEqual(out, { imageId: IMAGE_ID, deregistered: true, deletedSnapshotIds: [...SNAPSHOTS] });
  });

  it('GIVEN an image a launch template still uses WHEN retired THEN nothing is changed and the references are returned', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image('available', { Tags: PIPELINE_TAGS })] });
    h.ec2Mock.on(DescribeImageReferencesCommand).resolves({
      ImageReferences: [{ ImageId: IMAGE_ID, ResourceType: 'ec2:LaunchTemplate', Arn: LT_ARN }],
    });

    const out = await activityEnv().run(h.activities.retireImage, {
      target: TARGET,
      imageId: IMAGE_ID,
      requiredTags: OWNED,
    });

    assert.deepEqual(out, {
      imageId: IMAGE_ID,
      deregistered: false,
      deletedSnapshotIds: [],
      references: [LT_ARN],
    });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages', 'DescribeImageReferences']);
  });

  it("GIVEN an image without the pipeline's tags WHEN retired THEN refused, nothing changed", async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand)
      .resolves({ Images: [image('available', { Tags: [{ Key: TAG.pipeline, Value: 'api' }] })] });
    await nonRetryableFailure(
      activityEnv().run(h.activities.retireImage, { target: TARGET, imageId: IMAGE_ID, requiredTags: OWNED }),
      FailureType.AwsPolicyRefused,
      'not retiring an image amiflow did not make',
    );
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages']);
  });

  it("GIVEN a protected image WHEN retired honouring protection (a share's re-encrypted copy) THEN kept, protection left on, nothing deleted", async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [
        image('available', {
          Tags: PIPELINE_TAGS.slice(0, 2),
          DeregistrationProtection: 'enabled-with-cooldown',
        }),
      ],
    });

    const out = await activityEnv().run(h.activities.retireImage, {
      target: TARGET,
      imageId: IMAGE_ID,
      requiredTags: OWNED,
      honourProtection: true,
    });

    assert.deepEqual(out, {
      imageId: IMAGE_ID,
      deregistered: false,
      deletedSnapshotIds: [],
      keptBecause: 'deregistration protection is on (enabled-with-cooldown)',
    });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages']);
  });

  it('GIVEN an approved image WHEN retired keeping approved images THEN kept, nothing deleted', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image('available', { Tags: PIPELINE_TAGS })] });

    const out = await activityEnv().run(h.activities.retireImage, {
      target: TARGET,
      imageId: IMAGE_ID,
      requiredTags: OWNED,
      keepApproved: true,
    });

    assert.equal(out.deregistered, false);
    assert.match(out.keptBecause ?? '', /approved image/);
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages']);
  });

  it('GIVEN an attempt that deregistered the image and then failed WHEN retried THEN the snapshots remembered in its heartbeat are deleted', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', 400));
    h.ec2Mock
      .on(DeleteSnapshotCommand, { SnapshotId: SNAPSHOTS[0] })
      .rejects(awsError('InvalidSnapshot.NotFound', 400));
    h.ec2Mock.on(DeleteSnapshotCommand, { SnapshotId: SNAPSHOTS[1] }).resolves({});

    const out = await activityEnv({ heartbeatDetails: { snapshotIds: [...SNAPSHOTS] }, attempt: 2 }).run(
      h.activities.retireImage,
      { target: TARGET, imageId: IMAGE_ID, requiredTags: OWNED },
    );

    assert.deepEqual(out, {
      imageId: IMAGE_ID,
      deregistered: false,
      deletedSnapshotIds: [SNAPSHOTS[1]],
      note: 'the image was gone already',
    });
  });
});
