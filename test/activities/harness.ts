/**
 * Tier-2 harness: the real activity functions, a real `EC2Client` whose `send` is mocked by
 * `aws-sdk-client-mock`, a virtual clock (sleeping advances it at once) and Temporal's
 * `MockActivityEnvironment` for the activity context (heartbeats, heartbeat details, attempt).
 */
import assert from 'node:assert/strict';
import { EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import type { Image, Instance, InstanceStateName } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Info } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import { mockClient } from 'aws-sdk-client-mock';
import type { ActivityDeps, Activities } from '../../activities';
import { createActivities } from '../../activities';
import type { AwsClients } from '../../activities/aws';
import type { PollPolicy } from '../../activities/waiting';
import { DEFAULT_POLL_POLICY } from '../../activities/waiting';
import { VirtualClock as DevkitVirtualClock } from '../../devkit/virtual-clock';
import type { AwsTarget, FailureType, Tags } from '../../workflows/contracts';
import { TAG } from '../../workflows/contracts';

export const REGION = 'eu-west-1';
export const ACCOUNT = '111122223333';
export const TARGET: AwsTarget = { region: REGION, accountId: ACCOUNT };
export const INSTANCE_ID = 'i-0123456789abcdef0';
export const IMAGE_ID = 'ami-0123456789abcdef0';
export const IMAGE_NAME = 'web-2025-01-01';
export const WORKFLOW_ID = 'image-web-1';
export const RUN_ID = '0b7a4c1e-0000-4000-8000-000000000001';
/** 2025-01-01T00:00:00Z: the virtual clock starts here. */
export const T0 = Date.UTC(2025, 0, 1);

/** The devkit's virtual clock, starting at T0. */
export class VirtualClock extends DevkitVirtualClock {
  constructor(start: number = T0) {
    super(start);
  }
}

export interface Harness {
  ec2: EC2Client;
  ec2Mock: AwsClientStub<EC2Client>;
  kms: KMSClient;
  kmsMock: AwsClientStub<KMSClient>;
  /** Every target an activity asked `aws.kms()` for. */
  kmsTargets: AwsTarget[];
  ssm: SSMClient;
  ssmMock: AwsClientStub<SSMClient>;
  /** Every target an activity asked `aws.ssm()` for. */
  ssmTargets: AwsTarget[];
  clock: VirtualClock;
  deps: ActivityDeps;
  activities: Activities;
  /** Every target an activity asked `aws.ec2()` for. */
  targets: AwsTarget[];
  /** Every heartbeat seen by `deps.onHeartbeat`, copied at the moment it was sent. */
  onHeartbeatCalls: unknown[];
}

export function harness(opts: { random?: () => number; policy?: PollPolicy } = {}): Harness {
  const ec2 = new EC2Client({
    region: REGION,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' },
  });
  const ec2Mock = mockClient(ec2);
  // A command a test did not plan for fails loudly instead of resolving `undefined`.
  ec2Mock.onAnyCommand().callsFake((input: unknown) => {
    throw new Error(`unexpected EC2 command in this test: ${JSON.stringify(input)}`);
  });
  const kms = new KMSClient({
    region: REGION,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' },
  });
  const kmsMock = mockClient(kms);
  kmsMock.onAnyCommand().callsFake((input: unknown) => {
    throw new Error(`unexpected KMS command in this test: ${JSON.stringify(input)}`);
  });
  const kmsTargets: AwsTarget[] = [];
  const ssm = new SSMClient({
    region: REGION,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' },
  });
  const ssmMock = mockClient(ssm);
  ssmMock.onAnyCommand().callsFake((input: unknown) => {
    throw new Error(`unexpected SSM command in this test: ${JSON.stringify(input)}`);
  });
  const ssmTargets: AwsTarget[] = [];
  const clock = new VirtualClock();
  const targets: AwsTarget[] = [];
  const onHeartbeatCalls: unknown[] = [];
  const aws: AwsClients = {
    ec2(target) {
      targets.push(target);
      return Promise.resolve(ec2);
    },
    kms(target) {
      kmsTargets.push(target);
      return Promise.resolve(kms);
    },
    ssm(target) {
      ssmTargets.push(target);
      return Promise.resolve(ssm);
    },
    destroy() {
      ec2.destroy();
      kms.destroy();
      ssm.destroy();
    },
  };
  const deps: ActivityDeps = {
    aws,
    clock,
    random: opts.random ?? (() => 0.5),
    policy: opts.policy ?? DEFAULT_POLL_POLICY,
    onHeartbeat: (details) => onHeartbeatCalls.push(structuredClone(details)),
  };
  return {
    ec2,
    ec2Mock,
    kms,
    kmsMock,
    kmsTargets,
    ssm,
    ssmMock,
    ssmTargets,
    clock,
    deps,
    activities: createActivities(deps),
    targets,
    onHeartbeatCalls,
  };
}

