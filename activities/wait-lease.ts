/**
 * The lease that hands a crashed worker's waits to a live one (issue 13). Waits completed
 * asynchronously (image-wait-watcher.ts) have no heartbeat timeout of their own, only a long
 * backstop, so nothing would notice their worker die. Instead one activity per worker,
 * `holdWaitLease`, runs on a task queue only that worker polls and heartbeats the list of waits it
 * holds. When the worker dies the lease times out, and its workflow (workflows/wait-lease.ts) fails
 * each listed wait as retryable (`releaseWaits`): Temporal retries them on a live worker.
 *
 * One liveness signal shared by every wait of a worker: detecting a crash within a minute costs
 * ~75 heartbeats an hour for the worker, not for each wait. With fewer than `SHARED_FROM` waits
 * the lease heartbeats every ~5 minutes instead (the `solo` tier), so a lone wait costs no more
 * Actions than today's heartbeating wait did, and resumes within 6 minutes as before.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ImageWaitWatcher, WaitRef } from './image-wait-watcher';

export type LeaseTier = 'solo' | 'shared';

/** Heartbeat timeout per tier: what a crash costs before the waits move. */
export const LEASE_HEARTBEAT_TIMEOUT_MS: Record<LeaseTier, number> = { solo: 360_000, shared: 60_000 };
/** Waits from which the lease heartbeats every minute, and down to which it goes back to solo. */
export const SHARED_FROM = 6;
export const SOLO_AT = 2;
/** A lease activity ends and is scheduled again after this long, so no attempt runs unbounded. */
export const LEASE_TURN_MS = 6 * 3600_000;

export interface WaitLeaseInput {
  /** The task queue only the holding worker polls. */
  leaseQueue: string;
  tier: LeaseTier;
  /** The waits held when the lease began (released if the worker never picks the lease up). */
  refs: WaitRef[];
  /**
   * The worker's AMIFLOW_WAIT_LEASE_HEARTBEAT_TIMEOUT: replaces both tiers' heartbeat timeout, so a
   * crash is noticed sooner at the cost of more heartbeats (Actions). Absent: the tiers' own.
   */
  heartbeatTimeoutMs?: number;
}

/** Shortest lease heartbeat timeout accepted: the lease heartbeats every few seconds below it. */
export const MIN_LEASE_HEARTBEAT_TIMEOUT_MS = 5_000;

/** AMIFLOW_WAIT_LEASE_HEARTBEAT_TIMEOUT in milliseconds (a number, or with ms/s/m); undefined when unset. */
export function parseLeaseHeartbeatTimeout(raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(raw);
  const n = Number(m?.[1]);
  const unit = m?.[2] ?? 'ms';
  const ms = Math.round(unit === 'm' ? n * 60_000 : unit === 's' ? n * 1000 : n);
  if (!m || !(ms >= MIN_LEASE_HEARTBEAT_TIMEOUT_MS))
    throw new Error(
      `AMIFLOW_WAIT_LEASE_HEARTBEAT_TIMEOUT=${raw} must be a duration of at least ${MIN_LEASE_HEARTBEAT_TIMEOUT_MS} ms (15000, 15s, 1m)`,
    );
  return ms;
}

export interface HoldLeaseInput {
  tier: LeaseTier;
}

/** One turn of the lease: `next` undefined means the lease ends (no waits left, or handed off). */
export interface LeaseTurn {
  next?: LeaseTier;
  refs: WaitRef[];
}

/** What the lease heartbeats: read back by its workflow from the timeout's last details. */
export interface LeaseHeartbeat {
  refs: WaitRef[];
}

export interface ReleaseWaitsInput {
  refs: WaitRef[];
  lease: string;
}

export function tierFor(waits: number, current: LeaseTier): LeaseTier {
  if (waits >= SHARED_FROM) return 'shared';
  if (waits <= SOLO_AT) return 'solo';
  return current;
}

/** Starts a lease workflow (the worker's Temporal client; a fake in tests). */
export type StartLease = (workflowId: string, input: WaitLeaseInput) => Promise<void>;

/**
 * Keeps exactly one lease running while the worker holds waits: starts one when the first wait
 * arrives, and lets it end when the last one goes.
 */
export class WaitLeaseKeeper {
  private leased = false;
  private seq = 0;
  private dirty = true;
  private wake: (() => void) | undefined;

