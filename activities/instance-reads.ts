/**
 * One reader per worker for the instance waits' polls (issue 13, "the other long waits"). Each wait
 * (`stopInstance`, `startInstance`, `waitForInstanceReady`, `terminateSourceInstance`) stays a
 * heartbeating activity with its own schedule, deadline and cancellation, but asks this reader for
 * its instance's state instead of calling EC2 itself. Requests for one account-region that arrive
 * while that lane waits for its call budget or has a call in flight are merged into one
 * DescribeInstances (up to 200 ids) or DescribeInstanceStatus (up to 100 ids, EC2's maximum) call.
 *
 * Why: each wait polling its own instance makes 1,000 concurrent stops in one account-region (a
 * `stop`-mode backup of a fleet) ~200 DescribeInstances calls a second (instance waits poll every
 * 5 s at most), ten times EC2's 20/s refill there, and the throttling slows every other amiflow call
 * in that account-region. Through the reader they cost at most `callsPerSecond` calls a second
 * (default 2), however many wait.
 *
 * The budget is a token bucket per account-region: a read that finds its lane idle goes at once
 * (a lone wait's polls, and its look right after asking EC2 for the change, are never held back),
 * reads that find it busy wait for the bucket, so a busy lane spends `callsPerSecond`. When the lane cannot keep up (beyond ~callsPerSecond × 200 ids × 5 s ≈
 * 2,000 stop waits), a request is never held more than `maxQueueMs`: the lane overdraws the budget
 * rather than let a wait's poll outlast the gap its heartbeats allow (48 s of a 1-minute timeout).
 *
 * EC2 semantics kept per caller: DescribeInstances/DescribeInstanceStatus with a list of ids fails
 * entirely with InvalidInstanceID.NotFound (or .Malformed) when any one id is unknown, typically a
 * just-launched instance not visible yet. The reader answers the ids EC2's message names as absent
 * (with AWS's words), asks again for the rest, and splits the batch in halves when the message names
 * none of them; each caller decides what absent means (a bad id for a stop, "not visible yet" for a
 * new instance), exactly as when it polled alone. A throttled or failed (5xx, network) merged call is
 * retried in the lane with backoff, so one error does not fail every wait in the batch; a permanent
 * error (AccessDenied) is every waiter's answer at once.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { EC2Client, Instance, InstanceStatus } from '@aws-sdk/client-ec2';
import { DescribeInstanceStatusCommand, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { CancelledFailure } from '@temporalio/common';
import type { AwsTarget } from '../contracts';
import type { AwsClients } from './aws';
import type { ActivityDeps } from './deps';
import { awsErrorCode, classifyAwsError, isAwsCode } from './errors';
import { activityClock } from './waiting';

export interface InstanceReadsOptions {
  /** Calls per second per account-region a busy lane spends (DescribeInstances and Status together). */
  callsPerSecond: number;
  /** Calls a quiet lane may make at once before the rate applies. */
  burst: number;
  maxIdsPerCall: { instances: number; status: number };
  /** The longest a request waits for the budget; past it the lane overdraws (see the file comment). */
  maxQueueMs: number;
  /** A throttled or failed merged call: tries in all, and the pause after the first (doubling, capped). */
  retry: { attempts: number; firstDelayMs: number; maxDelayMs: number };
}

export const DEFAULT_INSTANCE_READS: InstanceReadsOptions = {
  // A tenth of EC2's 20/s refill: 1,000 stop waits polled every 5 s are ~200 ids a second, one
  // call's worth, twice; the image watcher's 10/s and everything else share the rest.
  callsPerSecond: 2,
  // A run's stop, its look right after, and its start's two (imageFromInstance) fit in one burst.
  burst: 5,
  // DescribeInstanceStatus accepts at most 100 ids; DescribeInstances documents no limit, and 200
  // instances keep an answer near a megabyte.
  maxIdsPerCall: { instances: 200, status: 100 },
  maxQueueMs: 5_000,
  // 0.5 + 1 + 2 + 4 s of pauses: a waiter's poll stays well inside its heartbeat gap.
  retry: { attempts: 5, firstDelayMs: 500, maxDelayMs: 8_000 },
};

/** What EC2 said about one id: the object, or that it does not show it (with AWS's words, when it said so). */
export type InstanceRead<T> = { found: T } | { absent: true; aws?: string };

export type ReadKind = 'instances' | 'status';

