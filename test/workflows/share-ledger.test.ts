/**
 * Overlapping shares of one image no longer undo each other (issue 10, item 2): each share holds
 * its launch and create-volume permissions through the image's share ledger, which removes one only
 * when no other live share holds it. On the time-skipping server with an image whose permissions
 * the stubs keep (so the ledger's own reads see what was added and removed).
 *
 * Child shares hold through the ledger too (issue 10): copyImage's (and goldenImage's) child
 * shareImage runs hold their permissions in the same ledger as top-level shares, so a permission a
 * child added is not taken by a later share for one that was there before amiflow, and the parent's
 * withdrawal of its child share never removes what a top-level share still holds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  CopyImageResult,
  LedgerOutcome,
  LedgerRequest,
  ShareImageResult,
} from '../../workflows/contracts';
import {
  ledgerEntriesQuery,
  ledgerOutcomeUpdate,
  ledgerRequestSignal,
  setShareExpiryUpdate,
  shareLedgerWorkflowId,
} from '../../workflows/contracts';
import type { shareLedger } from '../../workflows';
import { saveHistory } from '../support/histories';
import { uniqueTaskQueue } from '../support/temporal';
import {
  ACCOUNT_B,
  DAY,
  OWNER,
  REGION,
  SOURCE_IMAGE,
  copyInput,
  outcome,
  liveImage,
  shareInput,
  start,
  stepIs,
  unshare,
  shareCopyEnv,
} from './share-copy-stubs';
import {
  ActivityLog,
  blockingUntilCancelled,
  deferred,
  recorded,
  scheduledActivities,
  handedOver,
  startWorker,
  succeeded,
} from './harness';

const { env, withLoggedWorker: withLedgerWorker } = shareCopyEnv('ledger');

const TO_B = { targets: { accountIds: [ACCOUNT_B] }, allowCopy: false };
const B = [{ userId: ACCOUNT_B }];
const TO_B_WITH_COPY = { ...TO_B, allowCopy: true };
/** One destination, in account B: copyImage shares the source with B through a child shareImage. */
const COPY_TO_B = copyInput({ destinations: [{ region: 'eu-north-1', accountId: ACCOUNT_B }] });

/**
 * An image whose launch permissions the stubs keep (`liveImage`: image waits hold until `gate`
 * resolves, when one is given), and `run`: a scenario on a fresh worker serving its activities,
 * each call recorded in `log`.
 */
function ledgerImage(gate?: Promise<void>) {
  const log = new ActivityLog();
  const { activities, launch } = liveImage(env, gate);
  const run = <T>(scenario: (tq: string) => Promise<T>) => withLedgerWorker(log, activities, scenario);
  return { log, launch, run };
}

/** An open-ended share of `targets` started on `tq` and run to its end: its workflow id and result. */
async function openShare(tq: string, targets: Parameters<typeof shareInput>[0] = TO_B) {
  const handle = await start(env, 'shareImage', tq, shareInput(targets));
  return { id: handle.workflowId, done: succeeded(await outcome<ShareImageResult>(handle)) };
}

