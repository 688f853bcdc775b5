/**
 * A stopping worker's lease (activities/wait-lease.ts) ends only once its waits were handed off
 * (issue 13). It used to end the moment SIGTERM began the hand-off, so a hand-off failure the server
 * did not take left that wait on the stopped worker's attempt until its backstop (hours): the fleet
 * bench saw 14 of 20 waits stranded so. The watcher and Temporal are fakes; no sleeps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { WAIT_HAND_OFF_INCOMPLETE } from '../../contracts/wait-lease';
import type { WaitCompletion } from '../../activities/image-wait-watcher';
import type { LeaseHeartbeat } from '../../activities/wait-lease';
import { WaitLeaseKeeper, heartbeatRefs } from '../../activities/wait-lease';
import { T0, leaseTestWatcher } from './watcher-fixture';

/** A server that takes each hand-off failure when `go` is called, or refuses some every time. */
function setup(opts: { refuse?: Set<string> } = {}) {
  const pending: (() => void)[] = [];
  const landed: string[] = [];
  const refusals: string[] = [];
  const completion: WaitCompletion = {
    complete: () => Promise.resolve(true),
    fail: (token) => {
      const id = Buffer.from(token).toString();
      if (opts.refuse?.has(id)) {
        refusals.push(id);
        return Promise.reject(new Error('14 UNAVAILABLE: the connection closed'));
      }
      return new Promise<boolean>((resolve) =>
        pending.push(() => {
          landed.push(id);
          resolve(true);
        }),
      );
    },
    heartbeat: () => Promise.resolve('ok'),
    reportCancellation: () => Promise.resolve(),
    cancelRequested: () => Promise.resolve(false),
  };
  const watcher = leaseTestWatcher(completion);
  const keeper = new WaitLeaseKeeper(watcher, () => Promise.resolve(), {
    leaseQueue: 'q-lease-w1',
    workerId: 'w1',
  });
  for (let n = 1; n <= 3; n++)
    watcher.add({
      token: Buffer.from(`wf-${n}`),
      ref: { workflowId: `wf-${n}`, runId: 'run', activityId: '7' },
      target: { region: 'eu-west-1', accountId: '111122223333' },
      imageId: `ami-${n.toString(16).padStart(17, '0')}`,
      deadline: T0 + 3600_000,
    });
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 60_000 });
  const held = env.run(keeper.activities().holdWaitLease, { tier: 'solo' as const });
  const go = () => pending.splice(0).forEach((land) => land());
  return { watcher, keeper, held, landed, refusals, go };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

void describe('wait lease of a stopping worker', () => {
  void it('GIVEN a hold over 3 waits WHEN the worker hands them off THEN the hold ends only after every hand-off failure landed', async () => {
    const { watcher, keeper, held, landed, go } = setup();
    let ended = false;
    void held.then(() => (ended = true));
    await settle();

    const handedOff = watcher.handOff();
    await settle();
    await settle();
    assert.equal(ended, false, 'the lease is still held while the failures are in flight');

    go();
    assert.deepEqual(await held, { refs: [] });
    assert.deepEqual(landed.sort(), ['wf-1', 'wf-2', 'wf-3']);
    assert.equal(await handedOff, 3);
    keeper.stop();
  });

  void it('GIVEN a server that refuses the hand-off failure of one wait every time WHEN the worker hands off THEN the failure is tried again and the hold fails listing that wait, so the lease releases it from another worker', async () => {
    const { watcher, keeper, held, landed, refusals, go } = setup({ refuse: new Set(['wf-2']) });
    const outcome = held.then(
      () => assert.fail('the hold ended as if every wait were handed off'),
      (e: unknown) => e,
    );
    await settle();

    const handedOff = watcher.handOff();
    go();
    await settle();
    go();

    const err = await outcome;
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, WAIT_HAND_OFF_INCOMPLETE);
    assert.equal(err.nonRetryable, true);
    const left = err.details?.[0] as LeaseHeartbeat;
    assert.deepEqual(
      heartbeatRefs(left).map((r) => r.workflowId),
      ['wf-2'],
    );
    assert.equal(refusals.length, 3, 'the refused failure was sent 3 times');
    assert.deepEqual(landed.sort(), ['wf-1', 'wf-3']);
    assert.deepEqual(
      watcher.notHandedOff().map((r) => r.workflowId),
      ['wf-2'],
    );
    assert.equal(await handedOff, 3);
    keeper.stop();
  });
});
