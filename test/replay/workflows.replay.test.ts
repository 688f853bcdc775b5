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
  ran?: string[];
  /** Event types the path must hold, e.g. an update or a cancellation request. */
  events?: string[];
}

const UPDATE = 'WORKFLOW_EXECUTION_UPDATE_COMPLETED';
const CANCEL = 'WORKFLOW_EXECUTION_CANCEL_REQUESTED';
const TIMER = 'TIMER_FIRED';

/** Every scenario recorded, by workflow type; the file is `<scenario>.json`. */
const RECORDED: Record<WorkflowType, Record<string, Scenario>> = {
  buildImage: {
    'build-image-e2e': {
      closed: 'COMPLETED',
      ran: ['launchBuildInstance', 'waitForCommand', 'tagBuildResource'],
    },
    'build-image-happy': {
      closed: 'COMPLETED',
      ran: ['sendBuildStep', 'waitForCommand', 'tagBuildResource'],
    },
    'build-image-ten-steps': { closed: 'COMPLETED', ran: ['sendBuildStep'] },
    'build-image-unchanged': { closed: 'COMPLETED', ran: ['findUnchangedImage'] },
    'build-image-resumed': { closed: 'COMPLETED', ran: ['waitForCommand'] },
    'build-image-step-failed': { closed: 'FAILED', ran: ['terminateBuildInstance'] },
    'build-image-builder-kept': {
      closed: 'FAILED',
      ran: ['tagBuildResource', 'terminateBuildInstance'],
      events: [TIMER],
    },
    'build-image-cancelled-during-command': {
      closed: 'CANCELED',
      ran: ['cancelCommand', 'terminateBuildInstance'],
      events: [CANCEL],
    },
  },
  waitLease: {
    'wait-lease-ended': { closed: 'COMPLETED' },
    'wait-lease-lost': { closed: 'COMPLETED', ran: ['releaseWaits'] },
  },
  imageFromInstance: {
    'image-from-instance-stop': { closed: 'COMPLETED', ran: ['stopInstance', 'startInstance'] },
    // Since 'amiflow-async-image-wait': the wait handed off once, retried without an attempt limit.
    'image-from-instance-async-wait': { closed: 'COMPLETED', ran: ['waitForImageAvailable'] },
    'image-from-instance-reboot': { closed: 'COMPLETED' },
    'image-from-instance-no-reboot': { closed: 'COMPLETED' },
    'image-from-instance-stopped-instance': { closed: 'COMPLETED' },
    'image-from-instance-name-taken': { closed: 'FAILED' },
    'image-from-instance-image-failed': { closed: 'FAILED', ran: ['deleteImage', 'startInstance'] },
    'image-from-instance-cancelled': { closed: 'CANCELED', ran: ['deleteImage'], events: [CANCEL] },
    'image-from-instance-cancelled-undo-failed': {
      closed: 'FAILED',
      ran: ['deleteImage'],
      events: [CANCEL],
    },
    'image-from-instance-cancelled-during-stop': {
      closed: 'CANCELED',
      ran: ['startInstance'],
      events: [CANCEL],
    },
    'image-from-instance-cancelled-during-create': {
      closed: 'CANCELED',
      ran: ['deleteImage'],
      events: [CANCEL],
    },
    // Mode app-consistent (issue 15): quiesce over SSM, CreateImage, thaw; and the thaw on every other path.
    'image-from-instance-app-consistent': {
      closed: 'COMPLETED',
      ran: ['sendQuiesceCommand', 'waitForCommand', 'sendThawCommand'],
    },
    'image-from-instance-app-consistent-pre-failed': { closed: 'FAILED', ran: ['sendThawCommand'] },
    'image-from-instance-app-consistent-fell-back': {
      closed: 'COMPLETED',
      ran: ['sendQuiesceCommand', 'sendThawCommand'],
    },
    'image-from-instance-app-consistent-cancelled-frozen': {
      closed: 'CANCELED',
      ran: ['cancelCommand', 'sendThawCommand'],
      events: [CANCEL],
    },
    'image-from-instance-app-consistent-resumed-thaw': { closed: 'COMPLETED', ran: ['sendThawCommand'] },
  },
  shareImage: {
    'share-image-expiry-withdrawn': {
      closed: 'COMPLETED',
      ran: ['removeLaunchPermissions', 'revokeKeyGrants'],
      events: [TIMER],
    },
    'share-image-expiry-extended-by-update': { closed: 'COMPLETED', events: [UPDATE, TIMER] },
    'share-image-expiry-ended-by-update': {
      closed: 'COMPLETED',
      ran: ['removeLaunchPermissions'],
      events: [UPDATE],
    },
    'share-image-reencrypted': { closed: 'COMPLETED', ran: ['copyImage', 'addLaunchPermissions'] },
    // Through the image's share ledger (patched('share-ledger')): held, then released at expiry.
    'share-image-ledger-expiry-kept': { closed: 'COMPLETED', ran: ['requestShareLedger'], events: [TIMER] },
    'share-image-launch-permissions-failed': {
      closed: 'FAILED',
      ran: ['removeLaunchPermissions', 'removeSnapshotPermissions', 'revokeKeyGrants'],
    },
    'share-image-launch-permission-activity-failed': {
      closed: 'FAILED',
      ran: [
        'addLaunchPermissions',
        'removeLaunchPermissions',
        'removeSnapshotPermissions',
        'revokeKeyGrants',
      ],
    },
    'share-image-aws-managed-key-refused': { closed: 'FAILED' },
    'share-image-own-account-refused': { closed: 'FAILED' },
    'share-image-cancelled': {
      closed: 'CANCELED',
      ran: ['removeLaunchPermissions', 'revokeKeyGrants'],
      events: [CANCEL],
    },
    // e2e-*: recorded from the e2e tier (dev server + moto + the real worker and activities).
    'e2e-share-image-open-ended': { closed: 'COMPLETED', ran: ['addLaunchPermissions'] },
    'e2e-share-image-ended-by-update': {
      closed: 'COMPLETED',
      ran: ['removeLaunchPermissions'],
      events: [UPDATE],
    },
  },
  unshareImage: {
    'unshare-image-ledger-kept': { closed: 'COMPLETED', ran: ['readShareRun', 'requestShareLedger'] },
    'unshare-image-ledger-last-removes': { closed: 'COMPLETED', ran: ['readShareRun', 'requestShareLedger'] },
    'unshare-image': {
      closed: 'COMPLETED',
      ran: ['removeLaunchPermissions', 'removeSnapshotPermissions', 'revokeKeyGrants'],
    },
    'e2e-unshare-image': {
      closed: 'COMPLETED',
      ran: ['removeLaunchPermissions', 'removeSnapshotPermissions'],
    },
  },
  // An entity workflow: open while shares hold permissions, continued as new past its history limit,
  // ended after a day with no holder and no request.
  shareLedger: {
    'share-ledger-overlapping-holds-continued': {
      closed: 'CONTINUED_AS_NEW',
      ran: ['describeImageForSharing', 'addLaunchPermissions'],
    },
    // The last run after continuing as new: its day idle with no holder is the timer
    'share-ledger-released-idle-end': { closed: 'COMPLETED', events: [TIMER] },
  },
  copyImage: {
    'copy-image-five-destinations': { closed: 'COMPLETED', ran: ['copyImage', 'removeLaunchPermissions'] },
    'copy-image-one-per-region': { closed: 'COMPLETED', ran: ['copyImage'] },
    'copy-image-resumed-on-another-worker': { closed: 'COMPLETED', ran: ['copyImage'] },
    'copy-image-keep-partial': { closed: 'COMPLETED', ran: ['deleteImage'] },
    'copy-image-key-missing': { closed: 'FAILED', ran: ['checkKmsKey'] },
    'copy-image-rollback': {
      closed: 'FAILED',
      ran: ['deleteImage', 'removeLaunchPermissions'],
      events: ['ACTIVITY_TASK_CANCEL_REQUESTED'],
    },
    'copy-image-cancelled': {
      closed: 'CANCELED',
      ran: ['deleteImage', 'removeLaunchPermissions'],
      events: [CANCEL],
    },
    'e2e-copy-image-two-regions': { closed: 'COMPLETED', ran: ['copyImage', 'tagSnapshots'] },
    'e2e-copy-image-rollback': { closed: 'FAILED', ran: ['deleteImage'] },
  },
  migrateInstance: {
    'migrate-instance-terminate-source': {
      closed: 'COMPLETED',
      ran: ['launchInstance', 'moveElasticIp', 'terminateSourceInstance'],
    },
    'migrate-instance-keep-source': { closed: 'COMPLETED', ran: ['launchInstance', 'deleteImage'] },
    'migrate-instance-stopped-source': { closed: 'COMPLETED', ran: ['launchInstance', 'stopInstance'] },
    'migrate-instance-resumed-on-another-worker': { closed: 'COMPLETED', ran: ['terminateSourceInstance'] },
    'migrate-instance-image-delete-failed': { closed: 'COMPLETED', ran: ['deleteImage'] },
    'migrate-instance-bad-input': { closed: 'FAILED' },
    'migrate-instance-failed-planMigration': { closed: 'FAILED' },
    'migrate-instance-failed-checkImageName': { closed: 'FAILED' },
    'migrate-instance-failed-stopInstance': { closed: 'FAILED', ran: ['startInstance'] },
    'migrate-instance-failed-stopInstance-stopped-source': {
      closed: 'FAILED',
      ran: ['terminateLaunchedInstance', 'deleteImage'],
    },
    'migrate-instance-failed-createImage': { closed: 'FAILED', ran: ['startInstance'] },
    'migrate-instance-failed-waitForImageAvailable': { closed: 'FAILED', ran: ['startInstance'] },
    'migrate-instance-failed-launchInstance': {
      closed: 'FAILED',
      ran: ['terminateLaunchedInstance', 'deleteImage', 'startInstance'],
    },
    'migrate-instance-failed-waitForInstanceReady': {
      closed: 'FAILED',
      ran: ['terminateLaunchedInstance', 'deleteImage', 'startInstance'],
    },
    'migrate-instance-failed-copyVolumeTags': {
      closed: 'FAILED',
      ran: ['terminateLaunchedInstance', 'deleteImage', 'startInstance'],
    },
    'migrate-instance-failed-moveElasticIp': {
      closed: 'FAILED',
      ran: ['terminateLaunchedInstance', 'deleteImage', 'startInstance'],
    },
    'migrate-instance-failed-terminateSourceInstance': { closed: 'FAILED', ran: ['terminateSourceInstance'] },
    'migrate-instance-cancelled-during-checks': {
      closed: 'CANCELED',
      ran: ['terminateLaunchedInstance', 'deleteImage', 'startInstance'],
      events: [CANCEL],
    },
    'migrate-instance-cancelled-during-image': {
      closed: 'CANCELED',
      ran: ['startInstance'],
      events: [CANCEL, 'CHILD_WORKFLOW_EXECUTION_CANCELED'],
    },
    'migrate-instance-cancel-after-commit': {
      closed: 'COMPLETED',
      ran: ['terminateSourceInstance'],
      events: [CANCEL],
    },
    'e2e-migrate-instance-terminate-move-eip': {
      closed: 'COMPLETED',
      ran: ['moveElasticIp', 'terminateSourceInstance'],
    },
    'e2e-migrate-instance-stop-keep-image': { closed: 'COMPLETED', ran: ['launchInstance', 'stopInstance'] },
    'e2e-migrate-instance-elastic-ip-unhandled': { closed: 'FAILED', ran: ['planMigration'] },
  },
  goldenImage: {
    'golden-image-rollout-stage': { closed: 'COMPLETED' },
    'golden-image-recipe-source': {
      closed: 'COMPLETED',
      ran: ['publishImageParameter', 'protectImage'],
      events: [UPDATE, 'CHILD_WORKFLOW_EXECUTION_COMPLETED'],
    },
    'golden-image-recipe-build-failed': { closed: 'FAILED', events: ['CHILD_WORKFLOW_EXECUTION_FAILED'] },
    'golden-image-approved': {
      closed: 'COMPLETED',
      ran: ['publishImageParameter', 'protectImage'],
      events: [UPDATE],
    },
    'golden-image-no-approval-gate': { closed: 'COMPLETED', ran: ['publishImageParameter'] },
    'golden-image-retention': { closed: 'COMPLETED', ran: ['deprecateImage', 'retireImage'] },
    'golden-image-semver': { closed: 'COMPLETED', ran: ['deprecateImage'] },
    'golden-image-rejected': { closed: 'FAILED', ran: ['deleteImage'], events: [UPDATE] },
    'golden-image-approval-timed-out': { closed: 'FAILED', ran: ['deleteImage'], events: [TIMER] },
    'golden-image-validation-failed-checkConsoleHealth': {
      closed: 'FAILED',
      ran: ['terminateLaunchedInstance', 'deleteImage'],
    },
    'golden-image-validation-failed-waitForInstanceReady': {
      closed: 'FAILED',
      ran: ['terminateLaunchedInstance', 'deleteImage'],
    },
    'golden-image-validation-failed-launchInstance': {
      closed: 'FAILED',
      ran: ['launchInstance', 'terminateLaunchedInstance', 'deleteImage'],
    },
    'golden-image-publish-failed': {
      closed: 'FAILED',
      ran: ['restoreImageParameter', 'removeLaunchPermissions', 'deleteImage'],
    },
    'golden-image-bad-input': { closed: 'FAILED' },
    'golden-image-cancelled': { closed: 'CANCELED', ran: ['deleteImage'], events: [CANCEL] },
    'e2e-golden-image-approved': { closed: 'COMPLETED', ran: ['publishImageParameter'], events: [UPDATE] },
    'e2e-golden-image-approved-retiring-first': {
      closed: 'COMPLETED',
      ran: ['publishImageParameter'],
      events: [UPDATE],
    },
  },
  backupInstances: {
    'backup-instances-reboot-copy-retain': {
      closed: 'COMPLETED',
      ran: ['retireImage'],
      events: ['CHILD_WORKFLOW_EXECUTION_COMPLETED'],
    },
    'backup-instances-incomplete': { closed: 'FAILED', events: ['CHILD_WORKFLOW_EXECUTION_FAILED'] },
    'backup-instances-outside-window': { closed: 'FAILED' },
    'backup-instances-cancelled': {
      closed: 'CANCELED',
      events: [CANCEL, 'CHILD_WORKFLOW_EXECUTION_CANCELED'],
    },
  },
  approvedImages: {
    'approved-images-merged': { closed: 'COMPLETED', ran: ['listApprovedImages'] },
  },
  complianceScan: {
    'compliance-scan-region-failed': { closed: 'COMPLETED', ran: ['scanInstances'] },
    'compliance-scan-queried-midway': { closed: 'COMPLETED', ran: ['scanInstances'] },
    'compliance-scan-catalogue-unreadable': { closed: 'COMPLETED', ran: ['listApprovedImages'] },
    'compliance-scan-bad-input': { closed: 'FAILED' },
    'compliance-scan-cancelled': { closed: 'CANCELED', ran: ['scanInstances'], events: [CANCEL] },
    'e2e-compliance-scan': { closed: 'COMPLETED', ran: ['scanInstances'] },
  },
  rolloutImage: {
    'rollout-image-two-waves': {
      closed: 'COMPLETED',
      ran: ['startInstanceRefresh', 'waitForInstanceRefresh', 'watchRolloutAlarms'],
      events: [TIMER],
    },
    'rollout-image-alarm-rollback': {
      closed: 'FAILED',
      ran: ['undoInstanceRefresh', 'restoreLaunchTemplateDefault'],
    },
    'rollout-image-cancelled': {
      closed: 'CANCELED',
      ran: ['undoInstanceRefresh', 'restoreLaunchTemplateDefault'],
      events: [CANCEL],
    },
  },
  enforceAllowedAmis: {
    'enforce-allowed-amis-audit-enable-off': {
      closed: 'COMPLETED',
      ran: ['setAllowedImagesSettings'],
      events: [UPDATE],
    },
    'enforce-allowed-amis-audit-first-refused': { closed: 'COMPLETED', events: [UPDATE] },
    'enforce-allowed-amis-declarative-policy': {
      closed: 'COMPLETED',
      ran: ['setAllowedImagesSettings'],
      events: [UPDATE],
    },
    'enforce-allowed-amis-changed-outside': {
      closed: 'COMPLETED',
      ran: ['setAllowedImagesSettings'],
      events: [UPDATE],
    },
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
    void it(`GIVEN ${s.name} THEN it is a ${s.type} run that closed ${s.closed}, holding ${[...(s.ran ?? []), ...(s.events ?? [])].join(', ') || 'its start'}`, () => {
      const history = byName(s.name);
      assert.ok(history, `${s.name}.json is missing`);
      const events = eventTypes(history);
      assert.equal(events[0], 'WORKFLOW_EXECUTION_STARTED');
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      assert.equal(started?.workflowType?.name, s.type);
      assert.equal(events.at(-1), `WORKFLOW_EXECUTION_${s.closed}`);
      const ran = activitiesRun(history);
      for (const activity of s.ran ?? [])
        assert.ok(ran.includes(activity), `${activity} in: ${ran.join(', ')}`);
      for (const event of s.events ?? [])
        assert.ok(events.includes(event), `${event} in: ${events.join(', ')}`);
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
