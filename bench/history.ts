/**
 * (a) Workflow history of a `stop` run with a 1-minute and a 2-hour wait for the image: the real
 * workflow on the time-skipping server, stub activities except the real `waitForImageAvailable`,
 * which polls a fake EC2 on a virtual clock (its sleeps move the clock on at once).
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DEFAULT_POLL_POLICY } from '../activities/waiting';
import { readWorkerSettings } from '../worker/config';
import { buildWorker } from '../worker/worker';
import type { ImageFromInstanceInput, ImageFromInstanceResult } from '../workflows/contracts';
import { WORKFLOW_TYPES } from '../workflows/contracts';
import { benchActivities, seededRandom } from './activities';
import { FakeEc2, VirtualClock } from './fake-ec2';

export interface HistoryRun {
  waitMs: number;
  events: number;
  /** Event type → count, e.g. MARKER_RECORDED: 4. */
  byType: Record<string, number>;
  describeImages: number;
  heartbeats: number;
  result: ImageFromInstanceResult;
}

export async function measureHistory(
  env: TestWorkflowEnvironment,
  workflowBundle: WorkflowBundleWithSourceMap,
  waitMs: number,
  label: string,
): Promise<HistoryRun> {
  const taskQueue = `bench-history-${label}-${process.pid}`;
  const clock = new VirtualClock(Date.now());
  const ec2 = new FakeEc2(clock);
  let heartbeats = 0;
  const activities = benchActivities({
    ec2,
    imageReadyAfterMs: waitMs,
    deps: {
      clock,
      random: seededRandom(7),
      policy: DEFAULT_POLL_POLICY,
      onHeartbeat: () => (heartbeats += 1),
    },
  });
  const { worker } = await buildWorker({
    connection: env.nativeConnection,
    settings: readWorkerSettings({ AMIFLOW_TASK_QUEUE: taskQueue }),
    worker: { taskQueue, workflowBundle, activities },
  });
  const input: ImageFromInstanceInput = {
    region: 'us-east-1',
    instanceId: 'i-0123456789abcdef0',
    imageName: `bench-history-${label}`,
    mode: 'stop',
  };
  const workflowId = `bench-history-${label}-${Date.now()}`;
  const result = await worker.runUntil(
    env.client.workflow.execute(WORKFLOW_TYPES.imageFromInstance, {
      args: [input],
      taskQueue,
      workflowId,
    }) as Promise<ImageFromInstanceResult>,
  );
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const byType: Record<string, number> = {};
  for (const e of events) {
    const name = eventTypeName(e.eventType);
    byType[name] = (byType[name] ?? 0) + 1;
  }
  return {
    waitMs,
    events: events.length,
    byType,
    describeImages: ec2.counts.describeImages,
    heartbeats,
    result,
  };
}

function eventTypeName(type: unknown): string {
  // The history's enum values are numbers; print the proto names people see in the Web UI.
  const names: Record<number, string> = {
    1: 'WorkflowExecutionStarted',
    2: 'WorkflowExecutionCompleted',
    5: 'WorkflowTaskScheduled',
    6: 'WorkflowTaskStarted',
    7: 'WorkflowTaskCompleted',
    10: 'ActivityTaskScheduled',
    11: 'ActivityTaskStarted',
    12: 'ActivityTaskCompleted',
    17: 'TimerStarted',
    18: 'TimerFired',
    25: 'MarkerRecorded',
    40: 'UpsertWorkflowSearchAttributes',
    46: 'WorkflowPropertiesModified',
  };
  if (typeof type === 'number') return names[type] ?? `event#${type}`;
  return String(type);
}