const quietLogger = new DefaultLogger('ERROR', () => undefined);

export interface ActivityRun {
  env: MockActivityEnvironment;
  /** Heartbeat details as the activity sent them (deep copies: the activity may reuse its object). */
  heartbeats: unknown[];
  /** Runs an activity function in this context, keeping its argument and result types. */
  run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R>;
}

/** An activity context; `info` sets heartbeatTimeoutMs, heartbeatDetails (a retry), attempt. */
export function activityEnv(info: Partial<Info> = {}): ActivityRun {
  const env = new MockActivityEnvironment(info, { logger: quietLogger });
  const heartbeats: unknown[] = [];
  env.on('heartbeat', (details: unknown) => heartbeats.push(structuredClone(details)));
  return {
    env,
    heartbeats,
    run: <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A) =>
      env.run<A, R, typeof fn>(fn, ...args),
  };
}

/** The error a promise rejects with; fails the test when it resolves. */
export async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a failure, but the activity succeeded');
}

/** Asserts a non-retryable `ApplicationFailure` of `type` whose message contains every fragment. */
export async function nonRetryableFailure(
  p: Promise<unknown>,
  type: FailureType,
  ...messageContains: string[]
): Promise<ApplicationFailure> {
  const err = await errorOf(p);
  assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
  assert.equal(err.type, type, `failure type (message: ${err.message})`);
  assert.equal(err.nonRetryable, true, 'the failure must be non-retryable');
  for (const fragment of messageContains)
    assert.ok(
      err.message.includes(fragment),
      `message ${JSON.stringify(err.message)} should contain ${fragment}`,
    );
  return err;
}

/** An error shaped like the SDK's own (what `send` rejects with on an AWS error answer). */
export function awsError(
  name: string,
  httpStatusCode: number,
  message = `simulated ${name}`,
): EC2ServiceException {
  return new EC2ServiceException({
    name,
    $fault: httpStatusCode >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode, requestId: 'req-test' },
    message,
  });
}

export function instance(state: InstanceStateName | undefined, extra: Partial<Instance> = {}): Instance {
  return {
    InstanceId: INSTANCE_ID,
    RootDeviceType: 'ebs',
    ...(state ? { State: { Name: state } } : {}),
    ...extra,
  };
}

/** A DescribeInstances answer holding one instance. */
export function reservation(i: Instance) {
  return { Reservations: [{ Instances: [i] }] };
}

export function ownerTags(workflowId = WORKFLOW_ID, runId = RUN_ID) {
  return [
    { Key: TAG.workflowId, Value: workflowId },
    { Key: TAG.runId, Value: runId },
  ];
}

export const SNAPSHOTS = ['snap-0aaaaaaaaaaaaaaa1', 'snap-0aaaaaaaaaaaaaaa2'] as const;

/** An image made by this run (its owner tags), with two EBS snapshots and an ephemeral volume. */
export function image(state: Image['State'], extra: Partial<Image> = {}): Image {
  return {
    ImageId: IMAGE_ID,
    Name: IMAGE_NAME,
    State: state,
    Tags: ownerTags(),
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { SnapshotId: SNAPSHOTS[0], VolumeSize: 8 } },
      { DeviceName: '/dev/xvdb', Ebs: { SnapshotId: SNAPSHOTS[1], VolumeSize: 100 } },
      { DeviceName: '/dev/sdc', VirtualName: 'ephemeral0' },
    ],
    ...extra,
  };
}

export const USER_TAGS: Tags = { team: 'web', env: 'prod' };

/** The names of the EC2 commands sent, in order. */
export function commandNames(ec2Mock: AwsClientStub<EC2Client>): string[] {
  return ec2Mock.calls().map((c) => c.args[0].constructor.name.replace(/Command$/, ''));
}
