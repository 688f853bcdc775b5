/**
 * imageFromInstance: make an AMI from an EC2 instance in one of four consistency modes, wait until
 * it is available, and leave the instance in the state it started in, on every path.
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { InstanceStateReached } from '../activities/instances';
import type {
  AwsTarget,
  ConsistencyMode,
  ImageFromInstanceInput,
  ImageFromInstanceResult,
  Tags,
} from '../contracts';
import {
  DEFAULT_TIMEOUTS,
  FailureType,
  MANAGED_BY_VALUE,
  SearchAttr,
  TAG,
  WORKFLOW_TYPES,
  consistencyOf,
  progressQuery,
} from '../contracts';
import { AppConsistentSteps, QUIESCE_STEP, resolveAppConsistent } from './app-consistent';
import { Compensations } from './compensation';
import {
  compensationCall,
  fastAwsCall,
  imageWait,
  instanceWait,
  longImageWait,
  settledAwsActivity,
} from './presets';
import { Progress } from './progress';
import { parseImageFromInstanceInput } from './validation';
import { parsedOrFail } from './input';
import { countImage, recordDowntime, recordImageWait } from './metrics';

export const IMAGE_FROM_INSTANCE_STEPS = [
  'describe instance',
  'check image name',
  'stop instance',
  'create image',
  'start instance',
  'wait for image available',
  'tag snapshots',
] as const;

const CONSISTENCY_NOTES: Record<ConsistencyMode | 'stopped', string> = {
  stop: 'consistent: the instance was stopped, so every write was on disk when the snapshots began',
  reboot: 'consistent: EC2 rebooted the instance, flushing OS buffers, before the snapshots began',
  'no-reboot':
    'crash-consistent only: the instance kept running and OS buffers were not flushed; ' +
    'the image is what a power cut would leave on disk',
  'app-consistent':
    'application-consistent: a pre step over SSM quiesced the instance (file systems frozen, or your own ' +
    'script) for the CreateImage call, with no downtime, and the post step thawed it right after',
  stopped: 'consistent: the instance was already stopped',
};
const FELL_BACK_NOTE =
  'crash-consistent only: the app-consistent pre step did not succeed, so the instance was imaged ' +
  'without quiescing (onPreFailure: crash-consistent); see appConsistency.pre';
const LAPSED_NOTE =
  'crash-consistent only: the on-instance watchdog ended the freeze before CreateImage surely began ' +
  '(maxFreezeSeconds too short for this run); see appConsistency';

/** Runs started before mode app-consistent existed never take its branch; the marker names the change. */
export const APP_CONSISTENT_PATCH = 'image-from-instance-app-consistent';

function local(summary: string, options: LocalActivityOptions = fastAwsCall) {
  return { ...options, summary };
}
function remote(summary: string, options: ActivityOptions) {
  return { ...options, summary };
}
/**
 * For a step whose AWS call may still land after a cancellation (StopInstances, CreateImage): on
 * cancel, wait until the activity has ended before undoing anything. With the default (TRY_CANCEL)
 * the undo could run first and the late call land after it: a cancelled run left the instance
 * stopped, or an image behind (test/e2e: "... call in flight WHEN ... cancelled").
 */
const settleBeforeUndo = { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED };

const la = proxyLocalActivities<Activities>(fastAwsCall);
const act = proxyActivities<Activities>(compensationCall);

