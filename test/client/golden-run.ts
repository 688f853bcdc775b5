/**
 * A golden-pipeline run on the dev server with stub activities, as the client tests start it: the
 * CLI's outcome reporting and client-side tracing both watch one.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { FailureType, SearchAttr } from '../../workflows/contracts';
import { goldenImage } from '../../workflows';
import { BUILDER, Fleet, REGION, goldenActivities, goldenInput } from '../workflows/golden-stubs';
import { injectedFailure } from '../workflows/harness';
import { uniqueWorkflowId } from '../workflows/stub-activities';

/** Starts a golden run without approval, found by its region and builder instance like a real one. */
export function startGoldenRun(client: Client, taskQueue: string, idPrefix: string): Promise<WorkflowHandle> {
  return client.workflow.start(goldenImage, {
    taskQueue,
    workflowId: uniqueWorkflowId(idPrefix),
    args: [goldenInput({ approval: undefined })],
    typedSearchAttributes: [
      { key: SearchAttr.region, value: REGION },
      { key: SearchAttr.instanceId, value: BUILDER },
    ],
  });
}

/** Stub golden activities whose protection of the new image (retirement) AWS refuses: the run completes with problems. */
export function goldenActivitiesWhoseRetirementFails(): ReturnType<typeof goldenActivities> {
  const activities = goldenActivities(new Fleet());
  activities.protectImage = () =>
    Promise.reject(injectedFailure('protectImage', FailureType.AwsUnauthorized));
  return activities;
}
