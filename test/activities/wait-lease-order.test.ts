/**
 * The wait lease's list reaches the server by one ordered path (activities/wait-lease.ts,
 * LEASE_BEAT_GAP_MS). It used to go two ways, Core's throttled heartbeat and the worker's client at
 * once for added waits, and an older list on Core's path could land after a newer one on the
 * client's: the server kept the older list (without the added waits) until Core's next window, and a
 * SIGKILL then stranded those waits until their backstop (chaos seed 1; docs/fleet-waits.md).
 *
 * The "SDK" here is a fake of Core's heartbeat manager as it is in @temporalio/core-bridge 1.24
 * (activity_heartbeat_manager.rs): one report in flight per activity, the newest details given
 * meanwhile sent after it, once its throttle window has passed. The lease worker's throttle is
 * LEASE_BEAT_GAP_MS (worker/async-waits.ts), the least of the hold's gaps (beatGapMs). Gaps between heartbeats are asserted as lower bounds
 * only (a loaded machine makes them longer, never shorter).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { WaitCompletion } from '../../activities/image-wait-watcher';
import type { LeaseHeartbeat, LeaseTier } from '../../activities/wait-lease';
import {
  LEASE_BEAT_GAP_MS,
  LEASE_HEARTBEAT_TIMEOUT_MS,
  WaitLeaseKeeper,
  beatGapMs,
  heartbeatRefs,
  keepAliveMs,
} from '../../activities/wait-lease';
import { T0, leaseTestWatcher, waitOf } from './watcher-fixture';

/** setTimeout may fire up to a millisecond before Date.now() says the delay has passed. */
const TIMER_SLACK_MS = 2;

/** Each list as it reaches the fake server, and the order it was handed to the SDK in. */
interface Landed {
  sent: number;
  refs: string[];
}

/** Core's heartbeat manager for one activity: one report in flight, then the newest details after the throttle window. */
class FakeCore {
  readonly landed: Landed[] = [];
  private inFlight = false;
  private pending: { sent: number; beat: LeaseHeartbeat } | undefined;
  private sent = 0;
  /** Resolves the first report: until then it is in flight (a slow call, retried by Core). */
  releaseFirst!: () => void;
  private readonly firstLands = new Promise<void>((resolve) => (this.releaseFirst = resolve));

  constructor(private readonly throttleMs: number) {}

  heartbeat(beat: LeaseHeartbeat): void {
    const next = { sent: this.sent++, beat };
    if (this.inFlight) this.pending = next;
    else void this.report(next);
  }

  private async report(hb: { sent: number; beat: LeaseHeartbeat }): Promise<void> {
    this.inFlight = true;
    if (hb.sent === 0) await this.firstLands;
    this.landed.push({ sent: hb.sent, refs: heartbeatRefs(hb.beat).map((r) => r.workflowId) });
    await delay(this.throttleMs);
    const next = this.pending;
    this.pending = undefined;
    if (next) await this.report(next);
    else this.inFlight = false;
  }

  /** The list the server keeps now: the last one that landed. */
  kept(): string[] | undefined {
    return this.landed.at(-1)?.refs;
  }
}

function setup() {
  const cancelled = new Set<string>();
  const completion: WaitCompletion = {
    complete: () => Promise.resolve(true),
    fail: () => Promise.resolve(true),
    heartbeat: () => Promise.resolve('ok'),
    reportCancellation: () => Promise.resolve(),
    cancelRequested: (ref) => Promise.resolve(cancelled.has(ref.workflowId)),
    cancelledRuns: () => Promise.resolve(new Set([...cancelled].map((id) => `${id}/run`))),
  };
  const watcher = leaseTestWatcher(completion);
  const keeper = new WaitLeaseKeeper(watcher, () => Promise.resolve(), {
    leaseQueue: 'q-lease-w1',
    workerId: 'w1',
    heartbeatTimeoutMs: { solo: 60_000, shared: 60_000 },
    checkEveryMs: 3_600_000,
    tellLease: () => Promise.resolve(),
  });
  const wait = (n: number) => waitOf(n, T0 + 3600_000);
  /** Runs the hold with this heartbeat timeout; each heartbeat goes to `core` and is stamped. */
  const hold = (heartbeatTimeoutMs: number, core?: FakeCore, tier: LeaseTier = 'solo') => {
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs });
    const beats: { at: number; refs: string[] }[] = [];
    env.on('heartbeat', (d: LeaseHeartbeat) => {
      beats.push({ at: Date.now(), refs: heartbeatRefs(d).map((r) => r.workflowId) });
      core?.heartbeat(d);
    });
    const held = env.run(keeper.activities().holdWaitLease, { tier, packed: true });
    return {
      beats,
      async end() {
        env.cancel();
        await held.catch(() => undefined);
        keeper.stop();
      },
    };
  };
  return {
    watcher,
    keeper,
    wait,
    hold,
    cancel: async (...ns: number[]) => {
      for (const n of ns) cancelled.add(`wf-${n}`);
      await watcher.pollRound();
    },
  };
}

async function until(what: string | (() => string), ok: () => boolean, withinMs = 20_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!ok() && Date.now() < deadline) await delay(10);
  assert.ok(ok(), `${typeof what === 'string' ? what : what()} within ${withinMs} ms`);
}

