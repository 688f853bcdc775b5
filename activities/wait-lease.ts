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
 *
 * The lease is open from the worker's start until it stops, waits or none (an idle worker's costs
 * ~12.5 heartbeats an hour). It used to begin with a worker's first wait and end with its last, and
 * a SIGKILL between the server handing a worker its first wait and that lease's start landing left
 * the wait with no lease at all: nothing released it before its backstop. Now every wait is taken
 * while a lease is open, and a lost lease releases its list and sweeps its worker for waits the list
 * lacked (StrandedSweep).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { WaitRefsChange } from '../contracts/wait-lease';
import { WAIT_HAND_OFF_INCOMPLETE, leaseRefKey } from '../contracts/wait-lease';
import type { ImageWaitWatcher, WaitRef } from './image-wait-watcher';

export type LeaseTier = 'solo' | 'shared';

/** Heartbeat timeout per tier: what a crash costs before the waits move. */
export const LEASE_HEARTBEAT_TIMEOUT_MS: Record<LeaseTier, number> = { solo: 360_000, shared: 60_000 };
/** Waits from which the lease heartbeats every minute, and down to which it goes back to solo. */
export const SHARED_FROM = 6;
export const SOLO_AT = 2;
/** A lease activity ends and is scheduled again after this long, so no attempt runs unbounded. */
export const LEASE_TURN_MS = 6 * 3600_000;

/**
 * The hold's list reaches the server by one path, the SDK's heartbeat (Core sends one report at a
 * time for an activity, then the newest details it was given), paced by the hold: a keep-alive once
 * per `keepAliveMs(timeout)`, 0.8 × timeout up to 5 min (what Core's throttle sent before), and one as
 * soon as waits were added, at most one per `beatGapMs(waits)`. The lease worker's
 * `maxHeartbeatThrottleInterval` is `LEASE_BEAT_GAP_MS`, the least gap, so Core holds back nothing the
 * hold sends.
 *
 * It used to go two ways: Core's throttled heartbeat (0.8 × timeout) and, for added waits, the
 * worker's client at once. They were not ordered: a Core report of an older list (retried by Core
 * for up to 10 s while the server was away) could land after the client's newer one, and the server
 * kept the older list until Core's next window (48 s at 1 min); a SIGKILL then stranded the added
 * waits until their backstop. Client heartbeats alone cannot replace Core's either: Core cancels an
 * activity locally when no report of its own completed within the heartbeat timeout (+ 5 s).
 *
 * The gap after a heartbeat is a window in which an added wait is known to nobody but this worker.
 * It was 1 s at any size (session 10), and the bounded chaos tier, whose SIGKILL lands within a
 * second or two of the first image being created, stranded a wait there in both CI runs of 8cd6654 (a loaded
 * machine): so it is 100 ms below 1,000 waits, growing with the list as its cost does
 * (`listGapMs`, 1 s at 10,000). A burst of waits still costs a few heartbeats, not one per wait.
 */
export const LEASE_BEAT_GAP_MS = 100;

/** The least time between two heartbeats listing added waits, for a list of `waits` waits. */
export function beatGapMs(waits: number): number {
  return Math.max(LEASE_BEAT_GAP_MS, listGapMs(waits));
}

export const KEEP_ALIVE_OF_TIMEOUT = 0.8;
const KEEP_ALIVE_MAX_MS = 300_000;

/** How long the hold goes between heartbeats when no wait was added: Core's throttle before (Actions model: bench/fleet-waits.ts). */
export function keepAliveMs(heartbeatTimeoutMs: number): number {
  return Math.min(KEEP_ALIVE_OF_TIMEOUT * heartbeatTimeoutMs, KEEP_ALIVE_MAX_MS);
}

export interface WaitLeaseInput {
  /** The task queue only the holding worker polls. */
  leaseQueue: string;
  tier: LeaseTier;
  /** The waits held when the lease began (released if the worker never picks the lease up). */
  refs: WaitRef[];
  /**
   * The hold's heartbeat timeout per tier, from the worker's settings (AMIFLOW_WAIT_LEASE_*_TIMEOUT_MS);
   * absent in leases started before it was a setting: LEASE_HEARTBEAT_TIMEOUT_MS.
   */
  heartbeatTimeoutMs?: Record<LeaseTier, number>;
  /**
   * The holding worker's identity on the shared task queue; given, a lost lease also releases the
   * waits still started on that worker that its list lacked (StrandedSweep). Absent in leases
   * started before the sweep.
   */
  workerIdentity?: string;
}

