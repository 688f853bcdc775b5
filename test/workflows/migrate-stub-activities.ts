/**
 * Stubs for the migrateInstance time-skipping tests: the migration activities plus the
 * imageFromInstance ones (the child workflow runs on the same worker), typed against the real
 * activity signatures. The source instance's state is kept, so the child sees the source stopped
 * when the migration stopped it first, as EC2 would show it.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Activities } from '../../activities';
import type { MigrationPlan } from '../../activities/launch';
import type { InstanceState, MigrateInstanceInput, MigrateInstanceResult } from '../../workflows/contracts';
import type { migrateInstance } from '../../workflows';
import type { WorkflowOutcome } from './harness';
import {
  cancelledWhileBlocked,
  failed,
  failureChain,
  starterOf,
  stepReached,
  succeeded,
  withWorker,
  workflowOutcome,
} from './harness';
import { INSTANCE_ID, happyActivities, imageInput } from './stub-activities';
import type { RunOf } from './run-helpers';
import { runLogged } from './run-helpers';

export const SOURCE_ID = INSTANCE_ID;
export const NEW_ID = 'i-0abcdefabcdefabcd';
export const SUBNET_B = 'subnet-0bbbbbbbbbbbbbbbb';
export const ALLOCATION_ID = 'eipalloc-0123456789abcdef0';

/** A valid input, on the source the imageFromInstance stubs describe; each test overrides what it is about. */
export function migrateInput(overrides: Partial<MigrateInstanceInput> = {}): MigrateInstanceInput {
  const { region, instanceId } = imageInput();
  return {
    region,
    instanceId,
    targetAvailabilityZone: 'eu-west-1b',
    sourceAction: 'terminate',
    elasticIp: 'move',
    ...overrides,
  };
}

export interface MigrationScenario {
  sourceState?: 'running' | 'stopped';
  /** The source has an Elastic IP (moved when the input says `move`). Default true. */
  elasticIp?: boolean;
  /** The source volumes carry tags of their own. Default true. */
  volumeTags?: boolean;
}

/** What planMigration answers for the scenario and the input. */
export function planFor(scenario: MigrationScenario, input: { elasticIp?: 'move' | 'leave' }): MigrationPlan {
  const withEip = scenario.elasticIp ?? true;
  return {
    source: {
      instanceId: SOURCE_ID,
      state: scenario.sourceState ?? 'running',
      availabilityZone: 'eu-west-1a',
      subnetId: 'subnet-0aaaaaaaaaaaaaaaa',
      vpcId: 'vpc-0123456789abcdef0',
      instanceType: 'm7i.large',
      privateIpAddress: '10.0.1.17',
      terminationProtected: false,
    },
    launch: {
      instanceType: 'm7i.large',
      availabilityZone: 'eu-west-1b',
      subnetId: SUBNET_B,
      securityGroupIds: ['sg-0123456789abcdef0'],
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volumeSize: 20,
          volumeType: 'gp3',
          iops: 3000,
          throughput: 125,
          deleteOnTermination: true,
          encrypted: false,
        },
      ],
      tags: { Name: 'web-1', team: 'web' },
      disableApiTermination: false,
      ebsOptimized: true,
      monitoring: false,
    },
    volumeTags: scenario.volumeTags === false ? {} : { '/dev/xvda': { backup: 'daily' } },
    ...(withEip && input.elasticIp
      ? { elasticIp: { allocationId: ALLOCATION_ID, publicIp: '203.0.113.10', action: input.elasticIp } }
      : {}),
    notCarriedOver: ['private IP 10.0.1.17 (the new subnet has other addresses)'],
  };
}

/**
 * Every activity succeeding, as AWS would answer: the imageFromInstance stubs for the child, the
 * migration stubs for the parent, and the source's state kept between them.
 */
export function migrationActivities(scenario: MigrationScenario = {}): Activities {
  const base = happyActivities({ state: scenario.sourceState ?? 'running' });
  const states = new Map<string, InstanceState>([[SOURCE_ID, scenario.sourceState ?? 'running']]);
  return {
    ...base,
    describeInstance: async (ref) => ({
      ...(await base.describeInstance(ref)),
      state: states.get(ref.instanceId) ?? 'running',
    }),
    stopInstance: (input) => {
      states.set(input.instanceId, 'stopped');
      return base.stopInstance(input);
    },
    startInstance: (input) => {
      states.set(input.instanceId, 'running');
      return base.startInstance(input);
    },
    planMigration: (input) => Promise.resolve(planFor(scenario, input)),
    launchInstance: (input) =>
      Promise.resolve({ instanceId: NEW_ID, created: true, clientToken: `amiflow-${input.owner.runId}` }),
    waitForInstanceReady: (input) =>
      Promise.resolve({
        instanceId: input.instanceId,
        availabilityZone: 'eu-west-1b',
        at: input.deadline,
        awsCalls: 4,
      }),
    copyVolumeTags: () => Promise.resolve({ volumeIds: ['vol-0bbbbbbbbbbbbbbb1'] }),
    moveElasticIp: () => Promise.resolve({ associationId: 'eipassoc-0123456789abcdef0' }),
    terminateSourceInstance: (input) => {
      states.set(input.instanceId, 'terminated');
      return Promise.resolve({ instanceId: input.instanceId, at: input.deadline });
    },
    terminateLaunchedInstance: (input) =>
      Promise.resolve({ instanceId: input.instanceId ?? NEW_ID, terminated: true }),
  };
}

export type MigrationOutcome = WorkflowOutcome<MigrateInstanceResult>;

export const startMigration = starterOf<typeof migrateInstance>('migrateInstance', 'migrate');

export function migrationOutcome(handle: WorkflowHandle<typeof migrateInstance>): Promise<MigrationOutcome> {
  return workflowOutcome<MigrateInstanceResult>(handle);
}

const MIGRATION: RunOf<WorkflowHandle<typeof migrateInstance>, MigrationOutcome> = {
  queuePrefix: 'migrate-instance',
  start: startMigration,
  outcome: migrationOutcome,
};

/** Runs `fn` while a fresh worker serves a fresh task queue, then shuts the worker down. */
export function withMigrationWorker<T>(
  env: TestWorkflowEnvironment,
  activities: Activities,
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  return withWorker(env, activities, fn, MIGRATION.queuePrefix);
}

/**
 * A migration of `migrateInput()` on a fresh worker serving `activities`, cancelled while `blocked`
 * runs (with `afterLaunch`, once the new instance is launched too), to its end.
 */
export function cancelledMigration(
  env: TestWorkflowEnvironment,
  activities: Activities,
  blocked: { entered: Promise<void>; cancelled: Promise<void> },
  { afterLaunch = false }: { afterLaunch?: boolean } = {},
): Promise<MigrationOutcome> {
  return cancelledWhileBlocked<MigrateInstanceResult>(
    env,
    activities,
    blocked,
    (taskQueue) => startMigration(env, taskQueue, migrateInput()),
    {
      queuePrefix: MIGRATION.queuePrefix,
      ...(afterLaunch ? { beforeCancel: (h) => stepReached(h, 'launch instance', ['done']) } : {}),
    },
  );
}

/** A migration of `input` on a fresh worker serving `activities`: the outcome, and the calls in `log`. */
export function runLoggedMigration(env: TestWorkflowEnvironment, activities: Activities, input: unknown) {
  return runLogged(env, MIGRATION, activities, input);
}

export { succeeded as migrated, failed as migrationFailed, stepReached as migrationStep, failureChain };
