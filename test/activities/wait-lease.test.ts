/**
 * The wait lease keeper (activities/wait-lease.ts) keeps a lease over the waits its worker holds,
 * also when the server loses one: a start refused while the server was away, or a lease whose hold
 * was never picked up and that ended on its own. Issue 9: either left waits with no lease, and a
 * later SIGKILL stranded them until their backstop timeout. The watcher and Temporal are fakes;
 * the test drives the checks itself, no sleeps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { WaitCompletion } from '../../activities/image-wait-watcher';
import type { WaitRef } from '../../activities/image-wait-watcher';
import type { LeaseHeartbeat, PackedRefs, WaitLeaseInput } from '../../activities/wait-lease';
import {
  LEASE_UNHELD_CHECK_MS,
  WaitLeaseKeeper,
  heartbeatRefs,
  listGapMs,
  packRefs,
  tellGapMs,
  releaseActivities,
} from '../../activities/wait-lease';
import type { WaitRefsChange } from '../../contracts/wait-lease';
import { applyTold } from '../../contracts/wait-lease';
import { leaseHold } from '../../workflows/presets';
import { VirtualTimers } from '../support/virtual-timers';
import { T0, leaseTestWatcher, waitOf } from './watcher-fixture';

const idle: WaitCompletion = {
  complete: () => Promise.resolve(true),
  fail: () => Promise.resolve(true),
  heartbeat: () => Promise.resolve('ok'),
  reportCancellation: () => Promise.resolve(),
  cancelRequested: () => Promise.resolve(false),
};

function setup(opts: { refuseStarts?: number; startLands?: Promise<void>; timers?: VirtualTimers } = {}) {
  /** What the lease knows after each signal (its handler's merge), and the signals as sent. */
  const told: { id: string; refs: string[] }[] = [];
  const signals: (WaitRef[] | WaitRefsChange<WaitRef>)[] = [];
  const leaseKnows = new Map<string, WaitRef[]>();
  let refuseSignals = 0;
  const refusedSignals = { count: 0 };
  const recorded: string[][] = [];
  const recordedBytes: number[] = [];
  let now = T0;
  // Runs cancelled by the test (`cancel`): the watcher's next round drops their waits.
  const cancelled = new Set<string>();
  const completion: WaitCompletion = {
    ...idle,
    cancelRequested: (ref) => Promise.resolve(cancelled.has(ref.workflowId)),
    cancelledRuns: () => Promise.resolve(new Set([...cancelled].map((id) => `${id}/run`))),
  };
  const watcher = leaseTestWatcher(completion, () => now);
  const started: { id: string; input: WaitLeaseInput }[] = [];
  const open = new Set<string>();
  let refuse = opts.refuseStarts ?? 0;
  const keeper = new WaitLeaseKeeper(
    watcher,
    (id, input) => {
      if (refuse > 0) {
        refuse -= 1;
        return Promise.reject(new Error('14 UNAVAILABLE: connection refused'));
      }
      started.push({ id, input });
      const land = () => void open.add(id);
      if (opts.startLands) return opts.startLands.then(land);
      land();
      return Promise.resolve();
    },
    {
      leaseQueue: 'q-lease-w1',
      workerId: 'w1',
      heartbeatTimeoutMs: { solo: 10_000, shared: 10_000 },
      leaseOpen: (id) => Promise.resolve(open.has(id)),
      checkEveryMs: 3_600_000,
      now: () => now,
      ...(opts.timers ? { tellTimers: opts.timers } : {}),
      tellLease: (id, signal) => {
        // As Temporal answers a signal to a workflow whose start has not landed: not found.
        if (!open.has(id)) return Promise.reject(new Error(`workflow not found: ${id}`));
        if (refuseSignals > 0) {
          refuseSignals -= 1;
          refusedSignals.count += 1;
          return Promise.reject(new Error('14 UNAVAILABLE: connection refused'));
        }
        signals.push(signal);
        // What the lease knows after it, as its workflow's handler merges it.
        const before = leaseKnows.get(id) ?? started.find((s) => s.id === id)?.input.refs ?? [];
        const after = applyTold(before, signal);
        leaseKnows.set(id, after);
        told.push({ id, refs: after.map((r) => r.workflowId) });
        return Promise.resolve();
      },
      // Every heartbeat the hold hands to the SDK: the one path of its list.
      onBeat: (beat) => {
        recorded.push(heartbeatRefs(beat).map((r) => r.workflowId));
        recordedBytes.push(JSON.stringify(beat).length);
      },
    },
  );
  const wait = (n: number) => waitOf(n, T0 + 3600_000);
  return {
    watcher,
    keeper,
    started,
    open,
    wait,
    told,
    signals,
    recorded,
    recordedBytes,
    refuseNextSignals: (n: number) => (refuseSignals = n),
    refusedSignals,
    /** The runs' waits go (their runs were cancelled), as the watcher's next round finds. */
    cancel: async (...ns: number[]) => {
      for (const n of ns) cancelled.add(`wf-${n}`);
      await watcher.pollRound();
    },
    advance: (ms: number) => (now += ms),
  };
}

