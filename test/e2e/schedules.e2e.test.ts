/**
 * Tier 3: Temporal Schedules made from a plan file, on the dev server (the time-skipping server has
 * no Schedules). A real worker runs the real backupInstances and goldenImage workflows with stub
 * activities acting on the fleet model (what AWS does is covered by the other tiers); the test
 * drives everything through the client library: `apply` creates the schedules as declared; one
 * fires on its own (every 2 s) and its run knows its scheduled time; pause and unpause keep their
 * note; trigger starts a run of a paused schedule; a backfill over a window starts one run per
 * scheduled time, each a version of its own; the same backfill again makes no image; a second apply
 * of a changed plan updates and deletes only that plan's schedules.
 *
 * No sleeps for time to pass: it waits for conditions (a run started, a run completed).
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { AmiflowClient, DEFAULT_SCHEDULE_BOUNDS, loadPlanFile } from '../../client';
import { formatScheduleDetails } from '../../client/cli/plans';
import type { BackupResult, GoldenImageResult } from '../../workflows/contracts';
import { TAG } from '../../workflows/contracts';
import { dateVersion } from '../../workflows/golden-image';
import { devServerEnv, uniqueTaskQueue } from '../support/temporal';
import { Fleet, REGION, goldenActivities } from '../workflows/golden-stubs';
import { eventually, quietWorkerLogs, startWorker } from '../workflows/stub-activities';

quietWorkerLogs();

const PLAN = `e2e-${process.pid}`;
const TICK = `amiflow/${PLAN}/backup/tick`;
const WEB = `amiflow/${PLAN}/golden/web`;
const HOURLY = `amiflow/${PLAN}/backup/hourly`;

function planYaml(opts: { withHourly: boolean; tickNote: string }): string {
  return `apiVersion: amiflow/v1
plan: ${PLAN}
defaults:
  timeZone: UTC
  region: ${REGION}
  accountId: '111122223333'
pipelines:
  - name: web
    builderInstanceId: i-0b0b0b0b0b0b0b0b0
    retention: { keep: 5 }
    schedule:
      every: 1h
      timeZone: Europe/Berlin
      overlap: skip
      catchupWindow: 30m
      paused: true
      note: manual and backfill only
backups:
  - name: tick
    instanceIds: [i-0a0a0a0a0a0a0a0a0]
    schedule:
      every: 2s
      catchupWindow: 10s
      note: ${opts.tickNote}
${
  opts.withHourly
    ? `  - name: hourly
    instanceIds: [i-0a0a0a0a0a0a0a0a0]
    schedule:
      cron: '15 * * * *'
      paused: true
`
    : ''
}`;
}

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let amiflow: AmiflowClient;
let dir: string;
const fleet = new Fleet();

before(async () => {
  env = await devServerEnv();
  const taskQueue = uniqueTaskQueue('schedules');
  worker = await startWorker(env, taskQueue, goldenActivities(fleet));
  running = worker.run();
  // The operator allows this test's 2-second backup tick (the default bound is 1 h).
  amiflow = AmiflowClient.fromClient(env.client, taskQueue, {
    ...DEFAULT_SCHEDULE_BOUNDS,
    minIntervalSeconds: { ...DEFAULT_SCHEDULE_BOUNDS.minIntervalSeconds, backupInstances: 1 },
  });
  dir = await mkdtemp(path.join(tmpdir(), 'amiflow-schedules-'));
});
after(async () => {
  for (const id of [TICK, WEB, HOURLY]) await amiflow?.schedules.delete(id).catch(() => undefined);
  worker?.shutdown();
  await running;
  await env?.teardown();
});

async function planFile(name: string, text: string) {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return loadPlanFile(file);
}

/** The runs a schedule has started, once there are at least `n`, each awaited to its result. */
async function runsOf<T>(
  scheduleId: string,
  n: number,
): Promise<{ workflowId: string; scheduledAt: Date; result: T }[]> {
  const actions = await eventually(
    `${n} run(s) of ${scheduleId}`,
    async () => {
      const d = await amiflow.schedules.handle(scheduleId).describe();
      return d.info.recentActions.length >= n ? d.info.recentActions : undefined;
    },
    30_000,
  );
  return Promise.all(
    actions.map(async (a) => ({
      workflowId: a.action.workflow.workflowId,
      scheduledAt: a.scheduledAt,
      result: (await env.client.workflow
        .getHandle(a.action.workflow.workflowId, a.action.workflow.firstExecutionRunId)
        .result()) as T,
    })),
  );
}

