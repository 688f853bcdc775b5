/**
 * Input validation for goldenImage and backupInstances (and the approval decision), shared by the
 * client and the plan file (before anything starts) and the workflows (again at start, before any
 * AWS call): the rules are the schemas in contracts/golden.ts and contracts/backup.ts; these names
 * stay for their callers.
 */
import type { ApprovalDecision, BackupInput, GoldenImageInput, InputIssue } from '../contracts';
import { rolloutStageIssues } from './rollout-plan';
import {
  InvalidInputError,
  approvalDecisionIssues,
  backupInputSchema,
  goldenImageInputSchema,
  issuesFor,
  parseWith,
} from '../contracts';

export { MAX_GOLDEN_USER_TAGS, approvalDecisionIssues } from '../contracts';
export { PLAN_NAME_RE } from '../contracts/fields';

/** The schema's issues, then the `rollout` stage's (the rollout input's own rules, under `rollout.`). */
export const goldenImageIssues = (input: unknown): InputIssue[] => [
  ...issuesFor(goldenImageInputSchema, input),
  ...rolloutStageIssues(
    typeof input === 'object' && input !== null ? (input as { rollout?: unknown }).rollout : undefined,
  ),
];
export const backupIssues = (input: unknown): InputIssue[] => issuesFor(backupInputSchema, input);

export function parseGoldenImageInput(input: unknown): GoldenImageInput {
  const issues = goldenImageIssues(input);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input as GoldenImageInput;
}
export const parseBackupInput = (input: unknown): BackupInput => parseWith(backupInputSchema, input);

export function parseApprovalDecision(decision: unknown, approvers?: readonly string[]): ApprovalDecision {
  const issues = approvalDecisionIssues(decision, approvers);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return decision as ApprovalDecision;
}