void describe('wait lease: the hold list reaches the server in order', () => {
  void it('GIVEN the hold first report slow (in flight) WHEN waits are added meanwhile THEN no older list lands after a newer one and the server ends with the newest', async () => {
    const { watcher, wait, hold } = setup();
    watcher.add(wait(1));
    const core = new FakeCore(LEASE_BEAT_GAP_MS);
    const h = hold(60_000, core);
    try {
      await until('the first heartbeat', () => h.beats.length === 1);
      watcher.add(wait(2));
      watcher.add(wait(3));
      await until('a heartbeat listing the added waits', () => h.beats.at(-1)?.refs.length === 3);
      core.releaseFirst();
      await until('the newest list to land', () => core.kept()?.length === 3);
      const order = core.landed.map((l) => l.sent);
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
        `lists landed in the order sent: ${JSON.stringify(core.landed)}`,
      );
      assert.deepEqual(core.kept(), ['wf-1', 'wf-2', 'wf-3']);
    } finally {
      await h.end();
    }
  });

  void it('GIVEN a hold whose waits do not change THEN it heartbeats once per keep-alive (0.8 x timeout), never sooner', async () => {
    const { watcher, wait, hold } = setup();
    watcher.add(wait(1));
    const timeoutMs = 1_000;
    const h = hold(timeoutMs);
    try {
      await until('three heartbeats', () => h.beats.length >= 3);
      const gaps = h.beats.slice(1).map((b, i) => b.at - (h.beats[i]?.at ?? 0));
      for (const gap of gaps)
        assert.ok(
          gap >= keepAliveMs(timeoutMs) - TIMER_SLACK_MS,
          `heartbeats ${JSON.stringify(gaps)} ms apart; the keep-alive is ${keepAliveMs(timeoutMs)} ms`,
        );
    } finally {
      await h.end();
    }
  });

  void it('GIVEN a hold that has just heartbeated WHEN a wait is added THEN a heartbeat lists it at once, not a second later (a SIGKILL in that second stranded it: the bounded chaos tier, CI of 8cd6654)', async () => {
    const { watcher, wait, hold } = setup();
    watcher.add(wait(1));
    const h = hold(60_000);
    try {
      await until('the first heartbeat', () => h.beats.length === 1);
      await delay(LEASE_BEAT_GAP_MS + 50);
      const addedAt = Date.now();
      watcher.add(wait(2));
      await until('a heartbeat listing the added wait', () => h.beats.at(-1)?.refs.length === 2);
      const after = (h.beats.at(-1)?.at ?? Infinity) - addedAt;
      // Session 10's hold sent it 1 s after the first heartbeat, ~850 ms after the add.
      assert.ok(after < 500, `the heartbeat listing the added wait went ${after} ms after it was added`);
    } finally {
      await h.end();
    }
  });

  void it('GIVEN waits added every 20 ms while the hold runs THEN heartbeats are at least LEASE_BEAT_GAP_MS apart (not one per wait) and the last lists every wait', async () => {
    const { watcher, wait, hold } = setup();
    for (let n = 1; n <= 3; n++) watcher.add(wait(n));
    // The shared tier from the start: a solo hold ends its turn at 6 waits.
    const h = hold(60_000, undefined, 'shared');
    try {
      await until('the first heartbeat', () => h.beats.length === 1);
      for (let n = 4; n <= 40; n++) {
        watcher.add(wait(n));
        await delay(20);
      }
      await until(
        () => `a heartbeat listing all 40 (${JSON.stringify(h.beats.map((b) => b.refs.length))})`,
        () => h.beats.at(-1)?.refs.length === 40,
      );
      const gaps = h.beats.slice(1).map((b, i) => b.at - (h.beats[i]?.at ?? 0));
      assert.ok(h.beats.length <= 12, `${h.beats.length} heartbeats for 37 waits arriving 20 ms apart`);
      for (const gap of gaps)
        assert.ok(gap >= LEASE_BEAT_GAP_MS - TIMER_SLACK_MS, `heartbeats ${JSON.stringify(gaps)} ms apart`);
    } finally {
      await h.end();
    }
  });

  void it('GIVEN the list size THEN the gap between heartbeats of added waits is 100 ms up to 1,000 waits and grows with the list to 1 s at 10,000', () => {
    assert.deepEqual(
      [1, 99, 1_000, 5_000, 10_000, 50_000].map(beatGapMs),
      [100, 100, 100, 500, 1_000, 1_000],
    );
  });

  void it('GIVEN the default timeouts THEN the keep-alive is what Core throttled the lease to before: 48 s shared, 288 s solo, never past 5 min', () => {
    assert.deepEqual(
      [LEASE_HEARTBEAT_TIMEOUT_MS.shared, LEASE_HEARTBEAT_TIMEOUT_MS.solo, 600_000].map(keepAliveMs),
      [48_000, 288_000, 300_000],
    );
  });

  void it('GIVEN waits that only went (none added) THEN the hold sends no heartbeat before the keep-alive, and the keep-alive lists the waits left', async () => {
    const { watcher, wait, hold, cancel } = setup();
    for (let n = 1; n <= 3; n++) watcher.add(wait(n));
    const timeoutMs = 2_000;
    const h = hold(timeoutMs);
    try {
      await until('the first heartbeat', () => h.beats.length === 1);
      await cancel(2);
      assert.equal(watcher.size(), 2, 'the cancelled run dropped its wait');
      await until('the keep-alive', () => h.beats.length === 2);
      const [first, second] = h.beats;
      assert.ok(first && second);
      assert.ok(
        second.at - first.at >= keepAliveMs(timeoutMs) - TIMER_SLACK_MS,
        `the keep-alive came ${second.at - first.at} ms after the first heartbeat`,
      );
      assert.deepEqual(second.refs, ['wf-1', 'wf-3']);
    } finally {
      await h.end();
    }
  });
});
