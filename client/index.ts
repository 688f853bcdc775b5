/**
 * The typed client library services import: start, await, watch, query and cancel amiflow
 * workflows. Input is validated here before anything starts (and again by the workflow).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { Client, Connection, WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TemporalSettings } from '../worker/config';
import { readTemporalSettings } from '../worker/config';
import { connectionOptions } from '../worker/connection';
import type { ClientTracing } from './tracing';
import { clientTracing } from './tracing';
import type { ImageFromInstanceInput, ImageFromInstanceResult, WorkflowProgress } from '../contracts';
import { SearchAttr, WORKFLOW_TYPES, progressQuery } from '../contracts';
import { regionProblem } from '../shared/regions';
import { InvalidInputError, parseImageFromInstanceInput, useRegionCheck } from '../workflows/validation';
import type { MigrateInstanceInput } from '../contracts';
import { parseMigrateInstanceInput } from '../workflows/migrate-validation';
import { migrateRun } from './migration';
import type {
  CopyImageInput,
  ShareExpiryResult,
  ShareExpiryUpdate,
  ShareImageInput,
  ShareRecord,
} from '../contracts';
import { setShareExpiryUpdate } from '../contracts';
import {
  parseCopyImageInput,
  parseShareExpiryUpdate,
  parseShareImageInput,
  parseUnshareImageInput,
} from '../workflows/share-validation';
import type { AmiflowWorkflow, RunPlan } from './distribution';
import { copyRun, runAttributes, shareRun, startRun, unshareWorkflowId, watchIt } from './distribution';
// The workflow functions themselves, so each start's input type is its workflow's (no type names).
import {
  backupInstances,
  copyImage,
  goldenImage,
  imageFromInstance,
  migrateInstance,
  rolloutImage,
  shareImage,
  unshareImage,
} from '../workflows';
import type {
  AllowedAmisMode,
  AllowedAmisState,
  Catalogue,
  CatalogueInput,
  ComplianceReport,
  ComplianceScanInput,
  EnforceAllowedAmisInput,
} from '../contracts';
import type { ResolveOptions, ResolvedImage } from './catalogue';
import { readCatalogue, resolveApprovedImage } from './catalogue';
import type { ScheduleSpec } from './compliance';
import {
  lastComplianceReport,
  runningComplianceReport,
  scheduleComplianceScan,
  startComplianceScan,
} from './compliance';
import { enforcementState, setAllowedAmisMode } from './enforcement';
import type { ApprovalAck, ApprovalDecision, BackupInput, GoldenImageInput } from '../contracts';
import { approveUpdate, rejectUpdate } from '../contracts';
import { approverPatternIssues } from '../workflows/approvers';
import type { ApprovalSigning } from './approval-proof';
import { signApproval } from './approval-proof';
import { approversOf } from './plan-file';
import type { RolloutImageInput } from '../contracts';
import { parseRolloutImageInput } from '../workflows/rollout-plan';
import { rolloutSummary, rolloutWorkflowId } from './rollout';
import type { ScheduleBounds } from './bounds';
import { RefusedError, checkAmiflowRun, readScheduleBounds } from './bounds';
import {
  parseApprovalDecision,
  parseBackupInput,
  parseGoldenImageInput,
} from '../workflows/golden-validation';
import {
  backupSummary,
  backupWorkflowId,
  goldenSummary,
  goldenWorkflowId,
  manualScheduledTime,
} from './golden';
import { AmiflowSchedules } from './schedules';
import type { BuildImageInput } from '../contracts/recipe';
import { startBuildImageRun } from './recipe-build';
import { checkedId, ownAccountShareIssues, requirePlainInput } from './trust-input';

export { InvalidInputError } from '../workflows/validation';
export { AmiflowSchedules } from './schedules';
export type { ApplyReport, ScheduleDetails, ScheduleListItem } from './schedules';
export { PlanFileError, loadPlanFile, parsePlan } from './plan-file';
export { DEFAULT_SCHEDULE_BOUNDS, RefusedError, readScheduleBounds } from './bounds';
export type { ScheduleBounds } from './bounds';
export type { Plan, PlanEntry } from './plan-file';
export { backupWorkflowId, goldenWorkflowId } from './golden';
export type {
  ApprovalAck,
  ApprovalDecision,
  BackupInput,
  BackupResult,
  GoldenImageInput,
  GoldenImageResult,
  RetentionPolicy,
} from '../contracts';
export { NoApprovedImageError } from './catalogue';
export type { ResolveOptions, ResolvedImage } from './catalogue';
export { migrateWorkflowId } from './migration';
export type { MigrateInstanceInput, MigrateInstanceOverrides, MigrateInstanceResult } from '../contracts';
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
} from '../contracts';
export type { ImageFromInstanceInput, ImageFromInstanceResult, WorkflowProgress } from '../contracts';

export interface StartOptions {
  /** Defaults to a deterministic id, so the same request started twice runs once. */
  workflowId?: string;
  /** Set the Amiflow* search attributes (the namespace must have them registered; docs/production.md). */
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

