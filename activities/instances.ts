/** EC2 instances: read the source, stop it and start it again, each waiting inside the activity. */
import type { EC2Client, Instance } from '@aws-sdk/client-ec2';
import {
  DescribeInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { Context } from '@temporalio/activity';
import type { AwsTarget, InstanceState } from '../contracts';
import { FailureType } from '../contracts';
import { isNotFound, notVisibleYet, withinWindow } from './consistency';
import type { ActivityDeps } from './deps';
import { aws, awsErrorCode, failure, isAwsCode, rethrowAws } from './errors';
import type { InstanceRead } from './instance-reads';
import { instanceReadsOf } from './instance-reads';
import type { PollPolicy, WaitSpec } from './waiting';
import { waitUntil } from './waiting';

export interface InstanceRef {
  target: AwsTarget;
  instanceId: string;
}

export interface InstanceInfo {
  instanceId: string;
  state: InstanceState;
  rootDeviceType: 'ebs' | 'instance-store';
  availabilityZone?: string;
  instanceType?: string;
  name?: string;
}

export interface InstanceWaitInput extends InstanceRef {
  /** Epoch ms; the wait fails after it, across every retry of the activity. */
  deadline: number;
}

export interface InstanceStateReached {
  instanceId: string;
  state: InstanceState;
  /** When this activity saw the state (epoch ms, the worker's clock). */
  at: number;
  /** When this activity asked EC2 for the change, or first saw it under way (same clock as `at`). */
  actedAt?: number;
  awsCalls: number;
}

function where(t: AwsTarget): string {
  return `region ${t.region}${t.accountId ? `, account ${t.accountId}` : ''}`;
}

export async function readInstance(ec2: EC2Client, ref: InstanceRef): Promise<Instance> {
  let out;
  try {
    out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [ref.instanceId] }));
  } catch (err) {
    if (isAwsCode(err, 'InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed'))
      throw notFound(ref, `${awsErrorCode(err)}: ${err instanceof Error ? err.message : String(err)}`);
    rethrowAws(err, `reading instance ${ref.instanceId}`);
  }
  const instance = out.Reservations?.flatMap((r) => r.Instances ?? []).find(
    (i) => i.InstanceId === ref.instanceId,
  );
  if (!instance) throw notFound(ref);
  return instance;
}

/**
 * The instance, or undefined when EC2 does not know it (any more, or not yet: within the consistency
 * window the caller decides what that means).
 */
export async function findInstance(ec2: EC2Client, instanceId: string): Promise<Instance | undefined> {
  try {
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
  } catch (err) {
    if (isAwsCode(err, 'InvalidInstanceID.NotFound')) return undefined;
    rethrowAws(err, `reading instance ${instanceId}`);
  }
}

/** A terminate compensation's answer when no instance was there to terminate. */
export interface NoInstanceToTerminate {
  instanceId?: string;
  terminated: false;
  note: string;
}

/** What a run's terminate compensation looks for, and how it names it in its answers. */
export interface InstanceToTerminate {
  /** The id the run recorded, when RunInstances answered. */
  instanceId?: string;
  /** The run's instance by its tags, for when RunInstances may have launched one without answering. */
  byTags: () => Promise<Instance | undefined>;
  /** Names the instance looked up by tags, as in "the builder instance of run r1". */
  byTagsName: string;
  /** The note when nothing carries the run's tags after the window, as in "no builder ... was found". */
  noneByTags: string;
}

/**
 * Finds the instance a terminate compensation acts on: by its recorded id, else by the run's tags.
 * RunInstances answered (or may have): within the consistency window its instance can be invisible
 * to DescribeInstances, by id and even more so by tag filter, so that is retried (NotVisibleYet),
 * never taken as "none launched". After the window, `none` is the answer to give.
 */
