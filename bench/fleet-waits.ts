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
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { WaitCompletion } from '../activities/image-wait-watcher';
import { DEFAULT_WATCHER_OPTIONS, ImageWaitWatcher } from '../activities/image-wait-watcher';
import { LEASE_HEARTBEAT_TIMEOUT_MS, SHARED_FROM, keepAliveMs } from '../activities/wait-lease';
import { VirtualTimers } from '../devkit/virtual-timers';
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
      completedAt.set(Buffer.from(token).toString().trimEnd(), c.now());
      return Promise.resolve(true);
    },
    fail: () => Promise.resolve(true),
    heartbeat: () => Promise.resolve('ok' as const),
    reportCancellation: () => Promise.resolve(),
    cancelRequested: () => Promise.resolve(false),
  };
  return c;
}

const imageIdOf = (i: number) => `ami-${i.toString(16).padStart(17, '0')}`;

function addWaits(ec2: FakeEc2, watcher: ImageWaitWatcher, n: number): void {
  for (let i = 0; i < n; i++) {
    const imageId = imageIdOf(i);
    ec2.addImage(imageId);
    watcher.add({
      // The token names the wait, padded to the ~200 bytes of a real task token.
      token: Buffer.from(`token-${i}`.padEnd(200, ' ')),
      ref: { workflowId: `image-${i}`, runId: '0b7a4c1e-0000-4000-8000-000000000001', activityId: '12' },
      target: REGION,
      imageId,
      deadline: 86_400_000,
    });
  }
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
  addWaits(ec2, watcher, n);
  return { ec2, watcher, completion };
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

/**
 * Detection lag of a running watcher (its own lanes, on virtual time): `n` waits in one
 * account-region polled for a minute, then every image turns available just after the call that
 * last asked about it (the worst case); the lag is until its token is completed.
 */
export async function lagAt(
  n: number,
  callsPerSecond: number,
): Promise<{
  lagSeconds: number;
  meanLagSeconds: number;
  callsPerSecond: number;
  maxCallsInOneSecond: number;
}> {
  const timers = new VirtualTimers(0);
  const ec2 = new FakeEc2({ now: timers.now });
  const completion = quietCompletion();
  completion.now = timers.now;
  const calls: number[] = [];
  const clients = ec2.clients();
  const counted: typeof clients = {
    ...clients,
    ec2: async (target) => {
      const inner = await clients.ec2(target);
      return {
        send: (command: unknown) => {
          calls.push(timers.now());
          return (inner as unknown as FakeEc2).send(command);
        },
      } as unknown as EC2Client;
    },
  };
  const watcher = new ImageWaitWatcher(
    { aws: counted, completion, now: timers.now, sleep: timers.sleep },
    { ...DEFAULT_WATCHER_OPTIONS, callsPerSecond },
  );
  addWaits(ec2, watcher, n);
  await timers.runUntil(60_000); // steady state: every image asked about several times
  const released = ec2.releaseEachAfterItsLastAsk();
  if (released !== n) throw new Error(`only ${released} of ${n} images were ever asked about`);
  const availableAt = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const image = ec2.image(imageIdOf(i));
    if (image) availableAt.set(`token-${i}`, image.availableAt);
  }
  const from = timers.now();
  await timers.runUntil(from + 120_000, () => completion.completedAt.size === n);
  if (completion.completedAt.size !== n) throw new Error('not every wait completed within 120 s');
  const lags = [...completion.completedAt].map(([token, at]) => at - (availableAt.get(token) ?? at));
  const window = calls.filter((t) => t >= 30_000 && t < 60_000);
  let maxInOneSecond = 0;
  for (let i = 0, j = 0; i < calls.length; i++) {
    while ((calls[i] ?? 0) - (calls[j] ?? 0) >= 1000 - 1e-6) j++; // float spacing
    maxInOneSecond = Math.max(maxInOneSecond, i - j + 1);
  }
  return {
    ...(await handOffAndLag(watcher, timers, lags)),
    callsPerSecond: window.length / 30,
    maxCallsInOneSecond: maxInOneSecond,
  };
}

/** How long after a cancel Visibility lists the run in the model (Elasticsearch refreshes each ~1 s). */
const VISIBILITY_LAG_MS = 1_000;

/**
 * Cancellation lag of a running watcher (virtual time): `n` held waits in one account-region, then
 * `cancels` runs spread over the set cancel at once; the lag is from the cancel until the watcher
 * reports the wait cancelled (its image is asked about no more from then). With `visibility`, the
 * runs mark themselves cancelling and the watcher lists them once per poll interval (Visibility,
 * modelled with VISIBILITY_LAG_MS); without, only its per-wait reads (10/s, round-robin) find them.
 */
