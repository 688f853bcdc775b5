/**
 * The typed client library services import: start, await, watch, query and cancel amiflow
 * workflows. Input is validated here before anything starts (and again by the workflow).
 */
import type { WorkflowHandle } from '@temporalio/client';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TypedSearchAttributes } from '@temporalio/common';
import type { TemporalSettings } from '../worker/config';
import { readTemporalSettings } from '../worker/config';
import { connectionOptions } from '../worker/connection';
import type {
  ImageFromInstanceInput,
  ImageFromInstanceResult,
  WorkflowProgress,
} from '../workflows/contracts';
import { SearchAttr, WORKFLOW_TYPES, progressQuery } from '../workflows/contracts';
import { parseImageFromInstanceInput } from '../workflows/validation';
import type { MigrateInstanceInput } from '../workflows/contracts';
import { parseMigrateInstanceInput } from '../workflows/migrate-validation';
import { migrateSummary, migrateWorkflowId } from './migration';
import type {
  CopyImageInput,
  ShareExpiryResult,
  ShareExpiryUpdate,
  ShareImageInput,
  ShareRecord,
} from '../workflows/contracts';
import { setShareExpiryUpdate } from '../workflows/contracts';
import {
  parseCopyImageInput,
  parseShareExpiryUpdate,
  parseShareImageInput,
  parseUnshareImageInput,
} from '../workflows/share-validation';
import {
  copySummary,
  copyWorkflowId,
  shareSummary,
  shareWorkflowId,
  startRun,
  unshareWorkflowId,
} from './distribution';

export { InvalidInputError } from '../workflows/validation';
export { migrateWorkflowId } from './migration';
export type {
  MigrateInstanceInput,
  MigrateInstanceOverrides,
  MigrateInstanceResult,
} from '../workflows/contracts';
export { copyWorkflowId, shareWorkflowId, unshareWorkflowId } from './distribution';
export type {
  CopyDestination,
  CopyImageInput,
  CopyImageResult,
  ShareExpiryUpdate,
  ShareImageInput,
  ShareImageResult,
  ShareRecord,
  UnshareImageInput,
  UnshareImageResult,
} from '../workflows/contracts';
export type {
  ImageFromInstanceInput,
  ImageFromInstanceResult,
  WorkflowProgress,
} from '../workflows/contracts';

export interface StartOptions {
  /** Defaults to a deterministic id, so the same request started twice runs once. */
  workflowId?: string;
  /** Set the Amiflow* search attributes (the namespace must have them registered; see README). */
  searchAttributes?: boolean;
}

export interface StartedRun {
  workflowId: string;
  runId: string;
}

export type RunStatus =
  | 'RUNNING'
  | 'COMPLETED'
  | 'FAILED'
  | 'CANCELLED'
  | 'TERMINATED'
  | 'TIMED_OUT'
  | 'CONTINUED_AS_NEW'
  | 'UNKNOWN';

/** A failed or cancelled run, with the failure type (see `FailureType`) when amiflow set one. */
export class RunFailedError extends Error {
  override name = 'RunFailedError';
  constructor(
    message: string,
    readonly workflowId: string,
    readonly failureType: string | undefined,
    readonly cancelled: boolean,
  ) {
    super(message);
  }
}

/** Deterministic id: one run per (region, account, instance, image name) at a time. */
export function imageWorkflowId(input: ImageFromInstanceInput): string {
  return `image-from-instance/${input.region}/${input.accountId ?? 'self'}/${input.instanceId}/${input.imageName}`;
}

export class AmiflowClient {
  private constructor(
    readonly temporal: Client,
    readonly taskQueue: string,
    private readonly ownedConnection?: Connection,
  ) {}

  /** Connects with the same settings as the worker (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, AMIFLOW_TASK_QUEUE…). */
  static async connect(settings: TemporalSettings = readTemporalSettings()): Promise<AmiflowClient> {
    const connection = await Connection.connect(await connectionOptions(settings));
    return new AmiflowClient(
      new Client({ connection, namespace: settings.namespace }),
      settings.taskQueue,
      connection,
    );
  }

  /** Wraps an existing Temporal client (tests, services that already hold one). */
  static fromClient(client: Client, taskQueue: string): AmiflowClient {
    return new AmiflowClient(client, taskQueue);
  }

  async close(): Promise<void> {
    await this.ownedConnection?.close();
  }

