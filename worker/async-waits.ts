/**
 * The worker side of asynchronously completed image waits (issue 13): the watcher's Temporal client
 * (async completion, cancellation reads, lease starts), the lease worker polling this process's own
 * lease queue, and the hand-off on shutdown.
 */
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { ActivityCancelledError, ActivityNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { NativeConnection } from '@temporalio/worker';
import { Runtime, Worker } from '@temporalio/worker';
import { SearchAttr } from '../contracts';
import { CANCELLING_STEP, WAIT_LEASE_PRIORITY_KEY } from '../contracts/wait-lease';
import { METRIC } from '../workflows/metric-names';
import type { AwsClients } from '../activities/aws';
import type { WaitCompletion, WatcherOptions } from '../activities/image-wait-watcher';
import { DEFAULT_WATCHER_OPTIONS, ImageWaitWatcher } from '../activities/image-wait-watcher';
import type { WaitRef } from '../contracts/wait-lease';
import type {
  FindStartedWaits,
  LeaseHeartbeat,
  LeaseTier,
  ReleaseWait,
  StartLease,
} from '../activities/wait-lease';
import { LEASE_BEAT_GAP_MS, WaitLeaseKeeper } from '../activities/wait-lease';

/** PENDING_ACTIVITY_STATE_STARTED / _CANCEL_REQUESTED in temporal.api.enums.v1.PendingActivityState. */
const STARTED: temporal.api.enums.v1.PendingActivityState = 2;
const CANCEL_REQUESTED: temporal.api.enums.v1.PendingActivityState = 3;

/** The activity that completes asynchronously (activities/images.ts), the only one a lease covers. */
const ASYNC_WAIT_ACTIVITY = 'waitForImageAvailable';
/** How long a starting worker waits for its lease's start to land before it polls anyway. */
const LEASE_OPEN_WAIT_MS = 10_000;

/** Describes in flight at once while sweeping a lost worker's waits. */
const SWEEP_CONCURRENCY = 16;

/** The identity the SDK gives a worker by default (`pid@host`): the main worker's and its lease's. */
export function defaultWorkerIdentity(): string {
  return `${process.pid}@${hostname()}`;
}

async function answered(call: Promise<void>): Promise<boolean> {
  try {
    await call;
    return true;
  } catch (err) {
    if (err instanceof ActivityNotFoundError) return false; // completed, cancelled or timed out already
    throw err;
  }
}

/** The watcher's view of Temporal, through a client of the worker's own. */
export function clientCompletion(client: Client, taskQueue: string): WaitCompletion {
  const activity = client.activity;
  return {
    complete: (token, result) => answered(activity.complete(token, result)),
    fail: (token, err) => answered(activity.fail(token, err)),
    async heartbeat(token, details) {
      try {
        await activity.heartbeat(token, details);
        return 'ok';
      } catch (err) {
        if (err instanceof ActivityCancelledError) return 'cancelled';
        if (err instanceof ActivityNotFoundError) return 'gone';
        throw err;
      }
    },
    async reportCancellation(token) {
      await answered(activity.reportCancellation(token));
    },
    async cancelRequested(ref) {
      try {
        const d = await client.workflow.getHandle(ref.workflowId, ref.runId).describe();
        if (d.status.name !== 'RUNNING') return true;
        const pending = d.raw.pendingActivities?.find((a) => a.activityId === ref.activityId);
        // Not pending any more: completed, or cancelled and settled; either way nobody waits for it.
        return !pending || pending.state === CANCEL_REQUESTED;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return true;
        throw err;
      }
    },
    cancelledRuns: (sinceMs) => listCancelledRuns(client, sinceMs, taskQueue),
  };
}

/**
 * Runs of `taskQueue` (the worker's: its waits belong to runs there) cancelling now (`AmiflowStep =
 * cancelling`, marked by the run before its undo) or ended since `sinceMs`: one Visibility list (not
 * an Action) for every wait the watcher holds, raw, so no execution's memo or attributes are
 * decoded. Scoped to the queue, the list grows with this fleet's churn, not the namespace's; a run
 * it misses keeps the per-wait read as its fallback.
 */
export async function listCancelledRuns(
  client: Client,
  sinceMs: number,
  taskQueue: string,
): Promise<Set<string>> {
  const query =
    `TaskQueue = ${visibilityString(taskQueue)} AND (` +
    `(${SearchAttr.step.name} = '${CANCELLING_STEP}' AND ExecutionStatus = 'Running') OR ` +
    `(ExecutionStatus != 'Running' AND CloseTime >= '${new Date(sinceMs).toISOString()}'))`;
  const runs = new Set<string>();
  for (const r of await runsMatching(client, query)) runs.add(`${r.workflowId}/${r.runId}`);
  return runs;
}

/** The executions a Visibility query matches, raw (no memo or attributes decoded), 1,000 a page. */
async function runsMatching(client: Client, query: string): Promise<{ workflowId: string; runId: string }[]> {
  const runs: { workflowId: string; runId: string }[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.listWorkflowExecutions({
      namespace: client.options.namespace,
      query,
      pageSize: 1000,
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    for (const e of page.executions ?? [])
      if (e.execution?.workflowId && e.execution.runId)
        runs.push({ workflowId: e.execution.workflowId, runId: e.execution.runId });
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return runs;
}

/** A string literal for a Visibility query (a task queue name may hold a quote or a backslash). */
export function visibilityString(value: string): string {
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/** Starts a worker's lease workflow on the shared task queue, ahead of the runs' tasks (WAIT_LEASE_PRIORITY_KEY). */
export function leaseStarter(client: Client, taskQueue: string, workerId: string): StartLease {
  return async (workflowId, input) => {
    await client.workflow.start('waitLease', {
      taskQueue,
      workflowId,
      args: [input],
      staticSummary: `wait lease of worker ${workerId}`,
      priority: { priorityKey: WAIT_LEASE_PRIORITY_KEY },
    });
  };
}

export function clientRelease(client: Client): ReleaseWait {
  return (ref, err) => answered(client.activity.fail(ref, err));
}

/**
 * FindStartedWaits through the worker's client: the running workflows of the queue (one Visibility
 * page per 1,000, lease workflows left out), each described (16 at a time) for an image wait whose
 * current attempt that worker started. Not an Action; at 10,000 runs waiting it is 10,000 reads of
 * the server's cached state, paid once per lost worker, never while workers live.
 */
export function clientFindStarted(client: Client): FindStartedWaits {
  return async ({ taskQueue, workerIdentity }, startedBefore) => {
    const query = `TaskQueue = ${visibilityString(taskQueue)} AND ExecutionStatus = 'Running' AND WorkflowType != 'waitLease'`;
    const runs = await runsMatching(client, query);
    const found: WaitRef[] = [];
    const describeOne = async (run: { workflowId: string; runId: string }) => {
      const d = await client.workflow
        .getHandle(run.workflowId, run.runId)
        .describe()
        .catch((err: unknown) => {
          // Closed and gone since the list: nothing of it waits.
          if (err instanceof WorkflowNotFoundError) return undefined;
          throw err;
        });
      for (const a of d?.raw.pendingActivities ?? []) {
        const started = a.lastStartedTime ? Number(optionalTsToMs(a.lastStartedTime)) : Infinity;
        if (
          a.activityType?.name === ASYNC_WAIT_ACTIVITY &&
          a.state === STARTED &&
          a.lastWorkerIdentity === workerIdentity &&
          a.activityId &&
          started < startedBefore
        )
          found.push({ ...run, activityId: a.activityId });
      }
    };
    for (let i = 0; i < runs.length; i += SWEEP_CONCURRENCY)
      await Promise.all(runs.slice(i, i + SWEEP_CONCURRENCY).map(describeOne));
    return found;
  };
}

export interface AsyncWaits {
  watcher: ImageWaitWatcher;
  release: ReleaseWait;
  findStarted: FindStartedWaits;
  leaseWorker: Worker;
  /** Runs `worker` and the lease worker; on shutdown hands every held wait to another worker first. */
  run(worker: Worker): Promise<void>;
  /** What SIGTERM does: the workers stop polling and the held waits go to other workers at once. */
  shutdown(worker: Worker): void;
}

export interface AsyncWaitsOptions {
  client: Client;
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  /** The main worker's identity (its `identity` option): what the server records on the waits it starts. */
  workerIdentity: string;
  aws: AwsClients;
  watcher?: Partial<WatcherOptions>;
  /** The lease's heartbeat timeouts (WorkerSettings.waitLeaseTimeoutsMs); default LEASE_HEARTBEAT_TIMEOUT_MS. */
  leaseTimeoutsMs?: Record<LeaseTier, number>;
  /** Sees each heartbeat of the lease's hold (benches count them). */
  onLeaseBeat?: (beat: LeaseHeartbeat) => void;
  log?: (message: string, meta: Record<string, unknown>) => void;
}

export async function createAsyncWaits(opts: AsyncWaitsOptions): Promise<AsyncWaits> {
  const workerId = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const leaseQueue = `${opts.taskQueue}-lease-${workerId}`;
  const watcher = new ImageWaitWatcher(
    {
      aws: opts.aws,
      completion: clientCompletion(opts.client, opts.taskQueue),
      now: () => Date.now(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()),
      ...(opts.log ? { log: opts.log } : {}),
    },
    // The stopped worker's pollers are down within ~0.1 s of SIGTERM, so the handed-off waits may be
    // retried after 250 ms, not 1 s (a retry that still reaches it is refused and retried again).
    { ...DEFAULT_WATCHER_OPTIONS, handOffRetryMs: 250, ...opts.watcher },
  );
  // amiflow_waits_in_flight counts the waits this worker holds, as the polling activities do (with
  // their tags): a handed-off wait belongs to the watcher, no activity runs for it any more.
  const inFlight = Runtime.instance().metricMeter.createGauge(
    METRIC.waitsInFlight,
    'int',
    undefined,
    'waits polling AWS now',
  );
  const gaugeTags = {
    activityType: 'waitForImageAvailable',
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
  };
  inFlight.set(0, gaugeTags);
  watcher.onChange(() => inFlight.set(watcher.size(), gaugeTags));
  const keeper = new WaitLeaseKeeper(watcher, leaseStarter(opts.client, opts.taskQueue, workerId), {
    leaseQueue,
    workerId,
    workerIdentity: opts.workerIdentity,
    ...(opts.leaseTimeoutsMs ? { heartbeatTimeoutMs: opts.leaseTimeoutsMs } : {}),
    ...(opts.onLeaseBeat ? { onBeat: opts.onLeaseBeat } : {}),
    tellLease: async (workflowId, refs) => {
      await opts.client.workflow.getHandle(workflowId).signal('waitLeaseRefs', refs);
    },
    leaseOpen: async (workflowId) => {
      try {
        return (await opts.client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },
    ...(opts.log ? { log: opts.log } : {}),
  });
  const leaseWorker = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: leaseQueue,
    activities: keeper.activities(),
    maxConcurrentActivityTaskExecutions: 4,
    // The hold paces its own heartbeats, the one path of its list (beatGapMs apart, LEASE_BEAT_GAP_MS at least):
    // Core's throttle must hold none of them back, or an added wait waits for Core's window.
    maxHeartbeatThrottleInterval: LEASE_BEAT_GAP_MS,
    shutdownGraceTime: '5s',
  });
  return {
    watcher,
    release: clientRelease(opts.client),
    findStarted: clientFindStarted(opts.client),
    leaseWorker,
    shutdown(worker) {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      void watcher.handOff();
    },
    async run(worker) {
      // The worker stops polling on SIGTERM/SIGINT (Runtime's shutdown signals); hand the waits
      // off as it does, not after its grace time, so they resume elsewhere within seconds.
      const handOff = () => {
        void watcher.handOff().then((n) => opts.log?.('handed waits to other workers', { waits: n }));
      };
      process.once('SIGTERM', handOff);
      process.once('SIGINT', handOff);
      try {
        // The lease is open before the worker takes its first wait (a server slower than this to
        // answer: the worker polls anyway, and the keeper's check starts the lease if it was refused).
        await Promise.race([keeper.open(), delay(LEASE_OPEN_WAIT_MS, undefined, { ref: false })]);
        await Promise.all([
          worker.run().finally(() => {
            if (leaseWorker.getState() === 'RUNNING') leaseWorker.shutdown();
          }),
          leaseWorker.run(),
        ]);
      } finally {
        process.off('SIGTERM', handOff);
        process.off('SIGINT', handOff);
        keeper.stop();
        await watcher.handOff();
      }
    },
  };
}
