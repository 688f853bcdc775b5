/**
 * Asynchronously completed image waits, workflow side (issue 13), on the time-skipping server:
 * the per-worker lease hands a dead worker's waits to live ones, and an image wait started on
 * today's code carries no heartbeat timeout and no attempt limit (its deadline bounds it).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import {
  ActivityFailure,
  ApplicationFailure,
  RetryState,
  TimeoutFailure,
  TimeoutType,
} from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { WaitRef } from '../../activities/image-wait-watcher';
import type {
  HoldLeaseInput,
  LeaseTurn,
  ReleaseWaitsInput,
  WaitLeaseInput,
} from '../../activities/wait-lease';
import { packRefs, unpackRefs } from '../../activities/wait-lease';
import { ASYNC_IMAGE_WAIT_PATCH } from '../../workflows/presets';
import { lastListed, waitLease, waitLeaseRefsSignal } from '../../workflows/wait-lease';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv, uniqueTaskQueue } from '../support/temporal';
import {
  RUN_TIMEOUT,
  happyActivities,
  imageInput,
  outcomeOf,
  startImageFromInstance,
  startWorker,
  succeeded,
  uniqueWorkflowId,
  withinBound,
} from './stub-activities';
import { workflowEnv } from './harness';

const env = workflowEnv(timeSkippingEnv);

/** Heartbeat timeouts as the chaos stack sets them: a hold not picked up is lost after 30 s (leaseScheduleToStartMs). */
const FAST = { solo: 10_000, shared: 10_000 };

const ref = (i: number): WaitRef => ({ workflowId: `wf-${i}`, runId: 'run', activityId: '9' });
const refs = (n: number): WaitRef[] => Array.from({ length: n }, (_, i) => ref(i));

/** The shared queue's worker (the lease workflow, releaseWaits) and the holder's own lease queue. */
async function runLease(
  hold: (input: HoldLeaseInput) => Promise<LeaseTurn>,
  input: { tier: 'solo' | 'shared'; refs: WaitRef[] },
  meanwhile: () => Promise<void> = () => Promise.resolve(),
  ended: () => void = () => undefined,
) {
  const taskQueue = uniqueTaskQueue('lease');
  const leaseQueue = `${taskQueue}-lease-w1`;
  const released: ReleaseWaitsInput[] = [];
  const activities: Activities = {
    ...happyActivities(),
    releaseWaits: (r) => {
      released.push(r);
      return Promise.resolve({ released: r.refs.length, gone: 0 });
    },
  };
  const shared = await startWorker(env, taskQueue, activities);
  // The holder's own lease queue: an activity-only worker, as in worker/async-waits.ts.
  const ownWorker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: leaseQueue,
    activities: { holdWaitLease: hold },
  });
  const handle = await env.client.workflow.start(waitLease, {
    taskQueue,
    workflowId: uniqueWorkflowId('lease'),
    args: [{ leaseQueue, ...input }],
  });
  const result = await withinBound(
    shared.runUntil(
      ownWorker.runUntil(async () => {
        await meanwhile();
        const r = await handle.result();
        ended();
        return r;
      }),
    ),
    'the lease workflow',
  );
  return { result, released, history: await handle.fetchHistory(), workflowId: handle.workflowId };
}

/** The lease's hold as its workflow sees it after a heartbeat timeout, with these last details. */
const holdTimedOut = (lastDetails: unknown) =>
  new ActivityFailure(
    'activity timed out',
    'holdWaitLease',
    '1',
    RetryState.NON_RETRYABLE_FAILURE,
    'worker',
    new TimeoutFailure('heartbeat', lastDetails, TimeoutType.HEARTBEAT),
  );

