/**
 * complianceScan: which running and stopped instances, across accounts × regions, run an approved
 * image. Reads the catalogue (approval tags in the catalogue accounts, and the allow list), then
 * scans every (account, region) in parallel, at most `concurrency` at once: each lists its instances
 * page by page and classifies their images as approved, approved-deprecated, unknown or missing.
 * A target that fails is reported in the report and the others complete. Read-only.
 *
 * The report is the run's result, and the `complianceReport` query answers it (the report so far
 * while the scan runs; the final one after it closed, by replaying the history: nothing is scanned
 * again). Scans started by a schedule or by hand share the workflow id prefix
 * `compliance-scan/<name>`, so the client finds the last completed report by name.
 */
import { isCancellation, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ApprovedRef } from '../activities/compliance';
import type {
  Catalogue,
  ClassificationCounts,
  ComplianceReport,
  ComplianceScanInput,
  TargetReport,
} from '../contracts';
import {
  IMAGE_CLASSIFICATIONS,
  emptyCounts,
  SELF_ACCOUNT,
  WORKFLOW_TYPES,
  complianceReportQuery,
} from '../contracts';
import {
  catalogueSpec,
  failureOf,
  notingReads,
  readCatalogue,
  targetName,
  targetOf,
} from './approved-images';
import { startRun } from './bootstrap';
import {
  DEFAULT_GUARDRAIL_CONCURRENCY,
  DEFAULT_MAX_FINDINGS_PER_TARGET,
  parseComplianceScanInput,
} from './guardrails-validation';
import { scanCall } from './presets';
import { Semaphore } from './semaphore';

const scans = proxyActivities<Activities>(scanCall);

/** Instances listed by name in one report, all targets together (the rest are counted): keeps it well under 2 MB. */
export const MAX_REPORT_FINDINGS = 5_000;

export const COMPLIANCE_SCAN_STEPS = ['read catalogue', 'scan instances'] as const;

function add(into: ClassificationCounts, from: ClassificationCounts): void {
  // `?? 0`: reports of scans recorded before a classification existed lack its count.
  for (const c of IMAGE_CLASSIFICATIONS) into[c] += (from[c] as number | undefined) ?? 0;
  into.instances += from.instances;
}

/** The approved images of each region, as the scan activity takes them. */
export function approvedRefsByRegion(catalogue: Catalogue): Map<string, ApprovedRef[]> {
  const byRegion = new Map<string, ApprovedRef[]>();
  for (const i of catalogue.images) {
    const list = byRegion.get(i.region) ?? [];
    list.push({
      imageId: i.imageId,
      basis: i.basis,
      ...(i.pipeline ? { pipeline: i.pipeline } : {}),
      ...(i.version ? { version: i.version } : {}),
      ...(i.deprecated ? { deprecated: true } : {}),
    });
    byRegion.set(i.region, list);
  }
  return byRegion;
}

export function failedTarget(account: string, region: string, err: unknown): TargetReport {
  const f = failureOf(err);
  return {
    account,
    region,
    status: 'failed',
    error: f.message,
    ...(f.type ? { errorType: f.type } : {}),
    counts: emptyCounts(),
    images: [],
    findings: [],
    findingsOmitted: 0,
    awsCalls: 0,
    throttled: 0,
    warnings: [],
  };
}

/**
 * The report before anything is scanned. Its query is registered before the input is parsed, so even
 * a scan refused for bad input answers it (with the name it was given, when it was a string).
 */
function emptyReport(rawInput: unknown): ComplianceReport {
  const { workflowId, runId } = workflowInfo();
  const raw = rawInput as Partial<ComplianceScanInput> | undefined;
  return {
    name: typeof raw?.name === 'string' ? raw.name : '',
    workflowId,
    runId,
    startedAt: new Date().toISOString(),
    complete: false,
    accounts: [],
    regions: [],
    totals: emptyCounts(),
    compliant: false,
    byAccount: {},
    byRegion: {},
    targets: [],
    failedTargets: 0,
    catalogue: { images: 0, errors: [] },
    awsCalls: 0,
  };
}

