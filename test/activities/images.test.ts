/** checkImageName, createImage (idempotent under retries), tagSnapshots, deleteImage (the compensation). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CreateImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/activity';
import type { CreateImageInput, DeleteImageInput } from '../../activities/images';
import { FailureType, TAG } from '../../workflows/contracts';
import { awsError, errorOf, nonRetryableFailure } from './failures';
import {
  IMAGE_ID,
  IMAGE_NAME,
  INSTANCE_ID,
  REGION,
  RUN_ID,
  SNAPSHOTS,
  TARGET,
  USER_TAGS,
  WORKFLOW_ID,
  image,
  ownerTags,
} from './fixtures';
import { activityEnv, commandNames, harness } from './harness';

const nameRef = { target: TARGET, imageName: IMAGE_NAME, workflowId: WORKFLOW_ID, runId: RUN_ID };
const imageTags = { ...USER_TAGS, [TAG.workflowId]: WORKFLOW_ID, [TAG.runId]: RUN_ID };
/** imageTags as EC2 takes them: the user's tags first, then the run's. */
const IMAGE_TAG_LIST = [
  { Key: 'team', Value: 'web' },
  { Key: 'env', Value: 'prod' },
  { Key: TAG.workflowId, Value: WORKFLOW_ID },
  { Key: TAG.runId, Value: RUN_ID },
];
const createInput: CreateImageInput = {
  ...nameRef,
  instanceId: INSTANCE_ID,
  description: 'web server, nightly',
  noReboot: true,
  tags: imageTags,
};
/** Disabled images hold their name too, so the lookup includes them. */
const byName = { Owners: ['self'], IncludeDisabled: true, Filters: [{ Name: 'name', Values: [IMAGE_NAME] }] };
/** The same name, made by an earlier run of the same workflow id: not ours. */
const previousRunsImage = image('available', {
  ImageId: 'ami-0ddddddddddddddd1',
  Tags: ownerTags(WORKFLOW_ID, 'older-run'),
});

void describe('checkImageName', () => {
  void it('GIVEN no image by that name WHEN checked THEN free', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand, byName).resolves({ Images: [] });

    assert.deepEqual(await activityEnv().run(h.activities.checkImageName, nameRef), { status: 'free' });
  });

  void it("GIVEN this run's image WHEN checked THEN ours, with its id", async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand, byName).resolves({ Images: [image('pending')] });

    assert.deepEqual(await activityEnv().run(h.activities.checkImageName, nameRef), {
      status: 'ours',
      imageId: IMAGE_ID,
    });
  });

  void it('GIVEN an image by that name from another run WHEN checked THEN ImageNameTaken, non-retryable', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand, byName).resolves({ Images: [previousRunsImage] });

    await nonRetryableFailure(
      activityEnv().run(h.activities.checkImageName, nameRef),
      FailureType.ImageNameTaken,
      'choose another name',
    );
  });
});

