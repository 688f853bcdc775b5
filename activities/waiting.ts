/**
 * Waiting for AWS inside one heartbeating activity, so workflow history does not grow with the
 * length of the wait. Polls back off to a ceiling (which bounds the lag between AWS reaching the
 * state and the workflow seeing it), the number of calls is bounded across retries, and heartbeats
 * carry progress for the Web UI at the rate the heartbeat timeout needs and no faster: each
 * heartbeat that reaches the server is a billable Temporal action.
 */
import { Context } from '@temporalio/activity';
import { FailureType } from '../contracts';
import { METRIC } from '../workflows/metric-names';
import { failure } from './errors';

/** Waits polling AWS in this process, per activity type: the `amiflow_waits_in_flight` gauge. */
const inFlight = new Map<string, number>();

function trackWait(ctx: Context, delta: 1 | -1): void {
  const type = ctx.info.activityType;
  const n = (inFlight.get(type) ?? 0) + delta;
  inFlight.set(type, n);
  // The activity meter tags the gauge with activity_type (and task queue, namespace).
  ctx.metricMeter.createGauge(METRIC.waitsInFlight, 'int', undefined, 'waits polling AWS now').set(n);
}

export interface Clock {
  now(): number;
  /** Sleeps, and rejects when the activity is cancelled. */
  sleep(ms: number): Promise<void>;
}

export const activityClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => Context.current().sleep(ms),
};

export interface PollPolicy {
  firstIntervalMs: number;
  maxIntervalMs: number;
  backoff: number;
  /** Fraction of each interval randomised, so many waiting runs do not poll in step. */
  jitter: number;
  /** Heartbeat at this fraction of the activity's heartbeat timeout. */
  heartbeatFraction: number;
  /** Heartbeat interval when the activity has no heartbeat timeout. */
  defaultHeartbeatMs: number;
}

export const DEFAULT_POLL_POLICY: PollPolicy = {
  firstIntervalMs: 2_000,
  // With 10% jitter, at most 12.65 s between polls; plus an answer shared by a concurrent wait
  // (image-watch.ts, at most 2 s old): the workflow sees `available` at most 14.65 s late.
  maxIntervalMs: 11_500,
  backoff: 1.6,
  jitter: 0.1,
  heartbeatFraction: 0.8,
  // A wait without a heartbeat timeout (an async image wait run on a worker without a watcher)
  // heartbeats for progress only: as often as today's 6-minute image wait did, no more.
  defaultHeartbeatMs: 288_000,
};

/** What a waiting activity records in its heartbeats; read back on retry. */
export interface WaitHeartbeat<P> {
  calls: number;
  polls: number;
  firstSeenAt?: number;
  progress?: P;
}

export interface WaitSpec<S, P> {
  what: string;
  /** One AWS call reading the current state. */
  poll: () => Promise<S>;
  /** True when the wait is over. May throw a non-retryable failure for a terminal bad state. */
  done: (state: S) => boolean;
  /** Progress shown in heartbeat details; may make one more AWS call, at heartbeat time only. */
  progress: (state: S) => P | Promise<P>;
  /** Overrides of the worker's poll policy for this kind of wait (e.g. faster first polls). */
  policy?: Partial<PollPolicy>;
  /** AWS calls one `progress` makes (0 when it only reads `state`). */
  progressCalls: number;
  /** Epoch ms after which the wait fails, shared by every attempt of the activity. */
  deadline: number;
  maxCalls: number;
}

export interface WaitDeps {
  clock: Clock;
  random: () => number;
  policy: PollPolicy;
  /** Receives each heartbeat's details (tests and benchmarks count them). */
  onHeartbeat?: (details: unknown) => void;
}

export interface WaitOutcome<S> {
  state: S;
  calls: number;
  polls: number;
  heartbeats: number;
}

export async function waitUntil<S, P>(deps: WaitDeps, spec: WaitSpec<S, P>): Promise<WaitOutcome<S>> {
  const ctx = Context.current();
  trackWait(ctx, 1);
  try {
    return await pollUntil(ctx, deps, spec);
  } finally {
    trackWait(ctx, -1);
  }
}

async function pollUntil<S, P>(ctx: Context, deps: WaitDeps, spec: WaitSpec<S, P>): Promise<WaitOutcome<S>> {
  const policy: PollPolicy = { ...deps.policy, ...spec.policy };
  const previous = ctx.info.heartbeatDetails as WaitHeartbeat<P> | undefined;
  const hb: WaitHeartbeat<P> = { calls: previous?.calls ?? 0, polls: previous?.polls ?? 0 };
  const heartbeatEvery =
    ctx.info.heartbeatTimeoutMs !== undefined && ctx.info.heartbeatTimeoutMs > 0
      ? ctx.info.heartbeatTimeoutMs * policy.heartbeatFraction
      : policy.defaultHeartbeatMs;
  let lastHeartbeat = -Infinity;
  let heartbeats = 0;
  let interval = policy.firstIntervalMs;

  for (;;) {
    if (hb.calls >= spec.maxCalls) {
      throw failure(
        FailureType.WaitTimedOut,
        `gave up waiting for ${spec.what} after ${hb.calls} AWS calls (the bound)`,
        hb,
      );
    }
    hb.calls += 1;
    hb.polls += 1;
    const state = await spec.poll();
    if (spec.done(state)) {
      return { state, calls: hb.calls, polls: hb.polls, heartbeats };
    }
    const now = deps.clock.now();
    if (now >= spec.deadline) {
      throw failure(
        FailureType.WaitTimedOut,
        `timed out waiting for ${spec.what}: still not there at the deadline ${new Date(spec.deadline).toISOString()}`,
        hb,
      );
    }
    if (now - lastHeartbeat >= heartbeatEvery) {
      hb.progress = await spec.progress(state);
      hb.calls += spec.progressCalls;
      const details = { ...hb };
      ctx.heartbeat(details);
      deps.onHeartbeat?.(details);
      heartbeats += 1;
      lastHeartbeat = now;
    }
    const jittered = interval * (1 - policy.jitter + 2 * policy.jitter * deps.random());
    // Wake no later than the next heartbeat is due: a poll interval added on top of it would let
    // the gap between heartbeats exceed the heartbeat timeout (48 s + 12.65 s > 1 min).
    const nextHeartbeatIn = lastHeartbeat + heartbeatEvery - now;
    await deps.clock.sleep(Math.max(0, Math.min(jittered, spec.deadline - now, nextHeartbeatIn)));
    interval = Math.min(interval * policy.backoff, policy.maxIntervalMs);
  }
}