export async function findInstanceToTerminate(
  deps: Pick<ActivityDeps, 'clock' | 'consistencyWindowMs'>,
  ec2: EC2Client,
  wanted: InstanceToTerminate,
): Promise<{ instance: Instance; instanceId: string } | { none: NoInstanceToTerminate }> {
  const { instanceId } = wanted;
  const found = instanceId ? await findInstance(ec2, instanceId) : await wanted.byTags();
  if (found?.InstanceId) return { instance: found, instanceId: found.InstanceId };
  if (withinWindow(deps))
    throw notVisibleYet(deps, instanceId ? `instance ${instanceId}` : wanted.byTagsName);
  return {
    none: instanceId
      ? {
          instanceId,
          terminated: false,
          note: `instance ${instanceId} was not found after the consistency window: already gone`,
        }
      : { terminated: false, note: wanted.noneByTags },
  };
}

/**
 * Terminates one instance the caller has proven to be its own. Seen a moment ago but unknown to
 * TerminateInstances now is another endpoint's lag within the window: retried, not taken as gone.
 */
export async function terminateOwnInstance(
  deps: Pick<ActivityDeps, 'clock' | 'consistencyWindowMs'>,
  ec2: EC2Client,
  instanceId: string,
  what: string,
): Promise<void> {
  try {
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  } catch (err) {
    if (isNotFound(err, 'instance') && withinWindow(deps))
      throw notVisibleYet(deps, `instance ${instanceId} (to terminate)`, err);
    rethrowAws(err, `terminating ${what}`);
  }
}

/** `aws`: AWS's own code and message, when AWS said so (rather than an empty answer). */
function notFound(ref: InstanceRef, aws?: string) {
  return failure(
    FailureType.InstanceNotFound,
    `instance ${ref.instanceId} was not found in ${where(ref.target)}; check the id, region and account` +
      (aws ? ` (AWS: ${aws})` : ''),
  );
}

function stateOf(i: Instance): InstanceState {
  return i.State?.Name ?? 'pending';
}

function refuseGone(ref: InstanceRef, state: InstanceState): void {
  if (state === 'terminated' || state === 'shutting-down')
    throw failure(
      FailureType.InstanceStateUnsupported,
      `instance ${ref.instanceId} is ${state}; it cannot be imaged or restarted`,
    );
}

/**
 * Instances change state in seconds to a minute, and the instance is down while we wait: poll
 * sooner and cap lower than for images (never slower than the worker's policy), so downtime is
 * not stretched by a poll interval. The first look after asking for the change is at once
 * (`lookAgainAtOnce`), then this schedule.
 */
export function instancePolicy(deps: ActivityDeps): Partial<PollPolicy> {
  return {
    firstIntervalMs: Math.min(deps.policy.firstIntervalMs, 500),
    maxIntervalMs: Math.min(deps.policy.maxIntervalMs, 5_000),
  };
}

/**
 * One read through the worker's merged reader (instance-reads.ts), given up when the activity is
 * cancelled (its read leaves the batch at once); an AWS error is rethrown as this activity's failure.
 */
export async function mergedRead<T>(
  ask: (signal: AbortSignal) => Promise<InstanceRead<T>>,
  doing: string,
): Promise<InstanceRead<T>> {
  try {
    return await ask(Context.current().cancellationSignal);
  } catch (err) {
    rethrowAws(err, doing);
  }
}

/**
 * A wait's poll of its instance's state, through the worker's merged reader (instance-reads.ts):
 * one DescribeInstances for many waits in the account-region. An id EC2 does not know fails as
 * `readInstance` does (the waits act on an instance the caller named or saw), and the wait's
 * cancellation takes it out of the batch at once.
 */
export async function pollInstanceState(deps: ActivityDeps, ref: InstanceRef): Promise<InstanceState> {
  const read = await mergedRead(
    (signal) => instanceReadsOf(deps).describe(ref.target, ref.instanceId, signal),
    `reading instance ${ref.instanceId}`,
  );
  if ('absent' in read) throw notFound(ref, read.aws);
  return stateOf(read.found);
}

/**
 * The state right after asking EC2 for a change: the first poll of the wait is at once, not one
 * interval later, since the change can land at once (a sandbox, an instance already on its way).
 * EC2 may still show the old state for a moment: the wait's `done` only ever takes the target state.
 */
