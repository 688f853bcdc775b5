/**
 * Input validation for `migrateInstance`, shared by the client (before anything starts) and the
 * workflow (again at start, before any AWS call): the rules are `migrateInstanceInputSchema` in
 * contracts/migrate.ts, every issue naming its field path.
 *
 * What only AWS can answer (does the AZ exist, is there a subnet there, does the source have an
 * Elastic IP) is checked by the workflow's first step, still before anything is touched.
 */
import type { InputIssue, MigrateInstanceInput } from '../contracts';
import { issuesFor, migrateInstanceInputSchema, parseWith } from '../contracts';

/** Every problem with a `migrateInstance` input, in field order; empty when it is valid. */
export function migrateInstanceIssues(input: unknown): InputIssue[] {
  return issuesFor(migrateInstanceInputSchema, input);
}

/** Returns the input typed when valid; throws `InvalidInputError` naming every bad field otherwise. */
export function parseMigrateInstanceInput(input: unknown): MigrateInstanceInput {
  return parseWith(migrateInstanceInputSchema, input);
}
