/**
 * (c) Wall time of one `stop`-mode image run against the AWS sandbox (moto): through Temporal (dev
 * server, the production worker from buildWorker with its image-wait watcher, AmiflowClient) versus
 * a direct script making the same AWS calls with the AWS SDK. Runs alternate, so drift in the
 * machine's load hits both sides alike.
 *
 * Fair by construction: the direct script polls on the schedules amiflow polls on (instances: at
 * once after the action, then the worker's instance-wait intervals; images: at once, then the
 * watcher's intervals), so what differs is the orchestration, not the polling. Each run is also
 * taken apart step by step from the AWS side (RunTimeline): where the two sides' times differ.
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
} from '@aws-sdk/client-ec2';
import type { Image } from '@aws-sdk/client-ec2';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createAwsClients } from '../activities/aws';
import { DEFAULT_WATCHER_OPTIONS, imagePollIntervalMs } from '../activities/image-wait-watcher';
import type { PollPolicy } from '../activities/waiting';
import { DEFAULT_POLL_POLICY } from '../activities/waiting';
import { AmiflowClient } from '../client';
import { readWorkerSettings } from '../worker/config';
import { buildWorker } from '../worker/worker';
import type { ImageFromInstanceResult } from '../workflows/contracts';
import type { Moto } from '../devkit/moto';
import { SANDBOX_CREDENTIALS } from '../devkit/moto';
import type { RunTimeline } from './sandbox-durations';
import { SandboxDurations } from './sandbox-durations';
import { median } from './waiting-cost';

/** An AMI that moto ships in every region, to launch the source instances from. */
const SANDBOX_AMI = 'ami-12c6146b';
const REGION = 'us-east-1';

/**
 * The worker's poll policy with no jitter, for both sides: jitter spreads a fleet's polls over
 * time; in a handful of single runs it only adds noise (a poll that lands just before or just after
 * the state change moves a run by a whole interval) without changing what either side pays on average.
 */
export const WALL_TIME_POLICY: PollPolicy = { ...DEFAULT_POLL_POLICY, jitter: 0 };

/**
 * Where an image run's time goes, from the AWS side (ms). `stopAction`: from the run's start to
 * StopInstances; `stopWait`: to the first answer saying stopped; `toCreate`: from there to
 * CreateImage; `toStart`: CreateImage to StartInstances; `imageWait` / `startWait`: to the first
 * answers saying available / running; `tail`: from the later of those to the run's end.
 */
export const PHASES = [
  'stopAction',
  'stopWait',
  'toCreate',
  'toStart',
  'imageWait',
  'startWait',
  'tail',
] as const;
export type Phase = (typeof PHASES)[number];

export interface WallTimeFigures {
  runs: number;
  temporalMs: number[];
  directMs: number[];
  temporalMedianMs: number;
  directMedianMs: number;
  ratio: number;
  /** Median of each phase over the runs, per side. */
  phases: { temporal: Record<Phase, number>; direct: Record<Phase, number> };
  /** The modelled AWS durations, or undefined for the sandbox as it is (instant). */
  durations?: string;
}

export async function measureWallTime(opts: {
  env: TestWorkflowEnvironment;
  moto: Moto;
  workflowBundle: WorkflowBundleWithSourceMap;
  runs: number;
  label: string;
  /** Modelled EC2 durations; without, the sandbox as it is (its timelines recorded all the same). */
  durations?: SandboxDurations;
  /** One untimed run of each first (connections, workflow cache, SDK clients). */
  warmUp: boolean;
}): Promise<WallTimeFigures> {
  const { env, moto } = opts;
  const model = opts.durations ?? new SandboxDurations({ stopMs: 0, startMs: 0, imageMs: 0 });
  const policy = WALL_TIME_POLICY;
  const taskQueue = `bench-sandbox-${opts.label}-${process.pid}`;
  const settings = readWorkerSettings({ AMIFLOW_AWS_ENDPOINT: moto.endpoint, AMIFLOW_TASK_QUEUE: taskQueue });
  settings.aws.credentials = SANDBOX_CREDENTIALS;
  // As worker/main.ts builds it: image waits go to the watcher through the async completion client.
  const { worker, deps, waits } = await buildWorker({
    connection: env.nativeConnection,
    settings,
    deps: { policy, aws: model.wrap(createAwsClients(settings.aws)) },
    worker: { workflowBundle: opts.workflowBundle },
    asyncWaitsClient: env.client,
  });
  if (!waits) throw new Error('the worker was built without its image-wait watcher');
  const ec2 = new EC2Client({
    region: REGION,
    endpoint: moto.endpoint,
    credentials: SANDBOX_CREDENTIALS,
    maxAttempts: settings.aws.sdkMaxAttempts,
  });
  model.attach(ec2);
  const amiflow = AmiflowClient.fromClient(env.client, taskQueue);
  const temporal: Timed[] = [];
  const direct: Timed[] = [];
  const running = waits.run(worker);
  try {
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
      const viaDirect = await timed(() =>
        directImageRun(ec2, forDirect, `bench-${opts.label}-direct-${i + 1}-${Date.now()}`, policy),
      );
      if (i >= 0) {
        temporal.push({ ...viaTemporal, timeline: model.timeline(forTemporal) });
        direct.push({ ...viaDirect, timeline: model.timeline(forDirect) });
      }
    }
  } finally {
    waits.shutdown(worker);
    await running;
    ec2.destroy();
    deps.aws.destroy();
  }
  const temporalMs = temporal.map((t) => t.ms);
  const directMs = direct.map((t) => t.ms);
  const temporalMedianMs = median(temporalMs);
  const directMedianMs = median(directMs);
  return {
    runs: opts.runs,
    temporalMs,
    directMs,
    temporalMedianMs,
    directMedianMs,
    ratio: temporalMedianMs / directMedianMs,
    phases: { temporal: medianPhases(temporal), direct: medianPhases(direct) },
    ...(opts.durations ? { durations: opts.durations.describe() } : {}),
  };
}

