/**
 * The worker's image-wait watcher (activities/image-wait-watcher.ts): waits handed over by their
 * activities are polled in batches per account and region and settled through async completion;
 * the lease keeper (activities/wait-lease.ts) follows the set of waits. EC2 is mocked at the SDK
 * level, Temporal's async completion by a recorder; each round is driven by the test, no sleeps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Image } from '@aws-sdk/client-ec2';
import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { mockClient } from 'aws-sdk-client-mock';
import type { AwsClients } from '../../activities/aws';
import type { ImageWaitRequest, WaitCompletion, WaitRef } from '../../activities/image-wait-watcher';
import {
  DEFAULT_WATCHER_OPTIONS,
  ImageWaitWatcher,
  imagePollIntervalMs,
} from '../../activities/image-wait-watcher';
import type { AvailableImage } from '../../activities/images';
import type { LeaseTurn, WaitLeaseInput } from '../../activities/wait-lease';
import { WaitLeaseKeeper, releaseActivities, tierFor } from '../../activities/wait-lease';
import type { AwsTarget } from '../../workflows/contracts';
import { VirtualTimers } from '../support/virtual-timers';
import { awsError } from './failures';
import { EU, T0, addWait, ami, stampedImagesEc2, watcherHolding } from './watcher-fixture';

const US: AwsTarget = { region: 'us-east-1', accountId: '111122223333' };

/** Records what the watcher tells Temporal; `cancelled` runs answer that their wait was cancelled. */
class Completions implements WaitCompletion {
  completed = new Map<string, AvailableImage>();
  failed = new Map<string, ApplicationFailure>();
  heartbeats: string[] = [];
  cancellationsReported: string[] = [];
  cancelled = new Set<string>();
  cancelReads = 0;
  down = false;
  private id = (token: Uint8Array) => Buffer.from(token).toString();
  complete(token: Uint8Array, result: AvailableImage) {
    if (this.down) return Promise.reject(new Error('14 UNAVAILABLE'));
    this.completed.set(this.id(token), result);
    return Promise.resolve(true);
  }
  fail(token: Uint8Array, err: ApplicationFailure) {
    if (this.down) return Promise.reject(new Error('14 UNAVAILABLE'));
    this.failed.set(this.id(token), err);
    return Promise.resolve(true);
  }
  heartbeat(token: Uint8Array) {
    this.heartbeats.push(this.id(token));
    return Promise.resolve(this.cancelled.has(this.id(token)) ? ('cancelled' as const) : ('ok' as const));
  }
  reportCancellation(token: Uint8Array) {
    this.cancellationsReported.push(this.id(token));
    return Promise.resolve();
  }
  cancelRequested(ref: WaitRef) {
    this.cancelReads += 1;
    return Promise.resolve(this.cancelled.has(ref.workflowId));
  }
}

