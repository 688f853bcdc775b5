/**
 * Child shares hold through the image's share ledger too (issue 10): copyImage's (and goldenImage's)
 * child shareImage runs hold their permissions in the same ledger as top-level shares, so a
 * permission a child added is not taken by a later share for one that was there before amiflow, and
 * the parent's withdrawal of its child share never removes what a top-level share still holds. On the
 * time-skipping server with stubs whose image keeps the launch permissions added and removed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Activities } from '../../activities';
import type { CopyImageResult, ShareImageResult } from '../../workflows/contracts';
import { timeSkippingEnv } from '../support/temporal';
import {
  ACCOUNT_B,
  copyInput,
  outcome,
  liveImage,
  shareInput,
  start,
  stepIs,
  unshare,
} from './share-copy-stubs';
import { ActivityLog, deferred, recorded, succeeded, withWorker, workflowEnv } from './harness';

const env = workflowEnv(timeSkippingEnv);

const B = [{ userId: ACCOUNT_B }];
const TO_B = { targets: { accountIds: [ACCOUNT_B] }, allowCopy: true };
/** One destination, in account B: copyImage shares the source with B through a child shareImage. */
const COPY_TO_B = copyInput({ destinations: [{ region: 'eu-north-1', accountId: ACCOUNT_B }] });

/** Runs `fn` on a fresh worker and task queue serving `activities`, recorded in `log`. */
const withLedgerWorker = <T>(log: ActivityLog, activities: Activities, fn: (tq: string) => Promise<T>) =>
  withWorker(env, recorded(log, activities), fn, 'ledger-child');

void describe('share ledger: child shares of copyImage hold through it too', () => {
  void it('GIVEN an open-ended share to B WHEN a copy to B shares the image (child) and withdraws it THEN B keeps access, and unsharing the open one removes it', async () => {
    const log = new ActivityLog();
    const { activities, launch } = liveImage(env);
    const o = await withLedgerWorker(log, activities, async (tq) => {
      const open = await start(env, 'shareImage', tq, shareInput(TO_B));
      const openDone = succeeded(await outcome<ShareImageResult>(open));
      const copied = succeeded(await outcome<CopyImageResult>(await start(env, 'copyImage', tq, COPY_TO_B)));
      const accessAfterCopy = [...launch];
      const removesAfterCopy = log.count('removeLaunchPermissions');
      const un = succeeded(await unshare(env, tq, { shareWorkflowId: open.workflowId }));
      return { openDone, copied, accessAfterCopy, removesAfterCopy, un };
    });
    // THEN the copy's share was withdrawn, but B stayed: the open share holds it
    assert.equal(o.copied.share?.withdrawn, true);
    assert.deepEqual(o.accessAfterCopy, B);
    assert.equal(o.removesAfterCopy, 0);
    // THEN the open share's withdrawal, the last hold, removed B once
    assert.deepEqual(o.un.withdrawn.launchPermissions, B);
    assert.equal(log.count('removeLaunchPermissions'), 1);
    assert.deepEqual(launch, []);
  });

  void it('GIVEN a copy to B mid-way (its child share holds B) WHEN a share to B is made and unshared THEN B stays for the copy, and the copy withdrawing its share removes it', async () => {
    const log = new ActivityLog();
    const gate = deferred();
    const { activities, launch } = liveImage(env, gate.promise);
    const o = await withLedgerWorker(log, activities, async (tq) => {
      const copy = await start(env, 'copyImage', tq, COPY_TO_B);
      await stepIs(copy, 'share with destination accounts', ['done']);
      const share = await start(env, 'shareImage', tq, shareInput(TO_B));
      const shared = succeeded(await outcome<ShareImageResult>(share));
      const un = succeeded(await unshare(env, tq, { shareWorkflowId: share.workflowId }));
      const accessAfterUnshare = [...launch];
      gate.resolve();
      const copied = succeeded(await outcome<CopyImageResult>(copy));
      return { shared, un, accessAfterUnshare, copied };
    });
    // THEN the share counted B as amiflow's (held by the copy), not as there before amiflow
    assert.deepEqual(o.shared.added.launchPermissions, B);
    assert.deepEqual(o.shared.alreadyPresent.launchPermissions, []);
    // THEN unsharing it kept B, naming the copy's child share as the holder
    assert.deepEqual(o.un.withdrawn.launchPermissions, []);
    assert.match(o.un.kept?.[0]?.because ?? '', /still held by live share\(s\) .*copyImage.*\/share\//);
    assert.deepEqual(o.accessAfterUnshare, B);
    // THEN the copy's withdrawal, the last hold, removed B once
    assert.equal(o.copied.share?.withdrawn, true);
    assert.equal(log.count('removeLaunchPermissions'), 1);
    assert.deepEqual(launch, []);
  });
});
