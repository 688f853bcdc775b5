/**
 * Guardrail results as tables for people (`--json` prints the objects themselves for machines):
 * a compliance report, the catalogue, and the state of an Allowed AMIs enforcement.
 */
import type {
  AllowedAmisState,
  Catalogue,
  ClassificationCounts,
  ComplianceReport,
  ImageClassification,
} from '../contracts';

/** Left-aligned text columns, right-aligned number columns, two spaces apart. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const numeric = head.map((_, c) => rows.length > 0 && rows.every((r) => typeof r[c] === 'number'));
  const widths = head.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((cell, c) => (numeric[c] ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const COLUMNS: [ImageClassification, string][] = [
  ['approved', 'approved'],
  ['approved-deprecated', 'deprecated'],
  ['unknown', 'unknown'],
  ['not-allowed', 'not allowed'],
  ['missing', 'missing'],
];

function countCells(c: ClassificationCounts): number[] {
  return [c.instances, ...COLUMNS.map(([k]) => c[k])];
}

const FINDINGS_SHOWN = 25;

export function formatComplianceReport(r: ComplianceReport): string {
  const state = r.complete ? `finished ${r.finishedAt ?? ''}` : 'still running: the report so far';
  const verdict = !r.complete
    ? ''
    : r.compliant
      ? 'COMPLIANT: every instance runs an approved image'
      : `NOT COMPLIANT: ${r.totals.instances - r.totals.approved} of ${r.totals.instances} instance(s) run images that are not approved` +
        (r.failedTargets ? `, and ${r.failedTargets} account·region(s) could not be scanned` : '');
  const head = ['account', 'region', 'instances', ...COLUMNS.map(([, label]) => label), 'status'];
  const rows = r.targets.map((t) => [
    t.account,
    t.region,
    ...countCells(t.counts),
    t.status === 'failed'
      ? `FAILED${t.errorType ? ` (${t.errorType})` : ''}`
      : t.throttled
        ? `ok, ${t.throttled} throttled`
        : 'ok',
  ]);
  const perAccount = Object.entries(r.byAccount).map(([a, c]) => [a, '(all)', ...countCells(c), '']);
  const lines = [
    `compliance scan '${r.name}' (${r.workflowId}) · ${r.accounts.length} account(s) × ${r.regions.length} region(s) · ${state}`,
    ...(verdict ? [verdict] : []),
    `catalogue: ${r.catalogue.images} approved image(s)` +
      (r.catalogue.errors.length
        ? `; NOT read in ${r.catalogue.errors.map((e) => `${e.account}/${e.region}`).join(', ')}`
        : ''),
    '',
    table(head, [
      ...rows,
      ...(r.accounts.length > 1 ? perAccount : []),
      ['total', '', ...countCells(r.totals), ''],
    ]),
  ];
  const failed = r.targets.filter((t) => t.status === 'failed');
  if (failed.length) {
    lines.push('', 'could not be scanned:');
    for (const t of failed) lines.push(`  ${t.account} ${t.region}: ${t.error ?? 'unknown error'}`);
  }
  const images = r.targets.flatMap((t) =>
    t.images
      .filter((i) => i.classification !== 'approved')
      .map((i) => ({ ...i, account: t.account, region: t.region })),
  );
  if (images.length) {
    lines.push('', 'images in use that are not approved:');
    lines.push(
      table(
        ['image', 'status', 'instances', 'account', 'region', 'owner', 'name'],
        images.map((i) => [
          i.imageId,
          i.classification,
          i.instances,
          i.account,
          i.region,
          i.ownerId ?? '',
          i.name ?? (i.classification === 'missing' ? '(deregistered or no longer shared)' : ''),
        ]),
      )
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
  }
  const findings = r.targets.flatMap((t) =>
    t.findings.map((f) => ({ ...f, account: t.account, region: t.region })),
  );
  const omitted =
    r.targets.reduce((n, t) => n + t.findingsOmitted, 0) + Math.max(0, findings.length - FINDINGS_SHOWN);
  if (findings.length) {
    lines.push('', 'instances on images that are not approved:');
    lines.push(
      table(
        ['instance', 'state', 'image', 'status', 'account', 'region', 'name'],
        findings
          .slice(0, FINDINGS_SHOWN)
          .map((f) => [
            f.instanceId,
            f.state,
            f.imageId,
            f.classification,
            f.account,
            f.region,
            f.name ?? '',
          ]),
      )
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    if (omitted) lines.push(`  … and ${omitted} more (--json lists up to the per-target limit)`);
  }
  const warnings = r.targets.flatMap((t) => t.warnings.map((w) => `${t.account} ${t.region}: ${w}`));
  if (warnings.length) lines.push('', 'warnings:', ...warnings.map((w) => `  ${w}`));
  return lines.join('\n');
}

export function formatCatalogue(c: Catalogue): string {
  const lines = [
    c.images.length
      ? table(
          ['region', 'pipeline', 'version', 'image', 'state', 'owner', 'approved', 'basis'],
          c.images.map((i) => [
            i.region,
            i.pipeline ?? '',
            i.version ?? '',
            i.imageId,
            i.deprecated ? `deprecated${i.state === 'disabled' ? ' (disabled)' : ''}` : i.state,
            i.ownerId,
            [i.approvedAt, i.approvedBy].filter(Boolean).join(' by '),
            i.basis === 'allow-list' ? `allow list: ${i.reason ?? ''}` : 'approval tags',
          ]),
        )
      : 'no approved images',
  ];
  if (c.allowedOwners.length)
    lines.push(
      '',
      'allowed owners (every image):',
      ...c.allowedOwners.map((o) => `  ${o.owner}: ${o.reason}`),
    );
  if (c.errors.length)
    lines.push('', 'not read:', ...c.errors.map((e) => `  ${e.account} ${e.region}: ${e.message}`));
  return lines.join('\n');
}

export function formatEnforcement(s: AllowedAmisState): string {
  const lines = [
    `Allowed AMIs '${s.name}': ${s.mode}` + (s.auditSince ? ` (audit since ${s.auditSince})` : ''),
    table(
      ['account', 'region', 'now (amiflow)', 'before amiflow', 'note'],
      s.targets.map((t) => [
        t.account,
        t.region,
        t.applied
          ? `${t.applied.state}, providers ${t.applied.criteria.flatMap((c) => c.ImageProviders ?? []).join(' ')}`
          : '-',
        t.original ? `${t.original.state}, ${t.original.criteria.length} criteria` : '-',
        t.error ? `FAILED: ${t.error}` : (t.warning ?? ''),
      ]),
    ),
  ];
  return lines.join('\n');
}
