/**
 * The imageFromInstance fakes for the time-skipping workflow tests, typed against the real activity
 * signatures (`Activities` from activities/index.ts): a happy default for each activity, as AWS
 * answers for an EBS-backed instance, and starting and following an imageFromInstance run. The
 * harness every workflow test shares (workers, recording, failure injection, waits, assertions) is
 * ./harness.ts, re-exported here so the tests that import it from this file keep working.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/activity';
import type { Activities } from '../../activities';
import type {
  ImageFromInstanceInput,
  ImageFromInstanceResult,
  InstanceState,
} from '../../workflows/contracts';
import { DEFAULT_TIMEOUTS } from '../../workflows/contracts';
import type { imageFromInstance } from '../../workflows';
import { unplannedActivities } from '../../devkit/fake-share-copy';
import type { ActivityName, BlockAt, ExpectedCall, WorkflowOutcome } from './harness';
import { starterOf, withLog, withWorker, workflowOutcome } from './harness';

export * from './harness';
export { unplannedActivities };

export const INSTANCE_ID = 'i-0123456789abcdef0';
export const IMAGE_ID = 'ami-0fedcba9876543210';
export const SNAPSHOT_IDS = ['snap-0aaaaaaaaaaaaaaa1', 'snap-0aaaaaaaaaaaaaaa2'];

/**
 * An image of the instance as it is (already stopped, or imaged with or without a reboot): read,
 * name checked, imaged, waited for.
 */
export const IMAGE_AS_IS: ActivityName[] = [
  'describeInstance',
  'checkImageName',
  'createImage',
  'waitForImageAvailable',
];

/**
 * A stop-mode image of a running instance: stopped, imaged, then started again while the image
 * completes (the two at once, in either order).
 */
export const STOP_AND_IMAGE: ExpectedCall[] = [
  'describeInstance',
  'checkImageName',
  'stopInstance',
  'createImage',
  { concurrently: ['startInstance', 'waitForImageAvailable'] },
];

/** A valid input; each test overrides what it is about. */
export function imageInput(overrides: Partial<ImageFromInstanceInput> = {}): ImageFromInstanceInput {
  return {
    region: 'eu-west-1',
    instanceId: INSTANCE_ID,
    imageName: 'web-server 2026-01-01 (nightly)',
    description: 'nightly image of the web server',
    tags: { Owner: 'team-web' },
    mode: 'stop',
    ...overrides,
  };
}

// ---------------------------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------------------------

export interface InstanceScenario {
  /** What describeInstance reports. Default `running`. */
  state?: InstanceState;
  rootDeviceType?: 'ebs' | 'instance-store';
  /**
   * Seconds between StopInstances (the stub stopInstance's `actedAt`) and the instance running
   * again (the stub startInstance's `at`). Default 75.
   */
  downtimeSeconds?: number;
  /** Must match the input's `timeouts.instanceStateSeconds` (the stubs derive times from deadlines). */
  instanceStateSeconds?: number;
}

/**
 * Activities that all succeed, as AWS would answer for an EBS-backed instance. Times are derived
 * from the deadlines the workflow passes (`deadline = workflow now + timeout`), so they are on the
 * workflow's clock, which the time-skipping server runs ahead of the wall clock.
 */
export function happyActivities(scenario: InstanceScenario = {}): Activities {
  const stateMs = (scenario.instanceStateSeconds ?? DEFAULT_TIMEOUTS.instanceStateSeconds) * 1000;
  const downtimeMs = (scenario.downtimeSeconds ?? 75) * 1000;
  let stopScheduledAt: number | undefined;
  return {
    ...unplannedActivities(),
    describeInstance: (ref) =>
      Promise.resolve({
        instanceId: ref.instanceId,
        state: scenario.state ?? 'running',
        rootDeviceType: scenario.rootDeviceType ?? 'ebs',
        availabilityZone: 'eu-west-1a',
        instanceType: 't3.micro',
      }),
    checkImageName: () => Promise.resolve({ status: 'free' }),
    stopInstance: (input) => {
      stopScheduledAt = input.deadline - stateMs;
      return Promise.resolve({
        instanceId: input.instanceId,
        state: 'stopped',
        at: stopScheduledAt + 30_000,
        actedAt: stopScheduledAt, // StopInstances sent at once: downtime starts here
        awsCalls: 4,
      });
    },
    createImage: () => Promise.resolve({ imageId: IMAGE_ID, created: true }),
    startInstance: (input) =>
      Promise.resolve({
        instanceId: input.instanceId,
        state: 'running',
        at: stopScheduledAt !== undefined ? stopScheduledAt + downtimeMs : input.deadline - stateMs,
        awsCalls: 3,
      }),
    waitForImageAvailable: (input) =>
      Promise.resolve({
        imageId: input.imageId,
        snapshotIds: SNAPSHOT_IDS,
        awsCalls: 9,
        polls: 8,
        heartbeats: 1,
      }),
    tagSnapshots: () => Promise.resolve({ snapshotIds: SNAPSHOT_IDS }),
    deleteImage: (input) =>
      Promise.resolve({
        ...(input.imageId ? { imageId: input.imageId } : {}),
        deregistered: input.imageId !== undefined,
        deletedSnapshotIds: input.imageId ? SNAPSHOT_IDS : [],
      }),
  };
}

/**
 * A stop that blocks until cancelled, then ends as a dead worker's activity does: timed out, a
 * failure other than a cancellation (the time-skipping server cannot reach a real heartbeat timeout).
 */
export const STOP_TIMED_OUT_WHEN_CANCELLED: BlockAt = {
  name: 'stopInstance',
  endsAs: () => {
    throw ApplicationFailure.nonRetryable('activity heartbeat timeout (worker lost)', 'ActivityTimedOut');
  },
};

export const startImageFromInstance = starterOf<typeof imageFromInstance>('imageFromInstance', 'image');

export type Outcome = WorkflowOutcome<ImageFromInstanceResult>;

/** Awaits the run's end (time skipping while it waits), then reads its progress and history. */
export function outcomeOf(handle: WorkflowHandle<typeof imageFromInstance>): Promise<Outcome> {
  return workflowOutcome<ImageFromInstanceResult>(handle);
}

/** `runImageFromInstance` with every activity call recorded: the outcome, and the calls in `log`. */
export function runLogged(env: TestWorkflowEnvironment, activities: Activities, input: unknown) {
  return withLog(activities, (recordedActivities) => runImageFromInstance(env, recordedActivities, input));
}

/** Starts a run on a fresh worker and task queue with `activities`, and awaits its outcome. */
export async function runImageFromInstance(
  env: TestWorkflowEnvironment,
  activities: Activities,
  input: unknown,
): Promise<Outcome> {
  return withWorker(env, activities, async (taskQueue) =>
    outcomeOf(await startImageFromInstance(env, taskQueue, input)),
  );
}
