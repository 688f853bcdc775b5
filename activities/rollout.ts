/**
 * The rollout's reads: what one (account, region) target names (its launch templates, its Auto
 * Scaling groups and the launch templates behind them), and the CloudWatch alarms a bake watches,
 * once (before anything starts) or periodically for the length of a bake, heartbeating.
 */
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { AutoScalingGroupRef, AwsTarget, LaunchTemplateRef } from '../contracts';
import { ALARM_ARN_RE, FailureType } from '../contracts';
import type { GroupInfo } from './autoscaling';
import { autoScalingActivities, autoScalingOf, describeGroupRef, groupsNamed } from './autoscaling';
import type { ActivityDeps } from './deps';
import { optionalClient } from './aws';
import { aws, failure } from './errors';
import type { LaunchTemplateInfo } from './launch-templates';
import { describeTemplateRef, launchTemplateActivities, templatesNamed } from './launch-templates';
import type { RefKind } from './paging';
import { findEachRef } from './paging';
import { sdk } from './sdk-modules';
import { waitUntil } from './waiting';

export interface ResolveTargetInput {
  target: AwsTarget;
  launchTemplates: LaunchTemplateRef[];
  autoScalingGroups: AutoScalingGroupRef[];
}

export interface ResolvedTarget {
  /** Named templates, and those behind the named groups, once each. */
  launchTemplates: (LaunchTemplateInfo & { named: boolean })[];
  groups: GroupInfo[];
}

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

export interface AlarmReading {
  /** As the input named it (name or ARN). */
  alarm: string;
  target: AwsTarget;
  state: AlarmState;
  reason?: string;
}

export interface ReadAlarmsInput {
  /** Where alarms given by name are looked for (every target of the rollout). */
  targets: AwsTarget[];
  alarms: string[];
}

export interface AlarmsRead {
  readings: AlarmReading[];
  /** Alarms found nowhere. */
  missing: string[];
}

export interface WatchAlarmsInput extends ReadAlarmsInput {
  /** Epoch ms: the bake ends; the watch returns then with what it read last. */
  until: number;
  intervalSeconds: number;
  failOnInsufficientData: boolean;
}

export interface AlarmWatch {
  /** Alarms that were firing when the watch returned (empty: the bake ran clean). */
  firing: AlarmReading[];
  reads: number;
}

function where(t: AwsTarget): string {
  return t.accountId ? `${t.accountId}/${t.region}` : t.region;
}

/** Where an alarm lives: an ARN names its region and account; a name is looked for in every target. */
export function alarmScopes(
  alarm: string,
  targets: readonly AwsTarget[],
): { target: AwsTarget; name: string }[] {
  const arn = ALARM_ARN_RE.exec(alarm);
  if (!arn) return targets.map((target) => ({ target, name: alarm }));
  const [, , region = '', account = '', name = ''] =
    /^arn:[^:]+:cloudwatch:([^:]+):(\d{12}):alarm:(.+)$/.exec(alarm) ?? [];
  const own = targets.find(
    (t) => t.region === region && (t.accountId === undefined || t.accountId === account),
  );
  return [{ target: own ?? { region, accountId: account }, name }];
}

async function cloudWatchOf(deps: ActivityDeps, target: AwsTarget): Promise<CloudWatchClient> {
  return optionalClient(deps.aws, 'cloudWatch', target, 'a bake with alarms needs one');
}

/** Each alarm's state, read in one DescribeAlarms call per (account, region) (100 names a call). */
export async function readAlarms(deps: ActivityDeps, input: ReadAlarmsInput): Promise<AlarmsRead> {
  const byScope = new Map<string, { target: AwsTarget; names: Map<string, string> }>();
  for (const alarm of input.alarms)
    for (const s of alarmScopes(alarm, input.targets)) {
      const key = where(s.target);
      const entry = byScope.get(key) ?? { target: s.target, names: new Map<string, string>() };
      entry.names.set(s.name, alarm);
      byScope.set(key, entry);
    }
  const readings: AlarmReading[] = [];
  for (const { target, names } of byScope.values()) {
    const cw = await cloudWatchOf(deps, target);
    const { DescribeAlarmsCommand } = await sdk.cloudWatch();
    const out = await aws(`reading CloudWatch alarms in ${where(target)}`, () =>
      cw.send(
        new DescribeAlarmsCommand({
          AlarmNames: [...names.keys()],
          AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
          MaxRecords: 100,
        }),
      ),
    );
    for (const a of [...(out.MetricAlarms ?? []), ...(out.CompositeAlarms ?? [])]) {
      const alarm = names.get(a.AlarmName ?? '');
      if (alarm === undefined) continue;
      readings.push({
        alarm,
        target,
        state: a.StateValue ?? 'INSUFFICIENT_DATA',
        ...(a.StateReason ? { reason: a.StateReason } : {}),
      });
    }
  }
  const missing = input.alarms.filter((a) => !readings.some((r) => r.alarm === a));
  return { readings, missing };
}