export async function lookAgainAtOnce(deps: ActivityDeps, ref: InstanceRef): Promise<InstanceState> {
  const state = await pollInstanceState(deps, ref);
  refuseGone(ref, state);
  return state;
}

/** The rest of a stop's or start's wait: until the instance is in `target`, by the input's deadline. */
function untilState(
  deps: ActivityDeps,
  input: InstanceWaitInput,
  target: 'stopped' | 'running',
): Omit<WaitSpec<string, { instanceState: string }>, 'what' | 'poll'> {
  return {
    policy: instancePolicy(deps),
    done: (state) => state === target,
    progress: (state) => ({ instanceState: state }),
    progressCalls: 0,
    deadline: input.deadline,
    maxCalls: 500,
  };
}

export function instanceActivities(deps: ActivityDeps) {
  return {
    async describeInstance(ref: InstanceRef): Promise<InstanceInfo> {
      const ec2 = await deps.aws.ec2(ref.target);
      const i = await readInstance(ec2, ref);
      const name = i.Tags?.find((t) => t.Key === 'Name')?.Value;
      return {
        instanceId: ref.instanceId,
        state: stateOf(i),
        rootDeviceType: i.RootDeviceType === 'instance-store' ? 'instance-store' : 'ebs',
        ...(i.Placement?.AvailabilityZone ? { availabilityZone: i.Placement.AvailabilityZone } : {}),
        ...(i.InstanceType ? { instanceType: i.InstanceType } : {}),
        ...(name ? { name } : {}),
      };
    },

    /** Stops the instance and waits until it is `stopped`. Safe to repeat: a stopped instance is left alone. */
    async stopInstance(input: InstanceWaitInput): Promise<InstanceStateReached> {
      const ec2 = await deps.aws.ec2(input.target);
      let stopSent = false;
      let actedAt: number | undefined;
      // DescribeInstances asked besides the polls: the look at once after StopInstances.
      let looks = 0;
      const out = await waitUntil(deps, {
        what: `instance ${input.instanceId} to stop`,
        poll: async () => {
          const state = await pollInstanceState(deps, input);
          refuseGone(input, state);
          if (state === 'stopping') actedAt ??= deps.clock.now();
          if ((state === 'running' || state === 'pending') && !stopSent) {
            actedAt = deps.clock.now();
            const out = await aws(`stopping instance ${input.instanceId}`, () =>
              ec2.send(new StopInstancesCommand({ InstanceIds: [input.instanceId] })),
            );
            stopSent = true;
            if (out.StoppingInstances?.[0]?.CurrentState?.Name === 'stopped') return 'stopped';
            looks += 1;
            return lookAgainAtOnce(deps, input);
          }
          return state;
        },
        ...untilState(deps, input, 'stopped'),
      });
      return {
        instanceId: input.instanceId,
        state: 'stopped',
        at: deps.clock.now(),
        ...(actedAt !== undefined ? { actedAt } : {}),
        awsCalls: out.calls + looks,
      };
    },

    /**
     * Starts the instance and waits until it is `running`. Safe to repeat and safe as a
     * compensation: a running instance is left alone; a stopping one is started once it has stopped.
     */
    async startInstance(input: InstanceWaitInput): Promise<InstanceStateReached> {
      const ec2 = await deps.aws.ec2(input.target);
      let looks = 0;
      const out = await waitUntil(deps, {
        what: `instance ${input.instanceId} to run`,
        poll: async () => {
          const state = await pollInstanceState(deps, input);
          refuseGone(input, state);
          if (state === 'stopped') {
            const out = await aws(`starting instance ${input.instanceId}`, () =>
              ec2.send(new StartInstancesCommand({ InstanceIds: [input.instanceId] })),
            );
            if (out.StartingInstances?.[0]?.CurrentState?.Name === 'running') return 'running';
            looks += 1;
            return lookAgainAtOnce(deps, input);
          }
          return state;
        },
        ...untilState(deps, input, 'running'),
      });
      return {
        instanceId: input.instanceId,
        state: 'running',
        at: deps.clock.now(),
        awsCalls: out.calls + looks,
      };
    },
  };
}