export interface InstanceReadsStats {
  /** Requests answered or failed (not those that left the batch cancelled). */
  requests: number;
  calls: Record<ReadKind, number>;
  /** Merged calls tried again after throttling or a transient failure. */
  retries: number;
  /** Calls made over the budget so no request waited more than maxQueueMs. */
  overdrafts: number;
  cancelled: number;
}

/** Plain timers: a lane outlives any one activity, so never an activity's own (cancellable) sleep. */
export const WALL_CLOCK = { now: () => Date.now(), sleep: (ms: number) => delay(ms) };

export interface InstanceReadsDeps {
  aws: Pick<AwsClients, 'ec2'>;
  now: () => number;
  /** Plain timer sleep: a lane outlives any one activity, so never an activity's own sleep. */
  sleep: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface InstanceReads {
  /** DescribeInstances for one id, merged with the lane's other requests. Rejects with AWS's error. */
  describe(target: AwsTarget, instanceId: string, signal?: AbortSignal): Promise<InstanceRead<Instance>>;
  /** DescribeInstanceStatus (IncludeAllInstances) for one id, merged likewise. */
  status(target: AwsTarget, instanceId: string, signal?: AbortSignal): Promise<InstanceRead<InstanceStatus>>;
  stats(): InstanceReadsStats;
}

interface Request {
  kind: ReadKind;
  id: string;
  at: number;
  settled: boolean;
  resolve: (read: InstanceRead<Instance | InstanceStatus>) => void;
  reject: (err: unknown) => void;
}

interface Lane {
  target: AwsTarget;
  pending: Request[];
  running: boolean;
  tokens: number;
  refilledAt: number;
}

const NOT_FOUND_CODES = ['InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed'];

/** The lane key: what selects the EC2 client (the account's role, the region's endpoint). */
export function laneKey(t: AwsTarget): string {
  return `${t.accountId ?? 'self'}/${t.region}`;
}

export function createInstanceReads(
  deps: InstanceReadsDeps,
  options: Partial<InstanceReadsOptions> = {},
): InstanceReads {
  return new InstanceReader(deps, { ...DEFAULT_INSTANCE_READS, ...options });
}

class InstanceReader implements InstanceReads {
  private readonly lanes = new Map<string, Lane>();
  private readonly counts: InstanceReadsStats = {
    requests: 0,
    calls: { instances: 0, status: 0 },
    retries: 0,
    overdrafts: 0,
    cancelled: 0,
  };

  constructor(
    private readonly deps: InstanceReadsDeps,
    private readonly opts: InstanceReadsOptions,
  ) {
    if (!(opts.callsPerSecond > 0)) throw new Error(`callsPerSecond must be > 0, not ${opts.callsPerSecond}`);
  }

  describe(target: AwsTarget, instanceId: string, signal?: AbortSignal): Promise<InstanceRead<Instance>> {
    return this.request(target, 'instances', instanceId, signal);
  }

  status(target: AwsTarget, instanceId: string, signal?: AbortSignal): Promise<InstanceRead<InstanceStatus>> {
    return this.request(target, 'status', instanceId, signal);
  }

  stats(): InstanceReadsStats {
    return { ...this.counts, calls: { ...this.counts.calls } };
  }

