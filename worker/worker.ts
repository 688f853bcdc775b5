/** Builds the amiflow worker: the workflow bundle plus the activities bound to their AWS clients. */
import { Client, Connection } from '@temporalio/client';
import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type { ActivityDeps } from '../activities';
import { createActivities } from '../activities';
import { parseConsistencyWindow } from '../activities/consistency';
import { createAwsClients } from '../activities/aws';
import { DEFAULT_POLL_POLICY, activityClock } from '../activities/waiting';
import type { OpenTemporalReader } from '../activities/share-runs';
import type { TemporalSettings, WorkerSettings } from './config';
import { connectionOptions } from './connection';

export interface BuildWorkerOptions {
  connection: NativeConnection;
  settings: WorkerSettings;
  /** Replace some activity dependencies (tests and benchmarks). */
  deps?: Partial<ActivityDeps>;
  /** Extra worker options (tests: a prebuilt bundle, a different identity). */
  worker?: Partial<WorkerOptions>;
}

/** Sets the process-wide SDK log level; call once, before the first connection. */
export function installRuntime(level: WorkerSettings['logLevel']): void {
  Runtime.install({ logger: new DefaultLogger(level) });
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

export const workflowsPath = require.resolve('../workflows');

export async function buildWorker(opts: BuildWorkerOptions): Promise<{ worker: Worker; deps: ActivityDeps }> {
  const deps: ActivityDeps = {
    aws: opts.deps?.aws ?? createAwsClients(opts.settings.aws),
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
  const worker = await Worker.create({
    connection: opts.connection,
    namespace: opts.settings.temporal.namespace,
    taskQueue: opts.settings.temporal.taskQueue,
    ...(opts.worker?.workflowBundle
      ? {}
      : opts.settings.workflowBundlePath
        ? { workflowBundle: { codePath: opts.settings.workflowBundlePath } }
        : { workflowsPath }),
    ...(opts.settings.maxCachedWorkflows !== undefined
      ? { maxCachedWorkflows: opts.settings.maxCachedWorkflows }
      : {}),
    activities: createActivities(deps),
    maxConcurrentActivityTaskExecutions: opts.settings.maxConcurrentActivities,
    maxConcurrentLocalActivityExecutions: opts.settings.maxConcurrentLocalActivities,
    shutdownGraceTime: opts.settings.shutdownGraceMs,
    // Waiting activities pace their own heartbeats to their heartbeat timeout; let them through.
    maxHeartbeatThrottleInterval: '5m',
    ...opts.worker,
  });
  return { worker, deps };
}
