/**
 * Failures, both ways: `awsError` makes the error the SDK's `send` rejects with, `errorOf` and
 * `nonRetryableFailure` read what an activity threw (and fail the test when it did not throw).
 */
import assert from 'node:assert/strict';
import { EC2ServiceException } from '@aws-sdk/client-ec2';
import { SSMServiceException } from '@aws-sdk/client-ssm';
import { ApplicationFailure } from '@temporalio/activity';
import type { FailureType } from '../../workflows/contracts';

/** The error a promise rejects with; fails the test when it resolves. */
export async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a failure, but the activity succeeded');
}

/** Asserts a non-retryable `ApplicationFailure` of `type` whose message contains every fragment. */
export async function nonRetryableFailure(
  p: Promise<unknown>,
  type: FailureType,
  ...messageContains: string[]
): Promise<ApplicationFailure> {
  const err = await errorOf(p);
  assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
  assert.equal(err.type, type, `failure type (message: ${err.message})`);
  assert.equal(err.nonRetryable, true, 'the failure must be non-retryable');
  for (const fragment of messageContains)
    assert.ok(
      err.message.includes(fragment),
      `message ${JSON.stringify(err.message)} should contain ${fragment}`,
    );
  return err;
}

/** An error shaped like the SDK's own (what `send` rejects with on an AWS error answer). */
export function awsError(
  name: string,
  httpStatusCode: number,
  message = `simulated ${name}`,
): EC2ServiceException {
  return new EC2ServiceException({
    name,
    $fault: httpStatusCode >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode, requestId: 'req-test' },
    message,
  });
}

/** The same for SSM (its own exception class, which the activities' SSM paths check for). */
export function ssmError(
  name: string,
  httpStatusCode = 400,
  message = `simulated ${name}`,
): SSMServiceException {
  return new SSMServiceException({
    name,
    $fault: httpStatusCode >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode },
    message,
  });
}