  private request(
    target: AwsTarget,
    kind: ReadKind,
    id: string,
    signal: AbortSignal | undefined,
  ): Promise<InstanceRead<Instance | InstanceStatus>> {
    if (signal?.aborted) return Promise.reject(cancelledBy(signal));
    const key = laneKey(target);
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { target, pending: [], running: false, tokens: this.opts.burst, refilledAt: this.deps.now() };
      this.lanes.set(key, lane);
    }
    const l = lane;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        // Leaves the batch: a request not yet sent is dropped; one in flight is answered to no one.
        if (req.settled) return;
        req.settled = true;
        l.pending = l.pending.filter((r) => r !== req);
        this.counts.cancelled += 1;
        reject(cancelledBy(signal));
      };
      const req: Request = {
        kind,
        id,
        at: this.deps.now(),
        settled: false,
        resolve: (read) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(read);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      l.pending.push(req);
      if (!l.running) void this.drain(l);
    });
  }

  /** The lane's loop: one call at a time, each taking whatever is pending of one kind. Never throws. */
  private async drain(lane: Lane): Promise<void> {
    lane.running = true;
    try {
      // Requests made in the same turn (a fan-out's activities starting together) share the first call.
      await Promise.resolve();
      // A lone read on an idle lane goes at once, budget or not (the bucket takes it as debt): a
      // single wait gains nothing by waiting, and waits one after another (a run's stop, then its
      // start) must not queue behind the budget. Reads that find the lane busy are paced.
      let alone = lane.pending.length === 1;
      while (lane.pending.length > 0) {
        if (alone) this.spend(lane);
        else await this.takeCall(lane, lane.pending[0]?.at ?? this.deps.now());
        alone = false;
        const batch = this.nextBatch(lane);
        if (batch.length > 0) await this.serve(lane, batch);
      }
    } catch (err) {
      // Only a bug gets here (serve settles every request); fail the waiters rather than hang them.
      for (const r of lane.pending.splice(0)) this.settle(r, { err });
    } finally {
      // The lane stays (with its bucket), so waits polling one after another cannot reset the budget.
      lane.running = false;
    }
  }

  /** The oldest request's kind, and every pending request of that kind up to the call's id limit. */
  private nextBatch(lane: Lane): Request[] {
    const first = lane.pending.find((r) => !r.settled);
    if (!first) {
      lane.pending = [];
      return [];
    }
    const max = this.opts.maxIdsPerCall[first.kind];
    const ids = new Set<string>();
    const taken: Request[] = [];
    const left: Request[] = [];
    for (const r of lane.pending) {
      if (r.settled) continue;
      if (r.kind === first.kind && (ids.has(r.id) || ids.size < max)) {
        ids.add(r.id);
        taken.push(r);
      } else left.push(r);
    }
    lane.pending = left;
    return taken;
  }

  /**
   * Waits for a call of the lane's budget. `since`: when the oldest request waiting for it arrived;
   * past maxQueueMs the call goes anyway (the bucket goes into debt, repaid at the same rate).
   */
  private async takeCall(lane: Lane, since: number): Promise<void> {
    const perMs = this.opts.callsPerSecond / 1000;
    for (;;) {
      const now = this.deps.now();
      this.refill(lane, now);
      if (lane.tokens >= 1) {
        lane.tokens -= 1;
        return;
      }
      const overdueIn = since + this.opts.maxQueueMs - now;
      if (overdueIn <= 0) {
        // Debt bounded by one burst, so a long overload cannot starve the lane after it ends.
        lane.tokens = Math.max(lane.tokens - 1, -this.opts.burst);
        this.counts.overdrafts += 1;
        return;
      }
      // Whole milliseconds: a sliver of a token would be a sleep too short to move the clock on.
      await this.deps.sleep(Math.max(1, Math.ceil(Math.min((1 - lane.tokens) / perMs, overdueIn))));
    }
  }

  private refill(lane: Lane, now: number): void {
    lane.tokens = Math.min(
      this.opts.burst,
      lane.tokens + ((now - lane.refilledAt) * this.opts.callsPerSecond) / 1000,
    );
    lane.refilledAt = now;
  }

  /** A call taken without waiting: the bucket may go into debt, bounded by one burst. */
  private spend(lane: Lane): void {
    this.refill(lane, this.deps.now());
    lane.tokens = Math.max(lane.tokens - 1, -this.opts.burst);
  }

  /** Asks EC2 about the batch's ids, retrying throttling and transient failures, and settles every request. */
  private async serve(lane: Lane, batch: Request[]): Promise<void> {
    const kind = batch[0]?.kind ?? 'instances';
    const since = Math.min(...batch.map((r) => r.at));
    let first = true;
    const onCall = async () => {
      // The loop took the first call's budget; more calls (a split, a retry) take their own.
      if (!first) await this.takeCall(lane, since);
      first = false;
      this.counts.calls[kind] += 1;
    };
    for (let attempt = 1; ; attempt++) {
      const live = batch.filter((r) => !r.settled);
      if (live.length === 0) return;
      const ids = [...new Set(live.map((r) => r.id))];
      try {
        const ec2 = await this.deps.aws.ec2(lane.target);
        const answers = await askSplitting(ids, (part) => describeIds(ec2, kind, part), onCall);
        for (const r of live) this.settle(r, { read: answers.get(r.id) ?? { absent: true } });
        return;
      } catch (err) {
        const c = classifyAwsError(err);
        const transient = c.retry && ['throttling', 'server', 'network', 'unknown'].includes(c.reason);
        if (!transient || attempt >= this.opts.retry.attempts) {
          for (const r of live) this.settle(r, { err });
          return;
        }
        this.counts.retries += 1;
        const base = Math.min(this.opts.retry.firstDelayMs * 2 ** (attempt - 1), this.opts.retry.maxDelayMs);
        // Full jitter on half the pause, so many workers' lanes throttled together do not retry in step.
        await this.deps.sleep(base / 2 + (base / 2) * (this.deps.random ?? Math.random)());
        first = false;
      }
    }
  }

  private settle(
    r: Request,
    out: { read: InstanceRead<Instance | InstanceStatus> } | { err: unknown },
  ): void {
    if (r.settled) return;
    r.settled = true;
    this.counts.requests += 1;
    if ('read' in out) r.resolve(out.read);
    else r.reject(out.err);
  }
}

