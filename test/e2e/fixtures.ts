/**
 * What the end-to-end tests share beyond the stack (./stack.ts): what they do with a run once the
 * real worker has it (wait for a condition on the dev server or the sandbox, take its result or
 * its failure, and record its history for the replay tier on the way), and the sandbox fixtures
 * that stand for what another run would have left (an approved golden version).
 */
import assert from 'node:assert/strict';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { AmiflowClient, ImageFromInstanceResult, WorkflowProgress } from '../../client';
import { RunFailedError } from '../../client';
import { recordHistory } from '../../devkit/histories';
import { tagResource } from '../../devkit/sandbox-ec2';
import { APPROVED_VALUE, TAG } from '../../workflows/contracts';
import { eventually as poll } from '../workflows/harness';

/**
 * Polls `probe` until it returns something other than undefined; fails after `timeoutMs`. The
 * default bound is the e2e tier's: a real dev server, sandbox and worker on a loaded machine.
 */
export function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  return poll(what, probe, timeoutMs);
}

/**
 * The run's progress once it shows `step` running. A query may fail while the run has not taken its
 * first workflow task yet: that is "not yet", not a failure.
 */
export function stepRunning(
  client: AmiflowClient,
  workflowId: string,
  step: string,
): Promise<WorkflowProgress> {
  return eventually(`step '${step}' of ${workflowId} to be running`, async () => {
    const p = await client.progress(workflowId).catch(() => undefined);
    return p?.steps.find((s) => s.name === step)?.state === 'running' ? p : undefined;
  });
}

/** The run's failure, as the client library reports it; fails the test when the run succeeded. */
export async function runFailure(client: AmiflowClient, workflowId: string): Promise<RunFailedError> {
  const err = await client.result(workflowId).then(
    () => assert.fail(`run ${workflowId} succeeded; a failure was expected`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RunFailedError, `expected RunFailedError, got ${String(err)}`);
  return err;
}

/** The run's result, once it has closed, with its history saved as `<history>.json` when recording. */
export async function recordedResult<T = ImageFromInstanceResult>(
  client: AmiflowClient,
  workflowId: string,
  history: string,
): Promise<T> {
  const result = await client.result<T>(workflowId);
  await recordHistory(client.handle(workflowId), history);
  return result;
}

/** The run's failure (see runFailure), with its history saved as `<history>.json` when recording. */
export async function recordedFailure(
  client: AmiflowClient,
  workflowId: string,
  history: string,
): Promise<RunFailedError> {
  const failure = await runFailure(client, workflowId);
  await recordHistory(client.handle(workflowId), history);
  return failure;
}

/** Tags an image as a golden-image run marks an approved version of `pipeline`. */
export async function tagApproved(
  ec2: EC2Client,
  imageId: string,
  approval: { pipeline: string; version: string; approvedAt: string },
): Promise<void> {
  await tagResource(ec2, imageId, {
    [TAG.approved]: APPROVED_VALUE,
    [TAG.pipeline]: approval.pipeline,
    [TAG.version]: approval.version,
    [TAG.approvedBy]: 'alice@example.com',
    [TAG.approvedAt]: approval.approvedAt,
  });
}
