/**
 * Tier 3: the worker as operators run it. `worker/main.ts` is started as its own process (as
 * `npm start` and the container do) against the dev server and moto, with stdout a pipe (so JSON
 * logs by default), a metrics port and a health port. The test images an instance, runs an image
 * that fails (no such instance), and then reads what an operator would: `/healthz`, `/readyz`,
 * `/metrics` and every stdout line.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AmiflowClient } from '../../client';
import { FailureType, SearchAttr } from '../../workflows/contracts';
import type { Moto } from '../support/moto';
import { startMoto } from '../support/moto';
import { startCollector } from '../support/otlp-collector';
import { freePort } from '../support/ports';
import { installQuietRuntime } from '../support/runtime';
import { SANDBOX_REGION, launchInstance, sandboxEc2, stockEbsAmi } from '../support/sandbox-ec2';
import { devServerEnv } from '../support/temporal';
import { eventually, runFailure } from './fixtures';
import { SANDBOX_AWS_ENV, startWorkerProcess, status, untilHealth } from './worker-process';

let env: TestWorkflowEnvironment;
let moto: Moto;
let temporalPort: number;

/** The worker process builds its own workflow bundle before it is ready: each wait here allows 90 s. */
const WAIT_MS = 90_000;

/** The value of the first sample of `name` whose labels include every `labels` pair. */
function sample(metrics: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

before(async () => {
  installQuietRuntime();
  temporalPort = await freePort();
  [env, moto] = await Promise.all([devServerEnv({ port: temporalPort }), startMoto()]);
});

after(async () => {
  await Promise.allSettled([env?.teardown(), moto?.stop()]);
});

void describe('the worker process, as operators see it', () => {
  void it('GIVEN a started worker WHEN it images one instance and fails one run THEN health, metrics and JSON logs tell the story', async () => {
    const collector = await startCollector();
    const worker = await startWorkerProcess(temporalPort, moto.endpoint, {
      ...SANDBOX_AWS_ENV,
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    });
    let okRunId = '';
    try {
      // GIVEN: alive at once, not ready until it polls
      await untilHealth(worker, '/healthz', WAIT_MS);
      assert.equal(await status(`${worker.healthUrl}/readyz`), 503, 'not ready before polling');
      await untilHealth(worker, '/readyz', WAIT_MS);

      // WHEN: one image in stop mode, one run on an instance that does not exist
      const ec2 = sandboxEc2(moto.endpoint);
      const instanceId = await launchInstance(ec2, await stockEbsAmi(ec2));
      ec2.destroy();
      const client = AmiflowClient.fromClient(env.client, worker.taskQueue);
      const ok = await client.startImageFromInstance({
        region: SANDBOX_REGION,
        instanceId,
        imageName: `operability-${instanceId}`,
        mode: 'stop',
      });
      await client.result(ok.workflowId);
      okRunId = ok.runId;
      const bad = await client.startImageFromInstance({
        region: SANDBOX_REGION,
        instanceId: 'i-0123456789abcdef0',
        imageName: 'operability-missing',
        mode: 'no-reboot',
      });
      const failure = await runFailure(client, bad.workflowId);
      assert.equal(failure.failureType, FailureType.InstanceNotFound);
      assert.match(failure.message, /InvalidInstanceID\.NotFound/, 'the failure names the AWS error code');

      // THEN: the outcome is searchable
      const okDesc = await client.handle(ok.workflowId).describe();
      assert.equal(okDesc.typedSearchAttributes.get(SearchAttr.outcome), 'succeeded');
      const badDesc = await client.handle(bad.workflowId).describe();
      assert.equal(badDesc.typedSearchAttributes.get(SearchAttr.outcome), 'failed');
      assert.equal(badDesc.typedSearchAttributes.get(SearchAttr.step), 'failed at describe instance');

      // THEN: the SDK's metrics and amiflow's, with the values of these two runs
      const metrics = await eventually(
        'metrics of both runs',
        async () => {
          const text = await (await fetch(worker.metricsUrl)).text();
          return sample(text, 'amiflow_images_made_total', { outcome: 'failed' }) === 1 ? text : undefined;
        },
        WAIT_MS,
      );
      for (const sdkMetric of [
        'temporal_worker_task_slots_available',
        'temporal_worker_task_slots_used',
        'temporal_workflow_task_schedule_to_start_latency_seconds_bucket',
        'temporal_activity_schedule_to_start_latency_seconds_bucket',
        'temporal_sticky_cache_size',
        'temporal_sticky_cache_hit_total',
        'temporal_num_pollers',
      ])
        assert.notEqual(sample(metrics, sdkMetric), undefined, `SDK metric ${sdkMetric} in /metrics`);
      assert.equal(sample(metrics, 'amiflow_images_made_total', { mode: 'stop', outcome: 'succeeded' }), 1);
      assert.equal(sample(metrics, 'amiflow_images_made_total', { mode: 'no-reboot', outcome: 'failed' }), 1);
      assert.equal(
        sample(metrics, 'amiflow_runs_total', { workflowType: 'imageFromInstance', outcome: 'succeeded' }),
        1,
      );
      assert.equal(
        sample(metrics, 'amiflow_runs_total', { workflowType: 'imageFromInstance', outcome: 'failed' }),
        1,
      );
      assert.equal(sample(metrics, 'amiflow_instance_downtime_seconds_count'), 1);
      assert.equal(sample(metrics, 'amiflow_image_wait_seconds_count'), 1);
      assert.equal(sample(metrics, 'amiflow_waits_in_flight', { activityType: 'waitForImageAvailable' }), 0);
      assert.ok(
        (sample(metrics, 'amiflow_aws_errors_total', {
          service: 'ec2',
          operation: 'DescribeInstances',
          code: 'InvalidInstanceID.NotFound',
        }) ?? 0) >= 1,
        'the AWS error is counted by service, operation and code',
      );
      // Nothing was copied, shared, throttled or compensated by these runs.
      for (const none of [
        'amiflow_copies_total',
        'amiflow_shares_total',
        'amiflow_aws_throttles_total',
        'amiflow_compensations_total',
      ])
        assert.equal(sample(metrics, none), undefined, `${none} absent: nothing of the kind happened`);
      assert.doesNotMatch(metrics, /workflow_id=|run_id=|instance_id=/, 'no ids as labels');
    } finally {
      worker.child.kill('SIGTERM');
      assert.equal(await worker.exited, 0, 'SIGTERM shuts the worker down cleanly');
      collector.server.close();
    }

    // THEN: the runs' spans reached the collector: workflow, activities, and AWS calls as children
    assert.ok(okRunId);
    const names = new Set(collector.spans.map((s) => s.name));
    assert.ok(names.has('RunWorkflow:imageFromInstance'), `spans: ${[...names].join(', ')}`);
    const createImage = collector.spans.find((s) => s.name === 'RunActivity:createImage');
    assert.ok(createImage, 'the activity span arrived');
    const awsCall = collector.spans.find((s) => s.name === 'ec2.CreateImage');
    assert.ok(awsCall, 'the AWS call span arrived');
    assert.equal(awsCall.parentSpanId, createImage.spanId, 'the AWS call is a child of its activity');
    assert.equal(awsCall.traceId, createImage.traceId);

    // THEN: every stdout line is one JSON object; the runs' lines carry their ids
    assert.ok(worker.lines.length > 0);
    const records = worker.lines.map((line) => {
      assert.doesNotMatch(line, /\x1b\[/, 'no ANSI codes');
      return JSON.parse(line) as Record<string, unknown>;
    });
    for (const r of records) {
      assert.equal(typeof r.level, 'string');
      assert.equal(typeof r.time, 'string');
      assert.equal(typeof r.message, 'string');
    }
    const stepStarted = records.find((r) => r.message === 'step started: describe instance');
    assert.ok(stepStarted, 'each step start is logged');
    assert.equal(stepStarted.level, 'info');
    assert.equal(stepStarted.workflowType, 'imageFromInstance');
    assert.equal(typeof stepStarted.runId, 'string');
    const awsError = records.find((r) => r.code === 'InvalidInstanceID.NotFound');
    assert.ok(awsError, 'the AWS error is logged');
    assert.equal(awsError.service, 'ec2');
    assert.equal(awsError.operation, 'DescribeInstances');
    assert.equal(awsError.activityType, 'describeInstance');
    assert.equal(typeof awsError.workflowId, 'string');
    assert.ok(records.some((r) => r.message === 'run succeeded' && typeof r.workflowId === 'string'));
    assert.ok(records.some((r) => r.message === 'run failed' && typeof r.workflowId === 'string'));
  });
});
