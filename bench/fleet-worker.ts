/**
 * (e) Fleet-scale waits measured on a whole worker (issue 13): the production worker entry
 * (`worker/main.ts`, lean runtime settings as in the Dockerfile) in a child process, against the
 * dev server and moto behind the fault layer, whose images stay `pending` until the benchmark moves
 * the layer's clock on. Resident memory is read from /proc of the worker process.
 *
 *   idle RSS; RSS (and peak) with N runs waiting; seconds until all N were waiting, and until all
 *   were done after release; runs per minute and worker CPU per run with images available at once;
 *   resume after SIGTERM and after SIGKILL of a worker holding waits (a second worker already up).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AmiflowClient } from '../client';
import type { FaultProxy } from '../devkit/faults';
import { startHeldImagesProxy } from '../devkit/faults';
import type { Moto } from '../devkit/moto';
import { startMoto } from '../devkit/moto';
import { SANDBOX_REGION, launchInstance, sandboxEc2, stockEbsAmi } from '../devkit/sandbox-ec2';
import { bundleWorkflowCode } from '@temporalio/worker';
import { devServerEnv, workflowBundle } from '../devkit/temporal';
import { leanWorkflowBundle, workflowsPath } from '../worker/bundle-options';
import type { WorkerProcess } from '../devkit/worker-process';
import { startWorkerProcess } from '../devkit/worker-process';
import { METRIC } from '../workflows/metric-names';
import { buildEc2ClientSubset } from '../scripts/ec2-client-subset';
import { OUT_DIR, compileForBench } from './compile';

/** When the idle worker's RSS is read: 30 s after /readyz, as bench/worker-idle.ts reads `settled`. */
export const IDLE_SETTLE_SECONDS = 30;

/** When the RSS with N runs waiting is read: this long after the last of them was waiting. */
export const WAITING_SETTLE_SECONDS = 30;

export interface FleetWorkerFigures {
  /**
   * Idle RSS once settled (IDLE_SETTLE_SECONDS after ready): what an idle worker keeps. Until
   * ~15 s after ready the SDK still holds a second evaluation of the workflow bundle and V8 has not
   * shrunk the heaps grown by start-up (docs/sizing.md).
   */
  idleRssMb: number;
  /** Idle RSS 5 s after ready: the figure this bench reported before, start-up garbage included. */
  idleAt5sRssMb: number;
  /** VmHWM when idle: the start-up high-water mark. */
  idlePeakMb: number;
  waiting: {
    runs: number;
    /** WAITING_SETTLE_SECONDS after the last run was waiting. */
    rssMb: number;
    /** 3 s after the last run was waiting (the figure this bench reported before). */
    rssAt3sMb: number;
    peakMb: number;
    secondsToAllWaiting: number;
    secondsToAllDone: number;
  }[];
  throughput: { runs: number; perMinute: number; cpuMsPerRun: number };
  resumeSeconds: { sigterm: number; sigkill: number; waits: number };
  /** How long the SIGTERMed worker took to exit (a pod's termination), apart from the runs' resume. */
  sigtermExitSeconds: number;
  load: string;
}

const HOUR = 3_600_000;

export interface Stack {
  env: TestWorkflowEnvironment;
  moto: Moto;
  proxy: FaultProxy;
  client: AmiflowClient;
  instanceId: string;
  taskQueue: string;
  /** A worker process; `env` adds to (or replaces) its environment, NODE_OPTIONS included. */
  startWorker(env?: Record<string, string>): Promise<WorkerProcess>;
  /** Every image made so far (and pending) becomes available. */
  release(): void;
  stop(): Promise<void>;
}

const OVERRIDE = 'AMIFLOW_BENCH_WORKER_';

const noop = (): void => undefined;
const quietBundler = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };

function workerOverrides(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).flatMap(([k, v]) =>
      k.startsWith(OVERRIDE) && v !== undefined ? [[k.slice(OVERRIDE.length), v]] : [],
    ),
  );
}

