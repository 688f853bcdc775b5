/** The worker process: `npm start`. Scale out by running more copies on the same task queue. */
import { NativeConnection } from '@temporalio/worker';
import { readWorkerSettings } from './config';
import { connectionOptions } from './connection';
import { buildWorker, installRuntime } from './worker';

async function main(): Promise<void> {
  const settings = readWorkerSettings();
  installRuntime(settings.logLevel);
  const connection = await NativeConnection.connect(await connectionOptions(settings.temporal));
  try {
    const { worker, deps } = await buildWorker({ connection, settings });
    // Worker.run() shuts down gracefully on SIGINT/SIGTERM: in-flight activities get the grace time.
    console.log(
      `amiflow worker: ${settings.temporal.address} namespace=${settings.temporal.namespace} ` +
        `taskQueue=${settings.temporal.taskQueue}${settings.aws.endpoint ? ` aws=${settings.aws.endpoint}` : ''}`,
    );
    try {
      await worker.run();
    } finally {
      deps.aws.destroy();
    }
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
