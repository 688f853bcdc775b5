/**
 * The approval gate of a golden run: the `approve` / `reject` updates (accepted only while the run
 * waits for them, from a verified approver of the pipeline) and the stage that waits for one.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  ApprovalAck,
  ApprovalDecision,
  GoldenImageInput,
  GoldenImageResult,
  VerifiedApprover,
} from '../../contracts';
import {
  AUTO_APPROVER,
  DEFAULT_APPROVAL_TIMEOUT_SECONDS,
  FailureType,
  SearchAttr,
  approvalBinding,
  approveUpdate,
  rejectUpdate,
} from '../../contracts';
import { la } from '../bootstrap';
import { approverMatches } from '../approvers';
import { approvalDecisionIssues } from '../golden-validation';
import { patchesAtStart } from '../patches';
import { fastAwsCall } from '../presets';
import { formatIssues } from '../validation';
import type { GoldenRun } from './run';
import { iso } from './run';

interface Decision {
  kind: 'approved' | 'rejected';
  by: string;
  comment?: string;
  verifiedArn?: string;
  at: number;
}

export interface ApprovalGate {
  /** The run waits for a decision on this image from now on. */
  open: (imageId: string, version: string) => void;
  decision: () => Decision | undefined;
}

/**
 * The approver's identity as STS verifies it (the `verifyApprover` activity), bound to this run and
 * decision, and checked against the pipeline's approvers. The update fails otherwise; the run waits on.
 */
async function verifiedApprover(
  kind: 'approve' | 'reject',
  d: ApprovalDecision,
  approvers: readonly string[] | undefined,
): Promise<VerifiedApprover> {
  const { workflowId, runId } = workflowInfo();
  if (!d.proof)
    throw ApplicationFailure.create({
      type: FailureType.ApproverNotVerified,
      nonRetryable: true,
      message:
        'a decision needs proof of who takes it (an STS GetCallerIdentity request signed with your AWS credentials)',
    });
  let who: VerifiedApprover;
  try {
    who = await la.verifyApprover.executeWithOptions(
      { ...fastAwsCall, summary: `verify who ${kind}s (STS GetCallerIdentity)` },
      [{ proof: d.proof, binding: approvalBinding(kind, workflowId, runId) }],
    );
  } catch (err) {
    // The update fails with the activity's own refusal (type ApproverNotVerified), not its wrapper.
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) throw err.cause;
    throw err;
  }
  if (approvers && approvers.length > 0 && !approverMatches(who.principalArn, approvers))
    throw ApplicationFailure.create({
      type: FailureType.ApproverNotVerified,
      nonRetryable: true,
      message: `${who.arn} (${who.principalArn}) is not one of this pipeline's approvers (${approvers.join(', ')})`,
    });
  return who;
}

/**
 * Registers the `approve` and `reject` update handlers. Called before the input is parsed (from the
 * raw input's approvers), so an update sent to a run refused for bad input is answered, not dropped.
 */