// Regions are checked against the SDK's endpoint data before anything starts (AMIFLOW_EXTRA_REGIONS opts newer ones in).
useRegionCheck(regionProblem);

/** Deterministic id: one run per (region, account, instance, image name) at a time. */
export function imageWorkflowId(input: ImageFromInstanceInput): string {
  return `image-from-instance/${input.region}/${input.accountId ?? 'self'}/${input.instanceId}/${input.imageName}`;
}

/** A closed run's outcome and, for `succeeded-with-problems`, what went wrong. */
export interface RunOutcomeReport {
  outcome?: NonNullable<WorkflowProgress['outcome']>;
  problems?: string[];
}

const RUN_OUTCOMES: ReadonlySet<string> = new Set([
  'succeeded',
  'succeeded-with-problems',
  'failed',
  'cancelled',
]);

function isRunOutcome(value: unknown): value is NonNullable<WorkflowProgress['outcome']> {
  return typeof value === 'string' && RUN_OUTCOMES.has(value);
}

/** Approving or rejecting the image a golden run waits on, as whoever signs the proof. */
export type GoldenDecision = (
  workflowId: string,
  decision?: ApprovalDecision,
  signing?: ApprovalSigning,
) => Promise<ApprovalAck>;

export class AmiflowClient {
  private constructor(
    readonly temporal: Client,
    readonly taskQueue: string,
    private readonly ownedConnection?: Connection,
    /** The operator's bounds on schedules and backfills (see client/bounds.ts). */
    readonly bounds: ScheduleBounds = readScheduleBounds(),
    /** Client spans still buffered are sent on close (a CLI process ends right after). */
    private readonly tracing?: ClientTracing,
  ) {}

  /** Connects with the same settings as the worker (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, AMIFLOW_TASK_QUEUE…). */
  static async connect(
    settings: TemporalSettings = readTemporalSettings(),
    bounds: ScheduleBounds = readScheduleBounds(),
  ): Promise<AmiflowClient> {
    const connection = await Connection.connect(await connectionOptions(settings));
    const tracing = clientTracing();
    return new AmiflowClient(
      new Client({
        connection,
        namespace: settings.namespace,
        ...(tracing ? { interceptors: tracing.interceptors } : {}),
      }),
      settings.taskQueue,
      connection,
      bounds,
      tracing,
    );
  }

  /**
   * Wraps a client over `connection`, which `close()` then closes (the CLI: client/connection.ts);
   * `tracing`'s spans are flushed on close.
   */
  static owning(
    client: Client,
    taskQueue: string,
    connection: Connection,
    tracing?: ClientTracing,
  ): AmiflowClient {
    return new AmiflowClient(client, taskQueue, connection, undefined, tracing);
  }

  /** Wraps an existing Temporal client (tests, services that already hold one). */
  static fromClient(client: Client, taskQueue: string, bounds?: ScheduleBounds): AmiflowClient {
    return new AmiflowClient(client, taskQueue, undefined, bounds);
  }

  async close(): Promise<void> {
    try {
      await this.tracing?.flush();
    } finally {
      await this.ownedConnection?.close();
    }
  }