export async function cancelLagAt(
  n: number,
  visibility: boolean,
  cancels = 20,
): Promise<{ lagSeconds: number; meanLagSeconds: number; pollsAfterReport: number }> {
  const timers = new VirtualTimers(0);
  const ec2 = new FakeEc2({ now: timers.now });
  const cancelledAt = new Map<string, number>();
  const reportedAt = new Map<string, number>();
  const isCancelled = (workflowId: string, lagMs = 0) => {
    const at = cancelledAt.get(workflowId);
    return at !== undefined && at + lagMs <= timers.now();
  };
  const completion: WaitCompletion = {
    ...quietCompletion(),
    reportCancellation(token) {
      reportedAt.set(Buffer.from(token).toString().trimEnd(), timers.now());
      return Promise.resolve();
    },
    cancelRequested: (ref) => Promise.resolve(isCancelled(ref.workflowId)),
    ...(visibility
      ? {
          cancelledRuns: () =>
            Promise.resolve(
              new Set(
                [...cancelledAt.keys()]
                  .filter((id) => isCancelled(id, VISIBILITY_LAG_MS))
                  .map((id) => `${id}/0b7a4c1e-0000-4000-8000-000000000001`),
              ),
            ),
        }
      : {}),
  };
  const watcher = new ImageWaitWatcher({
    aws: ec2.clients(),
    completion,
    now: timers.now,
    sleep: timers.sleep,
  });
  addWaits(ec2, watcher, n);
  await timers.runUntil(60_000); // steady state
  for (let k = 0; k < cancels; k++)
    cancelledAt.set(`image-${Math.floor(((k + 0.5) * n) / cancels)}`, timers.now());
  const from = timers.now();
  await timers.runUntil(from + 3_600_000, () => reportedAt.size === cancels);
  if (reportedAt.size !== cancels)
    throw new Error(`only ${reportedAt.size} of ${cancels} cancellations seen`);
  const lags = [...reportedAt.values()].map((at) => at - from);
  // Polls of a cancelled run's image after its wait was reported cancelled: must be none.
  let pollsAfterReport = 0;
  for (const workflowId of cancelledAt.keys()) {
    const i = Number(workflowId.slice('image-'.length));
    const reported = reportedAt.get(`token-${i}`) ?? Infinity;
    if ((ec2.image(imageIdOf(i))?.lastAskedAt ?? -Infinity) > reported) pollsAfterReport += 1;
  }
  return {
    ...(await handOffAndLag(watcher, timers, lags)),
    pollsAfterReport,
  };
}

/** Temporal Cloud counts: activity start/retry, each heartbeat that reaches the server, workflow start. */
export function actionsPerRunHour(waits: number) {
  const tier = waits >= SHARED_FROM ? 'shared' : 'solo';
  // The hold's keep-alive. A wait's arrival adds at most one heartbeat, once in the run's life (fewer
  // in a burst: beatGapMs apart, 100 ms below 1,000 waits, 1 s at 10,000): not counted per hour here.
  const leaseEvery = keepAliveMs(LEASE_HEARTBEAT_TIMEOUT_MS[tier]);
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
export function todaysActionsPerRunHour(): number {
  return 1 + 3_600_000 / (360_000 * 0.8);
}

function flag(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

async function main(): Promise<void> {
  const jsonFile = flag('--json');
  const waits = Number(flag('--waits') ?? 10_000);
  const budget = Number(flag('--calls-per-second') ?? DEFAULT_WATCHER_OPTIONS.callsPerSecond);
  if (!(waits > 0) || !(budget > 0)) throw new Error('--waits and --calls-per-second take positive numbers');
  const w1000 = await watcherMemory(1_000);
  const w10000 = await watcherMemory(10_000);
  const lag = await lagAt(waits, budget);
  const cancel = {
    at1000: await cancelLagAt(1_000, true),
    at10000: await cancelLagAt(10_000, true),
    perWaitReadsOnly: { at1000: await cancelLagAt(1_000, false), at10000: await cancelLagAt(10_000, false) },
  };
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
    [
      `detection lag, ${waits.toLocaleString('en')} waits in one region, max / mean (s)`,
      `${lag.lagSeconds.toFixed(1)} / ${lag.meanLagSeconds.toFixed(1)}`,
      '≤ 14.65 (per-wait polls)',
    ],
    [
      'DescribeImages calls/s, mean / most in any 1 s',
      `${lag.callsPerSecond.toFixed(1)} / ${lag.maxCallsInOneSecond}`,
      `budget ${budget}/s`,
    ],
    [
      'cancellation lag, 1,000 | 10,000 held waits, max (s)',
      `${cancel.at1000.lagSeconds.toFixed(1)} | ${cancel.at10000.lagSeconds.toFixed(1)}`,
      `${cancel.perWaitReadsOnly.at1000.lagSeconds.toFixed(1)} | ${cancel.perWaitReadsOnly.at10000.lagSeconds.toFixed(1)} (per-wait reads only; target ≤ ${DEFAULT_WATCHER_OPTIONS.pollIntervalMs / 1000})`,
    ],
    ['Actions per run-hour, one wait', single.total.toFixed(2), today.toFixed(2)],
    ['Actions per run-hour, 100 concurrent waits', at100.total.toFixed(2), today.toFixed(2)],
  ];
  console.log('fleet-scale waits (issue 13): watcher side, fake EC2, virtual clock');
  for (const [what, now, before] of rows)
    console.log(`  ${what.padEnd(58)} ${now.padStart(14)}   today: ${before}`);
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
      lagSeconds: {
        max: lag.lagSeconds,
        mean: lag.meanLagSeconds,
        waits,
        budgetPerSecond: budget,
        // From a run's cancel until its wait is reported cancelled and its image polled no more.
        cancel: cancel.at10000.lagSeconds,
        cancelBySize: { at1000: cancel.at1000, at10000: cancel.at10000 },
        cancelPerWaitReadsOnly: cancel.perWaitReadsOnly,
      },
      describeImagesPerSecond: { mean: lag.callsPerSecond, maxInOneSecond: lag.maxCallsInOneSecond },
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

// `npm run bench` imports the measurements; run directly, this is `npm run bench:fleet-waits`.
if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });

/** Hands the watcher's waits off (as at shutdown), then the lags' maximum and mean in seconds. */
async function handOffAndLag(
  watcher: ImageWaitWatcher,
  timers: VirtualTimers,
  lagsMs: number[],
): Promise<{ lagSeconds: number; meanLagSeconds: number }> {
  const stopped = watcher.handOff();
  await timers.runUntil(timers.now() + 60_000);
  await stopped;
  return {
    lagSeconds: Math.max(...lagsMs) / 1000,
    meanLagSeconds: lagsMs.reduce((a, b) => a + b, 0) / lagsMs.length / 1000,
  };
}
