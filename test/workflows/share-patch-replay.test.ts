/**
 * The workflows' patch decisions replay whatever the task boundaries of the run were (first found in
 * the share workflows, then in imageFromInstance, goldenImage and Progress's end of every run). A query
 * answered while a local activity runs can end a workflow task between that activity's marker and
 * the workflow's reaction to its result; replay then resolves the activity one task earlier than the
 * run saw it. A `patched()` call right after the activity then came out false on replay (its marker
 * is announced with the next task) and the run failed "Non-deprecated patch marker encountered for
 * change share-ledger, but there is no corresponding change command" on a query of the finished run
 * (a CI flake under load), as it would after any eviction or worker restart. These tests write that
 * shape on purpose (`withTaskEndAfterFirstLocalActivity`, `withTaskEndAfterEachLocalActivity`) and
 * replay it: runs since 'amiflow-patches-at-start' (workflows/patches.ts) replay every such split;
 * recorded runs from before it fail as the CI did, which shows the splits reach the hazard.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { BuildImageInput, BuildImageResult } from '../../contracts/recipe';
import {
  loadHistories,
  withTaskEndAfterEachLocalActivity,
  withTaskEndAfterFirstLocalActivity,
} from '../../devkit/histories';
import type { imageFromInstance } from '../../workflows';
import type { BackupResult, CopyImageResult, ShareImageResult } from '../../workflows/contracts';
import { FailureType, SearchAttr, progressQuery, shareLedgerWorkflowId } from '../../workflows/contracts';
import { PATCHES_AT_START } from '../../workflows/patches';
import { eventTypes, saveHistory } from '../support/histories';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from '../support/temporal';
import { PARENT, buildStubs } from './build-stubs';
import type { History, WorkflowOutcome } from './harness';
import {
  ActivityLog,
  assertWorkflowCancelled,
  assertWorkflowFailure,
  cancelledRun,
  failing,
  recorded,
  startWorker,
  stepReached,
  succeeded,
  uniqueWorkflowId,
  withinBound,
  withWorker,
  workflowEnv,
  workflowOutcome,
} from './harness';
import { COPY_REGION, Fleet, GOLDEN, backupInput, goldenActivities, goldenInput } from './golden-stubs';
import { migrateInput, migrationActivities, runLoggedMigration } from './migrate-stub-activities';
import { nondeterministicSplits, patchMarkers } from './patch-replay';
import { GOLDEN_ROLLOUT_STAGE, RolloutFleet, goldenWithRolloutActivities } from './rollout-stubs';
import { runTo } from './run-helpers';
import { STOP_TIMED_OUT_WHEN_CANCELLED, happyActivities, imageInput } from './stub-activities';
import {
  ACCOUNT_A,
  DAY,
  OWNER,
  REGION,
  SOURCE_IMAGE,
  copyInput,
  outcome,
  shareCopyActivities,
  shareCopyEnv,
  shareInput,
  start,
  unshare,
  withReadShareRun,
} from './share-copy-stubs';

const { env, withLoggedWorker } = shareCopyEnv('share-split');

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
    // 'amiflow-patches-at-start' that failed "Non-deprecated patch marker encountered for change
    // share-ledger" (as QueryNotRegisteredError) whenever the first task ended after the describe.
    succeeded(o);
    assert.equal(o.progress.phase, 'succeeded');
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, o.history, o.workflowId);
  });

  void it('GIVEN a share run whose first task ended right after its describe (a query answered meanwhile) WHEN replayed THEN it takes the ledger branch it ran, without non-determinism', async () => {
    const o = await runShare(shareCopyActivities(), shareInput({ durationSeconds: 30 * DAY }));
    succeeded(o);
    // The decision is made by one marker in the first activation, before the describe's marker.
    assert.deepEqual(patchMarkers(o.history), [PATCHES_AT_START]);
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
    assert.deepEqual(patchMarkers(o.history), [PATCHES_AT_START]);
    await replaySplit(o);
  });
});

/** Recorded histories from before amiflow-patches-at-start, and the changes their splits fail on. */
const EXPECTED_BEFORE_FIX: Record<string, string[]> = {
  'image-from-instance-app-consistent': [
    'image-from-instance-app-consistent',
    'amiflow-outcome-search-attributes',
  ],
  'image-from-instance-cancelling-step': ['create-image-as-activity'],
  // Cancelled runs: their cancel patches were decided after activities, not local ones; these fail on
  // the patches decided before.
  'image-from-instance-cancelled-undo-failed': ['create-image-as-activity'],
  'image-from-instance-app-consistent-cancelled-frozen': ['image-from-instance-app-consistent'],
  'image-from-instance-async-wait': ['amiflow-async-image-wait'],
  'golden-image-recipe-source': ['golden-launch-test-instance-as-activity'],
  'golden-image-rollout-stage': ['golden-image-rollout-stage'],
  'build-image-e2e': ['amiflow-outcome-search-attributes'],
};

