/**
 * Permanent answers that are no AWS error code: a region with no endpoint (DNS ENOTFOUND for a
 * region the SDK's partition data does not list) and an action the endpoint does not implement
 * (moto's HTML 500). They fail at once, non-retryable, with the code and AWS's message; a DNS
 * failure for a real region stays transient. Regions are also checked before a run starts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DescribeImagesCommand, EC2ServiceException } from '@aws-sdk/client-ec2';
import type { Client } from '@temporalio/client';
import { classifyAwsError } from '../../activities/errors';
import { extraRegions, regionOfHost, regionProblem } from '../../activities/regions';
import { AmiflowClient, InvalidInputError } from '../../client';
import { FailureType } from '../../workflows/contracts';
import { nonRetryableFailure } from './failures';
import { TARGET } from './fixtures';
import { activityEnv, harness } from './harness';

/** What Node's resolver rejects with when a host does not exist. */
function dnsNotFound(hostname: string): Error {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
    code: 'ENOTFOUND',
    hostname,
    $metadata: { attempts: 1, totalRetryDelay: 0 },
  });
}

/** What the SDK rejects with when the endpoint answers HTTP 500 with an HTML page (moto, unimplemented action). */
function html500(): EC2ServiceException {
  return Object.assign(
    new EC2ServiceException({
      name: 'Unknown',
      $fault: 'server',
      $metadata: { httpStatusCode: 500 },
      message: 'Unknown',
    }),
    { $response: { statusCode: 500, headers: { 'content-type': 'text/html; charset=utf-8' }, body: {} } },
  );
}

void describe('region check from the SDK partition data', () => {
  void it('GIVEN regions of every partition WHEN checked THEN known ones pass and an invented one is refused with what to do', () => {
    for (const r of ['eu-west-1', 'us-east-1', 'cn-north-1', 'us-gov-west-1', 'ap-southeast-5'])
      assert.equal(regionProblem(r, []), undefined, r);
    assert.match(
      regionProblem('eu-west-99', []) ?? '',
      /'eu-west-99' is not a region .* AMIFLOW_EXTRA_REGIONS=eu-west-99/,
    );
  });

  void it('GIVEN a region newer than the SDK opted in WHEN checked THEN it passes', () => {
    const extra = extraRegions({ AMIFLOW_EXTRA_REGIONS: ' eu-west-99, xx-new-1 ' });
    assert.deepEqual(extra, ['eu-west-99', 'xx-new-1']);
    assert.equal(regionProblem('eu-west-99', extra), undefined);
  });

  void it('GIVEN endpoint host names WHEN read THEN the region is found', () => {
    assert.equal(regionOfHost('ec2.eu-west-99.amazonaws.com'), 'eu-west-99');
    assert.equal(regionOfHost('ec2.cn-north-1.amazonaws.com.cn'), 'cn-north-1');
    assert.equal(regionOfHost('localhost'), undefined);
  });

  void it('GIVEN a start in a region that does not exist WHEN the client validates THEN InvalidInputError names the field, and nothing starts', async () => {
    const calls: string[] = [];
    const workflow = new Proxy(
      {},
      { get: (_t, prop) => () => (calls.push(String(prop)), Promise.resolve({})) },
    );
    const client = AmiflowClient.fromClient({ workflow } as unknown as Client, 'amiflow');

    await assert.rejects(
      client.startImageFromInstance({
        region: 'eu-west-99',
        instanceId: 'i-0123456789abcdef0',
        imageName: 'web-1',
        mode: 'stop',
      }),
      (err: unknown) =>
        err instanceof InvalidInputError && /region: 'eu-west-99' is not a region/.test(err.message),
    );
    assert.deepEqual(calls, []);
  });
});

void describe('endpoint errors are classified permanent', () => {
  void it('GIVEN ENOTFOUND for a region no partition lists WHEN classified THEN AwsUnknownRegion, non-retryable', () => {
    assert.deepEqual(classifyAwsError(dnsNotFound('ec2.eu-west-99.amazonaws.com')), {
      retry: false,
      code: 'ENOTFOUND',
      type: FailureType.AwsUnknownRegion,
    });
  });

  void it('GIVEN ENOTFOUND for a real region (a DNS hiccup) WHEN classified THEN retried', () => {
    assert.equal(classifyAwsError(dnsNotFound('ec2.eu-west-1.amazonaws.com')).retry, true);
  });

  void it("GIVEN moto's HTML 500 for an action it does not implement WHEN classified THEN AwsNotImplemented, non-retryable; an XML 500 stays transient", () => {
    assert.deepEqual(classifyAwsError(html500()), {
      retry: false,
      code: 'NotImplemented',
      type: FailureType.AwsNotImplemented,
    });
    const xml500 = new EC2ServiceException({
      name: 'InternalError',
      $fault: 'server',
      $metadata: { httpStatusCode: 500 },
      message: 'x',
    });
    assert.equal(classifyAwsError(xml500).retry, true);
  });

  void it('GIVEN the region has no endpoint WHEN an activity calls EC2 THEN the step fails at once with the code and the host in its message', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeImagesCommand).rejects(dnsNotFound('ec2.eu-west-99.amazonaws.com'));

    await nonRetryableFailure(
      activityEnv().run(h.activities.checkImageName, {
        target: TARGET,
        imageName: 'web-1',
        workflowId: 'w',
        runId: 'r',
      }),
      FailureType.AwsUnknownRegion,
      'ENOTFOUND',
      'ec2.eu-west-99.amazonaws.com',
      'AMIFLOW_EXTRA_REGIONS',
    );
    assert.equal(h.ec2Mock.commandCalls(DescribeImagesCommand).length, 1, 'no retry inside the activity');
  });
});