export interface HoldLeaseInput {
  tier: LeaseTier;
  /**
   * The lease workflow reads packed lists (PackedRefs): set by its code since they were introduced,
   * so a hold scheduled by a workflow that only reads `refs` keeps heartbeating those.
   */
  packed?: boolean;
}

/** One turn of the lease: `next` undefined means the lease ends (no waits left, or handed off). */
export interface LeaseTurn {
  next?: LeaseTier;
  refs: WaitRef[];
}

/**
 * A list of waits, packed: `data` is the base64 of the raw DEFLATE of the JSON array of
 * [workflowId, runId, activityId] triples. A heartbeat's list goes through the server into the
 * lease's state each time the hold heartbeats it (once a second while waits arrive): as
 * plain `refs` ~117 bytes a wait, ~1.2 MB at 10,000, packed ~28 bytes (Temporal's run ids are
 * UUIDv7: their time prefix compresses, their random part does not). Only activities pack and unpack (zlib is not in the workflow sandbox);
 * the lease workflow hands it on to `releaseWaits` as it is.
 */
export interface PackedRefs {
  v: 2;
  count: number;
  data: string;
}

/** What the lease heartbeats: read back by its workflow from the timeout's last details. */
export type LeaseHeartbeat = { refs: WaitRef[] } | { packed: PackedRefs };

export interface ReleaseWaitsInput {
  refs: WaitRef[];
  /** Waits listed packed (the hold's heartbeat since PackedRefs), released with `refs`. */
  packed?: PackedRefs;
  lease: string;
  /** Also release the waits still started on the lease's worker that no list named (leases since the sweep). */
  sweep?: StrandedSweep;
}

export function packRefs(refs: WaitRef[]): PackedRefs {
  const triples = JSON.stringify(refs.map((r) => [r.workflowId, r.runId, r.activityId]));
  // Level 1: the run ids are random, a higher level saves ~1 % for twice the CPU (10,000 waits: ~20 ms).
  return { v: 2, count: refs.length, data: deflateRawSync(triples, { level: 1 }).toString('base64') };
}

/** The waits a heartbeat lists, in either form. */
export function heartbeatRefs(beat: LeaseHeartbeat): WaitRef[] {
  return 'packed' in beat ? unpackRefs(beat.packed) : beat.refs;
}

export function unpackRefs(packed: PackedRefs): WaitRef[] {
  if (packed.v !== 2)
    throw ApplicationFailure.create({
      type: 'UnknownWaitListEncoding',
      nonRetryable: true,
      message: `a wait list packed as version ${String(packed.v)} cannot be read by this worker (it reads 2); run a newer worker`,
    });
  const triples = JSON.parse(inflateRawSync(Buffer.from(packed.data, 'base64')).toString('utf8')) as [
    string,
    string,
    string,
  ][];
  return triples.map(([workflowId, runId, activityId]) => ({ workflowId, runId, activityId }));
}

/** The least time between two takes of a list of `waits` waits: none below 100, 1 s at 10,000. */
export function listGapMs(waits: number): number {
  return Math.min(1000, Math.floor(waits / 100) * 10);
}

