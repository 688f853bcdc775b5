/**
 * The rollout's activities mocked at the SDK level: launch-template versioning (the run's marker
 * found before creating, the default changed and restored only while it is this run's), instance
 * refresh states (Pending, InProgress, Baking, Successful, Failed, Cancelling, Cancelled,
 * RollbackInProgress, RollbackSuccessful) as the wait and the undo meet them, and alarm states.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InstanceRefresh } from '@aws-sdk/client-auto-scaling';
import * as ASG from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import {
  CreateLaunchTemplateVersionCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  EC2Client,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import type { ActivityDeps } from '../../activities';
import { createActivities } from '../../activities';
import { DEFAULT_POLL_POLICY } from '../../activities/waiting';
import { FailureType } from '../../workflows/contracts';
import { nonRetryableFailure } from './failures';
import { REGION, T0 } from './fixtures';
import { VirtualClock, activityEnv } from './harness';

const TARGET = { region: REGION };
const LT = 'lt-0aaaaaaaaaaaaaaa1';
const IMAGE = 'ami-0123456789abcdef0';
const MARKER = 'amiflow-rollout-run-1-lt-0aaaaaaaaaaaaaaa1';
const creds = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' };

/** DescribeInstanceRefreshes answering one refresh per call, in turn, then repeating the last. */
function refreshesInTurn(r: ReturnType<typeof rig>, ...answers: InstanceRefresh[]): void {
  let behaviour = r.asgMock.on(ASG.DescribeInstanceRefreshesCommand);
  for (const a of answers.slice(0, -1)) behaviour = behaviour.resolvesOnce({ InstanceRefreshes: [a] });
  behaviour.resolves({ InstanceRefreshes: answers.slice(-1) });
}

function rig() {
  const ec2 = new EC2Client({ region: REGION, credentials: creds });
  const asg = new ASG.AutoScalingClient({ region: REGION, credentials: creds });
  const cw = new CloudWatchClient({ region: REGION, credentials: creds });
  const ec2Mock = mockClient(ec2);
  const asgMock = mockClient(asg);
  const cwMock = mockClient(cw);
  for (const m of [ec2Mock, asgMock, cwMock] as const)
    (m as ReturnType<typeof mockClient>).onAnyCommand().callsFake((input: unknown) => {
      throw new Error(`unexpected command in this test: ${JSON.stringify(input)}`);
    });
  const clock = new VirtualClock();
  const deps: ActivityDeps = {
    aws: {
      ec2: () => Promise.resolve(ec2),
      kms: () => Promise.reject(new Error('no KMS here')),
      autoScaling: () => Promise.resolve(asg),
      cloudWatch: () => Promise.resolve(cw),
      destroy: () => undefined,
    },
    clock,
    random: () => 0.5,
    policy: DEFAULT_POLL_POLICY,
  };
  return { ec2Mock, asgMock, cwMock, clock, activities: createActivities(deps) };
}

function refresh(
  id: string,
  status: string,
  version: string,
  extra: Partial<InstanceRefresh> = {},
): InstanceRefresh {
  return {
    InstanceRefreshId: id,
    AutoScalingGroupName: 'web',
    Status: status as InstanceRefresh['Status'],
    PercentageComplete: 0,
    InstancesToUpdate: 4,
    StartTime: new Date(T0),
    DesiredConfiguration: { LaunchTemplate: { LaunchTemplateId: LT, Version: version } },
    ...extra,
  };
}

function asgError(name: string): ASG.AutoScalingServiceException {
  return new ASG.AutoScalingServiceException({
    name,
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
    message: name,
  });
}

