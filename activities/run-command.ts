/**
 * Running a command on an instance over SSM Run Command: send it once, wait for its outcome, cancel
 * it, and wait for the instance's SSM agent to come online. Shared by the app-consistent image mode
 * (freeze/thaw scripts) and image recipes (build and test steps).
 *
 * SendCommand takes no ClientToken, and a 5xx after AWS applied it (or a worker lost between the send
 * and the heartbeat) must not run a script twice: each send carries the step's idempotency key in its
 * Comment, and before sending, the heartbeat of an earlier attempt and then ListCommands for the
 * instance are searched for a command with that key. Outcomes are returned, never thrown, so the
 * workflow decides what a failed or timed-out script means for its run.
 */
import { createHash } from 'node:crypto';
import type { Command, GetCommandInvocationCommandOutput, SSMClient } from '@aws-sdk/client-ssm';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AwsTarget } from '../contracts';
import type { CommandStatus } from '../contracts/common';
import { FailureType } from '../contracts';
import { notVisibleYet, withinWindow } from './consistency';
import type { ActivityDeps } from './deps';
import { optionalClient } from './aws';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { sdk } from './sdk-modules';
import { waitUntil } from './waiting';

export interface SendCommandInput {
  target: AwsTarget;
  instanceId: string;
  /** 'AWS-RunShellScript' | 'AWS-RunPowerShellScript' | any SSM document (name or ARN). */
  documentName: string;
  parameters: Record<string, string[]>;
  /** Execution timeout on the instance (the document's `executionTimeout` is the caller's business). */
  timeoutSeconds: number;
  /**
   * Unique per workflow step, the same for every attempt (e.g. `${workflowId}/${step}`); written into
   * the command's Comment so a retry finds the command an earlier attempt sent.
   */
  idempotencyKey: string;
  outputS3?: { bucket: string; keyPrefix?: string };
  cloudWatchLogGroup?: string;
}

export interface SentCommand {
  commandId: string;
  /** True when an earlier attempt had already sent it (found by heartbeat or by ListCommands). */
  reused: boolean;
}

/** One place for SSM's command statuses: the build and app-consistent step outcomes name them too. */
export type { CommandStatus } from '../contracts/common';

export interface CommandOutcome {
  commandId: string;
  instanceId: string;
  status: CommandStatus;
  /** The script's exit code (absent while SSM reports -1, i.e. it never ran to an end). */
  exitCode?: number;
  /** The last lines (at most TAIL_LINES) of the output SSM keeps inline (24,000 characters at most). */
  stdoutTail: string;
  stderrTail: string;
  startedAt?: string;
  endedAt?: string;
  /** Where the full output went, when the command wrote it to S3. */
  outputUrl?: string;
}

export interface WaitForCommandInput {
  target: AwsTarget;
  instanceId: string;
  commandId: string;
  /** Epoch ms, shared by every attempt. */
  deadline: number;
}

export interface AgentOnlineInput {
  target: AwsTarget;
  instanceId: string;
  deadline: number;
}

export interface CancelCommandInput {
  target: AwsTarget;
  instanceId: string;
  commandId: string;
}

export interface CancelledCommand {
  cancelled: boolean;
  /** Set when the command had already ended, so there was nothing to cancel. */
  alreadyEnded?: CommandStatus;
}

/** Lines of stdout/stderr kept in an outcome: enough for a script's own report, small in history. */
export const TAIL_LINES = 40;
/** SSM's limit on a command's Comment. */
const COMMENT_MAX = 100;
const COMMENT_PREFIX = 'amiflow ';
/** ListCommands pages searched for an earlier send (50 commands a page: the instance's last 500). */
const LIST_PAGES = 10;

/**
 * The Comment carrying the key. Keys longer than the Comment allows keep a readable head and a
 * hash of the whole key, so two long keys with one head still differ.
 */
export function commandComment(idempotencyKey: string): string {
  const plain = `${COMMENT_PREFIX}${idempotencyKey}`;
  if (plain.length <= COMMENT_MAX) return plain;
  const hash = createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 16);
  return `${plain.slice(0, COMMENT_MAX - hash.length - 1)}#${hash}`;
}

