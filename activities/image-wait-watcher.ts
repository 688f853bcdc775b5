/**
 * One watcher per worker for every image wait it holds (issue 13). A waiting activity hands its
 * task token here and returns at once (async completion), so a waiting run holds no activity slot,
 * no timer and no cached workflow. The watcher polls DescribeImages per account and region, up to
 * 100 ids a call under a call budget per account-region (EC2 refills 20/s there, shared with every
 * other amiflow call), and completes or fails each token through Temporal's async completion client.
 *
 * What a token costs in Temporal Actions is what the watcher sends for it: a progress heartbeat
 * every `progressEveryMs` (none when the run gave the wait no heartbeat timeout), plus its share of
 * the worker's lease (wait-lease.ts), which is what notices a crashed worker.
 */
import type { Image } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import type { AwsTarget } from '../contracts';
import { FailureType } from '../contracts';
import type { AwsClients } from './aws';
import { failure } from './errors';
import { describeImageIds } from './image-watch';
import type { AvailableImage } from './images';

/** Names one attempt of one activity without its (large) task token: what a lease carries. */
export interface WaitRef {
  workflowId: string;
  runId: string;
  activityId: string;
}

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
}

export interface WatcherOptions {
  /** Between two polls of one image: bounds the lag between `available` and the run seeing it. */
  pollIntervalMs: number;
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
  // Half of EC2's 20/s DescribeImages refill, leaving the rest to every other amiflow call: 10,000
  // images in one account-region are 100 calls, one 10 s round, so the lag stays near 10 s.
  callsPerSecond: 10,
  maxIdsPerCall: 100,
  progressEveryMs: 30 * 60_000,
  cancelChecksPerSecond: 10,
  handOffRetryMs: 1_000,
  consistencyWindowMs: 180_000,
};

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

/** Waits arriving within this of the first share its first round. */
const FIRST_POLL_DELAY_MS = 250;

const refKey = (ref: WaitRef): string => `${ref.workflowId}/${ref.runId}/${ref.activityId}`;
const groupKey = (target: AwsTarget): string => `${target.accountId ?? 'self'}/${target.region}`;

export class ImageWaitWatcher {
  private readonly held = new Map<string, Held>();
  private readonly listeners = new Set<() => void>();
  private loop: Promise<void> | undefined;
  private stopping = false;
  private cancelCursor = 0;
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
    const key = refKey(request.ref);
    const now = this.deps.now();
    this.held.set(key, {
      ...request,
      key,
      addedAt: now,
      polls: 0,
      calls: 0,
      heartbeats: 0,
      lastHeartbeatAt: now,
    });
    this.changed();
    // An idle watcher polls at once (after FIRST_POLL_DELAY_MS): a new wait does not wait for a round.
    if (this.deps.autoPoll !== false) this.loop ??= this.run().finally(() => (this.loop = undefined));
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
   * to a live worker in about `handOffRetryMs` instead of after a timeout. Polls stop.
   */
  async handOff(): Promise<number> {
    this.stopping = true;
    const all = [...this.held.values()];
    this.held.clear();
    this.changed();
    await inBatches(all, 50, async (h) => {
      await this.deps.completion.fail(h.token, this.handOffFailure()).catch(() => false);
      this.stats.handedOff += 1;
    });
    await this.loop;
    return all.length;
  }

  /** One round: every account-region polled, tokens settled, cancellations read. Tests call it directly. */
  async pollRound(): Promise<void> {
    this.stats.rounds += 1;
    const groups = new Map<string, Held[]>();
    for (const h of this.held.values()) {
      const g = groups.get(groupKey(h.target));
      if (g) g.push(h);
      else groups.set(groupKey(h.target), [h]);
    }
    await Promise.all([...groups.values()].map((g) => this.pollGroup(g)));
    await this.checkCancellations();
  }

  private async run(): Promise<void> {
    // A moment for the waits arriving together (a fan-out's) to share the first calls.
    await this.deps.sleep(FIRST_POLL_DELAY_MS);
    while (this.held.size > 0 && !this.stopping) {
      const began = this.deps.now();
      try {
        await this.pollRound();
      } catch (err) {
        this.deps.log?.('image wait round failed; next round retries', { error: String(err) });
      }
      if (this.held.size === 0 || this.stopping) break;
      await this.deps.sleep(Math.max(0, this.opts.pollIntervalMs - (this.deps.now() - began)));
    }
  }

  private async pollGroup(group: Held[]): Promise<void> {
    const first = group[0];
    if (!first) return;
    const spacingMs = 1000 / this.opts.callsPerSecond;
    let ec2;
    try {
      ec2 = await this.deps.aws.ec2(first.target);
    } catch (err) {
      await this.failGroupIfPermanent(group, err);
      return;
    }
    for (let i = 0; i < group.length; i += this.opts.maxIdsPerCall) {
      if (this.stopping) return;
      const chunk = group.slice(i, i + this.opts.maxIdsPerCall).filter((h) => this.held.has(h.key));
      const ids = [...new Set(chunk.map((h) => h.imageId))];
      if (ids.length === 0) continue;
      let calls = 0;
      const began = this.deps.now();
      try {
        const images = await describeImageIds(ec2, ids, () => {
          calls += 1;
        });
        this.stats.calls += calls;
        await inBatches(chunk, 50, (h) => this.settle(h, images.get(h.imageId), calls));
      } catch (err) {
        this.stats.calls += calls;
        await this.failGroupIfPermanent(chunk, err);
      }
      // The budget: calls spaced so this account-region never sees more than callsPerSecond from us.
      const wait = calls * spacingMs - (this.deps.now() - began);
      if (wait > 0 && i + this.opts.maxIdsPerCall < group.length) await this.deps.sleep(wait);
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
    if (image?.State === 'failed' || image?.State === 'error' || image?.State === 'invalid') {
      const reason = image.StateReason;
      return failure(
        FailureType.ImageFailed,
        `image ${h.imageId} ended in state '${image.State}': ${reason?.Code ?? 'no code'}: ${reason?.Message ?? 'no reason given'}`,
        { stateReason: reason },
      );
    }
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
   * Cancellation costs no Action: a read of the run per held wait, round-robin under
   * `cancelChecksPerSecond` (every wait each round while the worker holds few enough).
   */
  private async checkCancellations(): Promise<void> {
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

  private async cancelled(h: Held): Promise<void> {
    this.drop(h);
    this.stats.cancelled += 1;
    await this.deps.completion.reportCancellation(h.token).catch(() => undefined);
  }

  private async finish(
    h: Held,
    send: () => Promise<boolean>,
    counter: 'completed' | 'failed' = 'failed',
  ): Promise<void> {
    if (!this.held.has(h.key)) return;
    try {
      await send();
      this.stats[counter] += 1;
      this.drop(h);
    } catch (err) {
      // The server did not take the answer (an outage): keep the wait; the next round answers again.
      this.deps.log?.('could not report an image wait; retrying next round', {
        imageId: h.imageId,
        error: String(err),
      });
    }
  }

  private drop(h: Held): void {
    if (this.held.delete(h.key)) this.changed();
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
