/**
 * imageFromInstance, failures: a non-retryable failure injected at every step of every mode, with
 * the exact compensations that follow, in order; the failure chain the client sees; compensations
 * that fail themselves; refusals before anything is changed.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import type { ConsistencyMode } from '../../workflows/contracts';
import { FailureType } from '../../workflows/contracts';
import { timeSkippingEnv } from '../support/temporal';
import {
  happyActivities,
  IMAGE_AS_IS,
  IMAGE_ID,
  imageInput,
  INSTANCE_ID,
  runLogged,
} from './stub-activities';
import {
  type ActivityName,
  assertActivityCause,
  assertActivityFailure,
  assertCalls,
  assertWorkflowFailure,
  type ExpectedCall,
  failed,
  failing,
  test,
  stepStates,
  workflowEnv,
} from './harness';

const env = workflowEnv(timeSkippingEnv);

// createImage is a normal activity since 'create-image-as-activity'.
const LOCAL: ReadonlySet<ActivityName> = new Set(['describeInstance', 'checkImageName', 'tagSnapshots']);
const STEP_OF: Partial<Record<ActivityName, string>> = {
  describeInstance: 'describe instance',
  checkImageName: 'check image name',
  stopInstance: 'stop instance',
  createImage: 'create image',
  startInstance: 'start instance',
  waitForImageAvailable: 'wait for image available',
  tagSnapshots: 'tag snapshots',
};
const DELETE = 'delete image and snapshots';
const RESTART = 'start instance again';

interface FailureCase {
  fail: ActivityName;
  type: FailureType;
  calls: ExpectedCall[];
  /** Compensations that ran, in order (all succeed here). */
  undone: string[];
  /** How the image compensation identifies the image, when it runs. */
  deleteBy?: 'name' | 'id';
}

/** A row of the tables below: `fail` fails with `type`; the calls made; what was undone; how the image was found. */
const failAt = (
  fail: ActivityName,
  type: FailureType,
  calls: ExpectedCall[],
  undone: string[] = [],
  deleteBy?: 'name' | 'id',
): FailureCase => ({ fail, type, calls, undone, ...(deleteBy ? { deleteBy } : {}) });

/** Failing before the run changed anything (reading the instance with `describeFails`, or the name check): nothing to undo. */
const beforeAnyChange = (describeFails: FailureType): FailureCase[] => [
  failAt('describeInstance', describeFails, ['describeInstance']),
  failAt('checkImageName', 'ImageNameTaken', ['describeInstance', 'checkImageName']),
];

const upToCreate: ExpectedCall[] = ['describeInstance', 'checkImageName', 'stopInstance', 'createImage'];
const startAndWait: ExpectedCall = { concurrently: ['startInstance', 'waitForImageAvailable'] };

/** A running instance in `stop` mode: stopped, imaged, started again while the image completes. */
const STOP_MODE: FailureCase[] = [
  ...beforeAnyChange('InstanceNotFound'),
  failAt(
    'stopInstance',
    'AwsUnauthorized',
    ['describeInstance', 'checkImageName', 'stopInstance', 'startInstance'],
    [RESTART],
  ),
  failAt(
    'createImage',
    'AwsLimitExceeded',
    [...upToCreate, 'deleteImage', 'startInstance'],
    [DELETE, RESTART],
    'name',
  ),
  // The start again failed, so the instance is still stopped: its compensation tries once more.
  failAt(
    'startInstance',
    'InstanceStateUnsupported',
    [...upToCreate, startAndWait, 'deleteImage', 'startInstance'],
    [DELETE, RESTART],
    'id',
  ),
  // The instance was already running again: only the image is undone.
  failAt(
    'waitForImageAvailable',
    'ImageFailed',
    [...upToCreate, startAndWait, 'deleteImage'],
    [DELETE],
    'id',
  ),
  failAt(
    'tagSnapshots',
    'AwsPolicyRefused',
    [...upToCreate, startAndWait, 'tagSnapshots', 'deleteImage'],
    [DELETE],
    'id',
  ),
];

/** `reboot` and `no-reboot` never stop the instance, so only the image is ever undone. */
const NO_STOP_MODES: FailureCase[] = [
  ...beforeAnyChange('AwsUnauthorized'),
  failAt(
    'createImage',
    'AwsMalformedRequest',
    ['describeInstance', 'checkImageName', 'createImage', 'deleteImage'],
    [DELETE],
    'name',
  ),
  failAt('waitForImageAvailable', 'WaitTimedOut', [...IMAGE_AS_IS, 'deleteImage'], [DELETE], 'id'),
  failAt('tagSnapshots', 'AwsLimitExceeded', [...IMAGE_AS_IS, 'tagSnapshots', 'deleteImage'], [DELETE], 'id'),
];

