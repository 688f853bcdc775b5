/**
 * Tier 3: imageFromInstance end to end. The Temporal dev server and moto_server are started here,
 * the real worker (buildWorker, default poll policy) talks to moto as it would to EC2, and the test
 * drives it through the client library and checks the sandbox from outside with its own EC2 client.
 *
 * moto makes images `available` at once and cannot fail one, and answers every call at once. Where a
 * test needs more, a middleware on the worker's EC2 clients (`hookWorkerAws`) reports another state
 * for the test's image (`pending`, `failed`) or holds one call back so a cancellation arrives while
 * it is in flight. Everything else is moto's answer.
 *
 * AMIFLOW_RECORD_HISTORIES=1 also saves each run's history under test/replay/histories/ (tier 4).
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { ImageFromInstanceInput, WorkflowProgress, AmiflowClient } from '../../client';
import { imageWorkflowId } from '../../client';
import { FailureType, MANAGED_BY_VALUE, TAG, WORKFLOW_TYPES } from '../../workflows/contracts';
import { recordHistory } from '../support/histories';
import type { HeldCall, WorkerAwsHooks } from '../support/sandbox-ec2';
import {
  SANDBOX_REGION,
  createImageDirectly,
  findImage,
  imagesTagged,
  instanceState,
  launchInstance,
  observeInstanceState,
  observedDowntimeSeconds,
  ownImages,
  ownSnapshots,
  snapshotIdsOfImage,
  snapshotsByIds,
  tagMap,
} from '../support/sandbox-ec2';
import { withSandboxWorker } from '../support/sandbox-worker';
import { eventually, recordedFailure, recordedResult, stepRunning } from './fixtures';
import { useE2eStack } from './stack';

const USER_TAGS = { Team: 'platform', 'cost-center': '4711' };

const stack = useE2eStack({ stockAmi: true });

/**
 * Runs `fn` with a real worker on a fresh task queue, against moto; the worker stops afterwards.
 * `hooks` act on the worker's EC2 clients (see hookWorkerAws); untouched, they change nothing.
 */
async function withWorker<T>(
  name: string,
  fn: (client: AmiflowClient, hooks: WorkerAwsHooks) => Promise<T>,
): Promise<T> {
  return withSandboxWorker(stack.env, stack.moto.endpoint, name, fn);
}

/**
 * Waits until the workflow has handled its cancellation request (a workflow task completed after
 * it), and returns the activities it scheduled in response.
 */
async function cancellationHandled(client: AmiflowClient, workflowId: string): Promise<string[]> {
  return eventually('the workflow to handle the cancellation', async () => {
    const events = (await client.handle(workflowId).fetchHistory()).events ?? [];
    const requested = events.findIndex((e) => e.workflowExecutionCancelRequestedEventAttributes);
    if (requested < 0) return undefined;
    const after = events.slice(requested);
    if (!after.some((e) => e.workflowTaskCompletedEventAttributes)) return undefined;
    return after.flatMap((e) => {
      const type = e.activityTaskScheduledEventAttributes?.activityType?.name;
      return type ? [type] : [];
    });
  });
}

function input(instanceId: string, mode: ImageFromInstanceInput['mode'], imageName: string) {
  return {
    region: SANDBOX_REGION,
    instanceId,
    imageName,
    description: `amiflow e2e (${mode})`,
    tags: USER_TAGS,
    mode,
  } satisfies ImageFromInstanceInput;
}

/**
 * Cancels a run once `held` keeps one of its EC2 calls in flight, lets the call go as late as the
 * workflow allows (see the two tests below), and returns the run's failure and the activities it
 * scheduled in response to the cancellation.
 */
async function cancelWhileHeld(client: AmiflowClient, workflowId: string, held: HeldCall, history: string) {
  await held.entered;
  await client.cancel(workflowId);
  const scheduledOnCancel = await cancellationHandled(client, workflowId);
  if (scheduledOnCancel.length > 0) await client.result(workflowId).catch(() => undefined);
  held.release();
  return { failure: await recordedFailure(client, workflowId, history), scheduledOnCancel };
}