export function tail(text: string | undefined, lines = TAIL_LINES): string {
  if (!text) return '';
  const all = text.replace(/\n$/, '').split('\n');
  return all.slice(-lines).join('\n');
}

/** Invocation states that are still on their way to an outcome. */
const STILL_RUNNING = new Set(['Pending', 'InProgress', 'Delayed', 'Cancelling']);
/** StatusDetails that name an outcome more precisely than Status does. */
const DETAILED: ReadonlySet<string> = new Set<CommandStatus>([
  'Undeliverable',
  'Terminated',
  'DeliveryTimedOut',
  'ExecutionTimedOut',
]);

export function commandStatusOf(
  status: string | undefined,
  details: string | undefined,
): CommandStatus | undefined {
  if (status === undefined || STILL_RUNNING.has(status)) return undefined;
  if (details !== undefined && DETAILED.has(details)) return details as CommandStatus;
  switch (status) {
    case 'Success':
    case 'Cancelled':
    case 'TimedOut':
    case 'Failed':
      return status;
    default:
      // A status newer than this code: not success, and not a state to keep waiting in forever.
      return 'Failed';
  }
}

function outcomeOf(
  input: WaitForCommandInput,
  out: GetCommandInvocationCommandOutput,
  status: CommandStatus,
) {
  const outcome: CommandOutcome = {
    commandId: input.commandId,
    instanceId: input.instanceId,
    status,
    stdoutTail: tail(out.StandardOutputContent),
    stderrTail: tail(out.StandardErrorContent),
  };
  if (out.ResponseCode !== undefined && out.ResponseCode >= 0) outcome.exitCode = out.ResponseCode;
  if (out.ExecutionStartDateTime) outcome.startedAt = out.ExecutionStartDateTime;
  if (out.ExecutionEndDateTime) outcome.endedAt = out.ExecutionEndDateTime;
  if (out.StandardOutputUrl) outcome.outputUrl = out.StandardOutputUrl;
  return outcome;
}

async function ssmOf(deps: ActivityDeps, target: AwsTarget): Promise<SSMClient> {
  return optionalClient(deps.aws, 'ssm', target, 'running commands on instances needs one');
}

/** The command an earlier attempt sent with this Comment to this instance, if SSM lists it. */
async function findEarlierSend(
  ssm: SSMClient,
  instanceId: string,
  comment: string,
): Promise<Command | undefined> {
  const { ListCommandsCommand } = await sdk.ssm();
  let nextToken: string | undefined;
  for (let page = 0; page < LIST_PAGES; page += 1) {
    const out = await aws(`listing SSM commands sent to ${instanceId}`, () =>
      ssm.send(
        new ListCommandsCommand({
          InstanceId: instanceId,
          MaxResults: 50,
          ...(nextToken ? { NextToken: nextToken } : {}),
        }),
      ),
    );
    const found = out.Commands?.find((c) => c.Comment === comment && c.CommandId);
    if (found) return found;
    nextToken = out.NextToken;
    if (!nextToken) return undefined;
  }
  return undefined;
}

/** What sendCommand records in its heartbeat the moment SSM answered, read back by a retry. */
interface SendHeartbeat {
  sentCommandId: string;
  comment: string;
}

function earlierHeartbeat(comment: string): string | undefined {
  const details = Context.current().info.heartbeatDetails as Partial<SendHeartbeat> | undefined;
  return details?.comment === comment ? details.sentCommandId : undefined;
}

