/**
 * imageFromInstance waiting hours for an image, in seconds of wall time: the REAL
 * `waitForImageAvailable` activity against a virtual EC2 on a virtual clock. The wait costs a
 * bounded number of AWS calls, and the workflow history does not grow with the length of the wait.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Activities } from '../../activities';
import { DEFAULT_POLL_POLICY } from '../../activities/waiting';
import type { ConsistencyMode } from '../../workflows/contracts';
import { timeSkippingEnv } from '../support/temporal';
import type { History, Outcome } from './stub-activities';
import {
  ActivityLog,
  IMAGE_ID,
  SNAPSHOT_IDS,
  assertActivityFailure,
  assertCalls,
  deferred,
  eventually,
  failed,
  happyActivities,
  imageInput,
  localActivityMarkers,
  outcomeOf,
  RUN_TIMEOUT,
  recorded,
  startImageFromInstance,
  succeeded,
  withWorker,
  STOP_AND_IMAGE,
} from './stub-activities';
import type { VirtualEc2, VirtualImageOptions } from './virtual-ec2';
import { virtualEc2 } from './virtual-ec2';
import { workflowEnv } from './harness';

const env = workflowEnv(timeSkippingEnv);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

interface LongRun {
  outcome: Outcome;
  ec2: VirtualEc2;
  log: ActivityLog;
  wallMs: number;
}

/**
 * True once the workflow has finished a workflow task after startInstance completed: it has seen
 * the instance running again. Read from history, not by query: the time-skipping test server
 * records an extra workflow task for each query of a running workflow.
 */