/**
 * The least time between two signals to a lease whose hold has not started, the `told`-th since the
 * lease began or its hold last ran. At 10,000 runs (session 10, docs/fleet-waits.md "The hold's
 * pickup delay") the lease's second hold started 75.7 s after it was scheduled: the lease took 178
 * signals in those 75.7 s (one per round trip, ~0.4 s apart under load, the gap then being
 * `listGapMs` of a few hundred waits) and a workflow task for each, and the server's background task
 * that dispatches the scheduled hold takes the workflow's lock at low priority, behind them. It fed
 * itself: the keeper signals because the hold has not started. So after `TELL_EAGER_SIGNALS` signals
 * at `listGapMs` (a hold normally starts within them) the gap doubles from 250 ms per signal up to
 * `TELL_GAP_MAX_MS`: at most 12 signals a minute once backed off instead of ~140, so the lease is
 * idle most of each 5 s.
 *
 * The price: a worker killed before its hold starts strands the waits added since the last signal
 * that landed until their backstop, up to 5 s of arrivals instead of ≤ 1 s. Only from
 * `TELL_BACKOFF_FROM` waits: below that (the chaos tier, the SIGKILL e2e test) the gap stays
 * `listGapMs`, none, as before: their waits arrive a few a second at most, too few signals to
 * keep the lease busy (the storm was seen with hundreds of waits arriving).
 */
export const TELL_EAGER_SIGNALS = 10;
export const TELL_BACKOFF_FROM = 100;
export const TELL_GAP_FIRST_MS = 250;
export const TELL_GAP_MAX_MS = 5_000;

export function tellGapMs(waits: number, told: number): number {
  const list = listGapMs(waits);
  if (waits < TELL_BACKOFF_FROM || told < TELL_EAGER_SIGNALS) return list;
  const backoff = TELL_GAP_FIRST_MS * 2 ** Math.min(told - TELL_EAGER_SIGNALS, 10);
  return Math.max(list, Math.min(TELL_GAP_MAX_MS, backoff));
}

export function tierFor(waits: number, current: LeaseTier): LeaseTier {
  if (waits >= SHARED_FROM) return 'shared';
  if (waits <= SOLO_AT) return 'solo';
  return current;
}

/** Starts a lease workflow (the worker's Temporal client; a fake in tests). */
export type StartLease = (workflowId: string, input: WaitLeaseInput) => Promise<void>;

/** Whether a lease workflow is still open (the worker's Temporal client; a fake in tests). */
export type LeaseOpen = (workflowId: string) => Promise<boolean>;

/**
 * How long a lease may go without a `holdWaitLease` of this worker running before the keeper asks
 * whether it still exists: past the lease activity's schedule-to-start timeout (at most 2 min,
 * workflows/presets.ts leaseScheduleToStartMs), after which the lease workflow releases the waits
 * and ends without the worker ever hearing of it.
 */
export const LEASE_UNHELD_CHECK_MS = 135_000;

export interface LeaseKeeperOptions {
  leaseQueue: string;
  workerId: string;
  /** The worker's identity on the shared task queue, handed to the lease for its sweep (WaitLeaseInput). */
  workerIdentity?: string;
  /** The lease's heartbeat timeout per tier (WorkerSettings.waitLeaseTimeoutsMs); default LEASE_HEARTBEAT_TIMEOUT_MS. */
  heartbeatTimeoutMs?: Record<LeaseTier, number>;
  /**
   * Given, the keeper checks every `checkEveryMs` (default 15 s) that a lease covers its waits: it
   * starts one whose start failed (the server was away) and replaces one that ended unheld.
   */
  leaseOpen?: LeaseOpen;
  checkEveryMs?: number;
  /** Sees each heartbeat the hold hands to the SDK (benches count them and their bytes). */
  onBeat?: (beat: LeaseHeartbeat) => void;
  /**
   * Tells a lease whose hold has not started yet of the waits it covers now (signal `waitLeaseRefs`):
   * what changed since the last signal that landed, or the whole list after one was refused.
   */
  tellLease?: (workflowId: string, told: WaitRef[] | WaitRefsChange<WaitRef>) => Promise<void>;
  now?: () => number;
  /** The clock and sleep that pace the signals (tests: virtual time); default the real ones. */
  tellTimers?: { now: () => number; sleep: (ms: number) => Promise<void> };
  log?: (m: string, meta: Record<string, unknown>) => void;
}

/** How long a stopping worker's hold waits for its hand-off before releasing the rest through the lease. */
export const HAND_OFF_WAIT_MS = 3_500;

/** How often a refused `waitLeaseRefs` signal is sent again, and after how long between tries. */
const TELL_ATTEMPTS = 5;
const TELL_RETRY_MS = 1_000;

