/** Builds the amiflow worker: the workflow bundle plus the activities bound to their AWS clients. */
import { Client, Connection } from '@temporalio/client';
import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import { Runtime, Worker } from '@temporalio/worker';
import type { ActivityDeps } from '../activities';
import { createActivities } from '../activities';
import { parseConsistencyWindow } from '../activities/consistency';
import { createAwsClients } from '../activities/aws';
import { WALL_CLOCK, createInstanceReads } from '../activities/instance-reads';
import { DEFAULT_POLL_POLICY, activityClock } from '../activities/waiting';
import type { LeaseHeartbeat } from '../activities/wait-lease';
import type { OpenTemporalReader } from '../activities/share-runs';
import { METRIC } from '../workflows/metric-names';
import type { TemporalSettings, WorkerSettings } from './config';
import { connectionOptions } from './connection';
import { createLogger } from './logging';
import type { AsyncWaits } from './async-waits';
import { createAsyncWaits, defaultWorkerIdentity } from './async-waits';
import { workflowBundleOptions } from './bundle-options';

/**
 * Workflows cached per worker unless AMIFLOW_MAX_CACHED_WORKFLOWS says otherwise. With the shared
 * workflow modules (bundle-options.ts) a cached workflow costs ~0.5 MB instead of ~2.7 MB, so a
 * cache that holds a 300-run burst no longer costs memory that matters, and it spares the replays a
 * smaller one pays: at 1,000 waits, cache 10 / 100 / 300 measured 320 / 359 / 347 MB RSS and 106 /
 * 59 / 43 ms worker CPU per run (docs/fleet-waits.md, issue 13).
 */
export const DEFAULT_CACHED_WORKFLOWS = 300;

export interface BuildWorkerOptions {
  connection: NativeConnection;
  settings: WorkerSettings;
  /** Replace some activity dependencies (tests and benchmarks). */
  deps?: Partial<ActivityDeps>;
  /** Extra worker options (tests: a prebuilt bundle, a different identity). */
  worker?: Partial<WorkerOptions>;
  /**
   * The activities from the finished dependencies, instead of createActivities (benchmarks: stub
   * steps around the real image wait, which needs the watcher built here in `deps.waits`).
   */
  activitiesFor?: (deps: ActivityDeps) => WorkerOptions['activities'];
  /**
   * A client for async completion: image waits go to one watcher with a lease (settings.asyncWaits).
   * Run the result with `waits.run(worker)`, not `worker.run()`, or the lease is never held.
   */
  asyncWaitsClient?: Client;
  /** Sees each heartbeat of the wait lease's hold (benchmarks count them). */
  onLeaseBeat?: (beat: LeaseHeartbeat) => void;
}

export type TelemetrySettings = Pick<WorkerSettings, 'logLevel'> &
  Partial<Pick<WorkerSettings, 'logFormat' | 'metricsAddress'>>;

/**
 * Installs the process-wide SDK runtime; call once, before the first connection. Every log line
 * (amiflow's, the SDK's, and the Rust core's, forwarded) goes through one logger; with a metrics
 * address, the core serves Prometheus there, with amiflow's metrics from the same meter.
 */
export function installRuntime(
  level: WorkerSettings['logLevel'],
  telemetry: Partial<TelemetrySettings> = {},
): void {
  Runtime.install({
    logger: createLogger({
      format: telemetry.logFormat ?? 'pretty',
      level,
      colour: telemetry.logFormat !== 'json' && process.stdout.isTTY === true,
    }),
    telemetryOptions: {
      logging: { filter: { core: level, other: 'WARN' }, forward: {} },
      ...(telemetry.metricsAddress
        ? {
            metrics: {
              prometheus: {
                bindAddress: telemetry.metricsAddress,
                // Prometheus conventions: counters end in _total, durations are seconds.
                countersTotalSuffix: true,
                unitSuffix: true,
                useSecondsForDurations: true,
                // The default buckets end at 10 s; downtime takes minutes, an image up to hours.
                histogramBucketOverrides: {
                  [METRIC.instanceDowntime]: [15, 30, 60, 120, 180, 300, 600, 1200, 1800, 3600],
                  [METRIC.imageWait]: [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800],
                  // A freeze is seconds (the watchdog ends it at 30 s by default, 300 s at most).
                  [METRIC.freezeDuration]: [0.5, 1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 300],
                },
              },
            },
          }
        : {}),
    },
  });
}