async function send(ssm: SSMClient, input: SendCommandInput, comment: string): Promise<string> {
  const { SendCommandCommand } = await sdk.ssm();
  try {
    const out = await ssm.send(
      new SendCommandCommand({
        InstanceIds: [input.instanceId],
        DocumentName: input.documentName,
        Parameters: input.parameters,
        TimeoutSeconds: input.timeoutSeconds,
        Comment: comment,
        ...(input.outputS3
          ? {
              OutputS3BucketName: input.outputS3.bucket,
              ...(input.outputS3.keyPrefix ? { OutputS3KeyPrefix: input.outputS3.keyPrefix } : {}),
            }
          : {}),
        ...(input.cloudWatchLogGroup
          ? {
              CloudWatchOutputConfig: {
                CloudWatchOutputEnabled: true,
                CloudWatchLogGroupName: input.cloudWatchLogGroup,
              },
            }
          : {}),
      }),
    );
    const id = out.Command?.CommandId;
    if (!id) throw new Error(`SendCommand to ${input.instanceId} answered without a command id`);
    return id;
  } catch (err) {
    // SSM's answer for an instance it does not manage (no agent, no instance profile, stopped):
    // a clear refusal beats "InvalidInstanceId", and no retry will make the agent appear.
    if (isAwsCode(err, 'InvalidInstanceId'))
      throw ApplicationFailure.create({
        type: FailureType.AwsPolicyRefused,
        nonRetryable: true,
        message:
          `SSM cannot run ${input.documentName} on ${input.instanceId}: the instance is not managed by SSM ` +
          `(the agent is not running or not online, the instance has no instance profile allowing SSM, or it is not running)`,
        details: [{ awsCode: 'InvalidInstanceId' }],
        cause: err instanceof Error ? err : undefined,
      });
    rethrowAws(err, `sending ${input.documentName} to ${input.instanceId} over SSM Run Command`);
  }
}

async function readInvocation(
  deps: ActivityDeps,
  ssm: SSMClient,
  input: WaitForCommandInput,
): Promise<GetCommandInvocationCommandOutput | undefined> {
  const { GetCommandInvocationCommand } = await sdk.ssm();
  try {
    return await ssm.send(
      new GetCommandInvocationCommand({ CommandId: input.commandId, InstanceId: input.instanceId }),
    );
  } catch (err) {
    // SendCommand answered before the invocation exists: not visible yet, for the consistency window.
    if (isAwsCode(err, 'InvocationDoesNotExist')) {
      if (withinWindow(deps)) return undefined;
      throw failure(
        FailureType.AwsNotFound,
        `SSM shows no invocation of command ${input.commandId} on ${input.instanceId}, past the consistency window`,
      );
    }
    rethrowAws(err, `reading SSM command ${input.commandId} on ${input.instanceId}`);
  }
}