void describe('patch decisions of every workflow on replay, a task ended after each local activity', () => {
  void it('GIVEN recorded runs from before amiflow-patches-at-start WHEN replayed so THEN the patches decided right after a local activity fail as the CI flake did (the splits reach the hazard)', async () => {
    const byName = new Map((await loadHistories()).map((r) => [r.name, r]));
    const changes = async (name: string) => {
      const r = byName.get(name);
      assert.ok(r, `no recorded history ${name}`);
      return new Set((await nondeterministicSplits(r.history, r.workflowId)).values());
    };
    const expected: Record<string, string[]> = EXPECTED_BEFORE_FIX;
    for (const [name, patches] of Object.entries(expected))
      assert.deepEqual([...(await changes(name))].sort(), [...patches].sort(), name);
  });
});

const devEnv = workflowEnv(devServerEnv, { per: 'file' });

type Run = { history: History; workflowId: string };
type Split = ReturnType<typeof withTaskEndAfterEachLocalActivity>[number];

/**
 * Asserts the run decided its patches by the one first-activation marker and that its history
 * replays with a task ended after each of its local activities: its splits, to save some of them.
 */
async function everySplitReplays(o: Run): Promise<Split[]> {
  assert.deepEqual(patchMarkers(o.history), [PATCHES_AT_START]);
  assert.deepEqual([...(await nondeterministicSplits(o.history, o.workflowId))], []);
  return withTaskEndAfterEachLocalActivity(o.history);
}

/** Saves `split` of the run for the replay tier (with AMIFLOW_RECORD_HISTORIES=1) as `name`. */
async function saveSplit(o: Run, split: Split | undefined, name: string): Promise<void> {
  assert.ok(split, `no split to save as ${name}`);
  await saveHistory({ history: split.history, workflowId: o.workflowId }, name);
}

/** The run's child starts that carry search attributes (the patched branch gives them some). */
function childrenWithAttributes(history: History): number {
  return (history.events ?? []).filter(
    (e) =>
      Object.keys(
        e.startChildWorkflowExecutionInitiatedEventAttributes?.searchAttributes?.indexedFields ?? {},
      ).length > 0,
  ).length;
}

/** A one-step recipe: the build's patch decisions do not depend on its steps. */
function buildRecipe(): BuildImageInput {
  return {
    region: REGION,
    recipe: 'web',
    parent: { imageId: PARENT },
    builder: { instanceTypes: ['t3.small'] },
    build: [{ kind: 'shell', name: 'install', commands: 'dnf install -y nginx' }],
    output: { imageName: 'web-{{date}}-{{hash}}' },
  };
}

/** amiflow's search attributes on a start: Progress's end, the children's and the cancelling step are patched on them. */
const ATTRIBUTES = { typedSearchAttributes: [{ key: SearchAttr.region, value: REGION }] };

