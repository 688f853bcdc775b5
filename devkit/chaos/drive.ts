/**
 * Drives a chaos plan through the real client: starts every run, cancels the chosen ones at their
 * moment (some while the worker is dead), SIGKILLs and restarts the worker, SIGKILLs the server once,
 * and waits for every run to close, riding out the server's absence.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
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
}

export interface Disruption {
  workerKills: number;
  serverRestarts: number;
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
    if (Date.now() > until) {
      rec.outcome = 'unsettled';
      rec.endedAt = Date.now();
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
  if (rec.run.cancelWhileWorkerDead) while (stack.workerAlive() && Date.now() < until) await pause(50);
  const desc = await persist(until, () => client.handle(rec.workflowId).describe());
  if (desc.status.name !== 'RUNNING') rec.cancelTooLate = true;
  rec.cancelIssuedAt = Date.now();
  await persist(until, () => client.cancel(rec.workflowId));
}

async function disrupt(stack: ChaosStack, o: DriveOptions, done: () => boolean): Promise<Disruption> {
  const d: Disruption = { workerKills: 0, serverRestarts: 0 };
  const t0 = Date.now();
  const server = (async () => {
    if (o.serverRestartAtMs === undefined) return;
    await pause(o.serverRestartAtMs);
    if (done()) return;
    await stack.restartServer(1500);
    d.serverRestarts += 1;
  })();
  while (d.workerKills < o.workerKills && !done() && Date.now() - t0 < o.deadlineMs) {
    const k = d.workerKills;
    await pause(o.killEveryMs * (0.5 + unitDraw(o.seed, `kill|${k}`)));
    if (done()) break;
    await stack.killWorker();
    d.workerKills += 1;
    await pause(300 + 1200 * unitDraw(o.seed, `down|${k}`));
    stack.restartWorker();
  }
  await server;
  stack.restartWorker();
  return d;
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
    const disruption = disrupt(stack, o, () => open === 0);
    for (const run of runs) {
      const rec: RunRecord = {
        run,
        workflowId: await start(client, run, until),
        startedAt: Date.now(),
        endedAt: 0,
        outcome: 'unsettled',
      };
      records.push(rec);
      const launched =
        run.cancelAfterMs === -1
          ? stack.proxy.nextApplied('RunInstances', (body) => body.includes(rec.workflowId))
          : undefined;
      const closed = settle(client, rec, until);
      const cancelled =
        run.expect === 'cancelled'
          ? cancelLater(client, stack, rec, until, closed, launched)
          : Promise.resolve();
      settled.push(
        Promise.all([cancelled.catch(() => undefined), closed]).then(() => {
          open -= 1;
        }),
      );
    }
    await Promise.all(settled);
    return { records, disruption: await disruption };
  } finally {
    await client.close();
  }
}
