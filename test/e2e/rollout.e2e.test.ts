/**
 * Tier 3: rolloutImage end to end against the sandbox (moto) with the real worker and client: a
 * launch template gets a new default version with the new image; in a second rollout an alarm turns
 * to ALARM during the bake and the previous default version is restored. moto implements launch
 * templates and CloudWatch alarms but not instance refreshes (those are covered at the SDK level and
 * in the workflow tier; docs/sandbox-differences.md).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloudWatchClient, PutMetricAlarmCommand, SetAlarmStateCommand } from '@aws-sdk/client-cloudwatch';
import {
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
} from '@aws-sdk/client-ec2';
import { RunFailedError } from '../../client';
import type { RolloutImageResult } from '../../workflows/contracts';
import { FailureType, rolloutProgressQuery } from '../../workflows/contracts';
import { SANDBOX_CREDENTIALS } from '../support/moto';
import { SANDBOX_REGION } from '../support/sandbox-ec2';
import { withSandboxWorker } from '../support/sandbox-worker';
import { rowsOf } from '../workflows/run-helpers';
import { eventually } from '../workflows/stub-activities';
import { useE2eStack } from './stack';

const stack = useE2eStack();
let cw: CloudWatchClient;
let images: [string, string, string];

async function defaultImage(launchTemplateId: string): Promise<{ version: number; imageId: string }> {
  const lt = await stack.ec2.send(
    new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: [launchTemplateId] }),
  );
  const version = lt.LaunchTemplates?.[0]?.DefaultVersionNumber ?? 0;
  const v = await stack.ec2.send(
    new DescribeLaunchTemplateVersionsCommand({
      LaunchTemplateId: launchTemplateId,
      Versions: [String(version)],
    }),
  );
  return { version, imageId: v.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId ?? '' };
}

describe('rolloutImage against the sandbox', () => {
  before(async () => {
    cw = new CloudWatchClient({
      region: SANDBOX_REGION,
      endpoint: stack.moto.endpoint,
      credentials: SANDBOX_CREDENTIALS,
    });
    const stock = await stack.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    const ids = (stock.Images ?? []).flatMap((i) => (i.ImageId ? [i.ImageId] : []));
    assert.ok(ids.length >= 3, 'the sandbox lists at least three stock AMIs');
    images = [ids[0] ?? '', ids[1] ?? '', ids[2] ?? ''];
    await cw.send(
      new PutMetricAlarmCommand({
        AlarmName: 'web-5xx',
        MetricName: 'HTTPCode_Target_5XX_Count',
        Namespace: 'AWS/ApplicationELB',
        Statistic: 'Sum',
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 10,
        ComparisonOperator: 'GreaterThanThreshold',
      }),
    );
  });

  after(() => {
    cw?.destroy();
  });

  it('GIVEN a launch template on image A WHEN image B is rolled out THEN B is the default version, and WHEN C is rolled out and an alarm fires during the bake THEN the default is B again and the failure says what was restored', async () => {
    const [a, b, c] = images;
    const lt = await stack.ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: 'web-servers',
        LaunchTemplateData: { ImageId: a, InstanceType: 't3.micro' },
        TagSpecifications: [
          { ResourceType: 'launch-template', Tags: [{ Key: 'amiflow:rollout-target', Value: 'true' }] },
        ],
      }),
    );
    const ltId = lt.LaunchTemplate?.LaunchTemplateId ?? '';
    await cw.send(new SetAlarmStateCommand({ AlarmName: 'web-5xx', StateValue: 'OK', StateReason: 'e2e' }));

    // WHEN B is rolled out (by name), with a short bake watching the alarm
    const first = await withSandboxWorker(stack.env, stack.moto.endpoint, 'e2e-rollout', async (client) => {
      const run = await client.startRolloutImage({
        imageId: b,
        targets: [{ region: SANDBOX_REGION, launchTemplates: [{ name: 'web-servers' }] }],
        bake: { seconds: 10, alarms: ['web-5xx'], checkIntervalSeconds: 10 },
      });
      return client.result<RolloutImageResult>(run.workflowId);
    });

    // THEN B is the default, in a new version that copies A's
    assert.deepEqual(await defaultImage(ltId), { version: 2, imageId: b });
    assert.deepEqual(
      rowsOf(first.launchTemplates, [
        'launchTemplateId',
        'previousDefaultVersion',
        'newVersion',
        'madeDefault',
      ]),
      [[ltId, 1, 2, true]],
    );

    // WHEN C is rolled out and the alarm fires while the wave bakes
    const failure = await withSandboxWorker(
      stack.env,
      stack.moto.endpoint,
      'e2e-rollout-alarm',
      async (client) => {
        const run = await client.startRolloutImage({
          imageId: c,
          targets: [{ region: SANDBOX_REGION, launchTemplates: [{ id: ltId }] }],
          bake: { seconds: 120, alarms: ['web-5xx'], checkIntervalSeconds: 10 },
        });
        await eventually('the wave to bake', async () => {
          const p = await client.handle(run.workflowId).query(rolloutProgressQuery);
          return p.phase === 'baking' ? p : undefined;
        });
        assert.deepEqual(await defaultImage(ltId), { version: 3, imageId: c });
        await cw.send(
          new SetAlarmStateCommand({ AlarmName: 'web-5xx', StateValue: 'ALARM', StateReason: '5xx up' }),
        );
        try {
          await client.result(run.workflowId);
        } catch (err) {
          return err;
        }
        return assert.fail('the rollout succeeded despite the alarm');
      },
    ).finally(() =>
      cw.send(new SetAlarmStateCommand({ AlarmName: 'web-5xx', StateValue: 'OK', StateReason: 'e2e' })),
    );

    // THEN B is the default again, and the failure names the restore
    assert.ok(failure instanceof RunFailedError, String(failure));
    assert.equal(failure.failureType, FailureType.RolloutAlarm);
    assert.match(failure.message, /alarm during the bake: web-5xx/);
    assert.match(
      failure.message,
      new RegExp(`restored: ${ltId} \\(${SANDBOX_REGION}\\): default version 2 again \\(was 3\\)`),
    );
    assert.deepEqual(await defaultImage(ltId), { version: 2, imageId: b });
  });
});
