/**
 * Cancellation at fleet scale (issue 13: "a cancelled run's wait stops its polls within one poll
 * interval"). The watcher (activities/image-wait-watcher.ts) running its own lanes on virtual time
 * with 1,000 held waits; EC2 mocked at the SDK level; Temporal a recorder whose Visibility list names
 * the runs that marked themselves cancelling. The per-wait reads (10/s) alone reach each run only
 * every 100 s at this size; the one list per interval reaches every cancelled run at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WaitCompletion, WaitRef } from '../../activities/image-wait-watcher';
import { DEFAULT_WATCHER_OPTIONS } from '../../activities/image-wait-watcher';
import { VirtualTimers } from '../support/virtual-timers';
import { T0, ami, stampedImagesEc2, watcherHolding } from './watcher-fixture';

const INTERVAL = DEFAULT_WATCHER_OPTIONS.pollIntervalMs;
const run = (n: number) => `wf-${n}/run`;

function fleet(waits: number, opts: { visibility: boolean }) {
  const timers = new VirtualTimers(T0);
  const { aws, askedAt } = stampedImagesEc2(timers);
  const cancelling = new Set<string>();
  /** Runs listed as cancelling whose wait's activity was not asked to cancel (their undo awaits it). */
  const listedOnly = new Set<string>();
  const reportedAt = new Map<string, number>();
  let reads = 0;
  let lists = 0;
  const completion: WaitCompletion = {
    complete: () => Promise.resolve(true),
    fail: () => Promise.resolve(true),
    heartbeat: () => Promise.resolve('ok' as const),
    reportCancellation(token) {
      reportedAt.set(Buffer.from(token).toString(), timers.now());
      return Promise.resolve();
    },
    cancelRequested(ref: WaitRef) {
      reads += 1;
      return Promise.resolve(cancelling.has(`${ref.workflowId}/${ref.runId}`));
    },
    ...(opts.visibility
      ? {
          cancelledRuns() {
            lists += 1;
            return Promise.resolve(new Set([...cancelling, ...listedOnly]));
          },
        }
      : {}),
  };
  const watcher = watcherHolding(waits, { aws, completion, timers });
  return {
    timers,
    watcher,
    askedAt,
    reportedAt,
    cancel: (n: number) => cancelling.add(run(n)),
    listOnly: (n: number) => listedOnly.add(run(n)),
    counts: () => ({ reads, lists }),
  };
}

void describe('image wait watcher: cancellation at 1,000 held waits', () => {
  void it('GIVEN 1,000 held waits WHEN one run marks itself cancelling THEN its wait is reported cancelled and its image asked about no more within one poll interval, with one Visibility list per interval, while the other 999 go on', async () => {
    const f = fleet(1_000, { visibility: true });
    await f.timers.runUntil(T0 + 60_000);
    // The wait the round-robin reads would reach last: just read, so ~100 s away from its next read.
    const victim = 777;
    const cancelledAt = f.timers.now();
    f.cancel(victim);
    await f.timers.runUntil(cancelledAt + 3 * INTERVAL);

    const reported = f.reportedAt.get(`wf-${victim}`);
    assert.ok(reported !== undefined, 'the cancelled wait was reported cancelled');
    assert.ok(reported - cancelledAt <= INTERVAL, `reported ${reported - cancelledAt} ms after the cancel`);
    const after = (f.askedAt.get(ami(victim)) ?? []).filter((t) => t > reported);
    assert.deepEqual(after, [], 'its image was asked about no more');
    assert.equal(f.watcher.size(), 999, 'the other waits are still held');
    assert.equal(f.reportedAt.size, 1, 'no other wait was reported cancelled');
    const { lists } = f.counts();
    assert.ok(lists >= 8 && lists <= 10, `${lists} Visibility lists in 90 s: one per interval`);
    const handing = f.watcher.handOff();
    await f.timers.runUntil(f.timers.now() + 60_000);
    await handing;
  });

  void it('GIVEN a run listed as cancelling whose wait was not asked to cancel (its undo still needs it) WHEN the list names it THEN its wait is read and kept, not stopped', async () => {
    const f = fleet(1_000, { visibility: true });
    await f.timers.runUntil(T0 + 60_000);
    f.listOnly(321);
    const readsBefore = f.counts().reads;
    await f.timers.runUntil(f.timers.now() + 3 * INTERVAL);
    assert.equal(f.reportedAt.size, 0, 'no wait reported cancelled');
    assert.equal(f.watcher.size(), 1_000, 'every wait still held');
    // Three lists, each confirmed by one read of that wait, beside the round-robin's 100 per interval.
    assert.ok(f.counts().reads - readsBefore >= 3, 'the listed wait was read');
    const handing = f.watcher.handOff();
    await f.timers.runUntil(f.timers.now() + 60_000);
    await handing;
  });

  void it('GIVEN 1,000 held waits and no Visibility list (runs that mark nothing) WHEN one run is cancelled THEN the per-wait reads still find it, within the round-robin of 100 reads per interval', async () => {
    const f = fleet(1_000, { visibility: false });
    await f.timers.runUntil(T0 + 60_000);
    const cancelledAt = f.timers.now();
    f.cancel(777);
    await f.timers.runUntil(cancelledAt + 120_000, () => f.reportedAt.size > 0);
    const reported = f.reportedAt.get('wf-777');
    assert.ok(reported !== undefined, 'found by the fallback reads');
    assert.ok(reported - cancelledAt <= 100_000 + INTERVAL, `found ${reported - cancelledAt} ms after`);
    const handing = f.watcher.handOff();
    await f.timers.runUntil(f.timers.now() + 60_000);
    await handing;
  });
});
