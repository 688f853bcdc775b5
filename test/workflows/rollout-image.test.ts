/**
 * rolloutImage on the time-skipping server with stub activities acting on a model of one region's
 * launch template, Auto Scaling groups and alarms (test/workflows/rollout-stubs.ts): a happy path
 * over two waves (canary, bake, then the rest); an alarm during a bake rolling back every target,
 * newest first; a failed refresh; a cancellation in the middle of a wave; a worker restart during a
 * refresh that resumes without a second refresh; the canary naming a group the targets lack.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { RolloutImageResult } from '../../workflows/contracts';
import { FailureType, rolloutProgressQuery } from '../../workflows/contracts';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv } from '../support/temporal';
import {
  LT_ID,
  NEW_AMI,
  OLD_AMI,
  ROLLOUT,
  RolloutFleet,
  rolloutActivities,
  rolloutInput,
  rolloutOutcome,
  startRollout,
} from './rollout-stubs';
import {
  ActivityLog,
  RUN_TIMEOUT,
  assertWorkflowFailure,
  blockingUntilCancelled,
  cancelledWhileBlocked,
  eventually,
  recorded,
  workflowEnv,
} from './harness';
import { handedOverLogged, rowsOf, runLogged } from './run-helpers';

const env = workflowEnv(timeSkippingEnv);

/**
 * A rollout of `input` over the two-group model (`prepare` makes it misbehave): the outcome, the
 * model afterwards, and the calls.
 */
async function rollOut(input: unknown = rolloutInput(), prepare: (fleet: RolloutFleet) => void = () => {}) {
  const fleet = new RolloutFleet(['web-a', 'web-b']);
  prepare(fleet);
  return { ...(await runLogged(env, ROLLOUT, rolloutActivities(fleet), input)), fleet };
}

/** What the tests compare of each refresh in a result. */
const REFRESH_ROW = [
  'autoScalingGroupName',
  'status',
  'percentageComplete',
  'previousVersion',
  'newVersion',
] as const;
/** One wave's refresh and bake, as the log records them. */
const WAVE = ['startInstanceRefresh', 'watchRolloutAlarms'];

/** The undo calls, in order, as `<activity> <resource>`. */
function undos(log: ActivityLog): string[] {
  return log.calls.flatMap((c) =>
    c.name === 'undoInstanceRefresh'
      ? [`undoInstanceRefresh ${c.input.autoScalingGroupName}`]
      : c.name === 'restoreLaunchTemplateDefault'
        ? [`restoreLaunchTemplateDefault ${c.input.launchTemplateId}`]
        : [],
  );
}

