/**
 * imageFromInstance, happy paths: every consistency mode, on a running and on a stopped instance,
 * with stub activities. The exact activity calls and their key parameters, the result, the
 * progress query, and the shape of history that proves the instance restarts without waiting for
 * the image to be available.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsistencyMode } from '../../workflows/contracts';
import { DEFAULT_TIMEOUTS, MANAGED_BY_VALUE, TAG } from '../../workflows/contracts';
import { IMAGE_FROM_INSTANCE_STEPS } from '../../workflows/image-from-instance';
import { timeSkippingEnv } from '../support/temporal';
import {
  happyActivities,
  IMAGE_AS_IS,
  IMAGE_ID,
  imageInput,
  INSTANCE_ID,
  runLogged,
  SNAPSHOT_IDS,
  STOP_AND_IMAGE,
} from './stub-activities';
import { assertCalls, RUN_TIMEOUT, scheduledActivities, stepStates, succeeded, workflowEnv } from './harness';

const env = workflowEnv(timeSkippingEnv);

/**
 * The state of every step of a run that succeeded: done, but for the `skipped` ones. (The stop-mode
 * test below names every step itself, so a renamed step fails there.)
 */
function allDoneBut(...skipped: string[]): Record<string, string> {
  return Object.fromEntries(
    IMAGE_FROM_INSTANCE_STEPS.map((s) => [s, skipped.includes(s) ? 'skipped' : 'done']),
  );
}