  /** Validates, then starts `imageFromInstance`. Throws `InvalidInputError` naming each bad field. */
  async startImageFromInstance(input: ImageFromInstanceInput, opts: StartOptions = {}): Promise<StartedRun> {
    const valid = parseImageFromInstanceInput(requirePlainInput(input));
    return this.startValid(imageFromInstance, valid, opts, {
      workflowId: imageWorkflowId(valid),
      summary: `Image ${valid.instanceId} → '${valid.imageName}' (${valid.mode}, ${valid.region})`,
      attributes: { instanceId: valid.instanceId, region: valid.region },
      inProgress: (id) =>
        `a run with id '${id}' is already in progress for this instance and image name; ${watchIt(id)}`,
    });
  }

  /**
   * The start every typed `start*` method ends in, once its input is valid: the caller's workflow id
   * (checked) or the run's deterministic one, the summary, and the search attributes unless opted out.
   */
  private async startValid<I, R>(
    workflow: AmiflowWorkflow<I, R>,
    input: I,
    opts: StartOptions,
    run: RunPlan,
  ): Promise<StartedRun> {
    const workflowId = startId(opts) ?? run.workflowId;
    return startRun(this.temporal, {
      workflow,
      input,
      workflowId,
      taskQueue: this.taskQueue,
      summary: run.summary,
      ...(run.attributes ? runAttributes(opts, run.attributes) : {}),
      ...(run.inProgress ? { inProgress: run.inProgress(workflowId) } : {}),
    });
  }

  /**
   * Validates, then starts `shareImage`. With `durationSeconds` the run lasts until the share is
   * withdrawn (change the end with `setShareExpiry`); without, it ends once the share is in place and
   * its result is the record `startUnshareImage` takes.
   */
  async startShareImage(input: ShareImageInput, opts: StartOptions = {}): Promise<StartedRun> {
    const valid = parseShareImageInput(requirePlainInput(input));
    const ownAccount = ownAccountShareIssues(valid);
    if (ownAccount.length > 0) throw new InvalidInputError(ownAccount);
    return this.startValid(shareImage, valid, opts, shareRun(valid));
  }

  /**
   * Validates, then starts `unshareImage` for a share run (its workflow id): the worker reads what
   * that run added from its own result in Temporal and withdraws that, nothing else. `expected`, a
   * record you hold (e.g. a saved result), is only compared with the run's: any difference refuses.
   */
  async startUnshareImage(
    shareWorkflowId: string,
    opts: StartOptions & {
      deleteReencryptedCopy?: boolean;
      shareRunId?: string;
      expected?: ShareRecord;
    } = {},
  ): Promise<StartedRun> {
    checkedId('shareWorkflowId', shareWorkflowId, 'share run (workflow id)');
    requirePlainInput(opts, 'options');
    if (opts.shareRunId !== undefined) checkedId('shareRunId', opts.shareRunId, 'run id');
    const e = opts.expected;
    const valid = parseUnshareImageInput({
      shareWorkflowId,
      ...(opts.shareRunId !== undefined ? { shareRunId: opts.shareRunId } : {}),
      ...(e
        ? {
            share: {
              image: e.image,
              sharedImageId: e.sharedImageId,
              added: e.added,
              ...(e.reencryptedCopy ? { reencryptedCopy: e.reencryptedCopy } : {}),
            },
          }
        : {}),
      ...(opts.deleteReencryptedCopy !== undefined
        ? { deleteReencryptedCopy: opts.deleteReencryptedCopy }
        : {}),
    });
    return this.startValid(unshareImage, valid, opts, {
      workflowId: unshareWorkflowId(valid),
      summary: `Unshare what ${shareWorkflowId} added`,
    });
  }

  /** Validates, then starts `copyImage`. */
  async startCopyImage(input: CopyImageInput, opts: StartOptions = {}): Promise<StartedRun> {
    const valid = parseCopyImageInput(requirePlainInput(input));
    return this.startValid(copyImage, valid, opts, copyRun(valid));
  }

