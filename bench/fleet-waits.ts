/**
 * `npm run bench:fleet-waits [-- --json FILE]`: the watcher side of issue 13's figures, measured
 * in this process against the bench's fake EC2 on a virtual clock (no Temporal server):
 *
 *   a. memory the watcher holds per 1,000 and 10,000 waits (heap and RSS after GC; run with
 *      --expose-gc, which the script does itself)
 *   b. detection lag with 10,000 waits in one account-region under the default call budget, and
 *      the DescribeImages calls per second that cost
 *   c. Temporal Actions per run-hour of waiting, counted by Temporal Cloud's rules from the
 *      design's constants (a model, printed with its breakdown), beside today's heartbeating wait
 *
 * What needs a server and worker processes (RSS of a whole worker with N runs waiting, resume after
 * SIGTERM/SIGKILL, throughput) is measured by `npm run bench` and the e2e tier; those keys are null
 * here with the reason in `notMeasured`.
 */
import { writeFile } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { WaitCompletion } from '../activities/image-wait-watcher';
import { DEFAULT_WATCHER_OPTIONS, ImageWaitWatcher } from '../activities/image-wait-watcher';
import { LEASE_HEARTBEAT_TIMEOUT_MS, SHARED_FROM } from '../activities/wait-lease';
import { FakeEc2 } from './fake-ec2';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const REGION = { region: 'us-east-1', accountId: '111122223333' };

function quietCompletion(): WaitCompletion & { completedAt: Map<string, number>; now: () => number } {
  const completedAt = new Map<string, number>();
  const c = {
    completedAt,
    now: () => 0,
    complete(token: Uint8Array) {
      completedAt.set(Buffer.from(token).toString(), c.now());
      return Promise.resolve(true);
    },
    fail: () => Promise.resolve(true),
    heartbeat: () => Promise.resolve('ok' as const),
    reportCancellation: () => Promise.resolve(),
    cancelRequested: () => Promise.resolve(false),
  };
  return c;
}

function setup(n: number) {
  let now = 0;
  const ec2 = new FakeEc2({ now: () => now });
  const completion = quietCompletion();
  completion.now = () => now;
  const watcher = new ImageWaitWatcher({
    aws: ec2.clients(),
    completion,
    now: () => now,
    // Virtual time: pacing between calls advances the clock instead of sleeping.
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
    autoPoll: false,
  });
  for (let i = 0; i < n; i++) {
    const imageId = `ami-${i.toString(16).padStart(17, '0')}`;
    ec2.addImage(imageId);
    watcher.add({
      token: Buffer.from(`token-${i}-${'x'.repeat(180)}`), // a real task token is ~200 bytes
      ref: { workflowId: `image-${i}`, runId: '0b7a4c1e-0000-4000-8000-000000000001', activityId: '12' },
      target: REGION,
      imageId,
      deadline: 86_400_000,
    });
  }
  return { ec2, watcher, completion, advance: (ms: number) => (now += ms), now: () => now };
}

function memoryMb(): { heap: number; rss: number } {
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed / 1e6, rss: m.rss / 1e6 };
}

async function watcherMemory(n: number): Promise<{ heapMb: number; rssMb: number }> {
  const before = memoryMb();
  const s = setup(n);
  await s.watcher.pollRound();
  const after = memoryMb();
  const held = s.watcher.size();
  if (held !== n) throw new Error(`expected ${n} held waits, found ${held}`);
  return { heapMb: after.heap - before.heap, rssMb: after.rss - before.rss };
}

/** All 10,000 images become available at once; the lag is until the last token is completed. */
async function lagAt(
  n: number,
): Promise<{ lagSeconds: number; callsPerSecond: number; roundSeconds: number }> {
  const s = setup(n);
  await s.watcher.pollRound(); // the first round: everything pending
  // Worst case: every image turns available just after the previous round asked about it; the
  // next round starts a poll interval after that one began (or at once, if it took longer).
  const roundBegan = 0;
  s.advance(Math.max(0, DEFAULT_WATCHER_OPTIONS.pollIntervalMs - s.now()));
  const calls0 = s.ec2.counts.describeImages;
  const availableAt = roundBegan;
  s.ec2.releaseAll();
  const began = s.now();
  await s.watcher.pollRound();
  const roundSeconds = (s.now() - began) / 1000;
  const last = Math.max(...s.completion.completedAt.values());
  if (s.completion.completedAt.size !== n) throw new Error('not every wait completed');
  const calls = s.ec2.counts.describeImages - calls0;
  return {
    lagSeconds: (last - availableAt) / 1000,
    callsPerSecond: calls / Math.max(roundSeconds, 1e-9),
    roundSeconds,
  };
}

