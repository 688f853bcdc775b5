/**
 * SSM Run Command at the SDK level: one send per idempotency key (heartbeat, then ListCommands),
 * every invocation outcome returned rather than thrown, InvocationDoesNotExist inside the
 * consistency window, idempotent cancellation, and the agent-online wait.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as SSM from '@aws-sdk/client-ssm';
import type { CommandInvocationStatus, GetCommandInvocationCommandOutput } from '@aws-sdk/client-ssm';
import { commandComment, commandStatusOf, tail } from '../../activities/run-command';
import { FailureType } from '../../workflows/contracts';
import { errorOf, nonRetryableFailure, ssmError } from './failures';
import { INSTANCE_ID, T0, TARGET } from './fixtures';
import { activityEnv, harness } from './harness';

const COMMAND_ID = '11111111-2222-3333-4444-555555555555';
const KEY = 'image-web-1/app-consistent/pre';
const fresh = { scheduledTimestampMs: T0 };

function invocation(
  status: CommandInvocationStatus,
  extra: Partial<GetCommandInvocationCommandOutput> = {},
): Partial<GetCommandInvocationCommandOutput> {
  return { CommandId: COMMAND_ID, InstanceId: INSTANCE_ID, Status: status, StatusDetails: status, ...extra };
}

const sendInput = {
  target: TARGET,
  instanceId: INSTANCE_ID,
  documentName: 'AWS-RunShellScript',
  parameters: { commands: ['sync', 'echo done'] },
  timeoutSeconds: 60,
  idempotencyKey: KEY,
};

describe('sendCommand', () => {
  it('GIVEN no earlier send WHEN sending THEN SendCommand carries the key in its Comment, and the id is heartbeaten at once', async () => {
    const h = harness();
    h.ssmMock
      .on(SSM.ListCommandsCommand)
      .resolves({ Commands: [{ CommandId: 'other', Comment: 'amiflow x/y' }] });
    h.ssmMock.on(SSM.SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
    const env = activityEnv();

    const out = await env.run(h.activities.sendCommand, {
      ...sendInput,
      outputS3: { bucket: 'logs', keyPrefix: 'ssm/' },
    });

    assert.deepEqual(out, { commandId: COMMAND_ID, reused: false });
    assert.deepEqual(h.ssmMock.commandCalls(SSM.ListCommandsCommand)[0]?.args[0].input, {
      InstanceId: INSTANCE_ID,
      MaxResults: 50,
    });
    assert.deepEqual(h.ssmMock.commandCalls(SSM.SendCommandCommand)[0]?.args[0].input, {
      InstanceIds: [INSTANCE_ID],
      DocumentName: 'AWS-RunShellScript',
      Parameters: { commands: ['sync', 'echo done'] },
      TimeoutSeconds: 60,
      Comment: `amiflow ${KEY}`,
      OutputS3BucketName: 'logs',
      OutputS3KeyPrefix: 'ssm/',
    });
    assert.deepEqual(env.heartbeats, [{ sentCommandId: COMMAND_ID, comment: `amiflow ${KEY}` }]);
  });

  it('GIVEN an earlier attempt whose SendCommand was applied but answered 5xx WHEN retried THEN ListCommands finds it (second page) and nothing is sent again', async () => {
    const h = harness();
    h.ssmMock
      .on(SSM.ListCommandsCommand)
      .resolvesOnce({ Commands: [{ CommandId: 'older', Comment: 'amiflow other' }], NextToken: 'p2' })
      .resolves({ Commands: [{ CommandId: COMMAND_ID, Comment: `amiflow ${KEY}` }] });

    const out = await activityEnv({ attempt: 2 }).run(h.activities.sendCommand, sendInput);

    assert.deepEqual(out, { commandId: COMMAND_ID, reused: true });
    assert.equal(h.ssmMock.commandCalls(SSM.SendCommandCommand).length, 0);
    assert.equal(h.ssmMock.commandCalls(SSM.ListCommandsCommand)[1]?.args[0].input.NextToken, 'p2');
  });

  it('GIVEN an attempt lost after it heartbeat the command id WHEN retried THEN the id is reused without any SSM call', async () => {
    const h = harness();
    const out = await activityEnv({
      attempt: 2,
      heartbeatDetails: { sentCommandId: COMMAND_ID, comment: `amiflow ${KEY}` },
    }).run(h.activities.sendCommand, sendInput);
    assert.deepEqual(out, { commandId: COMMAND_ID, reused: true });
    assert.equal(h.ssmMock.calls().length, 0);
  });

  it('GIVEN an instance SSM does not manage WHEN sending THEN a non-retryable refusal says why', async () => {
    const h = harness();
    h.ssmMock.on(SSM.ListCommandsCommand).resolves({ Commands: [] });
    h.ssmMock.on(SSM.SendCommandCommand).rejects(ssmError('InvalidInstanceId'));
    await nonRetryableFailure(
      activityEnv().run(h.activities.sendCommand, sendInput),
      FailureType.AwsPolicyRefused,
      INSTANCE_ID,
      'not managed by SSM',
    );
  });

  it('GIVEN SSM throttles WHEN sending THEN the error is rethrown for Temporal to retry', async () => {
    const h = harness();
    h.ssmMock.on(SSM.ListCommandsCommand).resolves({ Commands: [] });
    h.ssmMock.on(SSM.SendCommandCommand).rejects(ssmError('ThrottlingException'));
    const err = await errorOf(activityEnv().run(h.activities.sendCommand, sendInput));
    assert.equal((err as { name?: string }).name, 'ThrottlingException');
  });

  it('GIVEN a key longer than a Comment allows WHEN commented THEN it fits in 100 characters and two keys sharing a head differ', () => {
    const a = commandComment(`${'w'.repeat(120)}/pre`);
    const b = commandComment(`${'w'.repeat(120)}/post`);
    assert.ok(a.length <= 100 && b.length <= 100);
    assert.notEqual(a, b);
    assert.equal(commandComment('short/key'), 'amiflow short/key');
  });
});

describe('waitForCommand', () => {
  const waitInput = {
    target: TARGET,
    instanceId: INSTANCE_ID,
    commandId: COMMAND_ID,
    deadline: T0 + 600_000,
  };

  it('GIVEN a just-sent command (not visible, then Pending, InProgress) WHEN waited on THEN its Success outcome has exit code, tails and times', async () => {
    const h = harness();
    const stdout = Array.from({ length: 50 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    h.ssmMock
      .on(SSM.GetCommandInvocationCommand)
      .rejectsOnce(ssmError('InvocationDoesNotExist'))
      .resolvesOnce(invocation('Pending', { ResponseCode: -1 }))
      .resolvesOnce(invocation('InProgress', { ResponseCode: -1 }))
      .resolves(
        invocation('Success', {
          ResponseCode: 0,
          StandardOutputContent: stdout,
          StandardErrorContent: '',
          ExecutionStartDateTime: '2025-01-01T00:00:01.000Z',
          ExecutionEndDateTime: '2025-01-01T00:00:02.000Z',
        }),
      );

    const out = await activityEnv({ ...fresh, heartbeatTimeoutMs: 30_000 }).run(
      h.activities.waitForCommand,
      waitInput,
    );

    assert.equal(out.status, 'Success');
    assert.equal(out.exitCode, 0);
    assert.equal(out.stdoutTail.split('\n').length, 40);
    assert.ok(out.stdoutTail.startsWith('line 11\n') && out.stdoutTail.endsWith('line 50'));
    assert.equal(out.stderrTail, '');
    assert.equal(out.startedAt, '2025-01-01T00:00:01.000Z');
    assert.equal(out.endedAt, '2025-01-01T00:00:02.000Z');
    assert.equal(h.ssmMock.commandCalls(SSM.GetCommandInvocationCommand).length, 4);
  });

  const terminal: [CommandInvocationStatus, string, string][] = [
    ['Failed', 'Failed', 'Failed'],
    ['TimedOut', 'ExecutionTimedOut', 'ExecutionTimedOut'],
    ['TimedOut', 'DeliveryTimedOut', 'DeliveryTimedOut'],
    ['Failed', 'Undeliverable', 'Undeliverable'],
    ['Failed', 'Terminated', 'Terminated'],
    ['Cancelled', 'Cancelled', 'Cancelled'],
    ['TimedOut', 'TimedOut', 'TimedOut'],
    ['Failed', 'InvalidPlatform', 'Failed'],
  ];
  for (const [status, details, expected] of terminal) {
    it(`GIVEN an invocation ending ${status}/${details} WHEN waited on THEN ${expected} is returned, not thrown`, async () => {
      const h = harness();
      h.ssmMock
        .on(SSM.GetCommandInvocationCommand)
        .resolves(
          invocation(status, { StatusDetails: details, ResponseCode: 2, StandardErrorContent: 'boom\n' }),
        );
      const out = await activityEnv(fresh).run(h.activities.waitForCommand, waitInput);
      assert.equal(out.status, expected);
      assert.equal(out.exitCode, 2);
      assert.equal(out.stderrTail, 'boom');
    });
  }

  it('GIVEN Cancelling WHEN waited on THEN it keeps waiting until Cancelled', async () => {
    const h = harness();
    h.ssmMock
      .on(SSM.GetCommandInvocationCommand)
      .resolvesOnce(invocation('Cancelling'))
      .resolves(invocation('Cancelled', { ResponseCode: -1 }));
    const out = await activityEnv(fresh).run(h.activities.waitForCommand, waitInput);
    assert.equal(out.status, 'Cancelled');
    assert.equal(out.exitCode, undefined);
  });

  it('GIVEN an invocation that never appears WHEN the consistency window has passed THEN it fails AwsNotFound', async () => {
    const h = harness();
    h.ssmMock.on(SSM.GetCommandInvocationCommand).rejects(ssmError('InvocationDoesNotExist'));
    h.clock.advance(600_000);
    await nonRetryableFailure(
      activityEnv(fresh).run(h.activities.waitForCommand, { ...waitInput, deadline: T0 + 3_600_000 }),
      FailureType.AwsNotFound,
      COMMAND_ID,
      'consistency window',
    );
  });

  it('GIVEN a command still running at the deadline WHEN waited on THEN it fails WaitTimedOut', async () => {
    const h = harness();
    h.ssmMock.on(SSM.GetCommandInvocationCommand).resolves(invocation('InProgress'));
    await nonRetryableFailure(
      activityEnv(fresh).run(h.activities.waitForCommand, { ...waitInput, deadline: T0 + 20_000 }),
      FailureType.WaitTimedOut,
      COMMAND_ID,
    );
  });
});

describe('cancelCommand', () => {
  const input = { target: TARGET, instanceId: INSTANCE_ID, commandId: COMMAND_ID };

  it('GIVEN a running command WHEN cancelled THEN CancelCommand names it and the instance', async () => {
    const h = harness();
    h.ssmMock.on(SSM.GetCommandInvocationCommand).resolves(invocation('InProgress'));
    h.ssmMock.on(SSM.CancelCommandCommand).resolves({});
    assert.deepEqual(await activityEnv(fresh).run(h.activities.cancelCommand, input), { cancelled: true });
    assert.deepEqual(h.ssmMock.commandCalls(SSM.CancelCommandCommand)[0]?.args[0].input, {
      CommandId: COMMAND_ID,
      InstanceIds: [INSTANCE_ID],
    });
  });

  it('GIVEN a command that already ended WHEN cancelled again THEN nothing is sent and the end is reported', async () => {
    const h = harness();
    h.ssmMock.on(SSM.GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));
    assert.deepEqual(await activityEnv(fresh).run(h.activities.cancelCommand, input), {
      cancelled: false,
      alreadyEnded: 'Success',
    });
    assert.equal(h.ssmMock.commandCalls(SSM.CancelCommandCommand).length, 0);
  });

  it('GIVEN a command id SSM does not know yet WHEN cancelled inside the window THEN it retries; past the window THEN nothing to cancel', async () => {
    const h = harness();
    h.ssmMock.on(SSM.GetCommandInvocationCommand).rejects(ssmError('InvocationDoesNotExist'));
    h.ssmMock.on(SSM.CancelCommandCommand).rejects(ssmError('InvalidCommandId'));
    const err = await errorOf(activityEnv(fresh).run(h.activities.cancelCommand, input));
    assert.equal((err as { type?: string }).type, FailureType.NotVisibleYet);
    h.clock.advance(600_000);
    assert.deepEqual(await activityEnv(fresh).run(h.activities.cancelCommand, input), { cancelled: false });
  });
});

describe('waitForAgentOnline', () => {
  it('GIVEN an agent not registered, then ConnectionLost, then Online WHEN waited on THEN it returns Online and the platform', async () => {
    const h = harness();
    h.ssmMock
      .on(SSM.DescribeInstanceInformationCommand)
      .resolvesOnce({ InstanceInformationList: [] })
      .resolvesOnce({ InstanceInformationList: [{ InstanceId: INSTANCE_ID, PingStatus: 'ConnectionLost' }] })
      .resolves({
        InstanceInformationList: [{ InstanceId: INSTANCE_ID, PingStatus: 'Online', PlatformType: 'Linux' }],
      });
    const out = await activityEnv(fresh).run(h.activities.waitForAgentOnline, {
      target: TARGET,
      instanceId: INSTANCE_ID,
      deadline: T0 + 300_000,
    });
    assert.deepEqual(out, { pingStatus: 'Online', platform: 'Linux' });
    assert.deepEqual(h.ssmMock.commandCalls(SSM.DescribeInstanceInformationCommand)[0]?.args[0].input, {
      Filters: [{ Key: 'InstanceIds', Values: [INSTANCE_ID] }],
    });
  });

  it('GIVEN an agent that never comes online WHEN the deadline passes THEN it fails WaitTimedOut saying agent not online', async () => {
    const h = harness();
    h.ssmMock.on(SSM.DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [] });
    await nonRetryableFailure(
      activityEnv(fresh).run(h.activities.waitForAgentOnline, {
        target: TARGET,
        instanceId: INSTANCE_ID,
        deadline: T0 + 60_000,
      }),
      FailureType.WaitTimedOut,
      'agent not online',
      INSTANCE_ID,
    );
  });
});

describe('status and output helpers', () => {
  it('GIVEN SSM states WHEN mapped THEN running states wait and unknown terminal ones count as Failed', () => {
    for (const s of ['Pending', 'InProgress', 'Delayed', 'Cancelling', undefined])
      assert.equal(commandStatusOf(s, undefined), undefined);
    assert.equal(commandStatusOf('Success', 'Success'), 'Success');
    assert.equal(commandStatusOf('SomethingNew', 'SomethingNew'), 'Failed');
    assert.equal(tail('a\nb\nc\n', 2), 'b\nc');
    assert.equal(tail(undefined), '');
  });
});
