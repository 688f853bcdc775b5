/**
 * The instance waits' merged reader (activities/instance-reads.ts): many waits in one account-region
 * cost a few DescribeInstances/DescribeInstanceStatus calls per poll interval, not one per wait, and
 * each wait keeps its own answer, errors and cancellation. Real activities and reader, a fake EC2 that
 * records every call, on virtual time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CancelledFailure } from '@temporalio/common';
import type { ActivityDeps } from '../../activities';
import { createActivities } from '../../activities';
import type { InstanceReads, InstanceReadsOptions } from '../../activities/instance-reads';
import { createInstanceReads } from '../../activities/instance-reads';
import type { InstanceStateReached } from '../../activities/instances';
import { DEFAULT_POLL_POLICY } from '../../activities/waiting';
import { FakeInstanceEc2, awsError } from '../../devkit/fake-instance-ec2';
import { VirtualTimers } from '../../devkit/virtual-timers';
import type { AwsTarget } from '../../workflows/contracts';
import { FailureType } from '../../workflows/contracts';
import { T0 } from './fixtures';
import { activityEnv } from './harness';

const MINUTE = 60_000;
const EU: AwsTarget = { region: 'eu-west-1', accountId: '111122223333' };
const US: AwsTarget = { region: 'us-east-1', accountId: '111122223333' };
const EU_OTHER_ACCOUNT: AwsTarget = { region: 'eu-west-1', accountId: '444455556666' };
const idOf = (n: number) => `i-${n.toString(16).padStart(17, '0')}`;

/** A repeatable sequence in [0, 1), so jitter differs between waits but not between runs. */
function seeded(seed = 42): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

function world(opts: { reads?: Partial<InstanceReadsOptions>; namesUnknownIds?: boolean } = {}) {
  const timers = new VirtualTimers(T0);
  const random = seeded();
  const ec2 = new FakeInstanceEc2({
    now: timers.now,
    sleep: timers.sleep,
    // EC2 answers in ~100 ms, a little more for more ids.
    latencyMs: (ids) => 100 + ids,
    // Stops take 20-90 s, spread over the fleet.
    transitionMs: { stop: (id) => 20_000 + (Number.parseInt(id.slice(2), 16) % 70) * 1_000 },
    maxDescribeIds: 200,
    ...(opts.namesUnknownIds !== undefined ? { namesUnknownIds: opts.namesUnknownIds } : {}),
  });
  const reads: InstanceReads = createInstanceReads(
    { aws: ec2.clients(), now: timers.now, sleep: timers.sleep, random },
    opts.reads,
  );
  const deps: ActivityDeps = {
    aws: ec2.clients(),
    clock: { now: timers.now, sleep: timers.sleep },
    random,
    policy: DEFAULT_POLL_POLICY,
    instanceReads: reads,
  };
  return { timers, ec2, reads, deps, activities: createActivities(deps) };
}

/** Runs the promises on virtual time until all have settled (or the clock reaches `until`). */
async function settleAll<T>(
  timers: VirtualTimers,
  promises: Promise<T>[],
  until = T0 + 30 * MINUTE,
): Promise<PromiseSettledResult<T>[]> {
  let left = promises.length;
  const all = Promise.allSettled(promises.map((p) => p.finally(() => (left -= 1))));
  await timers.runUntil(until, () => left === 0);
  assert.equal(left, 0, `${left} still pending at the end of virtual time`);
  return all;
}

function values<T>(results: PromiseSettledResult<T>[]): T[] {
  return results.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
}