/** Temporal Cloud counts: activity start/retry, each heartbeat that reaches the server, workflow start. */
function actionsPerRunHour(waits: number) {
  const tier = waits >= SHARED_FROM ? 'shared' : 'solo';
  const leaseEvery = Math.min(LEASE_HEARTBEAT_TIMEOUT_MS[tier] * 0.8, 300_000);
  const leaseHeartbeatsPerHour = 3_600_000 / leaseEvery;
  const breakdown = {
    activityStart: 1,
    // One progress heartbeat per progressEveryMs (30 min): one in an hour-long wait.
    progressHeartbeats: Math.max(0, Math.ceil(3_600_000 / DEFAULT_WATCHER_OPTIONS.progressEveryMs) - 1),
    leaseShare: leaseHeartbeatsPerHour / waits,
  };
  return {
    total: breakdown.activityStart + breakdown.progressHeartbeats + breakdown.leaseShare,
    breakdown,
    tier,
  };
}

/** Today's wait: heartbeat timeout 6 min, heartbeats at 0.8 of it (~4.8 min), one activity start. */
function todaysActionsPerRunHour(): number {
  return 1 + 3_600_000 / (360_000 * 0.8);
}

async function main(): Promise<void> {
  const jsonAt = process.argv.indexOf('--json');
  const jsonFile = jsonAt >= 0 ? process.argv[jsonAt + 1] : undefined;
  const w1000 = await watcherMemory(1_000);
  const w10000 = await watcherMemory(10_000);
  const lag = await lagAt(10_000);
  const single = actionsPerRunHour(1);
  const at100 = actionsPerRunHour(100);
  const today = todaysActionsPerRunHour();

  const rows: [string, string, string][] = [
    [
      'watcher memory, 1,000 waits (heap / RSS MB)',
      `${w1000.heapMb.toFixed(1)} / ${w1000.rssMb.toFixed(1)}`,
      'n/a (activity per wait)',
    ],
    [
      'watcher memory, 10,000 waits (heap / RSS MB)',
      `${w10000.heapMb.toFixed(1)} / ${w10000.rssMb.toFixed(1)}`,
      'n/a',
    ],
    ['detection lag, 10,000 waits in one region (s)', lag.lagSeconds.toFixed(1), '≤ 14.65 (per-wait polls)'],
    [
      'DescribeImages calls/s during that round',
      lag.callsPerSecond.toFixed(1),
      `budget ${DEFAULT_WATCHER_OPTIONS.callsPerSecond}/s`,
    ],
    ['Actions per run-hour, one wait', single.total.toFixed(2), today.toFixed(2)],
    ['Actions per run-hour, 100 concurrent waits', at100.total.toFixed(2), today.toFixed(2)],
  ];
  console.log('fleet-scale waits (issue 13): watcher side, fake EC2, virtual clock');
  for (const [what, now, before] of rows)
    console.log(`  ${what.padEnd(48)} ${now.padStart(14)}   today: ${before}`);
  console.log(`  breakdown, one wait (${single.tier} lease): ${JSON.stringify(single.breakdown)}`);
  console.log(`  breakdown, 100 waits (${at100.tier} lease): ${JSON.stringify(at100.breakdown)}`);

  if (jsonFile) {
    const notMeasured =
      'needs the dev server and worker processes: npm run bench (today design) and test/e2e/async-image-wait';
    const figures = {
      rssMb: { idle: null, waiting1000: null, waiting10000: null },
      watcherMb: { waiting1000: w1000, waiting10000: w10000 },
      resumeSeconds: { sigterm: null, sigkill: null },
      actionsPerRunHour: { single: single.total, at100: at100.total, today, breakdown: { single, at100 } },
      lagSeconds: { max: lag.lagSeconds, roundSeconds: lag.roundSeconds },
      describeImagesPerSecond: lag.callsPerSecond,
      overheadRatio: { modelled: null },
      throughputPerMinute: null,
      notMeasured: {
        rssMb: notMeasured,
        resumeSeconds: notMeasured,
        overheadRatio: notMeasured,
        throughputPerMinute: notMeasured,
      },
    };
    await writeFile(jsonFile, `${JSON.stringify(figures, null, 2)}\n`);
    console.log(`figures written to ${jsonFile}`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
