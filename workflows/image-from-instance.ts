/**
 * imageFromInstance: make an AMI from an EC2 instance in one of four consistency modes, wait until
 * it is available, and leave the instance in the state it started in, on every path.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
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
import { DEFAULT_TIMEOUTS, FailureType, SearchAttr, TAG, WORKFLOW_TYPES, consistencyOf } from '../contracts';
import { AppConsistentSteps, QUIESCE_STEP, resolveAppConsistent } from './app-consistent';
import type { Run } from './bootstrap';
import { act, guarded, la, local, ownerTags, remote, startRun, targetOf } from './bootstrap';
import type { UndoHandle } from './compensation';
import {
  compensationCall,
  fastAwsCall,
  imageWait,
  instanceWait,
  longImageWait,
  settledAwsActivity,
} from './presets';
import { parseImageFromInstanceInput } from './validation';
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

/**
 * For a step whose AWS call may still land after a cancellation (StopInstances, CreateImage): on
 * cancel, wait until the activity has ended before undoing anything. With the default (TRY_CANCEL)
 * the undo could run first and the late call land after it: a cancelled run left the instance
 * stopped, or an image behind (test/e2e: "... call in flight WHEN ... cancelled").
 */
const settleBeforeUndo = { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED };

/** What every step reads: the run (bootstrap) and the facts fixed by its input. */
interface ImageRun extends Run<ImageFromInstanceInput> {
  target: AwsTarget;
  ref: { target: AwsTarget; instanceId: string };
  timeouts: typeof DEFAULT_TIMEOUTS;
  /** What proves an image is this run's: its name and the run that made it (tags). */
  owner: { target: AwsTarget; imageName: string; workflowId: string; runId: string };
}

/** The instance as the run found it, and what the mode does with it. */
interface Source {
  initialState: 'running' | 'stopped';
  stopFirst: boolean;
  consistency: ImageFromInstanceResult['consistency'];
}

/** The instance stopped by this run: the undo that starts it again, and when it stopped (worker clock). */
interface Stopped {
  restart?: UndoHandle;
  stoppedAt?: number;
}

type Created = Awaited<ReturnType<Activities['createImage']>>;

export async function imageFromInstance(rawInput: ImageFromInstanceInput): Promise<ImageFromInstanceResult> {
  const run = imageRunOf(
    startRun({
      workflowType: WORKFLOW_TYPES.imageFromInstance,
      steps: IMAGE_FROM_INSTANCE_STEPS,
      parse: parseImageFromInstanceInput,
      raw: rawInput,
    }),
  );
  return await guarded(run, async () => {
    const source = await describeSource(run);
    await checkImageName(run);
    const stopped = await stopIfAsked(run, source);
    const app = quiescerFor(run, source);
    const tags = imageTags(run, source);
    const { created, consistency } = await createImageStep(run, source, app, tags);
    // Stop mode: the snapshots are point-in-time from CreateImage on, so the instance runs again
    // now, while the snapshots copy; downtime does not include the wait for `available`.
    const runningAgain = await restartAndWaitAvailable(run, source, stopped, created);
    const tagged = await run.progress.run('tag snapshots', () =>
      la.tagSnapshots.executeWithOptions(local(`tag snapshots of ${created.imageId}`), [
        { target: run.target, imageId: created.imageId, tags },
      ]),
    );
    return resultOf(run, {
      source,
      stopped,
      app,
      consistency,
      created,
      runningAgain,
      snapshotIds: tagged.snapshotIds,
    });
  });
}

/** The bootstrap's run with the facts every step reads; counts the image by mode when the run ends. */
function imageRunOf(run: Run<ImageFromInstanceInput>): ImageRun {
  const { input, progress, workflowId, runId } = run;
  progress.onEnd((outcome) => countImage(input.mode, outcome));
  const target = targetOf(input);
  progress.resource('instanceId', input.instanceId);
  return {
    ...run,
    target,
    ref: { target, instanceId: input.instanceId },
    timeouts: { ...DEFAULT_TIMEOUTS, ...input.timeouts },
    owner: { target, imageName: input.imageName, workflowId, runId },
  };
}

