/**
 * `npm run bench:share-copy`: figures for sharing and copying (issue 3). Not a test.
 *
 *   a. AWS API calls per destination of a copy, counted on the worker's clients against the sandbox,
 *      and what the wait adds for copies that take real time (from the poll policy);
 *   b. wall time of a 5-region fan-out in the sandbox (dev server + moto + real worker + client);
 *   c. workflow history events of a 5-destination copy: the sandbox run (same account), and a run
 *      with two cross-account destinations (child share) on the time-skipping server with stubs.
 */
import os from 'node:os';
import type { EC2Client, ServiceInputTypes, ServiceOutputTypes } from '@aws-sdk/client-ec2';
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { InitializeMiddleware } from '@smithy/types';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import type { AwsClients } from '../activities/aws';
import { createAwsClients } from '../activities/aws';
import { DEFAULT_POLL_POLICY } from '../activities/waiting';
import { AmiflowClient } from '../client';
import { readWorkerSettings } from '../worker/config';
import { buildWorker } from '../worker/worker';
import type { AwsTarget, CopyImageResult } from '../workflows/contracts';
import { longImageWait } from '../workflows/presets';
import type { Moto } from '../devkit/moto';
import { SANDBOX_CREDENTIALS, startMoto } from '../devkit/moto';
import {
  SANDBOX_REGION,
  createImageDirectly,
  launchInstance,
  sandboxEc2,
  stockEbsAmi,
} from '../devkit/sandbox-ec2';
import { devServerEnv, timeSkippingEnv, uniqueTaskQueue, workflowBundle } from '../devkit/temporal';
import { copyInput, shareCopyActivities } from '../devkit/fake-share-copy';

const DESTINATIONS = ['us-west-2', 'eu-west-1', 'eu-central-1', 'ap-southeast-2', 'ap-northeast-1'];
const RUNS = process.argv.includes('--quick') ? 1 : 3;

type Counts = Map<string, Map<string, number>>;

/** The worker's AWS clients, each call counted per (account/region) and command. */
function counting(inner: AwsClients): { clients: AwsClients; counts: Counts; reset(): void } {
  const counts: Counts = new Map();
  const patched = new WeakSet<object>();
  const count = (where: string, command: string) => {
    const m = counts.get(where) ?? new Map<string, number>();
    m.set(command, (m.get(command) ?? 0) + 1);
    counts.set(where, m);
  };
  const attach = <C extends EC2Client | KMSClient>(client: C, target: AwsTarget): C => {
    if (patched.has(client)) return client;
    patched.add(client);
    const where = `${target.accountId ?? 'self'}/${target.region}`;
    const mw: InitializeMiddleware<ServiceInputTypes, ServiceOutputTypes> = (next, context) => (args) => {
      count(where, context.commandName?.replace(/Command$/, '') ?? '?');
      return next(args);
    };
    (client as EC2Client).middlewareStack.add(mw, { step: 'initialize', name: 'benchCount' });
    return client;
  };
  return {
    counts,
    reset: () => counts.clear(),
    clients: {
      ec2: async (t) => attach(await inner.ec2(t), t),
      kms: async (t) => attach(await inner.kms(t), t),
      destroy: () => inner.destroy(),
    },
  };
}

/** DescribeImages polls and DescribeSnapshots heartbeat calls while a copy takes `minutes`. */
function waitCalls(minutes: number): { polls: number; heartbeatCalls: number } {
  const p = DEFAULT_POLL_POLICY;
  const heartbeatMs = 6 * 60_000 * p.heartbeatFraction; // longImageWait: heartbeat timeout 6 min
  let t = 0;
  let polls = 0;
  let interval = p.firstIntervalMs;
  let lastHeartbeat = -Infinity;
  let heartbeatCalls = 0;
  for (;;) {
    polls += 1;
    if (t >= minutes * 60_000) return { polls, heartbeatCalls };
    if (t - lastHeartbeat >= heartbeatMs) {
      heartbeatCalls += 1;
      lastHeartbeat = t;
    }
    t += Math.min(interval, lastHeartbeat + heartbeatMs - t);
    interval = Math.min(interval * p.backoff, p.maxIntervalMs);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function sandboxFanOut(env: TestWorkflowEnvironment, moto: Moto) {
  const taskQueue = uniqueTaskQueue('bench-copy');
  const settings = readWorkerSettings({ AMIFLOW_AWS_ENDPOINT: moto.endpoint, AMIFLOW_TASK_QUEUE: taskQueue });
  settings.aws.credentials = SANDBOX_CREDENTIALS;
  const counted = counting(createAwsClients(settings.aws));
  const { worker } = await buildWorker({
    connection: env.nativeConnection,
    settings,
    deps: { aws: counted.clients },
    worker: { taskQueue, workflowBundle: await workflowBundle() },
  });
  const source = sandboxEc2(moto.endpoint, SANDBOX_REGION);
  const client = AmiflowClient.fromClient(env.client, taskQueue);
  const wallMs: number[] = [];
  let perDestination: Map<string, number> | undefined;
  let perRun: Map<string, number> | undefined;
  let events = 0;
  try {
    await worker.runUntil(async () => {
      const stock = await stockEbsAmi(source);
      for (let i = 0; i <= RUNS; i += 1) {
        const imageId = await createImageDirectly(
          source,
          await launchInstance(source, stock),
          `bench-copy-${i}`,
        );
        await source.send(
          new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: 'team', Value: 'bench' }] }),
        );
        counted.reset();
        const began = performance.now();
        const run = await client.startCopyImage(
          { region: SANDBOX_REGION, imageId, destinations: DESTINATIONS.map((region) => ({ region })) },
          { searchAttributes: false },
        );
        const result = await client.result<CopyImageResult>(run.workflowId);
        const ms = performance.now() - began;
        if (result.outcome !== 'complete') throw new Error(`copy ${run.workflowId} ended ${result.outcome}`);
        if (i === 0) continue; // warm-up: connections, workflow cache, SDK clients
        wallMs.push(ms);
        perDestination = counted.counts.get(`self/${DESTINATIONS[0]}`);
        perRun = counted.counts.get(`self/${SANDBOX_REGION}`);
        events = (await client.handle(run.workflowId).fetchHistory()).events?.length ?? 0;
      }
    });
  } finally {
    source.destroy();
    counted.clients.destroy();
  }
  return { wallMs, perDestination, perRun, events };
}