describe('launch-template versioning', () => {
  /** A new version of LT from version 3 with IMAGE, marked with this run's MARKER. */
  const newVersionInput = {
    target: TARGET,
    launchTemplateId: LT,
    sourceVersion: 3,
    imageId: IMAGE,
    marker: MARKER,
  };

  it('GIVEN no version with the run marker WHEN adding one THEN CreateLaunchTemplateVersion copies the source version with the new image, the marker and a ClientToken', async () => {
    const r = rig();
    r.ec2Mock
      .on(DescribeLaunchTemplateVersionsCommand)
      .resolves({ LaunchTemplateVersions: [{ VersionNumber: 4, VersionDescription: 'by hand' }] });
    r.ec2Mock
      .on(CreateLaunchTemplateVersionCommand)
      .resolves({ LaunchTemplateVersion: { VersionNumber: 5 } });

    const out = await activityEnv().run(r.activities.createLaunchTemplateVersion, newVersionInput);

    assert.deepEqual(out, { version: 5, created: true });
    assert.equal(
      r.ec2Mock.commandCalls(DescribeLaunchTemplateVersionsCommand)[0]?.args[0].input.MinVersion,
      '4',
    );
    assert.deepEqual(r.ec2Mock.commandCalls(CreateLaunchTemplateVersionCommand)[0]?.args[0].input, {
      LaunchTemplateId: LT,
      SourceVersion: '3',
      VersionDescription: `${MARKER} image ${IMAGE}`,
      LaunchTemplateData: { ImageId: IMAGE },
      ClientToken: MARKER,
    });
  });

  it('GIVEN a version carrying the run marker (an attempt whose answer was lost) WHEN adding again THEN it is reused and nothing is created', async () => {
    const r = rig();
    r.ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({
      LaunchTemplateVersions: [{ VersionNumber: 4, VersionDescription: `${MARKER} image ${IMAGE}` }],
    });

    const out = await activityEnv().run(r.activities.createLaunchTemplateVersion, newVersionInput);

    assert.deepEqual(out, { version: 4, created: false });
    assert.equal(r.ec2Mock.commandCalls(CreateLaunchTemplateVersionCommand).length, 0);
  });

  it('GIVEN the default is this run’s version WHEN restored THEN ModifyLaunchTemplate sets the previous one; GIVEN someone moved it on THEN it is left and the result says so', async () => {
    const r = rig();
    r.ec2Mock
      .on(DescribeLaunchTemplatesCommand)
      .resolvesOnce({ LaunchTemplates: [{ LaunchTemplateId: LT, DefaultVersionNumber: 5 }] })
      .resolvesOnce({ LaunchTemplates: [{ LaunchTemplateId: LT, DefaultVersionNumber: 6 }] });
    r.ec2Mock.on(ModifyLaunchTemplateCommand).resolves({});
    const input = { target: TARGET, launchTemplateId: LT, previousDefaultVersion: 3, newVersion: 5 };

    const restored = await activityEnv().run(r.activities.restoreLaunchTemplateDefault, input);
    const left = await activityEnv().run(r.activities.restoreLaunchTemplateDefault, input);

    assert.equal(restored.detail, 'default version 3 again (was 5)');
    assert.deepEqual(
      r.ec2Mock.commandCalls(ModifyLaunchTemplateCommand).map((c) => c.args[0].input),
      [{ LaunchTemplateId: LT, DefaultVersion: '3' }],
    );
    assert.match(left.detail, /default is version 6, set by someone else since: left as it is/);
  });

  it('GIVEN a launch template name that does not exist WHEN resolving THEN RolloutTargetNotFound names it', async () => {
    const r = rig();
    const notFound = Object.assign(new Error('not found'), {
      name: 'InvalidLaunchTemplateName.NotFoundException',
      $metadata: { httpStatusCode: 400 },
    });
    r.ec2Mock.on(DescribeLaunchTemplatesCommand).rejects(notFound);
    const failing = activityEnv().run(r.activities.resolveRolloutTarget, {
      target: TARGET,
      launchTemplates: [{ name: 'nope' }],
      autoScalingGroups: [],
    });
    const f = await nonRetryableFailure(failing, FailureType.RolloutTargetNotFound);
    assert.match(f.message, /launch template 'nope' not found in eu-west-1/);
  });

  it('GIVEN a group on a mixed instances policy WHEN resolving THEN RolloutTargetUnsupported says why', async () => {
    const r = rig();
    r.asgMock.on(ASG.DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        {
          AutoScalingGroupName: 'web',
          MixedInstancesPolicy: {},
          MinSize: 1,
          MaxSize: 2,
          DesiredCapacity: 1,
          DefaultCooldown: 0,
          AvailabilityZones: [],
          HealthCheckType: 'EC2',
          CreatedTime: new Date(T0),
        },
      ],
    });
    const failing = activityEnv().run(r.activities.resolveRolloutTarget, {
      target: TARGET,
      launchTemplates: [],
      autoScalingGroups: [{ name: 'web' }],
    });
    assert.match(
      (await nonRetryableFailure(failing, FailureType.RolloutTargetUnsupported)).message,
      /uses a mixed instances policy/,
    );
  });
});

