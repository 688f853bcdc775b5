/**
 * Input validation for the guardrails (the catalogue, complianceScan, enforceAllowedAmis), shared by
 * the client (before anything starts) and the workflows (again at start): the rules are the schemas
 * in contracts/guardrails.ts; these names stay for their callers. Pure: no I/O.
 */
import type { z } from 'zod';
import type {
  AllowListEntry,
  CatalogueInput,
  ComplianceScanInput,
  EnforceAllowedAmisInput,
  InputIssue,
  SetAllowedAmisMode,
} from '../contracts';
import {
  allowListSchema,
  catalogueInputSchema,
  complianceScanInputSchema,
  enforceAllowedAmisInputSchema,
  guardrailName,
  issuesFor,
  parseWith,
  setAllowedAmisModeSchema,
} from '../contracts';

export {
  DEFAULT_GUARDRAIL_CONCURRENCY,
  DEFAULT_MAX_FINDINGS_PER_TARGET,
  MAX_GUARDRAIL_CONCURRENCY,
} from '../contracts';

export function checkName(issues: InputIssue[], field: string, value: unknown): void {
  issues.push(...issuesFor(guardrailName, value, field));
}

export function allowListIssues(value: unknown, field = 'allowList'): InputIssue[] {
  return value === undefined ? [] : issuesFor(allowListSchema, value, field);
}

export const catalogueInputIssues = (input: unknown) => issuesFor(catalogueInputSchema, input);
export const complianceScanIssues = (input: unknown) => issuesFor(complianceScanInputSchema, input);
export const enforceAllowedAmisIssues = (input: unknown) => issuesFor(enforceAllowedAmisInputSchema, input);
export const setAllowedAmisModeIssues = (input: unknown) => issuesFor(setAllowedAmisModeSchema, input);

function parser<T>(schema: z.ZodType): (input: unknown) => T {
  return (input) => parseWith(schema, input) as T;
}

export const parseCatalogueInput = parser<CatalogueInput>(catalogueInputSchema);
export const parseComplianceScanInput = parser<ComplianceScanInput>(complianceScanInputSchema);
export const parseEnforceAllowedAmisInput = parser<EnforceAllowedAmisInput>(enforceAllowedAmisInputSchema);
export const parseSetAllowedAmisMode = parser<SetAllowedAmisMode>(setAllowedAmisModeSchema);
export const parseAllowList = parser<AllowListEntry[]>(allowListSchema);
