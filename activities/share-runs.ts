/**
 * Reads a share run's own record from Temporal, so that a withdrawal acts on what that run made and
 * not on what a caller claims (a record written by hand can name any image, permission or grant).
 * The worker reads with its own Temporal client: the run's type, status and result are facts the
 * caller cannot forge.
 */
import type { WorkflowClient } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import type { ImageRef, LedgerOutcome, LedgerRequest, ShareImageResult } from '../contracts';
import {
  FailureType,
  SHARE_LEDGER_WORKFLOW_TYPE,
  WORKFLOW_TYPES,
  ledgerOutcomeUpdate,
  ledgerRequestSignal,
  shareLedgerWorkflowId,
} from '../contracts';
import type { ActivityDeps } from './deps';
import { failure } from './errors';

/** The part of a Temporal `WorkflowClient` this needs (a test gives the test server's). */
export type TemporalReader = Pick<WorkflowClient, 'getHandle' | 'signalWithStart'>;

/**
 * Opens a reader for one activity and closes it after: reading a share run is rare (one per
 * withdrawal), so no connection is held open for the worker's lifetime.
 */
export type OpenTemporalReader = () => Promise<{ workflow: TemporalReader; close(): Promise<void> }>;

export interface ReadShareRunInput {
  workflowId: string;
  /** Default: the latest run of the workflow id. */
  runId?: string;
}

/** A completed share run and its result, as Temporal recorded them. */
export interface ShareRunTruth {
  workflowId: string;
  runId: string;
  result: ShareImageResult;
}

function refused(message: string) {
  return failure(FailureType.ShareRunRefused, message);
}

export interface ShareLedgerCall {
  image: ImageRef;
  request: LedgerRequest;
}

/**
 * `ledgerScope` prefixes ledger workflow ids: tests that each run their own worker on their own task
 * queue use it so that one test's ledger is not left on a queue nobody polls; production has none
 * (one ledger per image for the whole namespace).
 */
export function shareRunActivities(deps: ActivityDeps, ledgerScope?: string) {
  return {
    /**
     * Sends `request` to the image's share ledger (started if none runs) and waits for its outcome.
     * Safe to retry: the ledger answers a request id once and gives the same answer again.
     */
    async requestShareLedger(input: ShareLedgerCall): Promise<LedgerOutcome> {
      if (!deps.temporal)
        throw failure(
          FailureType.ShareRunRefused,
          'this worker has no Temporal client to reach the share ledger with (ActivityDeps.temporal)',
        );
      const client = await deps.temporal();
      try {
        const workflowId = `${ledgerScope ? `${ledgerScope}/` : ''}${shareLedgerWorkflowId(input.image)}`;
        await client.workflow.signalWithStart(SHARE_LEDGER_WORKFLOW_TYPE, {
          workflowId,
          taskQueue: Context.current().info.taskQueue,
          args: [{ image: input.image }],
          signal: ledgerRequestSignal,
          signalArgs: [input.request],
          staticSummary: `Share ledger of ${input.image.imageId} (${input.image.region})`,
        });
        // The answer can wait behind other shares of the image for minutes: a worker shutting down
        // (its grace ended) cancels this wait instead of hanging on it. The retry on another worker
        // asks the same request id again, which the ledger answers once.
        return await Promise.race([
          client.workflow
            .getHandle(workflowId)
            .executeUpdate(ledgerOutcomeUpdate, { args: [input.request.requestId] }),
          Context.current().cancelled,
        ]);
      } finally {
        await client.close();
      }
    },

    /**
     * The completed `shareImage` run's result. Refused (non-retryable) when the id names another
     * workflow type, a run still sharing (a time-limited share ends through its own expiry) or a run
     * that did not complete (its compensation withdrew what it added). Read-only.
     */
    async readShareRun(input: ReadShareRunInput): Promise<ShareRunTruth> {
      if (!deps.temporal)
        throw refused('this worker has no Temporal client to read share runs with (ActivityDeps.temporal)');
      const reader = await deps.temporal();
      try {
        const handle = reader.workflow.getHandle(input.workflowId, input.runId, { followRuns: false });
        let described;
        try {
          described = await handle.describe();
        } catch (err) {
          // Only "not found" is a verdict; anything else (the server unreachable) is retried.
          if (err instanceof Error && err.name === 'WorkflowNotFoundError')
            throw refused(
              `no workflow run '${input.workflowId}'${input.runId ? ` (run ${input.runId})` : ''} in this namespace`,
            );
          throw err;
        }
        const { runId } = described;
        const who = `'${input.workflowId}' (run ${runId})`;
        if (described.type !== WORKFLOW_TYPES.shareImage)
          throw refused(
            `${who} is a ${described.type} run, not a ${WORKFLOW_TYPES.shareImage} run: only a share run's own record can be withdrawn`,
          );
        const status = described.status.name;
        if (status === 'RUNNING')
          throw refused(
            `share ${who} is still running: end it with its expiry (setShareExpiry { expiresInSeconds: 0 }); it withdraws what it added itself`,
          );
        if (status !== 'COMPLETED')
          throw refused(
            `share ${who} ended ${status.toLowerCase()}: it never completed, so there is no share to withdraw (a failed or cancelled share withdrew what it added)`,
          );
        const result = (await reader.workflow
          .getHandle(input.workflowId, runId, { followRuns: false })
          .result()) as ShareImageResult;
        return { workflowId: input.workflowId, runId, result };
      } finally {
        await reader.close();
      }
    },
  };
}