const MODES: [ConsistencyMode, FailureCase[]][] = [
  ['stop', STOP_MODE],
  ['reboot', NO_STOP_MODES],
  ['no-reboot', NO_STOP_MODES],
];

for (const [mode, cases] of MODES) {
  describe(`imageFromInstance in ${mode} mode on a running instance, failing at each step`, () => {
    for (const c of cases) {
      test(`GIVEN ${c.fail} fails with ${c.type} WHEN the run reaches it THEN it undoes exactly [${c.undone.join(', ')}] and fails with ${c.type}`, async () => {
        const { outcome, log } = await runLogged(
          env,
          failing(happyActivities({ state: 'running' }), c.fail, c.type),
          imageInput({ mode }),
        );

        const cause = assertActivityFailure(failed(outcome), {
          activityType: c.fail,
          local: LOCAL.has(c.fail),
          type: c.type,
        });
        assert.equal(cause.message, `injected ${c.type} in ${c.fail}`);
        assertCalls(log, c.calls);
        assert.equal(outcome.progress.phase, 'failed');
        assert.match(outcome.progress.error ?? '', new RegExp(`injected ${c.type}`));
        assert.deepEqual(
          outcome.progress.compensations,
          c.undone.map((name) => ({ name, state: 'done' })),
        );
        const steps = stepStates(outcome.progress);
        assert.equal(steps[STEP_OF[c.fail] ?? '?'], 'failed');
        if (c.undone.includes(DELETE) && c.fail !== 'createImage')
          assert.equal(steps['create image'], 'compensated');
        if (c.undone.includes(RESTART) && c.fail !== 'stopInstance')
          assert.equal(steps['stop instance'], 'compensated');

        // The image undo only ever touches the image this run made: by id once CreateImage answered,
        // otherwise by its deterministic name and this run's tags.
        const deletes = log.inputs('deleteImage');
        assert.equal(deletes.length, c.deleteBy ? 1 : 0);
        if (c.deleteBy) {
          const [owner] = log.inputs('checkImageName');
          assert.ok(owner);
          assert.deepEqual(deletes[0], c.deleteBy === 'name' ? owner : { ...owner, imageId: IMAGE_ID });
        }
        if (c.undone.includes(RESTART)) {
          const restart = log.inputs('startInstance').at(-1);
          assert.equal(restart?.instanceId, INSTANCE_ID);
          assert.deepEqual(restart?.target, { region: 'eu-west-1' });
        }
      });
    }
  });
}

/** A running instance whose `fail` fails once with `type`, and whose image undo always fails with `undoFails`. */
const undoFailing = (fail: ActivityName, type: FailureType, undoFails: FailureType) =>
  failing(failing(happyActivities({ state: 'running' }), fail, type), 'deleteImage', undoFails, 'always');

