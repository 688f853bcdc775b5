/**
 * (b) What one hour of waiting for an image costs: the real `waitForImageAvailable` in
 * MockActivityEnvironment, with the heartbeat timeout of the `longImageWait` preset, a fake EC2 and a
 * virtual clock. Counts DescribeImages calls, heartbeats (each reaches the server: the waiter paces
 * them to 0.8 × the heartbeat timeout, above the worker's throttle) and the lag between the image
 * becoming available and the activity seeing it. Then a worker crash: how long until another
 * worker's attempt polls again.
 */
import { msToNumber } from '@temporalio/common/lib/time';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { WaitHeartbeat } from '../activities/waiting';
import { DEFAULT_POLL_POLICY } from '../activities/waiting';
import { DEFAULT_TIMEOUTS } from '../workflows/contracts';
import { longImageWait } from '../workflows/presets';
import { seededRandom } from './activities';
import { FakeEc2, VirtualClock } from './fake-ec2';

const HOUR_MS = 3_600_000;
const preset = longImageWait(DEFAULT_TIMEOUTS.imageAvailableSeconds);
export const HEARTBEAT_TIMEOUT_MS = msToNumber(preset.heartbeatTimeout ?? 0);
const RETRY_INITIAL_MS = msToNumber(preset.retry?.initialInterval ?? '1s');

interface Heartbeat {
  at: number;
  details: WaitHeartbeat<unknown>;
}

interface Attempt {
  describeImages: number;
  describeSnapshots: number;
  heartbeats: Heartbeat[];
  /** Clock time of the first DescribeImages call of this attempt. */
  firstPollAt?: number;
  /** Clock time the fake EC2 first answered `available`. */
  seenAvailableAt?: number;
  availableAt: number;
  endedAt: number;
  crashed: boolean;
}

class WorkerCrash extends Error {}

/** The simulated crash is expected: keep the activity's failure log out of the figures. */
const quiet = new DefaultLogger('ERROR');

/** A virtual clock whose sleep throws once it reaches `crashAt`: the worker process died there. */
class CrashingClock extends VirtualClock {
  constructor(
    start: number,
    private readonly crashAt: number,
  ) {
    super(start);
  }

  override async sleep(ms: number): Promise<void> {
    if (this.now() + ms >= this.crashAt) {
      await super.sleep(this.crashAt - this.now());
      throw new WorkerCrash('worker crashed');
    }
    await super.sleep(ms);
  }
}

async function runAttempt(opts: {
  start: number;
  availableAt: number;
  seed: number;
  crashAt?: number;
  attempt?: number;
  heartbeatDetails?: unknown;
  deadline: number;
}): Promise<Attempt> {
  const clock =
    opts.crashAt === undefined ? new VirtualClock(opts.start) : new CrashingClock(opts.start, opts.crashAt);
  const ec2 = new FakeEc2(clock);
  const imageId = 'ami-0123456789abcdef0';
  // The image was registered before this attempt: it becomes available at `availableAt`.
  const image = ec2.addImage(imageId, opts.availableAt - opts.start);
  const { waitForImageAvailable } = createActivities({
    aws: ec2.clients(),
    clock,
    random: seededRandom(opts.seed),
    policy: DEFAULT_POLL_POLICY,
  });
  const env = new MockActivityEnvironment(
    {
      activityType: 'waitForImageAvailable',
      heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
      attempt: opts.attempt ?? 1,
      heartbeatDetails: opts.heartbeatDetails,
    },
    { logger: quiet },
  );
  const heartbeats: Heartbeat[] = [];
  env.on('heartbeat', (details: WaitHeartbeat<unknown>) =>
    heartbeats.push({ at: clock.now(), details: structuredClone(details) }),
  );
  let firstPollAt: number | undefined;
  const send = ec2.send.bind(ec2);
  ec2.send = (command: unknown) => {
    firstPollAt ??= clock.now();
    return send(command);
  };
  let crashed = false;
  try {
    await env.run(waitForImageAvailable, {
      target: { region: 'us-east-1' },
      imageId,
      deadline: opts.deadline,
    });
  } catch (err) {
    if (!(err instanceof WorkerCrash)) throw err;
    crashed = true;
  }
  return {
    describeImages: ec2.counts.describeImages,
    describeSnapshots: ec2.counts.describeSnapshots,
    heartbeats,
    ...(firstPollAt !== undefined ? { firstPollAt } : {}),
    ...(image.seenAvailableAt !== undefined ? { seenAvailableAt: image.seenAvailableAt } : {}),
    availableAt: opts.availableAt,
    endedAt: clock.now(),
    crashed,
  };
}

