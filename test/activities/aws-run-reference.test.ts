/**
 * Tier 2, issue 11.5 and 11.4 on the wire: the AWS clients `createAwsClients` builds (the worker's
 * own) send each call inside an activity with `amiflow/<version>` and `amiflow-run/<workflow
 * type>#<run id prefix>` in the user agent, which CloudTrail records as `userAgent`; an error is
 * counted by service, operation and code (throttles apart) and logged once with the ids of the run
 * and the request id AWS sent. A local HTTP server plays EC2 and records what it was sent.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import type { LogLevel, LogMetadata } from '@temporalio/common';
import type { MetricCounter, MetricMeter, MetricTags } from '@temporalio/common';
import { noopMetricMeter } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { AwsClients } from '../../activities/aws';
import { createAwsClients } from '../../activities/aws';
import { AMIFLOW_USER_AGENT } from '../../activities/aws-telemetry';
import { METRIC } from '../../workflows/metric-names';

const RUN_ID = '0199aabb-ccdd-7eef-8001-123456789abc';
const OK =
  '<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-ok</requestId><reservationSet/></DescribeInstancesResponse>';
const errorBody = (code: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>said EC2</Message></Error></Errors><RequestID>req-body</RequestID></Response>`;

/** What EC2 answers next: status and code (none: success). */
let answer: { status: number; code?: string } = { status: 200 };
const seen: IncomingHttpHeaders[] = [];
let server: Server;
let endpoint: string;

before(async () => {
  server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.writeHead(answer.status, { 'content-type': 'text/xml', 'x-amzn-requestid': 'req-7f3a' });
      res.end(answer.code ? errorBody(answer.code) : OK);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

interface Counted {
  name: string;
  value: number;
  tags: MetricTags;
}

/** A meter that records what counters are given (histograms and gauges: no-ops). */
function recordingMeter(counted: Counted[]): MetricMeter {
  const counter = (name: string): MetricCounter => ({
    name,
    kind: 'counter',
    valueType: 'int',
    add: (value, tags = {}) => counted.push({ name, value, tags }),
    withTags: () => counter(name),
  });
  const meter: MetricMeter = {
    createCounter: counter,
    createHistogram: (name, valueType, unit, description) =>
      noopMetricMeter.createHistogram(name, valueType, unit, description),
    createGauge: (name, valueType, unit, description) =>
      noopMetricMeter.createGauge(name, valueType, unit, description),
    withTags: () => meter,
  };
  return meter;
}

function clients(meter?: MetricMeter): AwsClients {
  return createAwsClients(
    {
      endpoint,
      roleArns: {},
      roleSessionSeconds: 3600,
      sdkMaxAttempts: 1,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    },
    meter ? { meter } : {},
  );
}

/** The activity context of attempt 2 of `describeInstance` in run RUN_ID, its log lines kept. */
function activity(logs: { level: LogLevel; message: string; meta: LogMetadata }[]): MockActivityEnvironment {
  return new MockActivityEnvironment(
    {
      activityType: 'describeInstance',
      attempt: 2,
      workflowType: 'imageFromInstance',
      workflowExecution: { workflowId: 'image-from-instance/i-1', runId: RUN_ID },
    },
    {
      logger: new DefaultLogger('DEBUG', (e) =>
        logs.push({ level: e.level, message: e.message, meta: e.meta ?? {} }),
      ),
    },
  );
}

const userAgent = (h: IncomingHttpHeaders | undefined) =>
  `${h?.['user-agent'] ?? ''} ${h?.['x-amz-user-agent'] ?? ''}`;

void describe('AWS calls carry the run (CloudTrail userAgent), errors carry the request id', () => {
  beforeEach(() => {
    seen.length = 0;
    answer = { status: 200 };
  });

  void it('GIVEN an activity of a run WHEN it calls EC2 THEN the user agent names amiflow and the run: workflow type and the first 8 of its run id', async () => {
    const aws = clients();
    const ec2 = await aws.ec2({ region: 'eu-west-1' });
    await activity([]).run(() => ec2.send(new DescribeInstancesCommand({})));
    const ua = userAgent(seen[0]);
    assert.ok(ua.includes(`${AMIFLOW_USER_AGENT[0]}/${AMIFLOW_USER_AGENT[1]}`), ua);
    assert.ok(ua.includes(`amiflow-run/imageFromInstance#${RUN_ID.slice(0, 8)}`), ua);
    // WHEN: the same client outside any activity (the wait watcher, a start-up check)
    await ec2.send(new DescribeInstancesCommand({}));
    const outside = userAgent(seen[1]);
    assert.ok(outside.includes('amiflow/'), outside);
    assert.ok(!outside.includes('amiflow-run/'), 'no run to name: none named');
    aws.destroy();
  });

  void it('GIVEN EC2 refuses with a code WHEN called in an activity THEN counted by service, operation and code, and logged once with the run ids and the request id', async () => {
    const counted: Counted[] = [];
    const logs: { level: LogLevel; message: string; meta: LogMetadata }[] = [];
    const aws = clients(recordingMeter(counted));
    const ec2 = await aws.ec2({ region: 'eu-west-1' });
    answer = { status: 400, code: 'InvalidInstanceID.NotFound' };
    await assert.rejects(activity(logs).run(() => ec2.send(new DescribeInstancesCommand({}))));
    assert.deepEqual(counted, [
      {
        name: METRIC.awsErrors,
        value: 1,
        tags: { service: 'ec2', operation: 'DescribeInstances', code: 'InvalidInstanceID.NotFound' },
      },
    ]);
    const line = logs.filter((l) => l.meta.code !== undefined);
    assert.equal(line.length, 1, 'logged once');
    assert.equal(line[0]?.level, 'WARN');
    assert.equal(line[0]?.message, 'AWS ec2:DescribeInstances failed with InvalidInstanceID.NotFound');
    assert.deepEqual(
      [
        line[0]?.meta.workflowId,
        line[0]?.meta.workflowRunId,
        line[0]?.meta.workflowType,
        line[0]?.meta.activityType,
        line[0]?.meta.attempt,
        line[0]?.meta.service,
        line[0]?.meta.operation,
        line[0]?.meta.requestId,
      ],
      [
        'image-from-instance/i-1',
        RUN_ID,
        'imageFromInstance',
        'describeInstance',
        2,
        'ec2',
        'DescribeInstances',
        'req-7f3a',
      ],
    );
    aws.destroy();
  });

  void it('GIVEN EC2 throttles WHEN called THEN counted as an AWS error and as a throttle', async () => {
    const counted: Counted[] = [];
    const aws = clients(recordingMeter(counted));
    const ec2 = await aws.ec2({ region: 'eu-west-1' });
    answer = { status: 503, code: 'RequestLimitExceeded' };
    await assert.rejects(activity([]).run(() => ec2.send(new DescribeInstancesCommand({}))));
    assert.deepEqual(
      counted.map((c) => [c.name, c.tags]),
      [
        [METRIC.awsErrors, { service: 'ec2', operation: 'DescribeInstances', code: 'RequestLimitExceeded' }],
        [METRIC.awsThrottles, { service: 'ec2', operation: 'DescribeInstances' }],
      ],
    );
    aws.destroy();
  });
});
