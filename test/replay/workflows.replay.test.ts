/**
 * Tier 4: every workflow type's recorded histories (test/replay/histories/) replay against the
 * current workflow code without non-determinism. A change that would break runs already open in
 * production fails here first; guard such a change with `patched('<id>')` and keep these files.
 *
 * Re-recording (only after an intended, patched change, and keeping the old files that runs in
 * production may still match): the tests that produce each scenario save their run's history when
 * AMIFLOW_RECORD_HISTORIES=1 (test/support/histories.ts):
 *
 *   AMIFLOW_RECORD_HISTORIES=1 node scripts/run-tests.mjs test/workflows   # stubs, time skipping
 *   AMIFLOW_RECORD_HISTORIES=1 node scripts/run-tests.mjs test/e2e         # dev server + sandbox
 *
 * then add each new file to RECORDED below with how its run closed.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { ReplayResult } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import * as workflows from '../../workflows';
import type { History, RecordedHistory } from '../support/histories';
import { HISTORIES_DIR, eventTypes, loadHistories } from '../support/histories';
import { installQuietRuntime } from '../support/runtime';
import { workflowBundle } from '../support/temporal';

type WorkflowType = keyof typeof workflows;
type Closed = 'COMPLETED' | 'FAILED' | 'CANCELED' | 'CONTINUED_AS_NEW';

interface Scenario {
  /** How the recorded run closed. */
  closed: Closed;
  /**
   * Activities (regular or local) the history must hold: the undo steps of a compensation, or the
   * step that makes the path what its name says. Proves the file records the path it claims.
   */
  ran: string[];
  /** Event types the path must hold, e.g. an update or a cancellation request. */
  events: string[];
}

const UPDATE = 'WORKFLOW_EXECUTION_UPDATE_COMPLETED';
const CANCEL = 'WORKFLOW_EXECUTION_CANCEL_REQUESTED';
const TIMER = 'TIMER_FIRED';

/** Event types are SCREAMING_SNAKE_CASE (the proto's enum names); activity types are camelCase. */
const EVENT_TYPE = /^[A-Z_]+$/;

/**
 * A scenario that closed `how`, holding each of `holds`: an activity it ran or an event type
 * (told apart by their case), so each row of the table below reads as one line.
 */
function closed(how: Closed): (...holds: string[]) => Scenario {
  return (...holds) => ({
    closed: how,
    ran: holds.filter((h) => !EVENT_TYPE.test(h)),
    events: holds.filter((h) => EVENT_TYPE.test(h)),
  });
}
const completed = closed('COMPLETED');
const failed = closed('FAILED');
const cancelled = closed('CANCELED');
const continuedAsNew = closed('CONTINUED_AS_NEW');

// The undo lists several paths share: each is one compensation, named once.
/** A migration's undo once its new instance was launched: the instance, the image, the source restarted. */
const UNDO_LAUNCH = ['terminateLaunchedInstance', 'deleteImage', 'startInstance'];
/** A share's undo: every permission it added, then the key grants. */
const UNDO_SHARE = ['removeLaunchPermissions', 'removeSnapshotPermissions', 'revokeKeyGrants'];
/** A rollout's undo: the refreshes, then the launch templates' previous default versions. */
const UNDO_ROLLOUT = ['undoInstanceRefresh', 'restoreLaunchTemplateDefault'];

