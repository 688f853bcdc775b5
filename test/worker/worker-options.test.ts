/**
 * buildWorker (worker/worker.ts) hands the worker settings to the SDK's Worker: what
 * AMIFLOW_STICKY_SCHEDULE_TO_START_MS says is what the worker asks the server for when it makes a
 * run sticky. Against the dev server, with the test bundle; the worker is started and stopped at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import { STICKY_SCHEDULE_TO_START_MS, readWorkerSettings } from '../../worker/config';
import { buildWorker } from '../../worker/worker';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from '../support/temporal';

let env: TestWorkflowEnvironment;
before(async () => {
  env = await devServerEnv();
});
after(async () => {
  await env.teardown();
});

/** The SDK's compiled sticky timeout of a worker built from `extraEnv`. */
async function stickyTimeoutMs(extraEnv: Record<string, string>): Promise<number> {
  const taskQueue = uniqueTaskQueue('worker-options');
  const settings = readWorkerSettings(
    { TEMPORAL_ADDRESS: env.address, AMIFLOW_TASK_QUEUE: taskQueue, AMIFLOW_ASYNC_WAITS: 'off', ...extraEnv },
    false,
  );
  const connection = await NativeConnection.connect({ address: env.address });
  try {
    const { worker } = await buildWorker({
      connection,
      settings,
      worker: { taskQueue, workflowBundle: await workflowBundle() },
    });
    const running = worker.run();
    worker.shutdown();
    await running;
    return worker.options.stickyQueueScheduleToStartTimeoutMs;
  } finally {
    await connection.close();
  }
}

void describe('buildWorker', () => {
  void it('GIVEN AMIFLOW_STICKY_SCHEDULE_TO_START_MS WHEN the worker is built THEN its sticky queue timeout is that; unset, the default', async () => {
    assert.equal(await stickyTimeoutMs({ AMIFLOW_STICKY_SCHEDULE_TO_START_MS: '45000' }), 45_000);
    assert.equal(await stickyTimeoutMs({}), STICKY_SCHEDULE_TO_START_MS.default);
  });
});