async function crossAccountHistory(): Promise<number> {
  const env = await timeSkippingEnv();
  try {
    const taskQueue = uniqueTaskQueue('bench-history');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: shareCopyActivities(),
    });
    return await worker.runUntil(async () => {
      const handle = await env.client.workflow.start('copyImage', {
        taskQueue,
        workflowId: `bench-history-${process.pid}`,
        args: [copyInput()],
      });
      await handle.result();
      return (await handle.fetchHistory()).events?.length ?? 0;
    });
  } finally {
    await env.teardown();
  }
}

function show(m: Map<string, number> | undefined): string {
  if (!m) return '(none)';
  const total = [...m.values()].reduce((a, b) => a + b, 0);
  return `${total} (${[...m].map(([k, v]) => `${k} ${v}`).join(', ')})`;
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR', other: 'ERROR' }) } },
  });
  console.log(`amiflow bench: shareImage / copyImage · node ${process.version} · ${os.cpus().length} cores`);
  const [env, moto] = await Promise.all([devServerEnv(), startMoto(), workflowBundle()]);
  try {
    const fan = await sandboxFanOut(env, moto);
    const xHistory = await crossAccountHistory();

    console.log('\na. AWS API calls per destination (copy to another region of the same account)');
    console.log(`   counted in the sandbox, per destination region: ${show(fan.perDestination)}`);
    console.log(`   per run, in the source region (not per destination): ${show(fan.perRun)}`);
    console.log(
      '   = DescribeImages (this run’s copy already there?) + CopyImage + CreateTags (ownership tags) + ' +
        'DescribeImages per wait poll + DescribeImages + CreateTags (snapshot tags); the sandbox makes copies ' +
        'available at once, so its wait is one poll',
    );
    for (const minutes of [10, 60, 240]) {
      const w = waitCalls(minutes);
      console.log(
        `   a copy taking ${minutes} min adds ${w.polls - 1} more DescribeImages polls and ${w.heartbeatCalls} ` +
          `DescribeSnapshots (progress at heartbeats; heartbeat timeout ${String(longImageWait(3600).heartbeatTimeout)})`,
      );
    }
    console.log(
      '   cross-account destinations add, once per run (the child share): DescribeImages, DescribeSnapshots, ' +
        'DescribeImageAttribute, DescribeSnapshotAttribute per snapshot, ModifySnapshotAttribute per snapshot, ' +
        'ModifyImageAttribute, and the same ModifyImageAttribute / ModifySnapshotAttribute to withdraw; with a ' +
        'customer managed key also DescribeKey, ListGrants + CreateGrant per account, ListGrants + RevokeGrant ' +
        'per account; plus DescribeKey in the destination when it names a key',
    );

    console.log(
      '\nb. wall time of a 5-region fan-out in the sandbox (dev server + moto + real worker + client)',
    );
    console.log(
      `   ${DESTINATIONS.join(', ')}: median ${(median(fan.wallMs) / 1000).toFixed(2)} s over ${fan.wallMs.length} ` +
        `run(s) (${fan.wallMs.map((m) => (m / 1000).toFixed(2)).join(', ')} s), after one warm-up run`,
    );

    console.log('\nc. workflow history events of a 5-destination copy');
    console.log(`   5 regions, same account (sandbox, dev server): ${fan.events} events`);
    console.log(
      `   3 regions + 2 cross-account destinations (time-skipping server, stub activities): ${xHistory} events ` +
        '(the child share run has its own history)',
    );
    console.log(
      '   the events do not grow with the length of the copies: each wait is one heartbeating activity',
    );
  } finally {
    await Promise.allSettled([env.teardown(), moto.stop()]);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