/** Every scenario recorded, by workflow type; the file is `<scenario>.json`. */
const RECORDED: Record<WorkflowType, Record<string, Scenario>> = {
  buildImage: {
    'build-image-e2e': completed('launchBuildInstance', 'waitForCommand', 'tagBuildResource'),
    // Since 'amiflow-patches-at-start': a task ended after the last local activity, before the outcome
    // upsert of Progress's end (test/workflows/share-patch-replay.test.ts).
    'build-image-task-ended-before-end': completed('tagBuildResource', 'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES'),
    'build-image-happy': completed('sendBuildStep', 'waitForCommand', 'tagBuildResource'),
    'build-image-ten-steps': completed('sendBuildStep'),
    'build-image-unchanged': completed('findUnchangedImage'),
    'build-image-resumed': completed('waitForCommand'),
    'build-image-step-failed': failed('terminateBuildInstance'),
    'build-image-builder-kept': failed('tagBuildResource', 'terminateBuildInstance', TIMER),
    'build-image-cancelled-during-command': cancelled('cancelCommand', 'terminateBuildInstance', CANCEL),
  },
  waitLease: {
    'wait-lease-ended': completed(),
    'wait-lease-lost': completed('releaseWaits'),
    // Told by signal of both forms (a whole list, then changes) before its hold ever ran.
    'wait-lease-told': completed('releaseWaits', 'WORKFLOW_EXECUTION_SIGNALED'),
    // Since the sweep: a lease naming its worker, lost unheld; releaseWaits asked to sweep that worker.
    'wait-lease-swept': completed('releaseWaits'),
  },
  imageFromInstance: {
    'image-from-instance-stop': completed('stopInstance', 'startInstance'),
    // Since 'amiflow-async-image-wait': the wait handed off once, retried without an attempt limit.
    'image-from-instance-async-wait': completed('waitForImageAvailable'),
    // Since 'amiflow-patches-at-start' (workflows/patches.ts): a task ended after the image name's
    // check (before create-image-as-activity), and one after the last local activity (before the outcome upsert
    // of Progress's end), as a query answered meanwhile ends it (test/workflows/share-patch-replay.test.ts).
    'image-from-instance-task-ended-before-create': completed(
      'createImage',
      'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES',
    ),
    'image-from-instance-task-ended-before-end': completed(
      'createImage',
      'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES',
    ),
    'image-from-instance-reboot': completed(),
    'image-from-instance-no-reboot': completed(),
    'image-from-instance-stopped-instance': completed(),
    'image-from-instance-name-taken': failed(),
    'image-from-instance-image-failed': failed('deleteImage', 'startInstance'),
    'image-from-instance-cancelled': cancelled('deleteImage', CANCEL),
    'image-from-instance-cancelled-undo-failed': failed('deleteImage', CANCEL),
    // Since 'amiflow-patches-at-start': the compensations' cancel patches (cancel-requested-ends-cancelled,
    // cancelled-undo-failed-fails) decided by the first activation's marker; a task ended after the
    // name's check (test/workflows/share-patch-replay.test.ts).
    'image-from-instance-cancel-requested-task-ended-before-stop': cancelled(
      'startInstance',
      CANCEL,
      'ACTIVITY_TASK_FAILED',
    ),
    'image-from-instance-cancelled-undo-failed-task-ended-before-create': failed(
      'deleteImage',
      CANCEL,
      'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES',
    ),
    // Since 'amiflow-cancelling-step': the run marks AmiflowStep=cancelling before its undo (issue 13).
    'image-from-instance-cancelling-step': cancelled(
      'deleteImage',
      CANCEL,
      'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES',
    ),
    'image-from-instance-cancelled-during-stop': cancelled('startInstance', CANCEL),
    'image-from-instance-cancelled-during-create': cancelled('deleteImage', CANCEL),
    // Mode app-consistent (issue 15): quiesce over SSM, CreateImage, thaw; and the thaw on every other path.
    'image-from-instance-app-consistent': completed(
      'sendQuiesceCommand',
      'waitForCommand',
      'sendThawCommand',
    ),
    'image-from-instance-app-consistent-pre-failed': failed('sendThawCommand'),
    'image-from-instance-app-consistent-fell-back': completed('sendQuiesceCommand', 'sendThawCommand'),
    'image-from-instance-app-consistent-cancelled-frozen': cancelled(
      'cancelCommand',
      'sendThawCommand',
      CANCEL,
    ),
    'image-from-instance-app-consistent-resumed-thaw': completed('sendThawCommand'),
  },
  shareImage: {
    'share-image-expiry-withdrawn': completed('removeLaunchPermissions', 'revokeKeyGrants', TIMER),
    'share-image-expiry-extended-by-update': completed(UPDATE, TIMER),
    'share-image-expiry-ended-by-update': completed('removeLaunchPermissions', UPDATE),
    'share-image-reencrypted': completed('copyImage', 'addLaunchPermissions'),
    // Through the image's share ledger (patched('share-ledger')): held, then released at expiry.
    'share-image-ledger-expiry-kept': completed('requestShareLedger', TIMER),
    // Since 'amiflow-patches-at-start': its first task ended after the describe's marker (a query answered
    // while it ran), the workflow's reaction in the next task (test/workflows/share-patch-replay.test.ts).
    'share-image-task-ended-after-describe': completed('requestShareLedger', TIMER),
    'share-image-launch-permissions-failed': failed(...UNDO_SHARE),
    'share-image-launch-permission-activity-failed': failed('addLaunchPermissions', ...UNDO_SHARE),
    'share-image-aws-managed-key-refused': failed(),
    'share-image-own-account-refused': failed(),
    'share-image-cancelled': cancelled('removeLaunchPermissions', 'revokeKeyGrants', CANCEL),
    // e2e-*: recorded from the e2e tier (dev server + moto + the real worker and activities).
    'e2e-share-image-open-ended': completed('addLaunchPermissions'),
    'e2e-share-image-ended-by-update': completed('removeLaunchPermissions', UPDATE),
  },
  unshareImage: {
    'unshare-image-ledger-kept': completed('readShareRun', 'requestShareLedger'),
    'unshare-image-ledger-last-removes': completed('readShareRun', 'requestShareLedger'),
    'unshare-image': completed(...UNDO_SHARE),
    'e2e-unshare-image': completed('removeLaunchPermissions', 'removeSnapshotPermissions'),
  },
  // An entity workflow: open while shares hold permissions, continued as new past its history limit,
  // ended after a day with no holder and no request.
  shareLedger: {
    'share-ledger-overlapping-holds-continued': continuedAsNew(
      'describeImageForSharing',
      'addLaunchPermissions',
    ),
    // The last run after continuing as new: its day idle with no holder is the timer
    'share-ledger-released-idle-end': completed(TIMER),
    // Since 'amiflow-patches-at-start' (share-ledger-dedupe-in-flight): a share's hold and its release,
    // a task ended after the permission read (test/workflows/share-patch-replay.test.ts).
    'share-ledger-task-ended-after-read': completed(
      'describeImageForSharing',
      'addLaunchPermissions',
      'removeLaunchPermissions',
      TIMER,
    ),
  },
  copyImage: {
    'copy-image-five-destinations': completed('copyImage', 'removeLaunchPermissions'),
    'copy-image-one-per-region': completed('copyImage'),
    'copy-image-resumed-on-another-worker': completed('copyImage'),
    'copy-image-keep-partial': completed('deleteImage'),
    'copy-image-key-missing': failed('checkKmsKey'),
    'copy-image-rollback': failed('deleteImage', 'removeLaunchPermissions', 'ACTIVITY_TASK_CANCEL_REQUESTED'),
    'copy-image-cancelled': cancelled('deleteImage', 'removeLaunchPermissions', CANCEL),
    'e2e-copy-image-two-regions': completed('copyImage', 'tagSnapshots'),
    'e2e-copy-image-rollback': failed('deleteImage'),
  },
  migrateInstance: {
    // Since 'amiflow-patches-at-start': a task ended after the last local activity, before the run's
    // end (test/workflows/share-patch-replay.test.ts).
    'migrate-instance-task-ended-before-end': completed(
      'launchInstance',
      'START_CHILD_WORKFLOW_EXECUTION_INITIATED',
    ),
    'migrate-instance-terminate-source': completed(
      'launchInstance',
      'moveElasticIp',
      'terminateSourceInstance',
    ),
    'migrate-instance-keep-source': completed('launchInstance', 'deleteImage'),
    'migrate-instance-stopped-source': completed('launchInstance', 'stopInstance'),
    'migrate-instance-resumed-on-another-worker': completed('terminateSourceInstance'),
    'migrate-instance-image-delete-failed': completed('deleteImage'),
    'migrate-instance-bad-input': failed(),
    'migrate-instance-failed-planMigration': failed(),
    'migrate-instance-failed-checkImageName': failed(),
    'migrate-instance-failed-stopInstance': failed('startInstance'),
    'migrate-instance-failed-stopInstance-stopped-source': failed('terminateLaunchedInstance', 'deleteImage'),
    'migrate-instance-failed-createImage': failed('startInstance'),
    'migrate-instance-failed-waitForImageAvailable': failed('startInstance'),
    'migrate-instance-failed-launchInstance': failed(...UNDO_LAUNCH),
    'migrate-instance-failed-waitForInstanceReady': failed(...UNDO_LAUNCH),
    'migrate-instance-failed-copyVolumeTags': failed(...UNDO_LAUNCH),
    'migrate-instance-failed-moveElasticIp': failed(...UNDO_LAUNCH),
    'migrate-instance-failed-terminateSourceInstance': failed('terminateSourceInstance'),
    'migrate-instance-cancelled-during-checks': cancelled(...UNDO_LAUNCH, CANCEL),
    'migrate-instance-cancelled-during-image': cancelled(
      'startInstance',
      CANCEL,
      'CHILD_WORKFLOW_EXECUTION_CANCELED',
    ),
    'migrate-instance-cancel-after-commit': completed('terminateSourceInstance', CANCEL),
    'e2e-migrate-instance-terminate-move-eip': completed('moveElasticIp', 'terminateSourceInstance'),
    'e2e-migrate-instance-stop-keep-image': completed('launchInstance', 'stopInstance'),
    'e2e-migrate-instance-elastic-ip-unhandled': failed('planMigration'),
  },
  goldenImage: {
    'golden-image-rollout-stage': completed(),
    // Since 'amiflow-patches-at-start': a task ended after the last local activity, before the
    // rollout stage's decision (test/workflows/share-patch-replay.test.ts).
    'golden-image-task-ended-before-rollout': completed(
      'launchInstance',
      'START_CHILD_WORKFLOW_EXECUTION_INITIATED',
    ),
    'golden-image-recipe-source': completed(
      'publishImageParameter',
      'protectImage',
      UPDATE,
      'CHILD_WORKFLOW_EXECUTION_COMPLETED',
    ),
    'golden-image-recipe-build-failed': failed('CHILD_WORKFLOW_EXECUTION_FAILED'),
    'golden-image-approved': completed('publishImageParameter', 'protectImage', UPDATE),
    'golden-image-no-approval-gate': completed('publishImageParameter'),
    'golden-image-retention': completed('deprecateImage', 'retireImage'),
    'golden-image-semver': completed('deprecateImage'),
    'golden-image-rejected': failed('deleteImage', UPDATE),
    'golden-image-approval-timed-out': failed('deleteImage', TIMER),
    'golden-image-validation-failed-checkConsoleHealth': failed('terminateLaunchedInstance', 'deleteImage'),
    'golden-image-validation-failed-waitForInstanceReady': failed('terminateLaunchedInstance', 'deleteImage'),
    'golden-image-validation-failed-launchInstance': failed(
      'launchInstance',
      'terminateLaunchedInstance',
      'deleteImage',
    ),
    'golden-image-publish-failed': failed('restoreImageParameter', 'removeLaunchPermissions', 'deleteImage'),
    'golden-image-bad-input': failed(),
    'golden-image-cancelled': cancelled('deleteImage', CANCEL),
    'e2e-golden-image-approved': completed('publishImageParameter', UPDATE),
    'e2e-golden-image-approved-retiring-first': completed('publishImageParameter', UPDATE),
  },
  backupInstances: {
    'backup-instances-reboot-copy-retain': completed('retireImage', 'CHILD_WORKFLOW_EXECUTION_COMPLETED'),
    'backup-instances-incomplete': failed('CHILD_WORKFLOW_EXECUTION_FAILED'),
    'backup-instances-outside-window': failed(),
    'backup-instances-cancelled': cancelled(CANCEL, 'CHILD_WORKFLOW_EXECUTION_CANCELED'),
    // Since 'amiflow-patches-at-start': started with amiflow's attributes, a task ended after the
    // instances' lookup, before the children (with their attributes) start (share-patch-replay.test.ts).
    'backup-instances-task-ended-before-children': completed(
      'findInstancesByTags',
      'START_CHILD_WORKFLOW_EXECUTION_INITIATED',
      'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES',
    ),
  },
  approvedImages: {
    'approved-images-merged': completed('listApprovedImages'),
  },
  complianceScan: {
    'compliance-scan-region-failed': completed('scanInstances'),
    'compliance-scan-queried-midway': completed('scanInstances'),
    'compliance-scan-catalogue-unreadable': completed('listApprovedImages'),
    'compliance-scan-bad-input': failed(),
    'compliance-scan-cancelled': cancelled('scanInstances', CANCEL),
    'e2e-compliance-scan': completed('scanInstances'),
  },
  rolloutImage: {
    'rollout-image-two-waves': completed(
      'startInstanceRefresh',
      'waitForInstanceRefresh',
      'watchRolloutAlarms',
      TIMER,
    ),
    'rollout-image-alarm-rollback': failed(...UNDO_ROLLOUT),
    'rollout-image-cancelled': cancelled(...UNDO_ROLLOUT, CANCEL),
  },
  enforceAllowedAmis: {
    'enforce-allowed-amis-audit-enable-off': completed('setAllowedImagesSettings', UPDATE),
    'enforce-allowed-amis-audit-first-refused': completed(UPDATE),
    'enforce-allowed-amis-declarative-policy': completed('setAllowedImagesSettings', UPDATE),
    'enforce-allowed-amis-changed-outside': completed('setAllowedImagesSettings', UPDATE),
  },
};