void describe('share ledger: overlapping shares of one image', () => {
  void it('GIVEN an open-ended and a 30-day share to the same account WHEN the open-ended one is withdrawn THEN access stays while the 30-day share lives, and its end removes it', async () => {
    const { log, launch, run } = ledgerImage();
    const o = await run(async (tq) => {
      const { id: openId, done: openDone } = await openShare(tq);
      const timed = await start(env, 'shareImage', tq, shareInput({ ...TO_B, durationSeconds: 30 * DAY }));
      await stepIs(timed, 'shared until expiry', ['running']);
      const un = await unshare(env, tq, { shareWorkflowId: openId });
      const accessAfterFirst = [...launch];
      await timed.executeUpdate(setShareExpiryUpdate, { args: [{ expiresInSeconds: 0 }] });
      const timedDone = succeeded(await outcome<ShareImageResult>(timed));
      return { openDone, timedDone, un, accessAfterFirst, timedId: timed.workflowId };
    });
    await saveHistory(o.un, 'unshare-image-ledger-kept');

    // THEN both shares hold B (neither records it as "already present": it is amiflow's)
    assert.deepEqual(o.openDone.added.launchPermissions, B);
    assert.deepEqual(o.timedDone.added.launchPermissions, B);
    assert.deepEqual(o.timedDone.alreadyPresent.launchPermissions, []);
    assert.ok(o.openDone.shareLedger?.endsWith(`${REGION}/${OWNER}/${SOURCE_IMAGE}`));
    // THEN withdrawing the first kept B, saying why; the 30-day share's end removed it
    const un = succeeded(o.un);
    assert.deepEqual(un.withdrawn.launchPermissions, []);
    assert.equal(un.kept?.[0]?.permission, `launch:user:${ACCOUNT_B}`);
    assert.match(un.kept?.[0]?.because ?? '', new RegExp(`still held by live share\\(s\\) ${o.timedId}/`));
    assert.deepEqual(o.accessAfterFirst, B);
    assert.equal(log.count('removeLaunchPermissions'), 1);
    assert.deepEqual(log.inputs('removeLaunchPermissions')[0]?.permissions, B);
    assert.deepEqual(launch, []);
  });

  void it('GIVEN the same two shares WHEN the 30-day one ends first THEN the open-ended share keeps access, and unsharing it removes it', async () => {
    const { log, launch, run } = ledgerImage();
    const o = await run(async (tq) => {
      const { id: openId } = await openShare(tq);
      const timed = await start(env, 'shareImage', tq, shareInput({ ...TO_B, durationSeconds: 30 * DAY }));
      const timedDone = await outcome<ShareImageResult>(timed); // 30 days pass on the test clock
      const accessAfterExpiry = [...launch];
      const removesAfterExpiry = log.count('removeLaunchPermissions');
      const un = await unshare(env, tq, { shareWorkflowId: openId });
      return { timedDone, accessAfterExpiry, removesAfterExpiry, un };
    });
    await saveHistory(o.timedDone, 'share-image-ledger-expiry-kept');
    await saveHistory(o.un, 'unshare-image-ledger-last-removes');

    assert.ok(succeeded(o.timedDone).withdrawnAt);
    assert.deepEqual(o.accessAfterExpiry, B);
    assert.equal(o.removesAfterExpiry, 0);
    assert.deepEqual(succeeded(o.un).withdrawn.launchPermissions, B);
    assert.deepEqual(launch, []);
  });

  void it('GIVEN three shares to the same account started at once WHEN all are withdrawn at once THEN exactly one removal, after the last', async () => {
    const { log, launch, run } = ledgerImage();
    const o = await run(async (tq) => {
      const shares = await Promise.all([1, 2, 3].map(() => start(env, 'shareImage', tq, shareInput(TO_B))));
      const done = await Promise.all(shares.map((h) => outcome<ShareImageResult>(h)));
      const entries = await env.client.workflow
        .getHandle(
          `${tq}/${shareLedgerWorkflowId({ region: REGION, accountId: OWNER, imageId: SOURCE_IMAGE })}`,
        )
        .query(ledgerEntriesQuery);
      const uns = await Promise.all(shares.map((h) => unshare(env, tq, { shareWorkflowId: h.workflowId })));
      return { done, entries, uns };
    });
    for (const d of o.done) assert.deepEqual(succeeded(d).added.launchPermissions, B);
    assert.equal(o.entries.find((e) => e.key === `launch:user:${ACCOUNT_B}`)?.holders.length, 3);
    const removed = o.uns.filter((u) => succeeded(u).withdrawn.launchPermissions.length > 0);
    assert.equal(removed.length, 1);
    assert.equal(o.uns.filter((u) => (succeeded(u).kept ?? []).length > 0).length, 2);
    assert.equal(log.count('removeLaunchPermissions'), 1);
    assert.deepEqual(launch, []);
  });

  void it('GIVEN a permission the account had before amiflow WHEN a share of it is withdrawn THEN it stays, recorded as already present', async () => {
    const { log, launch, run } = ledgerImage();
    launch.push({ userId: ACCOUNT_B });
    const o = await run(async (tq) => {
      const { id, done: shared } = await openShare(tq);
      return { shared, un: succeeded(await unshare(env, tq, { shareWorkflowId: id })) };
    });
    assert.deepEqual(o.shared.added.launchPermissions, []);
    assert.deepEqual(o.shared.alreadyPresent.launchPermissions, B);
    assert.equal(log.count('removeLaunchPermissions'), 0);
    assert.deepEqual(launch, B);
  });
});

