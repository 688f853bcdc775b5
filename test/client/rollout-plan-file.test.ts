/**
 * A golden pipeline's `rollout` section in the plan file: accepted into the pipeline's input as the
 * rolloutImage stage, and a bad one refused with the line and the plan path of the field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PlanFileError, parsePlan } from '../../client/plan-file';

const PLAN = (rollout: string) => `apiVersion: amiflow/v1
plan: team-web
pipelines:
  - name: web
    region: eu-west-1
    accountId: '111122223333'
    builderInstanceId: i-0abc1234def567890
    rollout:
${rollout}
    schedule:
      cron: '0 3 * * MON'
      timeZone: UTC
`;

const GOOD = `      targets:
        - region: eu-west-1
          launchTemplates: [{ name: web-servers }]
          autoScalingGroups: [{ tag: { key: app, value: web } }]
      waves: { canary: { percentage: 10 }, size: 2, concurrency: 2 }
      bake: { seconds: 900, alarms: [web-5xx] }`;

describe('plan file: rollout section', () => {
  it('GIVEN a pipeline with a rollout section WHEN parsed THEN the pipeline input carries it as the rollout stage', () => {
    const plan = parsePlan(PLAN(GOOD), 'plan.yaml');
    const entry = plan.entries.find((e) => e.kind === 'golden');
    assert.ok(entry && entry.kind === 'golden');
    assert.deepEqual(entry.input.rollout, {
      targets: [
        {
          region: 'eu-west-1',
          launchTemplates: [{ name: 'web-servers' }],
          autoScalingGroups: [{ tag: { key: 'app', value: 'web' } }],
        },
      ],
      waves: { canary: { percentage: 10 }, size: 2, concurrency: 2 },
      bake: { seconds: 900, alarms: ['web-5xx'] },
    });
  });

  it('GIVEN a rollout with an empty wave and an image id WHEN parsed THEN both are refused naming their plan paths', () => {
    const bad = GOOD.replace('size: 2', 'size: 0') + '\n      imageId: ami-0123456789abcdef0';
    let err: unknown;
    try {
      parsePlan(PLAN(bad), 'plan.yaml');
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof PlanFileError, `not a PlanFileError: ${String(err)}`);
    const text = err.issues.map((i) => `${i.field}: ${i.message}`).join('\n');
    assert.match(text, /rollout\.waves\.size: .*a wave cannot be empty/);
    assert.match(text, /rollout\.imageId: is the pipeline's new image: leave it out/);
  });
});
