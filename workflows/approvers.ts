/**
 * Who may approve a golden image, as IAM principals: the ARN STS verified for an approver's proof
 * (an assumed-role session stands for its role) matched against the pipeline's approver ARNs or
 * patterns. Pure: used by the workflow, the verifying activity and the client's plan checks.
 */
import type { InputIssue } from './validation';
import { show } from './validation';

const STS_OR_IAM_ARN =
  /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):(sts|iam)::(\d{12}):(assumed-role|role|user|root|federated-user)(?:\/(.+))?$/;

/**
 * The IAM principal an STS caller ARN stands for: `assumed-role/<role>/<session>` → `role/<role>`
 * (STS reports roles by name, without their path); users and roots as they are. Undefined for
 * anything else (a federated user is no IAM principal to approve as).
 */
export function principalOf(arn: string): { principalArn: string; account: string } | undefined {
  const m = STS_OR_IAM_ARN.exec(arn);
  if (!m) return undefined;
  const [, partition, , account = '', kind, rest = ''] = m;
  if (kind === 'assumed-role') {
    const role = rest.split('/')[0];
    return role ? { principalArn: `arn:${partition}:iam::${account}:role/${role}`, account } : undefined;
  }
  if (kind === 'user' && rest)
    return {
      principalArn: `arn:${partition}:iam::${account}:user/${rest.split('/').pop() ?? rest}`,
      account,
    };
  if (kind === 'role' && rest)
    return {
      principalArn: `arn:${partition}:iam::${account}:role/${rest.split('/').pop() ?? rest}`,
      account,
    };
  if (kind === 'root') return { principalArn: `arn:${partition}:iam::${account}:root`, account };
  return undefined;
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/:]*');
  return new RegExp(`^${escaped}$`);
}

/** Whether the principal is one of the approvers (`*` matches within one name or the account, never across `/` or `:`). */
export function approverMatches(principalArn: string, approvers: readonly string[]): boolean {
  return approvers.some((a) => (a.includes('*') ? globToRegExp(a).test(principalArn) : a === principalArn));
}

const APPROVER_PATTERN = /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}|\*):(role|user)\/([\w+=,.@*-]+)$/;

/**
 * Approvers must be IAM role or user ARNs (or patterns): a name is only a claim. A role's path is
 * left out (STS names assumed roles without it), and a pattern that names every role or user of an
 * account (`role/*`) is refused: it would let anyone who can assume any role approve.
 */
export function approverPatternIssues(field: string, approvers: unknown): InputIssue[] {
  if (approvers === undefined) return [];
  if (!Array.isArray(approvers)) return [{ field, message: 'must be a list of IAM role or user ARNs' }];
  const issues: InputIssue[] = [];
  approvers.forEach((a: unknown, i) => {
    const f = `${field}[${i}]`;
    const m = typeof a === 'string' ? APPROVER_PATTERN.exec(a) : null;
    if (!m)
      issues.push({
        field: f,
        message: `${show(a)} is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>, without the role's path; '*' allowed within the name): approvers are verified by their AWS identity, not by a name`,
      });
    else if (/^\**$/.test(m[4] ?? ''))
      issues.push({
        field: f,
        message: `${show(a)} names every ${m[3] ?? 'role'} of ${m[2] === '*' ? 'every account' : `account ${m[2] ?? ''}`}: name the approvers' roles or users (e.g. role/image-approvers)`,
      });
  });
  return issues;
}