void describe('createImage', () => {
  void it('GIVEN the name is free WHEN creating THEN looks the name up among our own images first, then sends CreateImage with name, description, NoReboot and image tags', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    h.ec2Mock.on(CreateImageCommand).resolves({ ImageId: IMAGE_ID });

    const out = await activityEnv().run(h.activities.createImage, createInput);

    assert.deepEqual(out, { imageId: IMAGE_ID, created: true });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages', 'CreateImage']);
    assert.deepEqual(h.ec2Mock.commandCalls(DescribeImagesCommand)[0]?.args[0].input, byName);
    assert.deepEqual(h.ec2Mock.commandCalls(CreateImageCommand)[0]?.args[0].input, {
      InstanceId: INSTANCE_ID,
      Name: IMAGE_NAME,
      Description: 'web server, nightly',
      NoReboot: true,
      TagSpecifications: [
        {
          ResourceType: 'image',
          Tags: IMAGE_TAG_LIST,
        },
      ],
    });
  });

  void it('GIVEN reboot mode and no description WHEN creating THEN NoReboot is false and no Description is sent', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    h.ec2Mock.on(CreateImageCommand).resolves({ ImageId: IMAGE_ID });
    const { description: _omitted, ...noDescription } = createInput;

    await activityEnv().run(h.activities.createImage, { ...noDescription, noReboot: false });

    const sent = h.ec2Mock.commandCalls(CreateImageCommand)[0]?.args[0].input;
    assert.equal(sent?.NoReboot, false);
    assert.equal(sent && 'Description' in sent, false);
  });

  void it("GIVEN a retry whose first attempt made the image (DescribeImages shows this run's tags) WHEN creating THEN no CreateImage and created: false", async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand, byName).resolves({ Images: [image('pending')] });

    const out = await activityEnv({ attempt: 2 }).run(h.activities.createImage, createInput);

    assert.deepEqual(out, { imageId: IMAGE_ID, created: false });
    assert.equal(h.ec2Mock.commandCalls(CreateImageCommand).length, 0);
  });

  void it('GIVEN CreateImage answers InvalidAMIName.Duplicate and the re-lookup finds ours WHEN creating THEN returns it, created: false', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand, byName)
      .resolvesOnce({ Images: [] }) // not visible yet on the first look
      .resolves({ Images: [image('pending')] });
    h.ec2Mock.on(CreateImageCommand).rejects(awsError('InvalidAMIName.Duplicate', 400));

    const out = await activityEnv({ attempt: 2 }).run(h.activities.createImage, createInput);

    assert.deepEqual(out, { imageId: IMAGE_ID, created: false });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages', 'CreateImage', 'DescribeImages']);
  });

  void it('GIVEN the name is taken by an image without this run’s tags WHEN creating THEN ImageNameTaken, non-retryable, telling to choose another name, and no CreateImage', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand, byName).resolves({ Images: [previousRunsImage] });

    const failure = await nonRetryableFailure(
      activityEnv().run(h.activities.createImage, createInput),
      FailureType.ImageNameTaken,
      `'${IMAGE_NAME}'`,
      REGION,
      'ami-0ddddddddddddddd1',
      'choose another name',
    );
    assert.deepEqual(failure.details, [{ imageId: 'ami-0ddddddddddddddd1' }]);
    assert.equal(h.ec2Mock.commandCalls(CreateImageCommand).length, 0);
  });

  void it('GIVEN an image without any tags by that name WHEN creating THEN ImageNameTaken', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand, byName)
      .resolves({ Images: [image('available', { Tags: undefined })] });

    await nonRetryableFailure(
      activityEnv().run(h.activities.createImage, createInput),
      FailureType.ImageNameTaken,
    );
    assert.equal(h.ec2Mock.commandCalls(CreateImageCommand).length, 0);
  });

  void it('GIVEN InvalidAMIName.Duplicate and the re-lookup finds someone else’s image WHEN creating THEN ImageNameTaken', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand, byName)
      .resolvesOnce({ Images: [] })
      .resolves({ Images: [previousRunsImage] });
    h.ec2Mock.on(CreateImageCommand).rejects(awsError('InvalidAMIName.Duplicate', 400));

    await nonRetryableFailure(
      activityEnv().run(h.activities.createImage, createInput),
      FailureType.ImageNameTaken,
    );
  });

  void it('GIVEN InvalidAMIName.Duplicate and the image is not visible yet (eventual consistency) WHEN creating THEN the error is rethrown as is, so a retry finds the image', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand, byName).resolves({ Images: [] });
    const duplicate = awsError('InvalidAMIName.Duplicate', 400);
    h.ec2Mock.on(CreateImageCommand).rejects(duplicate);

    const err = await errorOf(activityEnv({ attempt: 2 }).run(h.activities.createImage, createInput));

    assert.equal(err, duplicate, 'retryable: not an ApplicationFailure');
    assert.equal(h.ec2Mock.commandCalls(DescribeImagesCommand).length, 2);
  });

  void it('GIVEN a malformed name WHEN creating THEN AwsMalformedRequest, non-retryable, naming the action and AWS’s code', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    h.ec2Mock
      .on(CreateImageCommand)
      .rejects(awsError('InvalidAMIName.Malformed', 400, 'AMI names must be 3-128 chars'));

    await nonRetryableFailure(
      activityEnv().run(h.activities.createImage, createInput),
      FailureType.AwsMalformedRequest,
      `creating image '${IMAGE_NAME}' from ${INSTANCE_ID}`,
      'InvalidAMIName.Malformed',
      'AMI names must be 3-128 chars',
    );
  });

  void it('GIVEN the source instance is gone WHEN creating THEN AwsNotFound, non-retryable', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    h.ec2Mock.on(CreateImageCommand).rejects(awsError('InvalidInstanceID.NotFound', 400));

    await nonRetryableFailure(
      activityEnv().run(h.activities.createImage, createInput),
      FailureType.AwsNotFound,
      'InvalidInstanceID.NotFound',
    );
  });
});

