/**
 * complianceScan and approvedImages on the time-skipping server, with the REAL activities against a
 * fleet of 3 accounts × 4 regions in memory (test/support/fake-fleet.ts, the SDK's EC2Client with
 * `send` mocked): one region refusing the role (reported, the rest completes), throttling absorbed,
 * paging, at most `concurrency` scans at once, the report by query while the scan runs and after it
 * closed (without scanning again), an unreadable catalogue region, and bad input refused at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Activities, ActivityDeps } from '../../activities';
import { createActivities } from '../../activities';
import { DEFAULT_POLL_POLICY } from '../../activities/waiting';
import type {
  Catalogue,
  ClassificationCounts,
  ComplianceReport,
  ComplianceScanInput,
} from '../../workflows/contracts';
import { APPROVED_VALUE, FailureType, TAG, complianceReportQuery } from '../../workflows/contracts';
import { VirtualClock } from '../activities/harness';
import { FakeFleet, awsFault } from '../support/fake-fleet';
import { recordHistory, saveHistory } from '../support/histories';
import { uniqueTaskQueue, timeSkippingEnv } from '../support/temporal';
import {
  blockingUntilCancelled,
  deferred,
  eventually,
  startWorker,
  uniqueWorkflowId,
  withinBound,
} from './stub-activities';
import { workflowEnv } from './harness';

const env = workflowEnv(timeSkippingEnv);

const TOOLING = '111100001111';
const ACCOUNTS = ['222200002222', '333300003333', '444400004444'] as const;
const REGIONS = ['eu-west-1', 'eu-central-1', 'us-east-1', 'ap-southeast-2'] as const;
const [A, B, C] = ACCOUNTS;
const FAILING = { account: B, region: 'ap-southeast-2' } as const;
const THROTTLED = { account: A, region: 'eu-west-1' } as const;

const hex = (n: number, width = 17) => n.toString(16).padStart(width, '0');
const current = (r: number) => `ami-0a${hex(r, 15)}`;
const retired = (r: number) => `ami-0b${hex(r, 15)}`;
const community = (r: number) => `ami-0c${hex(r, 15)}`;
const deregistered = (r: number) => `ami-0d${hex(r, 15)}`;

/** What each (account, region) runs: counts by classification, derived from the indexes. */
function plan(a: number, r: number): ClassificationCounts {
  const approved = a === 0 && r === 0 ? 1_200 : 10 + a * 4 + r;
  const deprecated = 1;
  const unknown = (a + r) % 3;
  const missing = a === 2 && r === 2 ? 2 : 0;
  return {
    approved,
    'approved-deprecated': deprecated,
    unknown,
    'not-allowed': 0,
    missing,
    instances: approved + deprecated + unknown + missing,
  };
}

/** The golden pipeline `web` in TOOLING, shared with every account; instances per `plan`. */
function fleet(): FakeFleet {
  const f = new FakeFleet();
  REGIONS.forEach((region, r) => {
    const approval = (version: string) => ({
      [TAG.approved]: APPROVED_VALUE,
      [TAG.pipeline]: 'web',
      [TAG.version]: version,
    });
    f.addImage({
      imageId: current(r),
      region,
      ownerId: TOOLING,
      sharedWith: [...ACCOUNTS],
      tags: approval('2.0.0'),
    });
    f.addImage({
      imageId: retired(r),
      region,
      ownerId: TOOLING,
      sharedWith: [...ACCOUNTS],
      tags: approval('1.0.0'),
      deprecationTime: '2020-01-01T00:00:00.000Z',
    });
    f.addImage({ imageId: community(r), region, ownerId: '555500005555', public: true, name: 'community' });
    ACCOUNTS.forEach((account, a) => {
      const p = plan(a, r);
      const tag = `${a}${r}`;
      f.addMany(account, region, current(r), p.approved, `${tag}a`);
      f.addMany(account, region, retired(r), p['approved-deprecated'], `${tag}b`);
      f.addMany(account, region, community(r), p.unknown, `${tag}c`);
      f.addMany(account, region, deregistered(r), p.missing, `${tag}d`);
    });
  });
  f.fail(
    FAILING.account,
    FAILING.region,
    awsFault('UnauthorizedOperation', 403, 'You are not authorized to perform this operation.'),
  );
  f.throttle(THROTTLED.account, THROTTLED.region, 'DescribeInstancesCommand', 2);
  return f;
}

function activitiesOn(f: FakeFleet): Activities {
  const deps: ActivityDeps = {
    aws: f.clients(),
    clock: new VirtualClock(),
    random: () => 0.5,
    policy: DEFAULT_POLL_POLICY,
  };
  return createActivities(deps);
}

