/**
 * A fake EC2 for instance waits at fleet scale (tests and `npm run bench:instance-waits`): instances
 * that stop, start and pass their status checks on a clock, answered by DescribeInstances and
 * DescribeInstanceStatus as EC2 does (a list naming one unknown id fails whole with
 * InvalidInstanceID.NotFound; DescribeInstanceStatus refuses more than 100 ids), with every call
 * recorded (time, action, target, ids) so a test can count calls per second and per lane.
 */
import type { EC2Client, Instance, InstanceStatus } from '@aws-sdk/client-ec2';
import {
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { AwsClients } from '../activities/aws';
import type { AwsTarget } from '../contracts';

type State = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

interface FakeInstance {
  id: string;
  /** The state it is settling into, and when it gets there (before: `from`). */
  from: State;
  to: State;
  at: number;
  /** Status checks pass this long after it runs. */
  checksAfterMs: number;
  /** DescribeInstances/Status do not know it before this (eventual consistency of a launch). */
  visibleAt: number;
}

export interface FakeCall {
  at: number;
  action: string;
  target: string;
  ids: string[];
}

export interface FakeInstanceEc2Options {
  now: () => number;
  /** Virtual (or real) latency of each call; none by default. */
  sleep?: (ms: number) => Promise<void>;
  latencyMs?: (ids: number) => number;
  /** How long a stop, a start and a termination take (default 30 s, 20 s, 10 s). */
  transitionMs?: Partial<Record<'stop' | 'start' | 'terminate', (id: string) => number>>;
  /** Name the unknown ids in the NotFound message, as EC2 does (false: a message naming none). */
  namesUnknownIds?: boolean;
  /** The most ids DescribeInstances takes (EC2 documents none; a test can check the reader's). */
  maxDescribeIds?: number;
}

export function awsError(code: string, message: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), { name: code, Code: code, $metadata: { httpStatusCode } });
}

export class FakeInstanceEc2 {
  readonly calls: FakeCall[] = [];
  private readonly instances = new Map<string, FakeInstance>();
  /** Errors the next calls answer with, in order, whatever they ask (throttling, 5xx). */
  private readonly faults: Error[] = [];

  constructor(private readonly opts: FakeInstanceEc2Options) {}

  /** An instance in `state`; visible to Describe* after `invisibleForMs`. */
  add(
    id: string,
    state: State = 'running',
    opts: { invisibleForMs?: number; checksAfterMs?: number } = {},
  ): void {
    const now = this.opts.now();
    this.instances.set(id, {
      id,
      from: state,
      to: state,
      at: now,
      checksAfterMs: opts.checksAfterMs ?? 0,
      visibleAt: now + (opts.invisibleForMs ?? 0),
    });
  }

  failNext(...errors: Error[]): void {
    this.faults.push(...errors);
  }

  /** The instance's state now. */
  state(id: string): State | undefined {
    const i = this.instances.get(id);
    return i ? this.stateOf(i, this.opts.now()) : undefined;
  }

  /** When the instance reached its last target state (a stop's `stopped`), for lag figures. */
  settledAt(id: string): number | undefined {
    return this.instances.get(id)?.at;
  }

  count(action: string, target?: AwsTarget): number {
    const key = target ? keyOf(target) : undefined;
    return this.calls.filter((c) => c.action === action && (key === undefined || c.target === key)).length;
  }

  /** The most calls of `actions` within any window of `windowMs` (ends inclusive of starts). */
  peak(actions: string[], windowMs: number): number {
    const at = this.calls.filter((c) => actions.includes(c.action)).map((c) => c.at);
    let best = 0;
    for (let i = 0, j = 0; i < at.length; i++) {
      while ((at[i] ?? 0) - (at[j] ?? 0) >= windowMs) j++;
      best = Math.max(best, i - j + 1);
    }
    return best;
  }

  /** The activities' AWS dependency: each (account, region) gets a client that records its target. */
  clients(): AwsClients {
    return {
      ec2: (target) =>
        Promise.resolve({ send: (c: unknown) => this.send(target, c) } as unknown as EC2Client),
      kms: () => Promise.reject(new Error('the fake instance EC2 answers EC2 only')),
      destroy: () => undefined,
    };
  }