describe('schedules from a plan file', () => {
  it('GIVEN a plan WHEN applied THEN its schedules exist as declared: spec, time zone, overlap, catch-up window, paused state and note', async () => {
    const plan = await planFile('plan.yaml', planYaml({ withHourly: true, tickNote: 'fires every 2 s' }));

    const report = await amiflow.schedules.apply(plan);

    assert.deepEqual([...report.created].sort(), [HOURLY, TICK, WEB].sort());
    const web = await amiflow.schedules.describe(WEB);
    assert.equal(web.workflowType, 'goldenImage');
    assert.equal(web.workflowId, `golden-image/${PLAN}/web`);
    assert.equal(web.timeZone, 'Europe/Berlin');
    assert.equal(web.overlap, 'SKIP');
    assert.equal(web.catchupWindowSeconds, 1800);
    assert.equal(web.paused, true);
    assert.equal(web.note, 'manual and backfill only');
    assert.equal(web.when, 'every 3600 s (Europe/Berlin)');
    const again = await amiflow.schedules.apply(plan, { dryRun: true });
    assert.deepEqual(
      [...again.unchanged].sort(),
      [HOURLY, TICK, WEB].sort(),
      'applying the same file changes nothing',
    );
  });

  it('GIVEN the 2-second schedule WHEN it fires THEN its run is named and versioned by its scheduled time; WHEN paused with a note THEN it says so, and unpaused it runs again', async () => {
    const [first] = await runsOf<BackupResult>(TICK, 1);
    assert.ok(first);
    const stamp = first.scheduledAt.toISOString().replace('.000Z', 'Z');
    assert.equal(first.workflowId, `backup/${PLAN}/tick-${stamp}`);
    assert.equal(
      first.result.scheduledTime,
      first.scheduledAt.toISOString(),
      'read from TemporalScheduledStartTime',
    );
    assert.equal(first.result.instances[0]?.status, 'backed-up');

    await amiflow.schedules.pause(TICK, 'maintenance freeze (CHG-42)');
    const paused = await amiflow.schedules.describe(TICK);
    assert.equal(paused.paused, true);
    assert.equal(paused.note, 'maintenance freeze (CHG-42)');
    assert.ok(paused.recentRuns.some((r) => r.status === 'COMPLETED'));
    assert.match(formatScheduleDetails(paused), /PAUSED {2}\(maintenance freeze \(CHG-42\)\)/);

    const taken = paused.actionsTaken;
    await amiflow.schedules.unpause(TICK, 'freeze over');
    const unpaused = await amiflow.schedules.describe(TICK);
    assert.equal(unpaused.paused, false);
    assert.equal(unpaused.note, 'freeze over');
    await eventually('the unpaused schedule to fire again', async () =>
      (await amiflow.schedules.describe(TICK)).actionsTaken > taken ? true : undefined,
    );
  });

  it('GIVEN the paused golden schedule WHEN triggered THEN one run starts now and makes an approved image', async () => {
    const started = await amiflow.schedules.trigger(WEB, { waitForStart: true });
    assert.ok(started, 'the trigger started a run');
    const result = await amiflow.result<GoldenImageResult>(started.workflowId);
    assert.equal(result.reused, false);
    assert.equal(result.scheduleId, WEB);
    assert.equal(fleet.get(result.images[0]?.imageId ?? '').tags[TAG.approved], 'true');
    assert.equal((await amiflow.schedules.describe(WEB)).paused, true, 'still paused');
  });

  it('GIVEN the golden schedule WHEN a 3-hour window is backfilled THEN one run per scheduled time, each its own version; WHEN backfilled again THEN no new image', async () => {
    const hour = 3600_000;
    const t = Math.floor(Date.now() / hour) * hour - 24 * hour; // a whole hour, yesterday
    const before = (await amiflow.schedules.handle(WEB).describe()).info.recentActions.length;

    await amiflow.schedules.backfill(WEB, new Date(t - hour / 2), new Date(t + 2.5 * hour), 'buffer-all');
    const runs = (await runsOf<GoldenImageResult>(WEB, before + 3)).slice(before);

    assert.deepEqual(
      runs.map((r) => r.result.version),
      [t, t + hour, t + 2 * hour].map(dateVersion),
    );
    assert.ok(runs.every((r) => !r.result.reused));
    const approved = fleet.approvedOf({ region: REGION, accountId: '111122223333' }, 'web').length;

    await amiflow.schedules.backfill(WEB, new Date(t - hour / 2), new Date(t + 2.5 * hour), 'buffer-all');
    const repeats = (await runsOf<GoldenImageResult>(WEB, before + 6)).slice(before + 3);

    assert.deepEqual(
      repeats.map((r) => [r.result.version, r.result.reused]),
      [t, t + hour, t + 2 * hour].map((x) => [dateVersion(x), true]),
    );
    assert.equal(fleet.approvedOf({ region: REGION, accountId: '111122223333' }, 'web').length, approved);
  });

  it('GIVEN the plan changed (one backup plan removed, a note changed) WHEN applied again THEN that schedule is updated, the removed one deleted, the rest unchanged', async () => {
    await eventually('the schedules to be listed', async () =>
      (await amiflow.schedules.list({ plan: PLAN })).length === 3 ? true : undefined,
    );
    const plan = await planFile(
      'plan-v2.yaml',
      planYaml({ withHourly: false, tickNote: 'fires every 2 s (v2)' }),
    );

    const report = await amiflow.schedules.apply(plan);

    assert.deepEqual(report.updated, [TICK]);
    assert.deepEqual(report.unchanged, [WEB]);
    assert.deepEqual(report.deleted, [HOURLY]);
    assert.equal(await amiflow.schedules.find(HOURLY), undefined);
    assert.equal(
      (await amiflow.schedules.describe(TICK)).note,
      'freeze over',
      'an operator’s note stays: the plan does not declare paused',
    );
    await amiflow.schedules.delete(TICK);
  });
});
