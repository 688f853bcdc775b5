/**
 * What an operator sees in the Web UI's list, one test per promise. On the dev server (the
 * time-skipping server has no visibility queries) with the amiflow search attributes registered
 * and stub activities: a backup is found by searching for its instance; a golden run whose
 * retirement failed ends `succeeded-with-problems`, not a plain success; a cancelled run's step
 * attribute says it was cancelled, not "awaiting approval".
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { Activities } from '../../activities';
import type { GoldenImageResult } from '../../workflows/contracts';
import { SearchAttr, WORKFLOW_TYPES, progressQuery } from '../../workflows/contracts';
import { backupChildIds } from '../../workflows/backup';
import { devServerEnv } from '../support/temporal';
import {
  BUILDER,
  Fleet,
  REGION,
  backupInput,
  goldenActivities,
  goldenInput,
  protectionRefused,
  stepIs,
} from './golden-stubs';
import { eventually, test, uniqueWorkflowId, withWorker, workflowEnv } from './harness';

const env = workflowEnv(devServerEnv, { per: 'file' });

/** Started as the client and the schedules start them: with the attributes that apply. */
function start(
  taskQueue: string,
  type: string,
  input: unknown,
  attrs: { instanceId?: string; region: string },
): Promise<WorkflowHandle> {
  return env.client.workflow.start(type, {
    taskQueue,
    workflowId: uniqueWorkflowId(type),
    args: [input],
    typedSearchAttributes: [
      { key: SearchAttr.region, value: attrs.region },
      ...(attrs.instanceId ? [{ key: SearchAttr.instanceId, value: attrs.instanceId }] : []),
    ],
  });
}

/** `fn` on a fresh worker serving `activities`, on a task queue named for the test's `what`. */
function serving(
  what: string,
  activities: Activities,
  fn: (taskQueue: string) => Promise<void>,
): Promise<void> {
  return withWorker(env, activities, fn, `web-ui-${what}`);
}

async function attributes(handle: WorkflowHandle): Promise<{ outcome?: string; step?: string }> {
  const d = await handle.describe();
  const outcome = d.typedSearchAttributes.get(SearchAttr.outcome);
  const step = d.typedSearchAttributes.get(SearchAttr.step);
  return { ...(outcome !== undefined ? { outcome } : {}), ...(step !== undefined ? { step } : {}) };
}

void describe('Web UI: search attributes', () => {
  test('GIVEN a backup of an instance WHEN searching by that instance id THEN the backup is found', async () => {
    const input = backupInput({ instanceIds: ['i-0a0a0a0a0a0a0a0a0'] });
    await serving('backup', goldenActivities(new Fleet()), async (taskQueue) => {
      // GIVEN: a backup run, started as its schedule starts it (region only)
      const handle = await start(taskQueue, WORKFLOW_TYPES.backupInstances, input, { region: REGION });
      await handle.result();
      // WHEN: an operator searches by the instance
      const query = `${SearchAttr.instanceId.name} = 'i-0a0a0a0a0a0a0a0a0'`;
      const found = await eventually('the backup in a search by instance', async () => {
        const ids: string[] = [];
        for await (const w of env.client.workflow.list({ query })) ids.push(w.workflowId);
        return ids.length > 0 ? ids : undefined;
      });
      // THEN: the backup's image of that instance, whose id names the backup run
      assert.deepEqual(found, [backupChildIds(handle.workflowId, 'i-0a0a0a0a0a0a0a0a0').image]);
      assert.deepEqual(await attributes(handle), { outcome: 'succeeded', step: 'done' });
    });
  });

  test('GIVEN a golden run whose retirement fails WHEN it completes THEN outcome succeeded-with-problems, in progress and details too', () =>
    serving('golden', protectionRefused(new Fleet()), async (taskQueue) => {
      const handle = await start(
        taskQueue,
        WORKFLOW_TYPES.goldenImage,
        goldenInput({ approval: undefined }),
        { region: REGION, instanceId: BUILDER },
      );
      const result = (await handle.result()) as GoldenImageResult;
      assert.ok(result.retention.failures > 0, 'the stub made retirement fail');
      assert.deepEqual(await attributes(handle), {
        outcome: 'succeeded-with-problems',
        step: 'succeeded-with-problems',
      });
      const progress = await handle.query(progressQuery);
      assert.equal(progress.outcome, 'succeeded-with-problems');
      assert.match(
        progress.problems?.[0] ?? '',
        new RegExp(`^retire old versions: ${result.retention.failures} retirement action\\(s\\) failed`),
      );
      // The run's main page shows the workflow's current details (the SDK's metadata query).
      const meta = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      assert.match(meta.currentDetails ?? '', /^\*\*succeeded-with-problems\*\*/);
      assert.match(meta.currentDetails ?? '', /⚠ 1 problem\(s\): retire old versions/);
    }));

  test('GIVEN a golden run awaiting approval WHEN cancelled THEN the step attribute says cancelled at that step', () =>
    serving('cancel', goldenActivities(new Fleet()), async (taskQueue) => {
      const handle = await start(taskQueue, WORKFLOW_TYPES.goldenImage, goldenInput(), {
        region: REGION,
        instanceId: BUILDER,
      });
      await stepIs(handle, 'await approval', ['running']);
      await eventually('the awaiting-approval attribute', async () =>
        (await attributes(handle)).step === 'awaiting approval' ? true : undefined,
      );
      await handle.cancel();
      await handle.result().then(
        () => assert.fail('a cancelled run succeeded'),
        () => undefined,
      );
      assert.deepEqual(await attributes(handle), {
        outcome: 'cancelled',
        step: 'cancelled at await approval',
      });
    }));
});