export async function complianceScan(rawInput: ComplianceScanInput): Promise<ComplianceReport> {
  const report = emptyReport(rawInput);
  setHandler(complianceReportQuery, () => report);
  // No guarded(): a read-only scan has nothing to undo.
  const { input, progress } = startRun({
    workflowType: WORKFLOW_TYPES.complianceScan,
    steps: COMPLIANCE_SCAN_STEPS,
    parse: parseComplianceScanInput,
    raw: rawInput,
  });
  const accounts = input.accounts ?? [SELF_ACCOUNT];
  report.accounts = accounts;
  report.regions = input.regions;
  const slots = new Semaphore(input.concurrency ?? DEFAULT_GUARDRAIL_CONCURRENCY);
  const maxFindings = input.maxFindingsPerTarget ?? DEFAULT_MAX_FINDINGS_PER_TARGET;

  const catalogue = await progress.run('read catalogue', () =>
    readCatalogue(catalogueSpec(input.catalogueAccounts, input.regions, input), slots, notingReads(progress)),
  );
  report.catalogue = { images: catalogue.images.length, errors: catalogue.errors };
  const refs = approvedRefsByRegion(catalogue);
  const allowedOwners = catalogue.allowedOwners.map((o) => o.owner);

  const targets = accounts.flatMap((account) => input.regions.map((region) => ({ account, region })));
  let findingsListed = 0;
  const record = (r: TargetReport): void => {
    const room = Math.max(0, MAX_REPORT_FINDINGS - findingsListed);
    if (r.findings.length > room) {
      r.findingsOmitted += r.findings.length - room;
      r.findings = r.findings.slice(0, room);
    }
    findingsListed += r.findings.length;
    const unread = catalogue.errors.filter((e) => e.region === r.region);
    if (r.status === 'scanned' && unread.length)
      r.warnings.push(
        `the catalogue could not be read in ${unread.map((e) => e.account).join(', ')} (${r.region}): ` +
          'images approved there count as unknown here',
      );
    report.targets.push(r);
    add((report.byAccount[r.account] ??= emptyCounts()), r.counts);
    add((report.byRegion[r.region] ??= emptyCounts()), r.counts);
    add(report.totals, r.counts);
    report.awsCalls += r.awsCalls;
    if (r.status === 'failed') report.failedTargets += 1;
    progress.note(
      'scan instances',
      `${report.targets.length}/${targets.length} scanned` +
        (report.failedTargets ? `, ${report.failedTargets} failed` : '') +
        ` · ${report.totals.instances} instances, ${report.totals.instances - report.totals.approved} not approved`,
    );
  };

  await progress.run('scan instances', () =>
    Promise.all(
      targets.map(({ account, region }) =>
        slots.withPermit(async () => {
          let r: TargetReport;
          try {
            r = await scans.scanInstances.executeWithOptions(
              { ...scanCall, summary: `scan instances in ${targetName(account, region)}` },
              [
                {
                  target: targetOf(account, region),
                  approved: refs.get(region) ?? [],
                  allowedOwners,
                  ...(input.pipelines ? { pipelines: input.pipelines } : {}),
                  maxFindings,
                },
              ],
            );
          } catch (err) {
            if (isCancellation(err)) throw err;
            r = failedTarget(account, region, err);
          }
          record(r);
        }),
      ),
    ),
  );

  const order = (t: TargetReport) =>
    accounts.indexOf(t.account) * input.regions.length + input.regions.indexOf(t.region);
  report.targets.sort((a, b) => order(a) - order(b));
  report.compliant = report.failedTargets === 0 && report.totals.approved === report.totals.instances;
  report.complete = true;
  report.finishedAt = new Date().toISOString();
  progress.setPhase('succeeded');
  return report;
}