/**
 * Keeps exactly one lease running while the worker runs: `open` starts it before the worker takes
 * any wait, and it ends only when the worker stops (its hand-off); one lost or never started is
 * started again at the next change or check.
 */
export class WaitLeaseKeeper {
  private leased = false;
  private seq = 0;
  private dirty = true;
  private wake: (() => void) | undefined;
  /** The lease workflow believed open, and when this worker last began or held it. */
  private leaseId: string | undefined;
  private holding = 0;
  private lastHeld = 0;
  private checking = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly tellNow: () => number;
  private readonly tellSleep: (ms: number) => Promise<void>;

  constructor(
    private readonly watcher: ImageWaitWatcher,
    private readonly startLease: StartLease,
    private readonly opts: LeaseKeeperOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.tellNow = opts.tellTimers?.now ?? Date.now;
    this.tellSleep = opts.tellTimers?.sleep ?? ((ms) => delay(ms, undefined, { ref: false }));
    watcher.onChange(() => {
      this.dirty = true;
      this.wake?.();
      if (!this.leased && !watcher.isStopping()) this.begin();
      else if (this.leased && this.holding === 0 && this.leaseId) this.tell(this.leaseId);
    });
    if (opts.leaseOpen) {
      this.timer = setInterval(() => void this.check(), opts.checkEveryMs ?? 15_000);
      this.timer.unref();
    }
  }

  /** The current lease's start: true once it has landed, false when it was refused. */
  private starting: Promise<boolean> = Promise.resolve(true);
  private telling: Promise<void> | undefined;
  private lastToldAt = -Infinity;
  private tellAgain = false;
  /** Signals landed on the current lease since it began or its hold last ran (tellGapMs). */
  private toldUnheld = 0;
  /** The waits the current lease knows of: its input, then each signal that landed. */
  private leaseKnows = new Map<string, WaitRef>();
  /**
   * A signal was refused: it may still have landed (the answer was lost), so a change computed from
   * `leaseKnows` could be wrong; the next signal carries the whole list, which the lease takes as is.
   */
  private resync = false;

  /** What to tell the lease: the whole list after a refused signal, else what changed (undefined: nothing). */
  private toTell(now: WaitRef[]): WaitRef[] | WaitRefsChange<WaitRef> | undefined {
    if (this.resync) return now;
    const nowKeys = new Set(now.map(leaseRefKey));
    const added = now.filter((r) => !this.leaseKnows.has(leaseRefKey(r)));
    const gone = [...this.leaseKnows].filter(([k]) => !nowKeys.has(k)).map(([, r]) => r);
    return added.length || gone.length ? { added, gone } : undefined;
  }

  /**
   * Waits added between the lease's start and its hold are in neither the lease's input nor a
   * heartbeat: a crash then would strand them until their backstop (issue 9, seen in the chaos
   * tier). The lease hears of them by signal, one at a time, each saying what changed since the
   * last one that landed (WaitRefsChange), so the lease's history grows with the changes, not with
   * the list times the signals.
   */
  private tell(workflowId: string): void {
    const send = this.opts.tellLease;
    if (!send) return;
    if (this.telling) {
      this.tellAgain = true;
      return;
    }
    const stillUnheld = () => this.holding === 0 && this.leaseId === workflowId;
    this.telling = (async () => {
      // A signal sent before the lease's start has landed finds no workflow (the chaos tier lost a
      // wait that way: the lease released only the waits it started with). Wait for the start.
      if (!(await this.starting)) return;
      for (let failures = 0; stillUnheld() && failures < TELL_ATTEMPTS;) {
        // Each signal lands in the lease's history: one per listGapMs at most, as the hold's heartbeats
        // (waits arriving meanwhile go in the next one), backing off while the hold has not started.
        const gap = this.lastToldAt + tellGapMs(this.watcher.size(), this.toldUnheld) - this.tellNow();
        if (gap > 0) await this.tellSleep(gap);
        if (!stillUnheld()) return;
        this.tellAgain = false;
        const now = this.watcher.refs();
        const told = this.toTell(now);
        if (told === undefined) return;
        const landed = await send(workflowId, told).then(
          () => true,
          (err: unknown) => {
            this.opts.log?.('could not tell the wait lease its waits', { workflowId, error: String(err) });
            return false;
          },
        );
        if (landed && this.leaseId === workflowId) {
          this.leaseKnows = new Map(now.map((r) => [leaseRefKey(r), r]));
          this.resync = false;
        } else if (!landed) this.resync = true;
        if (landed) {
          this.lastToldAt = this.tellNow();
          this.toldUnheld += 1;
        }
        if (landed && !this.tellAgain) return;
        // A refused signal (the server away) is sent again shortly; `check` tells it again later.
        if (!landed) {
          failures += 1;
          await this.tellSleep(TELL_RETRY_MS);
        }
      }
    })().finally(() => {
      this.telling = undefined;
      // A lease begun while this one slept through its gap (up to 5 s now) was asked to be told meanwhile
      // (`tellAgain`) and nobody else would tell it until the next change or check (15 s).
      const next = this.leaseId;
      if (this.tellAgain && next !== undefined && next !== workflowId && this.holding === 0) this.tell(next);
    });
  }

