/**
 * migrateInstance: move an instance to another Availability Zone. An instance cannot change its AZ,
 * so: image it (`imageFromInstance` in `stop` mode, as a child workflow), launch an equivalent
 * instance from the image in the target AZ, wait until it runs and passes both status checks, then
 * deal with the source as asked and delete the intermediate image.
 *
 * Order, and why:
 * - Everything that could make the move unfaithful is refused first, read-only (`plan migration`).
 * - Source action `stop`/`terminate`: the source is stopped by this workflow before it is imaged, so
 *   the child finds it stopped and leaves it stopped: nothing is written to the source after the
 *   image (no split brain), and the workload goes down once. Source action `keep`: the child stops
 *   it, images it and starts it again.
 * - The source is never terminated before the new instance passed its checks; until then every
 *   step is undone on failure or cancellation (terminate the new instance, move the Elastic IP back,
 *   delete the image, start the source again). Once the new instance passed its checks (and took
 *   the Elastic IP) the migration is committed: the rest runs to its end, cancellation or not.
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import {
  CancellationScope,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { LaunchInput, MigrationPlan } from '../activities/launch';
import type {
  AwsTarget,
  ImageFromInstanceInput,
  MigrateInstanceInput,
  MigrateInstanceResult,
  Tags,
} from '../contracts';
import {
  DEFAULT_MIGRATION_TIMEOUTS,
  MANAGED_BY_VALUE,
  SearchAttr,
  TAG,
  WORKFLOW_TYPES,
  progressQuery,
} from '../contracts';
import type { UndoHandle } from './compensation';
import { Compensations } from './compensation';
import { imageFromInstance } from './image-from-instance';
import { parseMigrateInstanceInput } from './migrate-validation';
import {
  compensationCall,
  fastAwsCall,
  instanceWait,
  settledAwsActivity,
  settledAwsCall,
  settledInstanceWait,
  statusChecksWait,
} from './presets';
import { Progress, errorMessage } from './progress';
import { parsedOrFail } from './input';

export const MIGRATE_INSTANCE_STEPS = [
  'plan migration',
  'stop source',
  'image source',
  'launch instance',
  'wait for status checks',
  'copy volume tags',
  'move Elastic IP',
  'stop new instance',
  'handle source',
  'delete intermediate image',
] as const;

/** The child imageFromInstance run: one per migration run, found again under this id. */
export function imageChildWorkflowId(migrationWorkflowId: string): string {
  return `${migrationWorkflowId}/image`;
}

function local(summary: string, options: LocalActivityOptions = fastAwsCall) {
  return { ...options, summary };
}
function remote(summary: string, options: ActivityOptions) {
  return { ...options, summary };
}

const la = proxyLocalActivities<Activities>(fastAwsCall);
const act = proxyActivities<Activities>(compensationCall);