/** A lease started with `held` on a lease queue no worker polls, and a worker for its own tasks that records what it releases. */
async function unheldLease(name: string, held: WaitRef[], more: Partial<WaitLeaseInput> = {}) {
  const taskQueue = uniqueTaskQueue(name);
  const released: ReleaseWaitsInput[] = [];
  const shared = await startWorker(env, taskQueue, {
    ...happyActivities(),
    releaseWaits: (r) => {
      released.push(r);
      return Promise.resolve({ released: r.refs.length, gone: 0 });
    },
  });
  const handle = await env.client.workflow.start(waitLease, {
    taskQueue,
    workflowId: uniqueWorkflowId(name),
    args: [
      { leaseQueue: `${taskQueue}-lease-dead`, tier: 'solo', refs: held, heartbeatTimeoutMs: FAST, ...more },
    ],
  });
  return { shared, handle, released, taskQueue };
}

void describe('wait lease workflow', () => {
  void it(
    'GIVEN a worker holding 8 waits WHEN its lease ends in failure (what a heartbeat timeout is) THEN the waits it last listed are released to live workers',
    RUN_TIMEOUT,
    async () => {
      // The time-skipping server does not move its clock while an activity runs, so the stub ends
      // as a dead worker's lease does; the timeout's heartbeat details are covered below and in e2e.
      const out = await runLease(
        () => {
          Context.current().heartbeat({ refs: refs(8) });
          throw ApplicationFailure.create({ message: 'activity heartbeat timeout', nonRetryable: true });
        },
        { tier: 'shared', refs: refs(8) },
      );
      assert.deepEqual(out.result, { released: 8 });
      assert.deepEqual(
        out.released.map((r) => r.refs),
        [refs(8)],
      );
      await saveHistory({ history: out.history, workflowId: out.workflowId }, 'wait-lease-lost');
    },
  );

  void it('GIVEN a lease that timed out on heartbeats THEN the waits released are those of its last heartbeat, not the ones it started with', () => {
    const timedOut = holdTimedOut({ refs: refs(8) });
    assert.deepEqual(lastListed(timedOut, refs(1)), { refs: refs(8) });
    assert.deepEqual(lastListed(new Error('other'), refs(1)), { refs: refs(1) });
  });

  void it('GIVEN a lease whose hold heartbeated a packed list WHEN it times out THEN that packed list goes to releaseWaits as it is (unpacked there, outside the sandbox)', () => {
    const packed = packRefs(refs(8));
    const timedOut = holdTimedOut({ packed });
    assert.deepEqual(lastListed(timedOut, refs(1)), { refs: [], packed });
    assert.deepEqual(unpackRefs(packed), refs(8));
  });

  void it(
    'GIVEN a lease its worker never picks up WHEN the worker signals a whole list (the first form) and then changes (added, gone) THEN once its hold is not picked up within 30 s the waits released are exactly those the signals add up to',
    RUN_TIMEOUT,
    async () => {
      const { shared, handle, released } = await unheldLease('lease-told', refs(1));
      await handle.signal(waitLeaseRefsSignal, refs(3));
      await handle.signal(waitLeaseRefsSignal, { added: [ref(3), ref(4), ref(5)], gone: [ref(0)] });
      await handle.signal(waitLeaseRefsSignal, { added: [], gone: [ref(4)] });
      const result = await withinBound(shared.runUntil(handle.result()), 'the told lease');
      assert.deepEqual(result, { released: 4 });
      assert.deepEqual(
        released[0]?.refs.map((r) => r.workflowId),
        ['wf-1', 'wf-2', 'wf-3', 'wf-5'],
      );
      await saveHistory(
        { history: await handle.fetchHistory(), workflowId: handle.workflowId },
        'wait-lease-told',
      );
    },
  );

  void it(
    'GIVEN a lease that turns shared and then sees its last wait go WHEN it ends THEN nothing is released',
    RUN_TIMEOUT,
    async () => {
      const turns: string[] = [];
      const out = await runLease(
        (input) => {
          turns.push(input.tier);
          return Promise.resolve(input.tier === 'solo' ? { next: 'shared', refs: refs(6) } : { refs: [] });
        },
        { tier: 'solo', refs: refs(1) },
      );
      assert.deepEqual(turns, ['solo', 'shared']);
      assert.deepEqual(out.result, { released: 0 });
      assert.equal(out.released.length, 0);
      await saveHistory({ history: out.history, workflowId: out.workflowId }, 'wait-lease-ended');
    },
  );

  void it(
    'GIVEN a lease with 10 s heartbeat timeouts its worker never picks up WHEN 30 s pass THEN the waits it started with are released',
    RUN_TIMEOUT,
    async () => {
      const { shared, handle, released } = await unheldLease('lease-unheld', refs(2));
      const result = await withinBound(shared.runUntil(handle.result()), 'the unheld lease');
      assert.deepEqual(result, { released: 2 });
      assert.deepEqual(released[0]?.refs, refs(2));
      assert.equal(released[0]?.sweep, undefined, 'a lease of before the sweep names no worker');
    },
  );

  void it(
    'GIVEN a lease that names its worker WHEN it is lost THEN releaseWaits is asked to sweep that worker on the shared queue too (waits it took that no list named)',
    RUN_TIMEOUT,
    async () => {
      const { shared, handle, released, taskQueue } = await unheldLease('lease-sweep', refs(1), {
        workerIdentity: '4242@host-a',
      });
      await withinBound(shared.runUntil(handle.result()), 'the unheld lease');
      assert.deepEqual(released[0]?.sweep, { taskQueue, workerIdentity: '4242@host-a' });
      assert.deepEqual(released[0]?.refs, refs(1));
      await saveHistory(
        { history: await handle.fetchHistory(), workflowId: handle.workflowId },
        'wait-lease-swept',
      );
    },
  );
});