  constructor(
    private readonly watcher: ImageWaitWatcher,
    private readonly startLease: StartLease,
    private readonly opts: {
      leaseQueue: string;
      workerId: string;
      heartbeatTimeoutMs?: number;
      log?: (m: string, meta: Record<string, unknown>) => void;
    },
  ) {
    watcher.onChange(() => {
      this.dirty = true;
      this.wake?.();
      if (!this.leased && watcher.size() > 0 && !watcher.isStopping()) this.begin();
    });
  }

  private begin(): void {
    this.leased = true;
    this.seq += 1;
    const workflowId = `amiflow-wait-lease-${this.opts.workerId}-${this.seq}`;
    const input: WaitLeaseInput = {
      leaseQueue: this.opts.leaseQueue,
      tier: tierFor(this.watcher.size(), 'solo'),
      refs: this.watcher.refs(),
      ...(this.opts.heartbeatTimeoutMs ? { heartbeatTimeoutMs: this.opts.heartbeatTimeoutMs } : {}),
    };
    this.startLease(workflowId, input).catch((err: unknown) => {
      // No lease: the waits keep their backstop timeout. The next change tries again.
      this.leased = false;
      this.opts.log?.('could not start the wait lease', { workflowId, error: String(err) });
    });
  }

  /** The `holdWaitLease` activity, registered on the worker's own lease queue. */
  activities() {
    return {
      holdWaitLease: (input: HoldLeaseInput): Promise<LeaseTurn> => this.hold(input),
    };
  }

  private async hold(input: HoldLeaseInput): Promise<LeaseTurn> {
    const ctx = Context.current();
    const timeoutMs = ctx.info.heartbeatTimeoutMs ?? LEASE_HEARTBEAT_TIMEOUT_MS[input.tier];
    // The SDK sends at most one heartbeat per 0.8 × timeout and flushes the latest details at the
    // end of that window, so calling more often costs nothing and keeps the list recent.
    const checkEveryMs = Math.min(10_000, timeoutMs / 6);
    const began = Date.now();
    // Every turn starts from the current list: a turn that began after the last change (a tier
    // switch is one) would otherwise heartbeat an empty list, and a crash then would release nothing.
    let refs: WaitRef[] = this.watcher.refs();
    this.dirty = false;
    try {
      for (;;) {
        const n = this.watcher.size();
        if (this.watcher.isStopping() || n === 0) {
          this.leased = false;
          return { refs: [] };
        }
        if (this.dirty) {
          refs = this.watcher.refs();
          this.dirty = false;
        }
        const want = tierFor(n, input.tier);
        if (want !== input.tier || Date.now() - began >= LEASE_TURN_MS) return { next: want, refs };
        const beat: LeaseHeartbeat = { refs };
        ctx.heartbeat(beat);
        await Promise.race([ctx.sleep(checkEveryMs), new Promise<void>((resolve) => (this.wake = resolve))]);
      }
    } catch (err) {
      // Cancelled (the lease workflow was cancelled or timed out): a new lease starts on the next change.
      this.leased = false;
      throw err;
    } finally {
      this.wake = undefined;
    }
  }
}

/** Fails a wait by id as retryable, so Temporal retries it on a live worker; false when it no longer waits. */
export type ReleaseWait = (ref: WaitRef, err: ApplicationFailure) => Promise<boolean>;

/** `releaseWaits`, run on the shared task queue by the lease workflow when a lease times out. */
export function releaseActivities(release: ReleaseWait | undefined) {
  return {
    async releaseWaits(input: ReleaseWaitsInput): Promise<{ released: number; gone: number }> {
      if (!release)
        throw ApplicationFailure.create({
          type: 'NoAsyncCompletion',
          message:
            'this worker has no Temporal client for async completion; another worker releases the waits',
        });
      const ctx = Context.current();
      let released = 0;
      let gone = 0;
      const failure = ApplicationFailure.create({
        type: 'WaitLeaseLost',
        message: `the worker holding this wait stopped renewing its lease ${input.lease}; resuming on a live worker`,
        nonRetryable: false,
        nextRetryDelay: 1_000,
      });
      for (let i = 0; i < input.refs.length; i += 50) {
        const batch = input.refs.slice(i, i + 50);
        const results = await Promise.all(batch.map((ref) => release(ref, failure)));
        for (const ok of results)
          if (ok) released += 1;
          else gone += 1;
        ctx.heartbeat({ done: i + batch.length });
      }
      return { released, gone };
    },
  };
}