export async function migrateInstance(rawInput: MigrateInstanceInput): Promise<MigrateInstanceResult> {
  const progress = new Progress(WORKFLOW_TYPES.migrateInstance, MIGRATE_INSTANCE_STEPS);
  setHandler(progressQuery, () => progress.record);
  const startedAt = new Date().toISOString();

  const input = parsedOrFail(parseMigrateInstanceInput, rawInput, progress);

  const { workflowId, runId } = workflowInfo();
  const target: AwsTarget = {
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
  };
  const sourceId = input.instanceId;
  const source = { target, instanceId: sourceId };
  const timeouts = { ...DEFAULT_MIGRATION_TIMEOUTS, ...input.timeouts };
  const deadline = (seconds: number) => Date.now() + seconds * 1000;
  const owner = { workflowId, runId };
  const ownerTags: Tags = {
    [TAG.managedBy]: MANAGED_BY_VALUE,
    [TAG.workflowId]: workflowId,
    [TAG.runId]: runId,
    [TAG.workflowType]: WORKFLOW_TYPES.migrateInstance,
    [TAG.sourceInstance]: sourceId,
  };
  const withSearchAttributes = workflowInfo().typedSearchAttributes.get(SearchAttr.instanceId) !== undefined;
  const childId = imageChildWorkflowId(workflowId);
  const comp = new Compensations(progress);
  progress.resource('sourceInstanceId', sourceId);

  const result = await comp.guard(async () => {
    // 1. Read everything, refuse what cannot move faithfully. Nothing is changed before this passes.
    const { plan, imageName } = await progress.run('plan migration', async () => {
      const where = input.targetAvailabilityZone ?? input.overrides?.subnetId ?? '?';
      const plan: MigrationPlan = await la.planMigration.executeWithOptions(
        local(`read ${sourceId} and plan its launch in ${where}`),
        [
          {
            target,
            instanceId: sourceId,
            sourceAction: input.sourceAction,
            ...(input.targetAvailabilityZone ? { targetAvailabilityZone: input.targetAvailabilityZone } : {}),
            ...(input.elasticIp ? { elasticIp: input.elasticIp } : {}),
            ...(input.extraNetworkInterfaces ? { extraNetworkInterfaces: input.extraNetworkInterfaces } : {}),
            ...(input.overrides ? { overrides: input.overrides } : {}),
          },
        ],
      );
      const imageName =
        input.imageName ??
        `amiflow-migrate-${sourceId}-to-${plan.launch.availabilityZone}-${runId.slice(0, 8)}`;
      // The child checks the name too, but only after the source was stopped: check it now.
      await la.checkImageName.executeWithOptions(local(`check name '${imageName}' is free`), [
        { target, imageName, workflowId: childId, runId: '(not started yet)' },
      ]);
      return { plan, imageName };
    });
    const zone = plan.launch.availabilityZone;
    progress.resource('targetAvailabilityZone', zone);
    progress.resource('subnetId', plan.launch.subnetId);

    // 2. Source action stop/terminate: stop it before it is imaged, so the image is its last state.
    const wasRunning = plan.source.state === 'running';
    const stopFirst = wasRunning && input.sourceAction !== 'keep';
    let restartSource: UndoHandle | undefined;
    let stoppedAt: number | undefined;
    if (stopFirst) {
      restartSource = comp.add(
        'start source again',
        () =>
          act.startInstance.executeWithOptions(
            remote(`restore: start ${sourceId} again`, instanceWait(timeouts.instanceStateSeconds)),
            [{ ...source, deadline: deadline(timeouts.instanceStateSeconds) }],
          ),
        'stop source',
      );
      stoppedAt = Date.now();
      await progress.run('stop source', () =>
        act.stopInstance.executeWithOptions(
          remote(
            `stop ${sourceId} before imaging it (source action ${input.sourceAction})`,
            settledInstanceWait(timeouts.instanceStateSeconds),
          ),
          [{ ...source, deadline: deadline(timeouts.instanceStateSeconds) }],
        ),
      );
    } else {
      progress.skip(
        'stop source',
        wasRunning ? 'source kept: the image step stops it and starts it again' : 'already stopped',
      );
    }

    // 3. The image, by the reference workflow. It undoes itself when it fails or is cancelled.
    const imageInput: ImageFromInstanceInput = {
      region: input.region,
      ...(input.accountId ? { accountId: input.accountId } : {}),
      instanceId: sourceId,
      imageName,
      // CreateImage takes 255 characters; a caller's own workflow id may be long.
      description: `amiflow: ${sourceId} moving to ${zone} (${workflowId})`.slice(0, 255),
      mode: 'stop',
      timeouts: {
        instanceStateSeconds: timeouts.instanceStateSeconds,
        imageAvailableSeconds: timeouts.imageAvailableSeconds,
      },
    };
    const image = await progress.run(
      'image source',
      async () => {
        const child = await startChild(imageFromInstance, {
          workflowId: childId,
          args: [imageInput],
          staticSummary: `Image ${sourceId} for its move to ${zone}`,
          ...(withSearchAttributes
            ? {
                typedSearchAttributes: [
                  { key: SearchAttr.instanceId, value: sourceId },
                  { key: SearchAttr.region, value: input.region },
                ],
              }
            : {}),
        });
        return { ...(await child.result()), childRunId: child.firstExecutionRunId };
      },
      `child workflow ${childId}`,
    );
    progress.resource('imageId', image.imageId);
    if (withSearchAttributes) upsertSearchAttributes([{ key: SearchAttr.imageId, value: image.imageId }]);
    const imageOwner = { target, imageName, workflowId: childId, runId: image.childRunId };
    const deleteImageUndo = comp.add(
      'delete intermediate image',
      () =>
        act.deleteImage.executeWithOptions(
          remote(`undo: delete intermediate image ${image.imageId}`, compensationCall),
          [{ ...imageOwner, imageId: image.imageId }],
        ),
      'image source',
    );

    // 4. Launch the equivalent instance in the target AZ.
    const launched: { instanceId?: string } = {};
    const terminateNew = comp.add(
      'terminate new instance',
      () =>
        act.terminateLaunchedInstance.executeWithOptions(
          remote(
            `undo: terminate the new instance ${launched.instanceId ?? '(found by tag)'}`,
            compensationCall,
          ),
          [{ target, owner, ...(launched.instanceId ? { instanceId: launched.instanceId } : {}) }],
        ),
      'launch instance',
    );
    const spec = plan.launch;
    const launchSummary = `launch ${spec.instanceType} from ${image.imageId} in ${spec.subnetId} (${zone})`;
    const launchArgs: [LaunchInput] = [{ target, imageId: image.imageId, spec, owner, ownerTags }];
    const newInstance = await progress.run('launch instance', () =>
      // Since 'launch-instance-as-activity': a normal activity, as RunInstances may meet
      // InsufficientInstanceCapacity for minutes, longer than a local activity's budget.
      patched('launch-instance-as-activity')
        ? act.launchInstance.executeWithOptions(remote(launchSummary, settledAwsActivity), launchArgs)
        : la.launchInstance.executeWithOptions(local(launchSummary, settledAwsCall), launchArgs),
    );
    const newId = newInstance.instanceId;
    launched.instanceId = newId;
    progress.resource('newInstanceId', newId);

    // 5. It must run and pass both status checks before anything happens to the source.
    await progress.run('wait for status checks', () =>
      act.waitForInstanceReady.executeWithOptions(
        remote(
          `wait for ${newId} to run and pass both status checks`,
          statusChecksWait(timeouts.instanceReadySeconds),
        ),
        [{ target, instanceId: newId, deadline: deadline(timeouts.instanceReadySeconds) }],
      ),
    );
    let servingAt = Date.now();

    if (Object.keys(plan.volumeTags).length > 0) {
      await progress.run('copy volume tags', () =>
        la.copyVolumeTags.executeWithOptions(local(`copy the source volumes' tags to ${newId}'s`), [
          { target, instanceId: newId, volumeTags: plan.volumeTags },
        ]),
      );
    } else {
      progress.skip('copy volume tags', 'the source volumes have no tags of their own');
    }

    let moveBack: UndoHandle | undefined;
    const eip = plan.elasticIp;
    if (eip?.action === 'move') {
      moveBack = comp.add(
        'move Elastic IP back',
        () =>
          act.moveElasticIp.executeWithOptions(
            remote(`undo: move Elastic IP ${eip.publicIp} back to ${sourceId}`, compensationCall),
            [{ target, allocationId: eip.allocationId, instanceId: sourceId }],
          ),
        'move Elastic IP',
      );
      await progress.run('move Elastic IP', () =>
        la.moveElasticIp.executeWithOptions(
          local(`move Elastic IP ${eip.publicIp} to ${newId}`, settledAwsCall),
          [{ target, allocationId: eip.allocationId, instanceId: newId }],
        ),
      );
      servingAt = Date.now();
    } else {
      progress.skip(
        'move Elastic IP',
        eip ? `left on the source as asked (${eip.publicIp})` : 'the source has no Elastic IP',
      );
    }

    // The new instance ends as the source started: a stopped source gives a stopped new instance.
    if (!wasRunning) {
      await progress.run('stop new instance', () =>
        act.stopInstance.executeWithOptions(
          remote(`stop ${newId}: the source was stopped`, settledInstanceWait(timeouts.instanceStateSeconds)),
          [{ target, instanceId: newId, deadline: deadline(timeouts.instanceStateSeconds) }],
        ),
      );
    } else {
      progress.skip('stop new instance', 'the source was running');
    }

    // Committed: the new instance passed its checks. Nothing before this point is undone any more,
    // and the rest runs to its end even when a cancellation arrives now.
    for (const undo of [moveBack, terminateNew, deleteImageUndo, restartSource]) undo?.discard();
    return CancellationScope.nonCancellable(async () => {
      let sourceFinalState: MigrateInstanceResult['sourceFinalState'];
      if (input.sourceAction === 'terminate') {
        await progress.run(
          'handle source',
          () =>
            act.terminateSourceInstance.executeWithOptions(
              remote(
                `terminate the source ${sourceId}: ${newId} passed its checks`,
                instanceWait(timeouts.instanceStateSeconds),
              ),
              [{ ...source, deadline: deadline(timeouts.instanceStateSeconds) }],
            ),
          `terminate ${sourceId}`,
        );
        sourceFinalState = 'terminated';
      } else if (stopFirst) {
        progress.skip('handle source', 'stopped before it was imaged; left stopped');
        sourceFinalState = 'stopped';
      } else {
        sourceFinalState = image.instanceFinalState;
        progress.skip('handle source', `kept ${sourceFinalState}`);
      }

      const imageOutcome: MigrateInstanceResult['image'] = {
        imageId: image.imageId,
        snapshotIds: image.snapshotIds,
        kept: input.keepImage === true,
        deleted: false,
      };
      if (input.keepImage) {
        progress.skip('delete intermediate image', `kept as asked: ${image.imageId}`);
      } else {
        // The instance has moved; an image that cannot be deleted is reported, not a failed migration.
        try {
          const deleted = await progress.run('delete intermediate image', () =>
            act.deleteImage.executeWithOptions(
              remote(`delete intermediate image ${image.imageId} and its snapshots`, compensationCall),
              [{ ...imageOwner, imageId: image.imageId }],
            ),
          );
          imageOutcome.deleted = deleted.deregistered;
          if (!deleted.deregistered)
            imageOutcome.error = 'the image was not found any more (deleted by someone else?)';
        } catch (err) {
          imageOutcome.error = errorMessage(err);
          log.warn('intermediate image left behind', { imageId: image.imageId, error: imageOutcome.error });
        }
      }

      const result: MigrateInstanceResult = {
        region: input.region,
        ...(input.accountId ? { accountId: input.accountId } : {}),
        sourceInstanceId: sourceId,
        newInstanceId: newId,
        sourceAvailabilityZone: plan.source.availabilityZone,
        targetAvailabilityZone: zone,
        subnetId: spec.subnetId,
        instanceType: spec.instanceType,
        sourceInitialState: plan.source.state,
        sourceFinalState,
        newInstanceState: wasRunning ? 'running' : 'stopped',
        ...(eip
          ? {
              elasticIp: {
                allocationId: eip.allocationId,
                publicIp: eip.publicIp,
                movedToNewInstance: eip.action === 'move',
              },
            }
          : {}),
        image: imageOutcome,
        downtimeSeconds:
          stoppedAt !== undefined ? Math.max(0, (servingAt - stoppedAt) / 1000) : image.downtimeSeconds,
        notCarriedOver: plan.notCarriedOver,
        startedAt,
        finishedAt: new Date().toISOString(),
      };
      return result;
    });
  });
  progress.setPhase('succeeded');
  return result;
}
