/**
 * The chaos tier's stack: moto_server behind the fault layer, a Temporal dev server persisting to a
 * SQLite file (so a SIGKILLed server comes back with every run), and the real worker as a child
 * process (`worker/main.ts`, the production entry point) that can be SIGKILLed and restarted.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowBundleOptions } from '../../worker/bundle-options';
import type { FaultProxy } from '../faults/fault-proxy';
import { startFaultProxy } from '../faults/fault-proxy';
import type { FaultOptions } from '../faults/options';
import { stopChild } from '../local-stack';
import type { Moto } from '../moto';
import { SANDBOX_CREDENTIALS, startMoto } from '../moto';
import { freePort } from '../ports';
import { startRestartableServer } from '../server-outage';
import { ROOT } from '../tools';

export interface ChaosStack {
  moto: Moto;
  proxy: FaultProxy;
  temporalAddress: string;
  taskQueue: string;
  /** SIGKILLs the worker; `restartWorker` brings one back. */
  killWorker(): Promise<void>;
  restartWorker(): void;
  workerAlive(): boolean;
  /**
   * Resolves once the current worker answers ready on its health endpoint (connected and polling),
   * or at `until`: the disruption times its kills from there, so on a slow machine a kill still
   * meets a worker with work in flight rather than one still loading.
   */
  workerReady(until: number): Promise<boolean>;
  /** SIGKILLs the dev server and starts it again on the same port and database file. */
  restartServer(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** The wait lease's heartbeat timeout in the chaos stack's workers (both tiers). */
export const CHAOS_LEASE_TIMEOUT_MS = 10_000;

const quiet = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export async function startChaosStack(faults: FaultOptions): Promise<ChaosStack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'amiflow-chaos-'));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  // Bundled once: each restarted worker loads it (AMIFLOW_WORKFLOW_BUNDLE) instead of running webpack.
  const [moto, { code }] = await Promise.all([
    startMoto(),
    bundleWorkflowCode({ ...workflowBundleOptions, logger: quiet }),
  ]);
  await writeFile(bundlePath, code);
  const proxy = await startFaultProxy({ target: moto.endpoint, options: faults });
  const server = await startRestartableServer(path.join(dir, 'temporal.db'));
  const taskQueue = `chaos-${process.pid}`;
  const healthAddress = `127.0.0.1:${await freePort()}`;
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    AMIFLOW_TASK_QUEUE: taskQueue,
    AMIFLOW_AWS_ENDPOINT: proxy.endpoint,
    AWS_ACCESS_KEY_ID: SANDBOX_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: SANDBOX_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AMIFLOW_WORKFLOW_BUNDLE: bundlePath,
    AMIFLOW_LOG_LEVEL: 'ERROR',
    AMIFLOW_SHUTDOWN_GRACE_MS: '500',
    // A SIGKILLed worker's image waits come back within seconds, not the production 6 minutes: the
    // worker's real setting (docs/configuration.md), so the session exercises the lease as shipped.
    AMIFLOW_WAIT_LEASE_SOLO_TIMEOUT_MS: String(CHAOS_LEASE_TIMEOUT_MS),
    AMIFLOW_WAIT_LEASE_SHARED_TIMEOUT_MS: String(CHAOS_LEASE_TIMEOUT_MS),
    // Ports of this session's own, so two stacks on one machine (a chaos run beside the test suite's
    // bounded one) do not make each other's workers fail to bind and restart in a loop.
    AMIFLOW_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
    AMIFLOW_HEALTH_ADDRESS: healthAddress,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  let worker: ChildProcess | undefined;
  let stopping = false;
  // AMIFLOW_CHAOS_WORKER_LOG=<file>: every worker's stdout and stderr appended there, each start
  // marked, so a worker that fails to start or poll after a restart shows why (otherwise discarded).
  const logFile = process.env.AMIFLOW_CHAOS_WORKER_LOG;
  const logFd = logFile ? openSync(logFile, 'a') : undefined;
  let spawned = 0;

  function spawnWorker(): void {
    spawned += 1;
    const n = spawned;
    if (logFd !== undefined) writeSync(logFd, `--- worker ${n} spawned at ${new Date().toISOString()}\n`);
    const out = logFd ?? 'ignore';
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'worker', 'main.ts')], {
      env:
        logFd !== undefined
          ? { ...env, AMIFLOW_LOG_LEVEL: process.env.AMIFLOW_CHAOS_WORKER_LOG_LEVEL ?? 'INFO' }
          : env,
      cwd: ROOT,
      stdio: ['ignore', out, out],
    });
    worker = child;
    if (logFd !== undefined)
      child.once('exit', (code, signal) =>
        writeSync(
          logFd,
          `--- worker ${n} pid ${child.pid} exited (${signal ?? code}) at ${new Date().toISOString()}\n`,
        ),
      );
    // A worker that dies on its own (e.g. it lost the server) is brought back, as a supervisor would.
    child.once('exit', () => {
      if (worker === child && !stopping)
        setTimeout(() => worker === child && !stopping && spawnWorker(), 500);
    });
  }
  spawnWorker();

  return {
    moto,
    proxy,
    temporalAddress: server.address,
    taskQueue,
    async killWorker() {
      const child = worker;
      worker = undefined;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    },
    restartWorker() {
      if (!worker) spawnWorker();
    },
    workerAlive: () => worker !== undefined,
    async workerReady(until) {
      while (Date.now() < until) {
        const ready = await fetch(`http://${healthAddress}/readyz`, { signal: AbortSignal.timeout(1000) })
          .then((r) => r.ok)
          .catch(() => false);
        if (ready && worker !== undefined) return true;
        await new Promise((r) => setTimeout(r, 100));
      }
      return false;
    },
    async restartServer(downMs) {
      await server.kill();
      await new Promise((r) => setTimeout(r, downMs));
      // Started again until it comes back (port not released yet, database still locked), as a
      // supervisor would, rather than failing the session.
      await server.start();
    },
    async stop() {
      stopping = true;
      if (worker) await stopChild(worker);
      await server.stop();
      await proxy.stop();
      await moto.stop();
      if (logFd !== undefined) closeSync(logFd);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
