/**
 * Input validation shared by the client (before anything starts) and the workflow (again at start,
 * before any AWS call). The rules are the zod schemas in contracts/; the `check*` helpers below let
 * the validators not yet written as schemas (share, migrate, golden, guardrails) use the very same
 * field rules and messages. Pure and deterministic: safe inside the workflow sandbox.
 */
import type { z } from 'zod';
import type { ImageFromInstanceInput, InputIssue } from '../contracts';
import { imageFromInstanceInputSchema, issuesFor, parseWith } from '../contracts';
import { accountId, imageName, instanceId, region, seconds, userTags } from '../contracts/fields';

export type { InputIssue } from '../contracts';
export { InvalidInputError, formatIssues, show } from '../contracts';
export { IMAGE_ID_RE, useRegionCheck } from '../contracts/fields';

type Check = (issues: InputIssue[], field: string, value: unknown) => void;

/** A check of one field by its schema: its issues, named from `field`, join `issues`. */
function checkWith(schema: z.ZodType, optional: boolean): Check {
  return (issues, field, value) => {
    if (optional && value === undefined) return;
    issues.push(...issuesFor(schema, value, field));
  };
}

export const checkRegion: Check = checkWith(region, false);
export const checkAccountId: Check = checkWith(accountId, true);
export const checkInstanceId: Check = checkWith(instanceId, false);
export const checkImageName: Check = checkWith(imageName, false);
export const checkTags: Check = checkWith(userTags, true);

export function checkSeconds(
  issues: InputIssue[],
  field: string,
  value: unknown,
  min: number,
  max: number,
): void {
  checkWith(seconds(min, max), true)(issues, field, value);
}

export function checkNoUnknownKeys(
  issues: InputIssue[],
  prefix: string,
  value: object,
  known: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key))
      issues.push({ field: prefix + key, message: `is not a known field (known: ${known.join(', ')})` });
  }
}

/** Every problem with an `imageFromInstance` input, in field order; empty when it is valid. */
export function imageFromInstanceIssues(input: unknown): InputIssue[] {
  return issuesFor(imageFromInstanceInputSchema, input);
}

/** Returns the input typed when valid; throws `InvalidInputError` naming every bad field otherwise. */
export function parseImageFromInstanceInput(input: unknown): ImageFromInstanceInput {
  return parseWith(imageFromInstanceInputSchema, input);
}