  /**
   * Moves the end of a running time-limited share: `{ expiresInSeconds: 0 }` withdraws it now,
   * `{ expiresAt: '…' }` or `{ expiresInSeconds: n }` cuts it short or extends it. The workflow
   * refuses a time that has passed or lies beyond the longest share.
   */
  async setShareExpiry(workflowId: string, update: ShareExpiryUpdate): Promise<ShareExpiryResult> {
    checkedId('workflowId', workflowId);
    const valid = parseShareExpiryUpdate(requirePlainInput(update, 'update'));
    try {
      return await this.handle(workflowId).executeUpdate(setShareExpiryUpdate, { args: [valid] });
    } catch (err) {
      throw updateRefused(err, `share ${workflowId} refused the new expiry`, workflowId);
    }
  }

  /**
   * Validates, then starts `migrateInstance`: image the instance, launch an equivalent one in the
   * target AZ, and (once it passed its checks) keep, stop or terminate the source. Read the result
   * with `result<MigrateInstanceResult>(workflowId)`.
   */
  async startMigrateInstance(input: MigrateInstanceInput, opts: StartOptions = {}): Promise<StartedRun> {
    const valid = parseMigrateInstanceInput(requirePlainInput(input));
    return this.startValid(migrateInstance, valid, opts, migrateRun(valid));
  }

  // Guardrails: the approved-image catalogue, compliance scans, EC2 Allowed AMIs (see docs/guardrails.md).

  /** The approved-image catalogue of accounts × regions, read by the worker (its roles). */
  async listApprovedImages(input: CatalogueInput): Promise<Catalogue> {
    return failedAsRunFailed('approved-images', () => readCatalogue(this.temporal, this.taskQueue, input));
  }

  /**
   * The launch helper: the newest approved, available, non-deprecated image of `pipeline` in
   * `region` (as `opts.accountId`, default the worker's own, has it approved). Throws
   * `NoApprovedImageError` saying what the catalogue has instead.
   */
  async resolveApprovedImage(
    pipeline: string,
    region: string,
    opts: ResolveOptions = {},
  ): Promise<ResolvedImage> {
    return failedAsRunFailed('approved-images', () =>
      resolveApprovedImage(this.temporal, this.taskQueue, pipeline, region, opts),
    );
  }

  /** Validates, then starts `complianceScan` as `compliance-scan/<name>`; its result is the report. */
  async startComplianceScan(input: ComplianceScanInput): Promise<StartedRun> {
    requirePlainInput(input);
    return startComplianceScan(this.temporal, this.taskQueue, input);
  }

  /** Runs the scan every `spec.every` or on `spec.cron` (a Temporal Schedule `compliance-scan/<name>`). */
  async scheduleComplianceScan(
    input: ComplianceScanInput,
    spec: ScheduleSpec,
  ): Promise<{ scheduleId: string }> {
    return scheduleComplianceScan(this.temporal, this.taskQueue, input, spec, this.bounds);
  }

  /** The last completed report of scan `name` (by hand or scheduled), without scanning; undefined if none. */
  async lastComplianceReport(name: string): Promise<ComplianceReport | undefined> {
    return lastComplianceReport(this.temporal, name);
  }

  /** The report so far of the scan `name` running now (by query); undefined when none runs. */
  async runningComplianceReport(name: string): Promise<ComplianceReport | undefined> {
    return runningComplianceReport(this.temporal, name);
  }

  /** Sets EC2 Allowed AMIs for the enforcement `input.name`: `audit` first, then `enabled`; `off` restores. */
  async setAllowedAmisMode(input: EnforceAllowedAmisInput, mode: AllowedAmisMode): Promise<AllowedAmisState> {
    try {
      return await setAllowedAmisMode(this.temporal, this.taskQueue, input, mode);
    } catch (err) {
      throw updateRefused(
        err,
        `Allowed AMIs '${input.name}' refused ${mode}`,
        `enforce-allowed-amis/${input.name}`,
      );
    }
  }

  /** The state of the enforcement `name` (what is set, what was there before); undefined when none runs. */
  async allowedAmisState(name: string): Promise<AllowedAmisState | undefined> {
    return enforcementState(this.temporal, name);
  }

