/**
 * AWS error classification (activities/errors.ts), directly and through the activities: transient
 * errors reach Temporal untouched (retried); permanent ones become non-retryable typed failures.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DescribeImagesCommand, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/activity';
import type { AwsErrorClass } from '../../activities/errors';
import {
  CLASSIFIED_CODES,
  CONCURRENCY_LIMIT_FAILURE,
  aws,
  awsErrorCode,
  classifyAwsError,
  rethrowAws,
} from '../../activities/errors';
import { FailureType } from '../../workflows/contracts';
import { awsError, errorOf, nonRetryableFailure } from './failures';
import { IMAGE_ID, INSTANCE_ID, TARGET, image } from './fixtures';
import { activityEnv, harness } from './harness';

interface Case {
  name: string;
  status: number;
  expect: { retry: true; reason: string } | { retry: false; type: FailureType };
}

const retry = (reason: string) => ({ retry: true, reason }) as const;
const fail = (type: FailureType) => ({ retry: false, type }) as const;

/**
 * Every code activities/errors.ts names, and every code issue 16 lists, with its class. A code in
 * the tables without a row here fails the coverage test below.
 */
const CASES: Case[] = [
  // throttling: retried with Temporal's backoff
  { name: 'RequestLimitExceeded', status: 503, expect: retry('throttling') },
  { name: 'RequestLimitExceeded', status: 400, expect: retry('throttling') },
  { name: 'Throttling', status: 400, expect: retry('throttling') },
  { name: 'ThrottlingException', status: 400, expect: retry('throttling') },
  { name: 'ThrottledException', status: 400, expect: retry('throttling') },
  { name: 'RequestThrottledException', status: 400, expect: retry('throttling') },
  { name: 'TooManyRequestsException', status: 400, expect: retry('throttling') },
  { name: 'TooManyUpdates', status: 400, expect: retry('throttling') },
  { name: 'TooManyRequests', status: 429, expect: retry('throttling') },
  // server side: retried
  { name: 'InternalError', status: 500, expect: retry('server') },
  { name: 'InternalFailure', status: 500, expect: retry('server') },
  { name: 'ServiceUnavailable', status: 503, expect: retry('server') },
  { name: 'Unavailable', status: 503, expect: retry('server') },
  { name: 'SomethingNew', status: 503, expect: retry('server') },
  { name: 'InsufficientInstanceCapacity', status: 400, expect: retry('server') },
  { name: 'KMSInternalException', status: 500, expect: retry('server') },
  { name: 'DependencyTimeoutException', status: 503, expect: retry('server') },
  // settle by themselves: retried
  { name: 'IncorrectInstanceState', status: 400, expect: retry('transient-state') },
  { name: 'IncorrectState', status: 400, expect: retry('transient-state') },
  { name: 'InvalidState', status: 400, expect: retry('transient-state') },
  { name: 'InvalidSnapshot.InUse', status: 400, expect: retry('transient-state') },
  { name: 'PendingVerification', status: 400, expect: retry('transient-state') },
  { name: 'ExpiredToken', status: 400, expect: retry('transient-state') },
  { name: 'RequestExpired', status: 400, expect: retry('transient-state') },
  { name: 'ConcurrentTagAccess', status: 400, expect: retry('transient-state') },
  // snapshot and copy concurrency: retried after the documented delay
  { name: 'SnapshotCreationPerVolumeRateExceeded', status: 400, expect: retry('concurrency-limit') },
  { name: 'ConcurrentSnapshotLimitExceeded', status: 400, expect: retry('concurrency-limit') },
  { name: 'ConcurrentCreateImageNoRebootLimitExceeded', status: 400, expect: retry('concurrency-limit') },
  { name: 'PendingSnapshotLimitExceeded', status: 400, expect: retry('concurrency-limit') },
  { name: 'ResourceLimitExceeded', status: 400, expect: retry('concurrency-limit') },
  // not found: permanent
  { name: 'InvalidInstanceID.NotFound', status: 400, expect: fail(FailureType.AwsNotFound) },
  { name: 'InvalidAMIID.NotFound', status: 400, expect: fail(FailureType.AwsNotFound) },
  { name: 'InvalidAMIID.Unavailable', status: 400, expect: fail(FailureType.AwsNotFound) },
  { name: 'InvalidSnapshot.NotFound', status: 400, expect: fail(FailureType.AwsNotFound) },
  { name: 'NotFoundException', status: 400, expect: fail(FailureType.AwsNotFound) },
  // malformed: permanent
  { name: 'InvalidParameterValue', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidParameter', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidParameterCombination', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'MissingParameter', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'ValidationError', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'ValidationException', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'UnknownParameter', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidRequest', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidAMIID.Malformed', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidInstanceID.Malformed', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidAMIName.Malformed', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidAMIName.Duplicate', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidArnException', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidGrantIdException', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidGrantTokenException', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidAliasNameException', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'MalformedPolicyDocumentException', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidAMIAttributeItemValue', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'HierarchyTypeMismatchException', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'ParameterPatternMismatchException', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'UnsupportedParameterType', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidAllowedPatternException', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'InvalidBlockDeviceMapping', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'PackedPolicyTooLargeException', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'IdempotentParameterMismatch', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'IdempotentInstanceTerminated', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  { name: 'AnUnknownClientError', status: 400, expect: fail(FailureType.AwsMalformedRequest) },
  // unauthorized: permanent
  { name: 'UnauthorizedOperation', status: 403, expect: fail(FailureType.AwsUnauthorized) },
  { name: 'AuthFailure', status: 401, expect: fail(FailureType.AwsUnauthorized) },
  { name: 'AccessDenied', status: 403, expect: fail(FailureType.AwsUnauthorized) },
  { name: 'AccessDeniedException', status: 400, expect: fail(FailureType.AwsUnauthorized) },
  { name: 'InvalidClientTokenId', status: 403, expect: fail(FailureType.AwsUnauthorized) },
  { name: 'SignatureDoesNotMatch', status: 403, expect: fail(FailureType.AwsUnauthorized) },
  { name: 'OptInRequired', status: 403, expect: fail(FailureType.AwsUnauthorized) },
  { name: 'Blocked', status: 403, expect: fail(FailureType.AwsUnauthorized) },
  { name: 'RegionDisabledException', status: 403, expect: fail(FailureType.AwsUnauthorized) },
  { name: 'ExpiredTokenException', status: 400, expect: fail(FailureType.AwsUnauthorized) },
  // quotas: permanent
  { name: 'InstanceLimitExceeded', status: 400, expect: fail(FailureType.AwsLimitExceeded) },
  { name: 'SnapshotLimitExceeded', status: 400, expect: fail(FailureType.AwsLimitExceeded) },
  { name: 'VolumeLimitExceeded', status: 400, expect: fail(FailureType.AwsLimitExceeded) },
  { name: 'TagLimitExceeded', status: 400, expect: fail(FailureType.AwsLimitExceeded) },
  { name: 'LimitExceededException', status: 400, expect: fail(FailureType.AwsLimitExceeded) },
  { name: 'VcpuLimitExceeded', status: 400, expect: fail(FailureType.AwsLimitExceeded) },
  { name: 'InsufficientFreeAddressesInSubnet', status: 400, expect: fail(FailureType.AwsLimitExceeded) },
  { name: 'ParameterLimitExceeded', status: 400, expect: fail(FailureType.AwsLimitExceeded) },
  { name: 'ParameterMaxVersionLimitExceeded', status: 400, expect: fail(FailureType.AwsLimitExceeded) },
  { name: 'HierarchyLevelLimitExceededException', status: 400, expect: fail(FailureType.AwsLimitExceeded) },
  // keys that cannot be used: permanent
  { name: 'CustomerKeyHasBeenRevoked', status: 400, expect: fail(FailureType.KmsKeyUnusable) },
  { name: 'DisabledException', status: 400, expect: fail(FailureType.KmsKeyUnusable) },
  { name: 'KMSInvalidStateException', status: 400, expect: fail(FailureType.KmsKeyUnusable) },
  { name: 'InvalidKeyUsageException', status: 400, expect: fail(FailureType.KmsKeyUnusable) },
  { name: 'InvalidKeyId', status: 400, expect: fail(FailureType.KmsKeyUnusable) },
  // policy refusals: permanent
  { name: 'OperationNotPermitted', status: 400, expect: fail(FailureType.AwsPolicyRefused) },
  { name: 'UnsupportedOperation', status: 400, expect: fail(FailureType.AwsPolicyRefused) },
  { name: 'Unsupported', status: 400, expect: fail(FailureType.AwsPolicyRefused) },
  { name: 'UnsupportedOperationException', status: 400, expect: fail(FailureType.AwsPolicyRefused) },
  { name: 'IncorrectKeyException', status: 400, expect: fail(FailureType.AwsPolicyRefused) },
  { name: 'TagPolicyViolation', status: 400, expect: fail(FailureType.AwsPolicyRefused) },
  { name: 'EncryptedVolumesNotSupported', status: 400, expect: fail(FailureType.AwsPolicyRefused) },
  { name: 'ParameterAlreadyExists', status: 400, expect: fail(FailureType.AwsPolicyRefused) },
];

/** Codes no AWS API documents: gone from the tables, so they get no special treatment. */
const UNDOCUMENTED = [
  'AMIQuotaExceeded',
  'KMS.DisabledException',
  'EC2ThrottledException',
  'RequestThrottled',
  'SlowDown',
  'PriorRequestNotComplete',
];

function summary(c: AwsErrorClass) {
  return c.retry ? { retry: true, reason: c.reason } : { retry: false, type: c.type };
}

void describe('classifyAwsError', () => {
  void it('GIVEN the tables of activities/errors.ts WHEN compared with the case table THEN every classified code has a case', () => {
    const covered = new Set(CASES.map((c) => c.name));
    assert.deepEqual(
      CLASSIFIED_CODES.filter((code) => !covered.has(code)),
      [],
    );
  });

  for (const code of UNDOCUMENTED) {
    void it(`GIVEN ${code}, which no AWS API returns, WHEN classified THEN it is no known code: an unknown 4xx (malformed)`, () => {
      assert.ok(!CLASSIFIED_CODES.includes(code));
      assert.deepEqual(summary(classifyAwsError(awsError(code, 400))), fail(FailureType.AwsMalformedRequest));
    });
  }

  for (const c of CASES) {
    void it(`GIVEN ${c.name} (HTTP ${c.status}) WHEN classified THEN ${c.expect.retry ? `retry (${c.expect.reason})` : c.expect.type}`, () => {
      const sdkError = awsError(c.name, c.status);
      const plainObject = { name: c.name, $metadata: { httpStatusCode: c.status } };

      for (const err of [sdkError, plainObject]) {
        const got = classifyAwsError(err);
        assert.equal(got.code, c.name);
        assert.deepEqual(summary(got), c.expect);
      }
    });
  }

  void it('GIVEN a server fault without a status WHEN classified THEN retry (server)', () => {
    assert.deepEqual(
      summary(classifyAwsError({ name: 'Whatever', $fault: 'server', $metadata: {} })),
      retry('server'),
    );
  });

  void it('GIVEN a network error that never reached AWS WHEN classified THEN retry (network), its code kept', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    assert.deepEqual(classifyAwsError(reset), { retry: true, code: 'ECONNRESET', reason: 'network' });
    const timeout = Object.assign(new Error('connect timed out'), { name: 'TimeoutError' });
    assert.deepEqual(classifyAwsError(timeout), { retry: true, code: 'TimeoutError', reason: 'network' });
  });

  void it('GIVEN an XML-style error with Code WHEN its code is read THEN Code wins over name', () => {
    assert.equal(awsErrorCode({ Code: 'InvalidAMIID.NotFound', name: 'Error' }), 'InvalidAMIID.NotFound');
    assert.equal(awsErrorCode('not an object'), 'Unknown');
  });
});