export interface HourOfWaitingFigures {
  runs: number;
  describeImages: { median: number; max: number };
  describeSnapshots: number;
  heartbeats: number;
  attempts: number;
  /** Activity attempts + heartbeats + timers, the worst run. */
  actions: number;
  lagMs: { median: number; max: number };
  heartbeatTimeoutMs: number;
  heartbeatEveryMs: number;
}

export interface CrashFigures {
  /** Crash just after a heartbeat: the server waits the whole heartbeat timeout. */
  worstMs: number;
  /** Crash just before the next heartbeat was due. */
  bestMs: number;
  retryIntervalMs: number;
  /** The AWS call count the new attempt starts from (read from the last heartbeat). */
  callsCarried: number;
  callsAtCrash: number;
}

/**
 * One hour of waiting, `runs` times with different jitter and a different moment of availability
 * within the poll cycle, so the lag figure covers the whole cycle.
 */
export async function measureHourOfWaiting(
  runs: number,
  timersPerRun: number,
): Promise<HourOfWaitingFigures> {
  const results: Attempt[] = [];
  for (let i = 0; i < runs; i += 1) {
    const start = Date.UTC(2026, 0, 1);
    const availableAt = start + HOUR_MS + Math.round((i * 15_000) / runs);
    results.push(
      await runAttempt({
        start,
        availableAt,
        seed: 1000 + i,
        deadline: start + DEFAULT_TIMEOUTS.imageAvailableSeconds * 1000,
      }),
    );
  }
  const lags = results.map((r) => (r.seenAvailableAt ?? Infinity) - r.availableAt);
  const actions = results.map((r) => 1 + r.heartbeats.length + timersPerRun);
  const worst = results[actions.indexOf(Math.max(...actions))];
  return {
    runs,
    describeImages: {
      median: median(results.map((r) => r.describeImages)),
      max: Math.max(...results.map((r) => r.describeImages)),
    },
    describeSnapshots: Math.max(...results.map((r) => r.describeSnapshots)),
    heartbeats: worst?.heartbeats.length ?? 0,
    attempts: 1,
    actions: Math.max(...actions),
    lagMs: { median: median(lags), max: Math.max(...lags) },
    heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
    heartbeatEveryMs: HEARTBEAT_TIMEOUT_MS * DEFAULT_POLL_POLICY.heartbeatFraction,
  };
}

/**
 * A worker dies mid-wait. The server notices when the heartbeat timeout passes since the last
 * heartbeat, schedules attempt 2 after the retry interval, and another worker's attempt polls at
 * once, carrying on from the last heartbeat's details. Measured from the crash to that first poll.
 */
export async function measureCrashResume(): Promise<CrashFigures> {
  const start = Date.UTC(2026, 0, 1);
  const deadline = start + DEFAULT_TIMEOUTS.imageAvailableSeconds * 1000;
  const availableAt = start + 3 * HOUR_MS; // not during this experiment
  const seed = 42;
  const clean = await runAttempt({ start, availableAt, seed, deadline });
  const hb = clean.heartbeats;
  const k = Math.min(3, hb.length - 2);
  const after = hb[k];
  const next = hb[k + 1];
  if (!after || !next) throw new Error('the crash experiment needs at least two heartbeats');
  const delays: number[] = [];
  let callsCarried = 0;
  let callsAtCrash = 0;
  for (const crashAt of [after.at + 1, next.at - 1]) {
    const first = await runAttempt({ start, availableAt, seed, deadline, crashAt });
    const last = first.heartbeats.at(-1);
    if (!first.crashed || !last) throw new Error('the first attempt did not crash as planned');
    const retryAt = last.at + HEARTBEAT_TIMEOUT_MS + RETRY_INITIAL_MS;
    const second = await runAttempt({
      start: retryAt,
      availableAt,
      seed: seed + 1,
      deadline,
      attempt: 2,
      heartbeatDetails: last.details,
    });
    delays.push((second.firstPollAt ?? Infinity) - crashAt);
    callsCarried = last.details.calls;
    callsAtCrash = first.describeImages + first.describeSnapshots;
  }
  return {
    worstMs: Math.max(...delays),
    bestMs: Math.min(...delays),
    retryIntervalMs: RETRY_INITIAL_MS,
    callsCarried,
    callsAtCrash,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] ?? NaN;
  const lo = sorted[mid - 1] ?? hi;
  return sorted.length % 2 === 1 ? hi : (lo + hi) / 2;
}