function firingOf(readings: readonly AlarmReading[], failOnInsufficientData: boolean): AlarmReading[] {
  return readings.filter(
    (r) => r.state === 'ALARM' || (failOnInsufficientData && r.state === 'INSUFFICIENT_DATA'),
  );
}

/** The two kinds of target a rollout names, as findEachRef words and counts them. */
const GROUP_REFS: RefKind<AutoScalingGroupRef, GroupInfo> = {
  describeRef: describeGroupRef,
  namedBy: 'the name or tag',
  key: (g) => g.autoScalingGroupName,
};
const TEMPLATE_REFS: RefKind<LaunchTemplateRef, LaunchTemplateInfo> = {
  describeRef: describeTemplateRef,
  namedBy: 'the id, name or tag',
  key: (t) => t.launchTemplateId,
};

export function rolloutActivities(deps: ActivityDeps) {
  return {
    ...launchTemplateActivities(deps),
    ...autoScalingActivities(deps),

    /** What one target names, with the launch templates behind its groups. */
    async resolveRolloutTarget(input: ResolveTargetInput): Promise<ResolvedTarget> {
      const at = where(input.target);
      const asg = input.autoScalingGroups.length > 0 ? await autoScalingOf(deps, input.target) : undefined;
      const groups = asg
        ? await findEachRef(input.autoScalingGroups, at, GROUP_REFS, (ref) => groupsNamed(asg, ref, at))
        : [];
      const ec2 = await deps.aws.ec2(input.target);
      const templatesOf = (refs: readonly LaunchTemplateRef[]) =>
        findEachRef(refs, at, TEMPLATE_REFS, (ref) => templatesNamed(ec2, ref, at));
      const named = await templatesOf(input.launchTemplates);
      const namedIds = new Set(named.map((t) => t.launchTemplateId));
      const behind = groups
        .filter((g) => !namedIds.has(g.launchTemplateId))
        .map((g): LaunchTemplateRef =>
          g.launchTemplateId ? { id: g.launchTemplateId } : { name: g.launchTemplateName },
        );
      const extra = behind.length > 0 ? await templatesOf(behind) : [];
      const byId = new Map<string, LaunchTemplateInfo & { named: boolean }>();
      for (const t of named) byId.set(t.launchTemplateId, { ...t, named: true });
      for (const t of extra)
        if (!byId.has(t.launchTemplateId)) byId.set(t.launchTemplateId, { ...t, named: false });
      // Groups that named their template by name get its id, so every later call is by id.
      const resolvedGroups = groups.map((g) => ({
        ...g,
        launchTemplateId:
          g.launchTemplateId ||
          [...byId.values()].find((t) => t.launchTemplateName === g.launchTemplateName)?.launchTemplateId ||
          '',
      }));
      return { launchTemplates: [...byId.values()], groups: resolvedGroups };
    },

    /** The alarms' states now; the workflow refuses to start on a missing or firing alarm. */
    async readRolloutAlarms(input: ReadAlarmsInput): Promise<AlarmsRead> {
      return readAlarms(deps, input);
    },

    /**
     * The bake's periodic check: reads the alarms every `intervalSeconds` until one fires or the
     * bake ends, heartbeating; one activity per bake, so history does not grow with its length.
     */
    async watchRolloutAlarms(input: WatchAlarmsInput): Promise<AlarmWatch> {
      let reads = 0;
      const outcome = await waitUntil(deps, {
        what: `alarms ${input.alarms.join(', ')} during the bake`,
        poll: async () => {
          reads += 1;
          const read = await readAlarms(deps, input);
          return { firing: firingOf(read.readings, input.failOnInsufficientData), missing: read.missing };
        },
        done: (s) => s.firing.length > 0 || s.missing.length > 0 || deps.clock.now() >= input.until,
        progress: (s) => ({ firing: s.firing.map((f) => f.alarm) }),
        progressCalls: 0,
        policy: {
          firstIntervalMs: input.intervalSeconds * 1000,
          maxIntervalMs: input.intervalSeconds * 1000,
          backoff: 1,
        },
        // The bake's end is when the watch returns cleanly; a little past it is when it gives up.
        deadline: input.until + 10 * 60_000,
        maxCalls: 100_000,
      });
      if (outcome.state.missing.length > 0)
        throw failure(
          FailureType.RolloutAlarmNotFound,
          `alarm(s) ${outcome.state.missing.join(', ')} disappeared during the bake; a bake cannot prove anything without them`,
        );
      return { firing: outcome.state.firing, reads };
    },
  };
}