interface Timed {
  /** Epoch ms at the run's start and end, and its wall time. */
  startedAt: number;
  endedAt: number;
  ms: number;
  timeline: RunTimeline;
}

function phasesOf(t: Timed): Record<Phase, number> {
  const tl = t.timeline;
  const need = (v: number | undefined, what: string): number => {
    if (v === undefined) throw new Error(`the run never reached '${what}' (timeline ${JSON.stringify(tl)})`);
    return v;
  };
  const stopSent = need(tl.stopSent, 'StopInstances');
  const stoppedSeen = need(tl.stoppedSeen, 'stopped');
  const createSent = need(tl.createSent, 'CreateImage');
  const startSent = need(tl.startSent, 'StartInstances');
  const availableSeen = need(tl.availableSeen, 'available');
  const runningSeen = need(tl.runningSeen, 'running');
  return {
    stopAction: stopSent - t.startedAt,
    stopWait: stoppedSeen - stopSent,
    toCreate: createSent - stoppedSeen,
    toStart: startSent - createSent,
    imageWait: availableSeen - createSent,
    startWait: runningSeen - startSent,
    tail: t.endedAt - Math.max(availableSeen, runningSeen),
  };
}

function medianPhases(runs: Timed[]): Record<Phase, number> {
  const each = runs.map(phasesOf);
  return Object.fromEntries(PHASES.map((p) => [p, median(each.map((e) => e[p]))])) as Record<Phase, number>;
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

async function timed(fn: () => Promise<void>): Promise<Omit<Timed, 'timeline'>> {
  const startedAt = Date.now();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  return { startedAt, endedAt: Date.now(), ms };
}

/**
 * The gaps between the polls of an instance wait, as amiflow's stop and start activities space them
 * (activities/instances.ts `instancePolicy`: sooner and capped lower than the worker's policy).
 */
function* instanceGaps(policy: PollPolicy): Generator<number> {
  let interval = Math.min(policy.firstIntervalMs, 500);
  const max = Math.min(policy.maxIntervalMs, 5_000);
  for (;;) {
    yield interval * (1 - policy.jitter + 2 * policy.jitter * Math.random());
    interval = Math.min(interval * policy.backoff, max);
  }
}

/** The gaps between the polls of an image wait, as the watcher spaces them. */
function* imageGaps(): Generator<number> {
  for (let polls = 1; ; polls++) yield imagePollIntervalMs(DEFAULT_WATCHER_OPTIONS, polls);
}

/** Reads `read` at once, then after each gap, until it returns a value; fails after 15 minutes. */
async function pollOnSchedule<T>(gaps: Iterator<number>, read: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('gave up polling after 15 minutes');
    const gap = gaps.next();
    await new Promise((resolve) => setTimeout(resolve, gap.done ? 1_000 : gap.value));
  }
}

async function instanceIn(ec2: EC2Client, instanceId: string, wanted: string): Promise<true | undefined> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  return out.Reservations?.[0]?.Instances?.[0]?.State?.Name === wanted ? true : undefined;
}

async function imageAvailable(ec2: EC2Client, imageId: string): Promise<Image | undefined> {
  const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
  const image = out.Images?.[0];
  if (image?.State === 'failed') throw new Error(`image ${imageId} failed`);
  return image?.State === 'available' ? image : undefined;
}

/**
 * The same job without Temporal, as a careful engineer would script it: the AWS calls amiflow
 * makes, in order, each wait polling at once after its action and then on amiflow's schedule.
 */
async function directImageRun(ec2: EC2Client, instanceId: string, name: string, policy: PollPolicy) {
  const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  const state = described.Reservations?.[0]?.Instances?.[0]?.State?.Name;
  if (state !== 'running') throw new Error(`instance ${instanceId} is ${state}, expected running`);
  const taken = await ec2.send(
    new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [name] }] }),
  );
  if ((taken.Images ?? []).length > 0) throw new Error(`image name ${name} is taken`);
  await ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] }));
  await pollOnSchedule(instanceGaps(policy), () => instanceIn(ec2, instanceId, 'stopped'));
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
  const [, image] = await Promise.all([
    pollOnSchedule(instanceGaps(policy), () => instanceIn(ec2, instanceId, 'running')),
    pollOnSchedule(imageGaps(), () => imageAvailable(ec2, imageId)),
  ]);
  const snapshotIds = (image.BlockDeviceMappings ?? []).flatMap((m) =>
    m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [],
  );
  if (snapshotIds.length > 0) await ec2.send(new CreateTagsCommand({ Resources: snapshotIds, Tags: tags }));
}