/** The image carries the user's tags and every amiflow tag naming this run. */
function assertTagged(
  tags: Record<string, string>,
  run: { workflowId: string; runId: string },
  extra: object,
) {
  assert.deepEqual(
    { ...tags },
    {
      ...USER_TAGS,
      [TAG.managedBy]: MANAGED_BY_VALUE,
      [TAG.workflowId]: run.workflowId,
      [TAG.runId]: run.runId,
      [TAG.workflowType]: WORKFLOW_TYPES.imageFromInstance,
      ...extra,
    },
  );
}

/** Nothing the run made is left: no image with its tag, no new image or snapshot in the account. */
async function assertNothingLeft(
  workflowId: string,
  before: { imageIds: string[]; snapshotIds: string[] },
  madeSnapshotIds: string[],
) {
  assert.deepEqual(await imagesTagged(stack.ec2, TAG.workflowId, workflowId), []);
  assert.deepEqual((await ownImages(stack.ec2)).map((i) => i.ImageId).sort(), before.imageIds);
  assert.deepEqual((await ownSnapshots(stack.ec2)).map((s) => s.SnapshotId).sort(), before.snapshotIds);
  assert.deepEqual(await snapshotsByIds(stack.ec2, madeSnapshotIds), []);
}

async function accountContents() {
  return {
    imageIds: (await ownImages(stack.ec2)).map((i) => i.ImageId ?? '').sort(),
    snapshotIds: (await ownSnapshots(stack.ec2)).map((s) => s.SnapshotId ?? '').sort(),
  };
}

