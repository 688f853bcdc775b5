/**
 * Drives a chaos plan through the real client: starts every run, cancels the chosen ones at their
 * moment (some while the worker is dead), SIGKILLs and restarts the worker, SIGKILLs the server once,
 * and waits for every run to close, riding out the server's absence.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { AmiflowClient, RunFailedError } from '../../client';
import { readTemporalSettings } from '../../worker/config';
import { unitDraw } from '../faults/random';
import type { ChaosStack } from './stack';
import type { Outcome, PlannedRun } from './plan';
import { COPY_REGIONS, SHARE_ACCOUNT } from './plan';
import { SANDBOX_REGION } from '../sandbox-ec2';

export interface RunRecord {
  run: PlannedRun;
  workflowId: string;
  startedAt: number;
  endedAt: number;
  outcome: Outcome | 'unsettled';
  result?: unknown;
  message?: string;
  /** The cancellation reached a run that had already closed. */
  cancelTooLate?: boolean;
  cancelIssuedAt?: number;
  /** Cancelled with the worker alive though the plan asked for a dead one: no kill was left to wait for. */
  cancelledWithWorkerAlive?: boolean;
  /**
   * What the run was waiting on at its last look while open (pending activities with their attempt,
   * last heartbeat and last failure): for a run that did not close in time, the reason why.
   */
  waitingOn?: string;
}

export interface Disruption {
  workerKills: number;
  serverRestarts: number;
}

/** The disruption in progress: what it has done so far, and whether more worker kills may come. */
interface DisruptionState extends Disruption {
  killsOver: boolean;
}

export interface DriveOptions {
  seed: number;
  workerKills: number;
  killEveryMs: number;
  serverRestartAtMs?: number;
  deadlineMs: number;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Repeats `fn` while the server is away (connection errors), up to `until`. */
async function persist<T>(until: number, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RunFailedError || err instanceof WorkflowExecutionAlreadyStartedError) throw err;
      if (Date.now() > until) throw err;
      await pause(500);
    }
  }
}

async function start(client: AmiflowClient, run: PlannedRun, until: number): Promise<string> {
  const region = SANDBOX_REGION;
  const s = (): Promise<{ workflowId: string }> => {
    switch (run.kind) {
      case 'image':
        return client.startImageFromInstance({
          region,
          instanceId: run.instanceId ?? '',
          imageName: `chaos-${run.name}-${run.instanceId}`,
          mode: run.mode ?? 'stop',
        });
      case 'copy':
        return client.startCopyImage({
          region,
          imageId: run.imageId ?? '',
          destinations: COPY_REGIONS.map((r) => ({ region: r })),
        });
      case 'copy-rollback':
        return client.startCopyImage({
          region,
          imageId: run.imageId ?? '',
          destinations: COPY_REGIONS.map((r, i) => ({
            region: r,
            ...(i === 1 ? { name: run.takenName ?? '' } : {}),
          })),
        });
      case 'share':
        return client.startShareImage({
          region,
          imageId: run.imageId ?? '',
          targets: { accountIds: [SHARE_ACCOUNT] },
        });
      case 'migrate':
        return client.startMigrateInstance({
          region,
          instanceId: run.instanceId ?? '',
          targetAvailabilityZone: `${region}b`,
          sourceAction: 'stop',
        });
    }
  };
  return (await persist(until, s)).workflowId;
}

type PendingActivity = NonNullable<
  Awaited<ReturnType<ReturnType<AmiflowClient['handle']>['describe']>>['raw']['pendingActivities']
>[number];

const secondsAgo = (t: Parameters<typeof optionalTsToMs>[0]) => {
  const ms = optionalTsToMs(t);
  return ms === undefined ? undefined : Math.round((Date.now() - ms) / 1000);
};

/** "stopInstance (attempt 1, STARTED, last heartbeat 52 s ago, ...)" for each pending activity. */
function waitingOn(pending: PendingActivity[]): string {
  if (pending.length === 0) return 'no pending activity (a workflow task, timer or child)';
  return pending
    .map((a) => {
      const hb = secondsAgo(a.lastHeartbeatTime);
      const started = secondsAgo(a.lastStartedTime);
      const state = String(a.state ?? '?').replace('PENDING_ACTIVITY_STATE_', '');
      return (
        `${a.activityType?.name ?? '?'} (attempt ${a.attempt ?? 1}, ${state}` +
        (started !== undefined ? `, started ${started} s ago` : '') +
        (hb !== undefined ? `, last heartbeat ${hb} s ago` : ', no heartbeat') +
        (a.lastWorkerIdentity ? ` on ${a.lastWorkerIdentity}` : '') +
        (a.lastFailure?.message ? `, last failure: ${a.lastFailure.message}` : '') +
        ')'
      );
    })
    .join('; ');
}