  /** Validates, then starts `imageFromInstance`. Throws `InvalidInputError` naming each bad field. */
  async startImageFromInstance(input: ImageFromInstanceInput, opts: StartOptions = {}): Promise<StartedRun> {
    const valid = parseImageFromInstanceInput(input);
    const workflowId = opts.workflowId ?? imageWorkflowId(valid);
    try {
      const handle = await this.temporal.workflow.start(WORKFLOW_TYPES.imageFromInstance, {
        args: [valid],
        taskQueue: this.taskQueue,
        workflowId,
        staticSummary: `Image ${valid.instanceId} → '${valid.imageName}' (${valid.mode}, ${valid.region})`,
        ...(opts.searchAttributes !== false
          ? {
              typedSearchAttributes: new TypedSearchAttributes([
                { key: SearchAttr.instanceId, value: valid.instanceId },
                { key: SearchAttr.region, value: valid.region },
              ]),
            }
          : {}),
      });
      return { workflowId, runId: handle.firstExecutionRunId };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw new Error(
          `a run with id '${workflowId}' is already in progress for this instance and image name; watch it with 'amiflow watch ${workflowId}'`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * Validates, then starts `shareImage`. With `durationSeconds` the run lasts until the share is
   * withdrawn (change the end with `setShareExpiry`); without, it ends once the share is in place and
   * its result is the record `startUnshareImage` takes.
   */
  async startShareImage(input: ShareImageInput, opts: StartOptions = {}): Promise<StartedRun> {
    const valid = parseShareImageInput(input);
    return startRun(this.temporal, {
      workflowType: WORKFLOW_TYPES.shareImage,
      args: [valid],
      workflowId: opts.workflowId ?? shareWorkflowId(valid),
      taskQueue: this.taskQueue,
      summary: shareSummary(valid),
      ...(opts.searchAttributes !== false
        ? { searchAttributes: { imageId: valid.imageId, region: valid.region } }
        : {}),
    });
  }

  /** Validates, then starts `unshareImage`: withdraws what the share (its result) added, nothing else. */
  async startUnshareImage(
    share: ShareRecord,
    opts: StartOptions & { deleteReencryptedCopy?: boolean } = {},
  ): Promise<StartedRun> {
    const record: ShareRecord = {
      image: share.image,
      sharedImageId: share.sharedImageId,
      added: share.added,
      ...(share.reencryptedCopy ? { reencryptedCopy: share.reencryptedCopy } : {}),
    };
    const valid = parseUnshareImageInput({
      share: record,
      ...(opts.deleteReencryptedCopy !== undefined
        ? { deleteReencryptedCopy: opts.deleteReencryptedCopy }
        : {}),
    });
    return startRun(this.temporal, {
      workflowType: WORKFLOW_TYPES.unshareImage,
      args: [valid],
      workflowId: opts.workflowId ?? unshareWorkflowId(valid),
      taskQueue: this.taskQueue,
      summary: `Unshare ${record.sharedImageId} (${record.image.region})`,
      ...(opts.searchAttributes !== false
        ? { searchAttributes: { imageId: record.sharedImageId, region: record.image.region } }
        : {}),
    });
  }

  /** Validates, then starts `copyImage`. */
  async startCopyImage(input: CopyImageInput, opts: StartOptions = {}): Promise<StartedRun> {
    const valid = parseCopyImageInput(input);
    return startRun(this.temporal, {
      workflowType: WORKFLOW_TYPES.copyImage,
      args: [valid],
      workflowId: opts.workflowId ?? copyWorkflowId(valid),
      taskQueue: this.taskQueue,
      summary: copySummary(valid),
      ...(opts.searchAttributes !== false
        ? { searchAttributes: { imageId: valid.imageId, region: valid.region } }
        : {}),
    });
  }

  /**
   * Moves the end of a running time-limited share: `{ expiresInSeconds: 0 }` withdraws it now,
   * `{ expiresAt: '…' }` or `{ expiresInSeconds: n }` cuts it short or extends it. The workflow
   * refuses a time that has passed or lies beyond the longest share.
   */
  async setShareExpiry(workflowId: string, update: ShareExpiryUpdate): Promise<ShareExpiryResult> {
    const valid = parseShareExpiryUpdate(update);
    try {
      return await this.handle(workflowId).executeUpdate(setShareExpiryUpdate, { args: [valid] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError)
        throw new RunFailedError(
          `share ${workflowId} refused the new expiry: ${err.cause?.message ?? err.message}`,
          workflowId,
          err.cause instanceof ApplicationFailure ? (err.cause.type ?? undefined) : undefined,
          false,
        );
      throw err;
    }
  }

  /**
   * Validates, then starts `migrateInstance`: image the instance, launch an equivalent one in the
   * target AZ, and (once it passed its checks) keep, stop or terminate the source. Read the result
   * with `result<MigrateInstanceResult>(workflowId)`.
   */
  async startMigrateInstance(input: MigrateInstanceInput, opts: StartOptions = {}): Promise<StartedRun> {
    const valid = parseMigrateInstanceInput(input);
    const workflowId = opts.workflowId ?? migrateWorkflowId(valid);
    try {
      const handle = await this.temporal.workflow.start(WORKFLOW_TYPES.migrateInstance, {
        args: [valid],
        taskQueue: this.taskQueue,
        workflowId,
        staticSummary: migrateSummary(valid),
        ...(opts.searchAttributes !== false
          ? {
              typedSearchAttributes: new TypedSearchAttributes([
                { key: SearchAttr.instanceId, value: valid.instanceId },
                { key: SearchAttr.region, value: valid.region },
              ]),
            }
          : {}),
      });
      return { workflowId, runId: handle.firstExecutionRunId };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw new Error(
          `a migration of ${valid.instanceId} is already in progress as '${workflowId}'; watch it with 'amiflow watch ${workflowId}'`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Waits for the result; failures and cancellation become `RunFailedError` with amiflow's failure type. */
  async result<T = ImageFromInstanceResult>(workflowId: string): Promise<T> {
    try {
      return (await this.handle(workflowId).result()) as T;
    } catch (err) {
      throw toRunFailed(err, workflowId);
    }
  }

  async progress(workflowId: string): Promise<WorkflowProgress> {
    return this.handle(workflowId).query(progressQuery);
  }

  async status(workflowId: string): Promise<{ status: RunStatus; progress?: WorkflowProgress }> {
    const d = await this.handle(workflowId).describe();
    let progress: WorkflowProgress | undefined;
    try {
      progress = await this.progress(workflowId);
    } catch {
      progress = undefined; // no worker to answer the query right now
    }
    return { status: d.status.name as RunStatus, ...(progress ? { progress } : {}) };
  }

  /** Requests cancellation: the run undoes what it did (compensation) and ends cancelled. */
  async cancel(workflowId: string): Promise<void> {
    await this.handle(workflowId).cancel();
  }

  /**
   * Calls `onProgress` whenever the progress changes, until the run closes; returns its result.
   * Polls the progress query every `intervalMs`.
   */
  async watch<T = ImageFromInstanceResult>(
    workflowId: string,
    onProgress: (p: WorkflowProgress) => void,
    intervalMs = 1000,
  ): Promise<T> {
    const outcome = this.result<T>(workflowId);
    let done = false;
    const settled = outcome.then(
      () => (done = true),
      () => (done = true),
    );
    let last = '';
    const poll = async () => {
      try {
        const p = await this.progress(workflowId);
        const key = JSON.stringify(p);
        if (key !== last) {
          last = key;
          onProgress(p);
        }
      } catch {
        // the query fails while no worker is polling; keep watching
      }
    };
    while (!done) {
      await poll();
      await Promise.race([settled, new Promise((r) => setTimeout(r, intervalMs))]);
    }
    await poll();
    return outcome;
  }

  handle(workflowId: string): WorkflowHandle {
    return this.temporal.workflow.getHandle(workflowId);
  }
}

export function toRunFailed(err: unknown, workflowId: string): unknown {
  if (!(err instanceof WorkflowFailedError)) return err;
  const cause = err.cause;
  if (cause instanceof CancelledFailure)
    return new RunFailedError(`run ${workflowId} was cancelled`, workflowId, undefined, true);
  let failureType: string | undefined;
  let message = cause?.message ?? err.message;
  for (let c: unknown = cause; c instanceof Error; c = (c as Error & { cause?: unknown }).cause) {
    if (c instanceof ApplicationFailure) {
      failureType = c.type ?? undefined;
      message = c.message;
      break;
    }
  }
  return new RunFailedError(message, workflowId, failureType, false);
}