void describe('imageFromInstance and Progress.end since amiflow-patches-at-start', () => {
  void it("GIVEN an imageFromInstance run started with amiflow's search attributes (its end upserts its outcome) WHEN replayed with a task ended after each of its local activities THEN every split replays", async () => {
    const o = await withWorker(devEnv, happyActivities({ state: 'running' }), async (tq) => {
      const handle = await devEnv.client.workflow.start('imageFromInstance', {
        taskQueue: tq,
        workflowId: uniqueWorkflowId('image-split'),
        args: [imageInput({ mode: 'no-reboot' })],
        ...ATTRIBUTES,
      });
      return workflowOutcome<unknown>(handle);
    });
    succeeded(o);
    assert.ok(
      eventTypes(o.history).includes('UPSERT_WORKFLOW_SEARCH_ATTRIBUTES'),
      'the end upserts the outcome',
    );
    // One marker in the first activation stands for create-image-as-activity, the async wait and the outcome.
    const splits = await everySplitReplays(o);
    // Saved: the split after the image name's check (create-image-as-activity was decided right
    // after it), and the one after the last local activity (Progress's end upserts the outcome next).
    assert.ok(splits.length >= 3, `${splits.length} splits`);
    await saveSplit(o, splits[1], 'image-from-instance-task-ended-before-create');
    await saveSplit(o, splits.at(-1), 'image-from-instance-task-ended-before-end');
  });
});

void describe('goldenImage since amiflow-patches-at-start', () => {
  void it('GIVEN a golden pipeline with validation (its test instance launched as an activity), a copy, a share and a rollout stage WHEN replayed with a task ended after each of its local activities THEN every split replays', async () => {
    const rollout = GOLDEN_ROLLOUT_STAGE;
    const o = await runTo(
      env,
      GOLDEN,
      goldenWithRolloutActivities(new Fleet(), new RolloutFleet(['web-a', 'web-b'])),
      goldenInput({ approval: undefined, rollout }),
    );
    const r = succeeded(o);
    assert.ok(r.rollout, 'the rollout stage ran');
    const types = eventTypes(o.history);
    assert.ok(
      types.includes('ACTIVITY_TASK_SCHEDULED') && types.includes('START_CHILD_WORKFLOW_EXECUTION_INITIATED'),
    );
    // Saved: the split after the last local activity, before the rollout stage's decision and the end.
    await saveSplit(o, (await everySplitReplays(o)).at(-1), 'golden-image-task-ended-before-rollout');
  });
});

void describe('migrateInstance since amiflow-patches-at-start', () => {
  void it('GIVEN a migration (a child image, its new instance launched as an activity, the compensations armed) WHEN replayed with a task ended after each of its local activities THEN every split replays', async () => {
    const { outcome: o } = await runLoggedMigration(env, migrationActivities(), migrateInput());
    succeeded(o);
    await saveSplit(o, (await everySplitReplays(o)).at(-1), 'migrate-instance-task-ended-before-end');
  });
});

void describe('copyImage since amiflow-patches-at-start', () => {
  void it('GIVEN a copy to several destinations (copies as activities, async image waits) WHEN replayed with a task ended after each of its local activities THEN every split replays', async () => {
    const o = await withLoggedWorker(new ActivityLog(), shareCopyActivities(), async (tq) =>
      outcome<CopyImageResult>(await start(env, 'copyImage', tq, copyInput())),
    );
    succeeded(o);
    await everySplitReplays(o);
  });
});

void describe('backupInstances since amiflow-patches-at-start', () => {
  void it("GIVEN a backup started with amiflow's search attributes (its children's attributes decided right after the instances' lookup) WHEN replayed with a task ended after each of its local activities THEN every split replays", async () => {
    const o = await withWorker(
      devEnv,
      goldenActivities(new Fleet()),
      async (tq) =>
        workflowOutcome<BackupResult>(
          await devEnv.client.workflow.start('backupInstances', {
            taskQueue: tq,
            workflowId: uniqueWorkflowId('backup/db-nightly'),
            args: [
              backupInput({ selector: { tags: { backup: 'nightly' } }, copyTo: { region: COPY_REGION } }),
            ],
            ...ATTRIBUTES,
          }),
        ),
      'backup-split',
    );
    succeeded(o);
    assert.ok(childrenWithAttributes(o.history) >= 2, 'children with attributes');
    const splits = await everySplitReplays(o);
    // Saved: the split right after the instances' lookup, where the children's attributes are decided.
    await saveSplit(o, splits[0], 'backup-instances-task-ended-before-children');
  });
});