describe('imageFromInstance compensations', () => {
  test('GIVEN a stopped instance in stop mode WHEN waiting for the image fails THEN only the image is undone and the instance is never started', async () => {
    const { outcome, log } = await runLogged(
      env,
      failing(happyActivities({ state: 'stopped' }), 'waitForImageAvailable', 'ImageFailed'),
      imageInput({ mode: 'stop' }),
    );

    assertActivityFailure(failed(outcome), {
      activityType: 'waitForImageAvailable',
      local: false,
      type: 'ImageFailed',
    });
    assertCalls(log, [...IMAGE_AS_IS, 'deleteImage']);
    assert.deepEqual(outcome.progress.compensations, [{ name: DELETE, state: 'done' }]);
  });

  test('GIVEN CreateImage fails and undoing the image fails too WHEN compensating THEN the instance is still started again and the run fails with CompensationFailed naming what was not undone', async () => {
    const activities = undoFailing('createImage', 'AwsLimitExceeded', 'AwsUnauthorized');

    const { outcome, log } = await runLogged(env, activities, imageInput({ mode: 'stop' }));

    const failure = assertWorkflowFailure(failed(outcome), 'CompensationFailed');
    assert.match(
      failure.message,
      /^Activity task failed: injected AwsLimitExceeded in createImage; and undoing failed for: /,
    );
    assert.match(failure.message, new RegExp(`${DELETE} \\(.*injected AwsUnauthorized in deleteImage`));
    assert.doesNotMatch(failure.message, new RegExp(RESTART));
    assert.match(failure.message, /amiflow:workflow-id/);
    // The original failure is kept as the cause (createImage's, a normal activity's since 'create-image-as-activity').
    assert.ok(failure.cause instanceof ActivityFailure, `cause: ${String(failure.cause)}`);
    assert.ok(failure.cause.cause instanceof ApplicationFailure);
    assert.equal(failure.cause.cause.type, 'AwsLimitExceeded');
    assertCalls(log, [
      'describeInstance',
      'checkImageName',
      'stopInstance',
      'createImage',
      'deleteImage',
      'startInstance',
    ]);
    assert.deepEqual(
      outcome.progress.compensations.map((c) => [c.name, c.state]),
      [
        [DELETE, 'failed'],
        [RESTART, 'done'],
      ],
    );
    assert.match(outcome.progress.compensations[0]?.error ?? '', /injected AwsUnauthorized/);
    assert.equal(stepStates(outcome.progress)['stop instance'], 'compensated');
  });

  test('GIVEN waiting fails and the image undo fails WHEN compensating THEN CompensationFailed keeps the whole original chain as its cause', async () => {
    const activities = undoFailing('waitForImageAvailable', 'ImageFailed', 'AwsPolicyRefused');

    const { outcome } = await runLogged(env, activities, imageInput({ mode: 'no-reboot' }));

    const failure = assertWorkflowFailure(failed(outcome), 'CompensationFailed');
    const original = assertActivityCause(failure.cause, {
      activityType: 'waitForImageAvailable',
      local: false,
      type: 'ImageFailed',
    });
    assert.equal(original.message, 'injected ImageFailed in waitForImageAvailable');
    assert.deepEqual(
      outcome.progress.compensations.map((c) => c.state),
      ['failed'],
    );
  });

  test('GIVEN the image undo hits a transient error first WHEN compensating THEN it is retried and the run fails with the original failure, not CompensationFailed', async () => {
    const base = failing(happyActivities({ state: 'running' }), 'tagSnapshots', 'AwsPolicyRefused');
    let deleteAttempts = 0;
    const activities = {
      ...base,
      deleteImage: (input: Parameters<typeof base.deleteImage>[0]) => {
        deleteAttempts += 1;
        if (deleteAttempts === 1) throw new Error('socket hang up (transient)');
        return base.deleteImage(input);
      },
    };

    const { outcome, log } = await runLogged(env, activities, imageInput({ mode: 'reboot' }));

    assertActivityFailure(failed(outcome), {
      activityType: 'tagSnapshots',
      local: true,
      type: 'AwsPolicyRefused',
    });
    assert.equal(log.count('deleteImage'), 2);
    assert.deepEqual(outcome.progress.compensations, [{ name: DELETE, state: 'done' }]);
  });
});

describe('imageFromInstance refusals before any change', () => {
  const refusals: { why: string; describe: Parameters<typeof happyActivities>[0]; type: FailureType }[] = [
    {
      why: 'an instance-store root volume',
      describe: { state: 'running', rootDeviceType: 'instance-store' },
      type: FailureType.InstanceStoreRoot,
    },
    {
      why: "a 'stopping' instance",
      describe: { state: 'stopping' },
      type: FailureType.InstanceStateUnsupported,
    },
    {
      why: "a 'pending' instance",
      describe: { state: 'pending' },
      type: FailureType.InstanceStateUnsupported,
    },
    {
      why: 'a terminated instance',
      describe: { state: 'terminated' },
      type: FailureType.InstanceStateUnsupported,
    },
  ];
  for (const r of refusals) {
    test(`GIVEN ${r.why} WHEN imaged in stop mode THEN the run fails with ${r.type} after describing it, and nothing is undone`, async () => {
      const { outcome, log } = await runLogged(
        env,
        happyActivities(r.describe),
        imageInput({ mode: 'stop' }),
      );

      const failure = assertWorkflowFailure(failed(outcome), r.type);
      assert.match(failure.message, new RegExp(INSTANCE_ID));
      assertCalls(log, ['describeInstance']);
      assert.deepEqual(outcome.progress.compensations, []);
      assert.equal(outcome.progress.phase, 'failed');
    });
  }
});
