/**
 * Auto Scaling groups for a rollout: find them (by name or tag), start an instance refresh to a
 * launch-template version (idempotent: a refresh to that very version, which only this run made, is
 * this run's), wait on it with heartbeats and progress, and undo it: RollbackInstanceRefresh while
 * it runs, otherwise a refresh back to the group's previous launch template version.
 */
import type {
  AutoScalingClient,
  AutoScalingGroup,
  InstanceRefresh,
  LaunchTemplateSpecification,
} from '@aws-sdk/client-auto-scaling';
import type { AutoScalingGroupRef, AwsTarget, RefreshState, RolloutRestore } from '../contracts';
import { FailureType } from '../contracts';
import type { ActivityDeps } from './deps';
import { optionalClient } from './aws';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { allPages, tagFilters } from './paging';
import { sdk } from './sdk-modules';
import { waitUntil } from './waiting';

export interface GroupInfo {
  autoScalingGroupName: string;
  launchTemplateId: string;
  launchTemplateName: string;
  /** As the group names it: a number, `$Default` or `$Latest`. */
  launchTemplateVersion: string;
  desiredCapacity: number;
}

export interface RefreshSettings {
  minHealthyPercentage: number;
  instanceWarmupSeconds?: number;
  checkpointPercentages?: number[];
  checkpointDelaySeconds?: number;
  skipMatching: boolean;
}

export interface StartRefreshInput {
  target: AwsTarget;
  autoScalingGroupName: string;
  launchTemplateId: string;
  version: string;
  preferences: RefreshSettings;
}

export interface RefreshStatus {
  instanceRefreshId: string;
  status: RefreshState;
  percentageComplete: number;
  instancesToUpdate: number;
  statusReason?: string;
}

export interface WaitRefreshInput {
  target: AwsTarget;
  autoScalingGroupName: string;
  instanceRefreshId: string;
  /** What the workflow saw last: the wait returns at the next status or quarter of progress. */
  seen?: { status: RefreshState; percentageComplete: number };
  /** Epoch ms; shared by every attempt and every call for this refresh. */
  deadline: number;
}

export interface UndoRefreshInput {
  target: AwsTarget;
  autoScalingGroupName: string;
  /** This run's refresh, when it was started (absent: the start's answer was lost; looked up by version). */
  instanceRefreshId?: string;
  launchTemplateId: string;
  newVersion: string;
  previousVersion: string;
  deadline: number;
}

/** States an instance refresh ends in. */
export const FINAL_REFRESH_STATES: readonly RefreshState[] = [
  'Successful',
  'Failed',
  'Cancelled',
  'RollbackSuccessful',
  'RollbackFailed',
];
/** States in which RollbackInstanceRefresh applies. */
const ROLLBACKABLE: readonly RefreshState[] = ['Pending', 'InProgress', 'Baking'];
/** Waits return at each quarter of progress: history grows with progress, never with time. */
const MILESTONE = 25;

export function describeGroupRef(ref: AutoScalingGroupRef): string {
  if (ref.name) return `Auto Scaling group '${ref.name}'`;
  return `Auto Scaling groups tagged ${ref.tag?.key}${ref.tag?.value !== undefined ? `=${ref.tag.value}` : ''}`;
}

function launchTemplateOf(g: AutoScalingGroup, where: string): LaunchTemplateSpecification {
  if (g.LaunchTemplate?.LaunchTemplateId || g.LaunchTemplate?.LaunchTemplateName) return g.LaunchTemplate;
  const name = g.AutoScalingGroupName ?? '?';
  const uses = g.MixedInstancesPolicy
    ? 'a mixed instances policy'
    : g.LaunchConfigurationName
      ? `launch configuration '${g.LaunchConfigurationName}'`
      : 'no launch template';
  throw failure(
    FailureType.RolloutTargetUnsupported,
    `Auto Scaling group '${name}' in ${where} uses ${uses}; a rollout needs a group launched from a launch template (move it to one first)`,
  );
}

