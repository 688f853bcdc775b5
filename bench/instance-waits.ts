/**
 * `npm run bench:instance-waits [-- --waits N] [--json FILE]`: what N concurrent instance waits in
 * one account-region cost in DescribeInstances/DescribeInstanceStatus calls, before (each wait
 * polling its own instance, as until issue 13) and after (the worker's merged reader,
 * activities/instance-reads.ts), side by side in one run.
 *
 * The real `stopInstance` and `waitForInstanceReady` activities run in Temporal's
 * MockActivityEnvironment against a fake EC2 (devkit/fake-instance-ec2.ts: ~100 ms a call, stops of
 * 20-90 s, status checks passing 60-120 s after launch) on virtual time, so the figures are the
 * activities' own call pattern, not the machine's speed.
 */
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import type { Instance, InstanceStatus } from '@aws-sdk/client-ec2';
import { DescribeInstanceStatusCommand, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { AwsClients } from '../activities/aws';
import { isAwsCode } from '../activities/errors';
import type { InstanceRead, InstanceReads } from '../activities/instance-reads';
import { DEFAULT_INSTANCE_READS, createInstanceReads } from '../activities/instance-reads';
import { DEFAULT_POLL_POLICY, activityClock } from '../activities/waiting';
import { FakeInstanceEc2 } from '../devkit/fake-instance-ec2';
import { startMoto } from '../devkit/moto';
import { SANDBOX_REGION, launchInstance, sandboxEc2, stockEbsAmi } from '../devkit/sandbox-ec2';
import { VirtualTimers } from '../devkit/virtual-timers';
import type { AwsTarget } from '../contracts';

const TARGET: AwsTarget = { region: 'us-east-1', accountId: '111122223333' };
const T0 = Date.UTC(2025, 0, 1);
const idOf = (n: number) => `i-${n.toString(16).padStart(17, '0')}`;
const quiet = new DefaultLogger('ERROR', () => undefined);

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Until issue 13: each poll one call for its own instance (a NotFound read as "absent"). */
function perWaitReads(aws: AwsClients): InstanceReads {
  const calls = { instances: 0, status: 0 };
  async function one<T>(
    kind: 'instances' | 'status',
    target: AwsTarget,
    id: string,
  ): Promise<InstanceRead<T>> {
    const ec2 = await aws.ec2(target);
    calls[kind] += 1;
    try {
      if (kind === 'instances') {
        const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
        const i = out.Reservations?.flatMap((r) => r.Instances ?? []).find((x) => x.InstanceId === id);
        return i ? { found: i as T } : { absent: true };
      }
      const out = await ec2.send(
        new DescribeInstanceStatusCommand({ InstanceIds: [id], IncludeAllInstances: true }),
      );
      const s = out.InstanceStatuses?.find((x) => x.InstanceId === id);
      return s ? { found: s as T } : { absent: true };
    } catch (err) {
      if (isAwsCode(err, 'InvalidInstanceID.NotFound')) return { absent: true, aws: String(err) };
      throw err;
    }
  }
  return {
    describe: (target, id) => one<Instance>('instances', target, id),
    status: (target, id) => one<InstanceStatus>('status', target, id),
    stats: () => ({ requests: 0, calls: { ...calls }, retries: 0, overdrafts: 0, cancelled: 0 }),
  };
}

interface Figures {
  waits: number;
  /** Virtual seconds from the first wait's start to the last one's end. */
  seconds: number;
  calls: number;
  callsPerSecond: number;
  /** The most calls in any one second, and in any 5 s (the stop waits' longest poll interval). */
  peakPerSecond: number;
  peakPer5s: number;
  /** From the instance reaching the state to its wait returning. */
  lagMedianMs: number;
  lagMaxMs: number;
}

async function scenario(
  kind: 'stop' | 'ready',
  waits: number,
  reads: 'before' | 'after',
  callsPerSecond: number,
): Promise<Figures> {
  const timers = new VirtualTimers(T0);
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const spread = (id: string, from: number, span: number) =>
    from + ((Number.parseInt(id.slice(2), 16) * 7_919) % span);
  const ec2 = new FakeInstanceEc2({
    now: timers.now,
    sleep: timers.sleep,
    latencyMs: (ids) => 100 + ids,
    transitionMs: { stop: (id) => spread(id, 20_000, 70_000) },
  });
  const ids = Array.from({ length: waits }, (_, n) => idOf(n));
  for (const id of ids)
    ec2.add(id, 'running', kind === 'ready' ? { checksAfterMs: spread(id, 60_000, 60_000) } : {});
  const aws = ec2.clients();
  const instanceReads =
    reads === 'before'
      ? perWaitReads(aws)
      : createInstanceReads({ aws, now: timers.now, sleep: timers.sleep, random }, { callsPerSecond });
  const activities = createActivities({
    aws,
    clock: { now: timers.now, sleep: timers.sleep },
    random,
    policy: DEFAULT_POLL_POLICY,
    instanceReads,
  });
  let left = waits;
  const ends: { id: string; at: number }[] = [];
  const runs = ids.map((instanceId) => {
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 60_000 }, { logger: quiet });
    const input = { target: TARGET, instanceId, deadline: T0 + 30 * 60_000 };
    const run: Promise<{ at: number }> =
      kind === 'stop'
        ? env.run(activities.stopInstance, input)
        : env.run(activities.waitForInstanceReady, input);
    return run.then((out) => {
      ends.push({ id: instanceId, at: out.at });
      left -= 1;
    });
  });
  await timers.runUntil(T0 + 30 * 60_000, () => left === 0);
  await Promise.all(runs);
  const actions = ['DescribeInstances', 'DescribeInstanceStatus'];
  const calls = ec2.calls.filter((c) => actions.includes(c.action)).length;
  const last = Math.max(...ends.map((e) => e.at));
  const reached = (id: string) =>
    kind === 'stop' ? (ec2.settledAt(id) ?? 0) : T0 + spread(id, 60_000, 60_000);
  const lags = ends.map((e) => e.at - reached(e.id)).sort((a, b) => a - b);
  const seconds = (last - T0) / 1000;
  return {
    waits,
    seconds: round(seconds, 1),
    calls,
    callsPerSecond: round(calls / seconds, 2),
    peakPerSecond: ec2.peak(actions, 1_000),
    peakPer5s: ec2.peak(actions, 5_000),
    lagMedianMs: Math.round(lags[Math.floor(lags.length / 2)] ?? 0),
    lagMaxMs: Math.round(lags[lags.length - 1] ?? 0),
  };
}