function cancelledBy(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new CancelledFailure('CANCELLED');
}

/** One call for `ids` of `kind`: what EC2 showed, by id. */
async function describeIds(
  ec2: EC2Client,
  kind: ReadKind,
  ids: string[],
): Promise<Map<string, Instance | InstanceStatus>> {
  const found = new Map<string, Instance | InstanceStatus>();
  if (kind === 'instances') {
    // With InstanceIds, EC2 answers every listed instance in one page (MaxResults is refused with them).
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
    for (const i of out.Reservations?.flatMap((r) => r.Instances ?? []) ?? [])
      if (i.InstanceId) found.set(i.InstanceId, i);
  } else {
    const out = await ec2.send(
      new DescribeInstanceStatusCommand({ InstanceIds: ids, IncludeAllInstances: true }),
    );
    for (const s of out.InstanceStatuses ?? []) if (s.InstanceId) found.set(s.InstanceId, s);
  }
  return found;
}

/**
 * Calls `ask` for `ids`; when EC2 refuses the whole call because some ids are unknown, answers those
 * its message names as absent and asks again for the rest, or, when it names none of them, asks for
 * each half. k unknown ids among n cost k + 1 calls when EC2 names them, about 2k·log2(n/k) when not.
 */
export async function askSplitting<T>(
  ids: string[],
  ask: (ids: string[]) => Promise<Map<string, T>>,
  onCall: () => Promise<void>,
): Promise<Map<string, InstanceRead<T>>> {
  const answers = new Map<string, InstanceRead<T>>();
  let err: unknown;
  try {
    await onCall();
    const found = await ask(ids);
    for (const id of ids) {
      const f = found.get(id);
      answers.set(id, f !== undefined ? { found: f } : { absent: true });
    }
    return answers;
  } catch (e) {
    if (!isAwsCode(e, ...NOT_FOUND_CODES)) throw e;
    err = e;
  }
  const message = err instanceof Error ? err.message : String(err);
  const aws = `${awsErrorCode(err)}: ${message}`;
  if (ids.length === 1) return new Map([[ids[0] ?? '', { absent: true, aws }]]);
  // EC2 names the unknown ids: "The instance IDs 'i-1, i-2' do not exist", 'Invalid id: "x"'.
  const words = new Set(message.split(/[^A-Za-z0-9-]+/));
  const named = ids.filter((id) => words.has(id));
  const parts =
    named.length > 0 && named.length < ids.length
      ? [ids.filter((id) => !words.has(id))]
      : named.length === ids.length
        ? []
        : [ids.slice(0, Math.ceil(ids.length / 2)), ids.slice(Math.ceil(ids.length / 2))];
  for (const id of named) answers.set(id, { absent: true, aws });
  for (const part of parts)
    for (const [id, read] of await askSplitting(part, ask, onCall)) answers.set(id, read);
  return answers;
}

const perDeps = new WeakMap<object, InstanceReads>();

/**
 * The worker's reader (`deps.instanceReads`, built by buildWorker with the configured budget), or
 * one made once for these deps with the defaults: tests and benches that build their own deps.
 * Activity clocks sleep through the activity's context, which a lane outlives: those get timers.
 */
export function instanceReadsOf(
  deps: Pick<ActivityDeps, 'aws' | 'clock' | 'random' | 'instanceReads'>,
): InstanceReads {
  if (deps.instanceReads) return deps.instanceReads;
  let reads = perDeps.get(deps);
  if (!reads) {
    const clock = deps.clock === activityClock ? WALL_CLOCK : deps.clock;
    reads = createInstanceReads({
      aws: deps.aws,
      now: () => clock.now(),
      sleep: (ms) => clock.sleep(ms),
      random: deps.random,
    });
    perDeps.set(deps, reads);
  }
  return reads;
}