/**
 * Waits for the run to close by describing it each second rather than by a long poll: a long poll
 * open when the server is SIGKILLed can hang for minutes. Run times are the server's own
 * (start to close), not when this loop noticed.
 */
async function settle(client: AmiflowClient, rec: RunRecord, until: number): Promise<void> {
  for (;;) {
    const desc = await persist(until, () => client.handle(rec.workflowId).describe()).catch(() => undefined);
    if (desc && desc.status.name !== 'RUNNING') {
      rec.startedAt = desc.startTime.getTime();
      rec.endedAt = desc.closeTime?.getTime() ?? Date.now();
      break;
    }
    if (desc) rec.waitingOn = waitingOn(desc.raw.pendingActivities ?? []);
    if (Date.now() > until) {
      rec.outcome = 'unsettled';
      rec.endedAt = Date.now();
      rec.message = `${rec.workflowId} still open at the deadline, waiting on: ${rec.waitingOn ?? 'unknown (the server did not answer)'}`;
      return;
    }
    await pause(1000);
  }
  try {
    rec.result = await persist(until, () => client.result<unknown>(rec.workflowId));
    rec.outcome = 'completed';
  } catch (err) {
    if (err instanceof RunFailedError) {
      rec.outcome = err.cancelled ? 'cancelled' : 'failed';
      rec.message = err.message;
    } else {
      rec.outcome = 'unsettled';
      rec.message = err instanceof Error ? err.message : String(err);
    }
  }
}

async function cancelLater(
  client: AmiflowClient,
  stack: ChaosStack,
  rec: RunRecord,
  until: number,
  closed: Promise<void>,
  disruption: Pick<DisruptionState, 'killsOver'>,
  launched?: Promise<string>,
) {
  const at = rec.run.cancelAfterMs ?? 0;
  // A run that closes first (e.g. it failed before launching) needs no cancellation.
  if (at < 0 && launched) await Promise.race([launched, closed]);
  else await pause(at);
  if (rec.outcome !== 'unsettled') {
    rec.cancelTooLate = true;
    return;
  }
  // Waits for a worker death only while the disruption may still kill one: with --kills 0, or
  // once every kill was made, the run is cancelled with the worker alive (and says so).
  if (rec.run.cancelWhileWorkerDead) {
    while (stack.workerAlive() && !disruption.killsOver && Date.now() < until) await pause(50);
    if (stack.workerAlive()) rec.cancelledWithWorkerAlive = true;
  }
  const desc = await persist(until, () => client.handle(rec.workflowId).describe());
  if (desc.status.name !== 'RUNNING') rec.cancelTooLate = true;
  rec.cancelIssuedAt = Date.now();
  await persist(until, () => client.cancel(rec.workflowId));
}

/**
 * The wait leases (workflows/wait-lease.ts) with their status and pending hold or release: for a
 * run still open at the deadline, whether its image wait had a lease and what became of it.
 */
async function leaseStates(client: AmiflowClient): Promise<string> {
  const out: string[] = [];
  for await (const w of client.temporal.workflow.list({ query: "WorkflowType = 'waitLease'" })) {
    const d = await client.temporal.workflow.getHandle(w.workflowId, w.runId).describe();
    const pending =
      d.status.name === 'RUNNING' ? ` waiting on ${waitingOn(d.raw.pendingActivities ?? [])}` : '';
    out.push(`${w.workflowId} ${d.status.name}${pending}`);
  }
  return out.length === 0 ? 'none' : out.join(' | ');
}

/** EC2 calls that change something: a worker making one has a step in flight. */
const WORK = [
  'CreateImage',
  'StopInstances',
  'StartInstances',
  'RunInstances',
  'CopyImage',
  'ModifyImageAttribute',
];

