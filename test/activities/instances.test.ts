/** describeInstance, stopInstance, startInstance against a mocked EC2 client. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InstanceStateName } from '@aws-sdk/client-ec2';
import { DescribeInstancesCommand, StartInstancesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { FailureType } from '../../workflows/contracts';
import { awsError, nonRetryableFailure } from './failures';
import { ACCOUNT, INSTANCE_ID, REGION, T0, TARGET, instance, reservation } from './fixtures';
import { activityEnv, commandNames, harness } from './harness';

const MINUTE = 60_000;
const ref = { target: TARGET, instanceId: INSTANCE_ID };
const waitInput = { ...ref, deadline: T0 + 15 * MINUTE };

/** A DescribeInstances mock answering each state in turn, then repeating the last one. */
function statesInTurn(h: ReturnType<typeof harness>, ...states: InstanceStateName[]): void {
  let behaviour = h.ec2Mock.on(DescribeInstancesCommand, { InstanceIds: [INSTANCE_ID] });
  for (const s of states.slice(0, -1)) behaviour = behaviour.resolvesOnce(reservation(instance(s)));
  behaviour.resolves(reservation(instance(states[states.length - 1])));
}

/** An instance already in the state asked for: one DescribeInstances, no change sent, no waiting. */
async function alreadyThere(activity: 'stopInstance' | 'startInstance', state: 'stopped' | 'running') {
  const h = harness();
  statesInTurn(h, state);

  const out = await activityEnv().run(h.activities[activity], waitInput);

  assert.deepEqual(commandNames(h.ec2Mock), ['DescribeInstances']);
  assert.equal(out.state, state);
  assert.equal(out.at, T0, 'no waiting');
}

void describe('describeInstance', () => {
  void it('GIVEN an EBS-backed running instance WHEN described THEN asks EC2 for that id in the target and maps its facts', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeInstancesCommand).resolves(
      reservation(
        instance('running', {
          InstanceType: 't3.micro',
          Placement: { AvailabilityZone: 'eu-west-1b' },
          Tags: [
            { Key: 'team', Value: 'web' },
            { Key: 'Name', Value: 'web-1' },
          ],
        }),
      ),
    );

    const info = await activityEnv().run(h.activities.describeInstance, ref);

    assert.deepEqual(info, {
      instanceId: INSTANCE_ID,
      state: 'running',
      rootDeviceType: 'ebs',
      availabilityZone: 'eu-west-1b',
      instanceType: 't3.micro',
      name: 'web-1',
    });
    assert.deepEqual(h.targets, [TARGET]);
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeInstances']);
    assert.deepEqual(h.ec2Mock.commandCalls(DescribeInstancesCommand)[0]?.args[0].input, {
      InstanceIds: [INSTANCE_ID],
    });
  });

  void it('GIVEN an instance-store root WHEN described THEN says so (the workflow refuses to image it)', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeInstancesCommand)
      .resolves(reservation(instance('running', { RootDeviceType: 'instance-store' })));

    const info = await activityEnv().run(h.activities.describeInstance, ref);

    assert.equal(info.rootDeviceType, 'instance-store');
    assert.equal('name' in info, false, 'no Name tag, no name');
  });

  const states: InstanceStateName[] = [
    'pending',
    'running',
    'stopping',
    'stopped',
    'shutting-down',
    'terminated',
  ];
  for (const state of states) {
    void it(`GIVEN EC2 reports '${state}' WHEN described THEN the state is '${state}'`, async () => {
      const h = harness();
      h.ec2Mock.on(DescribeInstancesCommand).resolves(reservation(instance(state)));

      const info = await activityEnv().run(h.activities.describeInstance, ref);

      assert.equal(info.state, state);
    });
  }

  void it('GIVEN EC2 reports no state yet (just launched) WHEN described THEN it is pending', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeInstancesCommand).resolves(reservation(instance(undefined)));

    const info = await activityEnv().run(h.activities.describeInstance, ref);

    assert.equal(info.state, 'pending');
  });

  void it('GIVEN EC2 answers InvalidInstanceID.NotFound WHEN described THEN InstanceNotFound, non-retryable, naming id, region and account', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeInstancesCommand).rejects(awsError('InvalidInstanceID.NotFound', 400));

    await nonRetryableFailure(
      activityEnv().run(h.activities.describeInstance, ref),
      FailureType.InstanceNotFound,
      INSTANCE_ID,
      `region ${REGION}`,
      `account ${ACCOUNT}`,
      'check the id',
    );
  });

  void it('GIVEN an answer without the instance (another id only) WHEN described THEN InstanceNotFound', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeInstancesCommand)
      .resolves(reservation(instance('running', { InstanceId: 'i-0fffffffffffffff0' })));

    await nonRetryableFailure(
      activityEnv().run(h.activities.describeInstance, ref),
      FailureType.InstanceNotFound,
    );
  });
});