function scanInput(overrides: Partial<ComplianceScanInput> = {}): ComplianceScanInput {
  return {
    name: 'prod-daily',
    accounts: [...ACCOUNTS],
    regions: [...REGIONS],
    catalogueAccounts: [TOOLING],
    pipelines: ['web'],
    concurrency: 4,
    maxFindingsPerTarget: 50,
    ...overrides,
  };
}

/**
 * The fleet's activities, with the scan of the last region (account C, ap-southeast-2) held until
 * `hold` settles (and failing as it fails).
 */
function lastRegionHeld(hold: () => Promise<unknown>): Activities {
  const real = activitiesOn(fleet());
  return {
    ...real,
    scanInstances: async (input) => {
      if (input.target.accountId === C && input.target.region === 'ap-southeast-2') await hold();
      return real.scanInstances(input);
    },
  };
}

async function withScanWorker<T>(activities: Activities, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = uniqueTaskQueue('compliance');
  const worker = await startWorker(env, taskQueue, activities);
  return worker.runUntil(withinBound(fn(taskQueue), `the scans on ${taskQueue}`));
}

function startScan(taskQueue: string, input: unknown) {
  return env.client.workflow.start('complianceScan', {
    taskQueue,
    workflowId: uniqueWorkflowId('compliance-scan'),
    args: [input as ComplianceScanInput],
  });
}

const EMPTY: ClassificationCounts = {
  approved: 0,
  'approved-deprecated': 0,
  unknown: 0,
  'not-allowed': 0,
  missing: 0,
  instances: 0,
};

function sum(list: ClassificationCounts[]): ClassificationCounts {
  const out: ClassificationCounts = { ...EMPTY };
  for (const c of list) for (const k of Object.keys(out) as (keyof ClassificationCounts)[]) out[k] += c[k];
  return out;
}
const planned = (a: number, r: number) =>
  ACCOUNTS[a] === FAILING.account && REGIONS[r] === FAILING.region ? EMPTY : plan(a, r);

