/**
 * One watcher per worker for every image wait it holds (issue 13). A waiting activity hands its
 * task token here and returns at once (async completion), so a waiting run holds no activity slot,
 * no timer and no cached workflow. The watcher polls DescribeImages per account and region, up to
 * 100 ids a call under a call budget per account-region (EC2 refills 20/s there, shared with every
 * other amiflow call), and completes or fails each token through Temporal's async completion client.
 *
 * Each account-region has a lane that calls continuously under its budget, each call asking about
 * the waits polled longest ago (new ones first) that are due again, so an image is asked about
 * every max(pollIntervalMs, waits ÷ (maxIdsPerCall × callsPerSecond)): 10,000 waits in one region
 * at 10 calls/s are each asked every 10 s, and the detection lag stays near 10 s, not a round
 * plus an interval. A new wait is asked about at once, then again after 1, 2, 4 and 8 s before it
 * settles to the interval (imagePollIntervalMs): an image that is quick to make is seen about as
 * soon as a script polling it alone would see it. Those early polls only use what the budget leaves
 * over (they never delay a wait due at the interval), and the waits of a fan-out share their calls.
 *
 * What a token costs in Temporal Actions is what the watcher sends for it: a progress heartbeat
 * every `progressEveryMs` (none when the run gave the wait no heartbeat timeout), plus its share of
 * the worker's lease (wait-lease.ts), which is what notices a crashed worker.
 */
import type { Image } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import type { AwsTarget } from '../contracts';
import { FailureType } from '../contracts';
import type { WaitRef } from '../contracts/wait-lease';
import { leaseRefKey } from '../contracts/wait-lease';
import type { AwsClients } from './aws';
import { failure } from './errors';
import { describeImageIds } from './image-watch';
import type { AvailableImage } from './images';
import { imageFailure } from './images';

export type { WaitRef } from '../contracts/wait-lease';

/** What the watcher needs of Temporal (the worker's async completion client; a fake in tests). */
export interface WaitCompletion {
  /** Each resolves `false` when the activity is no longer waiting (completed, cancelled, timed out). */
  complete(token: Uint8Array, result: AvailableImage): Promise<boolean>;
  fail(token: Uint8Array, err: ApplicationFailure): Promise<boolean>;
  /** Resolves 'cancelled' when the run asked to cancel the wait, 'gone' when it no longer waits. */
  heartbeat(token: Uint8Array, details: unknown): Promise<'ok' | 'cancelled' | 'gone'>;
  reportCancellation(token: Uint8Array): Promise<void>;
  /** Whether the run has asked to cancel this wait (or no longer waits for it): a read, not an Action. */
  cancelRequested(ref: WaitRef): Promise<boolean>;
  /**
   * The runs (`workflowId/runId`) that are cancelling now or ended since `sinceMs`: one Visibility
   * list for every held wait (not an Action). Absent: only the per-wait reads find cancellations.
   */
  cancelledRuns?(sinceMs: number): Promise<Set<string>>;
}

export interface WatcherOptions {
  /** Between two polls of one image: bounds the lag between `available` and the run seeing it. */
  pollIntervalMs: number;
  /** A new wait's second poll comes this soon after its first; each gap after doubles, up to pollIntervalMs. */
  earlyIntervalMs: number;
  /** DescribeImages calls per second per account and region, at most. */
  callsPerSecond: number;
  maxIdsPerCall: number;
  /** Progress heartbeat per token (an Action each) for waits the run gave no heartbeat timeout. */
  progressEveryMs: number;
  /** Cancellation reads (DescribeWorkflowExecution) per second for the whole worker. */
  cancelChecksPerSecond: number;
  /** How soon a wait handed off on shutdown is retried (on another worker). */
  handOffRetryMs: number;
  consistencyWindowMs: number;
}

