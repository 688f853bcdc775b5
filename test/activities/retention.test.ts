/**
 * Retirement activities against EC2 mocked at the SDK level: what the sandbox cannot do
 * (moto has no EnableImageDeprecation, DescribeImageReferences, Enable/DisableImageDeregistrationProtection).
 * The commands and parameters sent, pagination and batching, protection turned off before
 * deregistering, references stopping a retirement, ownership checks, retries after a partial
 * retirement, and error classification.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as EC2 from '@aws-sdk/client-ec2';
import type { DescribeImageReferencesCommandInput, DescribeImagesCommandInput } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/activity';
import type { RetireImageInput } from '../../activities/retention';
import { REFERENCE_BATCH, REFERENCE_TYPES } from '../../activities/retention';
import { FailureType, MANAGED_BY_VALUE, TAG } from '../../workflows/contracts';
import { awsError, errorOf, nonRetryableFailure } from './failures';
import { IMAGE_ID, SNAPSHOTS, T0, TARGET, image } from './fixtures';
import { activityEnv, commandNames, harness } from './harness';
import type { Harness } from './harness';

const PIPELINE_TAGS = [
  { Key: TAG.managedBy, Value: MANAGED_BY_VALUE },
  { Key: TAG.pipeline, Value: 'web' },
  { Key: TAG.approved, Value: 'true' },
];
const OWNED = { [TAG.managedBy]: MANAGED_BY_VALUE, [TAG.pipeline]: 'web' };
/** retireImage of IMAGE_ID, owned by the web pipeline, with `options`. */
/** No account, organization or group may launch the image: nothing shared keeps it. */
function notShared(h: Harness): void {
  h.ec2Mock.on(EC2.DescribeImageAttributeCommand).resolves({ ImageId: IMAGE_ID, LaunchPermissions: [] });
}

function retire(h: Harness, options: Partial<RetireImageInput> = {}) {
  return activityEnv().run(h.activities.retireImage, {
    target: TARGET,
    imageId: IMAGE_ID,
    requiredTags: OWNED,
    ...options,
  });
}
const LT_ARN = 'arn:aws:ec2:eu-west-1:111122223333:launch-template/lt-0123456789abcdef0';