function setup(opts: Partial<typeof DEFAULT_WATCHER_OPTIONS> = {}) {
  const ec2 = new EC2Client({ region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  const mock = mockClient(ec2);
  const states = new Map<string, Image>();
  const asked: { ids: string[] }[] = [];
  let refuse: Error | undefined;
  mock.on(DescribeImagesCommand).callsFake((input: { ImageIds?: string[] }) => {
    if (refuse) throw refuse;
    const ids = input.ImageIds ?? [];
    asked.push({ ids });
    return { Images: ids.flatMap((id) => (states.has(id) ? [states.get(id)] : [])) };
  });
  const aws: AwsClients = {
    ec2: () => Promise.resolve(ec2),
    kms: () => Promise.reject(new Error('no KMS here')),
    destroy: () => ec2.destroy(),
  };
  let now = T0;
  const sleeps: number[] = [];
  const completion = new Completions();
  const watcher = new ImageWaitWatcher(
    {
      aws,
      completion,
      now: () => now,
      // The test drives rounds itself (pollRound); pacing between calls moves the clock, no sleep.
      sleep: (ms) => {
        sleeps.push(ms);
        now += ms;
        return Promise.resolve();
      },
      autoPoll: false,
    },
    { ...DEFAULT_WATCHER_OPTIONS, ...opts },
  );
  const wait = (
    n: number,
    target: AwsTarget = EU,
    extra: Partial<ImageWaitRequest> = {},
  ): ImageWaitRequest => ({
    token: Buffer.from(`wf-${n}`),
    ref: { workflowId: `wf-${n}`, runId: 'run', activityId: '7' },
    target,
    imageId: ami(n),
    deadline: T0 + 3600_000,
    ...extra,
  });
  const set = (n: number, state: string, extra: Partial<Image> = {}) =>
    states.set(ami(n), { ImageId: ami(n), State: state as Image['State'], ...extra });
  return {
    watcher,
    completion,
    asked,
    sleeps,
    wait,
    set,
    advance: (ms: number) => (now += ms),
    refuseWith: (err: Error | undefined) => (refuse = err),
  };
}

void describe('image wait watcher', () => {
  void it('GIVEN a task token that is a view into a larger buffer (as the SDK decodes it) WHEN the wait is held and completed THEN the watcher keeps and answers a copy of the token alone, not the buffer', async () => {
    const { watcher, completion, wait, set } = setup();
    // The SDK's activity task: the token is a protobufjs subarray of the whole task's bytes.
    const task = new Uint8Array(4096);
    const token = task.subarray(100, 100 + 'wf-1'.length);
    token.set(Buffer.from('wf-1'));
    const answered: Uint8Array[] = [];
    const complete = completion.complete.bind(completion);
    completion.complete = (t, result) => {
      answered.push(t);
      return complete(t, result);
    };
    set(1, 'available');
    watcher.add(wait(1, EU, { token }));
    await watcher.pollRound();
    assert.equal(completion.completed.size, 1);
    const [held] = answered;
    assert.ok(held);
    assert.equal(Buffer.from(held).toString(), 'wf-1');
    assert.equal(held.buffer.byteLength, held.byteLength, 'the token holds only its own bytes');
  });

  void it('GIVEN 250 waits in one region and 1 in another WHEN a round polls THEN 3 DescribeImages calls answer the first region (100 ids each) and 1 the other, and available images are completed with their snapshots', async () => {
    const { watcher, completion, asked, sleeps, wait, set } = setup();
    for (let n = 1; n <= 250; n++)
      set(n, n % 2 ? 'available' : 'pending', {
        BlockDeviceMappings: [{ Ebs: { SnapshotId: `snap-${n}` } }],
      });
    set(999, 'available');
    for (let n = 1; n <= 250; n++) watcher.add(wait(n));
    watcher.add(wait(999, US));
    await watcher.pollRound();
    const us = asked.filter((a) => a.ids.includes(ami(999)));
    assert.deepEqual(
      us.map((a) => a.ids),
      [[ami(999)]],
      'the other region is asked on its own',
    );
    assert.deepEqual(
      asked.filter((a) => !a.ids.includes(ami(999))).map((a) => a.ids.length),
      [100, 100, 50],
    );
    // The budget (10 calls/s per account-region): the region's calls are spaced 100 ms apart.
    assert.equal(sleeps.length, 2);
    for (const ms of sleeps) assert.ok(ms > 0 && ms <= 100, `paced ${ms} ms`);
    assert.equal(completion.completed.size, 126);
    assert.deepEqual(completion.completed.get('wf-1')?.snapshotIds, ['snap-1']);
    assert.equal(watcher.size(), 125, 'the pending ones are still held');
  });

  void it('GIVEN a wait WHEN its image ends failed THEN the token fails non-retryable with AWS reason, and no more polls ask about it', async () => {
    const { watcher, completion, asked, wait, set } = setup();
    set(1, 'failed', { StateReason: { Code: 'Client.InternalError', Message: 'snapshot failed' } });
    watcher.add(wait(1));
    await watcher.pollRound();
    const err = completion.failed.get('wf-1');
    assert.equal(err?.type, 'ImageFailed');
    assert.equal(err?.nonRetryable, true);
    assert.match(err?.message ?? '', /ended in state 'failed': Client.InternalError: snapshot failed/);
    const calls = asked.length;
    await watcher.pollRound();
    assert.equal(asked.length, calls);
    assert.equal(watcher.size(), 0);
  });

  void it('GIVEN a pending image WHEN the deadline passes THEN the wait fails WaitTimedOut, non-retryable, however many attempts it took', async () => {
    const { watcher, completion, wait, set, advance } = setup();
    set(1, 'pending');
    watcher.add(wait(1, EU, { deadline: T0 + 60_000 }));
    await watcher.pollRound();
    assert.equal(completion.failed.size, 0);
    advance(60_000);
    await watcher.pollRound();
    assert.equal(completion.failed.get('wf-1')?.type, 'WaitTimedOut');
    assert.equal(completion.failed.get('wf-1')?.nonRetryable, true);
  });

  void it('GIVEN an image never visible WHEN the consistency window passes THEN ImageNotFound; within it the wait goes on', async () => {
    const { watcher, completion, wait, advance } = setup({ consistencyWindowMs: 30_000 });
    watcher.add(wait(1));
    await watcher.pollRound();
    assert.equal(completion.failed.size, 0);
    advance(30_001);
    await watcher.pollRound();
    assert.equal(completion.failed.get('wf-1')?.type, 'ImageNotFound');
  });

  void it('GIVEN a run cancelled while its wait is held WHEN the next round runs THEN the wait is reported cancelled and its image is asked about no more', async () => {
    const { watcher, completion, asked, wait, set } = setup();
    set(1, 'pending');
    set(2, 'pending');
    watcher.add(wait(1));
    watcher.add(wait(2));
    await watcher.pollRound();
    completion.cancelled.add('wf-1');
    await watcher.pollRound();
    assert.deepEqual(completion.cancellationsReported, ['wf-1']);
    asked.length = 0;
    await watcher.pollRound();
    assert.deepEqual(
      asked.map((a) => a.ids),
      [[ami(2)]],
    );
    assert.equal(completion.heartbeats.length, 0, 'cancellation was read, not heartbeated (no Actions)');
  });

  void it('GIVEN a worker shutting down with waits held WHEN it hands off THEN every token fails retryable with a 1 s next retry, polls stop, and new waits are refused retryably', async () => {
    const { watcher, completion, asked, wait, set } = setup();
    for (let n = 1; n <= 3; n++) {
      set(n, 'pending');
      watcher.add(wait(n));
    }
    assert.equal(await watcher.handOff(), 3);
    for (let n = 1; n <= 3; n++) {
      const err = completion.failed.get(`wf-${n}`);
      assert.equal(err?.nonRetryable, false);
      assert.equal(err?.type, 'WorkerShuttingDown');
      assert.equal(err?.nextRetryDelay, 1_000);
    }
    asked.length = 0;
    await watcher.pollRound();
    assert.equal(asked.length, 0);
    assert.throws(
      () => watcher.add(wait(4)),
      (e: unknown) => e instanceof ApplicationFailure && !e.nonRetryable && e.type === 'WorkerShuttingDown',
    );
  });

  void it('GIVEN a hand-off under way (SIGTERM) WHEN shutdown asks for it again THEN the second call resolves only once every wait was failed over, with the same count', async () => {
    const { watcher, completion, wait } = setup();
    for (let n = 1; n <= 3; n++) watcher.add(wait(n));
    const slow: (() => void)[] = [];
    const fail = completion.fail.bind(completion);
    completion.fail = (token, err) =>
      new Promise<boolean>((resolve) => slow.push(() => resolve(fail(token, err))));
    const first = watcher.handOff();
    let secondDone = false;
    const second = watcher.handOff().then((n) => {
      secondDone = true;
      return n;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(secondDone, false, 'the second call waits for the failures in flight');
    for (const go of slow) go();
    assert.equal(await second, 3);
    assert.equal(await first, 3);
    assert.equal(completion.failed.size, 3);
  });

  void it('GIVEN throttling WHEN a round fails THEN the waits stay held and the next round answers; a permanent refusal fails them', async () => {
    const { watcher, completion, wait, set, refuseWith } = setup();
    set(1, 'available');
    watcher.add(wait(1));
    refuseWith(awsError('RequestLimitExceeded', 503));
    await watcher.pollRound();
    assert.equal(watcher.size(), 1);
    refuseWith(undefined);
    await watcher.pollRound();
    assert.equal(completion.completed.size, 1);

    set(2, 'pending');
    watcher.add(wait(2));
    refuseWith(awsError('UnauthorizedOperation', 403));
    await watcher.pollRound();
    assert.equal(completion.failed.get('wf-2')?.nonRetryable, true);
  });

  void it('GIVEN the Temporal server unreachable WHEN an image becomes available THEN the wait is kept and completed at the first round after the server is back', async () => {
    const { watcher, completion, wait, set } = setup();
    set(1, 'available');
    watcher.add(wait(1));
    completion.down = true;
    await watcher.pollRound();
    assert.equal(watcher.size(), 1);
    completion.down = false;
    await watcher.pollRound();
    assert.equal(completion.completed.size, 1);
  });

  void it('GIVEN waits the run gave no heartbeat timeout WHEN rounds pass THEN no heartbeat is sent before progressEveryMs; a wait scheduled with a heartbeat timeout is heartbeated within it', async () => {
    const { watcher, completion, wait, set, advance } = setup({ progressEveryMs: 1_800_000 });
    set(1, 'pending');
    set(2, 'pending');
    watcher.add(wait(1));
    watcher.add(wait(2, EU, { heartbeatTimeoutMs: 360_000 }));
    for (let i = 0; i < 30; i++) {
      advance(10_000);
      await watcher.pollRound();
    }
    assert.equal(completion.heartbeats.filter((t) => t === 'wf-1').length, 0);
    assert.equal(
      completion.heartbeats.filter((t) => t === 'wf-2').length,
      1,
      '300 s: one heartbeat at 288 s',
    );
  });

  void it('GIVEN 1,000 waits and a budget of 10 cancellation reads a second WHEN a 10 s round runs THEN 100 runs are read, round-robin', async () => {
    const { watcher, completion, wait, set } = setup({ cancelChecksPerSecond: 10 });
    for (let n = 1; n <= 1000; n++) {
      set(n, 'pending');
      watcher.add(wait(n));
    }
    await watcher.pollRound();
    assert.equal(completion.cancelReads, 100);
  });
});

/** A running watcher (its own lanes, autoPoll) on virtual time; every DescribeImages call is stamped. */
function runningWatcher(waits: number, opts: Partial<typeof DEFAULT_WATCHER_OPTIONS>) {
  const timers = new VirtualTimers(T0);
  const { aws, calls, askedAt } = stampedImagesEc2(timers);
  const watcher = watcherHolding(waits, { aws, completion: new Completions(), timers }, opts);
  return { timers, watcher, calls, askedAt, addWait: (n: number) => addWait(watcher, n) };
}

void describe('image wait watcher: call budget', () => {
  void it('GIVEN 3,000 waits in one region and a budget of 15 calls/s WHEN the watcher runs for a minute THEN no two calls are closer than 1/15 s, and every image is asked about every 2 s (oldest first, none starved)', async () => {
    const { timers, watcher, calls, askedAt } = runningWatcher(3_000, {
      callsPerSecond: 15,
      pollIntervalMs: 1_000,
    });
    await timers.runUntil(T0 + 60_000);

    // 30 calls of 100 ids a cycle at 15/s: a cycle every 2 s; the interval (1 s) is not what binds.
    assert.ok(calls.length >= 15 * 58, `${calls.length} calls in a minute`);
    for (let i = 1; i < calls.length; i++)
      assert.ok(
        (calls[i] ?? 0) - (calls[i - 1] ?? 0) >= 1000 / 15 - 1e-6,
        `calls ${i - 1} and ${i} ${(calls[i] ?? 0) - (calls[i - 1] ?? 0)} ms apart`,
      );
    assert.equal(askedAt.size, 3_000, 'every image was asked about');
    for (const [id, at] of askedAt) {
      assert.ok(at.length >= 28, `${id} asked ${at.length} times`);
      for (let i = 1; i < at.length; i++)
        assert.ok(
          (at[i] ?? 0) - (at[i - 1] ?? 0) <= 2_001,
          `${id} waited ${(at[i] ?? 0) - (at[i - 1] ?? 0)} ms`,
        );
    }
    const stopped = watcher.handOff();
    await timers.runUntil(T0 + 120_000);
    assert.equal(await stopped, 3_000);
  });

  void it('GIVEN 500 waits and a 10 s poll interval WHEN the watcher runs THEN it asks about each image at once, after 1, 2, 4 and 8 s, then every 10 s and no more: 5 calls a poll, 45 in a minute, not 15/s', async () => {
    const { timers, watcher, calls, askedAt } = runningWatcher(500, { callsPerSecond: 15 });
    await timers.runUntil(T0 + 60_000);

    // Polls at 0, 1, 3, 7, 15, 25, 35, 45 and 55 s, each of 5 calls (100 ids each).
    assert.equal(calls.length, 45, `${calls.length} calls in a minute`);
    const expected = [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000, 10_000];
    assert.deepEqual(
      expected.map((_, k) => imagePollIntervalMs(DEFAULT_WATCHER_OPTIONS, k + 1)),
      expected,
    );
    for (const [id, at] of askedAt) {
      assert.equal(at.length, 9, `${id} asked ${at.length} times`);
      for (let i = 1; i < at.length; i++) {
        const gap = (at[i] ?? 0) - (at[i - 1] ?? 0);
        const want = expected[i - 1] ?? 10_000;
        assert.ok(gap >= want - 1e-6 && gap <= want + 500, `${id} asked again after ${gap} ms, not ${want}`);
      }
    }
    const stopped = watcher.handOff();
    await timers.runUntil(T0 + 120_000);
    await stopped;
  });

  void it('GIVEN 80 waits polled every 10 s under a budget with little to spare WHEN 10 new waits arrive THEN their early polls take only spare calls: no older wait goes more than an interval plus one call unasked', async () => {
    // 1 call/s of 10 ids: 100 ids per 10 s, 90 of them needed at the interval once the new ones came.
    const { timers, watcher, askedAt, addWait } = runningWatcher(80, {
      callsPerSecond: 1,
      maxIdsPerCall: 10,
    });
    await timers.runUntil(T0 + 120_000); // long past the older waits' early polls

    for (let n = 81; n <= 90; n++) addWait(n);
    await timers.runUntil(T0 + 180_000);

    for (let n = 1; n <= 80; n++) {
      const at = (askedAt.get(ami(n)) ?? []).filter((t) => t >= T0 + 110_000);
      for (let i = 1; i < at.length; i++) {
        const gap = (at[i] ?? 0) - (at[i - 1] ?? 0);
        assert.ok(gap <= 11_000, `wait ${n} went ${gap} ms unasked after the new waits came`);
      }
    }
    assert.ok((askedAt.get(ami(90))?.length ?? 0) >= 6, 'the new waits are polled too');
    const stopped = watcher.handOff();
    await timers.runUntil(T0 + 240_000);
    await stopped;
  });
});

void describe('image wait watcher: first polls', () => {
  void it('GIVEN a new wait WHEN the watcher takes it THEN DescribeImages asks about it at once, with no timer first', async () => {
    const { timers, watcher, askedAt } = runningWatcher(1, {});
    await timers.runUntil(T0);

    assert.deepEqual(askedAt.get(ami(1)), [T0]);
    const stopped = watcher.handOff();
    await timers.runUntil(T0 + 60_000);
    await stopped;
  });

  void it("GIVEN a wait polled every 10 s (its lane asleep until the next poll) WHEN a second wait arrives in the same region THEN the second is asked about at once, not at the first one's next poll", async () => {
    const { timers, watcher, askedAt, addWait } = runningWatcher(1, {});
    await timers.runUntil(T0 + 21_000); // wait 1 polled at 0, 1, 3, 7 and 15 s; next at 25 s

    addWait(2);
    await timers.runUntil(T0 + 21_000);

    assert.deepEqual(askedAt.get(ami(2)), [T0 + 21_000]);
    assert.deepEqual(
      askedAt.get(ami(1))?.map((t) => t - T0),
      [0, 1_000, 3_000, 7_000, 15_000],
    );
    const stopped = watcher.handOff();
    await timers.runUntil(T0 + 60_000);
    await stopped;
  });
});

void describe('wait lease', () => {
  void it('GIVEN a count of waits THEN the lease is solo below 6 and shared from 6, back to solo at 2', () => {
    assert.equal(tierFor(1, 'solo'), 'solo');
    assert.equal(tierFor(6, 'solo'), 'shared');
    assert.equal(tierFor(4, 'shared'), 'shared');
    assert.equal(tierFor(2, 'shared'), 'solo');
  });

  void it('GIVEN a watcher WHEN its first wait arrives THEN one lease starts listing it; the held lease heartbeats the list and turns shared at 6 waits', async () => {
    const { watcher, wait, set } = setup();
    const started: { id: string; input: WaitLeaseInput }[] = [];
    const keeper = new WaitLeaseKeeper(
      watcher,
      (id, input) => {
        started.push({ id, input });
        return Promise.resolve();
      },
      { leaseQueue: 'q-lease-w1', workerId: 'w1' },
    );
    set(1, 'pending');
    watcher.add(wait(1));
    watcher.add(wait(2));
    assert.equal(started.length, 1);
    assert.deepEqual(
      started[0]?.input.refs.map((r) => r.workflowId),
      ['wf-1'],
    );
    assert.equal(started[0]?.input.tier, 'solo');

    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 360_000 });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const turn: Promise<LeaseTurn> = env.run(keeper.activities().holdWaitLease, { tier: 'solo' as const });
    for (let n = 3; n <= 6; n++) watcher.add(wait(n));
    const out = await turn;
    assert.equal(out.next, 'shared');
    assert.equal(out.refs.length, 6);
    assert.deepEqual(beats[0], {
      refs: [1, 2].map((n) => ({ workflowId: `wf-${n}`, runId: 'run', activityId: '7' })),
    });

    // The next turn (shared) lists all six from its first heartbeat, with no change in between:
    // a crash right after a tier switch must still release every wait.
    const shared = new MockActivityEnvironment({ heartbeatTimeoutMs: 60_000 });
    const sharedBeats: { refs: WaitRef[] }[] = [];
    shared.on('heartbeat', (d: { refs: WaitRef[] }) => sharedBeats.push(d));
    const next = shared.run(keeper.activities().holdWaitLease, { tier: 'shared' as const });
    await new Promise((r) => setImmediate(r));
    await watcher.handOff();
    assert.deepEqual(await next, { refs: [] });
    assert.equal(sharedBeats[0]?.refs.length, 6);
  });

  void it('GIVEN a lost lease listing three waits WHEN releaseWaits runs THEN each is failed retryable by id (one already gone is counted so)', async () => {
    const released: WaitRef[] = [];
    const { releaseWaits } = releaseActivities((ref, err) => {
      assert.equal(err.nonRetryable, false);
      released.push(ref);
      return Promise.resolve(ref.workflowId !== 'wf-3');
    });
    const refs = [1, 2, 3].map((n) => ({ workflowId: `wf-${n}`, runId: 'run', activityId: '7' }));
    const out = await new MockActivityEnvironment().run(releaseWaits, { refs, lease: 'lease-1' });
    assert.deepEqual(out, { released: 2, gone: 1, swept: 0 });
    assert.deepEqual(released, refs);
  });
});
