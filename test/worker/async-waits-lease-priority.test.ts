/**
 * The wait lease's first workflow task goes ahead of the runs' backlog (worker/async-waits.ts,
 * `leaseStarter`): at 10,000 runs it waited ~400 s behind their tasks in the shared queue, and until
 * it scheduled its hold a worker crash went unnoticed. On the dev server (Temporal Server 1.32, its
 * default matching config), against a backlog of runs' first tasks, polled by hand.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WaitLeaseInput } from '../../activities/wait-lease';
import { leaseStarter } from '../../worker/async-waits';
import { devServerEnv, uniqueTaskQueue } from '../support/temporal';

const BACKLOG = 300;

let env: TestWorkflowEnvironment;
before(async () => {
  env = await devServerEnv();
});
after(async () => {
  await env.teardown();
});

/** The workflow ids of the queue's workflow tasks, in the order the server hands them out, up to `stopAt`. */
async function handedOut(taskQueue: string, stopAt: string): Promise<string[]> {
  const seen: string[] = [];
  while (!seen.includes(stopAt) && seen.length <= BACKLOG) {
    // A long poll needs a deadline; with a backlog it answers at once.
    const task = await env.client.withDeadline(Date.now() + 10_000, () =>
      env.client.workflowService.pollWorkflowTaskQueue({
        namespace: env.namespace ?? 'default',
        taskQueue: { name: taskQueue },
        identity: 'lease-priority-test',
      }),
    );
    seen.push(task.workflowExecution?.workflowId ?? '(no task)');
  }
  return seen;
}

void describe('the wait lease in a busy task queue', () => {
  void it(`GIVEN ${BACKLOG} runs' workflow tasks waiting in the shared queue WHEN a worker starts its wait lease THEN the lease's first task is handed out among the first few, not behind the backlog`, async () => {
    const taskQueue = uniqueTaskQueue('lease-priority');
    for (let i = 0; i < BACKLOG; i += 100)
      await Promise.all(
        Array.from({ length: Math.min(100, BACKLOG - i) }, (_, k) =>
          env.client.workflow.start('imageFromInstance', { taskQueue, workflowId: `run-${i + k}` }),
        ),
      );
    const input: WaitLeaseInput = { leaseQueue: `${taskQueue}-lease-w1`, tier: 'solo', refs: [] };
    await leaseStarter(env.client, taskQueue, 'w1')('lease-w1', input);
    const order = await handedOut(taskQueue, 'lease-w1');
    // Without a priority it came ~170th-182nd of 301 (bench/lease-priority.ts --no-priority); with it,
    // 3rd-11th: the matcher first hands out the tasks it had already loaded when the lease's arrived,
    // how many depends on timing (a CI run saw 11). A sixth of the backlog still tells the two apart.
    assert.ok(
      order.length <= BACKLOG / 6,
      `the lease's task came as number ${order.length}: ${order.slice(0, 5).join(', ')}…`,
    );
  });
});
