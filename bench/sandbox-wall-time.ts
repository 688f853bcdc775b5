/**
 * (c) Wall time of one `stop`-mode image run against the AWS sandbox (moto): through Temporal (dev
 * server, the real worker from buildWorker, AmiflowClient) versus a direct script making the same
 * AWS calls with the AWS SDK. Runs alternate, so drift in the machine's load hits both sides alike.
 */
import {
  CreateImageCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  waitUntilImageAvailable,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
} from '@aws-sdk/client-ec2';
import type { DescribeImagesCommandOutput } from '@aws-sdk/client-ec2';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createAwsClients } from '../activities/aws';
import type { PollPolicy } from '../activities/waiting';
import { DEFAULT_POLL_POLICY } from '../activities/waiting';
import { AmiflowClient } from '../client';
import { readWorkerSettings } from '../worker/config';
import { buildWorker } from '../worker/worker';
import type { ImageFromInstanceResult } from '../workflows/contracts';
import type { Moto } from '../devkit/moto';
import { SANDBOX_CREDENTIALS } from '../devkit/moto';
import type { SandboxDurations } from './sandbox-durations';
import { median } from './waiting-cost';

/** An AMI that moto ships in every region, to launch the source instances from. */
const SANDBOX_AMI = 'ami-12c6146b';
const REGION = 'us-east-1';

export interface WallTimeFigures {
  runs: number;
  temporalMs: number[];
  directMs: number[];
  temporalMedianMs: number;
  directMedianMs: number;
  ratio: number;
  /** The modelled AWS durations, or undefined for the sandbox as it is (instant). */
  durations?: string;
}

export async function measureWallTime(opts: {
  env: TestWorkflowEnvironment;
  moto: Moto;
  workflowBundle: WorkflowBundleWithSourceMap;
  runs: number;
  label: string;
  durations?: SandboxDurations;
  /** One untimed run of each first (connections, workflow cache, SDK clients). */
  warmUp: boolean;
}): Promise<WallTimeFigures> {
  const { env, moto, durations } = opts;
  const policy = DEFAULT_POLL_POLICY;
  const taskQueue = `bench-sandbox-${opts.label}-${process.pid}`;
  const settings = readWorkerSettings({ AMIFLOW_AWS_ENDPOINT: moto.endpoint, AMIFLOW_TASK_QUEUE: taskQueue });
  settings.aws.credentials = SANDBOX_CREDENTIALS;
  const { worker, deps } = await buildWorker({
    connection: env.nativeConnection,
    settings,
    deps: {
      policy,
      ...(durations ? { aws: durations.wrap(createAwsClients(settings.aws)) } : {}),
    },
    worker: { workflowBundle: opts.workflowBundle },
  });
  const ec2 = new EC2Client({
    region: REGION,
    endpoint: moto.endpoint,
    credentials: SANDBOX_CREDENTIALS,
    maxAttempts: settings.aws.sdkMaxAttempts,
  });
  durations?.attach(ec2);
  const amiflow = AmiflowClient.fromClient(env.client, taskQueue);
  const temporalMs: number[] = [];
  const directMs: number[] = [];
  try {
    await worker.runUntil(async () => {
      for (let i = opts.warmUp ? -1 : 0; i < opts.runs; i += 1) {
        const forTemporal = await launch(ec2);
        const viaTemporal = await timed(async () => {
          const started = await amiflow.startImageFromInstance({
            region: REGION,
            instanceId: forTemporal,
            imageName: `bench-${opts.label}-temporal-${i + 1}-${Date.now()}`,
            mode: 'stop',
          });
          const result = await amiflow.result<ImageFromInstanceResult>(started.workflowId);
          if (result.instanceFinalState !== 'running') throw new Error('the instance was not left running');
        });
        const forDirect = await launch(ec2);
        const direct = await timed(() =>
          directImageRun(ec2, forDirect, `bench-${opts.label}-direct-${i + 1}-${Date.now()}`, policy),
        );
        if (i >= 0) {
          temporalMs.push(viaTemporal);
          directMs.push(direct);
        }
      }
    });
  } finally {
    ec2.destroy();
    deps.aws.destroy();
  }
  const temporalMedianMs = median(temporalMs);
  const directMedianMs = median(directMs);
  return {
    runs: opts.runs,
    temporalMs,
    directMs,
    temporalMedianMs,
    directMedianMs,
    ratio: temporalMedianMs / directMedianMs,
    ...(durations ? { durations: durations.describe() } : {}),
  };
}

/** Launches a running source instance (setup: not part of the timed run). */
async function launch(ec2: EC2Client): Promise<string> {
  const out = await ec2.send(
    new RunInstancesCommand({ ImageId: SANDBOX_AMI, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1 }),
  );
  const id = out.Instances?.[0]?.InstanceId;
  if (!id) throw new Error('RunInstances returned no instance id');
  return id;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/**
 * The same job without Temporal: the AWS calls amiflow makes, in order, with the SDK's waiters
 * (their first check is at once after the action; later ones back off between the worker's first
 * and longest poll interval, as the worker does).
 */
async function directImageRun(ec2: EC2Client, instanceId: string, name: string, policy: PollPolicy) {
  const waiter = {
    client: ec2,
    maxWaitTime: 900,
    minDelay: policy.firstIntervalMs / 1000,
    maxDelay: policy.maxIntervalMs / 1000,
  };
  const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  const state = described.Reservations?.[0]?.Instances?.[0]?.State?.Name;
  if (state !== 'running') throw new Error(`instance ${instanceId} is ${state}, expected running`);
  const taken = await ec2.send(
    new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [name] }] }),
  );
  if ((taken.Images ?? []).length > 0) throw new Error(`image name ${name} is taken`);
  await ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] }));
  await waitUntilInstanceStopped(waiter, { InstanceIds: [instanceId] });
  const tags = [{ Key: 'amiflow:managed-by', Value: 'bench-direct' }];
  const created = await ec2.send(
    new CreateImageCommand({
      InstanceId: instanceId,
      Name: name,
      NoReboot: true,
      TagSpecifications: [{ ResourceType: 'image', Tags: tags }],
    }),
  );
  const imageId = created.ImageId;
  if (!imageId) throw new Error('CreateImage returned no ImageId');
  await ec2.send(new StartInstancesCommand({ InstanceIds: [instanceId] }));
  const [, available] = await Promise.all([
    waitUntilInstanceRunning(waiter, { InstanceIds: [instanceId] }),
    waitUntilImageAvailable(waiter, { ImageIds: [imageId] }),
  ]);
  const images = (available.reason as DescribeImagesCommandOutput | undefined)?.Images;
  const snapshotIds = (images?.[0]?.BlockDeviceMappings ?? []).flatMap((m) =>
    m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [],
  );
  if (snapshotIds.length > 0) await ec2.send(new CreateTagsCommand({ Resources: snapshotIds, Tags: tags }));
}
