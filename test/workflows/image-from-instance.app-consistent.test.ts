/**
 * imageFromInstance in mode `app-consistent`: the pre step (quiesce over SSM, arming the watchdog)
 * right before CreateImage, the thaw the moment CreateImage returns, and the thaw again on every
 * other path: a failing pre step under both policies, a worker lost between freeze and thaw, a
 * cancellation during the freeze.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { CommandOutcome, CommandStatus } from '../../activities/run-command';
import { FailureType, TAG } from '../../workflows/contracts';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv } from '../support/temporal';
import type { ActivityName, Outcome } from './stub-activities';
import {
  IMAGE_ID,
  INSTANCE_ID,
  happyActivities,
  imageInput,
  outcomeOf,
  startImageFromInstance,
} from './stub-activities';
import {
  ActivityLog,
  assertCalls,
  assertWorkflowCancelled,
  assertWorkflowFailure,
  cancelledRun,
  collapseReadOnlyRepeats,
  failed,
  recorded,
  resumedRun,
  stepReached,
  stepStates,
  succeeded,
  test,
  withWorker,
  workflowEnv,
} from './harness';

const env = workflowEnv(timeSkippingEnv);

const PRE = 'cmd-pre-0001';
const THAW = 'cmd-thaw-0001';
/** Instance clock (ms) of the freeze; the thaw 1.234 s later. */
const FROZEN_AT = 1_796_000_000_000;
const THAWED_AT = FROZEN_AT + 1_234;

function outcome(commandId: string, status: CommandStatus, stdout: string, stderr = ''): CommandOutcome {
  return {
    commandId,
    instanceId: INSTANCE_ID,
    status,
    ...(status === 'Success' ? { exitCode: 0 } : { exitCode: 4 }),
    stdoutTail: stdout,
    stderrTail: stderr,
  };
}

const PRE_OK = outcome(
  PRE,
  'Success',
  `amiflow-pre-started-at=${FROZEN_AT - 40}\namiflow-watchdog=systemd-timer max=30\namiflow-frozen=/data,/logs\namiflow-frozen-at=${FROZEN_AT}`,
);
const PRE_FAILED = outcome(
  PRE,
  'Failed',
  '',
  'fsfreeze: /data: freeze failed: Device or resource busy\namiflow-freeze-failed=/data',
);
const THAW_OK = outcome(THAW, 'Success', `amiflow-thawed-at=${THAWED_AT}`);

/** Happy SSM stubs on a running instance: the pre step and the thaw both succeed. */
function appActivities(pre: CommandOutcome = PRE_OK): Activities {
  return {
    ...happyActivities({ state: 'running' }),
    sendQuiesceCommand: () => Promise.resolve({ commandId: PRE, reused: false }),
    sendThawCommand: () => Promise.resolve({ commandId: THAW, reused: false }),
    waitForCommand: (i) => Promise.resolve(i.commandId === PRE ? pre : THAW_OK),
    cancelCommand: () => Promise.resolve({ cancelled: true }),
  };
}

const APP = { mode: 'app-consistent' as const };

/**
 * Runs the workflow to its end on a fresh worker with `activities`, its calls recorded in `log`,
 * and (with AMIFLOW_RECORD_HISTORIES=1) saves its history as `name` for the replay tier.
 */
async function runLogged(
  activities: Activities,
  input: unknown,
  name?: string,
): Promise<{ o: Outcome; log: ActivityLog }> {
  const log = new ActivityLog();
  const o = await withWorker(env, recorded(log, activities), async (taskQueue) => {
    const out = await outcomeOf(await startImageFromInstance(env, taskQueue, input));
    if (name) await saveHistory(out, name);
    return out;
  });
  return { o, log };
}

/** The run up to the freeze: the instance read, the name checked, the pre step sent and awaited. */
const QUIESCED: ActivityName[] = [
  'describeInstance',
  'checkImageName',
  'sendQuiesceCommand',
  'waitForCommand',
];
/** The thaw: sent, and awaited. */
const THAWED: ActivityName[] = ['sendThawCommand', 'waitForCommand'];