void describe('share ledger: its own life', () => {
  void it('GIVEN a ledger past its history limit WHEN requests keep coming THEN it continues as new, keeping who holds what and the answers given', async () => {
    const log = new ActivityLog();
    const { activities } = liveImage(env);
    // The day this ledger idles is skipped on the test clock: on the test's own server (workflowEnv),
    // the ledgers earlier tests left waiting (their workers gone) cannot hold time skipping back.
    const tq = uniqueTaskQueue('ledger-life');
    const worker = await startWorker(env, tq, recorded(log, activities));
    const o = await worker.runUntil(async () => {
      const image = { region: REGION, accountId: OWNER, imageId: SOURCE_IMAGE };
      const workflowId = `${tq}/${shareLedgerWorkflowId(image)}`;
      const ask = async (
        requestId: string,
        op: 'acquire' | 'release',
        holder: string,
      ): Promise<LedgerOutcome> => {
        const request: LedgerRequest =
          op === 'acquire'
            ? { op, requestId, holder, launchPermissions: B, snapshotPermissions: [] }
            : { op, requestId, holder };
        await env.client.workflow.signalWithStart<typeof shareLedger, [LedgerRequest]>('shareLedger', {
          workflowId,
          taskQueue: tq,
          args: [{ image, continueAfterEvents: 20 }],
          signal: ledgerRequestSignal,
          signalArgs: [request],
        });
        return env.client.workflow
          .getHandle(workflowId)
          .executeUpdate(ledgerOutcomeUpdate, { args: [requestId] });
      };
      const handle = env.client.workflow.getHandle(workflowId);
      const outcomes: LedgerOutcome[] = [await ask('s1/acquire', 'acquire', 'share-1/run')];
      const firstRun = (await handle.describe()).runId;
      for (let i = 2; i <= 6; i += 1) outcomes.push(await ask(`s${i}/acquire`, 'acquire', `share-${i}/run`));
      // The same request asked again (a retried activity) is answered, not redone
      const again = await ask('s1/acquire', 'acquire', 'share-1/run');
      const entries = await handle.query(ledgerEntriesQuery);
      const runNow = (await handle.describe()).runId;
      const releases: LedgerOutcome[] = [];
      for (let i = 1; i <= 6; i += 1) releases.push(await ask(`s${i}/release`, 'release', `share-${i}/run`));
      // Nobody holds anything now: a day without requests ends the ledger (skipped on the test clock)
      await handle.result();
      const first = await env.client.workflow.getHandle(workflowId, firstRun).fetchHistory();
      await saveHistory({ history: first, workflowId }, 'share-ledger-overlapping-holds-continued');
      await saveHistory(
        { history: await handle.fetchHistory(), workflowId },
        'share-ledger-released-idle-end',
      );
      return {
        outcomes,
        again,
        entries,
        firstRun,
        runNow,
        releases,
        history: await handle.fetchHistory(),
        workflowId,
      };
    });

    assert.notEqual(o.runNow, o.firstRun, 'the ledger continued as new');
    assert.deepEqual(o.again, o.outcomes[0]);
    assert.deepEqual(o.entries.find((e) => e.key === `launch:user:${ACCOUNT_B}`)?.holders.length, 6);
    assert.deepEqual(
      o.releases.map((r) => r.launchPermissions.length),
      [0, 0, 0, 0, 0, 1],
    );
    assert.equal(log.count('removeLaunchPermissions'), 1);
  });
});

void describe('share ledger: a worker replaced in the middle of a request', () => {
  void it('GIVEN the ledger adding a launch permission for a share WHEN that worker shuts down and another takes over THEN the share completes there, the ledger added it once, and unsharing removes it once', async () => {
    const first = new ActivityLog();
    const second = new ActivityLog();
    const { activities, launch } = liveImage(env);
    const adding = blockingUntilCancelled();
    const tq = uniqueTaskQueue('ledger-handoff');
    // WHEN: the worker running the ledger's add (and the share's request) goes away mid-request
    const o = await handedOver(env, {
      taskQueue: tq,
      first: recorded(first, { ...activities, addLaunchPermissions: adding.fn }),
      blocked: adding,
      start: () => start(env, 'shareImage', tq, shareInput(TO_B)),
      second: recorded(second, activities),
      then: async (share) => {
        const shared = succeeded(await outcome<ShareImageResult>(share));
        const accessWhileShared = [...launch];
        const un = await unshare(env, tq, { shareWorkflowId: share.workflowId });
        return { shared, accessWhileShared, un };
      },
    });

    // THEN: one add command in the ledger (its retry ran on the second worker), one removal
    assert.ok(o.un.ok, `the unshare failed: ${o.un.ok ? '' : String(o.un.error)}`);
    assert.deepEqual(o.shared.added.launchPermissions, B);
    assert.deepEqual(o.accessWhileShared, B);
    assert.deepEqual(launch, [], 'the unshare removed it');
    const ledgerId = `${tq}/${o.shared.shareLedger ?? assert.fail('the share names no ledger')}`;
    const calls = scheduledActivities(await env.client.workflow.getHandle(ledgerId).fetchHistory());
    assert.equal(calls.filter((n) => n === 'addLaunchPermissions').length, 1, calls.join(', '));
    assert.equal(calls.filter((n) => n === 'removeLaunchPermissions').length, 1, calls.join(', '));
    assert.equal(first.count('addLaunchPermissions'), 1, 'the first worker began the add');
    assert.equal(second.count('addLaunchPermissions'), 1, 'the second finished that same add');
    assert.equal(second.count('removeLaunchPermissions'), 1);
  });
});

void describe('share ledger: child shares of copyImage hold through it too', () => {
  void it('GIVEN an open-ended share to B WHEN a copy to B shares the image (child) and withdraws it THEN B keeps access, and unsharing the open one removes it', async () => {
    const { log, launch, run } = ledgerImage();
    const o = await run(async (tq) => {
      const { id: openId, done: openDone } = await openShare(tq, TO_B_WITH_COPY);
      const copied = succeeded(await outcome<CopyImageResult>(await start(env, 'copyImage', tq, COPY_TO_B)));
      const accessAfterCopy = [...launch];
      const removesAfterCopy = log.count('removeLaunchPermissions');
      const un = succeeded(await unshare(env, tq, { shareWorkflowId: openId }));
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
    const gate = deferred();
    const { log, launch, run } = ledgerImage(gate.promise);
    const o = await run(async (tq) => {
      const copy = await start(env, 'copyImage', tq, COPY_TO_B);
      await stepIs(copy, 'share with destination accounts', ['done']);
      const share = await start(env, 'shareImage', tq, shareInput(TO_B_WITH_COPY));
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
