/**
 * EC2's eventual consistency: an id this run received from AWS that Describe*, CreateTags,
 * DeregisterImage or TerminateInstances do not know yet is "not visible yet" within the consistency
 * window (a retryable NotVisibleYet failure), never "gone" and never "none made" (activities/consistency.ts).
 * Every test runs at the virtual clock's T0 with the step scheduled at T0 (inside the window) unless it says otherwise.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Image } from '@aws-sdk/client-ec2';
import {
  CopyImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/activity';
import type { CopyImageActivityInput } from '../../activities/copying';
import { DEFAULT_CONSISTENCY_WINDOW_MS, parseConsistencyWindow } from '../../activities/consistency';
import type { DeleteImageInput } from '../../activities/images';
import { FailureType, TAG, WORKFLOW_TYPES } from '../../workflows/contracts';
import { awsError, errorOf } from './failures';
import {
  IMAGE_ID,
  IMAGE_NAME,
  REGION,
  RUN_ID,
  SNAPSHOTS,
  T0,
  TARGET,
  WORKFLOW_ID,
  image,
  reservation,
} from './fixtures';
import type { Harness } from './harness';
import { activityEnv, commandNames, harness } from './harness';

const MINUTE = 60_000;
/** The step was scheduled at T0: the virtual clock starts there, so it is inside the window. */
const fresh = { scheduledTimestampMs: T0 };
const nameRef = { target: TARGET, imageName: IMAGE_NAME, workflowId: WORKFLOW_ID, runId: RUN_ID };
const byId: DeleteImageInput = { ...nameRef, imageId: IMAGE_ID };
const NEW_ID = 'i-0bbbbbbbbbbbbbbb1';
const owner = { workflowId: WORKFLOW_ID, runId: RUN_ID };
/** The compensation of a launch: terminate NEW_ID if this run launched it. */
const undoNewInstance = { target: TARGET, owner, instanceId: NEW_ID };

/** The undo fails its first attempt and, retried 5 s later, deregisters the image and deletes its snapshots. */
async function undoneOnRetry(h: Harness, input: DeleteImageInput): Promise<void> {
  h.ec2Mock.on(DeregisterImageCommand).resolves({});
  h.ec2Mock.on(DeleteSnapshotCommand).resolves({});

  await errorOf(activityEnv(fresh).run(h.activities.deleteImage, input));
  h.clock.advance(5_000);
  const out = await activityEnv({ ...fresh, attempt: 2 }).run(h.activities.deleteImage, input);

  assert.deepEqual(out, { imageId: IMAGE_ID, deregistered: true, deletedSnapshotIds: [...SNAPSHOTS] });
}

async function notVisibleYet(p: Promise<unknown>, ...fragments: string[]): Promise<void> {
  const err = await errorOf(p);
  assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
  assert.equal(err.type, FailureType.NotVisibleYet, err.message);
  assert.equal(err.nonRetryable, false, 'not visible yet must be retried by Temporal');
  for (const f of fragments) assert.ok(err.message.includes(f), `${err.message} should contain ${f}`);
}

void describe('consistency window setting', () => {
  void it('GIVEN AMIFLOW_CONSISTENCY_WINDOW values WHEN parsed THEN seconds by default, units honoured, junk refused', () => {
    assert.equal(parseConsistencyWindow(undefined), DEFAULT_CONSISTENCY_WINDOW_MS);
    assert.equal(parseConsistencyWindow(''), DEFAULT_CONSISTENCY_WINDOW_MS);
    assert.equal(parseConsistencyWindow('10'), 10_000);
    assert.equal(parseConsistencyWindow('90s'), 90_000);
    assert.equal(parseConsistencyWindow('3m'), 180_000);
    assert.equal(parseConsistencyWindow('500ms'), 500);
    assert.throws(() => parseConsistencyWindow('soon'), /AMIFLOW_CONSISTENCY_WINDOW=soon is not a duration/);
  });
});