void describe('stopInstance', () => {
  void it('GIVEN a running instance WHEN stopped THEN sends StopInstances once and polls until stopped', async () => {
    const h = harness();
    statesInTurn(h, 'running', 'stopping', 'stopping', 'stopped');
    h.ec2Mock.on(StopInstancesCommand).resolves({});

    const out = await activityEnv({ heartbeatTimeoutMs: MINUTE }).run(h.activities.stopInstance, waitInput);

    assert.deepEqual(commandNames(h.ec2Mock), [
      'DescribeInstances',
      'StopInstances',
      'DescribeInstances',
      'DescribeInstances',
      'DescribeInstances',
    ]);
    assert.deepEqual(h.ec2Mock.commandCalls(StopInstancesCommand)[0]?.args[0].input, {
      InstanceIds: [INSTANCE_ID],
    });
    // Downtime starts when StopInstances went out (the clock then), not when we noticed `stopped`.
    assert.deepEqual(out, {
      instanceId: INSTANCE_ID,
      state: 'stopped',
      at: h.clock.now(),
      actedAt: T0,
      awsCalls: 4,
    });
    assert.deepEqual(
      h.clock.sleeps,
      [500, 800],
      'looks again at once after StopInstances, then polls sooner than image waits and backs off',
    );
  });

  void it('GIVEN StopInstances answers that the instance is already stopped WHEN stopped THEN no further poll', async () => {
    const h = harness();
    statesInTurn(h, 'running');
    h.ec2Mock.on(StopInstancesCommand).resolves({
      StoppingInstances: [{ InstanceId: INSTANCE_ID, CurrentState: { Name: 'stopped', Code: 80 } }],
    });

    await activityEnv({ heartbeatTimeoutMs: MINUTE }).run(h.activities.stopInstance, waitInput);

    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeInstances', 'StopInstances']);
    assert.deepEqual(h.clock.sleeps, []);
  });

  void it('GIVEN a slow stop WHEN waiting THEN intervals back off to a 5 s ceiling, below the image ceiling', async () => {
    const h = harness();
    statesInTurn(h, 'running', ...Array<'stopping'>(12).fill('stopping'), 'stopped');
    h.ec2Mock.on(StopInstancesCommand).resolves({});

    await activityEnv({ heartbeatTimeoutMs: MINUTE }).run(h.activities.stopInstance, waitInput);

    assert.equal(Math.max(...h.clock.sleeps), 5_000);
    assert.ok(h.clock.sleeps.filter((ms) => ms === 5_000).length >= 3, `sleeps ${h.clock.sleeps.join(', ')}`);
  });

  void it('GIVEN a stopped instance WHEN stopped THEN no StopInstances is sent', () =>
    alreadyThere('stopInstance', 'stopped'));

  void it('GIVEN a retry finding the instance already stopping WHEN stopped THEN it only waits', async () => {
    const h = harness();
    statesInTurn(h, 'stopping', 'stopped');

    await activityEnv({ attempt: 2 }).run(h.activities.stopInstance, waitInput);

    assert.equal(h.ec2Mock.commandCalls(StopInstancesCommand).length, 0);
    assert.equal(h.ec2Mock.commandCalls(DescribeInstancesCommand).length, 2);
  });

  for (const state of ['terminated', 'shutting-down'] as const) {
    void it(`GIVEN a ${state} instance WHEN stopped THEN InstanceStateUnsupported, non-retryable, and no StopInstances`, async () => {
      const h = harness();
      statesInTurn(h, state);

      await nonRetryableFailure(
        activityEnv().run(h.activities.stopInstance, waitInput),
        FailureType.InstanceStateUnsupported,
        INSTANCE_ID,
        state,
      );
      assert.equal(h.ec2Mock.commandCalls(StopInstancesCommand).length, 0);
    });
  }

  void it('GIVEN an instance that never stops WHEN the deadline passes THEN WaitTimedOut, non-retryable, without sleeping past it', async () => {
    const h = harness();
    statesInTurn(h, 'running', 'stopping');
    h.ec2Mock.on(StopInstancesCommand).resolves({});
    const deadline = T0 + 2 * MINUTE;

    await nonRetryableFailure(
      activityEnv({ heartbeatTimeoutMs: MINUTE }).run(h.activities.stopInstance, { ...ref, deadline }),
      FailureType.WaitTimedOut,
      `instance ${INSTANCE_ID} to stop`,
      new Date(deadline).toISOString(),
    );
    assert.equal(h.clock.now(), deadline, 'the last sleep is cut short at the deadline');
    assert.equal(h.ec2Mock.commandCalls(StopInstancesCommand).length, 1);
  });

  void it('GIVEN StopInstances is throttled WHEN stopping THEN the SDK error is rethrown as is, for Temporal to retry', async () => {
    const h = harness();
    statesInTurn(h, 'running');
    const throttled = awsError('RequestLimitExceeded', 503, 'Request limit exceeded.');
    h.ec2Mock.on(StopInstancesCommand).rejects(throttled);

    const err = await activityEnv()
      .run(h.activities.stopInstance, waitInput)
      .catch((e: unknown) => e);

    assert.equal(err, throttled);
  });

  void it('GIVEN a 1-minute heartbeat timeout, maximum jitter and slow AWS answers WHEN a stop takes 10 minutes THEN heartbeats never lapse and are not sent faster than 0.8 × the timeout', async () => {
    const h = harness({ random: () => 1 });
    const stoppedAt = T0 + 10 * MINUTE;
    h.ec2Mock.on(DescribeInstancesCommand).callsFake(() => {
      h.clock.advance(300); // each answer takes 300 ms
      return Promise.resolve(reservation(instance(h.clock.now() >= stoppedAt ? 'stopped' : 'stopping')));
    });
    const run = activityEnv({ heartbeatTimeoutMs: MINUTE });
    const at: number[] = [];
    run.env.on('heartbeat', () => at.push(h.clock.now()));

    await run.run(h.activities.stopInstance, { ...ref, deadline: T0 + 15 * MINUTE });

    assert.ok(at.length >= 10, `heartbeats: ${at.length}`);
    const gaps = at.slice(1).map((t, i) => t - (at[i] ?? 0));
    for (const gap of gaps) {
      assert.ok(gap < MINUTE, `a gap of ${gap} ms between heartbeats exceeds the 60 s heartbeat timeout`);
      assert.ok(gap >= 0.8 * MINUTE, `a gap of ${gap} ms is shorter than 0.8 × the heartbeat timeout`);
    }
    const last = run.heartbeats.at(-1) as { calls: number; polls: number; progress: unknown };
    assert.deepEqual(last.progress, { instanceState: 'stopping' });
    assert.equal(last.calls, last.polls, 'each poll is one DescribeInstances call');
  });
});