export function approvalGate(rawInput: GoldenImageInput): ApprovalGate {
  let awaiting: { imageId: string; version: string } | undefined;
  let decision: Decision | undefined;
  const gate = (rawInput as Partial<GoldenImageInput> | undefined)?.approval;
  const approvers = gate?.approvers;
  // Registered before the run's Progress (a bad input must still answer), so the gate takes the
  // run's patch decisions itself, in the same first activation: the same marker, the same answer.
  const since = patchesAtStart();
  const notWaiting = () =>
    ApplicationFailure.create({
      type: FailureType.InvalidInput,
      nonRetryable: true,
      message: decision
        ? `the image was ${decision.kind} already, by ${decision.by}`
        : `this run is not waiting for approval (${gate ? 'not there yet, or past it' : 'its pipeline has no approval gate'})`,
    });
  const decide =
    (kind: 'approved' | 'rejected') =>
    async (d: ApprovalDecision): Promise<ApprovalAck> => {
      let by = d.by ?? '';
      let verifiedArn: string | undefined;
      // Runs that took decisions before approvers were verified replay them as they were taken.
      if (since('verified-approvers')) {
        const who = await verifiedApprover(kind === 'approved' ? 'approve' : 'reject', d, approvers);
        if (!awaiting || decision) throw notWaiting(); // decided while STS answered
        by = who.principalArn;
        verifiedArn = who.arn;
      }
      const at = Date.now();
      decision = {
        kind,
        by,
        ...(d.comment ? { comment: d.comment } : {}),
        ...(verifiedArn ? { verifiedArn } : {}),
        at,
      };
      return {
        workflowId: workflowInfo().workflowId,
        imageId: awaiting?.imageId ?? '',
        version: awaiting?.version ?? '',
        decision: kind,
        at: iso(at),
      };
    };
  const validator = (d: ApprovalDecision): void => {
    if (!awaiting || decision) throw notWaiting();
    const issues = approvalDecisionIssues(d, approvers);
    if (issues.length > 0)
      throw ApplicationFailure.create({
        type: FailureType.InvalidInput,
        nonRetryable: true,
        message: formatIssues(issues),
      });
    if (d.proof === undefined)
      throw ApplicationFailure.create({
        type: FailureType.ApproverNotVerified,
        nonRetryable: true,
        message:
          'a decision needs proof of who takes it: an STS GetCallerIdentity request signed with your AWS credentials (amiflow golden approve|reject does it; the library: approveGoldenImage)',
      });
  };
  setHandler(approveUpdate, decide('approved'), { validator });
  setHandler(rejectUpdate, decide('rejected'), { validator });
  return {
    open: (imageId, version) => {
      awaiting = { imageId, version };
    },
    decision: () => decision,
  };
}

/**
 * Waits up to `timeoutSeconds` for an approver's decision (golden runs and rollouts alike): none in
 * time fails with `ApprovalTimedOut`, a rejection with `ApprovalRejected` naming who and why;
 * `subject` is what was to be approved, `then` what the run does about it.
 */
export async function awaitDecision<
  D extends { kind: 'approved' | 'rejected'; by: string; comment?: string },
>(
  decision: () => D | undefined,
  timeoutSeconds: number,
  { subject, then }: { subject: string; then: string },
): Promise<D> {
  const inTime = await condition(() => decision() !== undefined, timeoutSeconds * 1000);
  const d = decision();
  if (!inTime || !d)
    throw ApplicationFailure.create({
      type: FailureType.ApprovalTimedOut,
      nonRetryable: true,
      message: `no one approved or rejected ${subject} within ${timeoutSeconds} s; ${then}`,
    });
  if (d.kind === 'rejected')
    throw ApplicationFailure.create({
      type: FailureType.ApprovalRejected,
      nonRetryable: true,
      message: `${d.by} rejected ${subject}${d.comment ? `: ${d.comment}` : ''}; ${then}`,
      details: [{ by: d.by, comment: d.comment }],
    });
  return d;
}

/** 4. Approval: a person, within the timeout; otherwise the run fails and undoes itself. */
export async function awaitApproval(
  run: GoldenRun,
  gate: ApprovalGate,
  imageId: string,
  version: string,
): Promise<GoldenImageResult['approval']> {
  const { input, progress, withSearchAttributes } = run;
  if (!input.approval) {
    progress.skip('await approval', 'no approval gate: approved by its validation');
    return { by: AUTO_APPROVER, at: iso(Date.now()), gate: false };
  }
  const timeoutSeconds = input.approval.timeoutSeconds ?? DEFAULT_APPROVAL_TIMEOUT_SECONDS;
  gate.open(imageId, version);
  if (withSearchAttributes) upsertSearchAttributes([{ key: SearchAttr.step, value: 'awaiting approval' }]);
  const decided = await progress.run(
    'await approval',
    () =>
      awaitDecision(gate.decision, timeoutSeconds, {
        subject: `${imageId} (${input.pipeline} ${version})`,
        then: 'the run undoes itself and the previous approved image stays current',
      }),
    `${imageId} (${version}): send the approve or reject update, signed with your AWS credentials (amiflow golden approve ${run.workflowId})`,
  );
  if (withSearchAttributes) upsertSearchAttributes([{ key: SearchAttr.step, value: 'approved' }]);
  return {
    by: decided.by,
    at: iso(decided.at),
    ...(decided.comment ? { comment: decided.comment } : {}),
    gate: true,
    ...(decided.verifiedArn ? { verifiedArn: decided.verifiedArn } : {}),
  };
}