function restartSeenIn(history: History): boolean {
  const events = history.events ?? [];
  const scheduled = events.find(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'startInstance',
  );
  if (!scheduled) return false;
  const completed = events.findIndex(
    (e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(scheduled.eventId),
  );
  return completed >= 0 && events.slice(completed).some((e) => e.workflowTaskCompletedEventAttributes);
}

/**
 * One run with stub activities except the real wait on the virtual EC2. In stop mode the wait
 * starts only once the workflow has recorded the instance's restart, so the two concurrent
 * completions reach history in the same order on every run and history sizes compare exactly.
 */
async function longRun(
  mode: ConsistencyMode,
  image: VirtualImageOptions,
  timeouts?: { imageAvailableSeconds: number },
): Promise<LongRun> {
  const ec2 = virtualEc2(image);
  const log = new ActivityLog();
  const restartSeen = deferred();
  const activities: Activities = {
    ...happyActivities({ state: 'running' }),
    waitForImageAvailable: async (input) => {
      await restartSeen.promise;
      return ec2.waitForImageAvailable(input);
    },
  };
  const started = Date.now();
  const outcome = await withWorker(env, recorded(log, activities), async (taskQueue) => {
    const handle = await startImageFromInstance(
      env,
      taskQueue,
      imageInput({ mode, ...(timeouts ? { timeouts } : {}) }),
    );
    if (mode === 'stop' && image.availableAfterMs !== 'never') {
      await eventually('the workflow to see the instance running again', async () =>
        restartSeenIn(await handle.fetchHistory()) ? true : undefined,
      );
    }
    restartSeen.resolve();
    return outcomeOf(handle);
  });
  return { outcome, ec2, log, wallMs: Date.now() - started };
}

/**
 * The types of the events the run's commands and their results made, without the workflow task
 * events: under load two results can land in one workflow task, which changes how many workflow
 * tasks there are but not what the run did.
 */
function eventTypes(history: History): number[] {
  return (history.events ?? [])
    .filter(
      (e) =>
        !e.workflowTaskScheduledEventAttributes &&
        !e.workflowTaskStartedEventAttributes &&
        !e.workflowTaskCompletedEventAttributes,
    )
    .map((e) => Number(e.eventType));
}

function timers(history: History): number {
  return (history.events ?? []).filter((e) => e.timerStartedEventAttributes).length;
}

describe('imageFromInstance waiting hours for the image', () => {
  it(
    'GIVEN an image that takes 2 hours to become available WHEN imaged in stop mode THEN the run succeeds in seconds, polling at most every 15 s and at least every 12 s',
    RUN_TIMEOUT,
    async (t) => {
      const { outcome, ec2, log, wallMs } = await longRun('stop', { availableAfterMs: 2 * HOUR });

      const result = succeeded(outcome);
      assert.equal(result.imageId, IMAGE_ID);
      assert.deepEqual(result.snapshotIds, SNAPSHOT_IDS);
      assert.equal(result.instanceFinalState, 'running');
      assertCalls(log, [...STOP_AND_IMAGE, 'tagSnapshots']);
      assert.ok(wallMs < 15_000, `a 2-hour wait took ${wallMs} ms of wall time`);
      const startedAt = ec2.waitStartedAt() ?? NaN;
      const availableAt = ec2.availableAt() ?? NaN;
      assert.equal(availableAt - startedAt, 2 * HOUR);
      const { maxIntervalMs, jitter } = DEFAULT_POLL_POLICY;
      const longestGap = maxIntervalMs * (1 + jitter); // 12.65 s
      const shortestGap = maxIntervalMs * (1 - jitter); // 12.15 s, once backed off (within 5 polls)
      // The wait saw the image within one poll interval of it becoming available.
      const lag = ec2.clock.now() - availableAt;
      assert.ok(lag >= 0 && lag <= longestGap, `seen ${lag} ms late`);
      // One DescribeImages per poll: about 2 h / 11.5 s, bounded both ways by the jitter; above
      // that, at most the 5 polls of the back-off ramp and one early wake per heartbeat.
      const calls = ec2.describeImagesCalls();
      assert.ok(
        calls >= (2 * HOUR) / longestGap && calls <= (2 * HOUR) / shortestGap + 5 + ec2.heartbeats(),
        `${calls} DescribeImages calls in 2 h`,
      );
      t.diagnostic(
        `2-hour wait: ${wallMs} ms wall time, ${calls} DescribeImages, ${ec2.heartbeats()} heartbeats, ` +
          `image seen ${(lag / 1000).toFixed(1)} s after it became available`,
      );
      // Heartbeats (each a billable action) at 80 % of the 6-minute heartbeat timeout, no faster.
      assert.ok(ec2.heartbeats() >= 20 && ec2.heartbeats() <= 26, `${ec2.heartbeats()} heartbeats in 2 h`);
      assert.equal(
        ec2.describeSnapshotsCalls(),
        ec2.heartbeats(),
        'snapshot progress is read only to heartbeat',
      );
    },
  );

  it(
    'GIVEN an image that never becomes available WHEN the 1-hour image timeout passes THEN the wait fails WaitTimedOut, the image is deleted, and the instance is running again',
    RUN_TIMEOUT,
    async () => {
      const { outcome, ec2, log, wallMs } = await longRun(
        'stop',
        { availableAfterMs: 'never', imageAvailableSeconds: 3600 },
        { imageAvailableSeconds: 3600 },
      );

      const cause = assertActivityFailure(failed(outcome), {
        activityType: 'waitForImageAvailable',
        local: false,
        type: 'WaitTimedOut',
      });
      assert.match(cause.message, new RegExp(`timed out waiting for image ${IMAGE_ID}`));
      assert.ok(wallMs < 15_000, `a 1-hour timeout took ${wallMs} ms of wall time`);
      const waited = ec2.clock.now() - (ec2.waitStartedAt() ?? NaN);
      assert.ok(waited >= HOUR && waited < HOUR + MINUTE, `gave up after ${waited} virtual ms`);
      assertCalls(log, [...STOP_AND_IMAGE, 'deleteImage']);
      assert.deepEqual(outcome.progress.compensations, [
        { name: 'delete image and snapshots', state: 'done' },
      ]);
    },
  );

  for (const mode of ['stop', 'reboot', 'no-reboot'] as const) {
    it(
      `GIVEN ${mode} mode WHEN the image takes 1 minute or 2 hours THEN history has the same events, no timers${mode === 'stop' ? ', and at most 36 events' : ''}`,
      RUN_TIMEOUT,
      async (t) => {
        const short = await longRun(mode, { availableAfterMs: MINUTE });
        const long = await longRun(mode, { availableAfterMs: 2 * HOUR });

        succeeded(short.outcome);
        succeeded(long.outcome);
        // The waits really differed, by far more AWS calls than the history could hide.
        assert.ok(long.ec2.describeImagesCalls() > 10 * short.ec2.describeImagesCalls());
        const shortEvents = eventTypes(short.outcome.history);
        const longEvents = eventTypes(long.outcome.history);
        t.diagnostic(
          `${mode}: ${shortEvents.length} events with a 1-minute wait (${short.ec2.describeImagesCalls()} DescribeImages), ` +
            `${longEvents.length} with a 2-hour wait (${long.ec2.describeImagesCalls()} DescribeImages)`,
        );
        assert.deepEqual(longEvents, shortEvents);
        assert.equal(timers(long.outcome.history), 0);
        assert.equal(localActivityMarkers(long.outcome.history), 3); // createImage is a normal activity
        const all = long.outcome.history.events?.length ?? 0;
        if (mode === 'stop') assert.ok(all <= 36, `${all} events in a stop run`);
      },
    );
  }
});