export async function imageFromInstance(rawInput: ImageFromInstanceInput): Promise<ImageFromInstanceResult> {
  const progress = new Progress(WORKFLOW_TYPES.imageFromInstance, IMAGE_FROM_INSTANCE_STEPS);
  setHandler(progressQuery, () => progress.record);
  const startedAt = new Date().toISOString();

  const input = parsedOrFail(parseImageFromInstanceInput, rawInput, progress);
  progress.onEnd((outcome) => countImage(input.mode, outcome));

  const { workflowId, runId } = workflowInfo();
  const target: AwsTarget = {
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
  };
  const ref = { target, instanceId: input.instanceId };
  const timeouts = { ...DEFAULT_TIMEOUTS, ...input.timeouts };
  const owner = { target, imageName: input.imageName, workflowId, runId };
  const comp = new Compensations(progress);
  progress.resource('instanceId', input.instanceId);

  const result = await comp.guard(async () => {
    const instance = await progress.run('describe instance', () =>
      la.describeInstance.executeWithOptions(local(`describe ${input.instanceId}`), [ref]),
    );
    if (instance.rootDeviceType === 'instance-store') {
      throw ApplicationFailure.create({
        type: FailureType.InstanceStoreRoot,
        nonRetryable: true,
        message: `instance ${input.instanceId} has an instance-store root volume; CreateImage works only for EBS-backed instances (bundle instance-store AMIs with the AMI tools instead)`,
      });
    }
    if (instance.state !== 'running' && instance.state !== 'stopped') {
      throw ApplicationFailure.create({
        type: FailureType.InstanceStateUnsupported,
        nonRetryable: true,
        message: `instance ${input.instanceId} is '${instance.state}'; image it when it is running or stopped`,
      });
    }
    const initialState = instance.state;
    const stopFirst = input.mode === 'stop' && initialState === 'running';
    const consistency = initialState === 'stopped' ? 'consistent' : consistencyOf(input.mode);

    await progress.run('check image name', () =>
      la.checkImageName.executeWithOptions(local(`check name '${input.imageName}' is free`), [owner]),
    );

    let restart: { discard(): void } | undefined;
    let stoppedAt: number | undefined; // worker clock, like the start's `at`: downtime mixes no clocks
    if (stopFirst) {
      restart = comp.add(
        'start instance again',
        () =>
          act.startInstance.executeWithOptions(
            remote(`restore: start ${input.instanceId}`, instanceWait(timeouts.instanceStateSeconds)),
            [{ ...ref, deadline: Date.now() + timeouts.instanceStateSeconds * 1000 }],
          ),
        'stop instance',
      );
      const stopped = await progress.run('stop instance', () =>
        act.stopInstance.executeWithOptions(
          remote(`stop ${input.instanceId} and wait until stopped`, {
            ...instanceWait(timeouts.instanceStateSeconds),
            ...settleBeforeUndo,
          }),
          [{ ...ref, deadline: Date.now() + timeouts.instanceStateSeconds * 1000 }],
        ),
      );
      stoppedAt = stopped.actedAt ?? stopped.at;
    } else {
      progress.skip('stop instance', initialState === 'stopped' ? 'already stopped' : `mode ${input.mode}`);
    }

    // Mode app-consistent on a running instance: quiesced by the pre step just before CreateImage.
    const app =
      input.mode === 'app-consistent' && initialState === 'running' && patched(APP_CONSISTENT_PATCH)
        ? new AppConsistentSteps(
            { target, instanceId: input.instanceId, runKey: `${workflowId}/${runId}`, progress },
            resolveAppConsistent(input.appConsistent),
          )
        : undefined;

    if (input.mode === 'app-consistent' && !app)
      progress.skip(QUIESCE_STEP, 'the instance is stopped: consistent without quiescing');

    const made: { imageId?: string } = {}; // filled once CreateImage answers; read by the undo
    // Registered just before CreateImage (never earlier: a run that never called it has nothing to find).
    const registerImageUndo = () =>
      comp.add(
        'delete image and snapshots',
        () =>
          act.deleteImage.executeWithOptions(
            remote(`undo: delete image '${input.imageName}'`, compensationCall),
            [{ ...owner, ...(made.imageId ? { imageId: made.imageId } : {}) }],
          ),
        'create image',
      );
    const tags: Tags = {
      ...input.tags,
      [TAG.managedBy]: MANAGED_BY_VALUE,
      [TAG.workflowId]: workflowId,
      [TAG.runId]: runId,
      [TAG.workflowType]: WORKFLOW_TYPES.imageFromInstance,
      [TAG.sourceInstance]: input.instanceId,
      [TAG.consistency]: consistency,
    };
    const createImage = () => {
      registerImageUndo();
      const createSummary = `create image '${input.imageName}' (${input.mode})`;
      const createArgs: Parameters<Activities['createImage']> = [
        {
          ...owner,
          instanceId: input.instanceId,
          ...(input.description ? { description: input.description } : {}),
          // Stopped already, or the caller chose no-reboot or app-consistent; only `reboot` lets EC2 reboot it.
          noReboot: input.mode !== 'reboot' || initialState === 'stopped',
          tags,
        },
      ];
      return progress.run('create image', () =>
        // Since 'create-image-as-activity' a normal activity: the server records the step before
        // CreateImage is sent. A local activity's result is recorded only when its workflow task
        // completes; a worker SIGKILLed (or a server down) before that lost the record of an image
        // EC2 had made, and a cancel arriving before the re-run reached this step left it behind.
        patched('create-image-as-activity')
          ? act.createImage.executeWithOptions(remote(createSummary, settledAwsActivity), createArgs)
          : la.createImage.executeWithOptions(
              local(createSummary, { ...fastAwsCall, ...settleBeforeUndo }),
              createArgs,
            ),
      );
    };
    let created: Awaited<ReturnType<typeof createImage>>;
    let consistencyNow: typeof consistency = consistency;
    if (app) {
      try {
        if (!(await app.quiesce())) consistencyNow = 'crash-consistent';
        tags[TAG.consistency] = consistencyNow;
        created = await createImage();
      } finally {
        // The snapshots are point-in-time from CreateImage on: thaw now, on every path (a failure,
        // a cancellation, or this run resumed on another worker all come through here).
        await CancellationScope.nonCancellable(() => app.thaw());
      }
      if (consistencyNow === 'application-consistent' && !app.consistentThrough(Date.now())) {
        consistencyNow = 'crash-consistent';
        progress.problem(
          `${LAPSED_NOTE} (the image's own amiflow:consistency tag may still say application-consistent)`,
        );
      }
    } else {
      created = await createImage();
    }
    tags[TAG.consistency] = consistencyNow;
    made.imageId = created.imageId;
    progress.resource('imageId', created.imageId);
    if (workflowInfo().typedSearchAttributes.get(SearchAttr.instanceId) !== undefined) {
      upsertSearchAttributes([{ key: SearchAttr.imageId, value: created.imageId }]);
    }

    // Stop mode: the snapshots are point-in-time from CreateImage on, so the instance runs again
    // now, while the snapshots copy; downtime does not include the wait for `available`.
    let started: Promise<InstanceStateReached | undefined> = Promise.resolve(undefined);
    if (stopFirst) {
      started = progress
        .run('start instance', () =>
          act.startInstance.executeWithOptions(
            remote(`start ${input.instanceId} again`, instanceWait(timeouts.instanceStateSeconds)),
            [{ ...ref, deadline: Date.now() + timeouts.instanceStateSeconds * 1000 }],
          ),
        )
        .then((r) => {
          restart?.discard();
          return r;
        });
    } else {
      progress.skip(
        'start instance',
        initialState === 'stopped' ? 'was stopped: left stopped' : 'never stopped',
      );
    }
    const createdAt = Date.now();
    const available = progress.run('wait for image available', () =>
      act.waitForImageAvailable.executeWithOptions(
        remote(
          `wait for ${created.imageId} to be available`,
          imageWait(timeouts.imageAvailableSeconds, longImageWait),
        ),
        [{ target, imageId: created.imageId, deadline: Date.now() + timeouts.imageAvailableSeconds * 1000 }],
      ),
    );
    // Both settle before anything is undone, so a compensation never races a running step.
    const [startOutcome, availableOutcome] = await Promise.allSettled([started, available]);
    if (startOutcome.status === 'rejected') throw startOutcome.reason;
    if (availableOutcome.status === 'rejected') throw availableOutcome.reason;
    recordImageWait((Date.now() - createdAt) / 1000);

    const tagged = await progress.run('tag snapshots', () =>
      la.tagSnapshots.executeWithOptions(local(`tag snapshots of ${created.imageId}`), [
        { target, imageId: created.imageId, tags },
      ]),
    );
    const runningAgain = startOutcome.value;
    const finalState: 'running' | 'stopped' = runningAgain ? 'running' : initialState;
    const downtimeSeconds =
      runningAgain && stoppedAt !== undefined ? Math.max(0, (runningAgain.at - stoppedAt) / 1000) : 0;
    if (stopFirst) recordDowntime(downtimeSeconds);
    const noteOf = (): string => {
      if (initialState === 'stopped') return CONSISTENCY_NOTES.stopped;
      if (app && consistencyNow === 'crash-consistent') return app.fellBack ? FELL_BACK_NOTE : LAPSED_NOTE;
      return CONSISTENCY_NOTES[input.mode];
    };
    return {
      imageId: created.imageId,
      imageName: input.imageName,
      region: input.region,
      ...(input.accountId ? { accountId: input.accountId } : {}),
      snapshotIds: tagged.snapshotIds,
      instanceId: input.instanceId,
      mode: input.mode,
      consistency: consistencyNow,
      consistencyNote: noteOf(),
      ...(app ? { appConsistency: app.report() } : {}),
      instanceInitialState: initialState,
      instanceFinalState: finalState,
      downtimeSeconds,
      startedAt,
      finishedAt: new Date().toISOString(),
    };
  });
  progress.setPhase('succeeded');
  return result;
}
