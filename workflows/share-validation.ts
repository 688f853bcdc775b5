/**
 * Input validation for shareImage, unshareImage, copyImage and the share-expiry update, shared by
 * the client (before anything starts) and the workflows (again at start, before any AWS call): the
 * rules are the schemas in contracts/share.ts and contracts/copy.ts; these names stay for their callers.
 */
import type {
  CopyImageInput,
  InputIssue,
  ShareExpiryUpdate,
  ShareImageInput,
  UnshareImageInput,
} from '../contracts';
import {
  InvalidInputError,
  copyImageInputSchema,
  issuesFor,
  parseWith,
  shareExpiryUpdateSchema,
  shareImageInputSchema,
  unshareImageInputSchema,
} from '../contracts';

export { MAX_COPY_CONCURRENCY_PER_REGION, MAX_COPY_DESTINATIONS, shareExpiryIssues } from '../contracts';
export { partitionOfRegion } from '../contracts/fields';

export const shareImageIssues = (input: unknown): InputIssue[] => issuesFor(shareImageInputSchema, input);
export const unshareImageIssues = (input: unknown): InputIssue[] => issuesFor(unshareImageInputSchema, input);
export const copyImageIssues = (input: unknown): InputIssue[] => issuesFor(copyImageInputSchema, input);

export const parseShareImageInput = (input: unknown): ShareImageInput =>
  parseWith(shareImageInputSchema, input);
export const parseUnshareImageInput = (input: unknown): UnshareImageInput =>
  parseWith(unshareImageInputSchema, input) as UnshareImageInput;
export const parseCopyImageInput = (input: unknown): CopyImageInput => parseWith(copyImageInputSchema, input);
/** Shape-only check of an expiry update for the client (the workflow checks the times against its clock). */
export function parseShareExpiryUpdate(update: unknown): ShareExpiryUpdate {
  const issues = issuesFor(shareExpiryUpdateSchema, update, '', '(update)');
  if (issues.length > 0) throw new InvalidInputError(issues);
  return update as ShareExpiryUpdate;
}