void describe('tagSnapshots', () => {
  void it("GIVEN an image with two EBS snapshots and an ephemeral volume WHEN tagging THEN CreateTags on exactly the snapshots' ids", async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand, { ImageIds: [IMAGE_ID] }).resolves({ Images: [image('available')] });
    h.ec2Mock.on(CreateTagsCommand).resolves({});

    const out = await activityEnv().run(h.activities.tagSnapshots, {
      target: TARGET,
      imageId: IMAGE_ID,
      tags: imageTags,
    });

    assert.deepEqual(out, { snapshotIds: [...SNAPSHOTS] });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages', 'CreateTags']);
    assert.deepEqual(h.ec2Mock.commandCalls(CreateTagsCommand)[0]?.args[0].input, {
      Resources: [...SNAPSHOTS],
      Tags: IMAGE_TAG_LIST,
    });
  });

  void it('GIVEN an image without snapshots WHEN tagging THEN no CreateTags', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand)
      .resolves({ Images: [image('available', { BlockDeviceMappings: [] })] });

    const out = await activityEnv().run(h.activities.tagSnapshots, {
      target: TARGET,
      imageId: IMAGE_ID,
      tags: {},
    });

    assert.deepEqual(out, { snapshotIds: [] });
    assert.equal(h.ec2Mock.commandCalls(CreateTagsCommand).length, 0);
  });

  void it('GIVEN the image does not exist WHEN tagging THEN ImageNotFound, non-retryable', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', 400));

    await nonRetryableFailure(
      activityEnv().run(h.activities.tagSnapshots, { target: TARGET, imageId: IMAGE_ID, tags: {} }),
      FailureType.ImageNotFound,
      IMAGE_ID,
      REGION,
    );
  });

  void it('GIVEN CreateTags is refused for lack of permission WHEN tagging THEN AwsUnauthorized, non-retryable, naming the action', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image('available')] });
    h.ec2Mock.on(CreateTagsCommand).rejects(awsError('UnauthorizedOperation', 403));

    await nonRetryableFailure(
      activityEnv().run(h.activities.tagSnapshots, {
        target: TARGET,
        imageId: IMAGE_ID,
        tags: USER_TAGS,
      }),
      FailureType.AwsUnauthorized,
      `tagging snapshots of ${IMAGE_ID}`,
      'UnauthorizedOperation',
      'check the worker credentials',
    );
  });
});