void describe('complianceScan across 3 accounts × 4 regions', () => {
  void it('GIVEN one region refusing the role and another throttling WHEN scanned with concurrency 4 THEN the failed region is reported, the other eleven are complete and exact, and at most 4 scans ran at once', async () => {
    const f = fleet();
    const real = activitiesOn(f);
    let inFlight = 0;
    let most = 0;
    let started = 0;
    const firstWave = deferred();
    const activities: Activities = {
      ...real,
      scanInstances: async (input) => {
        inFlight += 1;
        started += 1;
        most = Math.max(most, inFlight);
        // The first four wait for each other: a scan that ran alone would never finish.
        if (started === 4) firstWave.resolve();
        if (started <= 4) await firstWave.promise;
        try {
          return await real.scanInstances(input);
        } finally {
          inFlight -= 1;
        }
      },
    };

    const { report, history, workflowId, queried, callsAfterQuery, callsAtEnd, first, coldMs, warmMs, warm } =
      await withScanWorker(activities, async (tq) => {
        let t0 = Date.now();
        const handle = await startScan(tq, scanInput());
        const report = (await handle.result()) as ComplianceReport;
        const coldMs = Date.now() - t0;
        const callsAtEnd = f.totalCalls();
        const first = {
          instances: f.totalCalls('DescribeInstancesCommand'),
          images: f.totalCalls('DescribeImagesCommand'),
          throttledTarget: f.count(THROTTLED.account, THROTTLED.region, 'DescribeInstancesCommand'),
        };
        const queried = await handle.query(complianceReportQuery);
        const callsAfterQuery = f.totalCalls();
        // The same scan again on the warm worker (the first run also paid for loading the workflow code).
        t0 = Date.now();
        const warm = (await (await startScan(tq, scanInput())).result()) as ComplianceReport;
        const warmMs = Date.now() - t0;
        return {
          report,
          queried,
          history: await handle.fetchHistory(),
          workflowId: handle.workflowId,
          callsAfterQuery,
          callsAtEnd,
          first,
          coldMs,
          warmMs,
          warm,
        };
      });
    await saveHistory({ history, workflowId }, 'compliance-scan-region-failed');

    // Every target, in input order; the failing one reported with AWS's refusal.
    assert.deepEqual(
      report.targets.map((t) => `${t.account}/${t.region}/${t.status}`),
      ACCOUNTS.flatMap((a) =>
        REGIONS.map(
          (r) => `${a}/${r}/${a === FAILING.account && r === FAILING.region ? 'failed' : 'scanned'}`,
        ),
      ),
    );
    const failed = report.targets.find((t) => t.status === 'failed');
    assert.equal(failed?.errorType, FailureType.AwsUnauthorized);
    assert.match(
      failed?.error ?? '',
      /listing instances in region ap-southeast-2, account 333300003333.*UnauthorizedOperation/,
    );
    assert.equal(report.failedTargets, 1);
    assert.equal(report.complete, true);
    assert.equal(report.compliant, false);

    // Counts exact per target, per account, per region and in total.
    ACCOUNTS.forEach((account, a) =>
      REGIONS.forEach((region, r) => {
        const t = report.targets.find((x) => x.account === account && x.region === region);
        assert.deepEqual(t?.counts, planned(a, r), `${account}/${region}`);
      }),
    );
    ACCOUNTS.forEach((account, a) =>
      assert.deepEqual(report.byAccount[account], sum(REGIONS.map((_, r) => planned(a, r))), account),
    );
    REGIONS.forEach((region, r) =>
      assert.deepEqual(report.byRegion[region], sum(ACCOUNTS.map((_, a) => planned(a, r))), region),
    );
    assert.deepEqual(report.totals, sum(ACCOUNTS.flatMap((_, a) => REGIONS.map((__, r) => planned(a, r)))));
    assert.equal(report.catalogue.images, REGIONS.length * 2);
    assert.deepEqual(report.catalogue.errors, []);

    // Paging and throttling where they happened; findings capped per target.
    const big = report.targets[0];
    assert.equal(big?.counts.instances, 1_201);
    assert.equal(big?.throttled, 2);
    assert.equal(first.throttledTarget, 2 + 2, 'two pages, the first sent three times');
    assert.ok(report.targets.every((t) => t.findings.length <= 50));
    assert.equal(
      report.targets
        .find((t) => t.account === C && t.region === 'us-east-1')
        ?.images.find((i) => i.classification === 'missing')?.imageId,
      deregistered(2),
    );

    // Parallel, within the limit.
    assert.equal(most, 4);

    // The report by query after the run closed: the same, and nothing scanned again.
    assert.deepEqual(queried, report);
    assert.equal(callsAfterQuery, callsAtEnd);
    assert.deepEqual(warm.totals, report.totals);

    const events = history.events?.length ?? 0;
    console.log(
      `complianceScan 3 accounts × 4 regions (${report.totals.instances} instances, 1 region failing): ` +
        `${coldMs} ms from start to result on a fresh worker, ${warmMs} ms warm; ${callsAtEnd} EC2 calls ` +
        `(${first.instances} DescribeInstances, ${first.images} DescribeImages; 2 of them throttled and sent again), ` +
        `${events} history events`,
    );
  });

  void it('GIVEN a scan waiting on its last region WHEN the report is queried THEN it shows the eleven finished, not complete; once released the final report is complete', async () => {
    const gate = deferred();
    const activities = lastRegionHeld(() => gate.promise);

    const { partial, final } = await withScanWorker(activities, async (tq) => {
      const handle = await startScan(tq, scanInput());
      const partial = await eventually('eleven targets in the report', async () => {
        const r = await handle.query(complianceReportQuery);
        return r.targets.length === 11 ? r : undefined;
      });
      gate.resolve();
      const final = (await handle.result()) as ComplianceReport;
      await recordHistory(handle, 'compliance-scan-queried-midway');
      return { partial, final };
    });

    assert.equal(partial.complete, false);
    assert.equal(partial.finishedAt, undefined);
    assert.ok(!partial.targets.some((t) => t.account === C && t.region === 'ap-southeast-2'));
    assert.equal(partial.totals.instances, sum(partial.targets.map((t) => t.counts)).instances);
    assert.equal(final.complete, true);
    assert.equal(final.targets.length, 12);
  });

  void it('GIVEN a scan waiting on its last region WHEN it is cancelled THEN its scan is cancelled and the run ends cancelled', async () => {
    const wait = blockingUntilCancelled();
    const activities = lastRegionHeld(wait.fn);

    const err = await withScanWorker(activities, async (tq) => {
      const handle = await startScan(tq, scanInput());
      await wait.entered;
      await handle.cancel();
      const cancelled = await handle.result().then(
        () => assert.fail('the scan should have been cancelled'),
        (e: unknown) => e,
      );
      await wait.cancelled;
      await recordHistory(handle, 'compliance-scan-cancelled');
      return cancelled;
    });

    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
  });

  void it('GIVEN the catalogue account refusing one region WHEN scanned THEN that region’s approved images count as unknown, with a warning, and the catalogue error is in the report', async () => {
    const f = fleet();
    f.fail(TOOLING, 'eu-central-1', awsFault('AuthFailure', 401));
    const { report } = await withScanWorker(activitiesOn(f), async (tq) => {
      const handle = await startScan(
        tq,
        scanInput({ accounts: [A], regions: ['eu-west-1', 'eu-central-1'] }),
      );
      const report = (await handle.result()) as ComplianceReport;
      await recordHistory(handle, 'compliance-scan-catalogue-unreadable');
      return { report };
    });

    assert.deepEqual(
      report.catalogue.errors.map((e) => [e.account, e.region, e.type]),
      [[TOOLING, 'eu-central-1', FailureType.AwsUnauthorized]],
    );
    const central = report.targets.find((t) => t.region === 'eu-central-1');
    assert.equal(central?.counts.approved, 0);
    assert.equal(
      central?.counts.unknown,
      plan(0, 1).approved + plan(0, 1)['approved-deprecated'] + plan(0, 1).unknown,
    );
    assert.match(
      central?.warnings.join(' ') ?? '',
      /catalogue could not be read in 111100001111 \(eu-central-1\)/,
    );
    assert.equal(report.targets.find((t) => t.region === 'eu-west-1')?.counts.approved, plan(0, 0).approved);
  });

  void it('GIVEN bad input WHEN started THEN it fails at once with InvalidInput naming every field, before any AWS call', async () => {
    const f = fleet();
    const err = await withScanWorker(activitiesOn(f), async (tq) => {
      const handle = await startScan(tq, {
        name: 'prod/daily',
        accounts: ['1234', 'self', 'self'],
        regions: ['eu-west-1', 'mars-north-1'],
        concurrency: 0,
        allowList: [{ imageId: 'ami-12' }],
      });
      const refused = await handle.result().then(
        () => assert.fail('the scan should have been refused'),
        (e: unknown) => e,
      );
      await recordHistory(handle, 'compliance-scan-bad-input');
      return refused;
    });

    assert.ok(err instanceof WorkflowFailedError);
    const cause = err.cause;
    assert.ok(cause instanceof ApplicationFailure);
    assert.equal(cause.type, FailureType.InvalidInput);
    for (const field of [
      'name',
      'accounts[0]',
      'accounts[2]',
      'regions[1]',
      'concurrency',
      'allowList[0].reason',
      'allowList[0].imageId',
      'allowList[0].region',
    ])
      assert.ok(cause.message.includes(`${field}:`), `${field} in ${cause.message}`);
    assert.equal(f.totalCalls(), 0);
  });
});

