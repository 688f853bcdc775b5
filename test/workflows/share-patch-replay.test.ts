/**
 * The share workflows' patch decisions replay whatever the task boundaries of the run were. A query
 * answered while a local activity runs can end a workflow task between that activity's marker and
 * the workflow's reaction to its result; replay then resolves the activity one task earlier than the
 * run saw it. A `patched()` call right after the activity then came out false on replay (its marker
 * is announced with the next task) and the run failed "Non-deprecated patch marker encountered for
 * change share-ledger, but there is no corresponding change command" on a query of the finished run
 * (a CI flake under load), as it would after any eviction or worker restart. These tests write that
 * shape on purpose (`withTaskEndAfterFirstLocalActivity`) and replay it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import { withTaskEndAfterFirstLocalActivity } from '../../devkit/histories';
import type { ShareImageResult } from '../../workflows/contracts';
import { progressQuery } from '../../workflows/contracts';
import { SHARE_PATCHES_AT_START } from '../../workflows/share-image';
import { eventTypes, saveHistory } from '../support/histories';
import { uniqueTaskQueue, workflowBundle } from '../support/temporal';
import type { History, WorkflowOutcome } from './harness';
import { ActivityLog, recorded, startWorker, succeeded, withinBound } from './harness';
import {
  ACCOUNT_A,
  DAY,
  outcome,
  shareCopyActivities,
  shareCopyEnv,
  shareInput,
  start,
  unshare,
  withReadShareRun,
} from './share-copy-stubs';

const { env, withLoggedWorker } = shareCopyEnv('share-split');

function patchMarkers(history: History): string[] {
  return (history.events ?? []).flatMap((e) => {
    const a = e.markerRecordedEventAttributes;
    if (a?.markerName !== 'core_patch') return [];
    const data = a.details?.['patch-data']?.payloads?.[0]?.data;
    return data ? [(JSON.parse(Buffer.from(data).toString()) as { id: string }).id] : [];
  });
}

/** The run's history, its first task ended after its first local activity, replayed on the current code. */
async function replaySplit(o: WorkflowOutcome<unknown>): Promise<History> {
  const split = withTaskEndAfterFirstLocalActivity(o.history);
  assert.ok(
    split,
    `no local activity followed by commands in the first task: ${eventTypes(o.history).join(' ')}`,
  );
  // The split moved something: one more task, and the first task's commands after the marker follow it.
  const tasks = (h: History) => eventTypes(h).filter((t) => t === 'WORKFLOW_TASK_COMPLETED').length;
  assert.equal(tasks(split), tasks(o.history) + 1);
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, split, o.workflowId);
  return split;
}

const runShare = (activities: Activities, input: unknown) =>
  withLoggedWorker(new ActivityLog(), activities, async (tq) =>
    outcome<ShareImageResult>(await start(env, 'shareImage', tq, input)),
  );

void describe('share patch decisions on replay', () => {
  void it('GIVEN queries sent before any worker took the run (its first task carries them) WHEN the run ends THEN the progress query of the finished run (a full replay) answers, and its history replays', async () => {
    const tq = uniqueTaskQueue('share-split');
    const handle = await start(env, 'shareImage', tq, shareInput({ durationSeconds: 30 * DAY }));
    // Answered while the describe runs, they end the first task with its marker (a loaded CI run's
    // first progress queries did the same): the workflow's reaction goes to the next task.
    const early = Promise.all([1, 2, 3].map(() => handle.query(progressQuery)));
    const worker = await startWorker(env, tq, recorded(new ActivityLog(), shareCopyActivities()));
    const o = await worker.runUntil(
      withinBound(
        early.then(() => outcome<ShareImageResult>(handle)),
        'the run',
      ),
    );
    // outcome() queried the finished run: the worker replayed it from its history. Before
    // 'share-patches-at-start' that failed "Non-deprecated patch marker encountered for change
    // share-ledger" (as QueryNotRegisteredError) whenever the first task ended after the describe.
    succeeded(o);
    assert.equal(o.progress.phase, 'succeeded');
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, o.history, o.workflowId);
  });

  void it('GIVEN a share run whose first task ended right after its describe (a query answered meanwhile) WHEN replayed THEN it takes the ledger branch it ran, without non-determinism', async () => {
    const o = await runShare(shareCopyActivities(), shareInput({ durationSeconds: 30 * DAY }));
    succeeded(o);
    // The decision is made by one marker in the first activation, before the describe's marker.
    assert.deepEqual(patchMarkers(o.history), [SHARE_PATCHES_AT_START]);
    const split = await replaySplit(o);
    assert.ok(eventTypes(split).includes('ACTIVITY_TASK_SCHEDULED'));
    await saveHistory({ history: split, workflowId: o.workflowId }, 'share-image-task-ended-after-describe');
  });

  void it('GIVEN a CMK share (grants decided after the describe) split the same way WHEN replayed THEN no non-determinism', async () => {
    const o = await runShare(
      shareCopyActivities({ encryption: 'customer-managed-key', launchPermissions: [{ userId: ACCOUNT_A }] }),
      shareInput({}),
    );
    succeeded(o);
    await replaySplit(o);
  });

  void it('GIVEN an unshare whose first task ended right after it read the share run WHEN replayed THEN it releases through the ledger as it ran, without non-determinism', async () => {
    const activities = withReadShareRun(env, shareCopyActivities());
    const o = await withLoggedWorker(new ActivityLog(), activities, async (tq) => {
      const shared = await outcome<ShareImageResult>(await start(env, 'shareImage', tq, shareInput({})));
      succeeded(shared);
      return unshare(env, tq, { shareWorkflowId: shared.workflowId });
    });
    const r = succeeded(o);
    assert.deepEqual(r.kept, []);
    assert.deepEqual(patchMarkers(o.history), [SHARE_PATCHES_AT_START]);
    await replaySplit(o);
  });
});
