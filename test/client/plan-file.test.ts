/**
 * Plan files: a good one (the documented example, and the same plan as JSON) parses into workflow
 * inputs and schedules; bad ones are refused with every problem's line, column and field, before
 * anything connects (`amiflow plan validate` exits 2 and never connects).
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run } from '../../client/cli';
import type { PlanIssue } from '../../client/plan-file';
import { PlanFileError, cronProblem, loadPlanFile, parseDuration, parsePlan } from '../../client/plan-file';
import { ROOT } from '../support/tools';
import { PLAN_HEAD } from './fixtures';

const EXAMPLE = path.join(ROOT, 'examples', 'plan.yaml');

/** A valid plan, line by line, so each bad case can change one line and name it. */
const GOOD = `${PLAN_HEAD}    accountId: '111122223333'
    builderInstanceId: i-0abc1234def567890
    validation:
      subnetId: subnet-0123456789abcdef0
    distribution:
      copies:
        - region: eu-central-1
    publish:
      parameterName: /golden/web/latest
    retention:
      keep: 3
      deregisterAfter: 30d
    schedule:
      cron: '0 3 * * MON'
backups:
  - name: db
    region: eu-west-1
    instanceIds: [i-0abc1234def567891]
    window: 2h
    schedule:
      every: 1d
      offset: 90m
`;

/** GOOD with line `n` (1-based) replaced by `text` (several lines allowed). */
function withLine(n: number, text: string): string {
  const lines = GOOD.split('\n');
  lines[n - 1] = text;
  return lines.join('\n');
}

function issuesOf(text: string): PlanIssue[] {
  try {
    parsePlan(text, 'plan.yaml');
  } catch (err) {
    assert.ok(err instanceof PlanFileError, `not a PlanFileError: ${String(err)}`);
    return err.issues;
  }
  assert.fail('the plan was accepted');
}