void describe('imageFromInstance end to end (dev server + moto + real worker + client)', () => {
  beforeEach(async () => {
    await stack.moto.reset();
  });

  for (const mode of ['stop', 'reboot', 'no-reboot'] as const) {
    void it(`GIVEN a running instance WHEN it is imaged in '${mode}' mode THEN the image is available and tagged, its snapshots tagged, the instance running`, async () => {
      const instanceId = await launchInstance(stack.ec2, stack.stockAmi);
      const imageName = `amiflow-e2e-${mode}-${instanceId}`;

      const progressSeen: WorkflowProgress[] = [];
      const { value, changes } = await withWorker(`e2e-${mode}`, (client) =>
        observeInstanceState(stack.ec2, instanceId, async () => {
          const run = await client.startImageFromInstance(input(instanceId, mode, imageName));
          const result = await client.watch(run.workflowId, (p) => progressSeen.push(p), 100);
          await recordHistory(client.handle(run.workflowId), `image-from-instance-${mode}`);
          return { result, run };
        }),
      );
      const { result, run } = value;

      // THEN the result describes what happened
      assert.equal(result.imageName, imageName);
      assert.equal(result.mode, mode);
      assert.equal(result.consistency, mode === 'no-reboot' ? 'crash-consistent' : 'consistent');
      assert.equal(result.instanceInitialState, 'running');
      assert.equal(result.instanceFinalState, 'running');
      assert.ok(result.snapshotIds.length > 0, 'the result names the snapshots');

      // THEN the instance is running, as the sandbox sees it
      assert.equal(await instanceState(stack.ec2, instanceId), 'running');

      // THEN the image is available with the user's tags and amiflow's
      const image = await findImage(stack.ec2, result.imageId);
      assert.ok(image, `image ${result.imageId} exists`);
      assert.equal(image.State, 'available');
      assert.equal(image.Name, imageName);
      assert.equal(image.SourceInstanceId, instanceId);
      const amiflowTags = { [TAG.sourceInstance]: instanceId, [TAG.consistency]: result.consistency };
      assertTagged(tagMap(image.Tags), run, amiflowTags);

      // THEN each snapshot of the image carries the same tags
      assert.deepEqual([...result.snapshotIds].sort(), snapshotIdsOfImage(image).sort());
      const snapshots = await snapshotsByIds(stack.ec2, result.snapshotIds);
      assert.equal(snapshots.length, result.snapshotIds.length);
      for (const snapshot of snapshots) assertTagged(tagMap(snapshot.Tags), run, amiflowTags);

      // THEN progress went through the steps and ended succeeded
      assert.ok(
        progressSeen.some((p) => p.phase === 'running'),
        'progress was seen while running',
      );
      const final = progressSeen.at(-1);
      assert.equal(final?.phase, 'succeeded');
      assert.deepEqual(final?.compensations, []);
      const expectedSkipped = mode === 'stop' ? [] : ['stop instance', 'start instance'];
      assert.deepEqual(
        final?.steps.filter((s) => s.state === 'skipped').map((s) => s.name),
        expectedSkipped,
      );
      assert.ok(final?.steps.every((s) => s.state === 'done' || s.state === 'skipped'));
      assert.equal(final?.resources.imageId, result.imageId);

      const observed = observedDowntimeSeconds(changes);
      if (mode === 'stop') {
        // THEN the downtime is measured both by the workflow and, independently, from outside
        assert.ok(result.downtimeSeconds > 0, 'stop mode reports a downtime');
        assert.ok(
          observed !== undefined,
          `the test saw the instance stop and run again: ${JSON.stringify(changes)}`,
        );
        assert.ok(
          observed <= result.downtimeSeconds + 1,
          `observed ${observed} s fits in the reported ${result.downtimeSeconds} s`,
        );
        console.log(
          `e2e stop-mode downtime: ${result.downtimeSeconds.toFixed(2)} s (workflow result), ` +
            `${observed.toFixed(2)} s (observed by polling DescribeInstances every 25 ms); ` +
            `state changes: ${changes.map((c) => c.state).join(' → ')}`,
        );
      } else {
        // THEN the instance was never seen anything but running (moto does not model EC2's reboot)
        assert.equal(result.downtimeSeconds, 0);
        assert.deepEqual(
          changes.map((c) => c.state),
          ['running'],
        );
      }
    });
  }

  void it("GIVEN a stopped instance WHEN it is imaged in 'stop' mode THEN it stays stopped and the image is consistent", async () => {
    const instanceId = await launchInstance(stack.ec2, stack.stockAmi, { stopped: true });
    const imageName = `amiflow-e2e-stopped-${instanceId}`;

    const { value, changes } = await withWorker('e2e-stopped', (client) =>
      observeInstanceState(stack.ec2, instanceId, async () => {
        const run = await client.startImageFromInstance(input(instanceId, 'stop', imageName));
        const result = await recordedResult(client, run.workflowId, 'image-from-instance-stopped-instance');
        return { result, run };
      }),
    );
    const { result, run } = value;

    assert.equal(result.instanceInitialState, 'stopped');
    assert.equal(result.instanceFinalState, 'stopped');
    assert.equal(result.consistency, 'consistent');
    assert.equal(result.downtimeSeconds, 0);
    assert.equal(await instanceState(stack.ec2, instanceId), 'stopped');
    assert.deepEqual(
      changes.map((c) => c.state),
      ['stopped'],
      'the instance was never started',
    );
    const image = await findImage(stack.ec2, result.imageId);
    assert.equal(image?.State, 'available');
    assertTagged(tagMap(image?.Tags), run, {
      [TAG.sourceInstance]: instanceId,
      [TAG.consistency]: 'consistent',
    });
  });

  void it('GIVEN an image name another image already has WHEN a run asks for it THEN it fails with ImageNameTaken, the instance is never stopped and the other image is untouched', async () => {
    const instanceId = await launchInstance(stack.ec2, stack.stockAmi);
    const imageName = `amiflow-e2e-taken-${instanceId}`;
    const otherImageId = await createImageDirectly(
      stack.ec2,
      await launchInstance(stack.ec2, stack.stockAmi),
      imageName,
    );
    const before = await accountContents();

    const { value, changes } = await withWorker('e2e-name-taken', (client) =>
      observeInstanceState(stack.ec2, instanceId, async () => {
        const { workflowId } = await client.startImageFromInstance(input(instanceId, 'stop', imageName));
        const failure = await recordedFailure(client, workflowId, 'image-from-instance-name-taken');
        return { failure, workflowId, progress: await client.progress(workflowId) };
      }),
    );
    const { failure, workflowId, progress } = value;

    assert.equal(failure.failureType, FailureType.ImageNameTaken);
    assert.equal(failure.cancelled, false);
    assert.match(failure.message, new RegExp(`'${imageName}' already exists .*\\(${otherImageId}\\)`));
    assert.equal(await instanceState(stack.ec2, instanceId), 'running');
    assert.deepEqual(
      changes.map((c) => c.state),
      ['running'],
      'the instance was never stopped',
    );
    assert.equal(
      (await findImage(stack.ec2, otherImageId))?.State,
      'available',
      'the other image is untouched',
    );
    await assertNothingLeft(workflowId, before, []);
    assert.equal(progress.phase, 'failed');
    assert.equal(progress.steps.find((s) => s.name === 'check image name')?.state, 'failed');
    assert.equal(progress.steps.find((s) => s.name === 'stop instance')?.state, 'pending');
  });

  void it("GIVEN an image that ends 'failed' WHEN imaged in 'stop' mode THEN the run fails with AWS's reason, the image and its snapshots are deleted and the instance runs", async () => {
    const instanceId = await launchInstance(stack.ec2, stack.stockAmi);
    const imageName = `amiflow-e2e-failed-${instanceId}`;
    const before = await accountContents();

    const { failure, workflowId, progress } = await withWorker('e2e-image-failed', async (client, hooks) => {
      hooks.setImageState({
        imageName,
        state: 'failed',
        reason: { Code: 'Client.InternalError', Message: 'snapshot copy failed (injected by the test)' },
      });
      const { workflowId } = await client.startImageFromInstance(input(instanceId, 'stop', imageName));
      const failure = await recordedFailure(client, workflowId, 'image-from-instance-image-failed');
      return { failure, workflowId, progress: await client.progress(workflowId) };
    });

    assert.equal(failure.failureType, FailureType.ImageFailed);
    assert.match(failure.message, /ended in state 'failed': Client\.InternalError: snapshot copy failed/);
    assert.equal(await instanceState(stack.ec2, instanceId), 'running');
    const imageId = progress.resources.imageId;
    assert.ok(imageId, 'the run had made an image');
    assert.equal(await findImage(stack.ec2, imageId), undefined, `image ${imageId} is deregistered`);
    await assertNothingLeft(workflowId, before, []);
    assert.equal(progress.phase, 'failed');
    assert.deepEqual(progress.compensations, [{ name: 'delete image and snapshots', state: 'done' }]);
    assert.equal(progress.steps.find((s) => s.name === 'create image')?.state, 'compensated');
  });

  void it("GIVEN a 'stop' run waiting for its image WHEN it is cancelled THEN the image and its snapshots are deleted, the instance runs and the run ends cancelled", async () => {
    const instanceId = await launchInstance(stack.ec2, stack.stockAmi);
    const imageName = `amiflow-e2e-cancel-${instanceId}`;
    const before = await accountContents();

    const { failure, workflowId, progress, imageId, madeSnapshotIds, status } = await withWorker(
      'e2e-cancel',
      async (client, hooks) => {
        // GIVEN the image stays `pending`, so the run is waiting for it
        hooks.setImageState({ imageName, state: 'pending' });
        const { workflowId } = await client.startImageFromInstance(input(instanceId, 'stop', imageName));
        const { imageId } = (await stepRunning(client, workflowId, 'wait for image available')).resources;
        assert.ok(imageId, 'the run waits for the image it made');
        const image = await findImage(stack.ec2, imageId);
        assert.ok(image, 'the image exists before the cancellation');
        const madeSnapshotIds = snapshotIdsOfImage(image);
        assert.ok(madeSnapshotIds.length > 0);

        // WHEN the run is cancelled
        await client.cancel(workflowId);
        const failure = await recordedFailure(client, workflowId, 'image-from-instance-cancelled');
        const progress = await client.progress(workflowId);
        const status = (await client.handle(workflowId).describe()).status.name;
        return { failure, workflowId, progress, imageId, madeSnapshotIds, status };
      },
    );

    assert.equal(failure.cancelled, true);
    assert.equal(status, 'CANCELLED');
    assert.equal(progress.phase, 'cancelled');
    assert.equal(await findImage(stack.ec2, imageId), undefined, `image ${imageId} is deregistered`);
    await assertNothingLeft(workflowId, before, madeSnapshotIds);
    assert.equal(await instanceState(stack.ec2, instanceId), 'running');
    assert.ok(
      progress.compensations.some((c) => c.name === 'delete image and snapshots' && c.state === 'done'),
      JSON.stringify(progress.compensations),
    );
    assert.ok(
      progress.compensations.every((c) => c.state === 'done'),
      JSON.stringify(progress.compensations),
    );
  });

  // The next two play the adversary with a call in flight when the cancellation arrives: the test
  // lets the call land as late as the workflow allows (after the run has closed, if the run does not
  // wait for it). Whatever the timing, the instance must end as it started and nothing may be left.

  void it("GIVEN a StopInstances call in flight WHEN the 'stop' run is cancelled THEN the instance still ends running", async () => {
    const instanceId = await launchInstance(stack.ec2, stack.stockAmi);
    const imageName = `amiflow-e2e-cancel-stop-${instanceId}`;

    const { failure, scheduledOnCancel } = await withWorker('e2e-cancel-stop', async (client, hooks) => {
      const stop = hooks.hold('StopInstancesCommand');
      const { workflowId } = await client.startImageFromInstance(input(instanceId, 'stop', imageName));
      return cancelWhileHeld(client, workflowId, stop, 'image-from-instance-cancelled-during-stop');
    });

    assert.equal(failure.cancelled, true);
    assert.equal(await instanceState(stack.ec2, instanceId), 'running');
    assert.deepEqual(await ownImages(stack.ec2), []);
    assert.deepEqual(scheduledOnCancel, [], 'nothing is undone while the stop is still in flight');
  });

  void it('GIVEN a CreateImage call in flight WHEN the run is cancelled THEN the image it makes is deleted too', async () => {
    const instanceId = await launchInstance(stack.ec2, stack.stockAmi);
    const imageName = `amiflow-e2e-cancel-create-${instanceId}`;
    const before = await accountContents();

    const { failure, workflowId, scheduledOnCancel } = await withWorker(
      'e2e-cancel-create',
      async (client, hooks) => {
        const create = hooks.hold('CreateImageCommand');
        // Started directly, for one option the client library does not expose: while a local activity
        // runs, the workflow sees new events (the cancellation) only at a workflow task heartbeat, at
        // 80% of the task timeout: 1.6 s here instead of 8 s.
        const runInput = input(instanceId, 'no-reboot', imageName);
        const workflowId = imageWorkflowId(runInput);
        await stack.env.client.workflow.start(WORKFLOW_TYPES.imageFromInstance, {
          args: [runInput],
          taskQueue: client.taskQueue,
          workflowId,
          workflowTaskTimeout: '2s',
        });
        const history = 'image-from-instance-cancelled-during-create';
        return { workflowId, ...(await cancelWhileHeld(client, workflowId, create, history)) };
      },
    );

    assert.equal(failure.cancelled, true);
    await assertNothingLeft(workflowId, before, []);
    assert.equal(await instanceState(stack.ec2, instanceId), 'running');
    assert.deepEqual(scheduledOnCancel, [], 'nothing is undone while CreateImage is still in flight');
  });
});