/** Lets the keeper's promise callbacks run (a refused start settles on a later tick). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Two waits arrive together: the lease is started for the first alone (the second is told to it after). */
async function twoWaitsArrive({ watcher, started, wait }: ReturnType<typeof setup>): Promise<void> {
  watcher.add(wait(1));
  watcher.add(wait(2));
  await settle();
  assert.deepEqual(
    started[0]?.input.refs.map((r) => r.workflowId),
    ['wf-1'],
  );
}

void describe('wait lease keeper', () => {
  void it('GIVEN a lease start refused while the server was away WHEN nothing else changes and the keeper checks THEN it starts the lease', async () => {
    const { watcher, keeper, started, wait } = setup({ refuseStarts: 1 });
    watcher.add(wait(1));
    await settle();
    assert.equal(started.length, 0, 'the first start was refused');
    await keeper.check();
    assert.equal(started.length, 1);
    assert.deepEqual(
      started[0]?.input.refs.map((r) => r.workflowId),
      ['wf-1'],
    );
    keeper.stop();
  });

  void it('GIVEN a lease whose hold never ran and that ended (its task lost) WHEN the keeper checks past the schedule-to-start window THEN a new lease lists the waits', async () => {
    const { watcher, keeper, started, open, wait, advance } = setup();
    watcher.add(wait(1));
    watcher.add(wait(2));
    assert.equal(started.length, 1);
    const first = started[0]?.id ?? '';

    // Still within the window, or still open: no new lease.
    advance(LEASE_UNHELD_CHECK_MS - 1);
    open.delete(first);
    await keeper.check();
    assert.equal(started.length, 1, 'too early to judge');
    advance(2);
    open.add(first);
    await keeper.check();
    assert.equal(started.length, 1, 'an open lease is left alone');

    // The lease workflow released the waits and ended without this worker holding it.
    open.delete(first);
    await keeper.check();
    assert.equal(started.length, 2);
    assert.notEqual(started[1]?.id, first);
    assert.deepEqual(
      started[1]?.input.refs.map((r) => r.workflowId),
      ['wf-1', 'wf-2'],
    );
    keeper.stop();
  });

  void it('GIVEN a lease being held WHEN its workflow reads as closed THEN the keeper does not start a second one', async () => {
    const { watcher, keeper, started, open, wait, advance } = setup();
    watcher.add(wait(1));
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 10_000 });
    const held = env.run(keeper.activities().holdWaitLease, { tier: 'solo' as const });
    advance(LEASE_UNHELD_CHECK_MS * 2);
    open.clear();
    await keeper.check();
    assert.equal(started.length, 1);
    env.cancel();
    await held.catch(() => undefined);
    keeper.stop();
  });

  void it('GIVEN the worker setting WHEN a lease starts THEN its input carries the timeouts and the hold takes them as its heartbeat timeout', () => {
    const { watcher, keeper, started, wait } = setup();
    watcher.add(wait(1));
    const input = started[0]?.input;
    assert.deepEqual(input?.heartbeatTimeoutMs, { solo: 10_000, shared: 10_000 });
    assert.equal(leaseHold('q', 'solo', input?.heartbeatTimeoutMs).heartbeatTimeout, 10_000);
    // Leases started before the setting existed keep the 6 min / 1 min they ran with.
    assert.equal(leaseHold('q', 'solo').heartbeatTimeout, '6m');
    assert.equal(leaseHold('q', 'shared').heartbeatTimeout, '1m');
    // A hold not picked up is lost after twice its heartbeat timeout, 30 s to 2 min (it was 30 s for
    // all, and a saturated worker at 10,000 runs lost its lease so).
    assert.equal(leaseHold('q', 'solo').scheduleToStartTimeout, 120_000);
    assert.equal(leaseHold('q', 'shared').scheduleToStartTimeout, 120_000);
    assert.equal(leaseHold('q', 'solo', input?.heartbeatTimeoutMs).scheduleToStartTimeout, 30_000);
    keeper.stop();
  });

  void it('GIVEN a lease started for one wait WHEN a second wait arrives before its hold runs THEN the lease is told both (a crash then releases both)', async () => {
    const rig = setup();
    const { keeper, started, told } = rig;
    await twoWaitsArrive(rig);
    assert.deepEqual(told.at(-1), { id: started[0]?.id, refs: ['wf-1', 'wf-2'] });
    keeper.stop();
  });

  void it('GIVEN a lease whose start has not landed yet WHEN a second wait arrives THEN the lease is told both once its start lands (a signal sent before finds no workflow)', async () => {
    let land = () => undefined as void;
    const startLands = new Promise<void>((resolve) => (land = resolve));
    const rig = setup({ startLands });
    const { keeper, started, told } = rig;
    await twoWaitsArrive(rig);
    assert.deepEqual(told, [], 'nothing told before the lease exists');
    land();
    await settle();
    assert.deepEqual(told.at(-1), { id: started[0]?.id, refs: ['wf-1', 'wf-2'] });
    keeper.stop();
  });

  void it('GIVEN a hold running WHEN a wait is added THEN its next heartbeat lists it, without waiting for the keep-alive, and the lease hears no signal', async () => {
    const { watcher, keeper, recorded, told, wait } = setup();
    watcher.add(wait(1));
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 60_000 });
    const held = env.run(keeper.activities().holdWaitLease, { tier: 'solo' as const });
    try {
      await settle();
      const toldBefore = told.length;
      watcher.add(wait(2));
      // The keep-alive is 48 s away; the added wait goes within beatGapMs (100 ms at this size).
      const deadline = Date.now() + 20_000;
      while (recorded.length < 2 && Date.now() < deadline) await delay(20);
      assert.deepEqual(recorded, [['wf-1'], ['wf-1', 'wf-2']]);
      assert.equal(told.length, toldBefore, 'a held lease hears by heartbeat, not by signal');
    } finally {
      env.cancel();
      await held.catch(() => undefined);
      keeper.stop();
    }
  });

  void it('GIVEN a worker that has taken no wait WHEN its keeper opens (before the worker polls) THEN its lease is started, listing none, so a wait taken next is never without a lease', async () => {
    const { keeper, started, watcher, wait } = setup();
    assert.equal(await keeper.open(), true, 'the start landed');
    assert.deepEqual(
      started.map((s) => ({ tier: s.input.tier, refs: s.input.refs })),
      [{ tier: 'solo', refs: [] }],
    );
    watcher.add(wait(1));
    await keeper.open();
    await settle();
    assert.equal(started.length, 1, 'one lease for the worker, not one per first wait');
    keeper.stop();
  });

  void it('GIVEN a hold whose last wait went WHEN time passes THEN it keeps holding (keep-alives list none) and a later wait joins the same lease, no new start', async () => {
    const { watcher, keeper, recorded, started, wait, cancel } = setup();
    await keeper.open();
    watcher.add(wait(1));
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 1_000 });
    let ended = false;
    const held = env.run(keeper.activities().holdWaitLease, { tier: 'solo' as const }).finally(() => {
      ended = true;
    });
    try {
      const until = async (ok: () => boolean, what: string) => {
        const deadline = Date.now() + 20_000;
        while (!ok() && Date.now() < deadline) await delay(20);
        assert.ok(ok(), `${what}: ${JSON.stringify(recorded)}`);
      };
      await until(() => recorded.length >= 1, 'the first heartbeat');
      await cancel(1);
      assert.equal(watcher.size(), 0);
      const afterGone = recorded.length;
      // Two keep-alives (0.8 s apart at a 1 s timeout) with no wait held.
      await until(() => recorded.length >= afterGone + 2, 'two keep-alives listing none');
      assert.equal(ended, false, 'the hold still runs with no wait');
      assert.deepEqual(recorded.at(-1), []);
      watcher.add(wait(2));
      await until(() => recorded.at(-1)?.[0] === 'wf-2', 'a heartbeat listing the later wait');
      assert.equal(started.length, 1, 'the same lease');
    } finally {
      env.cancel();
      await held.catch(() => undefined);
      keeper.stop();
    }
  });

  void it('GIVEN a hold over 5,000 waits WHEN 100 more arrive one after the other THEN the list is taken once per gap (0.5 s at 5,000), not once per wait, and the last record lists them all', async () => {
    const { watcher, keeper, recorded, wait } = setup();
    for (let n = 1; n <= 5_000; n++) watcher.add(wait(n));
    assert.equal(listGapMs(5_000), 500);
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 10_000 });
    const held = env.run(keeper.activities().holdWaitLease, { tier: 'shared' as const });
    try {
      await settle();
      for (let n = 5_001; n <= 5_100; n++) {
        watcher.add(wait(n));
        await settle();
      }
      const deadline = Date.now() + 5_000;
      while (recorded.at(-1)?.length !== 5_100 && Date.now() < deadline) await delay(20);
      assert.equal(recorded.at(-1)?.length, 5_100, 'the last record lists every wait');
      // One record per wait before (100); the adds take far less than a few gaps even on a loaded machine.
      assert.ok(recorded.length < 10, `${recorded.length} records for 100 waits added`);
    } finally {
      env.cancel();
      await held.catch(() => undefined);
      keeper.stop();
    }
  });

  void it('GIVEN a lease over 5,000 waits whose hold has not run WHEN 100 more arrive one after the other THEN it is told by signal once per gap, not once per wait, and the last signal lists them all', async () => {
    const { watcher, keeper, told, wait } = setup();
    try {
      for (let n = 1; n <= 5_000; n++) watcher.add(wait(n));
      const deadline = Date.now() + 5_000;
      const toldAll = async (size: number) => {
        while (told.at(-1)?.refs.length !== size && Date.now() < deadline) await delay(20);
        assert.equal(told.at(-1)?.refs.length, size, 'the last signal lists every wait');
      };
      await toldAll(5_000);
      const before = told.length;
      for (let n = 5_001; n <= 5_100; n++) {
        watcher.add(wait(n));
        await settle();
      }
      await toldAll(5_100);
      // One signal per wait before (100); the adds take far less than a few gaps even on a loaded machine.
      assert.ok(told.length - before < 10, `${told.length - before} signals for 100 waits added`);
    } finally {
      keeper.stop();
    }
  });

  void it('GIVEN a lease over 200 waits whose hold has not started WHEN 20 waits a second arrive for 60 s THEN the signals back off to one per 5 s (≤ 30, not one per list gap) and, once arrivals stop, the lease knows exactly the waits held, also after a refused signal', async () => {
    const timers = new VirtualTimers(T0);
    const { watcher, keeper, told, signals, wait, refuseNextSignals, refusedSignals } = setup({ timers });
    try {
      for (let n = 1; n <= 200; n++) watcher.add(wait(n));
      await timers.runUntil(T0);
      const before = signals.length;
      // Steady arrivals, one every 50 ms: today's signal storm (session 10's 10,000 run: 178 signals in
      // the 75.7 s its hold waited) came from a gap of listGapMs (≤ 140 ms here) per signal.
      for (let i = 1; i <= 1_200; i++) {
        await timers.runUntil(T0 + i * 50);
        if (i === 600) refuseNextSignals(1);
        watcher.add(wait(200 + i));
      }
      const sent = signals.length - before;
      // 10 eager, 5 ramping (0.25 → 4 s), then one per 5 s over the rest of the 60 s: 27.
      assert.ok(sent <= 30, `${sent} signals over 60 s of arrivals`);
      assert.ok(sent >= 15, `${sent} signals: the lease still hears of the arrivals`);
      assert.equal(refusedSignals.count, 1);
      assert.ok(
        signals.slice(before).some((x) => Array.isArray(x)),
        'after the refused signal, the whole list',
      );
      // Arrivals stop: within one backed-off gap the lease knows every wait held.
      await timers.runUntil(T0 + 60_000 + 6_000);
      assert.equal(watcher.size(), 1_400);
      assert.deepEqual(new Set(told.at(-1)?.refs), new Set(watcher.refs().map((r) => r.workflowId)));
    } finally {
      keeper.stop();
    }
  });

  void it('GIVEN a lease in its backed-off gap that ended unheld WHEN the keeper starts another and a wait arrives THEN the new lease is told it within its own gap, not at the next check', async () => {
    const timers = new VirtualTimers(T0);
    const { watcher, keeper, told, started, open, wait, advance } = setup({ timers });
    try {
      for (let n = 1; n <= 200; n++) {
        watcher.add(wait(n));
        await timers.runUntil(timers.now() + 100);
      }
      // Past the eager signals: the keeper now sleeps through a gap of seconds.
      watcher.add(wait(201));
      await timers.runUntil(timers.now() + 10);
      const first = started[0]?.id ?? '';
      open.delete(first);
      advance(LEASE_UNHELD_CHECK_MS);
      await keeper.check();
      const second = started[1]?.id;
      assert.ok(second !== undefined && second !== first, 'a new lease');
      watcher.add(wait(202));
      await timers.runUntil(timers.now() + 5_500);
      assert.ok(
        told.some((t) => t.id === second && t.refs.includes('wf-202')),
        'the new lease heard of wf-202',
      );
    } finally {
      keeper.stop();
    }
  });

  void it('GIVEN a lease under 100 waits whose hold has not started WHEN waits keep arriving past the eager signals THEN each is told at once, as before (a kill strands nothing already told)', async () => {
    const timers = new VirtualTimers(T0);
    const { watcher, keeper, told, wait } = setup({ timers });
    try {
      for (let n = 1; n <= 60; n++) {
        await timers.runUntil(T0 + n * 1_000);
        watcher.add(wait(n));
        await timers.runUntil(T0 + n * 1_000);
        if (n > 1) assert.equal(told.at(-1)?.refs.length, n, `wait ${n} told with no gap`);
      }
    } finally {
      keeper.stop();
    }
  });

  void it('GIVEN the signal gap THEN it is listGapMs for the first 10 signals and below 100 waits, then doubles from 250 ms to 5 s', () => {
    assert.deepEqual(
      [0, 9, 10, 11, 12, 13, 14, 15, 40].map((told) => tellGapMs(2_000, told)),
      [200, 200, 250, 500, 1_000, 2_000, 4_000, 5_000, 5_000],
    );
    assert.deepEqual(
      [99, 50].map((n) => tellGapMs(n, 100)),
      [0, 0],
    );
    assert.equal(tellGapMs(10_000, 10), 1_000, 'never below listGapMs');
  });

  void it('GIVEN fewer than 100 waits THEN there is no gap; it grows to 1 s at 10,000 and stays there', () => {
    assert.deepEqual([0, 99, 100, 1_000, 10_000, 50_000].map(listGapMs), [0, 0, 10, 100, 1000, 1000]);
  });

  void it('GIVEN a later turn of the lease with no change pending WHEN it starts THEN its first heartbeat lists the waits, not nothing', async () => {
    const { watcher, keeper, wait } = setup();
    watcher.add(wait(1));
    for (let turn = 0; turn < 2; turn++) {
      const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 10_000 });
      const beats: { refs: { workflowId: string }[] }[] = [];
      env.on('heartbeat', (d: { refs: { workflowId: string }[] }) => beats.push(d));
      const held = env.run(keeper.activities().holdWaitLease, { tier: 'solo' as const });
      await settle();
      assert.deepEqual(
        beats[0]?.refs.map((r) => r.workflowId),
        ['wf-1'],
        `turn ${turn}`,
      );
      env.cancel();
      await held.catch(() => undefined);
    }
    keeper.stop();
  });
  void it('GIVEN a lease over 5,000 waits whose hold has not run WHEN 100 more arrive and 10 go THEN each signal carries only what changed (not the whole list), and the lease knows exactly the waits held', async () => {
    const { watcher, keeper, told, signals, wait, cancel } = setup();
    try {
      for (let n = 1; n <= 5_000; n++) watcher.add(wait(n));
      const deadline = Date.now() + 5_000;
      const knows = async (size: number) => {
        while (told.at(-1)?.refs.length !== size && Date.now() < deadline) await delay(20);
        assert.equal(told.at(-1)?.refs.length, size);
      };
      await knows(5_000);
      const before = signals.length;
      for (let n = 5_001; n <= 5_100; n++) {
        watcher.add(wait(n));
        await settle();
      }
      await cancel(...Array.from({ length: 10 }, (_, i) => i + 1));
      assert.equal(watcher.size(), 5_090);
      await knows(5_090);
      const sent = signals.slice(before);
      assert.ok(sent.length > 0);
      for (const signal of sent) assert.ok(!Array.isArray(signal), 'a change, not a whole list');
      const listed = sent.reduce(
        (n, x) => n + (Array.isArray(x) ? x.length : x.added.length + x.gone.length),
        0,
      );
      // Whole lists: ≥ 5,000 refs per signal. Changes: each added and gone wait once.
      assert.equal(listed, 110, `${listed} refs in ${sent.length} signals for 100 added and 10 gone`);
      assert.deepEqual(new Set(told.at(-1)?.refs), new Set(watcher.refs().map((r) => r.workflowId)));
    } finally {
      keeper.stop();
    }
  });

  void it('GIVEN a signal the server refused (it may still have landed) WHEN the keeper tells the lease again THEN that signal carries the whole list, which the lease takes as it is', async () => {
    const { watcher, keeper, told, signals, wait, refuseNextSignals } = setup();
    try {
      watcher.add(wait(1));
      await settle();
      refuseNextSignals(1);
      watcher.add(wait(2));
      const deadline = Date.now() + 5_000;
      while (told.length === 0 && Date.now() < deadline) await delay(20);
      assert.deepEqual(
        (signals.at(-1) as WaitRef[]).map((r) => r.workflowId),
        ['wf-1', 'wf-2'],
        'the whole list after the refusal',
      );
      watcher.add(wait(3));
      while (told.at(-1)?.refs.length !== 3 && Date.now() < deadline) await delay(20);
      assert.deepEqual(signals.at(-1), { added: [wait(3).ref], gone: [] }, 'changes again once one landed');
    } finally {
      keeper.stop();
    }
  });

  void it('GIVEN a server refusing every signal WHEN a wait arrives before the hold runs THEN the keeper sends it again a second later, not at once in a loop', async () => {
    const { watcher, keeper, wait, refuseNextSignals, refusedSignals } = setup();
    try {
      watcher.add(wait(1));
      await settle();
      refuseNextSignals(1_000);
      watcher.add(wait(2));
      await delay(200);
      // TELL_RETRY_MS (1 s) between tries: one refusal within 200 ms (a loop without it: hundreds).
      assert.equal(refusedSignals.count, 1);
    } finally {
      keeper.stop();
    }
  });

  void it('GIVEN a hold over 5,000 waits scheduled by a lease workflow that reads packed lists WHEN a wait is added THEN the record is packed, under half the plain list (a third with real ids), and lists every wait', async () => {
    const { watcher, keeper, recorded, recordedBytes, wait } = setup();
    for (let n = 1; n <= 5_000; n++)
      watcher.add({ ...wait(n), ref: { ...wait(n).ref, runId: randomUUID() } });
    const plainBytes = JSON.stringify({ refs: watcher.refs() }).length;
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 10_000 });
    const beats: LeaseHeartbeat[] = [];
    env.on('heartbeat', (d: LeaseHeartbeat) => beats.push(d));
    const held = env.run(keeper.activities().holdWaitLease, { tier: 'shared' as const, packed: true });
    try {
      await settle();
      watcher.add(wait(5_001));
      const deadline = Date.now() + 5_000;
      while (recorded.at(-1)?.length !== 5_001 && Date.now() < deadline) await delay(20);
      assert.equal(recorded.at(-1)?.length, 5_001, 'the record lists every wait');
      assert.ok(beats[0] && 'packed' in beats[0], 'the heartbeat is packed too');
      const bytes = recordedBytes.at(-1) ?? Infinity;
      assert.ok(bytes < plainBytes / 2, `${bytes} bytes packed against ${plainBytes} plain`);
    } finally {
      env.cancel();
      await held.catch(() => undefined);
      keeper.stop();
    }
  });

  void it('GIVEN a hold scheduled by a lease workflow of before packed lists (no `packed`) THEN it records plain refs, which that workflow reads', async () => {
    const { watcher, keeper, wait } = setup();
    watcher.add(wait(1));
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 10_000 });
    const beats: LeaseHeartbeat[] = [];
    env.on('heartbeat', (d: LeaseHeartbeat) => beats.push(d));
    const held = env.run(keeper.activities().holdWaitLease, { tier: 'solo' as const });
    await settle();
    assert.deepEqual(beats[0], { refs: [wait(1).ref] });
    env.cancel();
    await held.catch(() => undefined);
    keeper.stop();
  });
});

