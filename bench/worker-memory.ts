/**
 * (d) Worker memory with many runs waiting: the worker runs in a child process
 * (bench/waiting-worker.ts), so its resident set is its own, read from /proc/<pid>/status. The
 * benchmark starts the runs on the dev server, waits until every one is inside
 * `waitForImageAvailable`, reads the worker's RSS, then releases the images and waits for every run
 * to finish (or, when asked, leaves them waiting on a dev server that is about to be discarded).
 */
import type { ChildProcess } from 'node:child_process';
import { execFile, fork } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { tsToMs } from '@temporalio/common/lib/time';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AmiflowClient } from '../client';
import { eventTypes } from '../devkit/histories';
import type { CpuSplit, Sample } from './proc-watch';
import { cpuDelta, cpuSplitOf, devServerPid, load1 } from './proc-watch';
import type { ReleaseHistories } from './release-histories';
import { sampleReleaseHistories } from './release-histories';
import type { LatencySummary } from './run-rates';
import { costBeforeActivity, latenciesBetween, pacedOffsetMs, summariseLatencies } from './run-rates';
import type { ToWorker, WaitingSinceReport, WorkerReport } from './waiting-worker';

export interface Memory {
  rssMB: number;
  /** After a full garbage collection: what is live. */
  rssAfterGcMB: number;
  heapUsedAfterGcMB: number;
  externalAfterGcMB: number;
}

export interface MemoryFigures {
  runs: number;
  label: string;
  idle: Memory;
  waiting: Memory;
  peakRssMB: number;
  /** (waiting − idle) RSS / runs. */
  perRunKB: number;
  atWaiting: WorkerReport;
  secondsToAllWaiting: number;
  /** Undefined when the runs were left waiting (the dev server is discarded with them). */
  secondsToAllDone?: number;
  completed: number;
  /** Worker CPU time (user + system) per run from the first start until all were waiting. */
  cpuMsPerRunToWaiting: number;
  /** Worker CPU time per run from the release until all were done (undefined when not released). */
  cpuMsPerRunToDone?: number;
  /** How the runs were started: `batches of 100` (closed loop) or `paced N/s` (open loop). */
  startMode: string;
  /** Seconds from the first start request until the last start call returned. */
  secondsToAllStarted: number;
  /** Every 10 s from the first start: started, waiting, RSS, CPU seconds per process, load. */
  timeline: Sample[];
  /** Each run's own latency: start request → its image first polled; release → run closed. */
  latency: {
    toWaiting: LatencySummary & { missing: number };
    toDone?: LatencySummary & { missing: number };
  };
  /** CPU seconds of the worker, dev server and bench (client) process in each phase. */
  cpuSeconds: { toWaiting: CpuSplit; toDone?: CpuSplit };
  /** Workflow-task timeouts and failures in a sample of the released runs' histories. */
  releaseHistories?: ReleaseHistories;
  /** One run's history up to its image wait (the first run started). */
  oneRun?: {
    workflowTasksBeforeWait: number;
    activitiesBeforeWait: number;
    eventsBeforeWait: number;
    events: number;
  };
}

/** How often the timeline is sampled. */
export const SAMPLE_EVERY_MS = 10_000;

const MB = 1e6;
const execFileAsync = promisify(execFile);

