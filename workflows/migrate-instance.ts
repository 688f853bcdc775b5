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
import {
  CancellationScope,
  log,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { LaunchInput, MigrationPlan } from '../activities/launch';
import type {
  AwsTarget,
  ImageFromInstanceInput,
  ImageFromInstanceResult,
  MigrateInstanceInput,
  MigrateInstanceResult,
  Tags,
} from '../contracts';
import { DEFAULT_MIGRATION_TIMEOUTS, SearchAttr, TAG, WORKFLOW_TYPES } from '../contracts';
import type { Run } from './bootstrap';
import { act, guarded, la, local, ownerTags, remote, startRun, targetOf } from './bootstrap';
import type { UndoHandle } from './compensation';
import { imageFromInstance } from './image-from-instance';
import { parseMigrateInstanceInput } from './migrate-validation';
import {
  compensationCall,
  instanceWait,
  settledAwsActivity,
  settledAwsCall,
  settledInstanceWait,
  statusChecksWait,
} from './presets';
import { errorMessage } from './progress';

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

/** What every step of one migration run shares. */
interface Migration extends Run<MigrateInstanceInput> {
  target: AwsTarget;
  sourceId: string;
  source: { target: AwsTarget; instanceId: string };
  timeouts: typeof DEFAULT_MIGRATION_TIMEOUTS & MigrateInstanceInput['timeouts'];
  owner: { workflowId: string; runId: string };
  ownerTags: Tags;
  childId: string;
  withSearchAttributes: boolean;
}

/** An absolute deadline for a wait of `seconds` from now (fixed once, so retries never extend it). */
function deadline(seconds: number): number {
  return Date.now() + seconds * 1000;
}

export async function migrateInstance(rawInput: MigrateInstanceInput): Promise<MigrateInstanceResult> {
  const run = startRun({
    workflowType: WORKFLOW_TYPES.migrateInstance,
    steps: MIGRATE_INSTANCE_STEPS,
    parse: parseMigrateInstanceInput,
    raw: rawInput,
  });
  const { input, progress, workflowId, runId } = run;
  const sourceId = input.instanceId;
  const target = targetOf(input);
  const m: Migration = {
    ...run,
    target,
    sourceId,
    source: { target, instanceId: sourceId },
    timeouts: { ...DEFAULT_MIGRATION_TIMEOUTS, ...input.timeouts },
    owner: { workflowId, runId },
    ownerTags: {
      ...ownerTags(WORKFLOW_TYPES.migrateInstance, run),
      [TAG.sourceInstance]: sourceId,
    },
    childId: imageChildWorkflowId(workflowId),
    withSearchAttributes: workflowInfo().typedSearchAttributes.get(SearchAttr.instanceId) !== undefined,
  };
  progress.resource('sourceInstanceId', sourceId);

  return guarded(run, async () => {
    // 1. Read everything, refuse what cannot move faithfully. Nothing is changed before this passes.
    const { plan, imageName } = await planStep(m);
    const zone = plan.launch.availabilityZone;
    progress.resource('targetAvailabilityZone', zone);
    progress.resource('subnetId', plan.launch.subnetId);
    // 2. Source action stop/terminate: stop it before it is imaged, so the image is its last state.
    const stopped = await stopSourceStep(m, plan);
    // 3. The image, by the reference workflow. It undoes itself when it fails or is cancelled.
    const image = await imageSourceStep(m, zone, imageName);
    // 4. Launch the equivalent instance in the target AZ; 5. it must run and pass both status checks
    // (and take the Elastic IP) before anything happens to the source.
    const launched = await launchStep(m, plan, image);
    const { servingAt, moveBack } = await bringUpStep(m, plan, launched.newId);
    // Committed: the new instance passed its checks. Nothing before this point is undone any more,
    // and the rest runs to its end even when a cancellation arrives now.
    for (const undo of [moveBack, launched.terminateNew, image.deleteUndo, stopped.restartSource])
      undo?.discard();
    return CancellationScope.nonCancellable(() =>
      finishStep(m, { plan, image, newId: launched.newId, stopped, servingAt }),
    );
  });
}

async function planStep(m: Migration): Promise<{ plan: MigrationPlan; imageName: string }> {
  const { input, target, sourceId } = m;
  return m.progress.run('plan migration', async () => {
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
      `amiflow-migrate-${sourceId}-to-${plan.launch.availabilityZone}-${m.runId.slice(0, 8)}`;
    // The child checks the name too, but only after the source was stopped: check it now.
    await la.checkImageName.executeWithOptions(local(`check name '${imageName}' is free`), [
      { target, imageName, workflowId: m.childId, runId: '(not started yet)' },
    ]);
    return { plan, imageName };
  });
}

interface SourceStop {
  wasRunning: boolean;
  stopFirst: boolean;
  restartSource?: UndoHandle;
  stoppedAt?: number;
}

async function stopSourceStep(m: Migration, plan: MigrationPlan): Promise<SourceStop> {
  const { input, sourceId, source, timeouts } = m;
  const wasRunning = plan.source.state === 'running';
  const stopFirst = wasRunning && input.sourceAction !== 'keep';
  if (!stopFirst) {
    m.progress.skip(
      'stop source',
      wasRunning ? 'source kept: the image step stops it and starts it again' : 'already stopped',
    );
    return { wasRunning, stopFirst };
  }
  const restartSource = m.comp.add(
    'start source again',
    () =>
      act.startInstance.executeWithOptions(
        remote(`restore: start ${sourceId} again`, instanceWait(timeouts.instanceStateSeconds)),
        [{ ...source, deadline: deadline(timeouts.instanceStateSeconds) }],
      ),
    'stop source',
  );
  const stoppedAt = Date.now();
  await m.progress.run('stop source', () =>
    act.stopInstance.executeWithOptions(
      remote(
        `stop ${sourceId} before imaging it (source action ${input.sourceAction})`,
        settledInstanceWait(timeouts.instanceStateSeconds),
      ),
      [{ ...source, deadline: deadline(timeouts.instanceStateSeconds) }],
    ),
  );
  return { wasRunning, stopFirst, restartSource, stoppedAt };
}

type SourceImage = ImageFromInstanceResult & {
  childRunId: string;
  owner: { target: AwsTarget; imageName: string; workflowId: string; runId: string };
  deleteUndo: UndoHandle;
};

async function imageSourceStep(m: Migration, zone: string, imageName: string): Promise<SourceImage> {
  const { input, sourceId, childId, timeouts } = m;
  const imageInput: ImageFromInstanceInput = {
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
    instanceId: sourceId,
    imageName,
    // CreateImage takes 255 characters; a caller's own workflow id may be long.
    description: `amiflow: ${sourceId} moving to ${zone} (${m.workflowId})`.slice(0, 255),
    mode: 'stop',
    timeouts: {
      instanceStateSeconds: timeouts.instanceStateSeconds,
      imageAvailableSeconds: timeouts.imageAvailableSeconds,
    },
  };
  const image = await m.progress.run(
    'image source',
    async () => {
      const child = await startChild(imageFromInstance, {
        workflowId: childId,
        args: [imageInput],
        staticSummary: `Image ${sourceId} for its move to ${zone}`,
        ...(m.withSearchAttributes
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
  m.progress.resource('imageId', image.imageId);
  if (m.withSearchAttributes) upsertSearchAttributes([{ key: SearchAttr.imageId, value: image.imageId }]);
  const owner = { target: m.target, imageName, workflowId: childId, runId: image.childRunId };
  const deleteUndo = m.comp.add(
    'delete intermediate image',
    () =>
      act.deleteImage.executeWithOptions(
        remote(`undo: delete intermediate image ${image.imageId}`, compensationCall),
        [{ ...owner, imageId: image.imageId }],
      ),
    'image source',
  );
  return { ...image, owner, deleteUndo };
}

async function launchStep(
  m: Migration,
  plan: MigrationPlan,
  image: SourceImage,
): Promise<{ newId: string; terminateNew: UndoHandle }> {
  const { target, owner } = m;
  const launched: { instanceId?: string } = {};
  const terminateNew = m.comp.add(
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
  const launchSummary = `launch ${spec.instanceType} from ${image.imageId} in ${spec.subnetId} (${spec.availabilityZone})`;
  const launchArgs: [LaunchInput] = [{ target, imageId: image.imageId, spec, owner, ownerTags: m.ownerTags }];
  const newInstance = await m.progress.run('launch instance', () =>
    // Since 'launch-instance-as-activity': a normal activity, as RunInstances may meet
    // InsufficientInstanceCapacity for minutes, longer than a local activity's budget.
    m.progress.since('launch-instance-as-activity')
      ? act.launchInstance.executeWithOptions(remote(launchSummary, settledAwsActivity), launchArgs)
      : la.launchInstance.executeWithOptions(local(launchSummary, settledAwsCall), launchArgs),
  );
  launched.instanceId = newInstance.instanceId;
  m.progress.resource('newInstanceId', newInstance.instanceId);
  return { newId: newInstance.instanceId, terminateNew };
}

/**
 * The new instance passes its checks, gets its volumes' tags and the Elastic IP, and ends as the
 * source started (a stopped source gives a stopped new instance). Returns when it started serving.
 */
async function bringUpStep(
  m: Migration,
  plan: MigrationPlan,
  newId: string,
): Promise<{ servingAt: number; moveBack?: UndoHandle }> {
  const { target, sourceId, timeouts, progress } = m;
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
    moveBack = m.comp.add(
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

  if (plan.source.state !== 'running') {
    await progress.run('stop new instance', () =>
      act.stopInstance.executeWithOptions(
        remote(`stop ${newId}: the source was stopped`, settledInstanceWait(timeouts.instanceStateSeconds)),
        [{ target, instanceId: newId, deadline: deadline(timeouts.instanceStateSeconds) }],
      ),
    );
  } else {
    progress.skip('stop new instance', 'the source was running');
  }
  return { servingAt, ...(moveBack ? { moveBack } : {}) };
}

interface Committed {
  plan: MigrationPlan;
  image: SourceImage;
  newId: string;
  stopped: SourceStop;
  servingAt: number;
}

/** After the commit: the source as asked, the intermediate image deleted (or kept), the result. */
async function finishStep(m: Migration, c: Committed): Promise<MigrateInstanceResult> {
  const { input, sourceId, source, timeouts, progress } = m;
  const { plan, image, newId, stopped } = c;
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
  } else if (stopped.stopFirst) {
    progress.skip('handle source', 'stopped before it was imaged; left stopped');
    sourceFinalState = 'stopped';
  } else {
    sourceFinalState = image.instanceFinalState;
    progress.skip('handle source', `kept ${sourceFinalState}`);
  }
  const imageOutcome = await deleteImageStep(m, image);
  const spec = plan.launch;
  const eip = plan.elasticIp;
  return {
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
    sourceInstanceId: sourceId,
    newInstanceId: newId,
    sourceAvailabilityZone: plan.source.availabilityZone,
    targetAvailabilityZone: spec.availabilityZone,
    subnetId: spec.subnetId,
    instanceType: spec.instanceType,
    sourceInitialState: plan.source.state,
    sourceFinalState,
    newInstanceState: stopped.wasRunning ? 'running' : 'stopped',
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
      stopped.stoppedAt !== undefined
        ? Math.max(0, (c.servingAt - stopped.stoppedAt) / 1000)
        : image.downtimeSeconds,
    notCarriedOver: plan.notCarriedOver,
    startedAt: m.startedAt,
    finishedAt: new Date().toISOString(),
  };
}

/** The instance has moved; an image that cannot be deleted is reported, not a failed migration. */
async function deleteImageStep(m: Migration, image: SourceImage): Promise<MigrateInstanceResult['image']> {
  const imageOutcome: MigrateInstanceResult['image'] = {
    imageId: image.imageId,
    snapshotIds: image.snapshotIds,
    kept: m.input.keepImage === true,
    deleted: false,
  };
  if (m.input.keepImage) {
    m.progress.skip('delete intermediate image', `kept as asked: ${image.imageId}`);
    return imageOutcome;
  }
  try {
    const deleted = await m.progress.run('delete intermediate image', () =>
      act.deleteImage.executeWithOptions(
        remote(`delete intermediate image ${image.imageId} and its snapshots`, compensationCall),
        [{ ...image.owner, imageId: image.imageId }],
      ),
    );
    imageOutcome.deleted = deleted.deregistered;
    if (!deleted.deregistered)
      imageOutcome.error = 'the image was not found any more (deleted by someone else?)';
  } catch (err) {
    imageOutcome.error = errorMessage(err);
    log.warn('intermediate image left behind', { imageId: image.imageId, error: imageOutcome.error });
  }
  return imageOutcome;
}