void describe('deleteImage within the consistency window', () => {
  void it('GIVEN the handed image id is NotFound right after CreateImage WHEN undoing THEN NotVisibleYet (retryable), nothing reported gone', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', 400));

    await notVisibleYet(
      activityEnv(fresh).run(h.activities.deleteImage, byId),
      IMAGE_ID,
      'consistency window',
    );
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeImages']);
  });

  void it('GIVEN the handed id becomes visible on a later attempt WHEN undoing again THEN it is deregistered by that id and its snapshots deleted', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand, { ImageIds: [IMAGE_ID] })
      .rejectsOnce(awsError('InvalidAMIID.NotFound', 400))
      .resolves({ Images: [image('pending')] });

    await undoneOnRetry(h, byId);
    assert.deepEqual(h.ec2Mock.commandCalls(DeregisterImageCommand)[0]?.args[0].input, { ImageId: IMAGE_ID });
  });

  void it('GIVEN the handed id is still NotFound once the window has passed WHEN undoing THEN it is reported already gone, in words', async () => {
    const h = harness();
    h.deps.consistencyWindowMs = MINUTE;
    h.ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', 400));
    h.clock.advance(MINUTE + 1);

    const out = await activityEnv(fresh).run(h.activities.deleteImage, byId);

    assert.deepEqual(out, {
      imageId: IMAGE_ID,
      deregistered: false,
      deletedSnapshotIds: [],
      note: `image ${IMAGE_ID} was not found after the consistency window: already gone`,
    });
  });

  void it('GIVEN no id was handed and the name lookup finds nothing yet WHEN undoing THEN NotVisibleYet: the lookup is retried until the window has passed', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });

    await notVisibleYet(activityEnv(fresh).run(h.activities.deleteImage, nameRef), `'${IMAGE_NAME}'`);
  });

  void it('GIVEN the handed image is visible but its tags are not yet WHEN undoing THEN NotVisibleYet, nothing deregistered', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image('pending', { Tags: [] })] });

    await notVisibleYet(activityEnv(fresh).run(h.activities.deleteImage, byId), `tags of image ${IMAGE_ID}`);
    assert.equal(h.ec2Mock.commandCalls(DeregisterImageCommand).length, 0);
  });

  void it('GIVEN no id was handed and the image found by name has no tags yet WHEN undoing THEN NotVisibleYet, not "none made" and nothing deregistered', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image('pending', { Tags: [] })] });

    await notVisibleYet(
      activityEnv(fresh).run(h.activities.deleteImage, nameRef),
      `tags of image ${IMAGE_ID}`,
      `'${IMAGE_NAME}'`,
    );
    assert.equal(h.ec2Mock.commandCalls(DeregisterImageCommand).length, 0);
  });

  void it("GIVEN the image found by name shows this run's tags on a later attempt WHEN undoing again THEN it is deregistered and its snapshots deleted", async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand)
      .resolvesOnce({ Images: [image('pending', { Tags: [] })] })
      .resolves({ Images: [image('available')] });

    await undoneOnRetry(h, nameRef);
  });

  void it('GIVEN the image found by name is still untagged once the window has passed WHEN undoing THEN it is left alone, in words', async () => {
    const h = harness();
    h.deps.consistencyWindowMs = MINUTE;
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image('available', { Tags: [] })] });
    h.clock.advance(MINUTE + 1);

    const out = await activityEnv(fresh).run(h.activities.deleteImage, nameRef);

    assert.equal(out.deregistered, false);
    assert.match(out.note ?? '', /is not tagged as this run's: left alone/);
    assert.equal(h.ec2Mock.commandCalls(DeregisterImageCommand).length, 0);
  });

  void it("GIVEN the image found by name is tagged as another run's WHEN undoing inside the window THEN it is left alone at once", async () => {
    const h = harness();
    const other = image('available', {
      Tags: [
        { Key: TAG.workflowId, Value: 'someone-else' },
        { Key: TAG.runId, Value: 'another-run' },
      ],
    });
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [other] });

    const out = await activityEnv(fresh).run(h.activities.deleteImage, nameRef);

    assert.equal(out.deregistered, false);
    assert.match(out.note ?? '', /left alone/);
    assert.equal(h.ec2Mock.commandCalls(DeregisterImageCommand).length, 0);
  });

  void it('GIVEN DescribeImages shows the image but DeregisterImage answers NotFound WHEN undoing THEN NotVisibleYet, and the retry deregisters it', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image('available')] });
    h.ec2Mock.on(DeregisterImageCommand).rejectsOnce(awsError('InvalidAMIID.NotFound', 400)).resolves({});
    h.ec2Mock.on(DeleteSnapshotCommand).resolves({});
    const first = activityEnv(fresh);

    await notVisibleYet(first.run(h.activities.deleteImage, byId), 'to deregister');
    assert.equal(
      h.ec2Mock.commandCalls(DeleteSnapshotCommand).length,
      0,
      'no snapshot deleted under a live image',
    );
    const out = await activityEnv({ ...fresh, attempt: 2, heartbeatDetails: first.heartbeats.at(-1) }).run(
      h.activities.deleteImage,
      byId,
    );

    assert.equal(out.deregistered, true);
    assert.deepEqual(out.deletedSnapshotIds, [...SNAPSHOTS]);
  });
});