export function runCommandActivities(deps: ActivityDeps) {
  return {
    /**
     * Sends a document to one instance, at most once per idempotency key: an earlier attempt's
     * command (from its heartbeat, else from ListCommands) is returned instead of sending again.
     */
    async sendCommand(input: SendCommandInput): Promise<SentCommand> {
      const ssm = await ssmOf(deps, input.target);
      const comment = commandComment(input.idempotencyKey);
      const fromHeartbeat = earlierHeartbeat(comment);
      if (fromHeartbeat) return { commandId: fromHeartbeat, reused: true };
      const earlier = await findEarlierSend(ssm, input.instanceId, comment);
      if (earlier?.CommandId) return { commandId: earlier.CommandId, reused: true };
      const commandId = await send(ssm, input, comment);
      // Recorded at once: a worker lost before returning leaves the id to the next attempt.
      const hb: SendHeartbeat = { sentCommandId: commandId, comment };
      Context.current().heartbeat(hb);
      return { commandId, reused: false };
    },

    /**
     * Waits for the command's invocation on the instance to end, heartbeating. Terminal states are
     * returned, not thrown: a script that failed is an answer for the workflow to act on.
     */
    async waitForCommand(input: WaitForCommandInput): Promise<CommandOutcome> {
      const ssm = await ssmOf(deps, input.target);
      const out = await waitUntil(deps, {
        what: `SSM command ${input.commandId} on ${input.instanceId} to finish`,
        poll: () => readInvocation(deps, ssm, input),
        done: (s) => commandStatusOf(s?.Status, s?.StatusDetails) !== undefined,
        progress: (s) => ({ status: s?.Status ?? 'not visible yet', details: s?.StatusDetails ?? '' }),
        progressCalls: 0,
        // Scripts of seconds (a freeze) should not wait for a 2 s first poll and 11.5 s backoff.
        policy: { firstIntervalMs: 500, maxIntervalMs: 5_000 },
        deadline: input.deadline,
        maxCalls: 2_000,
      });
      const invocation = out.state;
      const status = commandStatusOf(invocation?.Status, invocation?.StatusDetails);
      if (!invocation || !status) throw new Error('waitUntil returned before the command ended');
      return outcomeOf(input, invocation, status);
    },

    /**
     * Compensation: cancels the command on the instance unless it has already ended. Safe to repeat;
     * an unknown command id past the consistency window counts as nothing to cancel.
     */
    async cancelCommand(input: CancelCommandInput): Promise<CancelledCommand> {
      const ssm = await ssmOf(deps, input.target);
      const { CancelCommandCommand, GetCommandInvocationCommand } = await sdk.ssm();
      let now: GetCommandInvocationCommandOutput | undefined;
      try {
        now = await ssm.send(
          new GetCommandInvocationCommand({ CommandId: input.commandId, InstanceId: input.instanceId }),
        );
      } catch (err) {
        if (!isAwsCode(err, 'InvocationDoesNotExist', 'InvalidCommandId'))
          rethrowAws(err, `reading SSM command ${input.commandId} on ${input.instanceId}`);
      }
      const ended = commandStatusOf(now?.Status, now?.StatusDetails);
      if (ended) return { cancelled: false, alreadyEnded: ended };
      try {
        await ssm.send(
          new CancelCommandCommand({ CommandId: input.commandId, InstanceIds: [input.instanceId] }),
        );
        return { cancelled: true };
      } catch (err) {
        if (isAwsCode(err, 'InvalidCommandId', 'InvalidInstanceId')) {
          if (withinWindow(deps))
            throw notVisibleYet(deps, `SSM command ${input.commandId} on ${input.instanceId}`, err);
          return { cancelled: false };
        }
        rethrowAws(err, `cancelling SSM command ${input.commandId} on ${input.instanceId}`);
      }
    },

    /** Waits until the instance's SSM agent pings Online (a fresh instance needs a minute or two). */
    async waitForAgentOnline(input: AgentOnlineInput): Promise<{ pingStatus: string; platform?: string }> {
      const ssm = await ssmOf(deps, input.target);
      const { DescribeInstanceInformationCommand } = await sdk.ssm();
      const read = async () => {
        const out = await aws(`reading SSM agent status of ${input.instanceId}`, () =>
          ssm.send(
            new DescribeInstanceInformationCommand({
              Filters: [{ Key: 'InstanceIds', Values: [input.instanceId] }],
            }),
          ),
        );
        return out.InstanceInformationList?.find((i) => i.InstanceId === input.instanceId);
      };
      try {
        const out = await waitUntil(deps, {
          what: `the SSM agent on ${input.instanceId} to be online`,
          poll: read,
          done: (info) => info?.PingStatus === 'Online',
          progress: (info) => ({ pingStatus: info?.PingStatus ?? 'not registered' }),
          progressCalls: 0,
          policy: { firstIntervalMs: 2_000, maxIntervalMs: 10_000 },
          deadline: input.deadline,
          maxCalls: 500,
        });
        return {
          pingStatus: out.state?.PingStatus ?? 'Online',
          ...(out.state?.PlatformType ? { platform: out.state.PlatformType } : {}),
        };
      } catch (err) {
        if (err instanceof ApplicationFailure && err.type === FailureType.WaitTimedOut)
          throw failure(
            FailureType.WaitTimedOut,
            `agent not online: the SSM agent on ${input.instanceId} did not report Online by ` +
              `${new Date(input.deadline).toISOString()} (check the instance profile allows SSM and the instance can reach the SSM endpoints)`,
          );
        throw err;
      }
    },
  };
}