export const DEFAULT_WATCHER_OPTIONS: WatcherOptions = {
  pollIntervalMs: 10_000,
  // Polls at 0, 1, 3, 7 and 15 s, then every 10 s: three calls more per wait (per 100 waits of a
  // fan-out) than polling every 10 s from the start.
  earlyIntervalMs: 1_000,
  // Half of EC2's 20/s DescribeImages refill, leaving the rest to every other amiflow call: 10,000
  // images in one account-region are 100 calls, one 10 s round, so the lag stays near 10 s.
  callsPerSecond: 10,
  maxIdsPerCall: 100,
  progressEveryMs: 30 * 60_000,
  cancelChecksPerSecond: 10,
  handOffRetryMs: 1_000,
  consistencyWindowMs: 180_000,
};

/**
 * How long after its `polls`-th poll a wait is due again. One place for the schedule: the lanes
 * use it, and the benchmark's direct script polls on it so the two sides compare fairly.
 */
export function imagePollIntervalMs(
  opts: Pick<WatcherOptions, 'pollIntervalMs' | 'earlyIntervalMs'>,
  polls: number,
): number {
  // The doubling ends well before 2^52: past ~30 polls every wait is at the interval anyway.
  return Math.min(opts.pollIntervalMs, opts.earlyIntervalMs * 2 ** Math.min(Math.max(polls - 1, 0), 30));
}

export interface ImageWaitRequest {
  token: Uint8Array;
  ref: WaitRef;
  target: AwsTarget;
  imageId: string;
  deadline: number;
  /** The run's heartbeat timeout for this wait (runs scheduled before async waits): heartbeat within it. */
  heartbeatTimeoutMs?: number;
}

interface Held extends ImageWaitRequest {
  key: string;
  addedAt: number;
  /** When a call last asked about it; undefined until its first poll. */
  lastPolledAt?: number;
  /** Calls that asked about it (answered or not): where it is in its schedule. */
  asked: number;
  /** While in its early polls: when it is due again. */
  earlyDueAt?: number;
  polls: number;
  calls: number;
  heartbeats: number;
  lastHeartbeatAt: number;
  state?: string;
}

export interface WatcherStats {
  waits: number;
  calls: number;
  rounds: number;
  completed: number;
  failed: number;
  handedOff: number;
  cancelled: number;
  heartbeats: number;
}

export interface WatcherDeps {
  aws: AwsClients;
  completion: WaitCompletion;
  now: () => number;
  /** Plain timer sleep (the watcher outlives any one activity). */
  sleep: (ms: number) => Promise<void>;
  log?: (message: string, meta: Record<string, unknown>) => void;
  /** False: no rounds of its own; the caller drives `pollRound` (tests). */
  autoPoll?: boolean;
}

/** Tries of a hand-off failure the server refused, and the pause after the first (doubling). */
const HAND_OFF_TRIES = 3;
const HAND_OFF_RETRY_MS = 250;
/** How far back before the previous list of cancelled runs the next one looks for ended runs. */
const CLOSED_LOOKBACK_MS = 30_000;
/** After a throttled or failed call, the lane pauses this long on top of its budget. */
const BACKOFF_MS = 1_000;
/**
 * An answer the server did not take (it was away) is sent again this often, on its own, not at the
 * image's next poll: a 30 s outage cost waits 12-17 s after the server was back when the answer
 * waited for the next 10 s poll (bench/fleet-outage.ts). One call per unsent answer per second
 * while the server is away; nothing is asked of EC2 again, the answer is known.
 */
export const RESEND_EVERY_MS = 500;

/** One account-region: its waits in poll order and its call budget. */
interface Group {
  key: string;
  target: AwsTarget;
  /** Never polled yet, in arrival order: asked about first. */
  fresh: Map<string, Held>;
  /** Polled, oldest poll first (a poll moves a wait to the end). */
  polled: Map<string, Held>;
  /** The polled ones still in their early polls (imagePollIntervalMs below the interval). */
  early: Map<string, Held>;
  /** Ends the lane's nap at once (a new wait arrived). */
  wake?: () => void;
  /** The earliest the next call may go out (the budget). */
  nextCallAt: number;
  lane?: Promise<void>;
}

