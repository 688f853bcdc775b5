/** The worker process: `npm start`. Scale out by running more copies on the same task queue. */
// First: V8 flags from the environment (AMIFLOW_V8_MEMORY_SAVER) before any other module loads,
// then the EC2 client subset of the build before any module loads the client.
import { appliedV8Flags } from './v8-settings';
import { ec2ClientSubset } from './ec2-client-subset';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { Worker } from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import { Runtime } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import type { WorkerSettings } from './config';
import { readWorkerSettings } from './config';
import type { HealthServer, ReadinessCheck } from './health';
import { WATCHER_CONNECTION, connectionOptions } from './connection';
import { cachedCheck, startHealthServer } from './health';
import { connectWorker, workerConnectionPlan } from './temporal-profile';
import { tracingWanted } from './otlp-wanted';
import { buildWorker, installRuntime } from './worker';

/** Readiness: this copy polls its queue, the server answers, and AWS credentials resolve. */
function readinessChecks(
  settings: WorkerSettings,
  state: { worker?: Worker; connection?: NativeConnection },
): ReadinessCheck[] {
  const credentials = settings.aws.credentials ?? fromNodeProviderChain();
  return [
    {
      name: 'task queue',
      check: () =>
        Promise.resolve(
          state.worker?.getState() === 'RUNNING'
            ? undefined
            : `not polling ${settings.temporal.taskQueue} yet (${state.worker?.getState() ?? 'starting'})`,
        ),
    },
    cachedCheck(
      'temporal',
      async () => {
        if (!state.connection) throw new Error(`not connected to ${settings.temporal.address} yet`);
        await state.connection.healthService.check({});
      },
      5_000,
    ),
    // Resolving may call STS, SSO or the instance metadata service: not on every probe.
    cachedCheck(
      'aws credentials',
      () => (typeof credentials === 'function' ? credentials() : Promise.resolve(credentials)),
      60_000,
    ),
  ];
}

async function main(): Promise<void> {
  const settings = readWorkerSettings();
  installRuntime(settings.logLevel, settings);
  const log = Runtime.instance().logger;
  const state: { worker?: Worker; connection?: NativeConnection; clientConnection?: Connection } = {};
  // Up before the connection and the workflow bundle, so probes see 503 (not refused) while starting.
  const health: HealthServer | undefined = settings.healthAddress
    ? await startHealthServer(settings.healthAddress, readinessChecks(settings, state))
    : undefined;
  // The OpenTelemetry SDK loads only when traces are wanted: off, the idle worker is ~6 MB smaller.
  const tracing = tracingWanted() ? (await import('./tracing')).startTracing() : undefined;
  if (tracing && settings.workflowBundlePath) {
    // A prebuilt bundle lacks the tracing workflow interceptors: bundle at start instead.
    log.warn('tracing is on: ignoring AMIFLOW_WORKFLOW_BUNDLE so workflow spans are traced', {
      bundle: settings.workflowBundlePath,
    });
    delete settings.workflowBundlePath;
  }
  try {
    // temporal.toml profiles and the standard TEMPORAL_* variables, as the Temporal CLI reads them.
    const plan = await workerConnectionPlan(settings.temporal);
    settings.temporal.address = plan.address;
    settings.temporal.namespace = plan.namespace;
    state.connection = await connectWorker(plan);
    // The image-wait watcher's client: async completion, cancellation reads, lease starts.
    const clientConnection = settings.asyncWaits
      ? await Connection.connect({
          ...(await connectionOptions(settings.temporal)),
          ...WATCHER_CONNECTION,
        })
      : undefined;
    state.clientConnection = clientConnection;
    const { worker, deps, waits } = await buildWorker({
      connection: state.connection,
      settings,
      ...(clientConnection
        ? {
            asyncWaitsClient: new Client({
              connection: clientConnection,
              namespace: settings.temporal.namespace,
            }),
          }
        : {}),
      ...(tracing ? { worker: { plugins: [tracing.plugin] } } : {}),
    });
    state.worker = worker;
    log.info('amiflow worker starting', {
      address: settings.temporal.address,
      namespace: settings.temporal.namespace,
      taskQueue: settings.temporal.taskQueue,
      ...(settings.aws.endpoint ? { awsEndpoint: settings.aws.endpoint } : {}),
      ...(settings.metricsAddress ? { metrics: `http://${settings.metricsAddress}/metrics` } : {}),
      ...(health ? { health: `http://${health.address}/readyz` } : {}),
      tracing: tracing ? 'otlp' : 'off',
      ...(appliedV8Flags.length > 0 ? { v8Flags: appliedV8Flags.join(' ') } : {}),
      ec2Client: ec2ClientSubset ? 'subset' : 'package',
    });
    // Worker.run() shuts down gracefully on SIGINT/SIGTERM: in-flight activities get the grace time.
    try {
      await (waits ? waits.run(worker) : worker.run());
    } finally {
      deps.aws.destroy();
    }
  } finally {
    await state.connection?.close();
    await state.clientConnection?.close();
    await tracing?.shutdown();
    await health?.close();
  }
}

main().catch((err: unknown) => {
  // Through the runtime's logger when there is one, so a JSON stream stays JSON to its last line.
  try {
    Runtime.instance().logger.error(err instanceof Error ? err.message : String(err), { error: err });
  } catch {
    console.error(err instanceof Error ? err.message : err);
  }
  process.exit(1);
});
