/**
 * Stubs for the rolloutImage time-skipping tests: a small model of one region's launch templates,
 * Auto Scaling groups (with their instance refreshes) and CloudWatch alarms, and the rollout's
 * activities acting on it as AWS would. Typed against the real activity signatures, built on
 * `unplannedActivities()`; tests read the model afterwards and inject alarms and failures.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Activities } from '../../activities';
import type { RefreshStatus } from '../../activities/autoscaling';
import type { RefreshState, RolloutImageInput, RolloutImageResult } from '../../workflows/contracts';
import type { WorkflowOutcome } from './harness';
import { uniqueWorkflowId, workflowOutcome } from './harness';
import { unplannedActivities } from './stub-activities';
import type { RunOf } from './run-helpers';
import type { Fleet } from './golden-stubs';
import { ACCOUNT as GOLDEN_ACCOUNT, goldenActivities } from './golden-stubs';

export const REGION = 'eu-west-1';
export const NEW_AMI = 'ami-0aaaa1111bbbb2222';
export const OLD_AMI = 'ami-0cccc3333dddd4444';
export const LT_ID = 'lt-0aaaaaaaaaaaaaaa1';
export const LT_NAME = 'web';

/** A golden pipeline's rollout stage: one launch template and the tagged groups, a canary wave, a 5-minute bake. */
export const GOLDEN_ROLLOUT_STAGE = {
  targets: [
    {
      region: 'eu-west-1',
      accountId: GOLDEN_ACCOUNT,
      launchTemplates: [{ id: LT_ID }],
      autoScalingGroups: [{ tag: { key: 'app' } }],
    },
  ],
  waves: { canary: { group: 'web-a' } },
  bake: { seconds: 300, alarms: ['web-5xx'] },
};

interface Refresh {
  id: string;
  status: RefreshState;
  percentage: number;
  version: string;
}

export interface ModelGroup {
  name: string;
  launchTemplateVersion: string;
  refreshes: Refresh[];
}

/** What AWS holds, and what the tests make it do. */
export class RolloutFleet {
  template = {
    id: LT_ID,
    name: LT_NAME,
    defaultVersion: 1,
    versions: new Map<number, { imageId: string; description: string }>(),
  };
  groups = new Map<string, ModelGroup>();
  alarms = new Map<string, 'OK' | 'ALARM' | 'INSUFFICIENT_DATA'>();
  /** The alarm fires in this wave's bake (1-based by the watch calls). */
  alarmInBake?: { bake: number; alarm: string };
  /** This group's refresh ends Failed. */
  failGroup?: string;
  bakes = 0;
  private refreshIds = 0;

  constructor(groupNames: string[]) {
    this.template.versions.set(1, { imageId: OLD_AMI, description: 'first' });
    for (const name of groupNames)
      this.groups.set(name, { name, launchTemplateVersion: '$Default', refreshes: [] });
    this.alarms.set('web-5xx', 'OK');
  }

  group(name: string): ModelGroup {
    const g = this.groups.get(name);
    if (!g) throw new Error(`no group ${name}`);
    return g;
  }

  imageOf(group: string): string {
    const g = this.group(group);
    const v =
      g.launchTemplateVersion === '$Default' ? this.template.defaultVersion : Number(g.launchTemplateVersion);
    return this.template.versions.get(v)?.imageId ?? '?';
  }

  startRefresh(group: string, version: string): Refresh {
    this.refreshIds += 1;
    const r: Refresh = { id: `refresh-${this.refreshIds}`, status: 'InProgress', percentage: 0, version };
    this.group(group).refreshes.push(r);
    return r;
  }

  statusOf(r: Refresh): RefreshStatus {
    return {
      instanceRefreshId: r.id,
      status: r.status,
      percentageComplete: r.percentage,
      instancesToUpdate: Math.round((100 - r.percentage) / 25),
    };
  }
}