async function groupsFor(asg: AutoScalingClient, ref: AutoScalingGroupRef): Promise<AutoScalingGroup[]> {
  const { DescribeAutoScalingGroupsCommand } = await sdk.autoScaling();
  return allPages(
    { ...(ref.name ? { AutoScalingGroupNames: [ref.name] } : {}), ...tagFilters(ref.tag) },
    (request) => asg.send(new DescribeAutoScalingGroupsCommand(request)),
    (page) => page.AutoScalingGroups,
  );
}

/** The groups one reference names, as a rollout needs them (each launched from a launch template). */
export async function groupsNamed(
  asg: AutoScalingClient,
  ref: AutoScalingGroupRef,
  where: string,
): Promise<GroupInfo[]> {
  const groups = await aws(`describing ${describeGroupRef(ref)} in ${where}`, () => groupsFor(asg, ref));
  return groups.map((g) => {
    const lt = launchTemplateOf(g, where);
    return {
      autoScalingGroupName: g.AutoScalingGroupName ?? '',
      launchTemplateId: lt.LaunchTemplateId ?? '',
      launchTemplateName: lt.LaunchTemplateName ?? '',
      launchTemplateVersion: lt.Version ?? '$Default',
      desiredCapacity: g.DesiredCapacity ?? 0,
    };
  });
}

export async function autoScalingOf(deps: ActivityDeps, target: AwsTarget): Promise<AutoScalingClient> {
  return optionalClient(deps.aws, 'autoScaling', target, 'rollouts need one');
}

function statusOf(r: InstanceRefresh): RefreshStatus {
  return {
    instanceRefreshId: r.InstanceRefreshId ?? '',
    status: r.Status ?? 'Pending',
    percentageComplete: r.PercentageComplete ?? 0,
    instancesToUpdate: r.InstancesToUpdate ?? 0,
    ...(r.StatusReason ? { statusReason: r.StatusReason } : {}),
  };
}

/** The group's refreshes, newest first (Auto Scaling keeps those of the last six weeks). */
async function refreshesOf(
  asg: AutoScalingClient,
  group: string,
  ids?: string[],
): Promise<InstanceRefresh[]> {
  const { DescribeInstanceRefreshesCommand } = await sdk.autoScaling();
  const out = await asg.send(
    new DescribeInstanceRefreshesCommand({
      AutoScalingGroupName: group,
      ...(ids ? { InstanceRefreshIds: ids } : {}),
    }),
  );
  return [...(out.InstanceRefreshes ?? [])].sort(
    (a, b) => (b.StartTime?.getTime() ?? 0) - (a.StartTime?.getTime() ?? 0),
  );
}

function toward(r: InstanceRefresh, launchTemplateId: string, version: string): boolean {
  const lt = r.DesiredConfiguration?.LaunchTemplate;
  return lt?.LaunchTemplateId === launchTemplateId && lt.Version === version;
}

async function readRefresh(asg: AutoScalingClient, group: string, id: string, action: string) {
  const [r] = await aws(action, () => refreshesOf(asg, group, [id]));
  // Just started and not listed yet (eventual consistency): retried by Temporal.
  if (!r) throw new Error(`${action}: instance refresh ${id} of '${group}' is not listed yet`);
  return statusOf(r);
}