export async function measureWorkerMemory(opts: {
  env: TestWorkflowEnvironment;
  runs: number;
  label: string;
  /** bench/waiting-worker.ts transpiled to JavaScript (see compile.ts). */
  workerScript: string;
  maxCachedWorkflows?: number;
  /** Release the images and wait for every run to finish (default), or leave them to the discarded dev server. */
  release?: boolean;
  /** Extra V8/node flags for the worker process. */
  nodeFlags?: string[];
  /** Extra environment for the worker process (e.g. MALLOC_ARENA_MAX). */
  extraEnv?: Record<string, string>;
  /** A prebuilt workflow bundle; without it the worker bundles at start, as worker/main.ts does. */
  bundlePath?: string;
  /** Image waits completed asynchronously by the watcher (as worker/main.ts runs them). */
  asyncWaits?: boolean;
  /** How long after the last run was waiting the RSS is read (default 2 s). */
  settleMs?: number;
  /** Open loop: start the runs at this rate, each on its own schedule (default: batches of 100). */
  startsPerSecond?: number;
}): Promise<MemoryFigures> {
  const taskQueue = `bench-memory-${opts.label}-${process.pid}`;
  const child = fork(opts.workerScript, [], {
    execArgv: ['--expose-gc', ...(opts.nodeFlags ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: opts.env.address,
      AMIFLOW_TASK_QUEUE: taskQueue,
      // Every waiting run holds an activity slot in the old design: the default (500) would queue
      // the rest. An async wait returns its slot at once: the worker's default then.
      ...(opts.asyncWaits
        ? { BENCH_ASYNC_WAITS: '1' }
        : { AMIFLOW_MAX_CONCURRENT_ACTIVITIES: String(Math.min(10_000, opts.runs + 100)) }),
      AMIFLOW_SHUTDOWN_GRACE_MS: '5000',
      ...(opts.maxCachedWorkflows !== undefined
        ? { BENCH_MAX_CACHED_WORKFLOWS: String(opts.maxCachedWorkflows) }
        : {}),
      ...(opts.bundlePath ? { BENCH_WORKFLOW_BUNDLE: opts.bundlePath } : {}),
      ...opts.extraEnv,
    },
  });
  const worker = new WorkerChannel(child);
  const amiflow = AmiflowClient.fromClient(opts.env.client, taskQueue);
  let timeline: Timeline | undefined;
  try {
    await worker.ready;
    await delay(1000);
    const idle = await memoryOf(worker);
    if (opts.runs === 0) {
      const atIdle = await worker.status();
      return {
        runs: 0,
        label: opts.label,
        idle,
        waiting: idle,
        peakRssMB: (await rssOf(worker)).peak / MB,
        perRunKB: 0,
        atWaiting: atIdle,
        secondsToAllWaiting: 0,
        secondsToAllDone: 0,
        completed: 0,
        cpuMsPerRunToWaiting: 0,
        startMode: 'none',
        secondsToAllStarted: 0,
        timeline: [],
        latency: { toWaiting: { ...summariseLatencies([]), missing: 0 } },
        cpuSeconds: { toWaiting: { worker: 0, server: 0, client: 0 } },
      };
    }

    const cpuAtStart = (await worker.status()).cpuMicros;
    const pids = { worker: worker.pid, server: await devServerPid() };
    const split0 = await cpuSplitOf(pids);
    const t0 = performance.now();
    const startedAt = new Map<string, number>();
    let started = 0;
    let done: number | undefined;
    timeline = new Timeline(async () => {
      const status = await worker.status();
      return {
        t: (performance.now() - t0) / 1000,
        started,
        waiting: status.waiting,
        ...(done !== undefined ? { done } : {}),
        leaseHeartbeats: { calls: status.leaseHeartbeats.calls, mb: status.leaseHeartbeats.bytes / MB },
        rssMb: (await rssOf(worker)).rss / MB,
        cpuS: await cpuSplitOf(pids),
        load1: load1(),
      };
    });
    const startOne = async (n: number): Promise<string> => {
      const workflowId = `bench-memory-${opts.label}-${process.pid}-${n}`;
      startedAt.set(workflowId, Date.now());
      await amiflow.startImageFromInstance(
        {
          region: 'us-east-1',
          instanceId: `i-${n.toString(16).padStart(17, '0')}`,
          imageName: `bench-memory-${opts.label}-${n}`,
          mode: 'stop',
        },
        { workflowId },
      );
      started += 1;
      return workflowId;
    };
    const ids = await startRuns(opts.runs, opts.startsPerSecond, startOne);
    const secondsToAllStarted = (performance.now() - t0) / 1000;
    let report = await worker.status();
    // 10,000 runs take many minutes to start on a loaded small machine: the limit scales with the runs.
    const limitMs = Math.max(180_000, opts.runs * 200);
    const until = Date.now() + limitMs;
    while (report.waiting < opts.runs) {
      if (Date.now() > until)
        throw new Error(`only ${report.waiting} of ${opts.runs} runs were waiting after ${limitMs / 1000} s`);
      await delay(250);
      report = await worker.status();
    }
    const secondsToAllWaiting = (performance.now() - t0) / 1000;
    const splitAtWaiting = await cpuSplitOf(pids);
    const toWaiting = latenciesBetween(startedAt, await worker.waitingSince());
    // Let the first heartbeats and the workflow tasks in flight settle, then read.
    await delay(opts.settleMs ?? 2000);
    const atWaiting = await worker.status();
    const waiting = await memoryOf(worker);

    const peakRssMB = (await rssOf(worker)).peak / MB;
    let completed = 0;
    let secondsToAllDone: number | undefined;
    let cpuMsPerRunToDone: number | undefined;
    let toDone: (LatencySummary & { missing: number }) | undefined;
    let cpuToDone: CpuSplit | undefined;
    let releaseHistories: ReleaseHistories | undefined;
    if (opts.release !== false) {
      const t1 = performance.now();
      const releasedAt = Date.now();
      const cpuAtRelease = (await worker.status()).cpuMicros;
      const splitAtRelease = await cpuSplitOf(pids);
      worker.send({ type: 'release' });
      // Counted through visibility, not one result long-poll per run: 10,000 of those would load
      // the dev server (and the figure) more than the runs do.
      const count = async (status: string) =>
        (
          await opts.env.client.workflow.count(
            `WorkflowType = 'imageFromInstance' AND ExecutionStatus = '${status}' AND TaskQueue = '${taskQueue}'`,
          )
        ).count;
      const doneLimitMs = Math.max(600_000, opts.runs * 100);
      const doneBy = Date.now() + doneLimitMs;
      let running = await count('Running');
      while (running > 0) {
        if (Date.now() > doneBy) throw new Error(`runs still running ${doneLimitMs / 1000} s after release`);
        done = opts.runs - running;
        await delay(500);
        running = await count('Running');
      }
      done = opts.runs - running;
      secondsToAllDone = (performance.now() - t1) / 1000;
      cpuToDone = cpuDelta(splitAtRelease, await cpuSplitOf(pids));
      cpuMsPerRunToDone = ((await worker.status()).cpuMicros - cpuAtRelease) / 1000 / opts.runs;
      completed = await count('Completed');
      if (completed < ids.length) console.error(`${ids.length - completed} runs did not complete`);
      const closed = await closeTimes(opts.env, taskQueue);
      const fromRelease = new Map([...startedAt.keys()].map((id) => [id, releasedAt]));
      const l = latenciesBetween(fromRelease, closed);
      toDone = { ...summariseLatencies(l.ms), missing: l.missing };
      releaseHistories = await sampleReleaseHistories(opts.env, ids);
    }
    await timeline.stop();
    // AMIFLOW_BENCH_LEASE_HISTORIES=FILE: the wait leases' histories in brief, to see when each hold
    // was scheduled and started (the dev server and its histories go when the bench ends).
    const leaseFile = process.env.AMIFLOW_BENCH_LEASE_HISTORIES;
    if (leaseFile)
      await leaseTimelines(opts.env)
        .then((t) => writeFile(leaseFile, JSON.stringify(t, null, 1)))
        .catch((err: unknown) => console.error(`lease histories not saved: ${String(err)}`));
    return {
      runs: opts.runs,
      label: opts.label,
      idle,
      waiting,
      peakRssMB,
      perRunKB: ((waiting.rssMB - idle.rssMB) * 1000) / Math.max(1, opts.runs),
      atWaiting,
      secondsToAllWaiting,
      ...(secondsToAllDone !== undefined ? { secondsToAllDone } : {}),
      completed,
      cpuMsPerRunToWaiting: (atWaiting.cpuMicros - cpuAtStart) / 1000 / opts.runs,
      ...(cpuMsPerRunToDone !== undefined ? { cpuMsPerRunToDone } : {}),
      startMode: opts.startsPerSecond ? `paced ${opts.startsPerSecond}/s` : 'batches of 100',
      secondsToAllStarted,
      timeline: timeline.samples,
      latency: {
        toWaiting: { ...summariseLatencies(toWaiting.ms), missing: toWaiting.missing },
        ...(toDone ? { toDone } : {}),
      },
      cpuSeconds: {
        toWaiting: cpuDelta(split0, splitAtWaiting),
        ...(cpuToDone ? { toDone: cpuToDone } : {}),
      },
      ...(releaseHistories ? { releaseHistories } : {}),
      ...(ids[0] !== undefined ? { oneRun: await oneRunCost(opts.env, ids[0]) } : {}),
    };
  } finally {
    await timeline?.stop();
    await worker.stop();
  }
}

/**
 * Starts the runs: in batches of 100, each awaited before the next (closed loop, the default), or
 * open loop at `perSecond`, each start sent on its own schedule whatever the earlier ones did.
 */
async function startRuns(
  runs: number,
  perSecond: number | undefined,
  startOne: (n: number) => Promise<string>,
): Promise<string[]> {
  const ids: string[] = [];
  if (perSecond === undefined) {
    for (let i = 0; i < runs; i += 100) {
      const batch = Array.from({ length: Math.min(100, runs - i) }, (_, k) => i + k);
      ids.push(...(await Promise.all(batch.map(startOne))));
    }
    return ids;
  }
  const t0 = performance.now();
  const pending: Promise<string>[] = [];
  for (let i = 0; i < runs; i += 1) {
    const wait = t0 + pacedOffsetMs(i, perSecond) - performance.now();
    if (wait > 0) await delay(wait);
    pending.push(startOne(i));
  }
  return Promise.all(pending);
}

/** Samples every SAMPLE_EVERY_MS until stopped; a failed sample is skipped, not fatal. */
class Timeline {
  readonly samples: Sample[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(sample: () => Promise<Sample>) {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          this.samples.push(await sample());
        } catch {
          // The worker may be busy past the IPC answer or gone at the end: the next sample tells.
        }
        const next = SAMPLE_EVERY_MS - (performance.now() % SAMPLE_EVERY_MS);
        for (let waited = 0; waited < next && !this.stopped; waited += 250)
          await delay(Math.min(250, next - waited));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

/** Each closed run's close time (epoch ms) by workflow id, from visibility. */
async function closeTimes(env: TestWorkflowEnvironment, taskQueue: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const w of env.client.workflow.list({
    query: `WorkflowType = 'imageFromInstance' AND TaskQueue = '${taskQueue}' AND ExecutionStatus != 'Running'`,
  }))
    if (w.closeTime) out.set(w.workflowId, w.closeTime.getTime());
  return out;
}

/** Each wait lease's events: ms since its start, type, activity type and attempt where they apply. */
async function leaseTimelines(env: TestWorkflowEnvironment): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for await (const w of env.client.workflow.list({ query: `WorkflowType = 'waitLease'` })) {
    const history = await env.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
    const types = eventTypes(history);
    const events = history.events ?? [];
    const t0 = tsToMs(events[0]?.eventTime);
    out[`${w.workflowId}/${w.runId}`] = events.map((e, i) => ({
      id: Number(e.eventId),
      ms: tsToMs(e.eventTime) - t0,
      type: types[i] ?? '?',
      ...(e.activityTaskScheduledEventAttributes?.activityType?.name
        ? { activity: e.activityTaskScheduledEventAttributes.activityType.name }
        : {}),
      ...(e.activityTaskStartedEventAttributes
        ? {
            scheduled: Number(e.activityTaskStartedEventAttributes.scheduledEventId),
            attempt: e.activityTaskStartedEventAttributes.attempt,
          }
        : {}),
    }));
  }
  return out;
}

/** What one run did before its image wait, from its history. */
async function oneRunCost(
  env: TestWorkflowEnvironment,
  workflowId: string,
): Promise<MemoryFigures['oneRun']> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const types = eventTypes(history);
  const events = (history.events ?? []).map((e, i) => ({
    eventType: types[i] ?? '?',
    ...(e.activityTaskScheduledEventAttributes?.activityType?.name
      ? { activityType: e.activityTaskScheduledEventAttributes.activityType.name }
      : {}),
  }));
  const cost = costBeforeActivity(events, 'waitForImageAvailable');
  if (!cost) return undefined;
  return {
    workflowTasksBeforeWait: cost.workflowTasks,
    activitiesBeforeWait: cost.activitiesBefore,
    eventsBeforeWait: cost.events,
    events: events.length,
  };
}

