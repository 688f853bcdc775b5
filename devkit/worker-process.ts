/**
 * The production worker entry (`worker/main.ts`) as a child process, for tests and benchmarks that
 * must kill it (SIGKILL, SIGTERM) or read its own resident set from /proc: what operators run,
 * configured only through its environment. The workflow bundle is prebuilt once and handed over
 * with AMIFLOW_WORKFLOW_BUNDLE, so a start costs seconds, not a webpack run.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SANDBOX_CREDENTIALS } from './moto';
import { freePort } from './ports';
import { ROOT } from './tools';

export interface WorkerProcessOptions {
  temporalAddress: string;
  taskQueue: string;
  awsEndpoint: string;
  /** A prebuilt workflow bundle file (AMIFLOW_WORKFLOW_BUNDLE). */
  bundlePath: string;
  /** Plain JavaScript entry to run with `node` (a compiled worker/main); default: worker/main.ts under tsx. */
  entry?: string;
  /** More AMIFLOW_* settings. */
  env?: Record<string, string>;
  /** The lean runtime settings of the Dockerfile and Kubernetes manifests (default true). */
  lean?: boolean;
  /** More Node or V8 flags on the command line, after LEAN_NODE_FLAGS and before the entry. */
  nodeArgs?: string[];
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  metricsUrl: string;
  /** Resolves true once /readyz answers 200 (connected and polling), false at `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  /** The value of a gauge or counter on /metrics, summed over its label sets (0 when absent). */
  metric(name: string): Promise<number>;
  /** VmRSS and VmHWM (peak) of the process, in MB (10^6 bytes), from /proc. */
  memory(): Promise<{ rssMb: number; peakMb: number }>;
  kill(signal: NodeJS.Signals): Promise<void>;
  /** The last lines it wrote (stdout and stderr), for a failure message. */
  output(): string;
}

/**
 * Same as the Dockerfile's ENV: a 1 MB young generation and fewer, trimmed malloc arenas. The mmap
 * threshold of 32 KB sends V8's compiler-zone segments (exactly 32 KB each, freed after every compile)
 * to their own mappings, unmapped on free: left in the arenas they were holes glibc never returned,
 * ~25 MB of an idle worker on Node 24 (docs/fleet-waits.md, "Node 24 and V8's compiler zones").
 */
export const LEAN_ENV = {
  NODE_OPTIONS: '--max-semi-space-size=1',
  MALLOC_ARENA_MAX: '2',
  MALLOC_TRIM_THRESHOLD_: '131072',
  MALLOC_MMAP_THRESHOLD_: '32768',
};

/**
 * The lean settings that must go on the node command line, before the entry (the Dockerfile's CMD,
 * the Deployment's command, `npm start`): Node 24 refuses these V8 flags in NODE_OPTIONS. A heap
 * grows by at most 1.2× after a full collection instead of up to 4×, so the burst of 1,000 runs
 * reaching their waits leaves 250–270 MB resident instead of 330–450 MB, and 10,000 ~285 MB instead
 * of ~430; its CPU cost is inside the bench's noise at 1,000 (docs/sizing.md, "Lean runtime
 * settings, final").
 */
export const LEAN_NODE_FLAGS: readonly string[] = ['--heap-growing-percent=20'];

export async function startWorkerProcess(opts: WorkerProcessOptions): Promise<WorkerProcess> {
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const lean = opts.lean !== false;
  const args = [
    ...(lean ? LEAN_NODE_FLAGS : []),
    ...(opts.nodeArgs ?? []),
    ...(opts.entry ? [opts.entry] : ['--import', 'tsx', path.join(ROOT, 'worker', 'main.ts')]),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(lean ? LEAN_ENV : {}),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      TEMPORAL_ADDRESS: opts.temporalAddress,
      AMIFLOW_TASK_QUEUE: opts.taskQueue,
      AMIFLOW_AWS_ENDPOINT: opts.awsEndpoint,
      AWS_ACCESS_KEY_ID: SANDBOX_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: SANDBOX_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AMIFLOW_WORKFLOW_BUNDLE: opts.bundlePath,
      AMIFLOW_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      AMIFLOW_HEALTH_ADDRESS: `127.0.0.1:${healthPort}`,
      AMIFLOW_LOG_LEVEL: 'WARN',
      AMIFLOW_LOG_FORMAT: 'json',
      ...opts.env,
    },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the worker process did not start');
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    pid,
    metricsUrl,
    async ready(timeoutMs) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until && alive()) {
        const ok = await fetch(`http://127.0.0.1:${healthPort}/readyz`, {
          signal: AbortSignal.timeout(2_000),
        })
          .then((r) => r.ok)
          .catch(() => false);
        if (ok) return true;
        await new Promise((r) => setTimeout(r, 200));
      }
      return false;
    },
    async metric(name) {
      const text = await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text());
      let sum = 0;
      for (const line of text.split('\n'))
        if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').pop());
      return sum;
    },
    async memory() {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const kb = (field: string) =>
        Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      return { rssMb: (kb('VmRSS') * 1024) / 1e6, peakMb: (kb('VmHWM') * 1024) / 1e6 };
    },
    async kill(signal) {
      if (!alive()) return;
      child.kill(signal);
      await exited;
    },
    output: () => tail,
  };
}
