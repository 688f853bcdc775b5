/**
 * Tier 3, the rest of issue 11's metrics and logs that `operability.e2e.test.ts` cannot show with
 * one image and one failing run: the worker process (`worker/main.ts`, as `npm start` runs it)
 * behind the fault layer copies an image while EC2 throttles, shares it, has an image run
 * cancelled while its image is pending (so its undo runs), and runs a backup whose maintenance
 * window has passed. Then `/metrics` must count each of those with the value they imply, and every
 * JSON line that names a run must carry that run's ids. A second worker, without AWS credentials,
 * must stay unready naming them.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AmiflowClient } from '../../client';
import type { FaultProxy } from '../../devkit/faults/fault-proxy';
import { startFaultProxy } from '../../devkit/faults/fault-proxy';
import { NO_FAULTS } from '../../devkit/faults/options';
import type { Moto } from '../../devkit/moto';
import { startMoto } from '../../devkit/moto';
import { freePort } from '../../devkit/ports';
import { installQuietRuntime } from '../../devkit/runtime';
import {
  SANDBOX_REGION,
  createImageDirectly,
  launchInstance,
  sandboxEc2,
  stockEbsAmi,
} from '../../devkit/sandbox-ec2';
import { devServerEnv } from '../../devkit/temporal';
import { ROOT } from '../../devkit/tools';
import { eventually } from './fixtures';
import {
  SANDBOX_AWS_ENV,
  metricTotal,
  startWorkerProcess,
  stopWorkerProcess,
  untilHealth,
} from './worker-process';

let env: TestWorkflowEnvironment;
let moto: Moto;
let proxy: FaultProxy;
let ec2: EC2Client;
let temporalPort: number;

/** The worker process builds its own workflow bundle before it is ready: each wait here allows 90 s. */
const WAIT_MS = 90_000;

before(async () => {
  installQuietRuntime();
  temporalPort = await freePort();
  [env, moto] = await Promise.all([devServerEnv({ port: temporalPort }), startMoto()]);
  proxy = await startFaultProxy({ target: moto.endpoint });
  ec2 = sandboxEc2(moto.endpoint);
});

after(async () => {
  ec2?.destroy();
  await proxy?.stop();
  await Promise.allSettled([env?.teardown(), moto?.stop()]);
});

