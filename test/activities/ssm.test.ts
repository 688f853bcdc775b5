/**
 * Publishing image ids to SSM Parameter Store, mocked at the SDK level: the PutParameter request
 * (data type aws:ec2:image), the wait for SSM's asynchronous validation (the sandbox accepts any
 * value at once, so the wait is only exercised here), the undo (restore or delete), refusals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SSMServiceException } from '@aws-sdk/client-ssm';
import { DeleteParameterCommand, GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import type { ActivityDeps } from '../../activities';
import { createActivities } from '../../activities';
import { FailureType } from '../../workflows/contracts';
import { nonRetryableFailure, ssmError } from './failures';
import { T0, TARGET } from './fixtures';
import { activityEnv, harness } from './harness';

const NAME = '/golden/web/latest';
const NEW = 'ami-0123456789abcdef0';
const OLD = 'ami-0ffffffffffffffff';
/** Publish NEW under NAME, with a minute for SSM to validate it. */
const publishInput = { target: TARGET, name: NAME, imageId: NEW, deadline: T0 + 60_000 };
/** The undo of a publish that created the parameter (nothing before it) ... */
const firstPublished = { target: TARGET, name: NAME, publishedValue: NEW };
/** ... and of one that replaced OLD. */
const restoreInput = { ...firstPublished, previous: OLD };

function notFound(): SSMServiceException {
  return ssmError('ParameterNotFound', 400, `Parameter ${NAME} not found.`);
}

function parameter(value: string, version: number, dataType = 'aws:ec2:image') {
  return {
    Parameter: { Name: NAME, Value: value, Version: version, DataType: dataType, Type: 'String' as const },
  };
}

describe('readImageParameter', () => {
  it('GIVEN no parameter WHEN read THEN it does not exist; GIVEN one THEN its value, version and data type', async () => {
    const h = harness();
    h.ssmMock.on(GetParameterCommand).rejectsOnce(notFound()).resolves(parameter(OLD, 4));
    assert.deepEqual(
      await activityEnv().run(h.activities.readImageParameter, { target: TARGET, name: NAME }),
      { exists: false },
    );
    assert.deepEqual(
      await activityEnv().run(h.activities.readImageParameter, { target: TARGET, name: NAME }),
      {
        exists: true,
        value: OLD,
        version: 4,
        dataType: 'aws:ec2:image',
      },
    );
    assert.deepEqual(h.ssmTargets, [TARGET, TARGET]);
  });
});

describe('publishImageParameter', () => {
  it('GIVEN an existing parameter WHEN publishing THEN PutParameter overwrites it as aws:ec2:image, and the activity waits until SSM has validated the new id', async () => {
    const h = harness();
    h.ssmMock
      .on(GetParameterCommand)
      .resolvesOnce(parameter(OLD, 4)) // before the put
      .resolvesOnce(parameter(OLD, 4)) // validation not done yet
      .resolves(parameter(NEW, 5));
    h.ssmMock.on(PutParameterCommand).resolves({ Version: 5 });

    const out = await activityEnv({ heartbeatTimeoutMs: 60_000 }).run(h.activities.publishImageParameter, {
      target: TARGET,
      name: NAME,
      imageId: NEW,
      description: 'amiflow: pipeline web version 1.4.2',
      deadline: T0 + 300_000,
    });

    assert.deepEqual(h.ssmMock.commandCalls(PutParameterCommand)[0]?.args[0].input, {
      Name: NAME,
      Value: NEW,
      Type: 'String',
      DataType: 'aws:ec2:image',
      Overwrite: true,
      Description: 'amiflow: pipeline web version 1.4.2',
    });
    assert.equal(h.ssmMock.commandCalls(GetParameterCommand).length, 3);
    assert.deepEqual(out, { name: NAME, value: NEW, version: 5, awsCalls: 4 });
  });

  it('GIVEN SSM never accepts the id (its asynchronous validation failed) WHEN publishing THEN the wait ends at the deadline, non-retryable, saying so', async () => {
    const h = harness();
    h.ssmMock.on(GetParameterCommand).resolves(parameter(OLD, 4));
    h.ssmMock.on(PutParameterCommand).resolves({ Version: 5 });
    await nonRetryableFailure(
      activityEnv({ heartbeatTimeoutMs: 60_000 }).run(h.activities.publishImageParameter, publishInput),
      FailureType.WaitTimedOut,
      'asynchronous aws:ec2:image validation',
    );
  });

  it('GIVEN a text parameter of that name WHEN publishing THEN refused before any write (SSM cannot change a data type)', async () => {
    const h = harness();
    h.ssmMock.on(GetParameterCommand).resolves(parameter('hello', 1, 'text'));
    await nonRetryableFailure(
      activityEnv().run(h.activities.publishImageParameter, publishInput),
      FailureType.AwsPolicyRefused,
      "data type 'text'",
    );
    assert.equal(h.ssmMock.commandCalls(PutParameterCommand).length, 0);
  });

  it('GIVEN too many parameter versions WHEN publishing THEN AwsLimitExceeded, non-retryable', async () => {
    const h = harness();
    h.ssmMock.on(GetParameterCommand).rejects(notFound());
    h.ssmMock.on(PutParameterCommand).rejects(ssmError('ParameterLimitExceeded', 400, 'too many'));
    await nonRetryableFailure(
      activityEnv().run(h.activities.publishImageParameter, publishInput),
      FailureType.AwsLimitExceeded,
    );
  });
});

describe('restoreImageParameter (the undo)', () => {
  it('GIVEN the parameter still holds this run’s id and had a value before WHEN restoring THEN the old id is put back', async () => {
    const h = harness();
    h.ssmMock.on(GetParameterCommand).resolves(parameter(NEW, 5));
    h.ssmMock.on(PutParameterCommand).resolves({ Version: 6 });
    const out = await activityEnv().run(h.activities.restoreImageParameter, restoreInput);
    assert.equal(out.outcome, 'restored');
    assert.equal(h.ssmMock.commandCalls(PutParameterCommand)[0]?.args[0].input.Value, OLD);
  });

  it('GIVEN it did not exist before WHEN restoring THEN it is deleted; GIVEN someone moved it on since THEN it is left alone', async () => {
    const h = harness();
    h.ssmMock
      .on(GetParameterCommand)
      .resolvesOnce(parameter(NEW, 1))
      .resolves(parameter('ami-0aaaaaaaaaaaaaaaa', 2));
    h.ssmMock.on(DeleteParameterCommand).resolves({});
    const deleted = await activityEnv().run(h.activities.restoreImageParameter, firstPublished);
    const left = await activityEnv().run(h.activities.restoreImageParameter, restoreInput);
    assert.equal(deleted.outcome, 'deleted');
    assert.equal(left.outcome, 'left: changed since');
    assert.equal(h.ssmMock.commandCalls(DeleteParameterCommand).length, 1);
    assert.equal(h.ssmMock.commandCalls(PutParameterCommand).length, 0);
  });

  it('GIVEN a worker whose AWS clients have no SSM WHEN publishing THEN a clear non-retryable failure', async () => {
    const h = harness();
    const { ssm: _ssm, ...withoutSsm } = h.deps.aws;
    const deps: ActivityDeps = { ...h.deps, aws: withoutSsm };
    await nonRetryableFailure(
      activityEnv().run(createActivities(deps).readImageParameter, { target: TARGET, name: NAME }),
      FailureType.AwsMalformedRequest,
      'without an SSM client',
    );
  });
});
