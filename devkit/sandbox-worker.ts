/**
 * A real amiflow worker against the sandbox for end-to-end tests: on a fresh task queue, built with
 * the production configuration reader and AWS clients, stopped when `fn` settles.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createAwsClients } from '../activities/aws';
import { parseConsistencyWindow } from '../activities/consistency';
import { AmiflowClient } from '../client';
import { readWorkerSettings } from '../worker/config';
import { buildWorker } from '../worker/worker';
import { SANDBOX_CREDENTIALS } from './moto';
import type { WorkerAwsHooks } from './sandbox-ec2';
import { hookWorkerAws } from './sandbox-ec2';
import { uniqueTaskQueue, workflowBundle } from './temporal';

/** `hooks` act on the worker's EC2 clients (see hookWorkerAws); untouched, they change nothing. */
export async function withSandboxWorker<T>(
  env: TestWorkflowEnvironment,
  awsEndpoint: string,
  name: string,
  fn: (client: AmiflowClient, hooks: WorkerAwsHooks) => Promise<T>,
): Promise<T> {
  const taskQueue = uniqueTaskQueue(name);
  const settings = readWorkerSettings({
    AMIFLOW_AWS_ENDPOINT: awsEndpoint,
    AMIFLOW_TASK_QUEUE: taskQueue,
    // A cancelled wait may still be sleeping inside the worker when the run closes; do not wait for it.
    AMIFLOW_SHUTDOWN_GRACE_MS: '500',
  });
  settings.aws.credentials = SANDBOX_CREDENTIALS;
  const hooks = hookWorkerAws(createAwsClients(settings.aws));
  const { worker } = await buildWorker({
    connection: env.nativeConnection,
    settings,
    deps: {
      aws: hooks.clients,
      // The bare sandbox answers consistently, so a lookup that finds nothing need not wait minutes
      // for a new id to show; a fault layer in front of it sets AMIFLOW_CONSISTENCY_WINDOW instead.
      consistencyWindowMs: parseConsistencyWindow(process.env.AMIFLOW_CONSISTENCY_WINDOW || '2s'),
      // Share runs are read with the test's own client (the settings name no Temporal address).
      temporal: () => Promise.resolve({ workflow: env.client.workflow, close: () => Promise.resolve() }),
    },
    worker: { taskQueue, workflowBundle: await workflowBundle() },
  });
  try {
    return await worker.runUntil(fn(AmiflowClient.fromClient(env.client, taskQueue), hooks));
  } finally {
    hooks.clients.destroy();
  }
}