const SCENARIOS = Object.entries(RECORDED).flatMap(([type, scenarios]) =>
  Object.entries(scenarios).map(([name, scenario]) => ({ type, name, ...scenario })),
);

/** The activity types a history ran: scheduled activities, then local activities (their markers). */
function activitiesRun(history: History): string[] {
  const decoder = new TextDecoder();
  return (history.events ?? []).flatMap((e) => {
    const scheduled = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (scheduled) return [scheduled];
    const marker = e.markerRecordedEventAttributes;
    const data = marker?.details?.data?.payloads?.[0]?.data;
    if (marker?.markerName !== 'core_local_activity' || !data) return [];
    const { activity_type: local } = JSON.parse(decoder.decode(data)) as { activity_type?: string };
    return local ? [local] : [];
  });
}

async function replay(
  options: Parameters<typeof Worker.runReplayHistories>[0],
  histories: RecordedHistory[],
): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  const iterable = histories.map((h) => ({ workflowId: h.workflowId, history: h.history }));
  for await (const result of Worker.runReplayHistories(options, iterable)) results.push(result);
  return results;
}

void describe('replay of the recorded histories of every workflow type', () => {
  let histories: RecordedHistory[];
  const byName = (name: string) => histories.find((h) => h.name === name)?.history;

  before(async () => {
    installQuietRuntime();
    histories = await loadHistories();
  });

  void it('GIVEN the workflow types the worker registers THEN each has recorded histories, with a failure or a cancellation among them wherever the workflow can undo', () => {
    assert.deepEqual(Object.keys(RECORDED).sort(), Object.keys(workflows).sort());
    for (const [type, scenarios] of Object.entries(RECORDED)) {
      const closes = new Set(Object.values(scenarios).map((s) => s.closed));
      assert.ok(closes.has('COMPLETED'), `${type} has a happy path`);
      // A lost lease is not a failure of the lease: it completes, having released the waits.
      if (
        type !== 'approvedImages' &&
        type !== 'unshareImage' &&
        type !== 'enforceAllowedAmis' &&
        type !== 'waitLease' &&
        // A failed AWS call is an answer the ledger gives, not a failure of the ledger.
        type !== 'shareLedger'
      )
        assert.ok(closes.has('FAILED'), `${type} has a failure`);
    }
  });

  void it('GIVEN the recorded histories THEN every scenario has its file and no file is unlisted', () => {
    assert.deepEqual(
      histories.map((h) => h.name).sort(),
      SCENARIOS.map((s) => s.name).sort(),
      `the files in ${HISTORIES_DIR}`,
    );
  });

  for (const s of SCENARIOS)
    void it(`GIVEN ${s.name} THEN it is a ${s.type} run that closed ${s.closed}, holding ${[...s.ran, ...s.events].join(', ') || 'its start'}`, () => {
      const history = byName(s.name);
      assert.ok(history, `${s.name}.json is missing`);
      const events = eventTypes(history);
      assert.equal(events[0], 'WORKFLOW_EXECUTION_STARTED');
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      assert.equal(started?.workflowType?.name, s.type);
      assert.equal(events.at(-1), `WORKFLOW_EXECUTION_${s.closed}`);
      const ran = activitiesRun(history);
      for (const activity of s.ran) assert.ok(ran.includes(activity), `${activity} in: ${ran.join(', ')}`);
      for (const event of s.events) assert.ok(events.includes(event), `${event} in: ${events.join(', ')}`);
    });

  void it('WHEN every history is replayed against the current workflow code THEN none hits non-determinism', async () => {
    const results = await replay({ workflowBundle: await workflowBundle() }, histories);

    assert.equal(results.length, histories.length);
    const broken = results
      .filter((r) => r.error !== undefined)
      .map((r) => `${r.workflowId}: ${String(r.error)}`);
    assert.deepEqual(broken, []);
  });

  void it('GIVEN a workflow edited to create the image before stopping WHEN a stop-mode history is replayed against it THEN replay fails with a DeterminismViolationError', async () => {
    const stop = histories.filter((h) => h.name === 'image-from-instance-stop');
    assert.equal(stop.length, 1);

    const [result] = await replay({ workflowsPath: require.resolve('./fixtures/create-before-stop') }, stop);

    assert.ok(result?.error instanceof DeterminismViolationError, `got ${String(result?.error)}`);
    assert.match(result.error.message, /Nondeterminism error/);
  });
});