void describe('the worker process: what a copy, a share, an undo, throttling and a skipped backup show', () => {
  void it('GIVEN a worker behind a throttling EC2 WHEN it copies, shares, undoes a cancelled image and skips a late backup THEN /metrics counts each and every run line carries its run ids', async () => {
    // Every throttle reaches amiflow's middleware (no SDK retry hides it), so /metrics must count
    // exactly the throttles the layer answered.
    const worker = await startWorkerProcess(temporalPort, proxy.endpoint, {
      ...SANDBOX_AWS_ENV,
      AMIFLOW_AWS_MAX_ATTEMPTS: '1',
    });
    const runs = new Map<string, string>(); // workflowId → runId
    let cancelledWorkflowId = '';
    try {
      await untilHealth(worker, '/readyz', WAIT_MS);
      const client = AmiflowClient.fromClient(env.client, worker.taskQueue);
      const instanceId = await launchInstance(ec2, await stockEbsAmi(ec2));
      const sourceImage = await createImageDirectly(ec2, instanceId, `ops-more-source-${instanceId}`);

      // WHEN: a copy while a quarter of EC2 calls are throttled (seeded: the same calls every run)
      proxy.reset();
      proxy.configure({ ...NO_FAULTS, seed: 11, throttleRate: 0.25 });
      const copy = await client.startCopyImage({
        region: SANDBOX_REGION,
        imageId: sourceImage,
        destinations: [{ region: 'us-west-2' }],
      });
      runs.set(copy.workflowId, copy.runId);
      await client.result(copy.workflowId);
      const throttled = proxy.stats().faults.throttled ?? 0;
      proxy.configure({ throttleRate: 0 });
      assert.ok(throttled > 0, 'the layer throttled some calls of the copy');

      // WHEN: a share with another account
      const share = await client.startShareImage({
        region: SANDBOX_REGION,
        imageId: sourceImage,
        targets: { accountIds: ['111122223333'] },
      });
      runs.set(share.workflowId, share.runId);
      await client.result(share.workflowId);

      // WHEN: an image run cancelled while EC2 keeps its image pending: its undo runs
      proxy.configure({ imagePendingMs: 3_600_000 });
      const cancelled = await client.startImageFromInstance({
        region: SANDBOX_REGION,
        instanceId,
        imageName: `ops-more-cancelled-${instanceId}`,
        mode: 'stop',
      });
      runs.set(cancelled.workflowId, cancelled.runId);
      cancelledWorkflowId = cancelled.workflowId;
      await eventually(
        'the image wait',
        async () => {
          const p = await client.progress(cancelled.workflowId);
          return p.steps.find((s) => s.name === 'wait for image available')?.state === 'running'
            ? p
            : undefined;
        },
        WAIT_MS,
      );
      await client.cancel(cancelled.workflowId);
      await client.result(cancelled.workflowId).then(
        () => assert.fail('the cancelled run succeeded'),
        () => undefined,
      );
      proxy.configure({ imagePendingMs: 0 });

      // WHEN: a backup whose one-minute window closed an hour ago: nothing is imaged
      const late = await client.startBackup({
        region: SANDBOX_REGION,
        plan: `ops-more-${Date.now()}`,
        instanceIds: [instanceId],
        windowSeconds: 60,
        scheduledTime: new Date(Date.now() - 3_600_000).toISOString(),
      });
      runs.set(late.workflowId, late.runId);
      await client.result(late.workflowId).then(
        () => undefined,
        () => undefined,
      );

      // THEN: each of them counted, with the values these runs imply
      const metrics = await eventually(
        'the metrics of the four runs',
        async () => {
          const text = await (await fetch(worker.metricsUrl)).text();
          return metricTotal(text, 'amiflow_schedule_runs_skipped_total') === 1 &&
            metricTotal(text, 'amiflow_runs_total', { workflowType: 'imageFromInstance' }) === 1
            ? text
            : undefined;
        },
        WAIT_MS,
      );
      assert.equal(
        metricTotal(metrics, 'amiflow_copies_total', { outcome: 'succeeded' }),
        1,
        'one copy succeeded',
      );
      assert.equal(metricTotal(metrics, 'amiflow_copies_total'), 1, 'and no other copy outcome');
      assert.equal(
        metricTotal(metrics, 'amiflow_shares_total', { outcome: 'succeeded' }),
        1,
        'one share succeeded',
      );
      assert.equal(metricTotal(metrics, 'amiflow_shares_total'), 1);
      assert.equal(
        metricTotal(metrics, 'amiflow_images_made_total', { mode: 'stop', outcome: 'cancelled' }),
        1,
        'the cancelled image run',
      );
      assert.equal(
        metricTotal(metrics, 'amiflow_runs_total', {
          workflowType: 'imageFromInstance',
          outcome: 'cancelled',
        }),
        1,
      );
      assert.ok(
        (metricTotal(metrics, 'amiflow_compensations_total', { outcome: 'done' }) ?? 0) >= 1,
        'the cancelled run undid its image',
      );
      assert.equal(metricTotal(metrics, 'amiflow_compensations_total', { outcome: 'failed' }), undefined);
      assert.equal(
        metricTotal(metrics, 'amiflow_schedule_runs_skipped_total', { reason: 'outside-window' }),
        1,
        'the late backup counted as skipped',
      );
      assert.equal(
        metricTotal(metrics, 'amiflow_aws_throttles_total'),
        throttled,
        'every throttle the layer answered, counted apart',
      );
      assert.equal(
        metricTotal(metrics, 'amiflow_aws_errors_total', { service: 'ec2', code: 'RequestLimitExceeded' }),
        throttled,
        'and among the AWS errors by code',
      );
      assert.doesNotMatch(
        metrics,
        /amiflow_[a-z_]+\{[^}]*(ami-|i-[0-9a-f]{8}|workflow_id|run_id)/,
        'no ids as labels',
      );
    } finally {
      assert.equal(await stopWorkerProcess(worker), 0, 'SIGTERM shuts the worker down cleanly');
    }

    // THEN: every line is JSON; every line naming one of these runs carries that run's id
    const records = worker.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const [workflowId, runId] of runs) {
      const own = records.filter((r) => r.workflowId === workflowId);
      assert.ok(own.length > 0, `lines of ${workflowId}`);
      for (const r of own) assert.equal(r.runId, runId, `${String(r.message)}: runId of ${workflowId}`);
    }
    const throttleLine = records.find((r) => r.code === 'RequestLimitExceeded');
    assert.ok(throttleLine, 'a throttle is logged');
    assert.equal(
      throttleLine.runId,
      runs.get(String(throttleLine.workflowId)),
      'an activity line carries runId',
    );
    assert.equal(typeof throttleLine.attempt, 'number');
    assert.equal(typeof throttleLine.activityType, 'string');
    assert.equal(typeof throttleLine.requestId, 'string', 'the AWS request id support asks for');
    const undo = records.filter(
      (r) => r.workflowId === cancelledWorkflowId && /^compensation /.test(String(r.message)),
    );
    assert.ok(
      undo.some((r) => String(r.message).startsWith('compensation started: ') && r.level === 'info'),
      'each compensation start is logged at INFO',
    );
    assert.ok(
      undo.some((r) => String(r.message).startsWith('compensation done: ') && r.level === 'info'),
      'and its end',
    );
    assert.ok(
      records.some((r) => r.message === 'step done: describe instance' && r.level === 'info'),
      'each step end is logged at INFO',
    );
  });

  void it('GIVEN log level DEBUG WHEN the worker starts and stops THEN the SDK core’s own lines arrive in the same JSON stream', async () => {
    const worker = await startWorkerProcess(temporalPort, proxy.endpoint, {
      ...SANDBOX_AWS_ENV,
      AMIFLOW_LOG_LEVEL: 'DEBUG',
    });
    try {
      await untilHealth(worker, '/readyz', WAIT_MS);
    } finally {
      assert.equal(await stopWorkerProcess(worker), 0);
    }
    const records = worker.lines.map((line) => {
      assert.doesNotMatch(line, /\x1b\[/, 'no ANSI codes');
      return JSON.parse(line) as Record<string, unknown>;
    });
    const core = records.filter((r) => r.sdkComponent === 'core');
    assert.ok(
      core.length > 0,
      `core lines forwarded (components: ${[...new Set(records.map((r) => String(r.sdkComponent)))].join(', ')})`,
    );
    for (const r of core) assert.equal(typeof r.level, 'string');
  });

  void it('GIVEN no AWS credentials the default chain can resolve WHEN the worker polls THEN /healthz 200 and /readyz 503 naming the credentials', async () => {
    const empty = path.join(ROOT, 'test', 'e2e', 'no-such-aws-file');
    const worker = await startWorkerProcess(temporalPort, proxy.endpoint, {
      AWS_SHARED_CREDENTIALS_FILE: empty,
      AWS_CONFIG_FILE: empty,
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    try {
      // Polling (so only the credentials are missing), yet not ready.
      const body = await eventually(
        '/readyz to name only the credentials',
        async () => {
          const res = await fetch(`${worker.healthUrl}/readyz`).catch(() => undefined); // not listening yet
          if (!res) return undefined;
          const text = await res.text();
          // Only the credentials: not while Temporal is still connecting (named first then).
          return res.status === 503 && /^not ready: aws credentials: /.test(text) && !/task queue/.test(text)
            ? text
            : undefined;
        },
        WAIT_MS,
      );
      assert.match(body, /^not ready: aws credentials: /);
      assert.equal((await fetch(`${worker.healthUrl}/healthz`)).status, 200, 'alive all the same');
    } finally {
      await stopWorkerProcess(worker);
    }
  });
});
