/**
 * The worker process of the memory benchmark (d), started by bench/worker-memory.ts with an IPC
 * channel. It is the real worker (buildWorker, settings from the environment) with stub activities
 * around the real `waitForImageAvailable`, whose fake EC2 keeps every image `pending` until the
 * parent sends `release`. Answers `status` with its memory and the worker's own counters.
 *
 * BENCH_ASYNC_WAITS=1 runs the waits as worker/main.ts does (issue 13): a client of its own hands
 * them to the image-wait watcher with its lease, which polls the same fake EC2 in batches. Without
 * it the waits poll inside their activities (the design before the watcher).
 */
import { writeFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import type { LeaseHeartbeat } from '../activities/wait-lease';
import type { PollPolicy } from '../activities/waiting';
import { DEFAULT_POLL_POLICY, activityClock } from '../activities/waiting';
import { readWorkerSettings } from '../worker/config';
import { connectionOptions } from '../worker/connection';
import { buildWorker } from '../worker/worker';
import { benchActivities } from './activities';
import { FakeEc2 } from './fake-ec2';
import { benchWorkerOptions } from './run-rates';

/**
 * `status` with `gc`: collect garbage first (the process runs with --expose-gc), to see live memory.
 * `waitingSince`: when each run's image was first polled (its run reached its wait), by workflow id.
 */
export type ToWorker = { type: 'status'; gc?: boolean } | { type: 'release' } | { type: 'waitingSince' };

/** The answer to `waitingSince`: [workflow id, epoch ms of its image's first DescribeImages]. */
export interface WaitingSinceReport {
  type: 'waitingSince';
  runs: [string, number][];
}

export interface WorkerReport {
  type: 'status';
  /** Distinct images some waiter has polled: the runs that are waiting right now. */
  waiting: number;
  images: number;
  memory: NodeJS.MemoryUsage;
  /** The process's CPU time so far (user + system, both threads), in microseconds. */
  cpuMicros: number;
  cachedWorkflows: number;
  inFlightActivities: number;
  heartbeatingActivities: number;
  maxCachedWorkflows: number;
  maxConcurrentActivities: number;
  heapLimitMB: number;
  /** Heartbeats sent through the async-waits client (the wait lease recording its list) and their JSON size. */
  leaseHeartbeats: { calls: number; bytes: number };
  /** Signals sent through the async-waits client (the lease told of its waits before its hold runs), payload bytes. */
  leaseSignals: { calls: number; bytes: number };
  /** Epoch ms of the first image wait (its first DescribeImages) and of the lease's first recorded heartbeat. */
  firstWaitAt: number | null;
  firstLeaseBeatAt: number | null;
}

/** Short polls, so released runs finish within seconds; heartbeats still follow the 6-minute timeout. */
const POLICY: PollPolicy = { ...DEFAULT_POLL_POLICY, firstIntervalMs: 1_000, maxIntervalMs: 5_000 };

async function main(): Promise<void> {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'ERROR', other: 'ERROR' }) },
      // BENCH_METRICS_ADDRESS (AMIFLOW_BENCH_WORKER_BENCH_METRICS_ADDRESS=127.0.0.1:PORT): the core's
      // Prometheus metrics, e.g. its sticky cache hits and misses while released runs close.
      ...(process.env.BENCH_METRICS_ADDRESS
        ? { metrics: { prometheus: { bindAddress: process.env.BENCH_METRICS_ADDRESS } } }
        : {}),
    },
  });
  const settings = readWorkerSettings(process.env);
  const cacheSetting = process.env.BENCH_MAX_CACHED_WORKFLOWS;
  const maxCachedWorkflows = cacheSetting ? Number(cacheSetting) : undefined;
  const codePath = process.env.BENCH_WORKFLOW_BUNDLE;
  const connection = await NativeConnection.connect(await connectionOptions(settings.temporal));
  const clientConnection =
    process.env.BENCH_ASYNC_WAITS === '1'
      ? await Connection.connect(await connectionOptions(settings.temporal))
      : undefined;
  const ec2 = new FakeEc2({ now: () => Date.now() });
  const leaseBeats: LeaseCounts = { calls: 0, bytes: 0, firstAt: null };
  const leaseSignals = { calls: 0, bytes: 0 };
  // Image id → the run that made it, so each run's own start → waiting can be measured.
  const owners = new Map<string, string>();
  try {
    const { worker, waits } = await buildWorker({
      connection,
      settings,
      ...(clientConnection
        ? {
            asyncWaitsClient: new Client({
              connection: clientConnection,
              namespace: settings.temporal.namespace,
              interceptors: { workflow: [countingSignals(leaseSignals)] },
            }),
            onLeaseBeat: countingBeats(leaseBeats),
          }
        : {}),
      deps: { aws: ec2.clients(), clock: activityClock, random: Math.random, policy: POLICY },
      // Built from buildWorker's own deps: with async waits they carry the watcher (deps.waits), so
      // the real waitForImageAvailable hands its token over instead of polling in its slot.
      activitiesFor: (deps) => {
        const activities = benchActivities({ ec2, imageReadyAfterMs: Infinity, deps });
        const createImage = activities.createImage;
        return {
          ...activities,
          createImage: async (input) => {
            const created = await createImage(input);
            owners.set(created.imageId, input.workflowId);
            return created;
          },
        } satisfies typeof activities;
      },
      worker: {
        ...benchWorkerOptions(process.env),
        ...(maxCachedWorkflows !== undefined ? { maxCachedWorkflows } : {}),
        ...(codePath ? { workflowBundle: { codePath } } : {}),
      },
    });
    process.on('message', (message: ToWorker) => {
      if (message.type === 'release') {
        ec2.releaseAll();
        // The release's instant on the clock V8's CPU profiles use (monotonic, µs), so
        // bench/cpu-profile-phase.ts can keep the release phase only.
        if (process.env.BENCH_RELEASE_MARK_FILE)
          writeFileSync(process.env.BENCH_RELEASE_MARK_FILE, String(process.hrtime.bigint() / 1000n));
        return;
      }
      if (message.type === 'waitingSince') {
        const runs: [string, number][] = [];
        for (const [imageId, at] of ec2.firstAsks()) {
          const owner = owners.get(imageId);
          if (owner !== undefined) runs.push([owner, at]);
        }
        process.send?.({ type: 'waitingSince', runs } satisfies WaitingSinceReport);
        return;
      }
      if (message.gc) global.gc?.();
      const status = worker.getStatus();
      const report: WorkerReport = {
        type: 'status',
        waiting: ec2.polledCount,
        images: ec2.imageCount,
        memory: process.memoryUsage(),
        cpuMicros: cpuMicros(),
        cachedWorkflows: status.numCachedWorkflows,
        inFlightActivities: status.numInFlightNonLocalActivities,
        heartbeatingActivities: status.numHeartbeatingActivities,
        maxCachedWorkflows: worker.options.maxCachedWorkflows,
        maxConcurrentActivities: settings.maxConcurrentActivities,
        heapLimitMB: Math.round(getHeapStatistics().heap_size_limit / 1e6),
        leaseHeartbeats: { calls: leaseBeats.calls, bytes: leaseBeats.bytes },
        leaseSignals: { ...leaseSignals },
        firstWaitAt: firstOf(ec2.firstAsks().values()),
        firstLeaseBeatAt: leaseBeats.firstAt,
      };
      process.send?.(report);
    });
    const running = waits ? waits.run(worker) : worker.run();
    process.send?.({ type: 'ready' });
    await running;
  } finally {
    await connection.close();
    await clientConnection?.close();
  }
}

interface LeaseCounts {
  calls: number;
  bytes: number;
  /** Epoch ms of the first one: the lease's hold is running from then on. */
  firstAt: number | null;
}

function firstOf(times: Iterable<number>): number | null {
  let first: number | null = null;
  for (const t of times) if (first === null || t < first) first = t;
  return first;
}

/**
 * Counts the signals the async-waits client sends (the keeper telling a lease whose hold has not
 * started of its waits) and their JSON size, as they land in the lease's history.
 */
function countingSignals(counts: { calls: number; bytes: number }): WorkflowClientInterceptor {
  return {
    async signal(input, next) {
      counts.calls += 1;
      counts.bytes += JSON.stringify(input.args).length;
      return next(input);
    },
  };
}

/**
 * Counts the heartbeats the lease's hold sends (its whole list of held waits, one path: the SDK's
 * heartbeat) and their JSON size: a cost that grows with the waits held. Before session 10 this
 * counted the client's immediate records alone, not Core's throttled heartbeats beside them.
 */
function countingBeats(counts: LeaseCounts): (beat: LeaseHeartbeat) => void {
  return (beat) => {
    counts.calls += 1;
    counts.firstAt ??= Date.now();
    counts.bytes += JSON.stringify(beat).length;
  };
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
