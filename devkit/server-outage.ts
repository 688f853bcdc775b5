/**
 * A Temporal server outage while a worker holds image waits (issue 13: "a server outage of 30 s
 * costs no wait more than 30 s extra"). The production worker entry in a child process, a dev server
 * persisting to a SQLite file (so a killed server comes back with every run, as a cluster's database
 * would keep them), moto behind the fault layer whose images stay `pending` until released.
 *
 * Two rounds of `runs` image runs, each held in its image wait and then released: a baseline with the
 * server up, and one where the server is SIGKILLed just before the release and back `outageMs` later.
 * For every run, the seconds from the release to its wait's completion and to the run's end, read from
 * its history (the server's own times); a wait's extra is its time in the outage round minus the
 * slowest of the baseline. Shared by the fleet bench (bench/fleet-outage.ts) and the e2e tier.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { AmiflowClient } from '../client';
import { METRIC } from '../workflows/metric-names';
import { startHeldImagesProxy } from './faults';
import type { DevServer } from './local-stack';
import { startDevServer, stopChild } from './local-stack';
import { startMoto } from './moto';
import { freePort } from './ports';
import { SANDBOX_REGION, launchInstance, sandboxEc2, stockEbsAmi } from './sandbox-ec2';
import { workflowBundle } from './temporal';
import type { WorkerProcess } from './worker-process';
import { startWorkerProcess } from './worker-process';

/** A dev server on a fixed port and database file that can be killed and started again. */
export interface RestartableServer {
  address: string;
  /** How long its last start took until it accepted connections. */
  startupMs: number;
  /** SIGKILLs the server (a crash: nothing flushed beyond what SQLite committed). */
  kill(): Promise<void>;
  /** Starts it again on the same port and database; resolves once it accepts connections. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRestartableServer(dbFilename: string): Promise<RestartableServer> {
  const port = await freePort();
  let began = Date.now();
  let server: DevServer = await startDevServer({ port, dbFilename });
  const self: RestartableServer = {
    address: server.address,
    startupMs: Date.now() - began,
    async kill() {
      const gone = new Promise((r) => server.child.once('exit', r));
      server.child.kill('SIGKILL');
      await gone;
    },
    async start() {
      // The port may not be released yet, or the database still locked on a loaded machine: a
      // supervisor would start it again, and so does this.
      began = Date.now();
      for (let attempt = 1; ; attempt++) {
        try {
          server = await startDevServer({ port, dbFilename });
          self.startupMs = Date.now() - began;
          return;
        } catch (err) {
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
    },
    stop: () => stopChild(server.child),
  };
  return self;
}

export interface OutageOptions {
  runs: number;
  /** From the server's kill until it accepts connections again. */
  outageMs: number;
  /** Plain JavaScript worker entry (the bench's compiled one); default worker/main.ts under tsx. */
  entry?: string;
  /** More settings for the worker (AMIFLOW_*). */
  workerEnv?: Record<string, string>;
  log?: (message: string) => void;
}

/** One run's times, in seconds from its image's release. */
export interface RunTiming {
  workflowId: string;
  waitDone: number;
  runDone: number;
}

export interface OutageFigures {
  runs: number;
  /** The server's kill until it accepted connections again (the outage as the worker saw it). */
  outageSeconds: number;
  baseline: RunTiming[];
  outage: RunTiming[];
  /** Per run of the outage round: its wait's completion after the server was back. */
  afterReturnSeconds: number[];
  /** Max over the outage round's waits (and runs) of their time minus the baseline's slowest. */
  extraSeconds: { wait: number; run: number };
  /** Whether the worker process lived through the outage (a supervisor would restart one that did not). */
  workerSurvived: boolean;
}

interface Bench {
  client: AmiflowClient;
  raw: Client;
  worker: WorkerProcess;
  server: RestartableServer;
  release(): void;
  startRuns(n: number, prefix: string): Promise<string[]>;
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Seconds from `from` (epoch ms) to the wait's completion and to the run's end, from its history. */
async function timing(raw: Client, workflowId: string, from: number): Promise<RunTiming> {
  const events = (await raw.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const waitIds = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'waitForImageAvailable')
      .map((e) => String(e.eventId)),
  );
  const waitDone = events.find(
    (e) =>
      e.activityTaskCompletedEventAttributes &&
      waitIds.has(String(e.activityTaskCompletedEventAttributes.scheduledEventId)),
  );
  const end = events.at(-1);
  if (!waitDone?.eventTime || !end?.eventTime)
    throw new Error(`${workflowId}: no completed image wait in its history`);
  return {
    workflowId,
    waitDone: (tsToMs(waitDone.eventTime) - from) / 1000,
    runDone: (tsToMs(end.eventTime) - from) / 1000,
  };
}