  /** Stops the periodic check (the worker is shutting down). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Starts the worker's lease (before its worker polls for work: a wait taken before the lease's
   * start landed would have no lease to release it). Resolves once the start landed (true) or was
   * refused (false: the keeper's check starts it again).
   */
  open(): Promise<boolean> {
    if (!this.leased && !this.watcher.isStopping()) this.begin();
    return this.starting;
  }

  private begin(): void {
    this.leased = true;
    this.seq += 1;
    const workflowId = `amiflow-wait-lease-${this.opts.workerId}-${this.seq}`;
    this.leaseId = workflowId;
    this.lastHeld = this.now();
    const input: WaitLeaseInput = {
      leaseQueue: this.opts.leaseQueue,
      tier: tierFor(this.watcher.size(), 'solo'),
      refs: this.watcher.refs(),
      ...(this.opts.heartbeatTimeoutMs ? { heartbeatTimeoutMs: this.opts.heartbeatTimeoutMs } : {}),
      ...(this.opts.workerIdentity ? { workerIdentity: this.opts.workerIdentity } : {}),
    };
    this.leaseKnows = new Map(input.refs.map((r) => [leaseRefKey(r), r]));
    this.resync = false;
    this.toldUnheld = 0;
    this.starting = this.startLease(workflowId, input).then(
      () => true,
      (err: unknown) => {
        // No lease: the waits keep their backstop timeout until the next change or check tries again.
        if (this.leaseId === workflowId) this.leased = false;
        this.opts.log?.('could not start the wait lease', { workflowId, error: String(err) });
        return false;
      },
    );
  }

  /**
   * Makes sure a lease covers the waits held. Without this, two ways left waits with no lease and
   * a later SIGKILL stranded them until their backstop timeout (10+ minutes; issue 9): a lease start
   * that failed while the server was away with no later change to retry it, and a lease whose hold
   * was never picked up (its task lost in a server restart) that released the waits and ended,
   * while this worker still believed it leased.
   */
  async check(): Promise<void> {
    if (this.checking || this.watcher.isStopping()) return;
    this.checking = true;
    try {
      if (!this.leased) {
        this.begin();
        return;
      }
      const id = this.leaseId;
      if (this.holding > 0 || id === undefined) return;
      // Not held yet: tell it what changed, or the whole list if a signal was refused (the server away).
      this.tell(id);
      if (this.now() - this.lastHeld < LEASE_UNHELD_CHECK_MS) return;
      const open = await (this.opts.leaseOpen?.(id) ?? Promise.resolve(true)).catch(() => true);
      if (open || this.leaseId !== id || this.holding > 0) return;
      this.opts.log?.('the wait lease ended unheld; starting another', { workflowId: id });
      this.leased = false;
      this.begin();
    } finally {
      this.checking = false;
    }
  }

