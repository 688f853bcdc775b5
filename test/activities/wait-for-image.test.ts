/** waitForImageAvailable: polling with backoff, heartbeats with progress, terminal states, bounds. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DescribeImagesCommandOutput, Image } from '@aws-sdk/client-ec2';
import { DescribeImagesCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { CancelledFailure } from '@temporalio/activity';
import type { ImageProgress, ImageWaitInput } from '../../activities/images';
import type { WaitHeartbeat } from '../../activities/waiting';
import { DEFAULT_POLL_POLICY, activityClock } from '../../activities/waiting';
import { FailureType } from '../../workflows/contracts';
import { awsError, errorOf, nonRetryableFailure } from './failures';
import { IMAGE_ID, SNAPSHOTS, T0, TARGET, image } from './fixtures';
import { activityEnv, harness } from './harness';

type Harness = ReturnType<typeof harness>;
type Heartbeat = WaitHeartbeat<ImageProgress>;

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
/** The image wait's heartbeat timeout (workflows/presets.ts `longImageWait`). */
const IMAGE_HEARTBEAT_TIMEOUT = 6 * MINUTE;
const input: ImageWaitInput = { target: TARGET, imageId: IMAGE_ID, deadline: T0 + 4 * HOUR };

/** A first attempt of the image wait, with its production heartbeat timeout. */
function imageWaitEnv() {
  return activityEnv({ heartbeatTimeoutMs: IMAGE_HEARTBEAT_TIMEOUT });
}

/** A retry (attempt 7) of a wait whose earlier attempts made `calls` AWS calls, against the 5,000 bound. */
function retryAfterCalls(calls: number) {
  return activityEnv({ attempt: 7, heartbeatDetails: { calls, polls: 4_600 } satisfies Heartbeat });
}

function describeImagesAnswers(h: Harness, ...answers: (Image | Error)[]): void {
  let behaviour = h.ec2Mock.on(DescribeImagesCommand, { ImageIds: [IMAGE_ID] });
  const answer = (a: Image | Error) =>
    a instanceof Error ? Promise.reject(a) : Promise.resolve({ Images: [a] });
  for (const a of answers.slice(0, -1)) behaviour = behaviour.callsFakeOnce(() => answer(a));
  const last = answers[answers.length - 1];
  if (last) behaviour.callsFake(() => answer(last));
}

/** The image becomes available at `availableAt` (virtual time); snapshots progress linearly until then. */
function availableAt(h: Harness, at: number): void {
  h.ec2Mock
    .on(DescribeImagesCommand, { ImageIds: [IMAGE_ID] })
    .callsFake((): Promise<DescribeImagesCommandOutput> =>
      Promise.resolve({ $metadata: {}, Images: [image(h.clock.now() >= at ? 'available' : 'pending')] }),
    );
  h.ec2Mock.on(DescribeSnapshotsCommand).callsFake(() => {
    const pct = `${Math.min(99, Math.floor(((h.clock.now() - T0) / (at - T0)) * 100))}%`;
    return Promise.resolve({
      Snapshots: SNAPSHOTS.map((SnapshotId) => ({ SnapshotId, Progress: pct, State: 'pending' as const })),
    });
  });
}

const describeImagesCalls = (h: Harness) => h.ec2Mock.commandCalls(DescribeImagesCommand).length;
const describeSnapshotsCalls = (h: Harness) => h.ec2Mock.commandCalls(DescribeSnapshotsCommand).length;

