/**
 * A cancelled run's image wait at fleet scale (issue 13: "a cancelled run's wait stops its polls
 * within one poll interval and its compensation starts at once"). On the dev server (Visibility
 * queries), with amiflow's search attributes and stub activities: the image wait stands for the async
 * wait, whose token a watcher holds, so it never answers its cancellation; the run must not wait for
 * it. The run marks `AmiflowStep = cancelling` before its undo, and the watcher's one Visibility list
 * per poll interval (worker/async-waits.ts `listCancelledRuns`) finds it, then finds it ended.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { Context } from '@temporalio/activity';
import type { Activities } from '../../activities';
import { CANCELLING_STEP } from '../../contracts/wait-lease';
import { recordHistory } from '../../devkit/histories';
import { listCancelledRuns } from '../../worker/async-waits';
import { SearchAttr } from '../../workflows/contracts';
import { devServerEnv } from '../support/temporal';
import { happyActivities, imageInput } from './stub-activities';
import { deferred, eventually, test, uniqueWorkflowId, withWorker, workflowEnv } from './harness';

const env = workflowEnv(devServerEnv, { per: 'file' });

void describe('a cancelled run whose image wait is held by a watcher', () => {
  test('GIVEN a run in its image wait, which never answers its cancellation WHEN the run is cancelled THEN its undo starts at once, its step reads cancelling and the watcher list names it while the undo runs, and still names it once the run has ended cancelled', async () => {
    const waitEntered = deferred();
    const undoEntered = deferred();
    const undoMayEnd = deferred();
    const happy = happyActivities({ state: 'running' });
    const activities: Activities = {
      ...happy,
      // The async wait hands its token to the watcher and never heartbeats: no cancellation reaches it.
      waitForImageAvailable: () => {
        waitEntered.resolve();
        // Ends only when the test's worker shuts down (a cancellation from the run needs a heartbeat).
        return Context.current().cancelled;
      },
      deleteImage: async (input) => {
        undoEntered.resolve();
        await undoMayEnd.promise;
        return happy.deleteImage(input);
      },
    };
    await withWorker(
      env,
      activities,
      async (taskQueue) => {
        // GIVEN: a run started as the client starts it (with its attributes), held in its image wait
        const since = Date.now() - 1_000;
        const handle = await env.client.workflow.start('imageFromInstance', {
          taskQueue,
          workflowId: uniqueWorkflowId('cancelling'),
          args: [imageInput({ mode: 'no-reboot' })],
          typedSearchAttributes: [{ key: SearchAttr.region, value: 'eu-west-1' }],
        });
        await waitEntered.promise;
        const key = `${handle.workflowId}/${(await handle.describe()).runId}`;
        assert.ok(
          !(await listCancelledRuns(env.client, since, taskQueue)).has(key),
          'not listed before its cancel',
        );

        // WHEN: it is cancelled
        await handle.cancel();

        // THEN: the undo starts although the wait never confirmed its cancellation
        await undoEntered.promise;
        const step = (await handle.describe()).typedSearchAttributes.get(SearchAttr.step);
        assert.equal(step, CANCELLING_STEP);
        await eventually('the watcher list to name the cancelling run', async () =>
          (await listCancelledRuns(env.client, Date.now(), taskQueue)).has(key) ? true : undefined,
        );
        undoMayEnd.resolve();
        await assert.rejects(handle.result());
        const d = await handle.describe();
        assert.equal(d.status.name, 'CANCELLED');
        assert.equal(d.typedSearchAttributes.get(SearchAttr.step), 'cancelled at wait for image available');
        await eventually('the watcher list to name the ended run', async () =>
          (await listCancelledRuns(env.client, since, taskQueue)).has(key) ? true : undefined,
        );
        // The list is the worker's task queue's: another queue's watcher is not handed this run, and
        // a queue name with a quote or a backslash still makes a query the server accepts.
        assert.ok(!(await listCancelledRuns(env.client, since, `${taskQueue}-other`)).has(key));
        assert.equal((await listCancelledRuns(env.client, since, `q'uote\\${taskQueue}`)).size, 0);
        // The replay tier keeps the marker's path (amiflow-cancelling-step) replaying.
        await recordHistory(handle, 'image-from-instance-cancelling-step');
      },
      'cancelling-step',
    );
  });

  test('GIVEN a run started without amiflow attributes WHEN cancelled in its wait THEN it marks no step (an upsert of an unregistered attribute would fail its task) and still ends cancelled', async () => {
    const waitEntered = deferred();
    const happy = happyActivities({ state: 'running' });
    const activities: Activities = {
      ...happy,
      waitForImageAvailable: () => {
        waitEntered.resolve();
        // Ends only when the test's worker shuts down (a cancellation from the run needs a heartbeat).
        return Context.current().cancelled;
      },
    };
    await withWorker(
      env,
      activities,
      async (taskQueue) => {
        const handle = await env.client.workflow.start('imageFromInstance', {
          taskQueue,
          workflowId: uniqueWorkflowId('cancelling-bare'),
          args: [imageInput({ mode: 'no-reboot' })],
        });
        await waitEntered.promise;
        await handle.cancel();
        await assert.rejects(handle.result());
        const events = (await handle.fetchHistory()).events ?? [];
        const stepUpserts = events.filter(
          (e) =>
            e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.[
              SearchAttr.step.name
            ] !== undefined,
        );
        assert.equal(stepUpserts.length, 0, 'no step attribute upserted');
        assert.equal((await handle.describe()).status.name, 'CANCELLED');
      },
      'cancelling-bare',
    );
  });
});