  private stateOf(i: FakeInstance, now: number): State {
    return now >= i.at ? i.to : i.from;
  }

  private transition(
    id: string,
    via: State,
    to: State,
    kind: 'stop' | 'start' | 'terminate',
    ms: number,
  ): void {
    const i = this.instances.get(id);
    if (!i) throw awsError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    const now = this.opts.now();
    const state = this.stateOf(i, now);
    if (state === to || state === via) return;
    const took = this.opts.transitionMs?.[kind]?.(id) ?? ms;
    Object.assign(i, { from: via, to, at: now + took });
  }

  private known(ids: string[]): FakeInstance[] {
    const now = this.opts.now();
    const unknown = ids.filter((id) => {
      const i = this.instances.get(id);
      return !i || now < i.visibleAt;
    });
    if (unknown.length > 0)
      throw awsError(
        'InvalidInstanceID.NotFound',
        this.opts.namesUnknownIds === false
          ? 'Some instance IDs do not exist'
          : unknown.length === 1
            ? `The instance ID '${unknown[0] ?? ''}' does not exist`
            : `The instance IDs '${unknown.join(', ')}' do not exist`,
      );
    return ids.flatMap((id) => this.instances.get(id) ?? []);
  }

  private async send(target: AwsTarget, command: unknown): Promise<unknown> {
    const action =
      typeof command === 'object' && command !== null ? command.constructor.name : typeof command;
    const ids = idsOf(command);
    this.calls.push({
      at: this.opts.now(),
      action: action.replace(/Command$/, ''),
      target: keyOf(target),
      ids,
    });
    const latency = this.opts.latencyMs?.(ids.length) ?? 0;
    if (latency > 0 && this.opts.sleep) await this.opts.sleep(latency);
    else await Promise.resolve();
    const fault = this.faults.shift();
    if (fault) throw fault;
    const now = this.opts.now();
    if (command instanceof DescribeInstancesCommand) {
      if (ids.length > (this.opts.maxDescribeIds ?? Infinity))
        throw awsError('InvalidParameterValue', `too many instance ids: ${ids.length}`);
      const found = this.known(ids);
      return {
        Reservations: [
          {
            Instances: found.map((i): Instance => ({
              InstanceId: i.id,
              State: { Name: this.stateOf(i, now) },
            })),
          },
        ],
      };
    }
    if (command instanceof DescribeInstanceStatusCommand) {
      if (ids.length > 100)
        throw awsError(
          'InvalidParameterValue',
          `The maximum number of instance IDs is 100, not ${ids.length}`,
        );
      return {
        InstanceStatuses: this.known(ids).map((i): InstanceStatus => {
          const state = this.stateOf(i, now);
          const checks =
            state !== 'running' ? 'not-applicable' : now >= i.at + i.checksAfterMs ? 'ok' : 'initializing';
          return {
            InstanceId: i.id,
            InstanceState: { Name: state },
            SystemStatus: { Status: checks },
            InstanceStatus: { Status: checks },
          };
        }),
      };
    }
    if (command instanceof StopInstancesCommand) {
      for (const id of ids) this.transition(id, 'stopping', 'stopped', 'stop', 30_000);
      return {
        StoppingInstances: ids.map((id) => ({ InstanceId: id, CurrentState: { Name: this.state(id) } })),
      };
    }
    if (command instanceof StartInstancesCommand) {
      for (const id of ids) this.transition(id, 'pending', 'running', 'start', 20_000);
      return {
        StartingInstances: ids.map((id) => ({ InstanceId: id, CurrentState: { Name: this.state(id) } })),
      };
    }
    if (command instanceof TerminateInstancesCommand) {
      for (const id of ids) this.transition(id, 'shutting-down', 'terminated', 'terminate', 10_000);
      return {
        TerminatingInstances: ids.map((id) => ({ InstanceId: id, CurrentState: { Name: this.state(id) } })),
      };
    }
    throw new Error(`the fake instance EC2 does not answer ${action}`);
  }
}

function keyOf(t: AwsTarget): string {
  return `${t.accountId ?? 'self'}/${t.region}`;
}

function idsOf(command: unknown): string[] {
  if (typeof command !== 'object' || command === null || !('input' in command)) return [];
  const input = (command as { input: { InstanceIds?: string[] } }).input;
  return input.InstanceIds ?? [];
}
