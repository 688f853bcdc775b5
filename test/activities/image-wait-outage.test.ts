/**
 * The watcher (activities/image-wait-watcher.ts) through a Temporal server outage: an answer the
 * server did not take is sent again every RESEND_EVERY_MS on its own, not at the image's next poll,
 * so a wait completes within about a second of the server's return (issue 13: "a server outage of
 * 30 s costs no wait more than 30 s extra"). A running watcher on virtual time, EC2 mocked at the SDK
 * level, Temporal's async completion a recorder that refuses every call while "down".
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WaitCompletion } from '../../activities/image-wait-watcher';
import { RESEND_EVERY_MS } from '../../activities/image-wait-watcher';
import { VirtualTimers } from '../support/virtual-timers';
import { T0, stampedImagesEc2, watcherHolding } from './watcher-fixture';

function outageHarness(waits: number) {
  const timers = new VirtualTimers(T0);
  let availableFrom = Infinity;
  const { aws, askedAt } = stampedImagesEc2(timers, () =>
    timers.now() >= availableFrom ? 'available' : 'pending',
  );
  let serverBackAt = -Infinity;
  const landedAt = new Map<string, number>();
  let refused = 0;
  const up = () => timers.now() >= serverBackAt;
  const unavailable = () => {
    refused += 1;
    return Promise.reject(new Error('14 UNAVAILABLE: No connection established'));
  };
  const completion: WaitCompletion = {
    complete(token) {
      if (!up()) return unavailable();
      landedAt.set(Buffer.from(token).toString(), timers.now());
      return Promise.resolve(true);
    },
    fail: () => (up() ? Promise.resolve(true) : unavailable()),
    heartbeat: () => (up() ? Promise.resolve('ok' as const) : unavailable()),
    reportCancellation: () => Promise.resolve(),
    cancelRequested: () => (up() ? Promise.resolve(false) : unavailable()),
  };
  const watcher = watcherHolding(waits, { aws, completion, timers });
  return {
    timers,
    watcher,
    askedAt,
    landedAt,
    refusedCalls: () => refused,
    /** The server goes away now and is back after `ms`; the images are available from now on. */
    outage(ms: number) {
      serverBackAt = timers.now() + ms;
      availableFrom = timers.now();
      return serverBackAt;
    },
  };
}

void describe('image wait watcher: a Temporal server outage', () => {
  void it('GIVEN 50 held waits WHEN their images become available while the server is away for 30 s THEN every answer lands within one resend interval of its return, EC2 is asked about each image once more, and the lease keeps listing them until then', async () => {
    const { timers, watcher, askedAt, landedAt, refusedCalls, outage } = outageHarness(50);
    await timers.runUntil(T0 + 25_000); // held and polled a few times, all pending
    const polledBefore = new Map([...askedAt].map(([id, at]) => [id, at.length]));

    const backAt = outage(30_000);
    await timers.runUntil(backAt - 1);
    assert.equal(landedAt.size, 0, 'nothing lands while the server is away');
    assert.equal(watcher.size(), 50, 'every wait still held');
    assert.equal(watcher.refs().length, 50, 'the lease still lists every wait');
    for (const [id, at] of askedAt)
      assert.equal(at.length, (polledBefore.get(id) ?? 0) + 1, `${id}: asked once more, not every round`);
    // Each image is seen available at its next poll (within one 10 s interval of the outage's start),
    // then its answer is resent every second until the server is back: at least 20 sends each.
    assert.ok(refusedCalls() >= 50 * 20, `answers sent again while away (${refusedCalls()} refused)`);

    await timers.runUntil(backAt + 5 * RESEND_EVERY_MS, () => landedAt.size === 50);
    assert.equal(landedAt.size, 50, 'every wait completed');
    const latest = Math.max(...landedAt.values());
    assert.ok(
      latest - backAt <= RESEND_EVERY_MS,
      `the last answer landed ${latest - backAt} ms after the return`,
    );
    assert.equal(watcher.size(), 0);
    await watcher.handOff();
  });

  void it('GIVEN an answer still unsent WHEN the worker shuts down THEN the wait is handed off like any other and no resend outlives the hand-off', async () => {
    const { timers, watcher, landedAt, outage } = outageHarness(3);
    await timers.runUntil(T0 + 5_000);
    outage(60_000);
    await timers.runUntil(T0 + 20_000);
    assert.equal(watcher.size(), 3);
    const handing = watcher.handOff();
    await timers.runUntil(T0 + 120_000);
    assert.equal(await handing, 3, 'the three waits were handed off');
    assert.equal(landedAt.size, 0, 'no completion was sent after the hand-off');
    assert.equal(timers.pending, 0, 'no loop left sleeping');
  });
});