describe('imageFromInstance app-consistent', () => {
  test('GIVEN a running instance WHEN imaged app-consistent THEN quiesce, CreateImage (no reboot) and the thaw run in that order, and the result reports the freeze measured on the instance', async () => {
    const { o, log } = await runLogged(appActivities(), imageInput(APP));

    const result = succeeded(o);
    assertCalls(log, [...QUIESCED, 'createImage', ...THAWED, 'waitForImageAvailable', 'tagSnapshots']);
    assert.equal(log.inputs('createImage')[0]?.noReboot, true);
    assert.equal(log.inputs('createImage')[0]?.tags[TAG.consistency], 'application-consistent');
    const quiesce = log.inputs('sendQuiesceCommand')[0];
    assert.deepEqual(quiesce?.quiesce, { kind: 'fsfreeze' });
    assert.equal(quiesce?.maxFreezeSeconds, 30, 'the watchdog is armed with the default 30 s');
    assert.equal(log.inputs('sendThawCommand')[0]?.runKey, quiesce?.runKey);
    assert.equal(result.consistency, 'application-consistent');
    assert.equal(result.downtimeSeconds, 0);
    assert.equal(result.instanceFinalState, 'running');
    assert.deepEqual(result.appConsistency, {
      quiesce: 'fsfreeze',
      maxFreezeSeconds: 30,
      onPreFailure: 'fail',
      pre: { status: 'Success', commandId: PRE, exitCode: 0 },
      post: { status: 'Success', commandId: THAW, exitCode: 0, thawedBy: 'post step' },
      frozen: ['/data', '/logs'],
      freezeSeconds: 1.234,
      freezeMeasuredBy: 'instance',
      fellBack: false,
    });
    const steps = stepStates(o.progress);
    assert.equal(steps['quiesce instance'], 'done');
    assert.equal(steps['thaw instance'], 'done');
    assert.equal(o.progress.problems, undefined);
  });

  test('GIVEN a pre step that fails on the instance WHEN the policy is fail (default) THEN it thaws, images nothing, and fails QuiesceFailed naming the pre step', async () => {
    const { o, log } = await runLogged(
      appActivities(PRE_FAILED),
      imageInput(APP),
      'image-from-instance-app-consistent-pre-failed',
    );

    const err = assertWorkflowFailure(failed(o), FailureType.QuiesceFailed);
    assert.match(
      err.message,
      /pre step on i-0123456789abcdef0 did not succeed \(Failed: .*Device or resource busy/,
    );
    assert.match(err.message, /onPreFailure: crash-consistent/);
    assertCalls(log, [...QUIESCED, ...THAWED]);
    assert.equal(log.count('createImage'), 0);
    assert.equal(log.count('deleteImage'), 0, 'no CreateImage, so no image to look for');
    assert.equal(stepStates(o.progress)['quiesce instance'], 'failed');
  });

  test('GIVEN a pre step that fails WHEN the policy is crash-consistent THEN it thaws first, images without quiescing, and says so in the result and the problems', async () => {
    const { o, log } = await runLogged(
      appActivities(PRE_FAILED),
      imageInput({ ...APP, appConsistent: { onPreFailure: 'crash-consistent', maxFreezeSeconds: 20 } }),
      'image-from-instance-app-consistent-fell-back',
    );

    const result = succeeded(o);
    assertCalls(log, [...QUIESCED, ...THAWED, 'createImage', 'waitForImageAvailable', 'tagSnapshots']);
    assert.equal(result.consistency, 'crash-consistent');
    assert.match(result.consistencyNote, /pre step did not succeed/);
    assert.equal(log.inputs('createImage')[0]?.tags[TAG.consistency], 'crash-consistent');
    assert.equal(result.appConsistency?.fellBack, true);
    assert.equal(result.appConsistency?.pre.status, 'Failed');
    assert.equal(result.appConsistency?.post.status, 'Success');
    assert.equal(result.appConsistency?.freezeSeconds, undefined, 'nothing was frozen to measure');
    assert.equal(o.progress.outcome, 'succeeded-with-problems');
    assert.match(o.progress.problems?.[0] ?? '', /crash-consistent only/);
  });

  test('GIVEN an instance SSM does not manage (the send is refused) WHEN the policy is fail THEN the run fails QuiesceFailed with the refusal, having still sent the harmless thaw', async () => {
    const activities: Activities = {
      ...appActivities(),
      sendQuiesceCommand: () =>
        Promise.reject(
          ApplicationFailure.create({
            type: FailureType.AwsPolicyRefused,
            nonRetryable: true,
            message: 'SSM cannot run AWS-RunShellScript: the instance is not managed by SSM',
          }),
        ),
    };
    const { o, log } = await runLogged(activities, imageInput(APP));
    const err = assertWorkflowFailure(failed(o), FailureType.QuiesceFailed);
    assert.match(err.message, /not managed by SSM/);
    assert.equal(log.count('createImage'), 0);
    assert.equal(log.count('sendThawCommand'), 1);
  });

  test('GIVEN a run that froze the instance and made the image WHEN its worker is lost during the thaw and another takes over THEN the thaw still runs, nothing is frozen or imaged twice, and the watchdog was armed with the limit asked for', async () => {
    const {
      outcome: o,
      first,
      second,
    } = await resumedRun(env, {
      first: appActivities(),
      block: ['sendThawCommand'],
      second: appActivities(),
      start: (tq) =>
        startImageFromInstance(env, tq, imageInput({ ...APP, appConsistent: { maxFreezeSeconds: 45 } })),
      queuePrefix: 'app-consistent-resume',
      history: 'image-from-instance-app-consistent-resumed-thaw',
    });

    const result = succeeded(o);
    assertCalls(collapseReadOnlyRepeats(first), [...QUIESCED, 'createImage', 'sendThawCommand']);
    assertCalls(second, ['sendThawCommand', 'waitForCommand', 'waitForImageAvailable', 'tagSnapshots']);
    const total = (n: 'sendQuiesceCommand' | 'createImage') => first.count(n) + second.count(n);
    assert.equal(total('sendQuiesceCommand'), 1);
    assert.equal(total('createImage'), 1);
    // The retried thaw is the same step (same run key, same attempt), so SSM sees it once.
    assert.deepEqual(second.inputs('sendThawCommand')[0], first.inputs('sendThawCommand')[0]);
    assert.equal(first.inputs('sendQuiesceCommand')[0]?.maxFreezeSeconds, 45);
    assert.equal(result.appConsistency?.maxFreezeSeconds, 45);
    assert.equal(result.appConsistency?.post.thawedBy, 'post step');
    assert.equal(result.consistency, 'application-consistent');
  });

  test('GIVEN a run whose pre step is freezing the instance WHEN the run is cancelled THEN the pre step is cancelled, the instance thawed, nothing imaged, and the run ends cancelled', async (log) => {
    const o = await cancelledRun(env, {
      log,
      activities: appActivities(),
      block: ['waitForCommand'], // the pre step's: the thaw's succeeds
      start: (taskQueue) => startImageFromInstance(env, taskQueue, imageInput(APP)),
      beforeCancel: (handle) => stepReached(handle, 'quiesce instance', ['running']),
      history: 'image-from-instance-app-consistent-cancelled-frozen',
    });

    assertWorkflowCancelled(failed(o));
    assertCalls(log, [...QUIESCED, 'cancelCommand', ...THAWED]);
    assert.deepEqual(log.inputs('cancelCommand')[0], {
      target: { region: 'eu-west-1' },
      instanceId: INSTANCE_ID,
      commandId: PRE,
    });
    assert.equal(log.count('createImage'), 0);
    assert.equal(o.progress.phase, 'cancelled');
    assert.equal(stepStates(o.progress)['thaw instance'], 'done');
  });

  test('GIVEN a stopped instance WHEN imaged app-consistent THEN nothing is quiesced (it is consistent already)', async () => {
    const { o, log } = await runLogged(
      { ...appActivities(), ...happyActivities({ state: 'stopped' }) },
      imageInput(APP),
    );
    const result = succeeded(o);
    assert.equal(result.consistency, 'consistent');
    assert.equal(result.appConsistency, undefined);
    assert.equal(log.count('sendQuiesceCommand'), 0);
    assert.equal(stepStates(o.progress)['quiesce instance'], 'skipped');
    assert.equal(result.imageId, IMAGE_ID);
  });
});