void describe("image wait started on today's code", () => {
  void it(
    'GIVEN a new imageFromInstance run WHEN its image wait is handed off once THEN it is retried and completes; the wait was scheduled with no heartbeat timeout, no attempt limit and a schedule-to-close bound',
    RUN_TIMEOUT,
    async () => {
      const taskQueue = uniqueTaskQueue('async-wait');
      const seen: { attempt: number; heartbeatTimeoutMs?: number }[] = [];
      const happy = happyActivities({ state: 'stopped' });
      const worker = await startWorker(env, taskQueue, {
        ...happy,
        waitForImageAvailable: (input) => {
          const info = Context.current().info;
          seen.push({
            attempt: info.attempt,
            ...(info.heartbeatTimeoutMs ? { heartbeatTimeoutMs: info.heartbeatTimeoutMs } : {}),
          });
          if (info.attempt === 1)
            throw ApplicationFailure.create({ type: 'WorkerShuttingDown', message: 'handed off' });
          return happy.waitForImageAvailable(input);
        },
      });
      const handle = await startImageFromInstance(env, taskQueue, imageInput({ mode: 'no-reboot' }));
      const outcome = await withinBound(worker.runUntil(outcomeOf(handle)), 'the run');
      succeeded(outcome);
      assert.deepEqual(seen, [{ attempt: 1 }, { attempt: 2 }]);
      const events = outcome.history.events ?? [];
      const scheduled = events.find(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'waitForImageAvailable',
      )?.activityTaskScheduledEventAttributes;
      assert.ok(scheduled);
      assert.equal(Number(scheduled.heartbeatTimeout?.seconds ?? 0), 0, 'no heartbeat timeout');
      assert.equal(scheduled.retryPolicy?.maximumAttempts ?? 0, 0, 'no attempt limit');
      assert.ok(Number(scheduled.scheduleToCloseTimeout?.seconds ?? 0) > 0, 'a schedule-to-close bound');
      assert.ok(
        events.some((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch'),
        `the ${ASYNC_IMAGE_WAIT_PATCH} marker is recorded`,
      );
      await saveHistory(
        { history: outcome.history, workflowId: handle.workflowId },
        'image-from-instance-async-wait',
      );
    },
  );
});