  /** Schedules of golden pipelines and backup plans (create, list, describe, pause, trigger, backfill, apply a plan). */
  get schedules(): AmiflowSchedules {
    return new AmiflowSchedules(this.temporal, this.taskQueue, this.bounds);
  }

  /**
   * Validates, then starts `goldenImage` now (Schedules start it otherwise). The run stands for
   * `input.scheduledTime` (default: now), which makes its version and its workflow id: the same
   * pipeline and time started twice runs once.
   */
  async startGoldenImage(input: GoldenImageInput, opts: StartOptions = {}): Promise<StartedRun> {
    requirePlainInput(input);
    const approverIssues = approverPatternIssues(
      'approval.approvers',
      approversOf((input as Partial<GoldenImageInput> | null)?.approval),
    );
    if (approverIssues.length > 0) throw new InvalidInputError(approverIssues);
    const valid = parseGoldenImageInput({
      ...input,
      scheduledTime: input.scheduledTime ?? manualScheduledTime(),
    });
    const scheduledTime = valid.scheduledTime ?? manualScheduledTime();
    return this.startValid(goldenImage, valid, opts, {
      workflowId: goldenWorkflowId({ ...valid, scheduledTime }),
      summary: goldenSummary(valid),
      attributes: { imageId: '(pending)', region: valid.region },
    });
  }

  /** Validates, then starts `buildImage` for a resolved recipe (`loadRecipeFile` resolves a file). */
  async startBuildImage(input: BuildImageInput, opts: StartOptions = {}): Promise<StartedRun> {
    return startBuildImageRun(this.temporal, this.taskQueue, input, opts);
  }

  /**
   * Validates, then starts `rolloutImage`: new launch-template versions and instance refreshes in
   * waves (canary, bake under alarms, optional approval), rolled back on an alarm or failure.
   * Approve or reject after the canary with `approveGoldenImage` / `rejectGoldenImage` (same gate).
   */
  async startRolloutImage(input: RolloutImageInput, opts: StartOptions = {}): Promise<StartedRun> {
    const valid = parseRolloutImageInput(input);
    const first = valid.targets[0];
    return this.startValid(rolloutImage, valid, opts, {
      workflowId: rolloutWorkflowId(valid),
      summary: rolloutSummary(valid),
      ...(first
        ? {
            attributes: {
              imageId: valid.imageId ?? valid.imageIds?.[first.region] ?? '',
              region: first.region,
            },
          }
        : {}),
    });
  }

  /** Validates, then starts `backupInstances` now (Schedules start it otherwise). */
  async startBackup(input: BackupInput, opts: StartOptions = {}): Promise<StartedRun> {
    requirePlainInput(input);
    const valid = parseBackupInput({ ...input, scheduledTime: input.scheduledTime ?? manualScheduledTime() });
    const scheduledTime = valid.scheduledTime ?? manualScheduledTime();
    return this.startValid(backupInstances, valid, opts, {
      workflowId: backupWorkflowId({ ...valid, scheduledTime }),
      summary: backupSummary(valid),
    });
  }

  /**
   * Approves the image a golden run waits on, as whoever holds `signing.credentials` (default: the
   * AWS SDK's default chain): the decision carries an STS GetCallerIdentity request signed with
   * them and bound to the run, which the worker verifies; the run records the verified principal
   * ARN. Refused (RunFailedError) when it is not waiting or that principal may not approve.
   */
  readonly approveGoldenImage: GoldenDecision = (workflowId, decision = {}, signing = {}) =>
    this.decide(workflowId, 'approve', decision, signing);

  /** Rejects it (same proof of identity): the run fails `ApprovalRejected` and undoes itself. */
  readonly rejectGoldenImage: GoldenDecision = (workflowId, decision = {}, signing = {}) =>
    this.decide(workflowId, 'reject', decision, signing);