const BAD: { kind: string; text: string; line: number; field: string; message: RegExp }[] = [
  {
    kind: 'YAML syntax (bad indentation)',
    text: withLine(9, '   builderInstanceId: [i-0abc'),
    line: 9,
    field: '(syntax)',
    message: /./,
  },
  {
    kind: 'a duplicate key',
    text: withLine(8, '    region: eu-west-2'),
    line: 8,
    field: '(syntax)',
    message: /unique/i,
  },
  {
    kind: 'an unsupported apiVersion',
    text: withLine(1, 'apiVersion: amiflow/v9'),
    line: 1,
    field: 'apiVersion',
    message: /amiflow\/v1/,
  },
  {
    kind: 'an unknown field (typo)',
    text: withLine(20, '    shedule:'),
    line: 20,
    field: 'pipelines[0].shedule',
    message: /not a known field.*schedule/,
  },
  {
    kind: 'a cron expression with 6 fields',
    text: withLine(21, "      cron: '0 0 3 * * MON'"),
    line: 21,
    field: 'pipelines[0].schedule.cron',
    message: /5: minute hour/,
  },
  {
    kind: 'a cron minute out of range',
    text: withLine(21, "      cron: '61 3 * * *'"),
    line: 21,
    field: 'pipelines[0].schedule.cron',
    message: /minute '61' is out of range/,
  },
  {
    kind: 'no time zone anywhere',
    text: withLine(4, '  catchupWindow: 1h'),
    line: 20,
    field: 'pipelines[0].schedule.timeZone',
    message: /never assume a time zone/,
  },
  {
    kind: 'an unknown time zone in defaults (named where it is written)',
    text: withLine(4, '  timeZone: Mars/Olympus'),
    line: 4,
    field: 'defaults.timeZone',
    message: /not an IANA time zone/,
  },
  {
    kind: 'a duration that is not one',
    text: withLine(19, '      deregisterAfter: 30 days'),
    line: 19,
    field: 'pipelines[0].retention.deregisterAfter',
    message: /not a duration/,
  },
  {
    kind: 'a malformed instance id',
    text: withLine(9, '    builderInstanceId: i-12'),
    line: 9,
    field: 'pipelines[0].builderInstanceId',
    message: /not an EC2 instance id/,
  },
  {
    kind: 'a pipeline named twice',
    text:
      GOOD.replace('  - name: db', '  - name: db\n').replace(
        'backups:\n  - name: db',
        'backups:\n  - name: db',
      ) + '',
    line: 0,
    field: '',
    message: /./,
  },
  {
    kind: 'an account id of 11 digits (unquoted, as YAML reads numbers)',
    text: withLine(8, '    accountId: 11122223333'),
    line: 8,
    field: 'pipelines[0].accountId',
    message: /not an AWS account id/,
  },
  {
    kind: 'keep 0 (the newest would be retired)',
    text: withLine(18, '      keep: 0'),
    line: 18,
    field: 'pipelines[0].retention.keep',
    message: /newest image is never retired/,
  },
  {
    kind: 'cron and every together',
    text: withLine(21, "      cron: '0 3 * * MON'\n      every: 1d"),
    line: 22,
    field: 'pipelines[0].schedule.every',
    message: /not both/,
  },
  {
    kind: 'an unknown overlap policy',
    text: withLine(21, "      cron: '0 3 * * MON'\n      overlap: queue"),
    line: 22,
    field: 'pipelines[0].schedule.overlap',
    message: /not an overlap policy/,
  },
  {
    kind: 'a backup plan naming no instance',
    text: withLine(25, '    mode: reboot'),
    line: 23,
    field: 'backups[0].instanceIds',
    message: /names no instance/,
  },
  {
    kind: "a copy into the builder's own region",
    text: withLine(14, '        - region: eu-west-1'),
    line: 14,
    field: 'pipelines[0].distribution.copies[0]',
    message: /original is made in eu-west-1/,
  },
  {
    kind: 'a reserved SSM parameter name',
    text: withLine(16, '      parameterName: /aws/golden'),
    line: 16,
    field: 'pipelines[0].publish.parameterName',
    message: /reserved by AWS/,
  },
  {
    kind: 'a catch-up window below 10 s',
    text: withLine(21, "      cron: '0 3 * * MON'\n      catchupWindow: 5s"),
    line: 22,
    field: 'pipelines[0].schedule.catchupWindow',
    message: /at least 10s/,
  },
  {
    kind: 'a pinned scheduledTime',
    text: withLine(9, '    builderInstanceId: i-0abc1234def567890\n    scheduledTime: 2026-01-01T00:00:00Z'),
    line: 10,
    field: 'pipelines[0].scheduledTime',
    message: /set by the schedule/,
  },
  {
    kind: 'an offset longer than the interval',
    text: withLine(29, '      offset: 2d'),
    line: 29,
    field: 'backups[0].schedule.offset',
    message: /shorter than every/,
  },
  {
    kind: 'a misspelt schedule key (the plan schema names the known ones)',
    text: withLine(21, "      cron: '0 3 * * MON'\n      jiter: 5m"),
    line: 22,
    field: 'pipelines[0].schedule.jiter',
    message: /not a known field \(known: cron, every, offset, timeZone.*jitter/,
  },
  {
    kind: 'a negative number of seconds as a duration',
    text: withLine(26, '    window: -5'),
    line: 26,
    field: 'backups[0].window',
    message: /-5 is not a duration/,
  },
  {
    kind: 'a plan name with capitals',
    text: withLine(2, 'plan: Team-Web'),
    line: 2,
    field: 'plan',
    message: /not a valid plan name/,
  },
];
// The duplicate-name case, built explicitly: a second pipeline named web.
const duplicate = GOOD.replace(
  'backups:',
  `  - name: web
    region: eu-west-1
    builderInstanceId: i-0abc1234def567890
    schedule:
      every: 1d
backups:`,
);
BAD.splice(10, 1, {
  kind: 'a pipeline named twice',
  text: duplicate,
  line: 22,
  field: 'pipelines[1].name',
  message: /declared twice \(also pipelines\[0\]\)/,
});

describe('plan files: good ones', () => {
  it('GIVEN the documented example WHEN loaded THEN it declares a golden pipeline and a backup plan with explicit time zones, durations in seconds', async () => {
    const plan = await loadPlanFile(EXAMPLE);
    assert.equal(plan.name, 'platform-images');
    const [golden, backup] = plan.entries;
    assert.equal(golden?.kind, 'golden');
    assert.equal(backup?.kind, 'backup');
    if (golden?.kind !== 'golden' || backup?.kind !== 'backup') return;
    assert.equal(golden.input.pipeline, 'web-base');
    assert.equal(golden.input.accountId, '111122223333');
    assert.equal(golden.input.approval?.timeoutSeconds, 3 * 86400);
    assert.equal(golden.input.validation?.healthCheck?.timeoutSeconds, 600);
    assert.equal(golden.input.retention?.deregisterAfterSeconds, 30 * 86400);
    assert.deepEqual(golden.schedule.cron, ['0 3 * * MON']);
    assert.equal(golden.schedule.timeZone, 'Europe/Berlin');
    assert.equal(golden.schedule.overlap, 'skip');
    assert.equal(backup.input.windowSeconds, 7200);
    assert.equal(backup.schedule.catchupWindowSeconds, 1800);
  });

  it('GIVEN the same plan written as JSON WHEN parsed THEN it gives the same entries', () => {
    const yamlPlan = parsePlan(GOOD, 'plan.yaml');
    const json = JSON.stringify(
      {
        apiVersion: 'amiflow/v1',
        plan: 'team-web',
        defaults: { timeZone: 'UTC' },
        pipelines: [
          {
            name: 'web',
            region: 'eu-west-1',
            accountId: '111122223333',
            builderInstanceId: 'i-0abc1234def567890',
            validation: { subnetId: 'subnet-0123456789abcdef0' },
            distribution: { copies: [{ region: 'eu-central-1' }] },
            publish: { parameterName: '/golden/web/latest' },
            retention: { keep: 3, deregisterAfter: '30d' },
            schedule: { cron: '0 3 * * MON' },
          },
        ],
        backups: [
          {
            name: 'db',
            region: 'eu-west-1',
            instanceIds: ['i-0abc1234def567891'],
            window: '2h',
            schedule: { every: '1d', offset: '90m' },
          },
        ],
      },
      null,
      2,
    );
    const jsonPlan = parsePlan(json, 'plan.json');
    assert.deepEqual(
      jsonPlan.entries.map(({ line: _l, ...e }) => e),
      yamlPlan.entries.map(({ line: _l, ...e }) => e),
    );
  });

  it('GIVEN an unquoted 12-digit account id (even with a leading zero) THEN it is taken as written, not as a number', () => {
    const plan = parsePlan(GOOD.replace("accountId: '111122223333'", 'accountId: 011122223333'), 'plan.yaml');
    assert.equal(plan.entries[0]?.input.accountId, '011122223333');
  });

  it('GIVEN durations and cron expressions THEN they are read as Temporal takes them', () => {
    assert.equal(parseDuration('1h30m'), 5400);
    assert.equal(parseDuration(90), 90);
    assert.equal(parseDuration('3 days'), undefined);
    assert.equal(cronProblem('*/15 1-5 * JAN-MAR MON,FRI'), undefined);
    assert.equal(cronProblem('@daily'), undefined);
    assert.match(cronProblem('@sometimes') ?? '', /unknown macro/);
  });
});

describe(`plan files: ${BAD.length} kinds of bad ones, each refused with its line and field`, () => {
  for (const bad of BAD)
    it(`GIVEN ${bad.kind} THEN refused at line ${bad.line}, field ${bad.field || '(any)'}`, () => {
      const issues = issuesOf(bad.text);
      const hit = issues.find((i) => i.field === bad.field && bad.message.test(i.message));
      assert.ok(
        hit,
        `no issue for ${bad.field} matching ${bad.message}; got:\n${issues.map((i) => `${i.line}:${i.column} ${i.field}: ${i.message}`).join('\n')}`,
      );
      assert.equal(hit.line, bad.line, `line of ${bad.field}`);
      assert.ok(hit.column >= 1);
    });

  it('GIVEN a JSON plan with a syntax error THEN refused with the line of the error', () => {
    const issues = issuesOf('{\n  "apiVersion": "amiflow/v1",\n  "plan": "x",\n  "pipelines": [ , ]\n}\n');
    assert.equal(issues[0]?.field, '(syntax)');
    assert.equal(issues[0]?.line, 4);
  });

  it('GIVEN several problems THEN all are reported at once, in line order', () => {
    const issues = issuesOf(
      withLine(9, '    builderInstanceId: i-12').replace("cron: '0 3 * * MON'", "cron: '0 3 * *'"),
    );
    assert.deepEqual(
      issues.map((i) => i.field),
      ['pipelines[0].builderInstanceId', 'pipelines[0].schedule.cron'],
    );
  });

  it('GIVEN a bad plan file WHEN `amiflow plan validate` runs THEN it exits 2 naming file, line and field, without connecting', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'amiflow-plan-'));
    const file = path.join(dir, 'plan.yaml');
    await writeFile(file, withLine(18, '      keep: 0'));
    let connected = false;
    const errors: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => errors.push(args.join(' '));
    try {
      const { main } = await import('../../client/cli');
      const code = await main(['plan', 'validate', file]);
      assert.equal(code, 2);
    } finally {
      console.error = original;
    }
    assert.match(
      errors.join('\n'),
      new RegExp(
        `${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:18:\\d+: pipelines\\[0\\]\\.retention\\.keep`,
      ),
    );
    await writeFile(file, GOOD);
    const code = await run(['plan', 'validate', file], () => {
      connected = true;
      return Promise.reject(new Error('plan validate must not connect'));
    });
    assert.equal(code, 0);
    assert.equal(connected, false);
  });
});
