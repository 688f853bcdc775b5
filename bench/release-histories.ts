/**
 * What the release phase left in the runs' histories, from a sample of them: each closing workflow
 * task that sat on the worker's sticky queue past its schedule-to-start timeout shows as
 * WORKFLOW_TASK_TIMED_OUT, and its run is then replayed from its whole history on the normal queue
 * (docs/fleet-waits.md, "What limits the rate"). Sampled, not all: 10,000 history reads would load
 * the dev server more than the figure is worth.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { eventTypes } from '../devkit/histories';

export interface ReleaseHistories {
  sampled: number;
  /** Sampled histories with at least one workflow task timed out. */
  withTimeout: number;
  workflowTaskTimedOut: number;
  workflowTaskFailed: number;
  /** Workflow tasks completed after the image wait was scheduled (the closing ones). */
  closingTasksCompleted: number;
}

/** Reads `sample` histories spread evenly over `ids` (start order) and counts their workflow-task outcomes. */
export async function sampleReleaseHistories(
  env: TestWorkflowEnvironment,
  ids: readonly string[],
  sample = 50,
): Promise<ReleaseHistories> {
  const step = Math.max(1, ids.length / sample);
  const picked = new Set<string>();
  for (let i = 0; i < ids.length && picked.size < sample; i += step) {
    const id = ids[Math.floor(i)];
    if (id !== undefined) picked.add(id);
  }
  const out: ReleaseHistories = {
    sampled: 0,
    withTimeout: 0,
    workflowTaskTimedOut: 0,
    workflowTaskFailed: 0,
    closingTasksCompleted: 0,
  };
  for (const id of picked) {
    const history = await env.client.workflow.getHandle(id).fetchHistory();
    const types = eventTypes(history);
    const timedOut = types.filter((t) => t === 'WORKFLOW_TASK_TIMED_OUT').length;
    const waitScheduled = (history.events ?? []).findIndex(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'waitForImageAvailable',
    );
    out.sampled += 1;
    out.withTimeout += timedOut > 0 ? 1 : 0;
    out.workflowTaskTimedOut += timedOut;
    out.workflowTaskFailed += types.filter((t) => t === 'WORKFLOW_TASK_FAILED').length;
    out.closingTasksCompleted += types
      .slice(Math.max(0, waitScheduled))
      .filter((t) => t === 'WORKFLOW_TASK_COMPLETED').length;
  }
  return out;
}
