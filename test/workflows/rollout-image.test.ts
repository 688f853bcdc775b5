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
import { FailureType, rolloutProgressQuery } from '../../workflows/contracts';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv, uniqueTaskQueue } from '../support/temporal';
import {
  LT_ID,
  NEW_AMI,
  OLD_AMI,
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
  eventually,
  recorded,
  startWorker,
  withinBound,
} from './stub-activities';
import { workflowEnv } from './harness';

const env = workflowEnv(timeSkippingEnv);

async function run(fleet: RolloutFleet, log: ActivityLog, input: unknown) {
  const taskQueue = uniqueTaskQueue('rollout');
  const worker = await startWorker(env, taskQueue, recorded(log, rolloutActivities(fleet)));
  return worker.runUntil(
    withinBound(startRollout(env, taskQueue, input).then(rolloutOutcome), 'the rollout'),
  );
}

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
      const fleet = new RolloutFleet(['web-a', 'web-b']);
      const log = new ActivityLog();

      const outcome = await run(fleet, log, rolloutInput());
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
      assert.deepEqual(
        r.refreshes.map((x) => [
          x.autoScalingGroupName,
          x.status,
          x.percentageComplete,
          x.previousVersion,
          x.newVersion,
        ]),
        [
          ['web-a', 'Successful', 100, '$Default', 2],
          ['web-b', 'Successful', 100, '$Default', 2],
        ],
      );
      // The canary's refresh and bake come before anything of the second wave.
      const order = log.names().filter((n) => n === 'startInstanceRefresh' || n === 'watchRolloutAlarms');
      assert.deepEqual(order, [
        'startInstanceRefresh',
        'watchRolloutAlarms',
        'startInstanceRefresh',
        'watchRolloutAlarms',
      ]);
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
      const fleet = new RolloutFleet(['web-a', 'web-b']);
      fleet.alarmInBake = { bake: 2, alarm: 'web-5xx' };
      const log = new ActivityLog();

      const outcome = await run(fleet, log, rolloutInput());
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
      const fleet = new RolloutFleet(['web-a', 'web-b']);
      fleet.failGroup = 'web-b';
      const log = new ActivityLog();

      const outcome = await run(fleet, log, rolloutInput());

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
      const taskQueue = uniqueTaskQueue('rollout-cancel');
      const worker = await startWorker(
        env,
        taskQueue,
        recorded(log, { ...rolloutActivities(fleet), waitForInstanceRefresh: wait.fn }),
      );

      const outcome = await worker.runUntil(
        withinBound(
          (async () => {
            const handle = await startRollout(env, taskQueue, rolloutInput());
            await wait.entered;
            const live = await eventually('the refresh in the progress query', async () => {
              const p = await handle.query(rolloutProgressQuery);
              return p.refreshes[0]?.instanceRefreshId ? p : undefined;
            });
            assert.equal(live.phase, 'rolling');
            await handle.cancel();
            return rolloutOutcome(handle);
          })(),
          'the cancelled rollout',
        ),
      );
      await saveHistory(outcome, 'rollout-image-cancelled');

      assert.ok(!outcome.ok);
      assert.ok(
        outcome.error instanceof WorkflowFailedError && outcome.error.cause instanceof CancelledFailure,
      );
      await wait.cancelled;
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
      const first = new ActivityLog();
      const second = new ActivityLog();
      const wait = blockingUntilCancelled();
      const taskQueue = uniqueTaskQueue('rollout-resume');
      const firstWorker = await startWorker(
        env,
        taskQueue,
        recorded(first, { ...rolloutActivities(fleet), waitForInstanceRefresh: wait.fn }),
        {
          identity: 'first worker',
          maxCachedWorkflows: 0,
        },
      );
      const firstRun = firstWorker.run();
      const handle = await startRollout(env, taskQueue, rolloutInput());
      await withinBound(wait.entered, 'the first worker waiting on the canary refresh');

      firstWorker.shutdown();
      await firstRun;
      await wait.cancelled;
      const secondWorker = await startWorker(env, taskQueue, recorded(second, rolloutActivities(fleet)), {
        identity: 'second worker',
      });
      const outcome = await secondWorker.runUntil(withinBound(rolloutOutcome(handle), 'the resumed rollout'));

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
      const fleet = new RolloutFleet(['web-a', 'web-b']);
      const log = new ActivityLog();

      const outcome = await run(fleet, log, rolloutInput({ waves: { canary: { group: 'web-z' } } }));

      const failure = assertWorkflowFailure(outcome.ok ? undefined : outcome.error, FailureType.InvalidInput);
      assert.match(
        failure.message,
        /waves\.canary\.group: 'web-z' is not one of the selected groups \(web-a, web-b\)/,
      );
      assert.deepEqual(log.names(), ['resolveRolloutTarget']);
    },
  );
});