void describe('startInstance', () => {
  void it('GIVEN a stopped instance WHEN started THEN sends StartInstances once and polls until running', async () => {
    const h = harness();
    statesInTurn(h, 'stopped', 'pending', 'running');
    h.ec2Mock.on(StartInstancesCommand).resolves({});

    const out = await activityEnv().run(h.activities.startInstance, waitInput);

    assert.deepEqual(commandNames(h.ec2Mock), [
      'DescribeInstances',
      'StartInstances',
      'DescribeInstances',
      'DescribeInstances',
    ]);
    assert.deepEqual(h.ec2Mock.commandCalls(StartInstancesCommand)[0]?.args[0].input, {
      InstanceIds: [INSTANCE_ID],
    });
    assert.deepEqual(out, { instanceId: INSTANCE_ID, state: 'running', at: h.clock.now(), awsCalls: 3 });
  });

  void it('GIVEN an instance still stopping (a compensation racing the stop) WHEN started THEN waits until stopped, then starts it', async () => {
    const h = harness();
    statesInTurn(h, 'stopping', 'stopping', 'stopped', 'pending', 'running');
    h.ec2Mock.on(StartInstancesCommand).resolves({});

    await activityEnv().run(h.activities.startInstance, waitInput);

    assert.deepEqual(commandNames(h.ec2Mock), [
      'DescribeInstances',
      'DescribeInstances',
      'DescribeInstances',
      'StartInstances',
      'DescribeInstances',
      'DescribeInstances',
    ]);
  });

  void it('GIVEN a running instance WHEN started THEN no StartInstances is sent (and nothing is waited for)', () =>
    alreadyThere('startInstance', 'running'));

  void it('GIVEN a terminated instance WHEN started THEN InstanceStateUnsupported, non-retryable, and no StartInstances', async () => {
    const h = harness();
    statesInTurn(h, 'terminated');

    await nonRetryableFailure(
      activityEnv().run(h.activities.startInstance, waitInput),
      FailureType.InstanceStateUnsupported,
      'cannot be imaged or restarted',
    );
    assert.equal(h.ec2Mock.commandCalls(StartInstancesCommand).length, 0);
  });

  void it('GIVEN the instance was deleted WHEN started THEN InstanceNotFound, non-retryable', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeInstancesCommand).rejects(awsError('InvalidInstanceID.NotFound', 400));

    await nonRetryableFailure(
      activityEnv().run(h.activities.startInstance, waitInput),
      FailureType.InstanceNotFound,
    );
  });
});