describe('instance refresh states', () => {
  const start = {
    target: TARGET,
    autoScalingGroupName: 'web',
    launchTemplateId: LT,
    version: '5',
    preferences: {
      minHealthyPercentage: 90,
      skipMatching: true,
      checkpointPercentages: [20, 100],
      checkpointDelaySeconds: 300,
    },
  };

  it('GIVEN no refresh toward the version WHEN starting THEN StartInstanceRefresh pins the version with the preferences and no auto rollback; GIVEN one (a lost answer) THEN it is reused', async () => {
    const r = rig();
    refreshesInTurn(r, refresh('old', 'Successful', '3'), refresh('r-1', 'Pending', '5'));
    r.asgMock.on(ASG.StartInstanceRefreshCommand).resolves({ InstanceRefreshId: 'r-1' });

    const first = await activityEnv().run(r.activities.startInstanceRefresh, start);
    const again = await activityEnv().run(r.activities.startInstanceRefresh, start);

    assert.equal(first.instanceRefreshId, 'r-1');
    assert.equal(first.reused, false);
    assert.deepEqual(again, {
      instanceRefreshId: 'r-1',
      status: 'Pending',
      percentageComplete: 0,
      instancesToUpdate: 4,
      reused: true,
    });
    assert.deepEqual(
      r.asgMock.commandCalls(ASG.StartInstanceRefreshCommand).map((c) => c.args[0].input),
      [
        {
          AutoScalingGroupName: 'web',
          Strategy: 'Rolling',
          DesiredConfiguration: { LaunchTemplate: { LaunchTemplateId: LT, Version: '5' } },
          Preferences: {
            MinHealthyPercentage: 90,
            SkipMatching: true,
            AutoRollback: false,
            CheckpointPercentages: [20, 100],
            CheckpointDelay: 300,
          },
        },
      ],
    );
  });

  it('GIVEN another refresh in progress WHEN starting THEN RefreshConflict, non-retryable', async () => {
    const r = rig();
    r.asgMock.on(ASG.DescribeInstanceRefreshesCommand).resolves({ InstanceRefreshes: [] });
    r.asgMock.on(ASG.StartInstanceRefreshCommand).rejects(asgError('InstanceRefreshInProgress'));
    const failing = activityEnv().run(r.activities.startInstanceRefresh, start);
    assert.match(
      (await nonRetryableFailure(failing, FailureType.RefreshConflict)).message,
      /another instance refresh is in progress on 'web'/,
    );
  });

  it('GIVEN Pending → InProgress 10% → InProgress 30% WHEN waited on THEN the wait returns at the status change, then at the next quarter, heartbeating percentage and instances to update', async () => {
    const r = rig();
    refreshesInTurn(
      r,
      refresh('r-1', 'Pending', '5'),
      refresh('r-1', 'InProgress', '5', { PercentageComplete: 10, InstancesToUpdate: 3 }),
      refresh('r-1', 'InProgress', '5', { PercentageComplete: 10, InstancesToUpdate: 3 }),
      refresh('r-1', 'InProgress', '5', { PercentageComplete: 30, InstancesToUpdate: 2 }),
    );
    const wait = {
      target: TARGET,
      autoScalingGroupName: 'web',
      instanceRefreshId: 'r-1',
      deadline: T0 + 3600_000,
    };
    const env = activityEnv({ heartbeatTimeoutMs: 1000 });

    const first = await env.run(r.activities.waitForInstanceRefresh, {
      ...wait,
      seen: { status: 'Pending', percentageComplete: 0 },
    });
    const second = await env.run(r.activities.waitForInstanceRefresh, {
      ...wait,
      seen: { status: first.status, percentageComplete: first.percentageComplete },
    });

    assert.deepEqual([first.status, first.percentageComplete], ['InProgress', 10]);
    assert.deepEqual(
      [second.status, second.percentageComplete, second.instancesToUpdate],
      ['InProgress', 30, 2],
    );
    assert.ok(env.heartbeats.some((h) => JSON.stringify(h).includes('"percentage":10')));
  });

  for (const [status, final] of [
    ['Successful', true],
    ['Failed', true],
    ['Cancelled', true],
    ['RollbackSuccessful', true],
    ['Baking', false],
  ] as const)
    it(`GIVEN a refresh at InProgress 75% WHEN it reports ${status} THEN the wait returns it${final ? ' (final)' : ' (a status change)'}`, async () => {
      const r = rig();
      r.asgMock.on(ASG.DescribeInstanceRefreshesCommand).resolves({
        InstanceRefreshes: [refresh('r-1', status, '5', { PercentageComplete: 100, StatusReason: 'reason' })],
      });
      const out = await activityEnv().run(r.activities.waitForInstanceRefresh, {
        target: TARGET,
        autoScalingGroupName: 'web',
        instanceRefreshId: 'r-1',
        seen: { status: 'InProgress', percentageComplete: 75 },
        deadline: T0 + 3600_000,
      });
      assert.equal(out.status, status);
    });

  const undo = {
    target: TARGET,
    autoScalingGroupName: 'web',
    instanceRefreshId: 'r-1',
    launchTemplateId: LT,
    newVersion: '5',
    previousVersion: '3',
    deadline: T0 + 3600_000,
  };

  it('GIVEN a refresh InProgress WHEN undone THEN RollbackInstanceRefresh, waited through RollbackInProgress to RollbackSuccessful', async () => {
    const r = rig();
    refreshesInTurn(
      r,
      refresh('r-1', 'InProgress', '5'),
      refresh('r-1', 'RollbackInProgress', '5'),
      refresh('r-1', 'RollbackSuccessful', '5'),
    );
    r.asgMock.on(ASG.RollbackInstanceRefreshCommand).resolves({ InstanceRefreshId: 'r-1' });

    const out = await activityEnv().run(r.activities.undoInstanceRefresh, undo);

    assert.equal(out.kind, 'rollback-refresh');
    assert.match(
      out.detail,
      /instance refresh r-1 rolled back to lt-0aaaaaaaaaaaaaaa1 version 3: RollbackSuccessful/,
    );
    assert.equal(r.asgMock.commandCalls(ASG.RollbackInstanceRefreshCommand).length, 1);
    assert.equal(r.asgMock.commandCalls(ASG.StartInstanceRefreshCommand).length, 0);
  });

  it('GIVEN a refresh Auto Scaling cannot roll back WHEN undone THEN it is cancelled (Cancelling → Cancelled) and a refresh back to the previous version follows', async () => {
    const r = rig();
    refreshesInTurn(
      r,
      refresh('r-1', 'InProgress', '5'),
      refresh('r-1', 'Cancelling', '5'),
      refresh('r-1', 'Cancelled', '5'),
      refresh('r-1', 'Cancelled', '5'),
      refresh('r-2', 'Successful', '3'),
    );
    r.asgMock.on(ASG.RollbackInstanceRefreshCommand).rejects(asgError('IrreversibleInstanceRefresh'));
    r.asgMock.on(ASG.CancelInstanceRefreshCommand).resolves({ InstanceRefreshId: 'r-1' });
    r.asgMock.on(ASG.StartInstanceRefreshCommand).resolves({ InstanceRefreshId: 'r-2' });

    const out = await activityEnv().run(r.activities.undoInstanceRefresh, undo);

    assert.equal(out.kind, 'refresh-to-previous');
    assert.equal(r.asgMock.commandCalls(ASG.CancelInstanceRefreshCommand).length, 1);
    assert.deepEqual(
      r.asgMock.commandCalls(ASG.StartInstanceRefreshCommand)[0]?.args[0].input.DesiredConfiguration,
      {
        LaunchTemplate: { LaunchTemplateId: LT, Version: '3' },
      },
    );
  });

  it('GIVEN a refresh that ended Successful (a baked canary) WHEN undone THEN a refresh back to the previous version; GIVEN it already ran (a retried undo) THEN it is waited on, not started again', async () => {
    const r = rig();
    const later = new Date(T0 + 60_000);
    r.asgMock.on(ASG.DescribeInstanceRefreshesCommand).resolves({
      InstanceRefreshes: [
        refresh('r-2', 'Successful', '3', { StartTime: later }),
        refresh('r-1', 'Successful', '5'),
      ],
    });

    const out = await activityEnv().run(r.activities.undoInstanceRefresh, undo);

    assert.equal(out.kind, 'refresh-to-previous');
    assert.match(out.detail, /instance refresh r-2 back to lt-0aaaaaaaaaaaaaaa1 version 3: Successful/);
    assert.equal(r.asgMock.commandCalls(ASG.StartInstanceRefreshCommand).length, 0);
  });

  it('GIVEN a rollback that ends RollbackFailed WHEN undone THEN RefreshFailed says the group may run both images', async () => {
    const r = rig();
    r.asgMock.on(ASG.DescribeInstanceRefreshesCommand).resolves({
      InstanceRefreshes: [refresh('r-1', 'RollbackFailed', '5', { StatusReason: 'health checks' })],
    });
    const failing = activityEnv().run(r.activities.undoInstanceRefresh, undo);
    assert.match(
      (await nonRetryableFailure(failing, FailureType.RefreshFailed)).message,
      /ended RollbackFailed \(health checks\); the group may run both images/,
    );
  });
});

