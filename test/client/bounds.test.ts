/**
 * The client library's bounds, each checked before Temporal is asked anything: a shortest interval
 * per scheduled workflow type (plan schedules and compliance schedules), backfills bounded in runs
 * and `allow-all` only when confirmed, cancel/pause/delete only on amiflow's own workflows and
 * schedules, and cancel on a closed run said to be closed. Temporal is a recording fake: a call it
 * records where none may happen fails the test.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { AmiflowClient, DEFAULT_SCHEDULE_BOUNDS, RefusedError, parsePlan } from '../../client';
import { cronMinIntervalSeconds, readScheduleBounds } from '../../client/bounds';
import { captured } from './fixtures';

interface FakeRun {
  type: string;
  status: string;
}

function fakeTemporal(opts: { run?: FakeRun; matchingTimes?: number } = {}) {
  const calls: string[] = [];
  const temporal = {
    options: { namespace: 'default' },
    workflow: {
      getHandle: (workflowId: string) => ({
        describe: () => {
          calls.push(`describe ${workflowId}`);
          return Promise.resolve({
            type: opts.run?.type ?? 'imageFromInstance',
            status: { name: opts.run?.status ?? 'RUNNING' },
            runId: 'run-1',
            closeTime: opts.run?.status === 'RUNNING' ? undefined : new Date('2026-11-30T10:00:00Z'),
          });
        },
        cancel: () => {
          calls.push(`cancel ${workflowId}`);
          return Promise.resolve();
        },
      }),
    },
    schedule: {
      create: (o: { scheduleId: string }) => {
        calls.push(`create ${o.scheduleId}`);
        return Promise.resolve();
      },
      getHandle: (scheduleId: string) => ({
        delete: () => {
          calls.push(`delete ${scheduleId}`);
          return Promise.resolve();
        },
        pause: () => {
          calls.push(`pause ${scheduleId}`);
          return Promise.resolve();
        },
        backfill: () => {
          calls.push(`backfill ${scheduleId}`);
          return Promise.resolve();
        },
      }),
    },
    workflowService: {
      listScheduleMatchingTimes: () => {
        calls.push('listScheduleMatchingTimes');
        return Promise.resolve({ startTime: Array.from({ length: opts.matchingTimes ?? 0 }, () => ({})) });
      },
    },
  };
  return {
    client: AmiflowClient.fromClient(temporal as unknown as Client, 'amiflow', DEFAULT_SCHEDULE_BOUNDS),
    calls,
  };
}

const PLAN = (schedule: string) => `apiVersion: amiflow/v1
plan: team-web
defaults:
  timeZone: UTC
backups:
  - name: db
    region: eu-west-1
    instanceIds: [i-0a0a0a0a0a0a0a0a0]
    schedule:
${schedule}
`;

const SCAN = { name: 'prod', accounts: ['222200002222'], regions: ['eu-west-1'] };

describe('minimum schedule interval per workflow type', () => {
  it('GIVEN a plan backup every 1s WHEN created THEN refused naming the 1 h bound and its setting; nothing created', async () => {
    const { client, calls } = fakeTemporal();
    const plan = parsePlan(PLAN('      every: 1s'));
    const entry = plan.entries[0];
    assert.ok(entry);
    await assert.rejects(client.schedules.create(plan, entry), (err: unknown) => {
      assert.ok(err instanceof RefusedError);
      assert.match(
        err.message,
        /backupInstances runs at most every 1 h \(the operator's bound, AMIFLOW_MIN_INTERVAL_BACKUP\)/,
      );
      return true;
    });
    await assert.rejects(client.schedules.apply(plan), RefusedError);
    assert.deepEqual(calls, []);
  });

  it('GIVEN a cron every minute WHEN applied THEN refused; GIVEN an hourly cron THEN it passes the bound', async () => {
    const { client, calls } = fakeTemporal();
    await assert.rejects(client.schedules.apply(parsePlan(PLAN("      cron: '* * * * *'"))), RefusedError);
    assert.deepEqual(calls, []);
    const hourly = parsePlan(PLAN("      cron: '15 * * * *'"));
    assert.doesNotThrow(() =>
      client.schedules.compile(hourly, hourly.entries[0] as (typeof hourly.entries)[0]),
    );
    assert.equal(cronMinIntervalSeconds('*/5 * * * *'), 60);
    assert.equal(cronMinIntervalSeconds('0 3 * * *'), 86400);
    assert.equal(cronMinIntervalSeconds('*/10 0 3 * * *'), 1);
  });

  it('GIVEN a compliance schedule --every 1s WHEN scheduled THEN refused before Temporal; WHEN the operator lowers the bound THEN accepted', async () => {
    const { client, calls } = fakeTemporal();
    await assert.rejects(
      client.scheduleComplianceScan(SCAN, { every: '1s' }),
      /complianceScan runs at most every 1 h/,
    );
    assert.deepEqual(calls, []);
    const bounds = readScheduleBounds({ AMIFLOW_MIN_INTERVAL_SCAN: '1' });
    assert.equal(bounds.minIntervalSeconds.complianceScan, 1);
    assert.equal(bounds.minIntervalSeconds.goldenImage, 3600);
    assert.throws(() => readScheduleBounds({ AMIFLOW_MAX_BACKFILL_RUNS: '0' }), /AMIFLOW_MAX_BACKFILL_RUNS/);
  });
});