/** `runs` runs held in their wait, then released (with the server away for `outageMs`, if given). */
async function round(b: Bench, runs: number, prefix: string, outageMs?: number) {
  const ids = await b.startRuns(runs, prefix);
  await until(
    `${runs} waits held`,
    async () => (await b.worker.metric(METRIC.waitsInFlight)) >= runs,
    180_000,
  );
  // The lease's hold heartbeats added waits within beatGapMs (at most 1 s); give the last arrivals'
  // heartbeat a moment, so the outage meets a worker in its steady state.
  await new Promise((r) => setTimeout(r, 2_000));
  let back = Date.now();
  let outageSeconds = 0;
  if (outageMs === undefined) {
    b.release();
  } else {
    await b.server.kill();
    const killedAt = Date.now();
    b.release();
    // Started so that it accepts connections about `outageMs` after the kill (as long as its last start).
    await new Promise((r) => setTimeout(r, Math.max(0, outageMs - b.server.startupMs)));
    await b.server.start();
    back = Date.now();
    outageSeconds = (back - killedAt) / 1000;
  }
  const released = outageMs === undefined ? back : back - outageSeconds * 1000;
  await Promise.all(ids.map((id) => b.raw.workflow.getHandle(id).result()));
  const timings = await Promise.all(ids.map((id) => timing(b.raw, id, released)));
  return { timings, outageSeconds, back: (back - released) / 1000 };
}

export async function measureServerOutage(opts: OutageOptions): Promise<OutageFigures> {
  const log = opts.log ?? (() => undefined);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'amiflow-outage-'));
  const cleanups: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  try {
    const bundlePath = path.join(dir, 'workflow-bundle.js');
    const [moto, bundle, server] = await Promise.all([
      startMoto(),
      workflowBundle(),
      startRestartableServer(path.join(dir, 'temporal.db')),
    ]);
    cleanups.unshift(
      () => moto.stop(),
      () => server.stop(),
    );
    await writeFile(bundlePath, bundle.code);
    const { proxy, release } = await startHeldImagesProxy(moto.endpoint);
    cleanups.unshift(() => proxy.stop());
    const ec2 = sandboxEc2(moto.endpoint);
    const instanceId = await launchInstance(ec2, await stockEbsAmi(ec2));
    ec2.destroy();
    const connection = await Connection.connect({ address: server.address });
    cleanups.unshift(() => connection.close());
    const raw = new Client({ connection });
    const taskQueue = `outage-${process.pid}-${Date.now()}`;
    const client = AmiflowClient.fromClient(raw, taskQueue);
    const worker = await startWorkerProcess({
      temporalAddress: server.address,
      taskQueue,
      awsEndpoint: proxy.endpoint,
      bundlePath,
      ...(opts.entry ? { entry: opts.entry } : {}),
      env: { AMIFLOW_LOG_LEVEL: 'WARN', AMIFLOW_SHUTDOWN_GRACE_MS: '5000', ...opts.workerEnv },
    });
    cleanups.unshift(() => worker.kill('SIGKILL'));
    if (!(await worker.ready(120_000))) throw new Error(`the worker never got ready: ${worker.output()}`);
    const b: Bench = {
      client,
      raw,
      worker,
      server,
      release,
      async startRuns(n, prefix) {
        const started = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            client.startImageFromInstance({
              region: SANDBOX_REGION,
              instanceId,
              imageName: `${prefix}-${i}`,
              mode: 'no-reboot',
            }),
          ),
        );
        return started.map((s) => s.workflowId);
      },
    };
    const baseline = await round(b, opts.runs, `baseline-${Date.now()}`);
    log(`baseline: slowest wait ${Math.max(...baseline.timings.map((t) => t.waitDone)).toFixed(1)} s`);
    const outage = await round(b, opts.runs, `outage-${Date.now()}`, opts.outageMs);
    const slowest = (ts: RunTiming[], k: 'waitDone' | 'runDone') => Math.max(...ts.map((t) => t[k]));
    return {
      runs: opts.runs,
      outageSeconds: outage.outageSeconds,
      baseline: baseline.timings,
      outage: outage.timings,
      afterReturnSeconds: outage.timings.map((t) => t.waitDone - outage.back),
      extraSeconds: {
        wait: slowest(outage.timings, 'waitDone') - slowest(baseline.timings, 'waitDone'),
        run: slowest(outage.timings, 'runDone') - slowest(baseline.timings, 'runDone'),
      },
      workerSurvived: worker.child.exitCode === null && worker.child.signalCode === null,
    };
  } finally {
    for (const c of cleanups) await c().catch(() => undefined);
  }
}