describe('alarm states', () => {
  it('GIVEN alarms OK, ALARM and INSUFFICIENT_DATA and one missing WHEN read THEN each state is reported and the missing one named', async () => {
    const r = rig();
    r.cwMock.on(DescribeAlarmsCommand).resolves({
      MetricAlarms: [
        { AlarmName: 'ok', StateValue: 'OK' },
        { AlarmName: 'firing', StateValue: 'ALARM', StateReason: 'Threshold Crossed' },
      ],
      CompositeAlarms: [{ AlarmName: 'new', StateValue: 'INSUFFICIENT_DATA' }],
    });
    const out = await activityEnv().run(r.activities.readRolloutAlarms, {
      targets: [TARGET],
      alarms: ['ok', 'firing', 'new', 'gone'],
    });
    assert.deepEqual(
      out.readings.map((x) => [x.alarm, x.state]),
      [
        ['ok', 'OK'],
        ['firing', 'ALARM'],
        ['new', 'INSUFFICIENT_DATA'],
      ],
    );
    assert.deepEqual(out.missing, ['gone']);
  });

  it('GIVEN an alarm that turns ALARM on the third read WHEN watched during a bake THEN the watch returns it, having read every interval', async () => {
    const r = rig();
    r.cwMock
      .on(DescribeAlarmsCommand)
      .resolvesOnce({ MetricAlarms: [{ AlarmName: 'web-5xx', StateValue: 'OK' }] })
      .resolvesOnce({ MetricAlarms: [{ AlarmName: 'web-5xx', StateValue: 'INSUFFICIENT_DATA' }] })
      .resolves({ MetricAlarms: [{ AlarmName: 'web-5xx', StateValue: 'ALARM' }] });
    const out = await activityEnv({ heartbeatTimeoutMs: 120_000 }).run(r.activities.watchRolloutAlarms, {
      targets: [TARGET],
      alarms: ['web-5xx'],
      until: T0 + 600_000,
      intervalSeconds: 60,
      failOnInsufficientData: false,
    });
    assert.deepEqual(
      out.firing.map((f) => [f.alarm, f.state]),
      [['web-5xx', 'ALARM']],
    );
    assert.equal(out.reads, 3);
    // Reads every interval, or sooner when a heartbeat comes due: never more than ~60 s apart.
    assert.ok(
      r.clock.sleeps.every((ms) => ms > 0 && ms <= 66_000),
      `sleeps ${r.clock.sleeps.join(', ')}`,
    );
  });

  it('GIVEN alarms that stay OK WHEN watched THEN the watch returns clean at the bake end', async () => {
    const r = rig();
    r.cwMock
      .on(DescribeAlarmsCommand)
      .resolves({ MetricAlarms: [{ AlarmName: 'web-5xx', StateValue: 'OK' }] });
    const out = await activityEnv({ heartbeatTimeoutMs: 120_000 }).run(r.activities.watchRolloutAlarms, {
      targets: [TARGET],
      alarms: ['web-5xx'],
      until: T0 + 300_000,
      intervalSeconds: 60,
      failOnInsufficientData: true,
    });
    assert.deepEqual(out.firing, []);
    assert.ok(r.clock.now() >= T0 + 300_000);
  });
});
