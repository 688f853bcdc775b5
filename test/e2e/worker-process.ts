/**
 * The worker as operators run it: `worker/main.ts` in its own process (as `npm start` and the
 * container do), configured only through its environment, with stdout a pipe (so JSON logs by
 * default), a metrics port and a health port. Shared by the operability e2e files.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { SANDBOX_CREDENTIALS } from '../../devkit/moto';
import { freePort } from '../../devkit/ports';
import { SANDBOX_REGION } from '../../devkit/sandbox-ec2';
import { uniqueTaskQueue } from '../../devkit/temporal';
import { ROOT } from '../../devkit/tools';
import { eventually } from './fixtures';

export interface WorkerProcess {
  child: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  metricsUrl: string;
  healthUrl: string;
  taskQueue: string;
  exited: Promise<number | null>;
}

/**
 * Starts the worker against `temporalPort` and `awsEndpoint`. AWS credentials are not passed on:
 * a test gives them in `env` (or leaves them out to see the worker unready).
 */
export async function startWorkerProcess(
  temporalPort: number,
  awsEndpoint: string,
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const taskQueue = uniqueTaskQueue('operability');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'worker/main.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      AMIFLOW_TASK_QUEUE: taskQueue,
      AMIFLOW_AWS_ENDPOINT: awsEndpoint,
      AWS_REGION: SANDBOX_REGION,
      AMIFLOW_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      AMIFLOW_HEALTH_ADDRESS: `127.0.0.1:${healthPort}`,
      AMIFLOW_SHUTDOWN_GRACE_MS: '500',
      ...env,
    },
  });
  const lines: string[] = [];
  let partial = '';
  child.stdout?.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l !== ''));
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      if (partial) lines.push(partial);
      if (code !== 0 && code !== null) console.error(`worker exited ${code}: ${stderr}`);
      resolve(code);
    }),
  );
  return {
    child,
    lines,
    taskQueue,
    exited,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    healthUrl: `http://127.0.0.1:${healthPort}`,
  };
}

/** The HTTP status at `url`, or undefined while nothing listens there yet. */
export async function status(url: string): Promise<number | undefined> {
  try {
    return (await fetch(url)).status;
  } catch {
    return undefined; // not listening yet
  }
}

/** The sandbox's credentials as a worker's environment (it inherits none): `startWorkerProcess`'s `env`. */
export const SANDBOX_AWS_ENV: Record<string, string> = {
  AWS_ACCESS_KEY_ID: SANDBOX_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: SANDBOX_CREDENTIALS.secretAccessKey,
};

/** Waits up to `ms` until the worker's `/healthz` (alive) or `/readyz` (polling, with credentials) is 200. */
export async function untilHealth(
  worker: WorkerProcess,
  probe: '/healthz' | '/readyz',
  ms: number,
): Promise<void> {
  await eventually(
    `${probe} 200`,
    async () => ((await status(`${worker.healthUrl}${probe}`)) === 200 ? true : undefined),
    ms,
  );
}

/** SIGTERM (unless it already ended) and its exit code. */
export async function stopWorkerProcess(worker: WorkerProcess): Promise<number | null> {
  if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGTERM');
  return worker.exited;
}

/** The sum of `name`'s samples whose labels include every `labels` pair (undefined when none). */
export function metricTotal(
  metrics: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  let sum: number | undefined;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