/**
 * `--sandbox N`: N stop waits and N start waits, one after another, against moto (which changes state
 * at once) on the wall clock: what a wait costs when there is nothing to wait for. Until issue 13 each
 * slept its first 500 ms interval before seeing the new state; now it looks again at once.
 */
async function sandbox(runs: number): Promise<{ stopMedianMs: number; startMedianMs: number }> {
  const moto = await startMoto();
  const ec2 = sandboxEc2(moto.endpoint);
  try {
    const target: AwsTarget = { region: SANDBOX_REGION };
    const aws: AwsClients = {
      ec2: () => Promise.resolve(ec2),
      kms: () => Promise.reject(new Error('EC2 only')),
      destroy: () => undefined,
    };
    const activities = createActivities({
      aws,
      clock: activityClock,
      random: Math.random,
      policy: DEFAULT_POLL_POLICY,
    });
    const instanceId = await launchInstance(ec2, await stockEbsAmi(ec2));
    const stops: number[] = [];
    const starts: number[] = [];
    for (let n = 0; n < runs; n++) {
      for (const [fn, into] of [
        [activities.stopInstance, stops],
        [activities.startInstance, starts],
      ] as const) {
        const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 60_000 }, { logger: quiet });
        const t = performance.now();
        await env.run(fn, { target, instanceId, deadline: Date.now() + 60_000 });
        into.push(performance.now() - t);
      }
    }
    const median = (xs: number[]) =>
      Math.round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0);
    return { stopMedianMs: median(stops), startMedianMs: median(starts) };
  } finally {
    ec2.destroy();
    await moto.stop();
  }
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const waits = Number(arg('--waits') ?? 1_000);
  const budget = Number(arg('--calls-per-second') ?? DEFAULT_INSTANCE_READS.callsPerSecond);
  const load = loadavg().map((x) => x.toFixed(2));
  console.log(
    `instance waits: ${waits} concurrent in one account-region, virtual time (load ${load.join(' ')})`,
  );
  const results: Record<string, { before: Figures; after: Figures }> = {};
  for (const kind of ['stop', 'ready'] as const) {
    const before = await scenario(kind, waits, 'before', budget);
    const after = await scenario(kind, waits, 'after', budget);
    results[kind] = { before, after };
    const what =
      kind === 'stop'
        ? 'stopInstance (DescribeInstances; stops of 20-90 s)'
        : 'waitForInstanceReady (DescribeInstanceStatus; checks ok 60-120 s)';
    console.log(`\n${what}`);
    console.log('                              before (per wait)   after (merged, budget ' + `${budget}/s)`);
    for (const [label, key, unit] of [
      ['calls per second (mean)', 'callsPerSecond', ''],
      ['calls in the busiest second', 'peakPerSecond', ''],
      ['calls in the busiest 5 s', 'peakPer5s', ''],
      ['calls in all', 'calls', ''],
      ['lag median (state -> return)', 'lagMedianMs', ' ms'],
      ['lag max', 'lagMaxMs', ' ms'],
      ['virtual seconds', 'seconds', ' s'],
    ] as const)
      console.log(
        `  ${label.padEnd(28)}${`${before[key]}${unit}`.padStart(19)}   ${`${after[key]}${unit}`.padStart(8)}`,
      );
  }
  const sandboxRuns = arg('--sandbox');
  const lone = sandboxRuns ? await sandbox(Number(sandboxRuns)) : undefined;
  if (lone)
    console.log(
      `\nsandbox (moto, state changes at once), ${sandboxRuns} lone waits each: stopInstance median ${lone.stopMedianMs} ms, startInstance median ${lone.startMedianMs} ms (wall clock)`,
    );
  const json = arg('--json');
  if (json) {
    const out = {
      instanceWaits: {
        waits,
        callsPerSecondBudget: budget,
        // DescribeInstances(+Status) calls per second, mean over the stop waits (the issue's figure).
        callsPerSecond: {
          before: results.stop?.before.callsPerSecond,
          after: results.stop?.after.callsPerSecond,
        },
        statusCallsPerSecond: {
          before: results.ready?.before.callsPerSecond,
          after: results.ready?.after.callsPerSecond,
        },
        detail: results,
        ...(lone ? { sandboxLoneWaitMs: lone } : {}),
        loadAverage: load,
      },
    };
    await writeFile(json, `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwrote ${json}`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
