/**
 * Plan files are untrusted text: prototype keys are refused with their line, YAML aliases are
 * resolved but bounded (no "billion laughs"), oversized files are refused unread, the parsed maps
 * have no prototype, and a schedule shorter than the operator's bound is refused at validate.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_SCHEDULE_BOUNDS } from '../../client/bounds';
import { run } from '../../client/cli';
import {
  MAX_PLAN_ALIASES,
  MAX_PLAN_BYTES,
  PlanFileError,
  loadPlanFile,
  parsePlan,
} from '../../client/plan-file';

const plan = (backup: string, schedule = '      every: 1d') => `apiVersion: amiflow/v1
plan: team-web
defaults:
  timeZone: UTC
backups:
  - name: nightly
    region: eu-west-1
${backup}    schedule:
${schedule}
`;
const IDS = '    instanceIds: [i-0a0a0a0a0a0a0a0a0]\n';

function issuesOf(text: string, bounds?: typeof DEFAULT_SCHEDULE_BOUNDS): PlanFileError['issues'] {
  try {
    parsePlan(text, 'plan.yaml', bounds);
  } catch (err) {
    assert.ok(err instanceof PlanFileError, `expected PlanFileError, got ${String(err)}`);
    return err.issues;
  }
  return assert.fail('the plan was accepted');
}

describe('plan files are parsed as untrusted input', () => {
  it('GIVEN a __proto__ key WHEN parsed THEN refused at its line, and no prototype is touched', () => {
    const issues = issuesOf(plan(`${IDS}    __proto__:\n      polluted: true\n`));
    assert.deepEqual(
      issues.map((i) => [i.line, i.field]),
      [[9, 'backups[0].__proto__']],
    );
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('GIVEN a constructor key in tags WHEN parsed THEN refused naming it', () => {
    const issues = issuesOf(plan(`${IDS}    tags:\n      constructor: x\n`));
    assert.ok(
      issues.some((i) => i.field === 'backups[0].tags.constructor' && i.line === 10),
      JSON.stringify(issues),
    );
  });

  it('GIVEN a good plan WHEN parsed THEN its maps have no prototype', () => {
    const p = parsePlan(plan(IDS));
    const entry = p.entries[0];
    assert.ok(entry);
    assert.equal(Object.getPrototypeOf(entry.input.retention ?? Object.create(null)), null);
  });

  it('GIVEN a YAML alias WHEN parsed THEN it is resolved like the value it names', () => {
    const text = `${plan('    instanceIds: &ids [i-0a0a0a0a0a0a0a0a0]\n')}  - name: weekly
    region: eu-west-1
    instanceIds: *ids
    schedule: { every: 1w }
`;
    const p = parsePlan(text);
    assert.deepEqual(
      p.entries.map((e) => (e.kind === 'backup' ? e.input.instanceIds : undefined)),
      [['i-0a0a0a0a0a0a0a0a0'], ['i-0a0a0a0a0a0a0a0a0']],
    );
  });

  it('GIVEN an alias bomb WHEN parsed THEN refused quickly, naming the bound', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let n = 1; n < 10; n += 1) {
      const prev = String.fromCharCode(96 + n);
      const next = String.fromCharCode(97 + n);
      levels.push(`${next}: &${next} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    const text = `${levels.join('\n')}\napiVersion: amiflow/v1\n`;
    const started = Date.now();
    const issues = issuesOf(text);
    assert.ok(Date.now() - started < 2000, 'bounded work');
    assert.ok(
      issues.some((i) => i.message.includes(`more than ${MAX_PLAN_ALIASES} YAML aliases`)),
      JSON.stringify(issues.slice(0, 3)),
    );
  });

  it('GIVEN a text larger than the bound WHEN parsed or loaded THEN refused unread', async () => {
    const big = `# ${'x'.repeat(MAX_PLAN_BYTES)}\n`;
    assert.match(issuesOf(big)[0]?.message ?? '', /larger than/);
    const dir = await mkdtemp(path.join(tmpdir(), 'amiflow-plan-'));
    const file = path.join(dir, 'big.yaml');
    await writeFile(file, big);
    await assert.rejects(loadPlanFile(file), /a plan has at most/);
  });

  it('GIVEN a backup every 1s WHEN validated with the operator bounds THEN refused at validate, naming the bound and its line', () => {
    const issues = issuesOf(plan(IDS, '      every: 1s'), DEFAULT_SCHEDULE_BOUNDS);
    assert.deepEqual(
      issues.map((i) => [i.line, i.field]),
      [[10, 'backups[0].schedule.every']],
    );
    assert.match(issues[0]?.message ?? '', /backupInstances runs at most every 1 h/);
  });

  it('GIVEN a backup every 1s WHEN `amiflow plan validate` runs THEN it fails before connecting', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'amiflow-plan-'));
    const file = path.join(dir, 'plan.yaml');
    await writeFile(file, plan(IDS, '      every: 1s'));
    let connected = false;
    await assert.rejects(
      run(['plan', 'validate', file], () => {
        connected = true;
        return Promise.reject(new Error('must not connect'));
      }),
      /schedule\.every: backupInstances runs at most every 1 h/,
    );
    assert.equal(connected, false);
  });
});
