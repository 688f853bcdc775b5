/**
 * Verifies who approves a golden image: the approver's client presigned an STS GetCallerIdentity
 * request with the approver's own credentials, binding the decision, workflow and run into a signed
 * header; the worker sends it to STS and reads back the signer's ARN. Only STS can answer it (the
 * URL must be an STS endpoint over https), so a claimed name is never what gets recorded.
 */
import type { ApproverProof, VerifiedApprover } from '../workflows/contracts';
import { APPROVAL_BINDING_HEADER, FailureType } from '../workflows/contracts';
import { principalOf } from '../workflows/approvers';
import type { ActivityDeps } from './deps';
import { failure } from './errors';

export interface VerifyApproverInput {
  proof: ApproverProof;
  /** The value the signed binding header must carry (`approvalBinding(kind, workflowId, runId)`). */
  binding: string;
}

/** Longest presigned lifetime accepted: a proof is for one decision, now. */
export const MAX_PROOF_SECONDS = 15 * 60;

const AWS_STS_HOST = /^sts(\.[a-z]{2}(-[a-z]+)+-\d)?\.amazonaws\.com(\.cn)?$/;

function refused(message: string) {
  return failure(FailureType.ApproverNotVerified, message);
}

/** Why the proof is not one to send (an STS GetCallerIdentity, bound to this decision), or undefined. */
export function proofProblem(input: VerifyApproverInput, allowedEndpoint?: string): string | undefined {
  let url: URL;
  try {
    url = new URL(input.proof.url);
  } catch {
    return 'the proof URL is not a URL';
  }
  const sandbox = allowedEndpoint ? new URL(allowedEndpoint) : undefined;
  const isAws = url.protocol === 'https:' && AWS_STS_HOST.test(url.hostname) && url.port === '';
  const isSandbox = sandbox !== undefined && url.origin === sandbox.origin;
  if (!isAws && !isSandbox)
    return `the proof is addressed to ${url.origin}, not to an AWS STS endpoint (https://sts[.<region>].amazonaws.com)`;
  const q = url.searchParams;
  if (q.get('Action') !== 'GetCallerIdentity') return 'the proof is not an STS GetCallerIdentity request';
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || !q.get('X-Amz-Signature'))
    return 'the proof is not presigned with SigV4 (X-Amz-Algorithm, X-Amz-Signature)';
  const expires = Number(q.get('X-Amz-Expires'));
  if (!Number.isInteger(expires) || expires <= 0 || expires > MAX_PROOF_SECONDS)
    return `the proof must expire within ${MAX_PROOF_SECONDS} s (X-Amz-Expires ${q.get('X-Amz-Expires') ?? 'missing'})`;
  const signed = (q.get('X-Amz-SignedHeaders') ?? '').split(';');
  if (!signed.includes(APPROVAL_BINDING_HEADER))
    return `the proof does not sign the ${APPROVAL_BINDING_HEADER} header that binds it to this decision`;
  const bound = Object.entries(input.proof.headers).find(
    ([k]) => k.toLowerCase() === APPROVAL_BINDING_HEADER,
  )?.[1];
  if (bound !== input.binding)
    return `the proof is bound to '${bound ?? '(nothing)'}', not to '${input.binding}' (another run or the other decision)`;
  return undefined;
}

export function approverActivities(deps: ActivityDeps) {
  return {
    /**
     * Sends the approver's presigned GetCallerIdentity to STS and returns the verified identity.
     * Non-retryable `ApproverNotVerified` when the proof is not such a request, is bound to another
     * decision, or STS refuses its signature (expired, forged); STS 5xx and network errors retry.
     */
    async verifyApprover(input: VerifyApproverInput): Promise<VerifiedApprover> {
      const problem = proofProblem(input, deps.stsEndpoint);
      if (problem) throw refused(problem);
      const headers = Object.fromEntries(
        Object.entries(input.proof.headers).filter(([k]) => k.toLowerCase() !== 'host'),
      );
      const res = await fetch(input.proof.url, { method: 'GET', headers, redirect: 'error' });
      const body = await res.text();
      if (res.status >= 500 || res.status === 429)
        throw new Error(`STS answered ${res.status} verifying an approver; retrying`);
      if (res.status !== 200) {
        const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? String(res.status);
        const message = /<Message>([^<]+)<\/Message>/.exec(body)?.[1] ?? '';
        throw refused(
          `STS refused the approver's proof: ${code}${message ? `: ${message}` : ''} (an expired or forged signature; sign again)`,
        );
      }
      const arn = /<Arn>([^<]+)<\/Arn>/.exec(body)?.[1];
      const principal = arn ? principalOf(arn) : undefined;
      if (!arn || !principal)
        throw refused(
          `STS answered no IAM principal for the proof (${arn ?? 'no Arn'}): approve as an IAM role or user`,
        );
      return { arn, ...principal };
    },
  };
}
