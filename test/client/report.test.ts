/**
 * client/report.ts: the tables people read. A report with a failed target says so (verdict, status
 * column, the error), lists the images and instances that are not approved, and one still running says
 * it is partial; the catalogue and an enforcement's state show what matters per row.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatCatalogue, formatComplianceReport, formatEnforcement, table } from '../../client/report';
import type { AllowedAmisState, Catalogue, ComplianceReport, TargetReport } from '../../workflows/contracts';
import { emptyCounts } from '../../workflows/contracts';

function target(account: string, region: string, extra: Partial<TargetReport> = {}): TargetReport {
  return {
    account,
    region,
    status: 'scanned',
    counts: emptyCounts(),
    images: [],
    findings: [],
    findingsOmitted: 0,
    awsCalls: 2,
    throttled: 0,
    warnings: [],
    ...extra,
  };
}

/** The one target's counts, which are also the account's and the report's totals. */
const COUNTS = {
  approved: 10,
  'approved-deprecated': 1,
  unknown: 1,
  'not-allowed': 0,
  missing: 0,
  instances: 12,
};

const REPORT: ComplianceReport = {
  name: 'prod-daily',
  workflowId: 'compliance-scan/prod-daily',
  runId: 'r1',
  startedAt: '2026-01-01T06:00:00.000Z',
  finishedAt: '2026-01-01T06:00:09.000Z',
  complete: true,
  accounts: ['222200002222'],
  regions: ['eu-west-1', 'us-east-1'],
  totals: COUNTS,
  compliant: false,
  byAccount: {
    '222200002222': COUNTS,
  },
  byRegion: {},
  targets: [
    target('222200002222', 'eu-west-1', {
      counts: COUNTS,
      throttled: 2,
      images: [
        {
          imageId: 'ami-0c000000000000001',
          classification: 'unknown',
          instances: 1,
          ownerId: '555500005555',
          name: 'community',
        },
        { imageId: 'ami-0a000000000000001', classification: 'approved', instances: 10 },
      ],
      findings: [
        {
          instanceId: 'i-0c000000000000001',
          imageId: 'ami-0c000000000000001',
          state: 'running',
          classification: 'unknown',
          name: 'web-7',
        },
      ],
      findingsOmitted: 1,
    }),
    target('222200002222', 'us-east-1', {
      status: 'failed',
      error: 'listing instances in region us-east-1: AWS refused with UnauthorizedOperation',
      errorType: 'AwsUnauthorized',
    }),
  ],
  failedTargets: 1,
  catalogue: { images: 4, errors: [] },
  awsCalls: 3,
};

describe('report tables', () => {
  test('a finished report with a failed target: verdict, one row per target, the failure, and what is not approved', () => {
    const text = formatComplianceReport(REPORT);
    assert.match(
      text,
      /NOT COMPLIANT: 2 of 12 instance\(s\) run images that are not approved, and 1 account·region\(s\) could not be scanned/,
    );
    assert.match(text, /222200002222\s+eu-west-1\s+12\s+10\s+1\s+1\s+0\s+0\s+ok, 2 throttled/);
    assert.match(text, /222200002222\s+us-east-1\s+0\s+0\s+0\s+0\s+0\s+0\s+FAILED \(AwsUnauthorized\)/);
    assert.match(text, /could not be scanned:\n {2}222200002222 us-east-1: listing instances/);
    assert.match(
      text,
      /ami-0c000000000000001\s+unknown\s+1\s+222200002222\s+eu-west-1\s+555500005555\s+community/,
    );
    assert.doesNotMatch(text, /ami-0a000000000000001/, 'approved images are not listed');
    assert.match(text, /i-0c000000000000001\s+running\s+ami-0c000000000000001\s+unknown/);
    assert.match(text, /… and 1 more/);
  });

  test('a report still running says it is the report so far, with no verdict', () => {
    const text = formatComplianceReport({ ...REPORT, complete: false, targets: REPORT.targets.slice(0, 1) });
    assert.match(text, /still running: the report so far/);
    assert.doesNotMatch(text, /COMPLIANT/);
  });

  test('numbers are right-aligned and text left-aligned', () => {
    assert.equal(
      table(
        ['name', 'n'],
        [
          ['a', 5],
          ['bbb', 12],
        ],
      ),
      'name   n\na      5\nbbb   12',
    );
  });

  test('the catalogue: a row per image with its state and basis, the allowed owners and what could not be read', () => {
    const c: Catalogue = {
      images: [
        {
          imageId: 'ami-0a000000000000001',
          region: 'eu-west-1',
          ownerId: '111100001111',
          pipeline: 'web',
          version: '1.0.0',
          approvedAt: '2026-01-01',
          approvedBy: 'alice',
          state: 'disabled',
          deprecated: true,
          kmsKeyIds: [],
          basis: 'approval-tags',
        },
      ],
      allowedOwners: [{ owner: 'amazon', reason: 'EKS images' }],
      errors: [{ account: '333300003333', region: 'us-east-1', message: 'AccessDenied' }],
      readAt: '',
    };
    const text = formatCatalogue(c);
    assert.match(
      text,
      /eu-west-1\s+web\s+1\.0\.0\s+ami-0a000000000000001\s+deprecated \(disabled\)\s+111100001111\s+2026-01-01 by alice\s+approval tags/,
    );
    assert.match(text, /allowed owners \(every image\):\n {2}amazon: EKS images/);
    assert.match(text, /not read:\n {2}333300003333 us-east-1: AccessDenied/);
  });

  test('an enforcement: what amiflow set, what was there before, and each failure', () => {
    const s: AllowedAmisState = {
      name: 'prod',
      mode: 'audit',
      auditSince: '2026-01-01T00:00:00.000Z',
      selection: {},
      changes: [],
      targets: [
        {
          account: 'self',
          region: 'eu-west-1',
          original: { state: 'disabled', criteria: [] },
          applied: {
            state: 'audit-mode',
            criteria: [{ ImageProviders: ['111100001111', 'amazon'] }],
            at: '',
          },
        },
        { account: 'self', region: 'us-east-1', error: 'managed by a declarative policy' },
      ],
    };
    const text = formatEnforcement(s);
    assert.match(text, /Allowed AMIs 'prod': audit \(audit since 2026-01-01T00:00:00.000Z\)/);
    assert.match(text, /self\s+eu-west-1\s+audit-mode, providers 111100001111 amazon\s+disabled, 0 criteria/);
    assert.match(text, /self\s+us-east-1\s+-\s+-\s+FAILED: managed by a declarative policy/);
  });
});