describe('rolloutImage', () => {
  it(
    'GIVEN a launch template and two groups with a canary WHEN the rollout runs with clean bakes THEN the canary is refreshed and baked before the second wave, the template default is the new version and both groups run the new image',
    RUN_TIMEOUT,
    async () => {
      const { outcome, log, fleet } = await rollOut();
      await saveHistory(outcome, 'rollout-image-two-waves');

      assert.ok(outcome.ok, `the run failed: ${outcome.ok ? '' : String(outcome.error)}`);
      const r = outcome.result;
      assert.deepEqual(
        r.waves.map((w) => [w.wave, w.groups, w.bakedSeconds]),
        [
          [1, ['eu-west-1/web-a'], 600],
          [2, ['eu-west-1/web-b'], 600],
        ],
      );
      assert.equal(fleet.template.defaultVersion, 2);
      assert.equal(fleet.template.versions.get(2)?.imageId, NEW_AMI);
      assert.deepEqual(r.launchTemplates, [
        {
          region: 'eu-west-1',
          launchTemplateId: LT_ID,
          launchTemplateName: 'web',
          previousDefaultVersion: 1,
          newVersion: 2,
          madeDefault: true,
          wave: 1,
        },
      ]);
      assert.equal(fleet.imageOf('web-a'), NEW_AMI);
      assert.equal(fleet.imageOf('web-b'), NEW_AMI);
      assert.deepEqual(rowsOf(r.refreshes, REFRESH_ROW), [
        ['web-a', 'Successful', 100, '$Default', 2],
        ['web-b', 'Successful', 100, '$Default', 2],
      ]);
      // The canary's refresh and bake come before anything of the second wave.
      const order = log.names().filter((n) => n === 'startInstanceRefresh' || n === 'watchRolloutAlarms');
      assert.deepEqual(order, [...WAVE, ...WAVE]);
      assert.deepEqual(
        log.inputs('startInstanceRefresh').map((i) => i.autoScalingGroupName),
        ['web-a', 'web-b'],
      );
      assert.deepEqual(undos(log), []);
      assert.equal(outcome.progress.outcome, 'succeeded');
      const events = outcome.history.events?.length ?? 0;
      console.log(`two-wave rollout history: ${events} events`);
      assert.ok(events < 150, `a two-wave rollout took ${events} history events`);
    },
  );

  it(
    'GIVEN a rollout in its second wave WHEN an alarm fires during that bake THEN every target is rolled back newest first (web-b, web-a, then the template default) and the failure names what was restored',
    RUN_TIMEOUT,
    async () => {
      const { outcome, log, fleet } = await rollOut(rolloutInput(), (f) => {
        f.alarmInBake = { bake: 2, alarm: 'web-5xx' };
      });
      await saveHistory(outcome, 'rollout-image-alarm-rollback');

      assert.ok(!outcome.ok);
      const failure = assertWorkflowFailure(outcome.error, FailureType.RolloutAlarm);
      assert.match(failure.message, /wave 2\/2: alarm during the bake: web-5xx \(eu-west-1\): ALARM/);
      assert.match(
        failure.message,
        /restored: web-b .*; web-a .*; lt-0aaaaaaaaaaaaaaa1 \(eu-west-1\): default version 1 again \(was 2\)/,
      );
      assert.deepEqual(undos(log), [
        'undoInstanceRefresh web-b',
        'undoInstanceRefresh web-a',
        `restoreLaunchTemplateDefault ${LT_ID}`,
      ]);
      assert.equal(fleet.template.defaultVersion, 1);
      assert.equal(fleet.imageOf('web-a'), OLD_AMI);
      assert.equal(fleet.imageOf('web-b'), OLD_AMI);
      assert.deepEqual(
        outcome.progress.compensations.map((c) => [c.name, c.state]),
        [
          ['undo instance refresh of web-b', 'done'],
          ['undo instance refresh of web-a', 'done'],
          [`restore default version of ${LT_ID}`, 'done'],
        ],
      );
    },
  );

  it(
    'GIVEN the second wave WHEN its refresh ends Failed THEN the run fails RefreshFailed and both groups and the template are restored',
    RUN_TIMEOUT,
    async () => {
      const { outcome, log, fleet } = await rollOut(rolloutInput(), (f) => {
        f.failGroup = 'web-b';
      });

      assert.ok(!outcome.ok);
      const failure = assertWorkflowFailure(outcome.error, FailureType.RefreshFailed);
      assert.match(failure.message, /instance refresh refresh-2 of 'web-b' \(eu-west-1\) ended Failed/);
      assert.deepEqual(undos(log), [
        'undoInstanceRefresh web-b',
        'undoInstanceRefresh web-a',
        `restoreLaunchTemplateDefault ${LT_ID}`,
      ]);
      assert.equal(log.count('watchRolloutAlarms'), 1, 'only the canary baked');
      assert.equal(fleet.template.defaultVersion, 1);
    },
  );

  it(
    'GIVEN a canary refresh in progress WHEN the run is cancelled THEN the refresh is rolled back, the default restored, and the run ends cancelled',
    RUN_TIMEOUT,
    async () => {
      const fleet = new RolloutFleet(['web-a', 'web-b']);
      const log = new ActivityLog();
      const wait = blockingUntilCancelled();
      const activities = recorded(log, { ...rolloutActivities(fleet), waitForInstanceRefresh: wait.fn });

      // Cancelled once the refresh shows in the progress query (and the blocked wait has seen it).
      const outcome = await cancelledWhileBlocked<RolloutImageResult>(
        env,
        activities,
        wait,
        (taskQueue) => startRollout(env, taskQueue, rolloutInput()),
        {
          queuePrefix: 'rollout-cancel',
          beforeCancel: async (handle) => {
            const live = await eventually('the refresh in the progress query', async () => {
              const p = await handle.query(rolloutProgressQuery);
              return p.refreshes[0]?.instanceRefreshId ? p : undefined;
            });
            assert.equal(live.phase, 'rolling');
          },
        },
      );
      await saveHistory(outcome, 'rollout-image-cancelled');

      assert.ok(!outcome.ok);
      assert.ok(
        outcome.error instanceof WorkflowFailedError && outcome.error.cause instanceof CancelledFailure,
      );
      assert.deepEqual(undos(log), ['undoInstanceRefresh web-a', `restoreLaunchTemplateDefault ${LT_ID}`]);
      assert.equal(log.inputs('undoInstanceRefresh')[0]?.instanceRefreshId, 'refresh-1');
      assert.equal(fleet.group('web-a').refreshes[0]?.status, 'RollbackSuccessful');
      assert.equal(log.count('startInstanceRefresh'), 1, 'web-b was never started');
      assert.equal(outcome.progress.outcome, 'cancelled');
    },
  );

  it(
    'GIVEN a refresh in progress WHEN its worker shuts down and another takes over THEN the rollout completes there without a second refresh or a second launch-template version',
    RUN_TIMEOUT,
    async () => {
      const fleet = new RolloutFleet(['web-a', 'web-b']);
      // The first worker shuts down while it waits on the canary refresh; a second takes over.
      const { outcome, second } = await handedOverLogged(env, {
        queuePrefix: 'rollout-resume',
        activities: rolloutActivities(fleet),
        blocked: 'waitForInstanceRefresh',
        start: (tq) => startRollout(env, tq, rolloutInput()),
        then: rolloutOutcome,
        identities: ['first worker', 'second worker'],
      });

      assert.ok(outcome.ok, `the run failed: ${outcome.ok ? '' : String(outcome.error)}`);
      assert.equal(fleet.group('web-a').refreshes.length, 1, 'one refresh of the canary');
      assert.equal(fleet.group('web-b').refreshes.length, 1);
      assert.equal(fleet.template.versions.size, 2, 'one new version');
      assert.equal(
        second.inputs('startInstanceRefresh').filter((i) => i.autoScalingGroupName === 'web-a').length,
        0,
      );
      assert.equal(second.inputs('waitForInstanceRefresh')[0]?.instanceRefreshId, 'refresh-1');
      assert.equal(fleet.imageOf('web-a'), NEW_AMI);
    },
  );

  it(
    'GIVEN a canary naming a group the targets do not select WHEN the rollout starts THEN it fails InvalidInput naming waves.canary.group and changes nothing',
    RUN_TIMEOUT,
    async () => {
      const { outcome, log } = await rollOut(rolloutInput({ waves: { canary: { group: 'web-z' } } }));

      const failure = assertWorkflowFailure(outcome.ok ? undefined : outcome.error, FailureType.InvalidInput);
      assert.match(
        failure.message,
        /waves\.canary\.group: 'web-z' is not one of the selected groups \(web-a, web-b\)/,
      );
      assert.deepEqual(log.names(), ['resolveRolloutTarget']);
    },
  );
});