void describe('buildImage since amiflow-patches-at-start', () => {
  void it("GIVEN a build started with amiflow's search attributes (its end upserts its outcome) WHEN replayed with a task ended after each of its local activities THEN every split replays", async () => {
    const o = await withWorker(
      devEnv,
      buildStubs(happyActivities({ state: 'stopped' })),
      async (tq) =>
        workflowOutcome<BuildImageResult>(
          await devEnv.client.workflow.start('buildImage', {
            taskQueue: tq,
            workflowId: uniqueWorkflowId('build'),
            args: [buildRecipe()],
            ...ATTRIBUTES,
          }),
        ),
      'build-split',
    );
    succeeded(o);
    assert.ok(
      eventTypes(o.history).includes('UPSERT_WORKFLOW_SEARCH_ATTRIBUTES'),
      'the end upserts the outcome',
    );
    await saveSplit(o, (await everySplitReplays(o)).at(-1), 'build-image-task-ended-before-end');
  });
});

void describe('shareLedger since amiflow-patches-at-start', () => {
  void it('GIVEN the ledger of a share and its unshare, ended after its idle day WHEN replayed with a task ended after each of its local activities (its permission reads) THEN every split replays', async () => {
    const activities = withReadShareRun(env, shareCopyActivities());
    const o = await withLoggedWorker(new ActivityLog(), activities, async (tq) => {
      const shared = await outcome<ShareImageResult>(await start(env, 'shareImage', tq, shareInput({})));
      succeeded(shared);
      succeeded(await unshare(env, tq, { shareWorkflowId: shared.workflowId }));
      const image = { region: REGION, accountId: OWNER, imageId: SOURCE_IMAGE };
      const handle = env.client.workflow.getHandle(`${tq}/${shareLedgerWorkflowId(image)}`);
      await handle.result(); // a day with no holder ends it (skipped on the test clock)
      return { history: await handle.fetchHistory(), workflowId: handle.workflowId };
    });
    assert.equal(eventTypes(o.history).at(-1), 'WORKFLOW_EXECUTION_COMPLETED');
    await saveSplit(o, (await everySplitReplays(o)).at(-1), 'share-ledger-task-ended-after-read');
  });
});

void describe("the compensations' cancel patches since amiflow-patches-at-start", () => {
  const startImage = (tq: string) =>
    devEnv.client.workflow.start<typeof imageFromInstance>('imageFromInstance', {
      taskQueue: tq,
      workflowId: uniqueWorkflowId('image-cancel-split'),
      args: [imageInput({ mode: 'stop' })],
      ...ATTRIBUTES,
    });

  void it('GIVEN a run cancelled while its stop runs, the stop then timing out (cancel-requested-ends-cancelled) WHEN replayed with a task ended after each of its local activities THEN it ends CANCELLED and every split replays', async () => {
    const o = await cancelledRun(devEnv, {
      activities: happyActivities({ state: 'running' }),
      block: [STOP_TIMED_OUT_WHEN_CANCELLED],
      start: startImage,
      beforeCancel: (handle) => stepReached(handle, 'stop instance', ['running']),
    });
    assertWorkflowCancelled(o.ok ? undefined : o.error);
    await saveSplit(
      o,
      (await everySplitReplays(o)).at(-1),
      'image-from-instance-cancel-requested-task-ended-before-stop',
    );
  });

  void it('GIVEN a run cancelled while it waits for its image, its undo failing (cancelled-undo-failed-fails) WHEN replayed with a task ended after each of its local activities THEN it ends FAILED CompensationFailed and every split replays', async () => {
    const o = await cancelledRun(devEnv, {
      activities: failing(happyActivities({ state: 'stopped' }), 'deleteImage', FailureType.AwsUnauthorized),
      block: ['waitForImageAvailable'],
      start: startImage,
    });
    assertWorkflowFailure(o.ok ? undefined : o.error, FailureType.CompensationFailed);
    await saveSplit(
      o,
      (await everySplitReplays(o)).at(-1),
      'image-from-instance-cancelled-undo-failed-task-ended-before-create',
    );
  });
});