void describe('copyImage: the copy id is never lost', () => {
  const COPY_ID = 'ami-0c0c0c0c0c0c0c0c1';
  const copyInput: CopyImageActivityInput = {
    source: { region: REGION, imageId: IMAGE_ID },
    destination: { region: 'eu-central-1' },
    imageName: IMAGE_NAME,
    tags: {},
    workflowId: WORKFLOW_ID,
    runId: RUN_ID,
    workflowType: WORKFLOW_TYPES.copyImage,
    purpose: 'copy',
  };

  for (const [what, err] of [
    ['NotFound (the new id is not visible to CreateTags yet)', awsError('InvalidAMIID.NotFound', 400)],
    ['throttling', awsError('RequestLimitExceeded', 503)],
  ] as const) {
    void it(`GIVEN CreateTags right after CopyImage fails with ${what} WHEN copying THEN the copy id is returned (tags pending), not a failure`, async () => {
      const h = harness();
      h.ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
      h.ec2Mock.on(CopyImageCommand).resolves({ ImageId: COPY_ID });
      h.ec2Mock.on(CreateTagsCommand).rejects(err);

      const out = await activityEnv(fresh).run(h.activities.copyImage, copyInput);

      assert.equal(out.imageId, COPY_ID);
      assert.equal(out.created, true);
      assert.equal(out.tagsPending, err.name);
    });
  }

  void it('GIVEN a copy without the run tags WHEN its snapshots are tagged after the wait THEN the copy itself is tagged too', async () => {
    const h = harness();
    const untagged: Image = image('available', { ImageId: COPY_ID, Tags: [] });
    h.ec2Mock.on(DescribeImagesCommand, { ImageIds: [COPY_ID] }).resolves({ Images: [untagged] });
    h.ec2Mock.on(CreateTagsCommand).resolves({});
    const tags = { [TAG.workflowId]: WORKFLOW_ID, [TAG.runId]: RUN_ID };

    await activityEnv(fresh).run(h.activities.tagSnapshots, { target: TARGET, imageId: COPY_ID, tags });

    assert.deepEqual(h.ec2Mock.commandCalls(CreateTagsCommand)[0]?.args[0].input.Resources, [
      COPY_ID,
      ...SNAPSHOTS,
    ]);
  });

  void it('GIVEN the image is NotFound when its snapshots are to be tagged, inside the window WHEN tagging THEN NotVisibleYet (retryable)', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', 400));

    await notVisibleYet(
      activityEnv(fresh).run(h.activities.tagSnapshots, { target: TARGET, imageId: IMAGE_ID, tags: {} }),
      IMAGE_ID,
    );
  });
});

void describe('terminateLaunchedInstance within the consistency window', () => {
  const ours = {
    InstanceId: NEW_ID,
    State: { Name: 'pending' as const },
    Tags: [
      { Key: TAG.workflowId, Value: WORKFLOW_ID },
      { Key: TAG.runId, Value: RUN_ID },
    ],
  };

  void it('GIVEN the handed instance id is NotFound right after RunInstances WHEN undoing THEN NotVisibleYet, never "no instance launched"', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeInstancesCommand).rejects(awsError('InvalidInstanceID.NotFound', 400));

    await notVisibleYet(
      activityEnv(fresh).run(h.activities.terminateLaunchedInstance, undoNewInstance),
      NEW_ID,
    );
    assert.equal(h.ec2Mock.commandCalls(TerminateInstancesCommand).length, 0);
  });

  void it('GIVEN no id was handed and the tag lookup finds nothing yet WHEN undoing THEN NotVisibleYet', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });

    await notVisibleYet(
      activityEnv(fresh).run(h.activities.terminateLaunchedInstance, { target: TARGET, owner }),
    );
  });

  void it('GIVEN the instance becomes visible with the run tags on the retry WHEN undoing THEN it is terminated by its id', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeInstancesCommand, { InstanceIds: [NEW_ID] })
      .rejectsOnce(awsError('InvalidInstanceID.NotFound', 400))
      .resolves(reservation(ours));
    h.ec2Mock.on(DescribeInstanceAttributeCommand).resolves({ DisableApiTermination: { Value: false } });
    h.ec2Mock.on(TerminateInstancesCommand).resolves({});
    const input = { target: TARGET, owner, instanceId: NEW_ID };

    await errorOf(activityEnv(fresh).run(h.activities.terminateLaunchedInstance, input));
    h.clock.advance(5_000);
    const out = await activityEnv({ ...fresh, attempt: 2 }).run(
      h.activities.terminateLaunchedInstance,
      input,
    );

    assert.deepEqual(out, { instanceId: NEW_ID, terminated: true });
    assert.deepEqual(h.ec2Mock.commandCalls(TerminateInstancesCommand)[0]?.args[0].input, {
      InstanceIds: [NEW_ID],
    });
  });

  void it("GIVEN the handed instance is visible but carries another run's tags WHEN undoing THEN it is left alone", async () => {
    const h = harness();
    const theirs = { ...ours, Tags: [{ Key: TAG.runId, Value: 'another-run' }] };
    h.ec2Mock.on(DescribeInstancesCommand).resolves(reservation(theirs));

    const out = await activityEnv(fresh).run(h.activities.terminateLaunchedInstance, undoNewInstance);

    assert.deepEqual(out, {
      instanceId: NEW_ID,
      terminated: false,
      note: 'not launched by this run: left alone',
    });
    assert.equal(h.ec2Mock.commandCalls(TerminateInstancesCommand).length, 0);
  });

  void it('GIVEN DescribeInstances shows it but TerminateInstances answers NotFound WHEN undoing THEN NotVisibleYet', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeInstancesCommand).resolves(reservation(ours));
    h.ec2Mock.on(DescribeInstanceAttributeCommand).resolves({ DisableApiTermination: { Value: false } });
    h.ec2Mock.on(TerminateInstancesCommand).rejects(awsError('InvalidInstanceID.NotFound', 400));

    await notVisibleYet(
      activityEnv(fresh).run(h.activities.terminateLaunchedInstance, undoNewInstance),
      'to terminate',
    );
  });
});
