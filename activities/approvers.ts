/**
 * Verifies who approves a golden image: the approver's client signed an STS GetCallerIdentity
 * request with the approver's own credentials, binding the decision, workflow and run into a signed
 * header; the worker sends it to STS and reads back the signer's ARN. Only STS can answer it (the
 * URL must be an STS endpoint over https), so a claimed name is never what gets recorded.
 */
import type { ApproverProof, VerifiedApprover } from '../contracts';
import { APPROVAL_BINDING_HEADER, FailureType } from '../contracts';
import { principalOf } from '../workflows/approvers';
import type { ActivityDeps } from './deps';
import { failure } from './errors';

export interface VerifyApproverInput {
  proof: ApproverProof;
  /** The value the signed binding header must carry (`approvalBinding(kind, workflowId, runId)`). */
  binding: string;
}

/** How long after signing a proof is accepted: it is for one decision, now (STS allows 15 min of skew). */
export const MAX_PROOF_SECONDS = 15 * 60;

const AWS_STS_HOST = /^sts(\.[a-z]{2}(-[a-z]+)+-\d)?\.amazonaws\.com(\.cn)?$/;

function refused(message: string) {
  return failure(FailureType.ApproverNotVerified, message);
}

/** Why the proof is not one to send (an STS GetCallerIdentity, bound to this decision), or undefined. */
export function proofProblem(
  input: VerifyApproverInput,
  now: number,
  allowedEndpoint?: string,
): string | undefined {
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
  if (url.searchParams.get('Action') !== 'GetCallerIdentity')
    return 'the proof is not an STS GetCallerIdentity request';
  const header = (name: string) =>
    Object.entries(input.proof.headers).find(([k]) => k.toLowerCase() === name)?.[1];
  const auth =
    /^AWS4-HMAC-SHA256 Credential=[^,\s]+\/sts\/aws4_request, ?SignedHeaders=([^,\s]+), ?Signature=[0-9a-f]{64}$/.exec(
      header('authorization') ?? '',
    );
  if (!auth) return 'the proof is not signed with SigV4 for STS (Authorization header)';
  if (!(auth[1] ?? '').split(';').includes(APPROVAL_BINDING_HEADER))
    return `the proof does not sign the ${APPROVAL_BINDING_HEADER} header that binds it to this decision`;
  const signedAt = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(header('x-amz-date') ?? '');
  const [, y, mo, d, h, mi, se] = (signedAt ?? []).map(Number);
  const at = signedAt && y !== undefined && mo !== undefined ? Date.UTC(y, mo - 1, d, h, mi, se) : Number.NaN;
  if (Number.isNaN(at)) return 'the proof has no signing time (X-Amz-Date)';
  const age = (now - at) / 1000;
  if (age > MAX_PROOF_SECONDS || age < -60)
    return `the proof was signed at ${new Date(at).toISOString()}: a proof is accepted for ${MAX_PROOF_SECONDS} s after signing; sign again`;
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
     * Sends the approver's signed GetCallerIdentity to STS and returns the verified identity.
     * Non-retryable `ApproverNotVerified` when the proof is not such a request, is bound to another
     * decision, or STS refuses its signature (expired, forged); STS 5xx and network errors retry.
     */
    async verifyApprover(input: VerifyApproverInput): Promise<VerifiedApprover> {
      const problem = proofProblem(input, deps.clock.now(), deps.stsEndpoint);
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