/** The rollout's activities on the model. */
export function rolloutActivities(fleet: RolloutFleet): Activities {
  const findRefresh = (group: string, id: string) => {
    const r = fleet.group(group).refreshes.find((x) => x.id === id);
    if (!r) throw new Error(`no refresh ${id} on ${group}`);
    return r;
  };
  return {
    ...unplannedActivities(),
    resolveRolloutTarget: async (input) => ({
      launchTemplates: [
        {
          launchTemplateId: LT_ID,
          launchTemplateName: LT_NAME,
          defaultVersion: fleet.template.defaultVersion,
          latestVersion: Math.max(...fleet.template.versions.keys()),
          named: input.launchTemplates.length > 0,
        },
      ],
      groups: [...fleet.groups.values()].map((g) => ({
        autoScalingGroupName: g.name,
        launchTemplateId: LT_ID,
        launchTemplateName: LT_NAME,
        launchTemplateVersion: g.launchTemplateVersion,
        desiredCapacity: 4,
      })),
    }),
    readRolloutAlarms: async (input) => ({
      readings: input.alarms.flatMap((alarm) => {
        const state = fleet.alarms.get(alarm);
        return state ? [{ alarm, target: { region: REGION }, state }] : [];
      }),
      missing: input.alarms.filter((a) => !fleet.alarms.has(a)),
    }),
    watchRolloutAlarms: async (input) => {
      fleet.bakes += 1;
      if (fleet.alarmInBake?.bake === fleet.bakes) fleet.alarms.set(fleet.alarmInBake.alarm, 'ALARM');
      const firing = input.alarms.filter((a) => fleet.alarms.get(a) === 'ALARM');
      return {
        firing: firing.map((alarm) => ({
          alarm,
          target: { region: REGION },
          state: 'ALARM' as const,
          reason: 'Threshold Crossed',
        })),
        reads: 1,
      };
    },
    createLaunchTemplateVersion: async (input) => {
      const mine = [...fleet.template.versions].find(([, v]) => v.description.startsWith(input.marker));
      if (mine) return { version: mine[0], created: false };
      const version = Math.max(...fleet.template.versions.keys()) + 1;
      fleet.template.versions.set(version, {
        imageId: input.imageId,
        description: `${input.marker} image ${input.imageId}`,
      });
      return { version, created: true };
    },
    setDefaultLaunchTemplateVersion: async (input) => {
      const previousDefault = fleet.template.defaultVersion;
      fleet.template.defaultVersion = input.version;
      return { previousDefault };
    },
    restoreLaunchTemplateDefault: async (input) => {
      fleet.template.defaultVersion = input.previousDefaultVersion;
      const detail = `default version ${input.previousDefaultVersion} again (was ${input.newVersion})`;
      return {
        kind: 'restore-default-version',
        region: REGION,
        resource: input.launchTemplateId,
        detail,
        outcome: 'done',
        note: detail,
      };
    },
    startInstanceRefresh: async (input) => {
      const g = fleet.group(input.autoScalingGroupName);
      const mine = g.refreshes.find((r) => r.version === input.version);
      if (mine) return { ...fleet.statusOf(mine), reused: true };
      return {
        ...fleet.statusOf(fleet.startRefresh(input.autoScalingGroupName, input.version)),
        reused: false,
      };
    },
    waitForInstanceRefresh: async (input) => {
      const r = findRefresh(input.autoScalingGroupName, input.instanceRefreshId);
      if (fleet.failGroup === input.autoScalingGroupName && r.percentage >= 50) r.status = 'Failed';
      else {
        r.percentage = Math.min(100, r.percentage + 50);
        if (r.percentage === 100) {
          r.status = 'Successful';
          fleet.group(input.autoScalingGroupName).launchTemplateVersion = r.version;
        }
      }
      return fleet.statusOf(r);
    },
    undoInstanceRefresh: async (input) => {
      const g = fleet.group(input.autoScalingGroupName);
      g.launchTemplateVersion = input.previousVersion;
      const r = input.instanceRefreshId ? findRefresh(g.name, input.instanceRefreshId) : undefined;
      const running = r && (r.status === 'InProgress' || r.status === 'Pending');
      if (r) r.status = running ? 'RollbackSuccessful' : r.status;
      const kind = running ? ('rollback-refresh' as const) : ('refresh-to-previous' as const);
      const detail = `${kind} of ${g.name} to version ${input.previousVersion}`;
      return { kind, region: REGION, resource: g.name, detail, outcome: 'done', note: detail };
    },
  };
}

/** A valid input over the model's groups; each test overrides what it is about. */
export function rolloutInput(overrides: Partial<RolloutImageInput> = {}): RolloutImageInput {
  return {
    imageId: NEW_AMI,
    targets: [
      {
        region: REGION,
        launchTemplates: [{ id: LT_ID }],
        autoScalingGroups: [{ tag: { key: 'app', value: 'web' } }],
      },
    ],
    waves: { canary: { group: 'web-a' }, concurrency: 2 },
    bake: { seconds: 600, alarms: ['web-5xx'], checkIntervalSeconds: 60 },
    ...overrides,
  };
}

export function startRollout(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  input: unknown,
  workflowId = uniqueWorkflowId('rollout'),
) {
  return env.client.workflow.start('rolloutImage', {
    taskQueue,
    workflowId,
    // Deliberately unchecked: tests also send inputs the client library would refuse.
    args: [input as RolloutImageInput],
  });
}

export type RolloutOutcome = WorkflowOutcome<RolloutImageResult>;

export function rolloutOutcome(handle: WorkflowHandle): Promise<RolloutOutcome> {
  return workflowOutcome<RolloutImageResult>(handle);
}

/** How the tests run a rollout to its end (see `runTo` and `runLogged`). */
export const ROLLOUT: RunOf<WorkflowHandle, RolloutOutcome> = {
  queuePrefix: 'rollout',
  start: startRollout,
  outcome: rolloutOutcome,
};

const ROLLOUT_ACTIVITIES = [
  'resolveRolloutTarget',
  'readRolloutAlarms',
  'watchRolloutAlarms',
  'createLaunchTemplateVersion',
  'setDefaultLaunchTemplateVersion',
  'restoreLaunchTemplateDefault',
  'startInstanceRefresh',
  'waitForInstanceRefresh',
  'undoInstanceRefresh',
] as const satisfies readonly (keyof Activities)[];

/** A golden pipeline's stub activities with the rollout model's for its `rollout` stage. */
export function goldenWithRolloutActivities(golden: Fleet, rollout: RolloutFleet): Activities {
  const r = rolloutActivities(rollout);
  return { ...goldenActivities(golden), ...Object.fromEntries(ROLLOUT_ACTIVITIES.map((n) => [n, r[n]])) };
}