  /**
   * The worker is stopping: the lease ends only once every wait's hand-off failure has landed. It
   * used to end at once, and a hand-off whose failures did not reach the server (SIGTERM, 14 of 20
   * waits in the fleet bench) left those waits on the stopped worker's attempt until their backstop
   * (hours), with no lease left to release them. Waits still not handed off after `HAND_OFF_WAIT_MS`
   * (inside the lease worker's 5 s shutdown grace) fail the hold with their list, and the lease
   * workflow releases them from another worker; if even that report is lost, the lease times out and
   * releases the list of its last heartbeat.
   */
  private async handedOff(): Promise<LeaseTurn> {
    await Promise.race([this.watcher.handOff(), delay(HAND_OFF_WAIT_MS, undefined, { ref: false })]);
    this.leased = false;
    const left = this.watcher.notHandedOff();
    if (left.length === 0) return { refs: [] };
    const details = { refs: left } satisfies LeaseHeartbeat;
    throw ApplicationFailure.create({
      type: WAIT_HAND_OFF_INCOMPLETE,
      nonRetryable: true,
      message: `${left.length} waits of stopping worker ${this.opts.workerId} could not be handed off; the lease releases them`,
      details: [details],
    });
  }

  /** The `holdWaitLease` activity, registered on the worker's own lease queue. */
  activities() {
    return {
      holdWaitLease: (input: HoldLeaseInput): Promise<LeaseTurn> => this.hold(input),
    };
  }