export async function startStack(): Promise<Stack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'amiflow-fleet-bench-'));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  // Plain JavaScript, as `node dist/worker/main.js` runs in production: no TypeScript loader in the RSS.
  const [env, moto, bundle, entry] = await Promise.all([
    devServerEnv(),
    startMoto(),
    // AMIFLOW_BENCH_SHARED_MODULES=0: the bundle as before issue 13's shared modules, to compare.
    process.env.AMIFLOW_BENCH_SHARED_MODULES === '0'
      ? bundleWorkflowCode({ workflowsPath, webpackConfigHook: leanWorkflowBundle, logger: quietBundler })
      : workflowBundle(),
    // As `npm run build` lays out dist/: the compiled worker and, next to it, the EC2 client subset
    // it loads (AMIFLOW_BENCH_WORKER_AMIFLOW_EC2_CLIENT_SUBSET=off: the whole package, to compare).
    compileForBench('worker/main.ts').then(async (main) => {
      await buildEc2ClientSubset(path.join(OUT_DIR, 'vendor', 'client-ec2.js'));
      return main;
    }),
  ]);
  await writeFile(bundlePath, bundle.code);
  const { proxy, release } = await startHeldImagesProxy(moto.endpoint);
  const ec2 = sandboxEc2(moto.endpoint);
  // One instance imaged by every run (no-reboot, a distinct name each): the runs' own EC2 calls stay few.
  const instanceId = await launchInstance(ec2, await stockEbsAmi(ec2));
  ec2.destroy();
  const taskQueue = `bench-fleet-${process.pid}`;
  const workers: WorkerProcess[] = [];
  return {
    env,
    moto,
    proxy,
    client: AmiflowClient.fromClient(env.client, taskQueue),
    instanceId,
    taskQueue,
    async startWorker(extra = {}) {
      const w = await startWorkerProcess({
        temporalAddress: env.address,
        taskQueue,
        awsEndpoint: proxy.endpoint,
        bundlePath,
        entry,
        // AMIFLOW_BENCH_NODE_FLAGS: flags on the worker's command line, as a container's CMD would
        // pass them (`--single-threaded-gc`: V8 flags Node 24 refuses in NODE_OPTIONS).
        nodeArgs: (process.env.AMIFLOW_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
        // AMIFLOW_BENCH_WORKER_* of the bench's own environment reach the worker without the prefix,
        // to compare settings (AMIFLOW_BENCH_WORKER_AMIFLOW_MAX_CACHED_WORKFLOWS=10).
        env: {
          AMIFLOW_LOG_LEVEL: 'ERROR',
          AMIFLOW_SHUTDOWN_GRACE_MS: '5000',
          ...workerOverrides(),
          ...extra,
        },
      });
      workers.push(w);
      if (!(await w.ready(120_000))) throw new Error(`the worker never got ready: ${w.output()}`);
      return w;
    },
    release,
    async stop() {
      await Promise.all(workers.map((w) => w.kill('SIGKILL')));
      await proxy.stop();
      await Promise.allSettled([env.teardown(), moto.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 500) {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

let named = 0;
/** Starts `n` image runs, 50 at a time; returns their workflow ids. */
export async function startRuns(s: Stack, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, () => `fleet-${process.pid}-${(named += 1)}`);
    const started = await Promise.all(
      batch.map((imageName) =>
        s.client.startImageFromInstance(
          { region: SANDBOX_REGION, instanceId: s.instanceId, imageName, mode: 'no-reboot' },
          { searchAttributes: false },
        ),
      ),
    );
    ids.push(...started.map((r) => r.workflowId));
  }
  return ids;
}

export async function running(s: Stack): Promise<number> {
  const c = await s.env.client.workflow.count(
    `WorkflowType = 'imageFromInstance' AND ExecutionStatus = 'Running' AND TaskQueue = '${s.taskQueue}'`,
  );
  return c.count;
}

/** Worker CPU (user + system) in ms, from /proc/<pid>/stat. */
export async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15 of the line)
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/** Starts `runs` runs and resolves once the worker holds all their waits (its waits-in-flight gauge). */
export async function startAndHold(s: Stack, w: WorkerProcess, runs: number): Promise<void> {
  await startRuns(s, runs);
  await until(
    `${runs} waits held`,
    async () => (await w.metric(METRIC.waitsInFlight)) >= runs,
    900_000,
    1_000,
  );
}

async function waitingPhase(s: Stack, w: WorkerProcess, runs: number) {
  const began = Date.now();
  await startAndHold(s, w, runs);
  const secondsToAllWaiting = (Date.now() - began) / 1000;
  await new Promise((r) => setTimeout(r, 3_000)); // the last workflow tasks in flight
  const atAllWaiting = await w.memory();
  // V8 shrinks the heaps a burst grew only once the worker has been quiet for a while (its memory
  // reducer): 3 s after the last wait arrived the workflow thread's heap still held ~20 MB of the
  // burst's garbage (bench/fleet-memory.ts). The settled reading is the one against the target.
  await new Promise((r) => setTimeout(r, WAITING_SETTLE_SECONDS * 1000 - 3_000));
  const mem = await w.memory();
  const released = Date.now();
  s.release();
  await until('every run done', async () => (await running(s)) === 0, 600_000, 1_000);
  return {
    runs,
    ...mem,
    rssAt3sMb: atAllWaiting.rssMb,
    secondsToAllWaiting,
    secondsToAllDone: (Date.now() - released) / 1000,
  };
}

/** Resume after a signal: `held` runs waiting on `from`, `to` already up; images available at the signal. */
async function resumePhase(s: Stack, from: WorkerProcess, held: number, signal: NodeJS.Signals) {
  await startRuns(s, held);
  await until(`${held} waits held`, async () => (await from.metric(METRIC.waitsInFlight)) >= held, 300_000);
  // The lease lists them within its heartbeat window (the SDK flushes the latest list by 0.8 × timeout).
  await new Promise((r) => setTimeout(r, 12_000));
  const to = await s.startWorker();
  const signalled = Date.now();
  s.release();
  // Timed to the runs' end, not the signalled worker's exit: the figure was 7.2 s when it included
  // the exit (a lane's 10 s sleep held it), while the runs were done after 4.2 s.
  const exited = from.kill(signal).then(() => (Date.now() - signalled) / 1000);
  await until('every run done', async () => (await running(s)) === 0, 600_000, 100);
  const seconds = (Date.now() - signalled) / 1000;
  return { seconds, exitSeconds: await exited, next: to };
}

export async function measureFleetWorker(opts: {
  sizes: number[];
  throughputRuns: number;
  resumeWaits: number;
}): Promise<FleetWorkerFigures> {
  const s = await startStack();
  try {
    let w = await s.startWorker();
    const ready = Date.now();
    const idleAt = async (seconds: number) => {
      await new Promise((r) => setTimeout(r, Math.max(0, ready + seconds * 1000 - Date.now())));
      return w.memory();
    };
    const idleAt5sRssMb = (await idleAt(5)).rssMb;
    const idle = await idleAt(IDLE_SETTLE_SECONDS);
    const waiting = [];
    for (const n of opts.sizes) waiting.push(await waitingPhase(s, w, n));

    s.proxy.configure({ imagePendingMs: 0 });
    const cpu0 = await cpuMs(w.pid);
    const t0 = Date.now();
    await startRuns(s, opts.throughputRuns);
    await until('the throughput runs done', async () => (await running(s)) === 0, 600_000, 250);
    const seconds = (Date.now() - t0) / 1000;
    const throughput = {
      runs: opts.throughputRuns,
      perMinute: (opts.throughputRuns * 60) / seconds,
      cpuMsPerRun: ((await cpuMs(w.pid)) - cpu0) / opts.throughputRuns,
    };
    s.proxy.configure({ imagePendingMs: 1000 * HOUR });

    const sigterm = await resumePhase(s, w, opts.resumeWaits, 'SIGTERM');
    w = sigterm.next;
    const sigkill = await resumePhase(s, w, opts.resumeWaits, 'SIGKILL');
    return {
      idleRssMb: idle.rssMb,
      idleAt5sRssMb,
      idlePeakMb: idle.peakMb,
      waiting,
      throughput,
      resumeSeconds: { sigterm: sigterm.seconds, sigkill: sigkill.seconds, waits: opts.resumeWaits },
      sigtermExitSeconds: sigterm.exitSeconds,
      load: os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' '),
    };
  } finally {
    await s.stop();
  }
}