describe('listManagedImages', () => {
  it('GIVEN tags WHEN listing THEN DescribeImages asks for own images by every tag, deprecated and disabled included, across pages', async () => {
    const h = harness();
    h.ec2Mock
      .on(EC2.DescribeImagesCommand)
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

    const [first, second] = h.ec2Mock.commandCalls(EC2.DescribeImagesCommand);
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
  it('GIVEN 60 images WHEN asking what references them THEN batches of at most 10 ids (the API maximum) for live instances, launch templates, parameters and recipes, grouped by image', async () => {
    const h = harness();
    const ids = Array.from({ length: 60 }, (_, i) => `ami-0${i.toString(16).padStart(16, '0')}`);
    let firstPage = true;
    h.ec2Mock
      .on(EC2.DescribeImageReferencesCommand)
      .callsFake((input: DescribeImageReferencesCommandInput) => {
        // EC2 rejects more than 10 ids: the mock does too, so a bigger batch fails the test.
        if ((input.ImageIds?.length ?? 0) > REFERENCE_BATCH) throw awsError('InvalidParameterValue', 400);
        if (input.ImageIds?.includes(ids[0] ?? '') && firstPage) {
          firstPage = false;
          return {
            ImageReferences: [
              { ImageId: ids[0], ResourceType: 'ec2:LaunchTemplate', Arn: LT_ARN },
              {
                ImageId: ids[0],
                ResourceType: 'ec2:Instance',
                Arn: 'arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0',
              },
            ],
            NextToken: 'more',
          };
        }
        if (input.ImageIds?.includes(ids[55] ?? ''))
          return {
            ImageReferences: [
              {
                ImageId: ids[55],
                ResourceType: 'ssm:Parameter',
                Arn: 'arn:aws:ssm:eu-west-1:111122223333:parameter/pinned',
              },
            ],
          };
        return { ImageReferences: [] };
      });

    const refs = await activityEnv().run(h.activities.findImageReferences, { target: TARGET, imageIds: ids });

    const calls = h.ec2Mock.commandCalls(EC2.DescribeImageReferencesCommand).map((c) => c.args[0].input);
    assert.equal(REFERENCE_BATCH, 10);
    assert.equal(calls.length, 7, 'six batches of ten, the first with a second page');
    assert.deepEqual(calls[0]?.ImageIds, ids.slice(0, 10));
    assert.equal(calls[1]?.NextToken, 'more');
    assert.deepEqual(calls[1]?.ImageIds, ids.slice(0, 10));
    assert.deepEqual(calls[6]?.ImageIds, ids.slice(50));
    assert.deepEqual(
      calls.flatMap((c, i) => (i === 1 ? [] : (c.ImageIds ?? []))),
      ids,
      'every id asked about exactly once',
    );
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
    h.ec2Mock.on(EC2.DescribeImageReferencesCommand).rejects(awsError('RequestLimitExceeded', 503));
    const err = await errorOf(
      activityEnv().run(h.activities.findImageReferences, { target: TARGET, imageIds: [IMAGE_ID] }),
    );
    assert.ok(!(err instanceof ApplicationFailure), String(err));
  });
});

describe('protectImage and deprecateImage', () => {
  it('GIVEN the newest image WHEN protected THEN EnableImageDeregistrationProtection without the 24-hour cooldown', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.EnableImageDeregistrationProtectionCommand).resolves({ Return: 'true' });
    await activityEnv().run(h.activities.protectImage, { target: TARGET, imageId: IMAGE_ID });
    assert.deepEqual(
      h.ec2Mock.commandCalls(EC2.EnableImageDeregistrationProtectionCommand)[0]?.args[0].input,
      {
        ImageId: IMAGE_ID,
        WithCooldown: false,
      },
    );
  });

  it('GIVEN a deprecation time in the past or within a minute WHEN deprecating THEN EC2 is given the next whole minute at least a minute away', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.EnableImageDeprecationCommand).resolves({ Return: true });
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
      .commandCalls(EC2.EnableImageDeprecationCommand)
      .map((c) => c.args[0].input.DeprecateAt?.toISOString());
    assert.deepEqual(sent, ['2025-01-01T00:01:00.000Z', '2025-01-08T00:01:00.000Z']);
    assert.equal(now.deprecateAt, '2025-01-01T00:01:00.000Z');
    assert.equal(later.deprecateAt, '2025-01-08T00:01:00.000Z');
  });

  it('GIVEN no permission WHEN deprecating THEN AwsUnauthorized, non-retryable, naming the action', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.EnableImageDeprecationCommand).rejects(awsError('UnauthorizedOperation', 403));
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
    h.ec2Mock.on(EC2.DescribeImagesCommand).resolves({
      Images: [
        image('available', { Tags: PIPELINE_TAGS, DeregistrationProtection: 'enabled-without-cooldown' }),
      ],
    });
    h.ec2Mock.on(EC2.DescribeImageReferencesCommand).resolves({ ImageReferences: [] });
    notShared(h);
    h.ec2Mock.on(EC2.DisableImageDeregistrationProtectionCommand).resolves({ Return: 'false' });
    h.ec2Mock.on(EC2.DeregisterImageCommand).resolves({});
    h.ec2Mock.on(EC2.DeleteSnapshotCommand).resolves({});

    const out = await retire(h);

    assert.deepEqual(
      h.ec2Mock.commandCalls(EC2.DescribeImagesCommand)[0]?.args[0].input.IncludeDisabled,
      true,
      'a disabled image is invisible to DescribeImages unless asked for',
    );
    assert.deepEqual(commandNames(h.ec2Mock), [
      'DescribeImages',
      'DescribeImageReferences',
      'DescribeImageAttribute',
      'DisableImageDeregistrationProtection',
      'DeregisterImage',
      'DeleteSnapshot',
      'DeleteSnapshot',
    ]);
    assert.deepEqual(out, { imageId: IMAGE_ID, deregistered: true, deletedSnapshotIds: [...SNAPSHOTS] });
  });

  it('GIVEN an image a launch template still uses WHEN retired THEN nothing is changed and the references are returned', async () => {
    const h = harness();
    h.ec2Mock
      .on(EC2.DescribeImagesCommand)
      .resolves({ Images: [image('available', { Tags: PIPELINE_TAGS })] });
    h.ec2Mock.on(EC2.DescribeImageReferencesCommand).resolves({
      ImageReferences: [{ ImageId: IMAGE_ID, ResourceType: 'ec2:LaunchTemplate', Arn: LT_ARN }],
    });

    const out = await retire(h);

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
      .on(EC2.DescribeImagesCommand)
      .resolves({ Images: [image('available', { Tags: [{ Key: TAG.pipeline, Value: 'api' }] })] });
    await nonRetryableFailure(
      retire(h),
      FailureType.AwsPolicyRefused,
      'not retiring an image amiflow did not make',
    );
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages']);
  });

  it("GIVEN a protected image WHEN retired honouring protection (a share's re-encrypted copy) THEN kept, protection left on, nothing deleted", async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeImagesCommand).resolves({
      Images: [
        image('available', {
          Tags: PIPELINE_TAGS.slice(0, 2),
          DeregistrationProtection: 'enabled-with-cooldown',
        }),
      ],
    });

    const out = await retire(h, { honourProtection: true });

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
    h.ec2Mock
      .on(EC2.DescribeImagesCommand)
      .resolves({ Images: [image('available', { Tags: PIPELINE_TAGS })] });

    const out = await retire(h, { keepApproved: true });

    assert.equal(out.deregistered, false);
    assert.match(out.keptBecause ?? '', /approved image/);
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages']);
  });

  it('GIVEN an attempt that deregistered the image and then failed WHEN retried THEN the snapshots remembered in its heartbeat are deleted', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', 400));
    h.ec2Mock
      .on(EC2.DeleteSnapshotCommand, { SnapshotId: SNAPSHOTS[0] })
      .rejects(awsError('InvalidSnapshot.NotFound', 400));
    h.ec2Mock.on(EC2.DeleteSnapshotCommand, { SnapshotId: SNAPSHOTS[1] }).resolves({});

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

describe('retireImage: what EC2 does not show or does not allow at once', () => {
  function retirable(h: ReturnType<typeof harness>, extra: Parameters<typeof image>[1] = {}) {
    h.ec2Mock
      .on(EC2.DescribeImagesCommand)
      .resolves({ Images: [image('available', { Tags: PIPELINE_TAGS, ...extra })] });
    h.ec2Mock.on(EC2.DescribeImageReferencesCommand).resolves({ ImageReferences: [] });
    h.ec2Mock.on(EC2.DeregisterImageCommand).resolves({});
    h.ec2Mock.on(EC2.DeleteSnapshotCommand).resolves({});
  }
  const ORG_ARN = 'arn:aws:organizations::111122223333:organization/o-abcdefghij';

  it('GIVEN an unreferenced image other accounts, an organization and everyone may launch WHEN retired THEN kept, naming them, nothing deregistered', async () => {
    const h = harness();
    retirable(h);
    h.ec2Mock.on(EC2.DescribeImageAttributeCommand).resolves({
      ImageId: IMAGE_ID,
      LaunchPermissions: [{ UserId: '444455556666' }, { OrganizationArn: ORG_ARN }, { Group: 'all' }],
    });

    const out = await retire(h);

    assert.deepEqual(out, {
      imageId: IMAGE_ID,
      deregistered: false,
      deletedSnapshotIds: [],
      sharedWith: ['444455556666', ORG_ARN, 'public'],
    });
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.DescribeImageAttributeCommand)[0]?.args[0].input, {
      ImageId: IMAGE_ID,
      Attribute: 'launchPermission',
    });
    assert.equal(h.ec2Mock.commandCalls(EC2.DeregisterImageCommand).length, 0);
  });

  it('GIVEN a shared image and retireShared WHEN retired THEN its launch permissions are not read and it is deregistered', async () => {
    const h = harness();
    retirable(h);

    const out = await retire(h, { retireShared: true });

    assert.equal(out.deregistered, true);
    assert.deepEqual(commandNames(h.ec2Mock).slice(0, 3), [
      'DescribeImages',
      'DescribeImageReferences',
      'DeregisterImage',
    ]);
  });

  it('GIVEN protection enabled with cooldown WHEN retired THEN protection is turned off and the result says retire after 24 h; nothing deregistered', async () => {
    const h = harness();
    retirable(h, { DeregistrationProtection: 'enabled-with-cooldown' });
    notShared(h);
    h.ec2Mock.on(EC2.DisableImageDeregistrationProtectionCommand).resolves({ Return: 'disabled-until' });

    const out = await retire(h);

    assert.deepEqual(out, {
      imageId: IMAGE_ID,
      deregistered: false,
      deletedSnapshotIds: [],
      retireAfter: new Date(T0 + 24 * 3600_000).toISOString(),
    });
    assert.equal(h.ec2Mock.commandCalls(EC2.DisableImageDeregistrationProtectionCommand).length, 1);
    assert.equal(h.ec2Mock.commandCalls(EC2.DeregisterImageCommand).length, 0);
    assert.equal(h.ec2Mock.commandCalls(EC2.DeleteSnapshotCommand).length, 0);
  });

  it('GIVEN protection still cooling down WHEN retired again before the time THEN nothing is called but reads, and the same time is reported', async () => {
    const h = harness();
    retirable(h, { DeregistrationProtection: 'disabled-until 2025-01-01T20:00:00.000Z' });
    notShared(h);

    const out = await retire(h);

    assert.equal(out.retireAfter, '2025-01-01T20:00:00.000Z');
    assert.deepEqual(commandNames(h.ec2Mock), [
      'DescribeImages',
      'DescribeImageReferences',
      'DescribeImageAttribute',
    ]);
  });

  it('GIVEN a cooldown that has ended WHEN a later run retires it THEN deregistered with its snapshots', async () => {
    const h = harness();
    retirable(h, { DeregistrationProtection: 'disabled-until-2024-12-31T20:00:00.000Z' });
    notShared(h);

    const out = await retire(h);

    assert.deepEqual(out, { imageId: IMAGE_ID, deregistered: true, deletedSnapshotIds: [...SNAPSHOTS] });
  });

  it('GIVEN a disabled image WHEN retired THEN it is found (IncludeDisabled) and deregistered with its snapshots, not "gone already"', async () => {
    const h = harness();
    // As EC2: a disabled image is left out unless IncludeDisabled is set.
    h.ec2Mock.on(EC2.DescribeImagesCommand).callsFake((input: DescribeImagesCommandInput) => {
      if (input.IncludeDisabled !== true) throw awsError('InvalidAMIID.NotFound', 400);
      return { Images: [image('disabled', { Tags: PIPELINE_TAGS })] };
    });
    h.ec2Mock.on(EC2.DescribeImageReferencesCommand).resolves({ ImageReferences: [] });
    notShared(h);
    h.ec2Mock.on(EC2.DeregisterImageCommand).resolves({});
    h.ec2Mock.on(EC2.DeleteSnapshotCommand).resolves({});

    const out = await retire(h);

    assert.deepEqual(out, { imageId: IMAGE_ID, deregistered: true, deletedSnapshotIds: [...SNAPSHOTS] });
  });
});

