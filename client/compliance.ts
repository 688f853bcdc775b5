/**
 * Client side of `complianceScan`: start a scan by hand or on a Temporal Schedule, and find the
 * last report of a named scan without running it again.
 *
 * Where the last report comes from: every scan's report is its workflow result, kept by Temporal
 * for the namespace's retention period and readable without a worker. Scans by hand run as
 * `compliance-scan/<name>` (one at a time per name); a schedule `compliance-scan/<name>` starts them
 * as `compliance-scan/<name>-<scheduled time>` and marks them with `TemporalScheduledById`. The last
 * report is the result of the newest completed run among both, found through visibility. (A long-lived
 * workflow holding the report across continue-as-new would keep it beyond retention, but would need
 * a worker to answer and would duplicate what Schedules already give: pause, trigger, backfill,
 * overlap policy.)
 */
import type { Client } from '@temporalio/client';
import { ScheduleOverlapPolicy, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { ComplianceReport, ComplianceScanInput } from '../workflows/contracts';
import { WORKFLOW_TYPES, complianceReportQuery } from '../workflows/contracts';
import { parseComplianceScanInput } from '../workflows/guardrails-validation';

/** The id of a scan started by hand, and of the schedule that runs it (runs add `-<time>`). */
export function complianceWorkflowId(name: string): string {
  return `compliance-scan/${name}`;
}

export function complianceSummary(input: ComplianceScanInput): string {
  const accounts = input.accounts ?? ['self'];
  return `Compliance scan '${input.name}': ${accounts.length} account(s) × ${input.regions.length} region(s)`;
}

export async function startComplianceScan(
  temporal: Client,
  taskQueue: string,
  input: ComplianceScanInput,
): Promise<{ workflowId: string; runId: string }> {
  const valid = parseComplianceScanInput(input);
  const workflowId = complianceWorkflowId(valid.name);
  try {
    const handle = await temporal.workflow.start(WORKFLOW_TYPES.complianceScan, {
      args: [valid],
      taskQueue,
      workflowId,
      staticSummary: complianceSummary(valid),
    });
    return { workflowId, runId: handle.firstExecutionRunId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new Error(
        `scan '${valid.name}' is already running as '${workflowId}'; its report so far: 'amiflow compliance report --name ${valid.name} --running'`,
        { cause: err },
      );
    throw err;
  }
}

export interface ScheduleSpec {
  /** Every this long, e.g. `24h`, `6h`, `30m`. */
  every?: string;
  /** Or cron expressions, e.g. `0 6 * * *`. */
  cron?: string[];
  /** IANA time zone for `cron`, e.g. `Europe/Paris`; default UTC. */
  timeZone?: string;
}

/** Creates the schedule `compliance-scan/<name>`: skip a scan while the previous one runs. */
export async function scheduleComplianceScan(
  temporal: Client,
  taskQueue: string,
  input: ComplianceScanInput,
  spec: ScheduleSpec,
): Promise<{ scheduleId: string }> {
  const valid = parseComplianceScanInput(input);
  if (!spec.every === !spec.cron?.length) throw new Error('a schedule needs exactly one of every or cron');
  const scheduleId = complianceWorkflowId(valid.name);
  await temporal.schedule.create({
    scheduleId,
    spec: {
      ...(spec.every ? { intervals: [{ every: spec.every as `${number}h` }] } : {}),
      ...(spec.cron?.length ? { cronExpressions: spec.cron } : {}),
      ...(spec.timeZone ? { timezone: spec.timeZone } : {}),
    },
    action: {
      type: 'startWorkflow',
      workflowType: WORKFLOW_TYPES.complianceScan,
      args: [valid],
      taskQueue,
      workflowId: scheduleId,
      staticSummary: complianceSummary(valid),
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1h' },
  });
  return { scheduleId };
}

/** The visibility query for a name's completed scans, by hand or by its schedule. */
export function completedScansQuery(name: string): string {
  const id = complianceWorkflowId(name);
  return (
    `WorkflowType = '${WORKFLOW_TYPES.complianceScan}' AND ExecutionStatus = 'Completed' AND ` +
    `(WorkflowId = '${id}' OR TemporalScheduledById = '${id}')`
  );
}

/** How many of the newest completed runs are looked at (visibility lists newest first). */
const LOOK_AT = 20;

/** The last completed report of scan `name`, or undefined when none completed (within retention). */
export async function lastComplianceReport(
  temporal: Client,
  name: string,
): Promise<ComplianceReport | undefined> {
  let newest: { workflowId: string; runId: string; closed: number } | undefined;
  let seen = 0;
  for await (const run of temporal.workflow.list({ query: completedScansQuery(name) })) {
    const closed = run.closeTime?.getTime() ?? 0;
    if (!newest || closed > newest.closed) newest = { workflowId: run.workflowId, runId: run.runId, closed };
    seen += 1;
    if (seen >= LOOK_AT) break;
  }
  if (!newest) return undefined;
  return (await temporal.workflow.getHandle(newest.workflowId, newest.runId).result()) as ComplianceReport;
}

/** The report of a running (or closed) scan, by query: so far while it runs. Needs a worker. */
export async function runningComplianceReport(temporal: Client, name: string): Promise<ComplianceReport> {
  return temporal.workflow.getHandle(complianceWorkflowId(name)).query(complianceReportQuery);
}
