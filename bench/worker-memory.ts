/**
 * (d) Worker memory with many runs waiting: the worker runs in a child process
 * (bench/waiting-worker.ts), so its resident set is its own, read from /proc/<pid>/status. The
 * benchmark starts the runs on the dev server, waits until every one is inside
 * `waitForImageAvailable`, reads the worker's RSS, then releases the images and waits for every run
 * to finish (or, when asked, leaves them waiting on a dev server that is about to be discarded).
 */
import type { ChildProcess } from 'node:child_process';
import { execFile, fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AmiflowClient } from '../client';
import type { ToWorker, WorkerReport } from './waiting-worker';

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
}

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
      };
    }

    const cpuAtStart = (await worker.status()).cpuMicros;
    const t0 = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < opts.runs; i += 100) {
      const batch = Array.from({ length: Math.min(100, opts.runs - i) }, (_, k) => i + k);
      const started = await Promise.all(
        batch.map((n) =>
          amiflow.startImageFromInstance(
            {
              region: 'us-east-1',
              instanceId: `i-${n.toString(16).padStart(17, '0')}`,
              imageName: `bench-memory-${opts.label}-${n}`,
              mode: 'stop',
            },
            { workflowId: `bench-memory-${opts.label}-${process.pid}-${n}` },
          ),
        ),
      );
      ids.push(...started.map((s) => s.workflowId));
    }
    let report = await worker.status();
    // 10,000 runs take minutes to start on a small machine: the limit scales with the runs.
    const limitMs = Math.max(180_000, opts.runs * 100);
    const until = Date.now() + limitMs;
    while (report.waiting < opts.runs) {
      if (Date.now() > until)
        throw new Error(`only ${report.waiting} of ${opts.runs} runs were waiting after ${limitMs / 1000} s`);
      await delay(250);
      report = await worker.status();
    }
    const secondsToAllWaiting = (performance.now() - t0) / 1000;
    // Let the first heartbeats and the workflow tasks in flight settle, then read.
    await delay(opts.settleMs ?? 2000);
    const atWaiting = await worker.status();
    const waiting = await memoryOf(worker);

    const peakRssMB = (await rssOf(worker)).peak / MB;
    let completed = 0;
    let secondsToAllDone: number | undefined;
    let cpuMsPerRunToDone: number | undefined;
    if (opts.release !== false) {
      const t1 = performance.now();
      const cpuAtRelease = (await worker.status()).cpuMicros;
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
      while ((await count('Running')) > 0) {
        if (Date.now() > doneBy) throw new Error(`runs still running ${doneLimitMs / 1000} s after release`);
        await delay(500);
      }
      completed = await count('Completed');
      if (completed < ids.length) console.error(`${ids.length - completed} runs did not complete`);
      secondsToAllDone = (performance.now() - t1) / 1000;
      cpuMsPerRunToDone = ((await worker.status()).cpuMicros - cpuAtRelease) / 1000 / opts.runs;
    }
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
    };
  } finally {
    await worker.stop();
  }
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

  constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.ready = new Promise((resolve, reject) => {
      child.on('message', (m: WorkerReport | { type: 'ready' }) => {
        if (m.type === 'ready') resolve();
        if (m.type === 'status') for (const w of this.waiters.splice(0)) w(m);
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