type Counter = 'completed' | 'failed';

const groupKey = (target: AwsTarget): string => `${target.accountId ?? 'self'}/${target.region}`;

export class ImageWaitWatcher {
  private readonly held = new Map<string, Held>();
  private readonly groups = new Map<string, Group>();
  private readonly listeners = new Set<() => void>();
  private cancelLoop: Promise<void> | undefined;
  private handingOff: Promise<number> | undefined;
  /** Handed off, failure not landed yet (or never: the server refused each try). */
  private readonly unlanded = new Map<string, Held>();
  private stopping = false;
  /** Resolves at the hand-off, so sleeping lanes end at once instead of after their interval. */
  private wakeStopped: () => void = () => undefined;
  private readonly stopped = new Promise<void>((resolve) => (this.wakeStopped = resolve));
  private cancelCursor = 0;
  /** Where the next Visibility list of cancelled runs starts (epoch ms); unset before the first. */
  private listedSince: number | undefined;
  private listFailures = 0;
  /** Answers the server did not take, to send again: held (the lease lists them), polled no more. */
  private readonly unsent = new Map<string, { h: Held; send: () => Promise<boolean>; counter: Counter }>();
  private resending: Promise<void> | undefined;
  readonly stats: WatcherStats = {
    waits: 0,
    calls: 0,
    rounds: 0,
    completed: 0,
    failed: 0,
    handedOff: 0,
    cancelled: 0,
    heartbeats: 0,
  };

  constructor(
    private readonly deps: WatcherDeps,
    private readonly opts: WatcherOptions = DEFAULT_WATCHER_OPTIONS,
  ) {}

  /** Takes a wait; throws a retryable failure (another worker takes it) once shutting down. */
  add(request: ImageWaitRequest): void {
    if (this.stopping) throw this.handOffFailure();
    const key = leaseRefKey(request.ref);
    const now = this.deps.now();
    const h: Held = {
      ...request,
      // The SDK's task token is a view into the whole activity task it was decoded from (protobufjs
      // `subarray`): held as is, every wait kept that task's buffer alive for as long as it waited.
      // A copy of the token's own bytes lets the task go with the activity.
      token: new Uint8Array(request.token),
      key,
      addedAt: now,
      polls: 0,
      asked: 0,
      calls: 0,
      heartbeats: 0,
      lastHeartbeatAt: now,
    };
    const previous = this.held.get(key);
    if (previous) this.unlink(previous);
    this.held.set(key, h);
    const group = this.groupOf(request.target);
    group.fresh.set(key, h);
    this.changed();
    if (this.deps.autoPoll === false) return;
    // A new wait is asked about at once, ahead of the waits polled before: a napping lane wakes.
    group.wake?.();
    group.lane ??= this.lane(group).finally(() => (group.lane = undefined));
    this.cancelLoop ??= this.cancellations().finally(() => (this.cancelLoop = undefined));
  }

  size(): number {
    return this.held.size;
  }

  refs(): WaitRef[] {
    return [...this.held.values()].map((h) => h.ref);
  }

  isStopping(): boolean {
    return this.stopping;
  }

