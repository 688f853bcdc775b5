/**
 * A lost lease's sweep (worker/async-waits.ts `clientFindStarted`, activities/wait-lease.ts
 * `StrandedSweep`): the image waits a worker took that no list of its lease named yet, found on the
 * server by the identity it recorded on their attempts. The bounded chaos tier stranded such a wait
 * (CI of 8cd6654): SIGKILLed between the server handing it over and the lease hearing of it, it sat
 * on the dead worker with no heartbeat timeout until its backstop. On the dev server, with real runs
 * whose waits were taken and never answered, as a SIGKILLed worker leaves them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CompleteAsyncError, Context } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WaitRef } from '../../contracts/wait-lease';
import { releaseActivities } from '../../activities/wait-lease';
import { clientFindStarted, clientRelease } from '../../worker/async-waits';
import { devServerEnv, uniqueTaskQueue } from '../support/temporal';
import { eventually, startWorker } from '../workflows/harness';
import {
  happyActivities,
  imageInput,
  startImageFromInstance,
  withinBound,
} from '../workflows/stub-activities';

let env: TestWorkflowEnvironment;
before(async () => {
  env = await devServerEnv();
});
after(async () => {
  await env.teardown();
});

const DEAD = '9999@dead-host';
const byId = (a: WaitRef, b: WaitRef) => a.workflowId.localeCompare(b.workflowId);

void describe('the sweep of a lost worker', () => {
  void it('GIVEN two runs whose image waits a worker took and never answered (it died before its lease heard of them) WHEN its lease is lost THEN the sweep finds exactly those waits by its identity, releases them, and a live worker completes both runs', async () => {
    const taskQueue = uniqueTaskQueue('find-started');
    const happy = happyActivities({ state: 'stopped' });
    const taken: WaitRef[] = [];
    const beforeRuns = Date.now();
    // The "dead" worker: takes each wait as the watcher does (async completion) and never answers.
    const dead = await startWorker(
      env,
      taskQueue,
      {
        ...happy,
        waitForImageAvailable: () => {
          const { workflowExecution, activityId } = Context.current().info;
          assert.ok(workflowExecution, 'a workflow activity');
          taken.push({
            workflowId: workflowExecution.workflowId,
            runId: workflowExecution.runId,
            activityId,
          });
          throw new CompleteAsyncError();
        },
      },
      { identity: DEAD },
    );
    const handles = await dead.runUntil(async () => {
      const started = await Promise.all(
        [1, 2].map((n) =>
          startImageFromInstance(env, taskQueue, imageInput({ mode: 'no-reboot', imageName: `sweep-${n}` })),
        ),
      );
      await eventually('both waits taken', () => Promise.resolve(taken.length === 2 || undefined));
      return started;
    });

    const find = clientFindStarted(env.client);
    const now = Date.now() + 1;
    const found = await eventually('both waits found', async () => {
      const f = await find({ taskQueue, workerIdentity: DEAD }, now);
      return f.length === 2 ? f : undefined;
    });
    assert.deepEqual(found.sort(byId), [...taken].sort(byId));
    assert.deepEqual(
      await find({ taskQueue, workerIdentity: '1@live-host' }, now),
      [],
      'another worker: none',
    );
    assert.deepEqual(
      await find({ taskQueue, workerIdentity: DEAD }, beforeRuns),
      [],
      'attempts started after the release began are not the lost worker`s',
    );

    // The lost lease listed none of them: the sweep alone hands both to a live worker.
    const { releaseWaits } = releaseActivities(clientRelease(env.client), find);
    const out = await new MockActivityEnvironment().run(releaseWaits, {
      refs: [],
      lease: 'lease-of-dead',
      sweep: { taskQueue, workerIdentity: DEAD },
    });
    assert.deepEqual(out, { released: 2, gone: 0, swept: 2 });
    const live = await startWorker(env, taskQueue, happy, { identity: '1@live-host' });
    const results = await withinBound(
      live.runUntil(Promise.all(handles.map((h) => h.result()))),
      'both runs on the live worker',
    );
    assert.equal(results.length, 2);
  });
});
