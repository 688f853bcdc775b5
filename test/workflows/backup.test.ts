/**
 * backupInstances on the time-skipping server with stub activities acting on the fleet model:
 * instances chosen by id and by tag, imaged in reboot mode, copied to another region, old backups
 * retired per instance in both regions; one instance failing leaves the others backed up (and its
 * own old backups alone); a run that starts after its maintenance window images nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { BackupResult } from '../../workflows/contracts';
import { FailureType, MANAGED_BY_VALUE, TAG } from '../../workflows/contracts';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv } from '../support/temporal';
import { BACKUP, COPY_REGION, Fleet, HERE, REGION, backupInput, goldenActivities } from './golden-stubs';
import {
  ActivityLog,
  RUN_TIMEOUT,
  assertWorkflowFailure,
  blockingUntilCancelled,
  cancelledWhileBlocked,
  injectedFailure,
  recorded,
  workflowEnv,
} from './harness';
import { runLogged, runTo } from './run-helpers';

const env = workflowEnv(timeSkippingEnv);

const A = 'i-0a0a0a0a0a0a0a0a0';
const B = 'i-0c0c0c0c0c0c0c0c0'; // what the stub's findInstancesByTags answers

/** A backup run of `input` on a fresh worker serving `activities`, to its end. */
function runBackup(activities: Activities, input: unknown) {
  return runTo(env, BACKUP, activities, input);
}

function seedBackups(fleet: Fleet, instanceId: string, n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) =>
      fleet.add(HERE, {
        name: `db-nightly-${instanceId}-old-${i}`,
        creationDate: `2026-01-0${i + 1}T02:00:00.000Z`,
        tags: {
          [TAG.managedBy]: MANAGED_BY_VALUE,
          [TAG.backupPlan]: 'db-nightly',
          [TAG.sourceInstance]: instanceId,
        },
      }).imageId,
  );
}

/** A fleet holding `n` old backups of `instanceId`, oldest first. */
function fleetWithBackups(instanceId: string, n: number): { fleet: Fleet; backups: string[] } {
  const fleet = new Fleet();
  return { fleet, backups: seedBackups(fleet, instanceId, n) };
}

describe('backupInstances', () => {
  it(
    'GIVEN one instance by id, one by tag, three older backups of the first WHEN backed up in reboot mode with a copy and keep 2 THEN both are imaged (rebooting), copied, tagged, and the two oldest backups retired',
    RUN_TIMEOUT,
    async () => {
      const {
        fleet,
        backups: [oldest, older, old],
      } = fleetWithBackups(A, 3);
      const log = new ActivityLog();

      const outcome = await runBackup(
        recorded(log, goldenActivities(fleet)),
        backupInput({ selector: { tags: { backup: 'nightly' } }, copyTo: { region: COPY_REGION } }),
      );
      await saveHistory(outcome, 'backup-instances-reboot-copy-retain');

      assert.ok(outcome.ok, outcome.ok ? '' : String(outcome.error));
      const r = outcome.result;
      assert.deepEqual(
        r.instances.map((o) => [o.instanceId, o.status]),
        [
          [A, 'backed-up'],
          [B, 'backed-up'],
        ],
      );
      // reboot mode: EC2 reboots the instance during CreateImage; nothing is stopped.
      assert.deepEqual(
        log.inputs('createImage').map((i) => i.noReboot),
        [false, false],
      );
      assert.equal(log.count('stopInstance'), 0);
      for (const o of r.instances) {
        const image = fleet.get(o.imageId ?? '');
        assert.equal(image.tags[TAG.backupPlan], 'db-nightly');
        assert.equal(image.tags[TAG.sourceInstance], o.instanceId);
        assert.equal(image.name, `db-nightly-${o.instanceId}-2026.01.15-030000`);
        assert.equal(fleet.get(o.copy?.imageId ?? '').region, COPY_REGION);
        assert.equal(fleet.get(o.copy?.imageId ?? '').tags[TAG.backupPlan], 'db-nightly');
      }
      const deregistered = r.retention.actions.filter((a) => a.action === 'deregister').map((a) => a.imageId);
      assert.deepEqual(deregistered.sort(), [oldest, older].sort());
      assert.ok(fleet.images.has(old ?? ''), 'the 2nd newest backup of A is kept');
      assert.ok(!fleet.images.has(oldest ?? '') && !fleet.images.has(older ?? ''));
    },
  );

  it(
    'GIVEN the second instance fails to image WHEN backed up THEN the first is backed up and retired as usual, the second keeps its old backups, and the run fails BackupIncomplete naming it',
    RUN_TIMEOUT,
    async () => {
      const { fleet, backups: bOld } = fleetWithBackups(B, 3);
      const base = goldenActivities(fleet);
      const activities: Activities = {
        ...base,
        createImage: (input) => {
          if (input.instanceId === B) throw injectedFailure('createImage', FailureType.AwsLimitExceeded);
          return base.createImage(input);
        },
      };

      const outcome = await runBackup(
        activities,
        backupInput({ instanceIds: [A, B], retention: { keep: 1 } }),
      );
      await saveHistory(outcome, 'backup-instances-incomplete');

      assert.ok(!outcome.ok);
      const failure = assertWorkflowFailure(outcome.error, FailureType.BackupIncomplete);
      assert.match(failure.message, new RegExp(`${B} \\(failed`));
      const [result] = failure.details as [BackupResult];
      assert.deepEqual(
        result.instances.map((o) => [o.instanceId, o.status]),
        [
          [A, 'backed-up'],
          [B, 'failed'],
        ],
      );
      for (const id of bOld)
        assert.ok(fleet.images.has(id), 'no backup of B is retired after its backup failed');
      assert.ok(result.retention.actions.every((a) => a.region === REGION));
    },
  );

  it(
    'GIVEN an instance being imaged WHEN the backup run is cancelled THEN its child deletes the new image, no old backup is retired, and the run ends cancelled',
    RUN_TIMEOUT,
    async () => {
      const { fleet, backups: seeded } = fleetWithBackups(A, 3);
      const log = new ActivityLog();
      const wait = blockingUntilCancelled();
      const activities: Activities = { ...goldenActivities(fleet), waitForImageAvailable: wait.fn };

      const outcome = await cancelledWhileBlocked<BackupResult>(
        env,
        recorded(log, activities),
        wait,
        (taskQueue) => BACKUP.start(env, taskQueue, backupInput()),
        { queuePrefix: BACKUP.queuePrefix },
      );
      await saveHistory(outcome, 'backup-instances-cancelled');

      assert.ok(!outcome.ok);
      assert.ok(
        outcome.error instanceof WorkflowFailedError && outcome.error.cause instanceof CancelledFailure,
        String(outcome.error),
      );
      assert.deepEqual(
        [...fleet.images.keys()].sort(),
        [...seeded].sort(),
        'the new image deleted, old ones kept',
      );
      assert.equal(log.count('deleteImage'), 1);
      assert.equal(log.count('retireImage'), 0);
      assert.equal(outcome.progress.phase, 'cancelled');
    },
  );

  it(
    'GIVEN a run starting after its maintenance window WHEN it runs THEN no instance is imaged and the run says why',
    RUN_TIMEOUT,
    async () => {
      const { outcome, log } = await runLogged(
        env,
        BACKUP,
        goldenActivities(new Fleet()),
        backupInput({ scheduledTime: '2026-01-01T01:00:00.000Z', windowSeconds: 3600, mode: 'stop' }),
      );
      await saveHistory(outcome, 'backup-instances-outside-window');
      assert.ok(!outcome.ok);
      const failure = assertWorkflowFailure(outcome.error, FailureType.BackupIncomplete);
      assert.match(failure.message, /outside the maintenance window/);
      assert.equal(log.count('createImage'), 0);
      assert.equal(log.count('stopInstance'), 0);
    },
  );
});

