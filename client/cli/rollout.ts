/**
 * `amiflow image rollout`: roll an image out to launch templates and Auto Scaling groups in waves.
 * One (account, region) from flags, or any number of targets from a JSON or YAML file (`--file`,
 * the `rolloutImage` input); flags given with a file override its top-level settings. Validated
 * (naming the flag or the file's field) before anything connects.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { RolloutImageInput, RolloutImageResult } from '../../contracts';
import { rolloutImageIssues } from '../../workflows/rollout-plan';
import type { CliContext } from './context';
import { startAndFollow } from './context';
import type { FlagSpec } from './flags';
import {
  ACCOUNT,
  FOLLOW_FLAGS,
  UsageError,
  addFlags,
  followIssues,
  parseDuration,
  parseWhole,
  refuse,
} from './flags';

type Opts = Record<string, unknown>;

const ROLLOUT_FLAGS: readonly FlagSpec[] = [
  { flags: '--file <rollout.json|yaml>', help: 'the whole rollout input (several accounts and regions)' },
  { flags: '--image <ami-…>', help: 'the image to roll out', field: 'imageId' },
  {
    flags: '--region <region>',
    help: 'AWS region of the launch templates and groups',
    field: 'targets.0.region',
  },
  { ...ACCOUNT, field: 'targets.0.accountId' },
  {
    flags: '--launch-template <lt-…|name>',
    help: 'a launch template by id or name (repeat for more)',
    repeat: true,
    field: 'targets.0.launchTemplates',
  },
  {
    flags: '--asg <name>',
    help: 'an Auto Scaling group by name (repeat for more)',
    repeat: true,
    field: 'targets.0.autoScalingGroups',
  },
  {
    flags: '--asg-tag <key=value>',
    help: 'every Auto Scaling group with this tag',
    field: 'targets.0.autoScalingGroups',
  },
  {
    flags: '--no-default',
    help: 'add the launch-template versions without making them the default',
    field: 'setDefaultVersion',
  },
  {
    flags: '--canary <group>',
    help: 'the canary group (default: 10% of the groups, at least one)',
    field: 'waves.canary.group',
  },
  {
    flags: '--canary-percent <n>',
    help: 'the canary as a percentage of the groups',
    parse: parseWhole,
    field: 'waves.canary.percentage',
  },
  {
    flags: '--wave-size <n>',
    help: 'groups per wave after the canary (default: all in one)',
    parse: parseWhole,
    field: 'waves.size',
  },
  {
    flags: '--concurrency <n>',
    help: 'instance refreshes at once within a wave (default 2)',
    parse: parseWhole,
    field: 'waves.concurrency',
  },
  {
    flags: '--min-healthy <percent>',
    help: 'minimum healthy percentage during a refresh (default 90)',
    parse: parseWhole,
    field: 'refresh.minHealthyPercentage',
  },
  {
    flags: '--warmup <duration>',
    help: 'instance warm-up (default: the group’s)',
    parse: parseDuration,
    field: 'refresh.instanceWarmupSeconds',
  },
  {
    flags: '--bake <duration>',
    help: 'bake time after each wave (default 15m)',
    parse: parseDuration,
    field: 'bake.seconds',
  },
  {
    flags: '--alarm <name|arn>',
    help: 'a CloudWatch alarm that must stay OK while baking (repeat for more)',
    repeat: true,
    field: 'bake.alarms',
  },
  {
    flags: '--approver <iam arn>',
    help: 'approval after the canary by one of these (repeat for more)',
    repeat: true,
    field: 'approval.approvers',
  },
  ...FOLLOW_FLAGS,
];

function readFile(path: string): Record<string, unknown> {
  const text = readFileSync(path, 'utf8');
  const parsed: unknown = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new UsageError(`${path}: must hold one rollout input object`);
  return parsed as Record<string, unknown>;
}

/** The input from the flags (one target) merged over the file's, if any. */
export function rolloutInputFrom(opts: Opts): RolloutImageInput {
  const base = typeof opts.file === 'string' ? readFile(opts.file) : {};
  const ltRefs = ((opts.launchTemplate as string[] | undefined) ?? []).map((v) =>
    v.startsWith('lt-') ? { id: v } : { name: v },
  );
  const asgRefs: Record<string, unknown>[] = ((opts.asg as string[] | undefined) ?? []).map((name) => ({
    name,
  }));
  if (typeof opts.asgTag === 'string') {
    const [key = '', ...rest] = opts.asgTag.split('=');
    asgRefs.push({ tag: rest.length ? { key, value: rest.join('=') } : { key } });
  }
  const input: Record<string, unknown> = { ...base };
  if (opts.image !== undefined) input.imageId = opts.image;
  if (opts.region !== undefined || ltRefs.length || asgRefs.length)
    input.targets = [
      {
        region: opts.region,
        ...(opts.account !== undefined ? { accountId: opts.account } : {}),
        ...(ltRefs.length ? { launchTemplates: ltRefs } : {}),
        ...(asgRefs.length ? { autoScalingGroups: asgRefs } : {}),
      },
    ];
  if (opts.default === false) input.setDefaultVersion = false;
  const section = (key: string, values: Record<string, unknown>) => {
    const set = Object.entries(values).filter(([, v]) => v !== undefined);
    if (set.length) input[key] = { ...(input[key] as object | undefined), ...Object.fromEntries(set) };
  };
  const canary =
    opts.canary !== undefined
      ? { group: opts.canary }
      : opts.canaryPercent !== undefined
        ? { percentage: opts.canaryPercent }
        : undefined;
  section('waves', { canary, size: opts.waveSize, concurrency: opts.concurrency });
  section('refresh', { minHealthyPercentage: opts.minHealthy, instanceWarmupSeconds: opts.warmup });
  section('bake', { seconds: opts.bake, alarms: opts.alarm });
  section('approval', { approvers: opts.approver });
  return input as unknown as RolloutImageInput;
}

export function registerRollout(image: Command, ctx: CliContext): void {
  addFlags(
    image
      .command('rollout')
      .description(
        'roll an image out to launch templates and Auto Scaling groups: canary, bake under alarms, approval, waves; rolled back on an alarm or failure',
      ),
    ROLLOUT_FLAGS,
  ).action(async (opts: Opts, cmd: Command) => {
    const input = rolloutInputFrom(opts);
    refuse(ROLLOUT_FLAGS, [...rolloutImageIssues(input), ...followIssues(opts)]);
    await startAndFollow<RolloutImageResult>(ctx, cmd, opts, {
      start: (client, options) => client.startRolloutImage(input, options),
      format: formatRollout,
    });
  });
}

export function formatRollout(r: RolloutImageResult): string {
  return [
    `rolled out ${Object.entries(r.imageIds)
      .map(([region, id]) => `${id} (${region})`)
      .join(', ')}`,
    ...r.waves.map(
      (w) =>
        `  wave ${w.wave}: ${[...w.groups, ...w.launchTemplates].join(', ') || '-'} (baked ${w.bakedSeconds} s)`,
    ),
    ...r.launchTemplates.map(
      (t) =>
        `  ${t.launchTemplateId} (${t.launchTemplateName}): version ${t.newVersion}${t.madeDefault ? ' is the default' : ''} (default was ${t.previousDefaultVersion})`,
    ),
    ...r.refreshes.map(
      (g) => `  ${g.autoScalingGroupName}: refresh ${g.instanceRefreshId ?? '?'} ${g.status ?? ''}`,
    ),
    ...(r.approval ? [`  approved by ${r.approval.by} at ${r.approval.at}`] : []),
  ].join('\n');
}