  /** Resolves at the watcher's next change. */
  private woken(): Promise<void> {
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  /**
   * The watcher changes once per wait added or gone, and each time the hold rebuilt, compared and
   * encoded the whole list (its heartbeat details): 10,000 runs reaching their
   * waits one after the other cost O(N²), a third of the worker's CPU at 2,000 (bench/fleet-light.ts
   * `--cpu-prof`). A list of N waits is taken at most once per `listGapMs(N)`: the cost per second
   * stays bounded, and a wait joins the heartbeated list within that gap (≤ 1 s at 10,000). Shutdown
   * does not wait for the gap.
   */
  private async untilListGapEnds(ctx: Context, listedAt: number): Promise<void> {
    const endsAt = listedAt + listGapMs(this.watcher.size());
    if (!this.dirty || Date.now() >= endsAt) return;
    let over = false;
    const gap = ctx.sleep(endsAt - Date.now()).then(() => {
      over = true;
    });
    while (!over && !this.watcher.isStopping()) await Promise.race([gap, this.woken()]);
  }

  private async hold(input: HoldLeaseInput): Promise<LeaseTurn> {
    const ctx = Context.current();
    const timeoutMs = ctx.info.heartbeatTimeoutMs ?? LEASE_HEARTBEAT_TIMEOUT_MS[input.tier];
    const keepAliveEveryMs = keepAliveMs(timeoutMs);
    // Tier and turn are checked this often, between heartbeats.
    const checkEveryMs = Math.min(10_000, timeoutMs / 6);
    const began = Date.now();
    // The list as of now, not empty: a later turn of the lease starts with no change pending, and an
    // empty first heartbeat would make a crash release nothing.
    let refs: WaitRef[] = this.watcher.refs();
    const listed = (list: WaitRef[]): LeaseHeartbeat =>
      input.packed === true ? { packed: packRefs(list) } : { refs: list };
    let beat = listed(refs);
    let listedAt = Date.now();
    let sentAt = -Infinity;
    // Waits were added since the last heartbeat: the next one goes at once, not at the keep-alive.
    let added = true;
    this.dirty = false;
    this.holding += 1;
    // The next unheld spell (a later turn scheduled) starts eager again: its hold normally starts at once.
    this.toldUnheld = 0;
    try {
      for (;;) {
        const n = this.watcher.size();
        if (this.watcher.isStopping()) return await this.handedOff();
        if (this.dirty) {
          const before = new Set(refs.map(leaseRefKey));
          refs = this.watcher.refs();
          beat = listed(refs);
          listedAt = Date.now();
          this.dirty = false;
          // Waits gone only wait for the keep-alive: a list naming a finished wait releases nothing.
          if (refs.some((r) => !before.has(leaseRefKey(r)))) added = true;
        }
        const want = tierFor(n, input.tier);
        if (want !== input.tier || Date.now() - began >= LEASE_TURN_MS) return { next: want, refs };
        const dueAt = sentAt + (added ? beatGapMs(n) : keepAliveEveryMs);
        if (Date.now() >= dueAt) {
          ctx.heartbeat(beat);
          this.opts.onBeat?.(beat);
          sentAt = Date.now();
          added = false;
          continue;
        }
        await Promise.race([ctx.sleep(Math.min(checkEveryMs, dueAt - Date.now())), this.woken()]);
        await this.untilListGapEnds(ctx, listedAt);
      }
    } catch (err) {
      // Cancelled (the lease workflow was cancelled or timed out): a new lease starts on the next change.
      this.leased = false;
      throw err;
    } finally {
      this.wake = undefined;
      this.holding -= 1;
      this.lastHeld = this.now();
    }
  }
}

/** Fails a wait by id as retryable, so Temporal retries it on a live worker; false when it no longer waits. */
export type ReleaseWait = (ref: WaitRef, err: ApplicationFailure) => Promise<boolean>;

/**
 * Where a lost lease's worker may have left waits its list lacks: the image waits a worker takes
 * are known to its lease only once the lease's start, a signal or a heartbeat naming them landed. A
 * SIGKILL between the server handing the worker a wait and that landing (the bounded chaos tier
 * met it: tens of milliseconds, up to a second before beatGapMs) left the wait started on a dead
 * worker with no heartbeat timeout and no lease listing it: stranded until its backstop (deadline +
 * 10 minutes). The release therefore also asks the server which waits are still started on that
 * worker.
 */
export interface StrandedSweep {
  /** The shared task queue the worker polled: its runs are there. */
  taskQueue: string;
  /** The worker's identity, as the server records it on each activity attempt it started. */
  workerIdentity: string;
}

/**
 * The image waits of running workflows on `taskQueue` whose current attempt was started by
 * `workerIdentity` before `startedBefore` (ms) and is still running (the worker's Temporal client:
 * one Visibility list and a describe per running workflow; no Action). Undefined when the worker has
 * no client: the listed waits are released, the rest keep their backstop.
 */
export type FindStartedWaits = (sweep: StrandedSweep, startedBefore: number) => Promise<WaitRef[]>;

/** `releaseWaits`, run on the shared task queue by the lease workflow when a lease times out. */
export function releaseActivities(release: ReleaseWait | undefined, findStarted?: FindStartedWaits) {
  return {
    async releaseWaits(
      input: ReleaseWaitsInput,
    ): Promise<{ released: number; gone: number; swept?: number }> {
      if (!release)
        throw ApplicationFailure.create({
          type: 'NoAsyncCompletion',
          message:
            'this worker has no Temporal client for async completion; another worker releases the waits',
        });
      const ctx = Context.current();
      // Attempts started before this release began: one started later is not the lost worker's.
      const began = Date.now();
      const listed = input.packed ? [...input.refs, ...unpackRefs(input.packed)] : input.refs;
      let released = 0;
      let gone = 0;
      let done = 0;
      const failure = ApplicationFailure.create({
        type: 'WaitLeaseLost',
        message: `the worker holding this wait stopped renewing its lease ${input.lease}; resuming on a live worker`,
        nonRetryable: false,
        nextRetryDelay: 1_000,
      });
      const releaseAll = async (refs: WaitRef[]) => {
        for (let i = 0; i < refs.length; i += 50) {
          const results = await Promise.all(refs.slice(i, i + 50).map((ref) => release(ref, failure)));
          for (const ok of results)
            if (ok) released += 1;
            else gone += 1;
          done += results.length;
          ctx.heartbeat({ done });
        }
      };
      await releaseAll(listed);
      if (!input.sweep || !findStarted) return { released, gone, swept: 0 };
      // After the listed waits, which need not wait for it: ~11 s at 10,000 runs open (bench/lease-sweep.ts).
      const alive = setInterval(() => ctx.heartbeat({ done, sweeping: true }), 10_000);
      let found: WaitRef[];
      try {
        found = await findStarted(input.sweep, began);
      } finally {
        clearInterval(alive);
      }
      const known = new Set(listed.map(leaseRefKey));
      const unlisted = found.filter((r) => !known.has(leaseRefKey(r)));
      await releaseAll(unlisted);
      return { released, gone, swept: unlisted.length };
    },
  };
}
