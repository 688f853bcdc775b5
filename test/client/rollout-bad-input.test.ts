/**
 * Bad rolloutImage inputs, refused before anything starts (the client and the CLI run the same
 * check the workflow runs at its start), each naming the field (or the flag) that is wrong.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RolloutImageInput } from '../../contracts';
import { rolloutInputFrom } from '../../client/cli/rollout';
import { InvalidInputError } from '../../workflows/validation';
import { parseRolloutImageInput, rolloutImageIssues } from '../../workflows/rollout-plan';

const GOOD: RolloutImageInput = {
  imageId: 'ami-0123456789abcdef0',
  targets: [
    {
      region: 'eu-west-1',
      launchTemplates: [{ id: 'lt-0aaaaaaaaaaaaaaa1' }],
      autoScalingGroups: [{ name: 'web-a' }, { name: 'web-b' }],
    },
  ],
  waves: { canary: { group: 'web-a' }, size: 1, concurrency: 2 },
  bake: {
    seconds: 600,
    alarms: ['web-5xx', 'arn:aws:cloudwatch:eu-west-1:111122223333:alarm:web-latency'],
    checkIntervalSeconds: 60,
  },
  refresh: { minHealthyPercentage: 90, checkpointPercentages: [20, 100], checkpointDelaySeconds: 300 },
  approval: { approvers: ['arn:aws:iam::111122223333:role/release-managers'], timeoutSeconds: 3600 },
};

function withInput(change: (i: Record<string, unknown>) => void): unknown {
  const copy = structuredClone(GOOD) as unknown as Record<string, unknown>;
  change(copy);
  return copy;
}
const target = (i: Record<string, unknown>) =>
  (i.targets as Record<string, unknown>[])[0] as Record<string, unknown>;

const CASES: [string, unknown, string, RegExp][] = [
  [
    'an empty wave',
    withInput((i) => ((i.waves as Record<string, unknown>).size = 0)),
    'waves.size',
    /a wave cannot be empty/,
  ],
  [
    'a canary percentage out of range',
    withInput((i) => ((i.waves as Record<string, unknown>).canary = { percentage: 150 })),
    'waves.canary.percentage',
    /from 1 to 100, got 150/,
  ],
  [
    'a canary with both group and percentage',
    withInput((i) => ((i.waves as Record<string, unknown>).canary = { group: 'web-a', percentage: 10 })),
    'waves.canary',
    /exactly one of group or percentage/,
  ],
  [
    'an alarm that is neither a name nor an ARN',
    withInput(
      (i) => ((i.bake as Record<string, unknown>).alarms = ['arn:aws:sns:eu-west-1:111122223333:topic']),
    ),
    'bake.alarms[0]',
    /is not a CloudWatch alarm name .* or ARN/,
  ],
  [
    'an alarm name with surrounding spaces',
    withInput((i) => ((i.bake as Record<string, unknown>).alarms = [' web-5xx'])),
    'bake.alarms[0]',
    /no surrounding spaces/,
  ],
  ['no targets', withInput((i) => (i.targets = [])), 'targets', /at least one target/],
  [
    'a target naming nothing',
    withInput((i) => (i.targets = [{ region: 'eu-west-1' }])),
    'targets[0]',
    /names nothing/,
  ],
  [
    'a launch template with id and name',
    withInput((i) => (target(i).launchTemplates = [{ id: 'lt-0aaaaaaaaaaaaaaa1', name: 'web' }])),
    'targets[0].launchTemplates[0]',
    /exactly one of id, name or tag/,
  ],
  [
    'a malformed launch template id',
    withInput((i) => (target(i).launchTemplates = [{ id: 'lt-xyz' }])),
    'targets[0].launchTemplates[0].id',
    /is not a launch template id/,
  ],
  [
    'a group name that is an ARN',
    withInput(
      (i) => (target(i).autoScalingGroups = [{ name: 'arn:aws:autoscaling:eu-west-1:1:autoScalingGroup:x' }]),
    ),
    'targets[0].autoScalingGroups[0].name',
    /is not an Auto Scaling group name/,
  ],
  [
    'minimum healthy percentage out of range',
    withInput((i) => ((i.refresh as Record<string, unknown>).minHealthyPercentage = 101)),
    'refresh.minHealthyPercentage',
    /from 0 to 100, got 101/,
  ],
  [
    'checkpoints not ending at 100',
    withInput((i) => ((i.refresh as Record<string, unknown>).checkpointPercentages = [50, 20])),
    'refresh.checkpointPercentages',
    /strictly ascending and end with 100/,
  ],
  [
    'a bake longer than a week',
    withInput((i) => ((i.bake as Record<string, unknown>).seconds = 8 * 24 * 3600)),
    'bake.seconds',
    /from 0 to 604800/,
  ],
  [
    'a check interval longer than the bake',
    withInput((i) => ((i.bake as Record<string, unknown>).checkIntervalSeconds = 900)),
    'bake.checkIntervalSeconds',
    /longer than the bake \(600 s\)/,
  ],
  ['a malformed image id', withInput((i) => (i.imageId = 'ami-12')), 'imageId', /is not an AMI id/],
  ['no image at all', withInput((i) => delete i.imageId), 'imageId', /is required/],
  [
    'the same region twice',
    withInput((i) => (i.targets = [target(i), target(i)])),
    'targets[1]',
    /repeats eu-west-1/,
  ],
  [
    'a concurrency of 0',
    withInput((i) => ((i.waves as Record<string, unknown>).concurrency = 0)),
    'waves.concurrency',
    /from 1 to 50, got 0/,
  ],
  [
    'an approver that is a name, not an ARN',
    withInput((i) => ((i.approval as Record<string, unknown>).approvers = ['alice'])),
    'approval.approvers[0]',
    /is not an IAM role or user ARN/,
  ],
  [
    'an unknown field (a typo)',
    withInput((i) => (i.bakeSeconds = 60)),
    'bakeSeconds',
    /is not a known field/,
  ],
  [
    'a bad region',
    withInput((i) => (target(i).region = 'eu-west-9x')),
    'targets[0].region',
    /is not an AWS region name/,
  ],
];

describe('rolloutImage input refused before anything starts', () => {
  it('GIVEN a good input THEN there are no issues', () => {
    assert.deepEqual(rolloutImageIssues(GOOD), []);
  });

  for (const [what, input, field, message] of CASES)
    it(`GIVEN ${what} THEN the issue names ${field}`, () => {
      const issues = rolloutImageIssues(input);
      const mine = issues.find((i) => i.field === field || i.field.startsWith(`${field}.`));
      assert.ok(mine, `no issue on ${field}; got ${JSON.stringify(issues)}`);
      assert.match(mine.message, message);
      assert.throws(() => parseRolloutImageInput(input), InvalidInputError);
    });

  it('GIVEN CLI flags THEN the input has one target and the flags land in their fields', () => {
    const input = rolloutInputFrom({
      image: 'ami-0123456789abcdef0',
      region: 'eu-west-1',
      launchTemplate: ['lt-0aaaaaaaaaaaaaaa1', 'web'],
      asg: ['web-a'],
      asgTag: 'app=web',
      canary: 'web-a',
      bake: 600,
      alarm: ['web-5xx'],
      default: false,
    });
    assert.deepEqual(input, {
      imageId: 'ami-0123456789abcdef0',
      targets: [
        {
          region: 'eu-west-1',
          launchTemplates: [{ id: 'lt-0aaaaaaaaaaaaaaa1' }, { name: 'web' }],
          autoScalingGroups: [{ name: 'web-a' }, { tag: { key: 'app', value: 'web' } }],
        },
      ],
      setDefaultVersion: false,
      waves: { canary: { group: 'web-a' } },
      bake: { seconds: 600, alarms: ['web-5xx'] },
    });
    assert.deepEqual(rolloutImageIssues(input), []);
  });
});
