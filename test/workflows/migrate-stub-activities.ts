/**
 * Stubs for the migrateInstance time-skipping tests: the migration activities plus the
 * imageFromInstance ones (the child workflow runs on the same worker), typed against the real
 * activity signatures. The source instance's state is kept, so the child sees the source stopped
 * when the migration stopped it first, as EC2 would show it.
 */
import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Activities } from '../../activities';
import type { MigrationPlan } from '../../activities/launch';
import type {
  InstanceState,
  MigrateInstanceInput,
  MigrateInstanceResult,
  WorkflowProgress,
} from '../../workflows/contracts';
import { progressQuery } from '../../workflows/contracts';
import type { migrateInstance } from '../../workflows';
import { uniqueTaskQueue } from '../support/temporal';
import type { History } from './stub-activities';
import { INSTANCE_ID, eventually, happyActivities, startWorker, uniqueWorkflowId } from './stub-activities';

export const SOURCE_ID = INSTANCE_ID;
export const NEW_ID = 'i-0abcdefabcdefabcd';
export const SUBNET_B = 'subnet-0bbbbbbbbbbbbbbbb';
export const ALLOCATION_ID = 'eipalloc-0123456789abcdef0';

export function migrateInput(overrides: Partial<MigrateInstanceInput> = {}): MigrateInstanceInput {
  return {
    region: 'eu-west-1',
    instanceId: SOURCE_ID,
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

export type MigrationOutcome =
  | {
      ok: true;
      result: MigrateInstanceResult;
      progress: WorkflowProgress;
      history: History;
      workflowId: string;
    }
  | { ok: false; error: unknown; progress: WorkflowProgress; history: History; workflowId: string };

export function startMigration(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  input: unknown,
  workflowId = uniqueWorkflowId('migrate'),
): Promise<WorkflowHandle<typeof migrateInstance>> {
  return env.client.workflow.start<typeof migrateInstance>('migrateInstance', {
    taskQueue,
    workflowId,
    // Deliberately unchecked: tests also send inputs the client library would refuse.
    args: [input as MigrateInstanceInput],
  });
}

export async function migrationOutcome(
  handle: WorkflowHandle<typeof migrateInstance>,
): Promise<MigrationOutcome> {
  let settled: { ok: true; result: MigrateInstanceResult } | { ok: false; error: unknown };
  try {
    settled = { ok: true, result: await handle.result() };
  } catch (error) {
    settled = { ok: false, error };
  }
  return {
    ...settled,
    progress: await handle.query(progressQuery),
    history: await handle.fetchHistory(),
    workflowId: handle.workflowId,
  };
}

/** Runs `fn` while a fresh worker serves a fresh task queue, then shuts the worker down. */
export async function withMigrationWorker<T>(
  env: TestWorkflowEnvironment,
  activities: Activities,
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = uniqueTaskQueue('migrate-instance');
  const worker = await startWorker(env, taskQueue, activities);
  return worker.runUntil(fn(taskQueue));
}

export async function runMigration(
  env: TestWorkflowEnvironment,
  activities: Activities,
  input: unknown,
): Promise<MigrationOutcome> {
  return withMigrationWorker(env, activities, async (taskQueue) =>
    migrationOutcome(await startMigration(env, taskQueue, input)),
  );
}

export function migrated(outcome: MigrationOutcome): MigrateInstanceResult {
  if (!outcome.ok) assert.fail(`expected success, the run failed: ${String(outcome.error)}`);
  return outcome.result;
}

export function migrationFailed(outcome: MigrationOutcome): unknown {
  if (outcome.ok) assert.fail(`expected a failure, the run succeeded: ${JSON.stringify(outcome.result)}`);
  return outcome.error;
}

/** Resolves once the workflow's progress shows `step` in one of `states`. */
export async function migrationStep(
  handle: WorkflowHandle<typeof migrateInstance>,
  step: string,
  states: readonly string[],
): Promise<WorkflowProgress> {
  return eventually(`step '${step}' to be ${states.join(' or ')}`, async () => {
    const progress = await handle.query(progressQuery);
    const s = progress.steps.find((x) => x.name === step);
    return s && states.includes(s.state) ? progress : undefined;
  });
}

/**
 * The failure chain as names, outermost first, e.g. `['WorkflowFailedError', 'ChildWorkflowFailure',
 * 'ActivityFailure(createImage)', 'ApplicationFailure(AwsLimitExceeded)']`.
 */
export function failureChain(err: unknown): string[] {
  const out: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    const detail =
      'activityType' in e
        ? `(${String(e.activityType)})`
        : 'type' in e && typeof e.type === 'string' && e.name === 'ApplicationFailure'
          ? `(${e.type})`
          : '';
    out.push(`${e.name}${detail}`);
  }
  return out;
}
