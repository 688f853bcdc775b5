/**
 * Finding runs through Temporal visibility: by workflow type, instance, image, region and status,
 * on the Amiflow* search attributes every run sets. Each filter value is checked before it goes
 * into the query, so a value can never widen it (no quoting tricks reach the server).
 */
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { SearchAttr, WORKFLOW_TYPES } from '../contracts';
import type { InputIssue } from '../workflows/validation';
import { IMAGE_ID_RE, InvalidInputError, checkInstanceId, checkRegion } from '../workflows/validation';
import type { AmiflowClient } from './index';

/** Statuses as people type them → Temporal's ExecutionStatus values. */
export const RUN_STATUSES = {
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Canceled',
  terminated: 'Terminated',
  'timed-out': 'TimedOut',
  'continued-as-new': 'ContinuedAsNew',
} as const;
export type RunStatusName = keyof typeof RUN_STATUSES;

export const WORKFLOW_TYPE_NAMES = Object.values(WORKFLOW_TYPES);

export interface RunFilter {
  type?: string;
  instanceId?: string;
  imageId?: string;
  region?: string;
  status?: string;
}

export interface RunSummary {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  startedAt: string;
  closedAt?: string;
  instanceId?: string;
  imageId?: string;
  region?: string;
  step?: string;
}

/** Problems with a filter, each naming the field; none means `listQuery` is safe to send. */
export function runFilterIssues(f: RunFilter): InputIssue[] {
  const issues: InputIssue[] = [];
  if (f.type !== undefined && !WORKFLOW_TYPE_NAMES.includes(f.type as never))
    issues.push({
      field: 'type',
      message: `'${f.type}' is not an amiflow workflow type: ${WORKFLOW_TYPE_NAMES.join(', ')}`,
    });
  if (f.instanceId !== undefined) checkInstanceId(issues, 'instanceId', f.instanceId);
  if (f.imageId !== undefined && !IMAGE_ID_RE.test(f.imageId))
    issues.push({
      field: 'imageId',
      message: `'${f.imageId}' is not an AMI id (ami- and 8 or 17 hex digits)`,
    });
  if (f.region !== undefined) checkRegion(issues, 'region', f.region);
  if (f.status !== undefined && !(f.status in RUN_STATUSES))
    issues.push({
      field: 'status',
      message: `'${f.status}' is not a status: ${Object.keys(RUN_STATUSES).join(', ')}`,
    });
  return issues;
}

/** The visibility query for a (valid) filter; amiflow's own types only when no type is given. */
export function listQuery(f: RunFilter): string {
  const issues = runFilterIssues(f);
  if (issues.length) throw new InvalidInputError(issues);
  const terms = [
    f.type !== undefined
      ? `WorkflowType = '${f.type}'`
      : `WorkflowType IN (${WORKFLOW_TYPE_NAMES.map((t) => `'${t}'`).join(', ')})`,
    ...(f.instanceId !== undefined ? [`${SearchAttr.instanceId.name} = '${f.instanceId}'`] : []),
    ...(f.imageId !== undefined ? [`${SearchAttr.imageId.name} = '${f.imageId}'`] : []),
    ...(f.region !== undefined ? [`${SearchAttr.region.name} = '${f.region}'`] : []),
    ...(f.status !== undefined ? [`ExecutionStatus = '${RUN_STATUSES[f.status as RunStatusName]}'`] : []),
  ];
  return terms.join(' AND ');
}

function summary(w: WorkflowExecutionInfo): RunSummary {
  const sa = w.typedSearchAttributes;
  const instanceId = sa.get(SearchAttr.instanceId);
  const imageId = sa.get(SearchAttr.imageId);
  const region = sa.get(SearchAttr.region);
  const step = sa.get(SearchAttr.step);
  return {
    workflowId: w.workflowId,
    runId: w.runId,
    type: w.type,
    status: w.status.name,
    startedAt: w.startTime.toISOString(),
    ...(w.closeTime ? { closedAt: w.closeTime.toISOString() } : {}),
    ...(instanceId ? { instanceId } : {}),
    ...(imageId ? { imageId } : {}),
    ...(region ? { region } : {}),
    ...(step ? { step } : {}),
  };
}

/** Runs matching `filter`, newest first (visibility's order), at most `limit`. */
export async function listRuns(
  client: AmiflowClient,
  filter: RunFilter,
  limit: number,
): Promise<RunSummary[]> {
  const out: RunSummary[] = [];
  for await (const w of client.temporal.workflow.list({
    query: listQuery(filter),
    pageSize: Math.min(limit, 1000),
  })) {
    out.push(summary(w));
    if (out.length >= limit) break;
  }
  return out;
}

export function formatRuns(runs: readonly RunSummary[]): string {
  if (!runs.length) return '(no runs match)';
  return runs
    .map((r) => {
      const about = [r.instanceId, r.imageId, r.region].filter(Boolean).join(' ');
      return `${r.status.padEnd(10)} ${r.startedAt}  ${r.type.padEnd(18)} ${r.workflowId}${about ? `  (${about})` : ''}${r.step ? `  step: ${r.step}` : ''}`;
    })
    .join('\n');
}
