/**
 * Input validation for the guardrails (the catalogue, complianceScan, enforceAllowedAmis), shared by
 * the client (before anything starts) and the workflows (again at start). Pure: no I/O.
 */
import type {
  AllowListEntry,
  CatalogueInput,
  ComplianceScanInput,
  EnforceAllowedAmisInput,
  SetAllowedAmisMode,
} from '../contracts';
import { ALLOWED_AMIS_MODES, SELF_ACCOUNT } from '../contracts';
import type { InputIssue } from './validation';
import {
  IMAGE_ID_RE,
  InvalidInputError,
  checkAccountId,
  checkNoUnknownKeys,
  checkRegion,
  show,
} from './validation';

/** Names of scans and enforcements: they become workflow ids, so no `/` and nothing exotic. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Pipeline names as golden-image runs tag them. */
const PIPELINE_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
/** An owner in the allow list: an account id, or an alias EC2 uses for owners. */
const OWNER_ALIASES = ['amazon', 'aws-marketplace', 'aws-backup-vault'] as const;
export const MAX_GUARDRAIL_CONCURRENCY = 32;
export const DEFAULT_GUARDRAIL_CONCURRENCY = 4;
export const DEFAULT_MAX_FINDINGS_PER_TARGET = 100;
const MAX_TARGETS = 2_000;
const MAX_ALLOW_LIST = 1_000;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function checkName(issues: InputIssue[], field: string, value: unknown): void {
  if (typeof value !== 'string' || value === '')
    issues.push({ field, message: 'is required (e.g. prod-daily)' });
  else if (!NAME_RE.test(value))
    issues.push({
      field,
      message: `${show(value)} is not a valid name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    });
}

/** A list of accounts: each 12 digits or `self`, no duplicates. */
function checkAccounts(issues: InputIssue[], field: string, value: unknown, required = false): void {
  if (value === undefined) {
    if (required) issues.push({ field, message: 'is required: a list of account ids or self' });
    return;
  }
  if (!Array.isArray(value) || value.length === 0) {
    issues.push({ field, message: `must be a non-empty list of 12-digit account ids or '${SELF_ACCOUNT}'` });
    return;
  }
  const seen = new Set<unknown>();
  value.forEach((a: unknown, i) => {
    if (a !== SELF_ACCOUNT) checkAccountId(issues, `${field}.${i}`, a);
    if (seen.has(a)) issues.push({ field: `${field}.${i}`, message: `${show(a)} is listed twice` });
    seen.add(a);
  });
}

function checkRegions(issues: InputIssue[], field: string, value: unknown): void {
  if (!Array.isArray(value) || value.length === 0) {
    issues.push({ field, message: 'is required: a non-empty list of regions (e.g. eu-west-1)' });
    return;
  }
  const seen = new Set<unknown>();
  value.forEach((r: unknown, i) => {
    checkRegion(issues, `${field}.${i}`, r);
    if (seen.has(r)) issues.push({ field: `${field}.${i}`, message: `${show(r)} is listed twice` });
    seen.add(r);
  });
}

function checkPipelines(issues: InputIssue[], field: string, value: unknown): void {
  if (value === undefined) return;
  if (!Array.isArray(value) || value.length === 0) {
    issues.push({
      field,
      message: 'must be a non-empty list of pipeline names (or left out for every pipeline)',
    });
    return;
  }
  value.forEach((p: unknown, i) => {
    if (typeof p !== 'string' || !PIPELINE_RE.test(p))
      issues.push({
        field: `${field}.${i}`,
        message: `${show(p)} is not a pipeline name (1 to 128 letters, digits, '.', '_', '-', '/')`,
      });
  });
}

function checkWhole(issues: InputIssue[], field: string, value: unknown, min: number, max: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    issues.push({ field, message: `must be a whole number from ${min} to ${max}, got ${show(value)}` });
}

export function allowListIssues(value: unknown, field = 'allowList'): InputIssue[] {
  const issues: InputIssue[] = [];
  if (value === undefined) return issues;
  if (!Array.isArray(value)) return [{ field, message: 'must be a list of entries' }];
  if (value.length > MAX_ALLOW_LIST)
    issues.push({ field, message: `has ${value.length} entries; at most ${MAX_ALLOW_LIST}` });
  value.forEach((raw: unknown, i) => {
    const f = `${field}.${i}`;
    if (!isObject(raw)) {
      issues.push({ field: f, message: 'must be an object with imageId and region, or owner, and a reason' });
      return;
    }
    const e = raw as Partial<AllowListEntry>;
    checkNoUnknownKeys(issues, `${f}.`, raw, ['imageId', 'region', 'owner', 'reason']);
    if (typeof e.reason !== 'string' || e.reason.trim() === '')
      issues.push({ field: `${f}.reason`, message: 'is required: say why this image or owner is allowed' });
    else if (e.reason.length > 256)
      issues.push({
        field: `${f}.reason`,
        message: `must be at most 256 characters, got ${e.reason.length}`,
      });
    if (e.imageId !== undefined && e.owner !== undefined)
      issues.push({ field: f, message: 'names either one image (imageId, region) or an owner, not both' });
    else if (e.imageId !== undefined) {
      if (typeof e.imageId !== 'string' || !IMAGE_ID_RE.test(e.imageId))
        issues.push({
          field: `${f}.imageId`,
          message: `${show(e.imageId)} is not an AMI id (ami- and 8 or 17 hex digits)`,
        });
      checkRegion(issues, `${f}.region`, e.region);
    } else if (e.owner !== undefined) {
      if (e.region !== undefined)
        issues.push({
          field: `${f}.region`,
          message: 'applies to an imageId only; an owner is allowed in every region',
        });
      if (
        typeof e.owner !== 'string' ||
        !(/^\d{12}$/.test(e.owner) || OWNER_ALIASES.includes(e.owner as never))
      )
        issues.push({
          field: `${f}.owner`,
          message: `${show(e.owner)} is not an owner: a 12-digit account id or one of ${OWNER_ALIASES.join(', ')}`,
        });
    } else issues.push({ field: f, message: 'needs imageId (with region) or owner' });
  });
  return issues;
}

function common(issues: InputIssue[], i: Record<string, unknown>, cataloguesField: string): void {
  checkRegions(issues, 'regions', i.regions);
  checkAccounts(issues, cataloguesField, i[cataloguesField]);
  checkPipelines(issues, 'pipelines', i.pipelines);
  issues.push(...allowListIssues(i.allowList));
  checkWhole(issues, 'concurrency', i.concurrency, 1, MAX_GUARDRAIL_CONCURRENCY);
}

function targetsBound(issues: InputIssue[], i: Record<string, unknown>): void {
  const accounts = Array.isArray(i.accounts) ? i.accounts.length : 1;
  const regions = Array.isArray(i.regions) ? i.regions.length : 0;
  if (accounts * regions > MAX_TARGETS)
    issues.push({
      field: 'accounts',
      message: `${accounts} accounts × ${regions} regions is ${accounts * regions} targets; at most ${MAX_TARGETS} per run`,
    });
}

const CATALOGUE_FIELDS = ['accounts', 'regions', 'pipelines', 'allowList', 'concurrency'] as const;

export function catalogueInputIssues(input: unknown): InputIssue[] {
  if (!isObject(input)) return [{ field: '(input)', message: 'must be an object' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', input, CATALOGUE_FIELDS);
  common(issues, input, 'accounts');
  return issues;
}

const SCAN_FIELDS = [
  'name',
  'accounts',
  'regions',
  'catalogueAccounts',
  'pipelines',
  'allowList',
  'concurrency',
  'maxFindingsPerTarget',
] as const;

export function complianceScanIssues(input: unknown): InputIssue[] {
  if (!isObject(input)) return [{ field: '(input)', message: 'must be an object' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', input, SCAN_FIELDS);
  checkName(issues, 'name', input.name);
  checkAccounts(issues, 'accounts', input.accounts);
  common(issues, input, 'catalogueAccounts');
  checkWhole(issues, 'maxFindingsPerTarget', input.maxFindingsPerTarget, 0, 10_000);
  targetsBound(issues, input);
  return issues;
}

const ENFORCE_FIELDS = [
  'name',
  'accounts',
  'regions',
  'catalogueAccounts',
  'pipelines',
  'allowList',
  'concurrency',
  'carried',
] as const;

export function enforceAllowedAmisIssues(input: unknown): InputIssue[] {
  if (!isObject(input)) return [{ field: '(input)', message: 'must be an object' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', input, ENFORCE_FIELDS);
  checkName(issues, 'name', input.name);
  checkAccounts(issues, 'accounts', input.accounts);
  common(issues, input, 'catalogueAccounts');
  targetsBound(issues, input);
  if (input.carried !== undefined && !isObject(input.carried))
    issues.push({ field: 'carried', message: 'is set by the workflow itself when it continues as new' });
  return issues;
}

export function setAllowedAmisModeIssues(input: unknown): InputIssue[] {
  if (!isObject(input)) return [{ field: '(input)', message: 'must be an object' }];
  const issues: InputIssue[] = [];
  checkNoUnknownKeys(issues, '', input, ['mode', 'selection']);
  if (input.selection !== undefined) {
    if (!isObject(input.selection)) issues.push({ field: 'selection', message: 'must be an object' });
    else {
      const sel = input.selection;
      checkNoUnknownKeys(issues, 'selection.', sel, ['catalogueAccounts', 'pipelines', 'allowList']);
      checkAccounts(issues, 'selection.catalogueAccounts', sel.catalogueAccounts);
      checkPipelines(issues, 'selection.pipelines', sel.pipelines);
      issues.push(...allowListIssues(sel.allowList, 'selection.allowList'));
    }
  }
  if (!ALLOWED_AMIS_MODES.includes(input.mode as never))
    issues.push({
      field: 'mode',
      message: `${show(input.mode)} is not a mode; use one of ${ALLOWED_AMIS_MODES.join(', ')}`,
    });
  return issues;
}

function parser<T>(issuesOf: (input: unknown) => InputIssue[]): (input: unknown) => T {
  return (input) => {
    const issues = issuesOf(input);
    if (issues.length > 0) throw new InvalidInputError(issues);
    return input as T;
  };
}

export const parseCatalogueInput = parser<CatalogueInput>(catalogueInputIssues);
export const parseComplianceScanInput = parser<ComplianceScanInput>(complianceScanIssues);
export const parseEnforceAllowedAmisInput = parser<EnforceAllowedAmisInput>(enforceAllowedAmisIssues);
export const parseSetAllowedAmisMode = parser<SetAllowedAmisMode>(setAllowedAmisModeIssues);
export const parseAllowList = parser<AllowListEntry[]>((v) => allowListIssues(v));