void describe('rethrowAws and aws()', () => {
  void it('GIVEN a retryable error WHEN rethrown THEN it is the very same object', () => {
    const throttled = awsError('Throttling', 400);
    assert.throws(
      () => rethrowAws(throttled, 'doing a thing'),
      (err) => err === throttled,
    );
  });

  void it('GIVEN a permanent error WHEN rethrown THEN a non-retryable ApplicationFailure with type, action, code, AWS message, cause and details', () => {
    const denied = awsError(
      'UnauthorizedOperation',
      403,
      'You are not authorized to perform this operation.',
    );
    let caught: unknown;
    try {
      rethrowAws(denied, `stopping instance ${INSTANCE_ID}`);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ApplicationFailure);
    assert.equal(caught.type, FailureType.AwsUnauthorized);
    assert.equal(caught.nonRetryable, true);
    assert.equal(
      caught.message,
      `stopping instance ${INSTANCE_ID}: AWS refused with UnauthorizedOperation: You are not authorized to perform this operation.` +
        ' (check the worker credentials or the role configured for this account)',
    );
    assert.equal(caught.cause, denied);
    assert.deepEqual(caught.details, [{ awsCode: 'UnauthorizedOperation' }]);
  });

  void it('GIVEN a quota error WHEN rethrown THEN the message says to raise the quota', () => {
    assert.throws(
      () => rethrowAws(awsError('SnapshotLimitExceeded', 400), 'creating image'),
      (err) =>
        err instanceof ApplicationFailure &&
        err.message.endsWith('(raise the quota or clean up unused resources)'),
    );
  });

  for (const [code, delayMs] of [
    ['SnapshotCreationPerVolumeRateExceeded', 15_000],
    ['ConcurrentSnapshotLimitExceeded', 30_000],
    ['ConcurrentCreateImageNoRebootLimitExceeded', 30_000],
    ['PendingSnapshotLimitExceeded', 30_000],
    ['ResourceLimitExceeded', 30_000],
  ] as const) {
    void it(`GIVEN ${code} WHEN rethrown THEN a retryable failure whose next retry waits ${delayMs / 1000} s, with the AWS error as cause`, () => {
      const limited = awsError(code, 400);
      let caught: unknown;
      try {
        rethrowAws(limited, 'creating image of i-1');
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ApplicationFailure);
      assert.equal(caught.type, CONCURRENCY_LIMIT_FAILURE);
      assert.equal(caught.nonRetryable, false);
      assert.equal(caught.nextRetryDelay, delayMs);
      assert.equal(caught.cause, limited);
      assert.ok(caught.message.startsWith(`creating image of i-1: AWS answered ${code}`));
    });
  }

  void it('GIVEN an idempotency token used for a terminated instance WHEN rethrown THEN the message says to start a new run', () => {
    assert.throws(
      () => rethrowAws(awsError('IdempotentInstanceTerminated', 400), 'launching'),
      (err) => err instanceof ApplicationFailure && err.message.endsWith('start a new run)'),
    );
  });

  void it('GIVEN an ApplicationFailure already WHEN rethrown THEN it passes through unchanged', () => {
    const already = ApplicationFailure.nonRetryable('already typed', FailureType.ImageFailed);
    assert.throws(
      () => rethrowAws(already, 'anything'),
      (err) => err === already,
    );
  });

  void it('GIVEN a call that succeeds WHEN wrapped in aws() THEN its value is returned', async () => {
    assert.equal(await aws('reading', () => Promise.resolve(42)), 42);
  });
});