void describe('waitForImageAvailable', () => {
  void it('GIVEN an image pending for four polls WHEN waiting THEN DescribeImages five times, backing off, and returns its snapshots', async () => {
    const h = harness();
    describeImagesAnswers(
      h,
      image('pending'),
      image('pending'),
      image('pending'),
      image('pending'),
      image('available'),
    );
    h.ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });

    const out = await imageWaitEnv().run(h.activities.waitForImageAvailable, input);

    assert.equal(describeImagesCalls(h), 5);
    for (const c of h.ec2Mock.commandCalls(DescribeImagesCommand))
      assert.deepEqual(c.args[0].input, { ImageIds: [IMAGE_ID] });
    assert.deepEqual(h.clock.sleeps, [2_000, 3_200, 5_120, 8_192]);
    assert.deepEqual(out, {
      imageId: IMAGE_ID,
      snapshotIds: [...SNAPSHOTS],
      awsCalls: 6, // five polls and one DescribeSnapshots for the single heartbeat
      polls: 5,
      heartbeats: 1,
    });
  });

  void it('GIVEN a long wait WHEN polling THEN the intervals back off by 1.6 to the 11.5 s ceiling, within ±10% jitter', async () => {
    for (const [random, factor] of [
      [() => 0.5, 1],
      [() => 0, 0.9],
      [() => 1, 1.1],
    ] as const) {
      const h = harness({ random });
      availableAt(h, T0 + 4 * MINUTE);

      await imageWaitEnv().run(h.activities.waitForImageAvailable, input);

      const expected = [2_000, 3_200, 5_120, 8_192, 11_500, 11_500, 11_500].map((ms) => ms * factor);
      h.clock.sleeps
        .slice(0, expected.length)
        .forEach((ms, i) => assert.ok(Math.abs(ms - (expected[i] ?? 0)) < 1e-6));
      assert.ok(
        Math.max(...h.clock.sleeps) <= 11_500 * factor + 1e-6,
        `no interval above the ceiling: ${h.clock.sleeps.join(', ')}`,
      );
    }
  });

  void it('GIVEN a pending image WHEN waiting THEN heartbeats carry the image state and each snapshot’s progress from DescribeSnapshots', async () => {
    const h = harness();
    availableAt(h, T0 + 20 * MINUTE);
    const run = imageWaitEnv();

    const out = await run.run(h.activities.waitForImageAvailable, input);

    const beats = run.heartbeats as Heartbeat[];
    assert.ok(beats.length >= 2);
    assert.deepEqual(beats[0]?.progress, {
      imageState: 'pending',
      snapshots: SNAPSHOTS.map((snapshotId) => ({ snapshotId, progress: '0%', state: 'pending' })),
    });
    assert.match(
      beats[1]?.progress?.snapshots?.[0]?.progress ?? '',
      /^2\d%$/,
      'progress after ~4.8 min of 20',
    );
    for (const c of h.ec2Mock.commandCalls(DescribeSnapshotsCommand))
      assert.deepEqual(c.args[0].input, { SnapshotIds: [...SNAPSHOTS] });
    assert.equal(describeSnapshotsCalls(h), beats.length, 'DescribeSnapshots only at heartbeat time');
    assert.equal(out.heartbeats, beats.length);
    assert.deepEqual(h.onHeartbeatCalls, run.heartbeats, 'deps.onHeartbeat sees every heartbeat');
    assert.equal(
      out.awsCalls,
      out.polls + beats.length,
      'AWS calls: every poll plus one DescribeSnapshots a heartbeat',
    );
  });

  void it('GIVEN a one-hour wait WHEN waiting THEN heartbeats come every 0.8 × the heartbeat timeout, DescribeImages stays bounded, and availability is seen within 12.65 s', async () => {
    const h = harness({ random: () => 1 });
    const at = T0 + HOUR;
    availableAt(h, at);
    const run = imageWaitEnv();
    const times: number[] = [];
    run.env.on('heartbeat', () => times.push(h.clock.now()));

    const out = await run.run(h.activities.waitForImageAvailable, input);

    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    for (const gap of gaps) {
      assert.ok(gap >= 0.8 * IMAGE_HEARTBEAT_TIMEOUT, `gap ${gap} ms shorter than 0.8 × the timeout`);
      assert.ok(
        gap < 0.85 * IMAGE_HEARTBEAT_TIMEOUT,
        `gap ${gap} ms: heartbeats should come at ≈ 0.8 × the timeout`,
      );
    }
    assert.equal(times.length, Math.ceil(HOUR / (0.8 * IMAGE_HEARTBEAT_TIMEOUT)), '13 heartbeats in an hour');
    assert.ok(out.polls <= HOUR / 11_500 + 20, `${out.polls} DescribeImages calls for one hour`);
    const lag = h.clock.now() - at;
    assert.ok(lag >= 0 && lag <= 12_650, `saw availability ${lag} ms after it happened`);
  });

  void it('GIVEN no heartbeat timeout (an async-option wait on a worker without a watcher) WHEN waiting THEN heartbeats every default 4.8 min, as a 6-minute heartbeat timeout did', async () => {
    const h = harness();
    availableAt(h, T0 + 25 * MINUTE);
    const run = activityEnv();
    const times: number[] = [];
    run.env.on('heartbeat', () => times.push(h.clock.now()));

    await run.run(h.activities.waitForImageAvailable, input);

    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    assert.ok(gaps.length >= 4);
    for (const gap of gaps) assert.equal(gap, DEFAULT_POLL_POLICY.defaultHeartbeatMs);
  });

  void it('GIVEN the image fails WHEN waiting THEN ImageFailed, non-retryable, with AWS’s state reason', async () => {
    const h = harness();
    describeImagesAnswers(
      h,
      image('pending'),
      image('failed', {
        StateReason: { Code: 'Client.InternalError', Message: 'Snapshot creation failed: volume gone' },
      }),
    );
    h.ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });

    const failure = await nonRetryableFailure(
      imageWaitEnv().run(h.activities.waitForImageAvailable, input),
      FailureType.ImageFailed,
      IMAGE_ID,
      "'failed'",
      'Client.InternalError',
      'Snapshot creation failed: volume gone',
    );
    assert.deepEqual(failure.details, [
      { stateReason: { Code: 'Client.InternalError', Message: 'Snapshot creation failed: volume gone' } },
    ]);
  });

  void it('GIVEN an image still pending at the deadline WHEN waiting THEN WaitTimedOut, non-retryable, at the deadline and no later', async () => {
    const h = harness();
    availableAt(h, T0 + 10 * HOUR);
    const deadline = T0 + 30 * MINUTE;

    const failure = await nonRetryableFailure(
      imageWaitEnv().run(h.activities.waitForImageAvailable, {
        ...input,
        deadline,
      }),
      FailureType.WaitTimedOut,
      `image ${IMAGE_ID} to become available`,
      new Date(deadline).toISOString(),
    );
    assert.equal(h.clock.now(), deadline);
    const [details] = failure.details as [Heartbeat];
    assert.equal(details.polls, describeImagesCalls(h), 'the failure carries the call counts');
  });

  void it('GIVEN a deadline already passed (a late retry) WHEN waiting THEN one look, then WaitTimedOut', async () => {
    const h = harness();
    describeImagesAnswers(h, image('pending'));

    await nonRetryableFailure(
      activityEnv({ attempt: 5 }).run(h.activities.waitForImageAvailable, { ...input, deadline: T0 - 1 }),
      FailureType.WaitTimedOut,
    );
    assert.equal(describeImagesCalls(h), 1);
    assert.deepEqual(h.clock.sleeps, []);
  });

  void it('GIVEN a new image invisible to DescribeImages for a few seconds WHEN waiting THEN it keeps looking', async () => {
    const h = harness();
    const notYet = awsError('InvalidAMIID.NotFound', 400, `The image id '[${IMAGE_ID}]' does not exist`);
    describeImagesAnswers(h, notYet, notYet, image('pending'), image('available'));
    h.ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    const run = imageWaitEnv();

    const out = await run.run(h.activities.waitForImageAvailable, input);

    assert.equal(out.polls, 4);
    assert.deepEqual((run.heartbeats[0] as Heartbeat).progress, { imageState: 'not visible yet' });
  });

  void it('GIVEN an image that stays invisible for the whole consistency window (1 minute here) WHEN waiting THEN ImageNotFound, non-retryable', async () => {
    const h = harness();
    h.deps.consistencyWindowMs = MINUTE;
    describeImagesAnswers(h, awsError('InvalidAMIID.NotFound', 400));

    await nonRetryableFailure(
      imageWaitEnv().run(h.activities.waitForImageAvailable, input),
      FailureType.ImageNotFound,
      IMAGE_ID,
      'not visible for the whole consistency window (60s)',
    );
    assert.ok(h.clock.now() - T0 > MINUTE && h.clock.now() - T0 < 2 * MINUTE);
  });

  void it('GIVEN an image invisible for two minutes, inside the default three-minute window WHEN waiting THEN it keeps looking and finds it', async () => {
    const h = harness();
    let visibleFrom = 0;
    h.ec2Mock.on(DescribeImagesCommand).callsFake(() => {
      if (h.clock.now() - T0 < 2 * MINUTE) throw awsError('InvalidAMIID.NotFound', 400);
      visibleFrom ||= h.clock.now();
      return Promise.resolve({ Images: [image('available')] });
    });
    h.ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });

    const out = await imageWaitEnv().run(h.activities.waitForImageAvailable, input);

    assert.equal(out.imageId, IMAGE_ID);
    assert.ok(visibleFrom - T0 >= 2 * MINUTE);
  });

  void it('GIVEN a retry whose earlier attempts made 10 calls WHEN waiting THEN it counts on from heartbeatDetails', async () => {
    const h = harness();
    describeImagesAnswers(h, image('pending'), image('available'));
    h.ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    const run = activityEnv({ attempt: 2, heartbeatDetails: { calls: 10, polls: 8 } satisfies Heartbeat });

    const out = await run.run(h.activities.waitForImageAvailable, input);

    assert.deepEqual((run.heartbeats[0] as Heartbeat).calls, 12); // 10 + one poll + one DescribeSnapshots
    assert.equal(out.awsCalls, 13);
    assert.equal(out.polls, 10);
  });

  void it('GIVEN earlier attempts used up the 5,000-call bound WHEN retried THEN WaitTimedOut at once, with no AWS call', async () => {
    const h = harness();
    describeImagesAnswers(h, image('pending'));

    await nonRetryableFailure(
      retryAfterCalls(5_000).run(h.activities.waitForImageAvailable, input),
      FailureType.WaitTimedOut,
      'after 5000 AWS calls (the bound)',
    );
    assert.equal(h.ec2Mock.calls().length, 0);
  });

  void it('GIVEN one call left under the bound WHEN retried THEN exactly one DescribeImages before WaitTimedOut', async () => {
    const h = harness();
    describeImagesAnswers(h, image('pending'));
    h.ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });

    await nonRetryableFailure(
      retryAfterCalls(4_999).run(h.activities.waitForImageAvailable, input),
      FailureType.WaitTimedOut,
    );
    assert.equal(describeImagesCalls(h), 1);
  });

  void it('GIVEN DescribeImages is throttled WHEN waiting THEN the SDK error is rethrown as is (Temporal retries; the call count survives in heartbeats)', async () => {
    const h = harness();
    const throttled = awsError('RequestLimitExceeded', 503, 'Request limit exceeded.');
    describeImagesAnswers(h, image('pending'), throttled);
    h.ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    const run = imageWaitEnv();

    const err = await errorOf(run.run(h.activities.waitForImageAvailable, input));

    assert.equal(err, throttled);
    assert.equal((run.heartbeats.at(-1) as Heartbeat).calls, 2);
  });
});

void describe('activityClock', () => {
  void it('GIVEN a sleeping activity WHEN it is cancelled THEN the sleep rejects at once with CancelledFailure', async () => {
    const { env } = activityEnv();
    const sleeping = env.run(() => activityClock.sleep(HOUR));

    env.cancel();

    const err = await errorOf(sleeping);
    assert.ok(err instanceof CancelledFailure, String(err));
  });
});