/** RSS as it is, then live memory after a full collection. */
async function memoryOf(worker: WorkerChannel): Promise<Memory> {
  const before = await rssOf(worker);
  const collected = await worker.status(true);
  const after = await rssOf(worker);
  return {
    rssMB: before.rss / MB,
    rssAfterGcMB: after.rss / MB,
    heapUsedAfterGcMB: collected.memory.heapUsed / MB,
    externalAfterGcMB: collected.memory.external / MB,
  };
}

/** VmRSS and VmHWM of the worker process, from /proc (Linux), else what the process reports itself. */
async function rssOf(worker: WorkerChannel): Promise<{ rss: number; peak: number }> {
  try {
    const status = await readFile(`/proc/${worker.pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kib('VmRSS') * 1024, peak: kib('VmHWM') * 1024 };
  } catch {
    const rss = (await worker.status()).memory.rss;
    return { rss, peak: rss };
  }
}

/** The IPC side of the worker child: `ready`, `status` round trips, graceful stop. */
class WorkerChannel {
  readonly ready: Promise<void>;
  private readonly exited: Promise<number | null>;
  private waiters: ((r: WorkerReport) => void)[] = [];
  private sinceWaiters: ((r: WaitingSinceReport) => void)[] = [];

  constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.ready = new Promise((resolve, reject) => {
      child.on('message', (m: WorkerReport | WaitingSinceReport | { type: 'ready' }) => {
        if (m.type === 'ready') resolve();
        if (m.type === 'status') for (const w of this.waiters.splice(0)) w(m);
        if (m.type === 'waitingSince') for (const w of this.sinceWaiters.splice(0)) w(m);
      });
      void this.exited.then((code) =>
        reject(new Error(`the benchmark worker exited (${code}) before it was ready`)),
      );
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(message: ToWorker): void {
    this.child.send(message);
  }

  status(gc = false): Promise<WorkerReport> {
    return Promise.race([
      new Promise<WorkerReport>((resolve) => {
        this.waiters.push(resolve);
        this.send({ type: 'status', gc });
      }),
      this.exited.then((code): never => {
        throw new Error(`the benchmark worker exited (${code})`);
      }),
    ]);
  }

  /** When each run reached its wait (its image first polled), by workflow id. */
  async waitingSince(): Promise<Map<string, number>> {
    const report = await new Promise<WaitingSinceReport>((resolve) => {
      this.sinceWaiters.push(resolve);
      this.send({ type: 'waitingSince' });
    });
    return new Map(report.runs);
  }

  /** Graceful shutdown (SIGTERM, as an orchestrator sends), then SIGKILL after 15 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface ModuleCost {
  bareMB: number;
  ec2ClientMB: number;
  temporalWorkerMB: number;
}

/** RSS of a fresh node process, then after loading the EC2 client, then the Temporal worker package. */
export async function measureModuleCost(): Promise<ModuleCost> {
  const script = [
    "const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024 / 1e6;",
    'const bare = rss();',
    "require('@aws-sdk/client-ec2');",
    'const ec2 = rss();',
    "require('@temporalio/worker');",
    'console.log(JSON.stringify({ bareMB: bare, ec2ClientMB: ec2 - bare, temporalWorkerMB: rss() - ec2 }));',
  ].join('\n');
  const { stdout } = await execFileAsync(process.execPath, ['-e', script], {
    cwd: path.resolve(__dirname, '..'),
  });
  return JSON.parse(stdout) as ModuleCost;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