void describe('deleteImage', () => {
  const byId: DeleteImageInput = { ...nameRef, imageId: IMAGE_ID };

  void it("GIVEN this run's image WHEN deleting THEN DeregisterImage, then DeleteSnapshot for each snapshot, remembering the ids in a heartbeat first", async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand, { ImageIds: [IMAGE_ID] }).resolves({ Images: [image('available')] });
    h.ec2Mock.on(DeregisterImageCommand).resolves({});
    h.ec2Mock.on(DeleteSnapshotCommand).resolves({});
    const run = activityEnv();

    const out = await run.run(h.activities.deleteImage, byId);

    assert.deepEqual(out, { imageId: IMAGE_ID, deregistered: true, deletedSnapshotIds: [...SNAPSHOTS] });
    assert.deepEqual(commandNames(h.ec2Mock), [
      'DescribeImages',
      'DeregisterImage',
      'DeleteSnapshot',
      'DeleteSnapshot',
    ]);
    assert.deepEqual(h.ec2Mock.commandCalls(DeregisterImageCommand)[0]?.args[0].input, { ImageId: IMAGE_ID });
    assert.deepEqual(
      h.ec2Mock.commandCalls(DeleteSnapshotCommand).map((c) => c.args[0].input),
      SNAPSHOTS.map((SnapshotId) => ({ SnapshotId })),
    );
    assert.deepEqual(run.heartbeats, [{ imageId: IMAGE_ID, snapshotIds: [...SNAPSHOTS] }]);
  });

  void it('GIVEN a disabled image of this run WHEN deleting THEN it is found (IncludeDisabled) and deregistered with its snapshots', async () => {
    const h = harness();
    // As EC2: a disabled image is left out of DescribeImages unless IncludeDisabled is set.
    h.ec2Mock.on(DescribeImagesCommand).callsFake((input: { IncludeDisabled?: boolean }) => {
      if (input.IncludeDisabled !== true) throw awsError('InvalidAMIID.NotFound', 400);
      return { Images: [image('disabled')] };
    });
    h.ec2Mock.on(DeregisterImageCommand).resolves({});
    h.ec2Mock.on(DeleteSnapshotCommand).resolves({});

    const out = await activityEnv().run(h.activities.deleteImage, byId);

    assert.deepEqual(out, { imageId: IMAGE_ID, deregistered: true, deletedSnapshotIds: [...SNAPSHOTS] });
  });

  void it('GIVEN creation failed before the image id was known WHEN deleting THEN the image is found by name and our tags', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand, byName).resolves({ Images: [image('pending')] });
    h.ec2Mock.on(DeregisterImageCommand).resolves({});
    h.ec2Mock.on(DeleteSnapshotCommand).resolves({});

    const out = await activityEnv().run(h.activities.deleteImage, nameRef);

    assert.deepEqual(out, { imageId: IMAGE_ID, deregistered: true, deletedSnapshotIds: [...SNAPSHOTS] });
  });

  void it('GIVEN no image by that name and the consistency window has passed WHEN deleting THEN nothing is touched', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand, byName).resolves({ Images: [] });

    const out = await activityEnv().run(h.activities.deleteImage, nameRef);

    assert.deepEqual(out, {
      deregistered: false,
      deletedSnapshotIds: [],
      note: `no image named '${IMAGE_NAME}' made by this run was found: none was made`,
    });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages']);
  });

  for (const [what, tags] of [
    ['another run of the same workflow', ownerTags(WORKFLOW_ID, 'older-run')],
    ['another workflow', ownerTags('another-workflow', RUN_ID)],
    ['no one (untagged)', undefined],
  ] as const) {
    for (const input of [byId, nameRef] as DeleteImageInput[]) {
      void it(`GIVEN the image${input.imageId ? ` ${IMAGE_ID}` : ' by that name'} was made by ${what} WHEN deleting THEN neither it nor its snapshots are touched`, async () => {
        const h = harness();
        h.ec2Mock
          .on(DescribeImagesCommand)
          .resolves({ Images: [image('available', { Tags: tags ? [...tags] : undefined })] });

        const out = await activityEnv().run(h.activities.deleteImage, input);

        assert.equal(out.deregistered, false);
        assert.deepEqual(out.deletedSnapshotIds, []);
        assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages']);
      });
    }
  }

  void it('GIVEN a retry after the image was deregistered WHEN deleting THEN the snapshots remembered in heartbeatDetails are still deleted', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', 400));
    h.ec2Mock.on(DeleteSnapshotCommand).resolves({});

    const out = await activityEnv({
      attempt: 2,
      heartbeatDetails: { imageId: IMAGE_ID, snapshotIds: [...SNAPSHOTS] },
    }).run(h.activities.deleteImage, byId);

    assert.deepEqual(out, {
      imageId: IMAGE_ID,
      deregistered: false,
      deletedSnapshotIds: [...SNAPSHOTS],
      note: `image ${IMAGE_ID} was already gone`,
    });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages', 'DeleteSnapshot', 'DeleteSnapshot']);
  });

  void it('GIVEN a snapshot still in use right after deregistration WHEN deleting THEN the attempt fails retryably, and the retry (with its heartbeat) finishes the job', async () => {
    const h = harness();
    let deregistered = false;
    h.ec2Mock.on(DescribeImagesCommand).callsFake(() => {
      if (deregistered) throw awsError('InvalidAMIID.NotFound', 400);
      return Promise.resolve({ Images: [image('available')] });
    });
    h.ec2Mock.on(DeregisterImageCommand).callsFake(() => {
      deregistered = true;
      return Promise.resolve({});
    });
    const inUse = awsError(
      'InvalidSnapshot.InUse',
      400,
      `The snapshot ${SNAPSHOTS[1]} is currently in use by ${IMAGE_ID}`,
    );
    h.ec2Mock
      .on(DeleteSnapshotCommand, { SnapshotId: SNAPSHOTS[0] })
      .resolvesOnce({})
      .rejects(awsError('InvalidSnapshot.NotFound', 400));
    h.ec2Mock.on(DeleteSnapshotCommand, { SnapshotId: SNAPSHOTS[1] }).rejectsOnce(inUse).resolves({});

    const first = activityEnv();
    const err = await errorOf(first.run(h.activities.deleteImage, byId));
    assert.equal(err, inUse, 'InvalidSnapshot.InUse settles by itself: rethrown as is for Temporal to retry');
    assert.ok(!(err instanceof ApplicationFailure));

    const out = await activityEnv({ attempt: 2, heartbeatDetails: first.heartbeats.at(-1) }).run(
      h.activities.deleteImage,
      byId,
    );

    assert.deepEqual(out, {
      imageId: IMAGE_ID,
      deregistered: false,
      deletedSnapshotIds: [SNAPSHOTS[1]],
      note: `image ${IMAGE_ID} was already gone`,
    });
    assert.equal(h.ec2Mock.commandCalls(DeregisterImageCommand).length, 1);
    assert.equal(h.ec2Mock.commandCalls(DeleteSnapshotCommand, { SnapshotId: SNAPSHOTS[1] }).length, 2);
  });

  void it('GIVEN the image or a snapshot vanished meanwhile WHEN deleting THEN NotFound is tolerated', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image('available')] });
    h.ec2Mock.on(DeregisterImageCommand).rejects(awsError('InvalidAMIID.NotFound', 400));
    h.ec2Mock
      .on(DeleteSnapshotCommand, { SnapshotId: SNAPSHOTS[0] })
      .rejects(awsError('InvalidSnapshot.NotFound', 400));
    h.ec2Mock.on(DeleteSnapshotCommand, { SnapshotId: SNAPSHOTS[1] }).resolves({});

    const out = await activityEnv().run(h.activities.deleteImage, byId);

    assert.deepEqual(out, {
      imageId: IMAGE_ID,
      deregistered: false,
      deletedSnapshotIds: [SNAPSHOTS[1]],
      note: `image ${IMAGE_ID} was already gone`,
    });
  });

  void it('GIVEN DeregisterImage is refused for lack of permission WHEN deleting THEN AwsUnauthorized, non-retryable, and no snapshot is deleted', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image('available')] });
    h.ec2Mock
      .on(DeregisterImageCommand)
      .rejects(awsError('UnauthorizedOperation', 403, 'You are not authorized'));

    await nonRetryableFailure(
      activityEnv().run(h.activities.deleteImage, byId),
      FailureType.AwsUnauthorized,
      `deregistering ${IMAGE_ID}`,
      'UnauthorizedOperation',
    );
    assert.equal(h.ec2Mock.commandCalls(DeleteSnapshotCommand).length, 0);
  });
});