void describe('instance waits through the merged reader', () => {
  void it('GIVEN 1,000 concurrent stop waits in one account-region WHEN each instance stops in 20-90 s THEN each completes once its instance is stopped, at 2 DescribeInstances calls a second at most (not ~200)', async () => {
    const w = world();
    const ids = Array.from({ length: Number(process.env.N ?? 1_000) }, (_, n) => idOf(n));
    for (const id of ids) w.ec2.add(id, 'running');

    const results = values(
      await settleAll(
        w.timers,
        ids.map((instanceId) =>
          activityEnv({ heartbeatTimeoutMs: MINUTE }).run(w.activities.stopInstance, {
            target: EU,
            instanceId,
            deadline: T0 + 15 * MINUTE,
          }),
        ),
      ),
    );

    const lags = results.map((r: InstanceStateReached) => {
      assert.equal(r.state, 'stopped');
      assert.equal(w.ec2.state(r.instanceId), 'stopped');
      const settled = w.ec2.settledAt(r.instanceId) ?? Infinity;
      assert.ok(r.at >= settled, `${r.instanceId} reported stopped at ${r.at} before it was (${settled})`);
      return r.at - settled;
    });
    // The schedule's 5 s ceiling with jitter, plus at most a second of the lane's budget.
    assert.ok(Math.max(...lags) <= 7_000, `worst lag ${Math.max(...lags)} ms`);
    assert.equal(w.ec2.count('StopInstances'), 1_000, 'each wait still sends its own stop');
    const describes = w.ec2.count('DescribeInstances');
    const seconds = (Math.max(...results.map((r) => r.at)) - T0) / 1000;
    assert.ok(describes <= 2 * seconds + 5, `${describes} calls in ${seconds} s`);
    // Any 5 s (the instance waits' longest poll interval): 10 calls of the budget, 5 of a burst.
    assert.ok(
      w.ec2.peak(['DescribeInstances'], 5_000) <= 15,
      `peak ${w.ec2.peak(['DescribeInstances'], 5_000)}`,
    );
    assert.ok(
      w.ec2.calls.every((c) => c.ids.length <= 200),
      'no call over the reader’s 200 ids',
    );
    assert.equal(w.reads.stats().overdrafts, 0, 'the lane kept up within its budget');
  });

  void it('GIVEN a batch holding an id EC2 does not know (yet) WHEN read THEN the others get their state and only that one is absent, with AWS’s words', async () => {
    const w = world();
    w.ec2.add(idOf(1), 'running');
    w.ec2.add(idOf(2), 'stopped');
    w.ec2.add(idOf(3), 'running', { invisibleForMs: 10_000 });

    const [a, b, c] = values(
      await settleAll(w.timers, [
        w.reads.describe(EU, idOf(1)),
        w.reads.describe(EU, idOf(2)),
        w.reads.describe(EU, idOf(3)),
      ]),
    );

    assert.equal(a && 'found' in a ? a.found.State?.Name : a, 'running');
    assert.equal(b && 'found' in b ? b.found.State?.Name : b, 'stopped');
    assert.deepEqual(c, {
      absent: true,
      aws: `InvalidInstanceID.NotFound: The instance ID '${idOf(3)}' does not exist`,
    });
    // One merged call refused whole, then one for the two EC2 knows.
    assert.deepEqual(
      w.ec2.calls.map((call) => call.ids.length),
      [3, 2],
    );
  });

  void it('GIVEN a NotFound that names no id WHEN read THEN the batch is split in halves until the unknown one is alone', async () => {
    const w = world({ namesUnknownIds: false });
    for (let n = 0; n < 8; n++) if (n !== 5) w.ec2.add(idOf(n), 'stopping');

    const reads = values(
      await settleAll(
        w.timers,
        Array.from({ length: 8 }, (_, n) => w.reads.describe(EU, idOf(n))),
      ),
    );

    reads.forEach((r, n) => assert.equal('absent' in r, n === 5, `id ${n}`));
    assert.ok(w.ec2.count('DescribeInstances') <= 1 + 2 * 3, `${w.ec2.count('DescribeInstances')} calls`);
  });

  void it('GIVEN the merged call is throttled twice WHEN read THEN it is retried with backoff and every waiter gets its answer', async () => {
    const w = world();
    for (let n = 0; n < 50; n++) w.ec2.add(idOf(n), 'running');
    w.ec2.failNext(
      awsError('RequestLimitExceeded', 'Request limit exceeded.'),
      awsError('InternalError', 'An internal error has occurred', 500),
    );

    const reads = values(
      await settleAll(
        w.timers,
        Array.from({ length: 50 }, (_, n) => w.reads.describe(EU, idOf(n))),
      ),
    );

    assert.ok(reads.every((r) => 'found' in r && r.found.State?.Name === 'running'));
    assert.equal(w.reads.stats().retries, 2);
    // Made in one turn, the 50 reads are one call: tried three times.
    assert.deepEqual(
      w.ec2.calls.map((c) => c.ids.length),
      [50, 50, 50],
    );
  });

  void it('GIVEN the merged call is throttled on every try WHEN read THEN each waiter gets the (retryable) throttling error, after the lane’s tries', async () => {
    const w = world({ reads: { retry: { attempts: 3, firstDelayMs: 500, maxDelayMs: 8_000 } } });
    w.ec2.add(idOf(1), 'running');
    w.ec2.add(idOf(2), 'running');
    w.ec2.failNext(
      ...Array.from({ length: 3 }, () => awsError('RequestLimitExceeded', 'Request limit exceeded.')),
    );

    const results = await settleAll(w.timers, [w.reads.describe(EU, idOf(1)), w.reads.describe(EU, idOf(2))]);

    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal(
        (r as PromiseRejectedResult).reason instanceof Error && (r.reason as Error).name,
        'RequestLimitExceeded',
      );
    }
    assert.equal(w.ec2.count('DescribeInstances'), 3);
  });

  void it('GIVEN a stop wait whose read EC2 refuses for good (UnauthorizedOperation) WHEN waiting THEN it fails non-retryable naming the instance, after one call', async () => {
    const w = world();
    w.ec2.add(idOf(1), 'running');
    w.ec2.failNext(
      awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403),
    );

    const [r] = await settleAll(w.timers, [
      activityEnv({ heartbeatTimeoutMs: MINUTE }).run(w.activities.stopInstance, {
        target: EU,
        instanceId: idOf(1),
        deadline: T0 + 15 * MINUTE,
      }),
    ]);

    assert.equal(r?.status, 'rejected');
    const failure = (r as PromiseRejectedResult).reason as {
      type?: string;
      nonRetryable?: boolean;
      message: string;
    };
    assert.equal(failure.type, FailureType.AwsUnauthorized);
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, new RegExp(`reading instance ${idOf(1)}`));
    assert.equal(w.ec2.count('DescribeInstances'), 1);
  });

  void it('GIVEN reads for two regions and two accounts WHEN made together THEN each account-region is its own lane and call, holding only its ids', async () => {
    const w = world();
    for (let n = 0; n < 6; n++) w.ec2.add(idOf(n), 'running');
    const targets = [EU, US, EU_OTHER_ACCOUNT, EU, US, EU_OTHER_ACCOUNT];

    await settleAll(
      w.timers,
      targets.map((t, n) => w.reads.describe(t, idOf(n))),
    );

    const byLane = new Map<string, string[]>();
    for (const c of w.ec2.calls) byLane.set(c.target, [...(byLane.get(c.target) ?? []), ...c.ids]);
    assert.deepEqual(Object.fromEntries(byLane), {
      '111122223333/eu-west-1': [idOf(0), idOf(3)],
      '111122223333/us-east-1': [idOf(1), idOf(4)],
      '444455556666/eu-west-1': [idOf(2), idOf(5)],
    });
    assert.equal(w.ec2.calls.length, 3);
  });

  void it('GIVEN more reads than the budget carries WHEN they wait THEN past maxQueueMs the lane calls back to back, over its budget, rather than let heartbeats lapse', async () => {
    const w = world({ reads: { burst: 1, callsPerSecond: 1, maxIdsPerCall: { instances: 2, status: 2 } } });
    for (let n = 0; n < 20; n++) w.ec2.add(idOf(n), 'running');
    const answeredAt: number[] = [];

    await settleAll(
      w.timers,
      Array.from({ length: 20 }, (_, n) =>
        w.reads.describe(EU, idOf(n)).then(() => answeredAt.push(w.timers.now())),
      ),
    );

    // 10 calls of 2 ids: at 1 a second the last would answer after 9 s. Five went on budget (0-4 s);
    // at 5 s the other five go back to back, ~102 ms each.
    assert.ok(
      Math.max(...answeredAt) <= T0 + 5_000 + 5 * 110,
      `last answered at +${Math.max(...answeredAt) - T0} ms`,
    );
    assert.ok(w.reads.stats().overdrafts > 0);
    assert.equal(w.ec2.count('DescribeInstances'), 10);
  });

  void it('GIVEN a waiter cancelled while its read waits for the lane WHEN the lane calls THEN it has left the batch, failing Cancelled, and the others are answered', async () => {
    // Budget spent: the lane holds the reads for its next call.
    const w = world({ reads: { burst: 1, callsPerSecond: 1 } });
    for (let n = 0; n < 4; n++) w.ec2.add(idOf(n), 'running');
    const first = w.reads.describe(EU, idOf(0));
    await w.timers.runUntil(T0 + 50);
    const leaving = new AbortController();
    const reads = [
      w.reads.describe(EU, idOf(1)),
      w.reads.describe(EU, idOf(2), leaving.signal),
      w.reads.describe(EU, idOf(3)),
    ];
    // The first call has answered; the others wait for the next second's budget.
    await w.timers.runUntil(T0 + 500);
    leaving.abort(new CancelledFailure('CANCELLED'));

    const results = await settleAll(w.timers, [first, ...reads]);

    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
    );
    assert.ok((results[2] as PromiseRejectedResult).reason instanceof CancelledFailure);
    assert.deepEqual(
      w.ec2.calls.map((c) => c.ids),
      [[idOf(0)], [idOf(1), idOf(3)]],
    );
    assert.equal(w.reads.stats().cancelled, 1);
  });

  void it('GIVEN a stop wait cancelled mid-wait among others WHEN the run cancels it THEN it fails Cancelled and later calls no longer ask about its instance', async () => {
    const w = world();
    for (let n = 0; n < 3; n++) w.ec2.add(idOf(n), 'running');
    const runs = [0, 1, 2].map(() => activityEnv({ heartbeatTimeoutMs: MINUTE }));
    const waits = runs.map((run, n) =>
      run.run(w.activities.stopInstance, { target: EU, instanceId: idOf(n), deadline: T0 + 15 * MINUTE }),
    );
    await w.timers.runUntil(T0 + 5_000);
    runs[1]?.env.cancel();
    const cancelledAt = w.timers.now();

    const results = await settleAll(w.timers, waits);

    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.ok((results[1] as PromiseRejectedResult).reason instanceof CancelledFailure);
    const later = w.ec2.calls.filter((c) => c.action === 'DescribeInstances' && c.at > cancelledAt);
    assert.ok(later.length > 0);
    assert.ok(
      later.every((c) => !c.ids.includes(idOf(1))),
      'the cancelled wait stopped polling',
    );
  });

  void it('GIVEN new instances waiting for their checks, one not visible yet WHEN waiting for them ready THEN the visible ones complete and the late one keeps waiting (not failed), on merged DescribeInstanceStatus calls of at most 100 ids', async () => {
    const w = world();
    const ids = Array.from({ length: 150 }, (_, n) => idOf(n));
    for (const id of ids)
      w.ec2.add(id, 'running', { checksAfterMs: 60_000, invisibleForMs: id === idOf(7) ? 20_000 : 0 });

    const ready = values(
      await settleAll(
        w.timers,
        ids.map((instanceId) =>
          activityEnv({ heartbeatTimeoutMs: MINUTE }).run(w.activities.waitForInstanceReady, {
            target: EU,
            instanceId,
            deadline: T0 + 15 * MINUTE,
          }),
        ),
      ),
    );

    assert.equal(ready.length, 150);
    for (const r of ready) assert.ok(r.at >= T0 + 60_000, `${r.instanceId} ready before its checks passed`);
    const statusCalls = w.ec2.calls.filter((c) => c.action === 'DescribeInstanceStatus');
    assert.ok(statusCalls.every((c) => c.ids.length <= 100));
    // Within the lane's budget (2 a second and a burst of 5), where 150 waits polling alone every
    // 2-11.5 s would have made over a thousand calls.
    const seconds = (Math.max(...ready.map((r) => r.at)) - T0) / 1000;
    assert.ok(
      statusCalls.length <= 2 * seconds + 5,
      `${statusCalls.length} DescribeInstanceStatus calls in ${seconds} s`,
    );
    const late = ready.find((r) => r.instanceId === idOf(7));
    assert.ok(late && late.at >= T0 + 60_000, 'the late instance waited, visible or not, and completed');
  });

  void it('GIVEN one stop wait alone WHEN the instance stops at once THEN it looks again right after StopInstances, without waiting a poll interval', async () => {
    const w = world();
    // EC2 answers in 10 ms and the stop lands 5 ms after StopInstances answered 'stopping'.
    const fast = new FakeInstanceEc2({
      now: w.timers.now,
      sleep: w.timers.sleep,
      latencyMs: () => 10,
      transitionMs: { stop: () => 5 },
    });
    fast.add(idOf(1), 'running');
    const deps: ActivityDeps = { ...w.deps, aws: fast.clients() };
    delete deps.instanceReads;

    const [r] = values(
      await settleAll(w.timers, [
        activityEnv({ heartbeatTimeoutMs: MINUTE }).run(createActivities(deps).stopInstance, {
          target: EU,
          instanceId: idOf(1),
          deadline: T0 + 15 * MINUTE,
        }),
      ]),
    );

    assert.equal(r?.at, T0 + 30, 'three calls of 10 ms, no poll interval');
    assert.deepEqual(
      fast.calls.map((c) => c.action),
      ['DescribeInstances', 'StopInstances', 'DescribeInstances'],
    );
  });
});