describe('deprecateImage: EC2 limits', () => {
  const YEAR = 365 * 86_400_000;

  for (const [isPublic, years] of [
    [false, 10],
    [true, 2],
  ] as const) {
    it(`GIVEN a ${isPublic ? 'public' : 'private'} image and a time 20 years ahead WHEN deprecated THEN EC2 is given ${years} years ahead and the asked time is reported`, async () => {
      const h = harness();
      h.ec2Mock.on(EC2.EnableImageDeprecationCommand).resolves({ Return: true });
      const asked = T0 + 20 * YEAR;

      const out = await activityEnv().run(h.activities.deprecateImage, {
        target: TARGET,
        imageId: IMAGE_ID,
        deprecateAt: asked,
        ...(isPublic ? { public: true } : {}),
      });

      const sent = h.ec2Mock.commandCalls(EC2.EnableImageDeprecationCommand)[0]?.args[0].input.DeprecateAt;
      assert.equal(sent?.getTime(), T0 + years * YEAR);
      assert.deepEqual(out, {
        imageId: IMAGE_ID,
        deprecateAt: new Date(T0 + years * YEAR).toISOString(),
        clampedFrom: new Date(asked).toISOString(),
      });
    });
  }

  it('GIVEN a public image and a time one year ahead WHEN deprecated THEN sent as asked, nothing clamped', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.EnableImageDeprecationCommand).resolves({ Return: true });
    const out = await activityEnv().run(h.activities.deprecateImage, {
      target: TARGET,
      imageId: IMAGE_ID,
      deprecateAt: T0 + YEAR,
      public: true,
    });
    assert.deepEqual(out, { imageId: IMAGE_ID, deprecateAt: new Date(T0 + YEAR).toISOString() });
  });
});