/** Describe: only an EBS-backed instance that is running or stopped can be imaged. */
async function describeSource(run: ImageRun): Promise<Source> {
  const { input } = run;
  const instance = await run.progress.run('describe instance', () =>
    la.describeInstance.executeWithOptions(local(`describe ${input.instanceId}`), [run.ref]),
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
  return {
    initialState,
    stopFirst: input.mode === 'stop' && initialState === 'running',
    consistency: initialState === 'stopped' ? 'consistent' : consistencyOf(input.mode),
  };
}

async function checkImageName(run: ImageRun): Promise<void> {
  await run.progress.run('check image name', () =>
    la.checkImageName.executeWithOptions(local(`check name '${run.input.imageName}' is free`), [run.owner]),
  );
}

/** Mode stop on a running instance: stopped (the undo starts it again, registered first). */
async function stopIfAsked(run: ImageRun, source: Source): Promise<Stopped> {
  const { input, timeouts, ref } = run;
  if (!source.stopFirst) {
    run.progress.skip(
      'stop instance',
      source.initialState === 'stopped' ? 'already stopped' : `mode ${input.mode}`,
    );
    return {};
  }
  const restart = run.comp.add(
    'start instance again',
    () =>
      act.startInstance.executeWithOptions(
        remote(`restore: start ${input.instanceId}`, instanceWait(timeouts.instanceStateSeconds)),
        [{ ...ref, deadline: Date.now() + timeouts.instanceStateSeconds * 1000 }],
      ),
    'stop instance',
  );
  const stopped = await run.progress.run('stop instance', () =>
    act.stopInstance.executeWithOptions(
      remote(`stop ${input.instanceId} and wait until stopped`, {
        ...instanceWait(timeouts.instanceStateSeconds),
        ...settleBeforeUndo,
      }),
      [{ ...ref, deadline: Date.now() + timeouts.instanceStateSeconds * 1000 }],
    ),
  );
  // Worker clock, like the start's `at`: downtime mixes no clocks.
  return { restart, stoppedAt: stopped.actedAt ?? stopped.at };
}

/** Mode app-consistent on a running instance: quiesced by the pre step just before CreateImage. */
function quiescerFor(run: ImageRun, source: Source): AppConsistentSteps | undefined {
  const { input } = run;
  const app =
    input.mode === 'app-consistent' &&
    source.initialState === 'running' &&
    run.progress.since(APP_CONSISTENT_PATCH)
      ? new AppConsistentSteps(
          {
            target: run.target,
            instanceId: input.instanceId,
            runKey: `${run.workflowId}/${run.runId}`,
            progress: run.progress,
          },
          resolveAppConsistent(input.appConsistent),
        )
      : undefined;
  if (input.mode === 'app-consistent' && !app)
    run.progress.skip(QUIESCE_STEP, 'the instance is stopped: consistent without quiescing');
  return app;
}

/** The tags of the image and (later) its snapshots; the consistency tag is settled by the create step. */
function imageTags(run: ImageRun, source: Source): Tags {
  return {
    ...run.input.tags,
    ...ownerTags(WORKFLOW_TYPES.imageFromInstance, run),
    [TAG.sourceInstance]: run.input.instanceId,
    [TAG.consistency]: source.consistency,
  };
}

/**
 * CreateImage, inside the quiesce window when app-consistent (thawed after on every path), with the
 * undo that deletes the image registered just before it. Returns the consistency the image really has.
 */
async function createImageStep(
  run: ImageRun,
  source: Source,
  app: AppConsistentSteps | undefined,
  tags: Tags,
): Promise<{ created: Created; consistency: Source['consistency'] }> {
  const made: { imageId?: string } = {}; // filled once CreateImage answers; read by the undo
  const create = () => createImage(run, source, tags, made);
  let created: Created;
  let consistency = source.consistency;
  if (app) {
    try {
      if (!(await app.quiesce())) consistency = 'crash-consistent';
      tags[TAG.consistency] = consistency;
      created = await create();
    } finally {
      // The snapshots are point-in-time from CreateImage on: thaw now, on every path (a failure,
      // a cancellation, or this run resumed on another worker all come through here).
      await CancellationScope.nonCancellable(() => app.thaw());
    }
    if (consistency === 'application-consistent' && !app.consistentThrough(Date.now())) {
      consistency = 'crash-consistent';
      run.progress.problem(
        `${LAPSED_NOTE} (the image's own amiflow:consistency tag may still say application-consistent)`,
      );
    }
  } else {
    created = await create();
  }
  tags[TAG.consistency] = consistency;
  made.imageId = created.imageId;
  run.progress.resource('imageId', created.imageId);
  if (workflowInfo().typedSearchAttributes.get(SearchAttr.instanceId) !== undefined) {
    upsertSearchAttributes([{ key: SearchAttr.imageId, value: created.imageId }]);
  }
  return { created, consistency };
}

function createImage(
  run: ImageRun,
  source: Source,
  tags: Tags,
  made: { imageId?: string },
): Promise<Created> {
  const { input, owner } = run;
  // Registered just before CreateImage (never earlier: a run that never called it has nothing to find).
  run.comp.add(
    'delete image and snapshots',
    () =>
      act.deleteImage.executeWithOptions(
        remote(`undo: delete image '${input.imageName}'`, compensationCall),
        [{ ...owner, ...(made.imageId ? { imageId: made.imageId } : {}) }],
      ),
    'create image',
  );
  const createSummary = `create image '${input.imageName}' (${input.mode})`;
  const createArgs: Parameters<Activities['createImage']> = [
    {
      ...owner,
      instanceId: input.instanceId,
      ...(input.description ? { description: input.description } : {}),
      // Stopped already, or the caller chose no-reboot or app-consistent; only `reboot` lets EC2 reboot it.
      noReboot: input.mode !== 'reboot' || source.initialState === 'stopped',
      tags,
    },
  ];
  return run.progress.run('create image', () =>
    // Since 'create-image-as-activity' a normal activity: the server records the step before
    // CreateImage is sent. A local activity's result is recorded only when its workflow task
    // completes; a worker SIGKILLed (or a server down) before that lost the record of an image
    // EC2 had made, and a cancel arriving before the re-run reached this step left it behind.
    run.progress.since('create-image-as-activity')
      ? act.createImage.executeWithOptions(remote(createSummary, settledAwsActivity), createArgs)
      : la.createImage.executeWithOptions(
          local(createSummary, { ...fastAwsCall, ...settleBeforeUndo }),
          createArgs,
        ),
  );
}

/**
 * The instance started again (if this run stopped it) while the image becomes available. Both
 * settle before anything is undone, so a compensation never races a running step.
 */
async function restartAndWaitAvailable(
  run: ImageRun,
  source: Source,
  stopped: Stopped,
  created: Created,
): Promise<InstanceStateReached | undefined> {
  const { input, timeouts, ref } = run;
  let started: Promise<InstanceStateReached | undefined> = Promise.resolve(undefined);
  if (source.stopFirst) {
    started = run.progress
      .run('start instance', () =>
        act.startInstance.executeWithOptions(
          remote(`start ${input.instanceId} again`, instanceWait(timeouts.instanceStateSeconds)),
          [{ ...ref, deadline: Date.now() + timeouts.instanceStateSeconds * 1000 }],
        ),
      )
      .then((r) => {
        stopped.restart?.discard();
        return r;
      });
  } else {
    run.progress.skip(
      'start instance',
      source.initialState === 'stopped' ? 'was stopped: left stopped' : 'never stopped',
    );
  }
  const createdAt = Date.now();
  const available = run.progress.run('wait for image available', () =>
    act.waitForImageAvailable.executeWithOptions(
      remote(
        `wait for ${created.imageId} to be available`,
        imageWait(timeouts.imageAvailableSeconds, longImageWait, run.progress.since),
      ),
      [
        {
          target: run.target,
          imageId: created.imageId,
          deadline: Date.now() + timeouts.imageAvailableSeconds * 1000,
        },
      ],
    ),
  );
  const [startOutcome, availableOutcome] = await Promise.allSettled([started, available]);
  if (startOutcome.status === 'rejected') throw startOutcome.reason;
  if (availableOutcome.status === 'rejected') throw availableOutcome.reason;
  recordImageWait((Date.now() - createdAt) / 1000);
  return startOutcome.value;
}

function resultOf(
  run: ImageRun,
  r: {
    source: Source;
    stopped: Stopped;
    app: AppConsistentSteps | undefined;
    consistency: Source['consistency'];
    created: Created;
    runningAgain: InstanceStateReached | undefined;
    snapshotIds: string[];
  },
): ImageFromInstanceResult {
  const { input } = run;
  const { initialState } = r.source;
  const finalState: 'running' | 'stopped' = r.runningAgain ? 'running' : initialState;
  const stoppedAt = r.stopped.stoppedAt;
  const downtimeSeconds =
    r.runningAgain && stoppedAt !== undefined ? Math.max(0, (r.runningAgain.at - stoppedAt) / 1000) : 0;
  if (r.source.stopFirst) recordDowntime(downtimeSeconds);
  const note = (): string => {
    if (initialState === 'stopped') return CONSISTENCY_NOTES.stopped;
    if (r.app && r.consistency === 'crash-consistent') return r.app.fellBack ? FELL_BACK_NOTE : LAPSED_NOTE;
    return CONSISTENCY_NOTES[input.mode];
  };
  return {
    imageId: r.created.imageId,
    imageName: input.imageName,
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
    snapshotIds: r.snapshotIds,
    instanceId: input.instanceId,
    mode: input.mode,
    consistency: r.consistency,
    consistencyNote: note(),
    ...(r.app ? { appConsistency: r.app.report() } : {}),
    instanceInitialState: initialState,
    instanceFinalState: finalState,
    downtimeSeconds,
    startedAt: run.startedAt,
    finishedAt: new Date().toISOString(),
  };
}