void describe('AWS errors through an activity (describeInstance)', () => {
  const ref = { target: TARGET, instanceId: INSTANCE_ID };

  for (const [name, status] of [
    ['RequestLimitExceeded', 503],
    ['Throttling', 400],
    ['TooManyRequests', 429],
    ['InternalError', 500],
    ['ServiceUnavailable', 503],
  ] as const) {
    void it(`GIVEN DescribeInstances answers ${name} (HTTP ${status}) WHEN describing THEN the SDK error reaches Temporal as is (retryable)`, async () => {
      const h = harness();
      const sdkError = awsError(name, status);
      h.ec2Mock.on(DescribeInstancesCommand).rejects(sdkError);

      const err = await errorOf(activityEnv().run(h.activities.describeInstance, ref));

      assert.equal(err, sdkError);
      assert.ok(!(err instanceof ApplicationFailure));
    });
  }

  /** A permanent error of DescribeInstances, the failure it becomes and what its message names. */
  const refused = (name: string) => [
    `reading instance ${INSTANCE_ID}`,
    `AWS refused with ${name}`,
    'refused (simulated)',
  ];
  const code = 'naming the action and the code';
  for (const [name, status, type, names, why] of [
    ['UnauthorizedOperation', 403, FailureType.AwsUnauthorized, refused('UnauthorizedOperation'), code],
    ['AuthFailure', 401, FailureType.AwsUnauthorized, refused('AuthFailure'), code],
    ['InvalidParameterValue', 400, FailureType.AwsMalformedRequest, refused('InvalidParameterValue'), code],
    ['InvalidInstanceID.Malformed', 400, FailureType.InstanceNotFound, [INSTANCE_ID], 'the id is wrong'],
  ] as const) {
    void it(`GIVEN DescribeInstances answers ${name} WHEN describing THEN ${type}, non-retryable, ${why}`, async () => {
      const h = harness();
      h.ec2Mock.on(DescribeInstancesCommand).rejects(awsError(name, status, 'refused (simulated)'));

      await nonRetryableFailure(activityEnv().run(h.activities.describeInstance, ref), type, ...names);
    });
  }
});

void describe('AWS errors through an activity (tagSnapshots reading the image)', () => {
  const tagInput = { target: TARGET, imageId: IMAGE_ID, tags: {} };

  void it('GIVEN InvalidAMIID.Malformed WHEN reading the image THEN AwsMalformedRequest, non-retryable, naming the image', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.Malformed', 400));

    await nonRetryableFailure(
      activityEnv().run(h.activities.tagSnapshots, tagInput),
      FailureType.AwsMalformedRequest,
      `reading image ${IMAGE_ID}`,
      'InvalidAMIID.Malformed',
    );
  });

  void it('GIVEN an HTTP 500 WHEN reading the image THEN retryable, as is', async () => {
    const h = harness();
    const internal = awsError('InternalError', 500);
    h.ec2Mock.on(DescribeImagesCommand).rejects(internal);

    assert.equal(await errorOf(activityEnv().run(h.activities.tagSnapshots, tagInput)), internal);
  });

  void it('GIVEN the image is there WHEN no error occurs THEN no failure (control)', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeImagesCommand)
      .resolves({ Images: [image('available', { BlockDeviceMappings: [] })] });

    assert.deepEqual(await activityEnv().run(h.activities.tagSnapshots, tagInput), { snapshotIds: [] });
  });
});