describe('backupInstances: retirement EC2 holds back', () => {
  it(
    'GIVEN an old backup shared with another account and one under a deregistration-protection cooldown WHEN retired THEN the first is kept naming the account, the second reported "retire after", and a later run retires it',
    RUN_TIMEOUT,
    async () => {
      const {
        fleet,
        backups: [oldest, older],
      } = fleetWithBackups(A, 3);
      const retireAfter = '2026-01-16T03:00:00.000Z';
      let cooling = true;
      const base = goldenActivities(fleet);
      const activities: Activities = {
        ...base,
        retireImage: (input) => {
          if (input.imageId === oldest && input.retireShared !== true)
            return Promise.resolve({
              imageId: input.imageId,
              deregistered: false,
              deletedSnapshotIds: [],
              sharedWith: ['444455556666'],
            });
          if (input.imageId === older && cooling)
            return Promise.resolve({
              imageId: input.imageId,
              deregistered: false,
              deletedSnapshotIds: [],
              retireAfter,
            });
          return base.retireImage(input);
        },
      };

      const first = await runBackup(activities, backupInput());

      assert.ok(first.ok, first.ok ? '' : String(first.error));
      const byImage = new Map(first.result.retention.actions.map((a) => [a.imageId, a]));
      const shared = byImage.get(oldest ?? '');
      assert.equal(shared?.action, 'keep');
      assert.equal(shared?.outcome, 'skipped');
      assert.deepEqual(shared?.sharedWith, ['444455556666']);
      assert.match(shared?.reason ?? '', /shared with 444455556666, who may still launch it: kept/);
      const held = byImage.get(older ?? '');
      assert.equal(held?.action, 'deregister');
      assert.equal(held?.outcome, 'skipped');
      assert.equal(held?.retireAfter, retireAfter);
      assert.match(held?.reason ?? '', new RegExp(`retire after that`));
      assert.equal(first.result.retention.failures, 0, 'held back is not a failure');
      assert.ok(fleet.images.has(oldest ?? '') && fleet.images.has(older ?? ''));

      cooling = false;
      const later = await runBackup(activities, backupInput({ scheduledTime: '2026-01-17T03:00:00.000Z' }));

      assert.ok(later.ok, later.ok ? '' : String(later.error));
      const done = later.result.retention.actions.find((a) => a.imageId === older);
      assert.deepEqual([done?.action, done?.outcome], ['deregister', 'done']);
      assert.ok(!fleet.images.has(older ?? ''), 'the later run retired it');
    },
  );
});