void describe('releaseWaits', () => {
  void it('GIVEN a lost lease whose last heartbeat was packed WHEN releaseWaits runs THEN every packed wait is failed retryable by id, with the plain ones', async () => {
    const released: WaitRef[] = [];
    const { releaseWaits } = releaseActivities((ref) => {
      released.push(ref);
      return Promise.resolve(true);
    });
    const refs = Array.from({ length: 120 }, (_, n) => ({
      workflowId: `wf-${n}`,
      runId: randomUUID(),
      activityId: '7',
    }));
    const out = await new MockActivityEnvironment().run(releaseWaits, {
      refs: refs.slice(0, 1),
      packed: packRefs(refs.slice(1)),
      lease: 'lease-1',
    });
    assert.deepEqual(out, { released: 120, gone: 0, swept: 0 });
    assert.deepEqual(released, refs);
  });

  void it('GIVEN a lost lease that names its worker WHEN releaseWaits runs THEN its list is released first, then the waits still started on that worker, each once, and only those started before the release', async () => {
    const released: string[] = [];
    const asked: { sweep: unknown; before: number; releasedBefore: number }[] = [];
    const ref = (n: number) => ({ workflowId: `wf-${n}`, runId: 'r', activityId: '7' });
    const { releaseWaits } = releaseActivities(
      (r) => {
        released.push(r.workflowId);
        return Promise.resolve(true);
      },
      (sweep, before) => {
        asked.push({ sweep, before, releasedBefore: released.length });
        // wf-2 is listed too; wf-3 was handed to the worker after its last list landed.
        return Promise.resolve([ref(2), ref(3)]);
      },
    );
    const sweep = { taskQueue: 'q', workerIdentity: '4242@host-a' };
    const startedAt = Date.now();
    const out = await new MockActivityEnvironment().run(releaseWaits, {
      refs: [ref(1), ref(2)],
      lease: 'lease-1',
      sweep,
    });
    assert.deepEqual(out, { released: 3, gone: 0, swept: 1 });
    assert.deepEqual(released, ['wf-1', 'wf-2', 'wf-3']);
    assert.deepEqual(
      asked.map((a) => a.sweep),
      [sweep],
    );
    assert.ok((asked[0]?.before ?? 0) >= startedAt, 'attempts started before the release began');
    assert.equal(asked[0]?.releasedBefore, 2, 'the listed waits do not wait for the sweep');
  });

  void it('GIVEN a lease of before the sweep (no worker named) WHEN releaseWaits runs THEN only its list is released and the server is not asked', async () => {
    let asked = 0;
    const { releaseWaits } = releaseActivities(
      () => Promise.resolve(true),
      () => {
        asked += 1;
        return Promise.resolve([]);
      },
    );
    const out = await new MockActivityEnvironment().run(releaseWaits, {
      refs: [{ workflowId: 'wf-1', runId: 'r', activityId: '7' }],
      lease: 'lease-1',
    });
    assert.deepEqual(out, { released: 1, gone: 0, swept: 0 });
    assert.equal(asked, 0);
  });

  void it('GIVEN a packed list of an unknown version THEN releaseWaits fails naming it, without retrying', async () => {
    const { releaseWaits } = releaseActivities(() => Promise.resolve(true));
    const packed = { ...packRefs([]), v: 3 } as unknown as PackedRefs;
    await assert.rejects(new MockActivityEnvironment().run(releaseWaits, { refs: [], packed, lease: 'l' }), {
      type: 'UnknownWaitListEncoding',
      nonRetryable: true,
    });
  });
});
