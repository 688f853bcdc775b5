/**
 * Client-side tracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, a client the library connects
 * (client/connection.ts, the CLI's path) starts the run's trace: its `StartWorkflow` span reaches
 * the collector and the worker's workflow span is its child, in the same trace. Unset, the client
 * installs nothing. Dev server, a worker with the tracing plugin, stub golden-pipeline activities.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { connectResolved, resolveConnection } from '../../client/connection';
import { clientTracing } from '../../client/tracing';
import { startTracing } from '../../worker/tracing';
import { workflowsPath } from '../../worker/worker';
import { WORKFLOW_TYPES } from '../../workflows/contracts';
import type { Collector } from '../support/otlp-collector';
import { startCollector } from '../support/otlp-collector';
import { devServerEnv, uniqueTaskQueue } from '../support/temporal';
import { Fleet, goldenActivities } from '../workflows/golden-stubs';
import {
  RUN_TIMEOUT,
  eventually,
  quietWorkerLogs,
  startWorker,
  withinBound,
} from '../workflows/stub-activities';
import { startGoldenRun } from './golden-run';

quietWorkerLogs();

const OTEL_VARS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_BSP_SCHEDULE_DELAY'];

let env: TestWorkflowEnvironment;
let collector: Collector;
const saved: Record<string, string | undefined> = {};
before(async () => {
  env = await devServerEnv();
  collector = await startCollector();
  for (const name of OTEL_VARS) saved[name] = process.env[name];
});
after(async () => {
  for (const name of OTEL_VARS)
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  collector?.server.close();
  await env?.teardown();
});

void describe('client-side traces', () => {
  void it('GIVEN OTEL_EXPORTER_OTLP_ENDPOINT unset THEN the client installs no tracing', () => {
    assert.equal(clientTracing({}), undefined);
    assert.equal(
      clientTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x', OTEL_SDK_DISABLED: 'true' }),
      undefined,
    );
  });

  void it(
    'GIVEN OTEL_EXPORTER_OTLP_ENDPOINT WHEN the client starts a run THEN its StartWorkflow span arrives and the workflow span is its child',
    RUN_TIMEOUT,
    async () => {
      // GIVEN: the standard variables point at the collector; a traced worker
      Object.assign(process.env, {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '100',
      });
      const tracing = startTracing();
      assert.ok(tracing, 'the worker traces');
      const taskQueue = uniqueTaskQueue('client-tracing');
      const worker = await startWorker(env, taskQueue, goldenActivities(new Fleet()), {
        // The tracing plugin adds workflow interceptors, so the workflows are bundled with them.
        workflowBundle: undefined,
        workflowsPath,
        plugins: [tracing.plugin],
      });
      // WHEN: a client connected as the CLI connects starts a golden run
      const client = await connectResolved(resolveConnection({ address: env.address }));
      try {
        await worker.runUntil(
          withinBound(
            (async () => {
              const handle = await startGoldenRun(client.temporal, taskQueue, 'client-tracing');
              await handle.result();
            })(),
            'the golden run',
          ),
        );
      } finally {
        await client.close();
        await tracing.shutdown();
      }
      // THEN: the client's span arrived, and the workflow's span continues its trace as its child
      const type = WORKFLOW_TYPES.goldenImage;
      const [start, run] = await eventually('the client and workflow spans', () => {
        const s = collector.spans.find((x) => x.name === `StartWorkflow:${type}`);
        const r = collector.spans.find((x) => x.name === `RunWorkflow:${type}`);
        return Promise.resolve(s && r ? ([s, r] as const) : undefined);
      });
      assert.equal(run.traceId, start.traceId, 'one trace from the client to the workflow');
      assert.equal(run.parentSpanId, start.spanId, 'the workflow span is the start span’s child');
    },
  );
});