  /** Called whenever the set of waits changes (the lease re-records its list). */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Shutdown: every held wait fails as retryable with a short next-retry delay, so Temporal hands it
   * to a live worker in about `handOffRetryMs` instead of after a timeout. Polls stop. Every call
   * returns the first call's promise: the worker's shutdown (SIGTERM, then run()'s end) awaits it
   * before closing the connection its failures go through. A failure the server did not take is
   * sent again (HAND_OFF_TRIES); what still did not land stays in `notHandedOff()`, and the lease
   * (wait-lease.ts) releases those instead of ending, or they would sit until their backstop.
   */
  handOff(): Promise<number> {
    this.handingOff ??= this.handOffOnce();
    return this.handingOff;
  }

  /** Waits being handed off whose failure has not landed (yet): what the lease must still release. */
  notHandedOff(): WaitRef[] {
    return [...this.unlanded.values()].map((h) => h.ref);
  }

  private async handOffOnce(): Promise<number> {
    this.stopping = true;
    this.wakeStopped();
    const all = [...this.held.values()];
    const running = [...[...this.groups.values()].map((g) => g.lane), this.cancelLoop, this.resending].filter(
      (p): p is Promise<void> => p !== undefined,
    );
    for (const h of all) {
      this.unlink(h);
      this.unlanded.set(h.key, h);
    }
    this.changed();
    await inBatches(all, 50, async (h) => {
      for (let tries = 1; ; tries++) {
        try {
          // false: the activity no longer waits (completed or cancelled meanwhile): nothing to hand off.
          await this.deps.completion.fail(h.token, this.handOffFailure());
          this.unlanded.delete(h.key);
          this.stats.handedOff += 1;
          return;
        } catch (err) {
          if (tries >= HAND_OFF_TRIES) {
            this.deps.log?.('could not hand an image wait off; its lease releases it', {
              workflowId: h.ref.workflowId,
              error: String(err),
            });
            return;
          }
          await this.deps.sleep(HAND_OFF_RETRY_MS * tries);
        }
      }
    });
    await Promise.all(running);
    return all.length;
  }

  /**
   * Every held wait asked about once now (oldest poll first, under the budget), then cancellations
   * read. Tests drive the watcher with it; a running worker's lanes poll continuously instead.
   */
  async pollRound(): Promise<void> {
    this.stats.rounds += 1;
    await this.resendUnsent();
    await Promise.all(
      [...this.groups.values()].map(async (g) => {
        const all = [...g.fresh.values(), ...g.polled.values()];
        for (let i = 0; i < all.length && !this.stopping; i += this.opts.maxIdsPerCall)
          await this.pollChunk(g, all.slice(i, i + this.opts.maxIdsPerCall));
      }),
    );
    await this.checkCancellations();
  }

  private groupOf(target: AwsTarget): Group {
    const key = groupKey(target);
    let g = this.groups.get(key);
    if (!g) {
      g = { key, target, fresh: new Map(), polled: new Map(), early: new Map(), nextCallAt: -Infinity };
      this.groups.set(key, g);
    }
    return g;
  }

  /** A sleep that ends early at the hand-off: a worker stopping does not wait out a poll interval. */
  private nap(ms: number): Promise<void> {
    return Promise.race([this.deps.sleep(ms), this.stopped]);
  }

  /** An account-region's lane: one call at a time under the budget, until it holds no waits. */
  private async lane(group: Group): Promise<void> {
    // Waits added in the same turn (a fan-out's, or a test's) share the first call; no timer.
    await Promise.resolve();
    while (!this.stopping && this.groups.get(group.key) === group) {
      const now = this.deps.now();
      const due = this.due(group, now);
      if (due.length > 0) {
        await this.pollChunk(group, due);
        continue;
      }
      const next = this.nextDueAt(group);
      if (next === undefined) return;
      const woken = new Promise<void>((resolve) => (group.wake = resolve));
      await Promise.race([this.nap(Math.max(10, next - now)), woken]);
      group.wake = undefined;
    }
  }

  /**
   * Up to maxIdsPerCall waits to ask about now: new ones, then those polled longest ago and due
   * again at the interval, then early polls with what is left, so early polls never hold back a
   * wait due at the interval (the lag bound at fleet scale).
   */
  private due(group: Group, now: number): Held[] {
    const picked = new Set<Held>();
    const full = () => picked.size >= this.opts.maxIdsPerCall;
    for (const h of group.fresh.values()) {
      if (full()) return [...picked];
      picked.add(h);
    }
    for (const h of group.polled.values()) {
      if (full()) return [...picked];
      // Poll order: the first one not yet due means none after it is.
      if ((h.lastPolledAt ?? -Infinity) > now - this.opts.pollIntervalMs) break;
      picked.add(h);
    }
    for (const h of group.early.values()) {
      if (full()) break;
      if ((h.earlyDueAt ?? Infinity) <= now) picked.add(h);
    }
    return [...picked];
  }

  /** When the lane's next call is due: the oldest poll's interval, or an early poll before it. */
  private nextDueAt(group: Group): number | undefined {
    const oldest = group.polled.values().next().value;
    if (!oldest) return undefined;
    let next = (oldest.lastPolledAt ?? this.deps.now()) + this.opts.pollIntervalMs;
    for (const h of group.early.values()) next = Math.min(next, h.earlyDueAt ?? next);
    return next;
  }

  /** The budget: calls to one account-region spaced 1/callsPerSecond apart, bursts included. */
  private async takeCall(group: Group): Promise<void> {
    const wait = group.nextCallAt - this.deps.now();
    if (wait > 0) await this.deps.sleep(wait);
    group.nextCallAt = Math.max(this.deps.now(), group.nextCallAt) + 1000 / this.opts.callsPerSecond;
  }

  /** One DescribeImages call (more if ids are not visible yet) for `chunk`, and their tokens settled. */
  private async pollChunk(group: Group, candidates: Held[]): Promise<void> {
    const chunk = candidates.filter((h) => this.held.get(h.key) === h);
    if (chunk.length === 0) return;
    // Polled now, whatever the answer: the next call asks about the others first.
    const at = this.deps.now();
    for (const h of chunk) {
      h.lastPolledAt = at;
      h.asked += 1;
      group.fresh.delete(h.key);
      group.polled.delete(h.key);
      group.polled.set(h.key, h);
      const gap = imagePollIntervalMs(this.opts, h.asked);
      group.early.delete(h.key);
      h.earlyDueAt = gap < this.opts.pollIntervalMs ? at + gap : undefined;
      if (h.earlyDueAt !== undefined) group.early.set(h.key, h);
    }
    const ids = [...new Set(chunk.map((h) => h.imageId))];
    let calls = 0;
    try {
      const ec2 = await this.deps.aws.ec2(group.target);
      const images = await describeImageIds(ec2, ids, async () => {
        await this.takeCall(group);
        calls += 1;
        this.stats.calls += 1;
      });
      await inBatches(chunk, 50, (h) => this.settle(h, images.get(h.imageId), calls));
    } catch (err) {
      // Throttled or failing: ease off this account-region beyond the budget for a moment.
      group.nextCallAt = Math.max(group.nextCallAt, this.deps.now() + BACKOFF_MS);
      await this.failGroupIfPermanent(chunk, err);
    }
  }

  /** Cancellation reads every poll interval, while the watcher holds waits. */
  private async cancellations(): Promise<void> {
    while (!this.stopping && this.held.size > 0) {
      await this.nap(this.opts.pollIntervalMs);
      if (this.stopping) return;
      this.stats.rounds += 1;
      try {
        await this.checkCancellations();
      } catch (err) {
        this.deps.log?.('reading cancellations failed; the next round reads again', { error: String(err) });
      }
    }
  }

  /** Throttling and 5xx: the next round asks again. A permanent refusal fails the waits it concerns. */
  private async failGroupIfPermanent(group: Held[], err: unknown): Promise<void> {
    if (!(err instanceof ApplicationFailure) || !err.nonRetryable) {
      this.deps.log?.('DescribeImages failed; retrying next round', { error: String(err) });
      return;
    }
    await inBatches(group, 50, (h) => this.finish(h, () => this.deps.completion.fail(h.token, err)));
  }

  private async settle(h: Held, image: Image | undefined, calls: number): Promise<void> {
    h.polls += 1;
    h.calls += calls;
    h.state = image?.State ?? 'not visible yet';
    const now = this.deps.now();
    if (image?.State === 'available') {
      const result: AvailableImage = {
        imageId: h.imageId,
        snapshotIds: (image.BlockDeviceMappings ?? []).flatMap((b) =>
          b.Ebs?.SnapshotId ? [b.Ebs.SnapshotId] : [],
        ),
        awsCalls: h.calls,
        polls: h.polls,
        heartbeats: h.heartbeats,
      };
      await this.finish(h, () => this.deps.completion.complete(h.token, result), 'completed');
      return;
    }
    const bad = this.terminal(h, image, now);
    if (bad) {
      await this.finish(h, () => this.deps.completion.fail(h.token, bad));
      return;
    }
    const every = h.heartbeatTimeoutMs ? h.heartbeatTimeoutMs * 0.8 : this.opts.progressEveryMs;
    if (now - h.lastHeartbeatAt >= every) await this.heartbeat(h, now);
  }

  private terminal(h: Held, image: Image | undefined, now: number): ApplicationFailure | undefined {
    // The same failure as the polling wait's, so a run's outcome does not depend on which waited.
    const failed = imageFailure(h.imageId, image);
    if (failed) return failed;
    // Read-after-write: a new image can be invisible for a while; only after the window is it gone.
    if (!image && now - h.addedAt > this.opts.consistencyWindowMs)
      return failure(
        FailureType.ImageNotFound,
        `image ${h.imageId} was not visible for the whole consistency window ` +
          `(${Math.round(this.opts.consistencyWindowMs / 1000)}s): it was deregistered by someone else, or never made`,
      );
    if (now >= h.deadline)
      return failure(
        FailureType.WaitTimedOut,
        `timed out waiting for image ${h.imageId} to become available: still '${h.state}' at the deadline ${new Date(h.deadline).toISOString()}`,
        { polls: h.polls },
      );
    return undefined;
  }

  private async heartbeat(h: Held, now: number): Promise<void> {
    h.lastHeartbeatAt = now;
    h.heartbeats += 1;
    this.stats.heartbeats += 1;
    const answer = await this.deps.completion
      .heartbeat(h.token, { imageState: h.state, polls: h.polls, calls: h.calls })
      .catch(() => 'ok' as const); // a lost heartbeat is retried at the next one
    if (answer === 'cancelled') await this.cancelled(h);
    else if (answer === 'gone') this.drop(h);
  }

  /**
   * Cancellation costs no Action. First one Visibility list of the runs cancelling or ended lately
   * (their workflows mark `AmiflowStep = cancelling` before their undo): every held wait of those
   * runs stops at once, however many the worker holds. Then, as a fallback for runs that mark
   * nothing (started before the marker or without amiflow's attributes, terminated, or not visible
   * yet: Visibility is eventually consistent), a read of the run per held wait, round-robin under
   * `cancelChecksPerSecond` (every wait each round while the worker holds few enough).
   */
  private async checkCancellations(): Promise<void> {
    await this.listCancelledRuns();
    const all = [...this.held.values()];
    if (all.length === 0) return;
    const budget = Math.max(
      1,
      Math.floor((this.opts.cancelChecksPerSecond * this.opts.pollIntervalMs) / 1000),
    );
    const picked: Held[] = [];
    for (let n = 0; n < Math.min(budget, all.length); n++) {
      const h = all[(this.cancelCursor + n) % all.length];
      if (h) picked.push(h);
    }
    this.cancelCursor = (this.cancelCursor + picked.length) % Math.max(1, all.length);
    await inBatches(picked, 20, async (h) => {
      const asked = await this.deps.completion.cancelRequested(h.ref).catch(() => false);
      if (asked && this.held.has(h.key)) await this.cancelled(h);
    });
  }

  private async listCancelledRuns(): Promise<void> {
    const list = this.deps.completion.cancelledRuns?.bind(this.deps.completion);
    if (!list || this.held.size === 0) return;
    const now = this.deps.now();
    // Ended runs are listed back to the last list plus a margin for Visibility's lag, so a run that
    // ended (its undo done) between two lists is not missed; the first list looks back as far.
    const since = (this.listedSince ?? now) - CLOSED_LOOKBACK_MS;
    let runs: Set<string>;
    try {
      runs = await list(since);
    } catch (err) {
      // Logged the first time and then once an hour (at 10 s): a namespace without amiflow's search
      // attributes refuses every list, and the per-wait reads cover it.
      if (this.listFailures++ % 360 === 0)
        this.deps.log?.('listing cancelled runs failed; the per-wait reads go on', { error: String(err) });
      return;
    }
    this.listedSince = now;
    if (runs.size === 0) return;
    const hit = [...this.held.values()].filter((h) => runs.has(`${h.ref.workflowId}/${h.ref.runId}`));
    // The list names runs, not waits: a cancelling run may still need a wait (one its undo awaits in
    // a non-cancellable scope). Each wait of a listed run is confirmed by its own read (its activity
    // asked to cancel, or no longer pending) before it is stopped: reads only for the few listed.
    await inBatches(hit, 20, async (h) => {
      const asked = await this.deps.completion.cancelRequested(h.ref).catch(() => false);
      if (asked && this.held.get(h.key) === h) await this.cancelled(h);
    });
  }

  private async cancelled(h: Held): Promise<void> {
    this.drop(h);
    this.stats.cancelled += 1;
    await this.deps.completion.reportCancellation(h.token).catch(() => undefined);
  }

  private async finish(h: Held, send: () => Promise<boolean>, counter: Counter = 'failed'): Promise<void> {
    if (this.held.get(h.key) !== h) return;
    try {
      await send();
      this.stats[counter] += 1;
      this.drop(h);
    } catch (err) {
      // The server did not take the answer (an outage): keep the wait (its lease still lists it) and
      // send the same answer again every RESEND_EVERY_MS until it lands, with no more polls of EC2.
      this.deps.log?.('could not report an image wait; sending it again shortly', {
        imageId: h.imageId,
        error: String(err),
      });
      this.unqueue(h);
      this.unsent.set(h.key, { h, send, counter });
      if (this.deps.autoPoll !== false)
        this.resending ??= this.resendLoop().finally(() => (this.resending = undefined));
    }
  }

  /** Sends every unsent answer again (tests drive it; a running worker's loop calls it every RESEND_EVERY_MS). */
  async resendUnsent(): Promise<void> {
    const pending = [...this.unsent.values()];
    await inBatches(pending, 50, async ({ h, send, counter }) => {
      if (this.held.get(h.key) !== h || this.unsent.get(h.key)?.h !== h) return;
      try {
        await send();
        this.unsent.delete(h.key);
        this.stats[counter] += 1;
        this.drop(h);
      } catch {
        // Still away: the next turn sends it again.
      }
    });
  }

  private async resendLoop(): Promise<void> {
    while (!this.stopping && this.unsent.size > 0) {
      await this.nap(RESEND_EVERY_MS);
      if (!this.stopping) await this.resendUnsent();
    }
  }

  private drop(h: Held): void {
    if (this.held.get(h.key) !== h) return;
    this.unlink(h);
    this.changed();
  }

  private unlink(h: Held): void {
    this.held.delete(h.key);
    if (this.unsent.get(h.key)?.h === h) this.unsent.delete(h.key);
    this.unqueue(h);
  }

  /** Out of its account-region's poll order (still held). */
  private unqueue(h: Held): void {
    const key = groupKey(h.target);
    const g = this.groups.get(key);
    if (!g) return;
    g.fresh.delete(h.key);
    g.polled.delete(h.key);
    g.early.delete(h.key);
    if (g.fresh.size === 0 && g.polled.size === 0) {
      this.groups.delete(key);
      g.wake?.(); // its lane ends now instead of after its nap
    }
  }

  private changed(): void {
    this.stats.waits = this.held.size;
    for (const fn of this.listeners) fn();
  }

  private handOffFailure(): ApplicationFailure {
    return ApplicationFailure.create({
      type: 'WorkerShuttingDown',
      message: 'this worker is shutting down; the wait resumes on another worker',
      nonRetryable: false,
      nextRetryDelay: this.opts.handOffRetryMs,
    });
  }
}

async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}
