/**
 * Tier-2 harness: the real activity functions, real EC2, KMS and SSM clients whose `send` is mocked
 * by `aws-sdk-client-mock`, a virtual clock (sleeping advances it at once) and Temporal's
 * `MockActivityEnvironment` for the activity context (heartbeats, heartbeat details, attempt).
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Info } from '@temporalio/activity';
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
import type { AwsTarget } from '../../workflows/contracts';
import { REGION, T0 } from './fixtures';

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

/** Real SDK clients in REGION (their `send` is mocked, so the credentials are never used). */
const CLIENT_CONFIG = { region: REGION, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' } };

/** A command a test did not plan for fails loudly, naming the service, instead of resolving `undefined`. */
function refusingUnplanned<
  M extends { onAnyCommand(): { callsFake(fn: (input: unknown) => never): unknown } },
>(mock: M, service: string): M {
  mock.onAnyCommand().callsFake((input: unknown) => {
    throw new Error(`unexpected ${service} command in this test: ${JSON.stringify(input)}`);
  });
  return mock;
}

export function harness(opts: { random?: () => number; policy?: PollPolicy } = {}): Harness {
  const ec2 = new EC2Client(CLIENT_CONFIG);
  const ec2Mock = refusingUnplanned(mockClient(ec2), 'EC2');
  const kms = new KMSClient(CLIENT_CONFIG);
  const kmsMock = refusingUnplanned(mockClient(kms), 'KMS');
  const ssm = new SSMClient(CLIENT_CONFIG);
  const ssmMock = refusingUnplanned(mockClient(ssm), 'SSM');
  const kmsTargets: AwsTarget[] = [];
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

/** The names of the EC2 commands sent, in order. */
export function commandNames(ec2Mock: AwsClientStub<EC2Client>): string[] {
  return ec2Mock.calls().map((c) => c.args[0].constructor.name.replace(/Command$/, ''));
}
