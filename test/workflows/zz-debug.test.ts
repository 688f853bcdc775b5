import { after, before, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingEnv, uniqueTaskQueue } from '../support/temporal';
import { blockingWaits, copyInput, outcome, shareCopyActivities, start } from './share-copy-stubs';
import { ActivityLog, blockingUntilCancelled, quietWorkerLogs, recorded, startWorker, happyActivities, startImageFromInstance, imageInput, outcomeOf } from './stub-activities';

quietWorkerLogs();
let env: TestWorkflowEnvironment;
before(async () => { env = await timeSkippingEnv(); });
after(async () => { await env?.teardown(); });

it('image resume with my blockingWaits', async () => {
  const taskQueue = uniqueTaskQueue('dbg');
  const happy = happyActivities({ state: 'running' });
  const waits = blockingWaits(happy.waitForImageAvailable);
  const w1 = await startWorker(env, taskQueue, recorded(new ActivityLog(), { ...happy, waitForImageAvailable: waits.fn }));
  const r1 = w1.run();
  const handle = await startImageFromInstance(env, taskQueue, imageInput({ mode: 'no-reboot' }));
  await waits.entered(1);
  w1.shutdown(); await r1; await waits.cancelled(1);
  const w2 = await startWorker(env, taskQueue, recorded(new ActivityLog(), happy));
  const o = await w2.runUntil(outcomeOf(handle));
  console.log('DBG image ok', o.ok);
});

it('copy resume with foundation blocking', async () => {
  const taskQueue = uniqueTaskQueue('dbg2');
  const happy = shareCopyActivities();
  const wait = blockingUntilCancelled();
  const w1 = await startWorker(env, taskQueue, recorded(new ActivityLog(), { ...happy, waitForImageAvailable: wait.fn }));
  const r1 = w1.run();
  const handle = await start(env, 'copyImage', taskQueue, copyInput({ destinations: [{ region: 'eu-central-1' }] }));
  await wait.entered;
  w1.shutdown(); await r1; await wait.cancelled;
  const w2 = await startWorker(env, taskQueue, recorded(new ActivityLog(), happy));
  const o = await w2.runUntil(outcome(handle));
  console.log('DBG copy ok', o.ok);
});
