/**
 * 3. Validation: a test instance from the image must run, pass both status checks and (optionally)
 * report healthy on its console; it is terminated after, and by the undo on any failure.
 */
import type { LaunchInput } from '../../activities/launch';
import type { GoldenImageInput, GoldenImageResult } from '../../contracts';
import { DEFAULT_VALIDATION, TAG, WORKFLOW_TYPES } from '../../contracts';
import { act, la, local, ownerTags, remote } from '../bootstrap';
import { settleWait, settledAwsActivity, settledAwsCall, statusChecksWait } from '../presets';
import type { GoldenRun } from './run';
import { deadline, iso } from './run';

type ValidationSpec = NonNullable<GoldenImageInput['validation']>;
interface Owner {
  workflowId: string;
  runId: string;
}

export async function validateImage(
  run: GoldenRun,
  imageId: string,
  imageName: string,
): Promise<GoldenImageResult['validation']> {
  const { input, progress, target } = run;
  const v = input.validation;
  if (!v) {
    for (const step of [
      'launch test instance',
      'wait for status checks',
      'health check',
      'terminate test instance',
    ])
      progress.skip(step, 'no validation configured');
    return undefined;
  }
  const owner: Owner = { workflowId: run.workflowId, runId: run.runId };
  const launched: { instanceId?: string } = {};
  const terminate = run.undo(
    'terminate test instance',
    () =>
      act.terminateLaunchedInstance.executeWithOptions(
        remote(`undo: terminate test instance ${launched.instanceId ?? '(found by tag)'}`),
        [{ target, owner, ...(launched.instanceId ? { instanceId: launched.instanceId } : {}) }],
      ),
    'launch test instance',
  );
  const { spec, testInstance } = await launchTestInstance(run, v, owner, imageId, imageName);
  const instanceId = testInstance.instanceId;
  launched.instanceId = instanceId;
  progress.resource('testInstanceId', instanceId);
  progress.note('launch test instance', instanceId);
  const readySeconds = v.readyTimeoutSeconds ?? DEFAULT_VALIDATION.readyTimeoutSeconds;
  await progress.run('wait for status checks', () =>
    act.waitForInstanceReady.executeWithOptions(
      remote(`wait for ${instanceId} to run and pass both status checks`, statusChecksWait(readySeconds)),
      [{ target, instanceId, deadline: deadline(readySeconds) }],
    ),
  );
  const health = await healthCheck(run, v, instanceId);
  await progress.run('terminate test instance', () =>
    act.terminateLaunchedInstance.executeWithOptions(remote(`terminate test instance ${instanceId}`), [
      { target, owner, instanceId },
    ]),
  );
  terminate.discard();
  return {
    testInstanceId: instanceId,
    subnetId: spec.subnetId,
    statusChecks: 'ok',
    ...(health ? { healthCheck: health } : {}),
  };
}

async function launchTestInstance(
  run: GoldenRun,
  v: ValidationSpec,
  owner: Owner,
  imageId: string,
  imageName: string,
) {
  const { input, target } = run;
  return await run.progress.run('launch test instance', async () => {
    const planned = await la.planTestLaunch.executeWithOptions(
      local(`plan the test launch in ${v.subnetId}`),
      [
        {
          target,
          subnetId: v.subnetId,
          instanceType: v.instanceType ?? DEFAULT_VALIDATION.instanceType,
          ...(v.securityGroupIds ? { securityGroupIds: v.securityGroupIds } : {}),
          ...(v.instanceProfileArn ? { instanceProfileArn: v.instanceProfileArn } : {}),
          tags: { Name: `amiflow validation: ${imageName}` },
        },
      ],
    );
    const launchSummary = `launch a ${planned.instanceType} from ${imageId} in ${planned.subnetId}`;
    const launchArgs: [LaunchInput] = [
      {
        target,
        imageId,
        spec: planned,
        owner,
        ownerTags: {
          ...ownerTags(WORKFLOW_TYPES.goldenImage, owner),
          [TAG.pipeline]: input.pipeline,
        },
      },
    ];
    // Settled: on cancel the undo waits until the launch call has ended, so it cannot run first.
    // Since 'golden-launch-test-instance-as-activity' a normal activity, as in migrateInstance:
    // RunInstances may meet InsufficientInstanceCapacity for minutes, past a local activity's budget.
    const made = await (run.progress.since('golden-launch-test-instance-as-activity')
      ? act.launchInstance.executeWithOptions(remote(launchSummary, settledAwsActivity), launchArgs)
      : la.launchInstance.executeWithOptions(local(launchSummary, settledAwsCall), launchArgs));
    return { spec: planned, testInstance: made };
  });
}

/** The console marker, when configured; else the step is skipped (running and status checks suffice). */
async function healthCheck(
  run: GoldenRun,
  v: ValidationSpec,
  instanceId: string,
): Promise<{ marker: string; seenAt: string } | undefined> {
  const h = v.healthCheck;
  if (!h) {
    run.progress.skip('health check', 'no health check configured: running and both status checks ok');
    return undefined;
  }
  const { target } = run;
  const healthSeconds = h.timeoutSeconds ?? DEFAULT_VALIDATION.healthTimeoutSeconds;
  const seen = await run.progress.run('health check', () =>
    act.checkConsoleHealth.executeWithOptions(
      remote(`wait for '${h.successMarker}' on ${instanceId}'s console`, settleWait(healthSeconds)),
      [
        {
          target,
          instanceId,
          successMarker: h.successMarker,
          ...(h.failureMarker ? { failureMarker: h.failureMarker } : {}),
          deadline: deadline(healthSeconds),
        },
      ],
    ),
  );
  return { marker: seen.line, seenAt: iso(seen.seenAt) };
}