/** A client connection of the worker's own, for activities that read other runs (a share's record). */
export function temporalReaderFor(t: TemporalSettings): OpenTemporalReader {
  return async () => {
    const connection = await Connection.connect(await connectionOptions(t));
    return {
      workflow: new Client({ connection, namespace: t.namespace }).workflow,
      close: () => connection.close(),
    };
  };
}

// Where the bundle's options live now; re-exported for the importers that predate the move.
export { leanWorkflowBundle, workflowsPath } from './bundle-options';

export async function buildWorker(
  opts: BuildWorkerOptions,
): Promise<{ worker: Worker; deps: ActivityDeps; waits?: AsyncWaits }> {
  const deps: ActivityDeps = {
    aws: opts.deps?.aws ?? createAwsClients(opts.settings.aws, { meter: Runtime.instance().metricMeter }),
    clock: opts.deps?.clock ?? activityClock,
    random: opts.deps?.random ?? Math.random,
    policy: opts.deps?.policy ?? DEFAULT_POLL_POLICY,
    temporal: opts.deps?.temporal ?? temporalReaderFor(opts.settings.temporal),
    ...(opts.settings.aws.endpoint ? { stsEndpoint: opts.settings.aws.endpoint } : {}),
    ...(opts.deps?.onHeartbeat ? { onHeartbeat: opts.deps.onHeartbeat } : {}),
    // Read once at start, so a bad AMIFLOW_CONSISTENCY_WINDOW stops the worker with its name.
    consistencyWindowMs:
      opts.deps?.consistencyWindowMs ?? parseConsistencyWindow(process.env.AMIFLOW_CONSISTENCY_WINDOW),
  };
  // One merged reader of instance states for every instance wait on this worker (issue 13).
  deps.instanceReads =
    opts.deps?.instanceReads ??
    createInstanceReads(
      { aws: deps.aws, ...WALL_CLOCK, random: deps.random },
      { callsPerSecond: opts.settings.instanceWaitCallsPerSecond },
    );
  // Given to the worker explicitly, so its lease names the identity the server records on its waits.
  const identity = opts.worker?.identity ?? defaultWorkerIdentity();
  const waits =
    opts.asyncWaitsClient && opts.settings.asyncWaits
      ? await createAsyncWaits({
          client: opts.asyncWaitsClient,
          connection: opts.connection,
          namespace: opts.settings.temporal.namespace,
          taskQueue: opts.worker?.taskQueue ?? opts.settings.temporal.taskQueue,
          workerIdentity: identity,
          aws: deps.aws,
          leaseTimeoutsMs: opts.settings.waitLeaseTimeoutsMs,
          ...(opts.onLeaseBeat ? { onLeaseBeat: opts.onLeaseBeat } : {}),
          watcher: {
            consistencyWindowMs: deps.consistencyWindowMs ?? 180_000,
            callsPerSecond: opts.settings.imageWaitCallsPerSecond,
          },
          log: (message, meta) => {
            Runtime.instance().logger.warn(message, meta);
          },
        })
      : undefined;
  if (waits) deps.waits = { watcher: waits.watcher, release: waits.release, findStarted: waits.findStarted };
  const worker = await Worker.create({
    connection: opts.connection,
    namespace: opts.settings.temporal.namespace,
    taskQueue: opts.settings.temporal.taskQueue,
    ...(opts.worker?.workflowBundle
      ? {}
      : opts.settings.workflowBundlePath
        ? { workflowBundle: { codePath: opts.settings.workflowBundlePath } }
        : {
            workflowsPath: workflowBundleOptions.workflowsPath,
            bundlerOptions: {
              webpackConfigHook: workflowBundleOptions.webpackConfigHook,
              preloadModules: workflowBundleOptions.preloadModules,
            },
          }),
    maxCachedWorkflows: opts.settings.maxCachedWorkflows ?? DEFAULT_CACHED_WORKFLOWS,
    activities: opts.activitiesFor ? opts.activitiesFor(deps) : createActivities(deps),
    maxConcurrentActivityTaskExecutions: opts.settings.maxConcurrentActivities,
    maxConcurrentLocalActivityExecutions: opts.settings.maxConcurrentLocalActivities,
    shutdownGraceTime: opts.settings.shutdownGraceMs,
    stickyQueueScheduleToStartTimeout: opts.settings.stickyScheduleToStartMs,
    // Waiting activities pace their own heartbeats to their heartbeat timeout; let them through.
    maxHeartbeatThrottleInterval: '5m',
    identity,
    ...opts.worker,
  });
  return { worker, deps, ...(waits ? { waits } : {}) };
}