/**
 * SIGKILLs the worker `workerKills` times and the server once. Each kill waits for the (re)started
 * worker to be ready and to have made an EC2 call that changes something, then the seeded pause: on
 * a slow machine a worker takes many seconds to load, and a kill timed from a wall-clock start met
 * workers that had not polled yet (proving nothing). The cap keeps a session without such calls going.
 */
async function disrupt(
  stack: ChaosStack,
  o: DriveOptions,
  done: () => boolean,
  d: DisruptionState,
): Promise<Disruption> {
  const until = Date.now() + o.deadlineMs;
  const busy = async () => {
    await stack.workerReady(until);
    await Promise.race([...WORK.map((a) => stack.proxy.nextApplied(a)), pause(5 * o.killEveryMs)]);
  };
  await busy();
  const server = (async () => {
    if (o.serverRestartAtMs === undefined) return;
    await pause(o.serverRestartAtMs);
    if (done()) return;
    await stack.restartServer(1500);
    d.serverRestarts += 1;
  })();
  while (d.workerKills < o.workerKills && !done() && Date.now() < until) {
    const k = d.workerKills;
    if (k > 0) await busy();
    await pause(o.killEveryMs * (0.5 + unitDraw(o.seed, `kill|${k}`)));
    if (done()) break;
    await stack.killWorker();
    d.workerKills += 1;
    await pause(300 + 1200 * unitDraw(o.seed, `down|${k}`));
    stack.restartWorker();
  }
  d.killsOver = true;
  await server;
  stack.restartWorker();
  return { workerKills: d.workerKills, serverRestarts: d.serverRestarts };
}

export async function drive(stack: ChaosStack, runs: PlannedRun[], o: DriveOptions) {
  const until = Date.now() + o.deadlineMs;
  const client = await AmiflowClient.connect({
    ...readTemporalSettings({}),
    address: stack.temporalAddress,
    taskQueue: stack.taskQueue,
  });
  try {
    const records: RunRecord[] = [];
    const settled: Promise<void>[] = [];
    let open = runs.length;
    const state: DisruptionState = { workerKills: 0, serverRestarts: 0, killsOver: o.workerKills === 0 };
    let disruptionError: Error | undefined;
    // Caught at once: a failed restart must not end the process as an unhandled rejection while
    // runs are still being started; it is rethrown after every run settled, with the figures lost.
    const disruption = disrupt(stack, o, () => open === 0, state).catch((err: unknown) => {
      disruptionError = err instanceof Error ? err : new Error(String(err));
      return { workerKills: state.workerKills, serverRestarts: state.serverRestarts };
    });
    for (const run of runs) {
      // A start the server never answered before the deadline is a finding (the run is reported
      // unsettled), not a crash of the driver that loses every other run's figures.
      const workflowId = await start(client, run, until).catch((err: unknown) => {
        records.push({
          run,
          workflowId: `(not started) ${run.name}`,
          startedAt: Date.now(),
          endedAt: Date.now(),
          outcome: 'unsettled',
          message: `could not start ${run.name}: ${err instanceof Error ? err.message : String(err)}`,
        });
        return undefined;
      });
      if (workflowId === undefined) continue;
      const rec: RunRecord = { run, workflowId, startedAt: Date.now(), endedAt: 0, outcome: 'unsettled' };
      records.push(rec);
      const launched =
        run.cancelAfterMs === -1
          ? stack.proxy.nextApplied('RunInstances', (body) => body.includes(rec.workflowId))
          : undefined;
      const closed = settle(client, rec, until);
      const cancelled =
        run.expect === 'cancelled'
          ? cancelLater(client, stack, rec, until, closed, state, launched)
          : Promise.resolve();
      settled.push(
        Promise.all([cancelled.catch(() => undefined), closed]).then(() => {
          open -= 1;
        }),
      );
    }
    open -= runs.length - settled.length;
    await Promise.all(settled);
    if (records.some((r) => r.outcome === 'unsettled')) {
      const leases = await leaseStates(client).catch((err: unknown) => `unreadable: ${String(err)}`);
      for (const r of records)
        if (r.outcome === 'unsettled') r.message = `${r.message ?? ''}; wait leases: ${leases}`;
    }
    const done = await disruption;
    if (disruptionError !== undefined) throw disruptionError;
    return { records, disruption: done };
  } finally {
    await client.close();
  }
}