describe('imageFromInstance happy path', () => {
  it(
    'GIVEN a running instance in stop mode WHEN imaged THEN it is stopped, imaged without reboot, started again, and left running',
    RUN_TIMEOUT,
    async () => {
      const input = imageInput({ mode: 'stop' });

      const { outcome, log } = await runLogged(
        env,
        happyActivities({ state: 'running', downtimeSeconds: 75 }),
        input,
      );

      const result = succeeded(outcome);
      assertCalls(log, [...STOP_AND_IMAGE, 'tagSnapshots']);
      const [create] = log.inputs('createImage');
      assert.equal(create?.noReboot, true, 'already stopped: CreateImage must not reboot');
      assert.equal(create?.imageName, input.imageName);
      assert.equal(create?.description, input.description);
      assert.equal(create?.instanceId, INSTANCE_ID);
      assert.deepEqual(create?.target, { region: 'eu-west-1' });
      const [stop] = log.inputs('stopInstance');
      const [start] = log.inputs('startInstance');
      assert.ok(stop && start && start.deadline >= stop.deadline, 'start is scheduled after the stop');
      assert.equal(log.inputs('waitForImageAvailable')[0]?.imageId, IMAGE_ID);
      assert.deepEqual(result, {
        ...result,
        imageId: IMAGE_ID,
        imageName: input.imageName,
        region: 'eu-west-1',
        snapshotIds: SNAPSHOT_IDS,
        instanceId: INSTANCE_ID,
        mode: 'stop',
        consistency: 'consistent',
        instanceInitialState: 'running',
        instanceFinalState: 'running',
        downtimeSeconds: 75,
      });
      assert.match(result.consistencyNote, /^consistent: the instance was stopped/);

      // The start goes out in the same workflow task as the wait: downtime excludes the snapshot copy.
      const scheduled = (outcome.history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes);
      const taskOf = (type: string) =>
        scheduled.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type)
          ?.activityTaskScheduledEventAttributes?.workflowTaskCompletedEventId;
      assert.ok(taskOf('startInstance') !== undefined);
      assert.equal(String(taskOf('startInstance')), String(taskOf('waitForImageAvailable')));
      // CreateImage is a normal activity since 'create-image-as-activity': the server records the
      // step before the call is sent (local activities are the reads and tags).
      assert.deepEqual(scheduledActivities(outcome.history), [
        'stopInstance',
        'createImage',
        'startInstance',
        'waitForImageAvailable',
      ]);

      assert.equal(outcome.progress.phase, 'succeeded');
      assert.deepEqual(stepStates(outcome.progress), {
        'describe instance': 'done',
        'check image name': 'done',
        'stop instance': 'done',
        'create image': 'done',
        'start instance': 'done',
        'wait for image available': 'done',
        'tag snapshots': 'done',
      });
      assert.deepEqual(outcome.progress.compensations, []);
      assert.deepEqual(outcome.progress.resources, { instanceId: INSTANCE_ID, imageId: IMAGE_ID });
    },
  );

  const noStop: { mode: ConsistencyMode; noReboot: boolean; consistency: string; note: RegExp }[] = [
    { mode: 'reboot', noReboot: false, consistency: 'consistent', note: /^consistent: EC2 rebooted/ },
    { mode: 'no-reboot', noReboot: true, consistency: 'crash-consistent', note: /^crash-consistent only/ },
  ];
  for (const c of noStop) {
    it(
      `GIVEN a running instance in ${c.mode} mode WHEN imaged THEN it is never stopped or started, CreateImage has noReboot=${c.noReboot}, and the result says ${c.consistency}`,
      RUN_TIMEOUT,
      async () => {
        const { outcome, log } = await runLogged(
          env,
          happyActivities({ state: 'running' }),
          imageInput({ mode: c.mode }),
        );

        const result = succeeded(outcome);
        assertCalls(log, [...IMAGE_AS_IS, 'tagSnapshots']);
        assert.equal(log.inputs('createImage')[0]?.noReboot, c.noReboot);
        assert.equal(log.inputs('createImage')[0]?.tags[TAG.consistency], c.consistency);
        assert.equal(result.mode, c.mode);
        assert.equal(result.consistency, c.consistency);
        assert.match(result.consistencyNote, c.note);
        assert.equal(result.instanceInitialState, 'running');
        assert.equal(result.instanceFinalState, 'running');
        assert.equal(result.downtimeSeconds, 0);
        assert.equal(outcome.progress.phase, 'succeeded');
        assert.deepEqual(stepStates(outcome.progress), allDoneBut('stop instance', 'start instance'));
      },
    );
  }

  for (const mode of ['stop', 'reboot', 'no-reboot'] as const) {
    it(
      `GIVEN a stopped instance in ${mode} mode WHEN imaged THEN it is never started, CreateImage does not reboot, and it is left stopped`,
      RUN_TIMEOUT,
      async () => {
        const { outcome, log } = await runLogged(
          env,
          happyActivities({ state: 'stopped' }),
          imageInput({ mode }),
        );

        const result = succeeded(outcome);
        assertCalls(log, [...IMAGE_AS_IS, 'tagSnapshots']);
        assert.equal(log.inputs('createImage')[0]?.noReboot, true);
        assert.equal(result.consistency, 'consistent');
        assert.equal(result.consistencyNote, 'consistent: the instance was already stopped');
        assert.equal(result.instanceInitialState, 'stopped');
        assert.equal(result.instanceFinalState, 'stopped');
        assert.equal(result.downtimeSeconds, 0);
        assert.deepEqual(
          outcome.progress.steps.filter((s) => s.state === 'skipped').map((s) => [s.name, s.detail]),
          [
            ['stop instance', 'already stopped'],
            ['start instance', 'was stopped: left stopped'],
          ],
        );
        assert.ok(outcome.progress.steps.every((s) => s.state === 'done' || s.state === 'skipped'));
      },
    );
  }

  it(
    'GIVEN user tags and custom timeouts WHEN imaged THEN the image and snapshots carry the user tags plus tags naming this run, and deadlines follow the timeouts',
    RUN_TIMEOUT,
    async () => {
      const input = imageInput({
        mode: 'stop',
        tags: { Owner: 'team-web', CostCentre: '42' },
        timeouts: { instanceStateSeconds: 600, imageAvailableSeconds: 7200 },
        accountId: '123456789012',
      });

      const { outcome, log } = await runLogged(
        env,
        happyActivities({ state: 'running', instanceStateSeconds: 600, downtimeSeconds: 90 }),
        input,
      );

      const result = succeeded(outcome);
      assert.equal(result.accountId, '123456789012');
      assert.equal(result.downtimeSeconds, 90);
      const [create] = log.inputs('createImage');
      assert.ok(create);
      const { workflowId, runId } = create;
      const expectedTags = {
        Owner: 'team-web',
        CostCentre: '42',
        [TAG.managedBy]: MANAGED_BY_VALUE,
        [TAG.workflowId]: workflowId,
        [TAG.runId]: runId,
        [TAG.workflowType]: 'imageFromInstance',
        [TAG.sourceInstance]: INSTANCE_ID,
        [TAG.consistency]: 'consistent',
      };
      assert.deepEqual(create.tags, expectedTags);
      assert.deepEqual(log.inputs('tagSnapshots')[0], {
        target: { region: 'eu-west-1', accountId: '123456789012' },
        imageId: IMAGE_ID,
        tags: expectedTags,
      });
      assert.deepEqual(log.inputs('checkImageName')[0], {
        target: { region: 'eu-west-1', accountId: '123456789012' },
        imageName: input.imageName,
        workflowId,
        runId,
      });
      const [stop] = log.inputs('stopInstance');
      const [wait] = log.inputs('waitForImageAvailable');
      assert.ok(stop && wait);
      // Both deadlines are "workflow now + timeout", taken a moment apart on the workflow clock.
      const waitScheduledAt = wait.deadline - 7200 * 1000;
      const stopScheduledAt = stop.deadline - 600 * 1000;
      assert.ok(waitScheduledAt >= stopScheduledAt && waitScheduledAt - stopScheduledAt < 60_000);
      assert.notEqual(
        DEFAULT_TIMEOUTS.imageAvailableSeconds,
        7200,
        'the test must use a non-default timeout',
      );
    },
  );
});
