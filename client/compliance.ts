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
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { ComplianceReport, ComplianceScanInput } from '../contracts';
import { WORKFLOW_TYPES, complianceReportQuery } from '../contracts';
import { checkName, parseComplianceScanInput } from '../workflows/guardrails-validation';
import type { InputIssue } from '../workflows/validation';
import { InvalidInputError } from '../workflows/validation';
import type { ScheduleBounds } from './bounds';
import { checkScheduleInterval, readScheduleBounds } from './bounds';
import { startRun } from './distribution';
import { complianceScan } from '../workflows';
import { parseDuration } from './plan-file';

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
  return startRun(temporal, {
    workflow: complianceScan,
    input: valid,
    workflowId,
    taskQueue,
    summary: complianceSummary(valid),
    inProgress: `scan '${valid.name}' is already running as '${workflowId}'; its report so far: 'amiflow compliance report --name ${valid.name} --running'`,
  });
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
  bounds: ScheduleBounds = readScheduleBounds(),
): Promise<{ scheduleId: string }> {
  const valid = parseComplianceScanInput(input);
  if (!spec.every === !spec.cron?.length) throw new Error('a schedule needs exactly one of every or cron');
  const everySeconds = spec.every !== undefined ? parseDuration(spec.every) : undefined;
  if (spec.every !== undefined && everySeconds === undefined)
    throw new InvalidInputError([
      { field: 'every', message: `'${spec.every}' is not a duration like 24h, 6h or 90m` },
    ]);
  checkScheduleInterval(
    bounds,
    'complianceScan',
    { ...(everySeconds !== undefined ? { everySeconds } : {}), ...(spec.cron ? { cron: spec.cron } : {}) },
    spec.every ? 'every' : 'cron',
  );
  const scheduleId = complianceWorkflowId(valid.name);
  await temporal.schedule.create({
    scheduleId,
    spec: {
      ...(spec.every ? { intervals: [{ every: spec.every as Duration }] } : {}),
      ...(spec.cron?.length ? { cronExpressions: spec.cron } : {}),
      ...(spec.timeZone ? { timezone: spec.timeZone } : {}),
    },
    action: {
      type: 'startWorkflow',
      workflowType: complianceScan,
      args: [valid],
      taskQueue,
      workflowId: scheduleId,
      staticSummary: complianceSummary(valid),
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1h' },
  });
  return { scheduleId };
}

/** A scan name goes into a visibility query: refused unless it is a valid name (no quotes). */
function validName(name: string): void {
  const issues: InputIssue[] = [];
  checkName(issues, 'name', name);
  if (issues.length) throw new InvalidInputError(issues);
}

/** The visibility query for a name's scans in `status`, by hand or by its schedule. */
export function scansQuery(name: string, status: 'Completed' | 'Running'): string {
  const id = complianceWorkflowId(name);
  return (
    `WorkflowType = '${WORKFLOW_TYPES.complianceScan}' AND ExecutionStatus = '${status}' AND ` +
    `(WorkflowId = '${id}' OR TemporalScheduledById = '${id}')`
  );
}

/** How many of the newest runs are looked at (visibility lists newest first). */
const LOOK_AT = 20;

/** The newest run (by close time, else start time) of a name's scans in `status`. */
async function newestScan(
  temporal: Client,
  name: string,
  status: 'Completed' | 'Running',
): Promise<{ workflowId: string; runId: string } | undefined> {
  let newest: { workflowId: string; runId: string; at: number } | undefined;
  let seen = 0;
  for await (const run of temporal.workflow.list({ query: scansQuery(name, status) })) {
    const at = (run.closeTime ?? run.startTime).getTime();
    if (!newest || at > newest.at) newest = { workflowId: run.workflowId, runId: run.runId, at };
    seen += 1;
    if (seen >= LOOK_AT) break;
  }
  return newest;
}

/** The report of scan `name`'s newest run in `status`, as `read` takes it from the run; undefined when none. */
async function newestReport(
  temporal: Client,
  name: string,
  status: 'Completed' | 'Running',
  read: (run: WorkflowHandle) => Promise<ComplianceReport>,
): Promise<ComplianceReport | undefined> {
  validName(name);
  const newest = await newestScan(temporal, name, status);
  return newest ? read(temporal.workflow.getHandle(newest.workflowId, newest.runId)) : undefined;
}

/** The last completed report of scan `name`, or undefined when none completed (within retention). */
export function lastComplianceReport(temporal: Client, name: string): Promise<ComplianceReport | undefined> {
  return newestReport(temporal, name, 'Completed', async (run) => (await run.result()) as ComplianceReport);
}

/** The report so far of scan `name` running now (by hand or scheduled), by query; undefined if none runs. */
export function runningComplianceReport(
  temporal: Client,
  name: string,
): Promise<ComplianceReport | undefined> {
  return newestReport(temporal, name, 'Running', (run) => run.query(complianceReportQuery));
}