describe('backfills', () => {
  it('GIVEN a window from 1970 (2,900 runs) WHEN backfilled THEN refused naming the limit; nothing started', async () => {
    const { client, calls } = fakeTemporal({ matchingTimes: 2900 });
    await assert.rejects(
      client.schedules.backfill(
        'amiflow/team-web/golden/web',
        new Date(0),
        new Date('2026-11-30T00:00:00Z'),
        'buffer-all',
      ),
      /would start 2900 runs; at most 50 per backfill \(the operator's bound, AMIFLOW_MAX_BACKFILL_RUNS\)/,
    );
    assert.deepEqual(calls, ['listScheduleMatchingTimes']);
  });

  it('GIVEN overlap allow-all WHEN backfilled without confirmation THEN refused; WHEN confirmed and within bounds THEN backfilled', async () => {
    const { client, calls } = fakeTemporal({ matchingTimes: 3 });
    const from = new Date('2026-11-30T00:00:00Z');
    const to = new Date('2026-11-30T03:00:00Z');
    await assert.rejects(
      client.schedules.backfill('amiflow/team-web/golden/web', from, to, 'allow-all'),
      /confirm it/,
    );
    assert.deepEqual(calls, []);
    const out = await client.schedules.backfill('amiflow/team-web/golden/web', from, to, 'allow-all', {
      confirmAllowAll: true,
    });
    assert.deepEqual(out, { runs: 3 });
    assert.deepEqual(calls, ['listScheduleMatchingTimes', 'backfill amiflow/team-web/golden/web']);
  });
});

describe("only amiflow's workflows and schedules", () => {
  it("GIVEN another team's schedule WHEN deleted, paused or backfilled THEN refused, saying whose schedules amiflow acts on", async () => {
    const { client, calls } = fakeTemporal();
    await assert.rejects(
      client.schedules.delete('other-team/sched'),
      /schedule other-team\/sched is not one of amiflow's \(amiflow\/…, compliance-scan\/…\): not going to delete it/,
    );
    await assert.rejects(client.schedules.pause('other-team/sched'), RefusedError);
    await assert.rejects(
      client.schedules.backfill('other-team/sched', new Date(0), new Date(1000)),
      RefusedError,
    );
    assert.deepEqual(calls, []);
    await client.schedules.delete('compliance-scan/prod');
    assert.deepEqual(calls, ['delete compliance-scan/prod']);
  });

  it("GIVEN another team's workflow WHEN cancelled THEN refused by its type; nothing cancelled", async () => {
    const { client, calls } = fakeTemporal({ run: { type: 'nightlyJob', status: 'RUNNING' } });
    await assert.rejects(
      client.cancel('other-team/job'),
      /other-team\/job is a nightlyJob run, not one of amiflow's/,
    );
    assert.deepEqual(calls, ['describe other-team/job']);
  });

  it('GIVEN an amiflow type under a foreign id WHEN cancelled THEN refused by its id', async () => {
    const { client, calls } = fakeTemporal({ run: { type: 'imageFromInstance', status: 'RUNNING' } });
    await assert.rejects(client.cancel('other-team/job'), RefusedError);
    assert.ok(!calls.some((c) => c.startsWith('cancel')));
  });

  it('GIVEN a finished amiflow run WHEN cancelled THEN it says the run is closed and nothing will be undone', async () => {
    const id = 'image-from-instance/eu-west-1/self/i-0a0a0a0a0a0a0a0a0/web';
    const { client, calls } = fakeTemporal({ run: { type: 'imageFromInstance', status: 'COMPLETED' } });
    await assert.rejects(
      client.cancel(id),
      /is closed \(completed at 2026-11-30T10:00:00.000Z\): there is nothing to cancel, and nothing will be undone/,
    );
    assert.deepEqual(calls, [`describe ${id}`]);
    const running = fakeTemporal({ run: { type: 'imageFromInstance', status: 'RUNNING' } });
    await running.client.cancel(id);
    assert.deepEqual(running.calls, [`describe ${id}`, `cancel ${id}`]);
  });
});

const WINDOW = ['--from', '2026-11-01T00:00:00Z', '--to', '2026-11-02T00:00:00Z'];

describe('the CLI reports refusals', () => {
  it("GIVEN another team's workflow WHEN cancelled from the CLI THEN exit 2 with the reason, as JSON too; nothing cancelled", async () => {
    const { client, calls } = fakeTemporal({ run: { type: 'nightlyJob', status: 'RUNNING' } });
    const { code, out, err } = await captured(['cancel', 'other-team/job', '--json'], () =>
      Promise.resolve(client),
    );
    assert.equal(code, 2);
    assert.match(err, /^amiflow: refused: other-team\/job is a nightlyJob run, not one of amiflow's/);
    const reported = JSON.parse(out) as { error: { kind: string; message: string }; exitCode: number };
    assert.equal(reported.error.kind, 'refused');
    assert.equal(reported.exitCode, 2);
    assert.deepEqual(calls, ['describe other-team/job']);
  });

  it('GIVEN a backfill window beyond the bound WHEN run from the CLI THEN exit 2 naming the bound; nothing backfilled', async () => {
    const { client, calls } = fakeTemporal({ matchingTimes: 51 });
    const { code, err } = await captured(
      ['schedule', 'backfill', 'amiflow/team-web/golden/web', ...WINDOW],
      () => Promise.resolve(client),
    );
    assert.equal(code, 2);
    assert.match(err, /refused: backfill: .* would start 51 runs; at most 50 per backfill/);
    assert.deepEqual(calls, ['listScheduleMatchingTimes']);
  });

  it('GIVEN --overlap allow-all WHEN backfilled without --confirm-allow-all THEN refused before connecting; WHEN confirmed THEN it prints the run count', async () => {
    const id = 'amiflow/team-web/golden/web';
    const refused = await captured(['schedule', 'backfill', id, ...WINDOW, '--overlap', 'allow-all']);
    assert.equal(refused.code, 2);
    assert.match(refused.err, /add --confirm-allow-all, or use --overlap buffer-all/);
    const { client, calls } = fakeTemporal({ matchingTimes: 24 });
    const done = await captured(
      ['schedule', 'backfill', id, ...WINDOW, '--overlap', 'allow-all', '--confirm-allow-all'],
      () => Promise.resolve(client),
    );
    assert.equal(done.code, 0);
    assert.match(done.out, /backfilled amiflow\/team-web\/golden\/web from .*: 24 run\(s\)/);
    assert.deepEqual(calls, ['listScheduleMatchingTimes', `backfill ${id}`]);
  });
});