export function autoScalingActivities(deps: ActivityDeps) {
  /** Starts a refresh to `version`, or finds the one an earlier attempt (or a replaced worker) started. */
  async function startRefresh(
    asg: AutoScalingClient,
    input: StartRefreshInput,
  ): Promise<RefreshStatus & { reused: boolean }> {
    const action = `starting an instance refresh of '${input.autoScalingGroupName}' to ${input.launchTemplateId} version ${input.version}`;
    const mine = (await aws(action, () => refreshesOf(asg, input.autoScalingGroupName))).find((r) =>
      toward(r, input.launchTemplateId, input.version),
    );
    if (mine) return { ...statusOf(mine), reused: true };
    const { StartInstanceRefreshCommand } = await sdk.autoScaling();
    const p = input.preferences;
    try {
      const out = await asg.send(
        new StartInstanceRefreshCommand({
          AutoScalingGroupName: input.autoScalingGroupName,
          Strategy: 'Rolling',
          DesiredConfiguration: {
            LaunchTemplate: { LaunchTemplateId: input.launchTemplateId, Version: input.version },
          },
          Preferences: {
            MinHealthyPercentage: p.minHealthyPercentage,
            SkipMatching: p.skipMatching,
            // amiflow decides when to roll back (alarms across groups and waves), not each group alone.
            AutoRollback: false,
            ...(p.instanceWarmupSeconds !== undefined ? { InstanceWarmup: p.instanceWarmupSeconds } : {}),
            ...(p.checkpointPercentages ? { CheckpointPercentages: p.checkpointPercentages } : {}),
            ...(p.checkpointDelaySeconds !== undefined ? { CheckpointDelay: p.checkpointDelaySeconds } : {}),
          },
        }),
      );
      return {
        instanceRefreshId: out.InstanceRefreshId ?? '',
        status: 'Pending',
        percentageComplete: 0,
        instancesToUpdate: 0,
        reused: false,
      };
    } catch (err) {
      if (isAwsCode(err, 'InstanceRefreshInProgress'))
        throw failure(
          FailureType.RefreshConflict,
          `${action}: another instance refresh is in progress on '${input.autoScalingGroupName}', not started by this rollout; wait for it to end or cancel it, then run the rollout again`,
        );
      rethrowAws(err, action);
    }
  }

  return {
    async startInstanceRefresh(input: StartRefreshInput): Promise<RefreshStatus & { reused: boolean }> {
      return startRefresh(await autoScalingOf(deps, input.target), input);
    },

    /**
     * Waits until the refresh ends, changes status or passes the next quarter of progress, so the
     * run's progress shows percentage and instances to update while history stays small.
     */
    async waitForInstanceRefresh(input: WaitRefreshInput): Promise<RefreshStatus> {
      const asg = await autoScalingOf(deps, input.target);
      const action = `reading instance refresh ${input.instanceRefreshId} of '${input.autoScalingGroupName}'`;
      const seen = input.seen;
      const outcome = await waitUntil(deps, {
        what: `instance refresh ${input.instanceRefreshId} of '${input.autoScalingGroupName}'`,
        poll: () => readRefresh(asg, input.autoScalingGroupName, input.instanceRefreshId, action),
        done: (s) =>
          FINAL_REFRESH_STATES.includes(s.status) ||
          seen === undefined ||
          s.status !== seen.status ||
          Math.floor(s.percentageComplete / MILESTONE) > Math.floor(seen.percentageComplete / MILESTONE),
        progress: (s) => ({
          status: s.status,
          percentage: s.percentageComplete,
          toUpdate: s.instancesToUpdate,
        }),
        progressCalls: 0,
        policy: { firstIntervalMs: 10_000, maxIntervalMs: 30_000 },
        deadline: input.deadline,
        maxCalls: 20_000,
      });
      return outcome.state;
    },

    /**
     * Undo of one group's refresh, safe to run again: a running refresh is rolled back
     * (RollbackInstanceRefresh), or cancelled where it cannot be; a finished or cancelled one is
     * followed by a refresh back to the previous version. Waits until the group is back.
     */
    async undoInstanceRefresh(input: UndoRefreshInput): Promise<RolloutRestore & { note: string }> {
      const asg = await autoScalingOf(deps, input.target);
      const { CancelInstanceRefreshCommand, RollbackInstanceRefreshCommand } = await sdk.autoScaling();
      const group = input.autoScalingGroupName;
      const action = `undoing the rollout on '${group}'`;
      const base = {
        region: input.target.region,
        ...(input.target.accountId ? { accountId: input.target.accountId } : {}),
        resource: group,
        outcome: 'done' as const,
      };
      const all = await aws(action, () => refreshesOf(asg, group));
      const mine = input.instanceRefreshId
        ? all.find((r) => r.InstanceRefreshId === input.instanceRefreshId)
        : all.find((r) => toward(r, input.launchTemplateId, input.newVersion));
      if (!mine) {
        const note = `no instance refresh of this run found on '${group}': nothing to undo`;
        return { ...base, kind: 'cancel-refresh', detail: note, note };
      }
      const id = mine.InstanceRefreshId ?? '';
      const back = all.find(
        (r) =>
          (r.StartTime?.getTime() ?? 0) >= (mine.StartTime?.getTime() ?? 0) &&
          r.InstanceRefreshId !== id &&
          toward(r, input.launchTemplateId, input.previousVersion),
      );
      let kind: RolloutRestore['kind'] = 'rollback-refresh';
      let waitFor = id;
      const status = statusOf(mine).status;
      if (back) {
        kind = 'refresh-to-previous';
        waitFor = back.InstanceRefreshId ?? '';
      } else if (ROLLBACKABLE.includes(status)) {
        try {
          await asg.send(new RollbackInstanceRefreshCommand({ AutoScalingGroupName: group }));
        } catch (err) {
          // A refresh Auto Scaling cannot roll back (e.g. its desired configuration cannot be
          // reverted) is cancelled; what it replaced so far goes back with a refresh to the previous version.
          if (!isAwsCode(err, 'IrreversibleInstanceRefresh', 'ActiveInstanceRefreshNotFound'))
            rethrowAws(err, action);
          kind = 'cancel-refresh';
          await aws(action, () =>
            asg
              .send(new CancelInstanceRefreshCommand({ AutoScalingGroupName: group }))
              .catch((e: unknown) => {
                if (isAwsCode(e, 'ActiveInstanceRefreshNotFound')) return undefined;
                throw e;
              }),
          );
        }
      } else if (status === 'Cancelling' || status === 'RollbackInProgress') {
        kind = status === 'Cancelling' ? 'cancel-refresh' : 'rollback-refresh';
      }
      let final = await settle(asg, group, waitFor, input.deadline);
      if (
        kind === 'cancel-refresh' ||
        (!back && ['Successful', 'Failed', 'Cancelled'].includes(final.status))
      ) {
        // Instances the refresh replaced run the new image: a refresh back to the previous version.
        kind = 'refresh-to-previous';
        const again = await startRefresh(asg, {
          target: input.target,
          autoScalingGroupName: group,
          launchTemplateId: input.launchTemplateId,
          version: input.previousVersion,
          preferences: { minHealthyPercentage: 90, skipMatching: true },
        });
        final = await settle(asg, group, again.instanceRefreshId, input.deadline);
        waitFor = again.instanceRefreshId;
      }
      const ok =
        final.status === 'RollbackSuccessful' ||
        (kind === 'refresh-to-previous' && final.status === 'Successful');
      if (!ok)
        throw failure(
          FailureType.RefreshFailed,
          `${action}: instance refresh ${waitFor} ended ${final.status}${final.statusReason ? ` (${final.statusReason})` : ''}; the group may run both images`,
        );
      const detail =
        kind === 'rollback-refresh'
          ? `instance refresh ${id} rolled back to ${input.launchTemplateId} version ${input.previousVersion}: ${final.status}`
          : `instance refresh ${waitFor} back to ${input.launchTemplateId} version ${input.previousVersion}: ${final.status} (after ${id} ended ${status})`;
      return { ...base, kind, detail, note: detail };
    },
  };

  async function settle(
    asg: AutoScalingClient,
    group: string,
    id: string,
    deadline: number,
  ): Promise<RefreshStatus> {
    const action = `reading instance refresh ${id} of '${group}'`;
    const outcome = await waitUntil(deps, {
      what: `instance refresh ${id} of '${group}' to end`,
      poll: () => readRefresh(asg, group, id, action),
      done: (s) => FINAL_REFRESH_STATES.includes(s.status),
      progress: (s) => ({ status: s.status, percentage: s.percentageComplete }),
      progressCalls: 0,
      policy: { firstIntervalMs: 10_000, maxIntervalMs: 30_000 },
      deadline,
      maxCalls: 20_000,
    });
    return outcome.state;
  }
}