void describe('approvedImages', () => {
  void it('GIVEN two catalogue accounts, an allow list and one unreadable region WHEN read THEN images are merged per region, allow-listed ones carry their reason, and the error is reported', async () => {
    const f = fleet();
    const OTHER = '666600006666';
    f.addImage({
      imageId: 'ami-0e00000000000000a',
      region: 'eu-west-1',
      ownerId: OTHER,
      tags: { [TAG.approved]: APPROVED_VALUE, [TAG.pipeline]: 'batch', [TAG.version]: '7' },
    });
    f.fail(OTHER, 'us-east-1', awsFault('UnauthorizedOperation', 403));
    const catalogue = await withScanWorker(activitiesOn(f), async (tq) => {
      const handle = await env.client.workflow.start('approvedImages', {
        taskQueue: tq,
        workflowId: uniqueWorkflowId('approved-images'),
        args: [
          {
            accounts: [TOOLING, OTHER],
            regions: ['eu-west-1', 'us-east-1'],
            allowList: [
              { imageId: community(0), region: 'eu-west-1', reason: 'vendor appliance, reviewed 2026-01' },
              { owner: 'amazon', reason: 'EKS-optimized images' },
            ],
          },
        ],
      });
      const result = (await handle.result()) as Catalogue;
      await recordHistory(handle, 'approved-images-merged');
      return result;
    });

    assert.deepEqual(
      catalogue.images.map((i) => [i.region, i.imageId, i.basis, i.pipeline ?? '', i.deprecated]),
      [
        ['eu-west-1', community(0), 'allow-list', '', false],
        ['eu-west-1', 'ami-0e00000000000000a', 'approval-tags', 'batch', false],
        ['eu-west-1', current(0), 'approval-tags', 'web', false],
        ['eu-west-1', retired(0), 'approval-tags', 'web', true],
        ['us-east-1', current(2), 'approval-tags', 'web', false],
        ['us-east-1', retired(2), 'approval-tags', 'web', true],
      ],
    );
    assert.equal(catalogue.images[0]?.reason, 'vendor appliance, reviewed 2026-01');
    assert.equal(catalogue.images[0]?.ownerId, '555500005555');
    assert.deepEqual(catalogue.allowedOwners, [{ owner: 'amazon', reason: 'EKS-optimized images' }]);
    assert.deepEqual(
      catalogue.errors.map((e) => [e.account, e.region, e.type]),
      [[OTHER, 'us-east-1', FailureType.AwsUnauthorized]],
    );
  });
});