  private async decide(
    workflowId: string,
    kind: 'approve' | 'reject',
    decision: ApprovalDecision,
    signing: ApprovalSigning,
  ): Promise<ApprovalAck> {
    // The rest of the decision is checked before anything is read or signed (the proof comes next).
    parseApprovalDecision({ ...decision, proof: decision.proof ?? { url: '', headers: {} } });
    // The proof names the run it is for: the run that is waiting now, and the update goes to that run.
    const { runId } = await this.handle(workflowId).describe();
    const valid = parseApprovalDecision({
      ...decision,
      proof: decision.proof ?? (await signApproval(kind, workflowId, runId, signing)),
    });
    try {
      return await this.temporal.workflow
        .getHandle(workflowId, runId)
        .executeUpdate(kind === 'approve' ? approveUpdate : rejectUpdate, { args: [valid] });
    } catch (err) {
      throw updateRefused(err, `${workflowId} refused to ${kind}`, workflowId);
    }
  }

  /** Golden runs waiting for approval (needs the Amiflow* search attributes; docs/production.md). */
  async awaitingApproval(): Promise<{ workflowId: string; runId: string; startedAt: string }[]> {
    const out: { workflowId: string; runId: string; startedAt: string }[] = [];
    const query = `WorkflowType = '${WORKFLOW_TYPES.goldenImage}' AND ExecutionStatus = 'Running' AND AmiflowStep = 'awaiting approval'`;
    for await (const w of this.temporal.workflow.list({ query }))
      out.push({ workflowId: w.workflowId, runId: w.runId, startedAt: w.startTime.toISOString() });
    return out;
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

  /**
   * How a closed run ended, as amiflow sees it: `succeeded-with-problems` for a run that completed
   * yet did not do all it should (a failed retirement). Read from the progress query (which carries
   * the problems); when no worker answers it, from the `AmiflowOutcome` search attribute (no
   * problems listed); `{}` when neither says.
   */
  async runOutcome(workflowId: string): Promise<RunOutcomeReport> {
    try {
      const p = await this.progress(workflowId);
      if (p.outcome) return { outcome: p.outcome, ...(p.problems?.length ? { problems: p.problems } : {}) };
    } catch {
      // no worker to answer the query right now: visibility still knows the outcome
    }
    try {
      const d = await this.handle(workflowId).describe();
      const outcome = d.typedSearchAttributes.get(SearchAttr.outcome);
      return isRunOutcome(outcome) ? { outcome } : {};
    } catch {
      return {};
    }
  }

  /**
   * Requests cancellation: the run undoes what it did (compensation) and ends cancelled. Refused
   * (`RefusedError`) for a workflow that is not amiflow's (by type and id) and for a closed run,
   * which has nothing left to cancel or undo.
   */
  async cancel(workflowId: string): Promise<void> {
    const d = await this.handle(workflowId).describe();
    checkAmiflowRun(workflowId, d.type, 'cancel');
    if (d.status.name !== 'RUNNING')
      throw new RefusedError(
        `run ${workflowId} is closed (${d.status.name.toLowerCase()}${d.closeTime ? ` at ${d.closeTime.toISOString()}` : ''}): there is nothing to cancel, and nothing will be undone`,
      );
    await this.temporal.workflow.getHandle(workflowId, d.runId).cancel();
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

  /** The run's handle; an id that is not one (empty, too long, control characters) is refused first. */
  handle(workflowId: string): WorkflowHandle {
    return this.temporal.workflow.getHandle(checkedId('workflowId', workflowId));
  }
}

/** The caller's own workflow id (`opts.workflowId`), checked; undefined when none was given. */
function startId(opts: StartOptions | null | undefined): string | undefined {
  const id = opts?.workflowId;
  return id === undefined ? undefined : checkedId('workflowId', id);
}

/**
 * A workflow's refusal of an update becomes `RunFailedError` (`refused`, then its reason, with
 * amiflow's failure type); any other error is returned as it is.
 */
function updateRefused(err: unknown, refused: string, workflowId: string): unknown {
  if (!(err instanceof WorkflowUpdateFailedError)) return err;
  const type = err.cause instanceof ApplicationFailure ? (err.cause.type ?? undefined) : undefined;
  return new RunFailedError(`${refused}: ${err.cause?.message ?? err.message}`, workflowId, type, false);
}

/** Runs `fn`; a failed run becomes `RunFailedError` (named by `what`) with amiflow's failure type. */
async function failedAsRunFailed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toRunFailed(err, what);
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
