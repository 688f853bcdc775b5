/**
 * Issue 13's 10,000 waits on one worker, in the design where that many can start within the
 * target's 120 s on a small machine: section d's worker (bench/waiting-worker.ts: the real worker
 * built by buildWorker, the real imageFromInstance workflow and the real asynchronous image wait
 * with its watcher and lease, stub activities for the other steps, a fake EC2 in the worker process
 * answering the watcher's batched DescribeImages) against the dev server, lean runtime settings,
 * prebuilt bundle. The whole worker against moto (fleet-worker.ts) runs ~500 image runs a minute
 * here, so 10,000 would take 20 minutes to start whatever the worker's memory.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { devServerEnv, workflowBundle } from '../devkit/temporal';
import { LEAN_ENV, LEAN_NODE_FLAGS } from '../devkit/worker-process';
import { compileForBench } from './compile';
import { WAITING_SETTLE_SECONDS } from './fleet-worker';
import type { CpuSplit, Sample } from './proc-watch';
import type { CpuBudget, LatencySummary } from './run-rates';
import { cpuBudget, prefixedOverrides } from './run-rates';
import type { MemoryFigures } from './worker-memory';
import { measureWorkerMemory } from './worker-memory';
import type { ReleaseHistories } from './release-histories';

/** How the light figures were made, for the JSON (`rssMb.sources`). */
export const LIGHT_DESIGN =
  'bench/waiting-worker.ts: real worker, real imageFromInstance and async image wait (watcher + lease), ' +
  'stub activities for the other steps, fake EC2 in-process; dev server; lean settings; default cache';

/** `AMIFLOW_BENCH_WORKER_<NAME>=value` in the bench's environment reaches the worker as NAME=value. */
export const WORKER_OVERRIDE = 'AMIFLOW_BENCH_WORKER_';

export interface LightOptions {
  sizes: number[];
  /** Open loop at this many starts a second; undefined: batches of 100, each awaited. */
  startsPerSecond?: number;
  /** Dev server dynamic config, KEY=VALUE (`--dynamic-config-value`), e.g. eager activities. */
  serverConfig: string[];
}

/** The budget for 10,000 runs: waiting within 120 s of their start, on this machine's 2 cores. */
export const TARGET_SECONDS = 120;
export const MACHINE_CORES = 2;

export interface LightFigures {
  runs: number;
  startMode: string;
  /** The dev server's dynamic config and the worker settings the run used. */
  serverConfig: string[];
  workerEnv: Record<string, string>;
  secondsToAllStarted: number;
  latencyToWaiting: LatencySummary & { missing: number };
  latencyToDone: (LatencySummary & { missing: number }) | null;
  /** CPU seconds per process (worker, dev server, bench client) until all waiting / from release to all done. */
  cpuSeconds: { toWaiting: CpuSplit; toDone: CpuSplit | null };
  /** The same per run, in ms. */
  cpuMsPerRun: { toWaiting: CpuSplit; toDone: CpuSplit | null };
  /** Server + worker + client CPU per run (start to waiting) against 2 cores × 120 s; and the worker alone. */
  budget: { all: CpuBudget; workerOnly: CpuBudget };
  oneRun: MemoryFigures['oneRun'] | null;
  /** Workflow-task timeouts (sticky queue) and failures in a sample of the released runs' histories. */
  releaseHistories: ReleaseHistories | null;
  /** Lease heartbeats (each the whole list of held waits) sent until the RSS was read at all waiting. */
  leaseHeartbeatsToWaiting: { calls: number; mb: number };
  /** Signals telling the lease of its waits before its hold ran (each in the lease's history), until all waiting. */
  leaseSignalsToWaiting: { calls: number; mb: number };
  /**
   * Seconds from the first run reaching its wait to the lease's first recorded heartbeat (its hold
   * running): until then a crash is only noticed after the hold's schedule-to-start timeout.
   */
  leaseFirstBeatAfterFirstWaitS: number | null;
  timeline: Sample[];
  idleRssMb: number;
  rssMb: number;
  rssAfterGcMb: number;
  peakMb: number;
  secondsToAllWaiting: number;
  secondsToAllDone: number | null;
  completed: number;
  cpuMsPerRunToWaiting: number;
  cachedWorkflows: number;
  load: string;
}

function perRun(split: CpuSplit, runs: number): CpuSplit {
  const ms = (s: number) => (s * 1000) / Math.max(1, runs);
  return { worker: ms(split.worker), server: ms(split.server), client: ms(split.client) };
}

function figures(m: MemoryFigures, opts: LightOptions, workerEnv: Record<string, string>): LightFigures {
  const toWaiting = perRun(m.cpuSeconds.toWaiting, m.runs);
  return {
    runs: m.runs,
    startMode: m.startMode,
    serverConfig: opts.serverConfig,
    workerEnv,
    secondsToAllStarted: m.secondsToAllStarted,
    latencyToWaiting: m.latency.toWaiting,
    latencyToDone: m.latency.toDone ?? null,
    cpuSeconds: { toWaiting: m.cpuSeconds.toWaiting, toDone: m.cpuSeconds.toDone ?? null },
    cpuMsPerRun: {
      toWaiting,
      toDone: m.cpuSeconds.toDone ? perRun(m.cpuSeconds.toDone, m.runs) : null,
    },
    budget: {
      all: cpuBudget(
        toWaiting.worker + toWaiting.server + toWaiting.client,
        10_000,
        MACHINE_CORES,
        TARGET_SECONDS,
      ),
      workerOnly: cpuBudget(toWaiting.worker, 10_000, 1, TARGET_SECONDS),
    },
    oneRun: m.oneRun ?? null,
    releaseHistories: m.releaseHistories ?? null,
    leaseHeartbeatsToWaiting: {
      calls: m.atWaiting.leaseHeartbeats.calls,
      mb: m.atWaiting.leaseHeartbeats.bytes / 1e6,
    },
    leaseSignalsToWaiting: {
      calls: m.atWaiting.leaseSignals.calls,
      mb: m.atWaiting.leaseSignals.bytes / 1e6,
    },
    leaseFirstBeatAfterFirstWaitS:
      m.atWaiting.firstLeaseBeatAt !== null && m.atWaiting.firstWaitAt !== null
        ? (m.atWaiting.firstLeaseBeatAt - m.atWaiting.firstWaitAt) / 1000
        : null,
    timeline: m.timeline,
    idleRssMb: m.idle.rssMB,
    rssMb: m.waiting.rssMB,
    rssAfterGcMb: m.waiting.rssAfterGcMB,
    peakMb: m.peakRssMB,
    secondsToAllWaiting: m.secondsToAllWaiting,
    secondsToAllDone: m.secondsToAllDone ?? null,
    completed: m.completed,
    cpuMsPerRunToWaiting: m.cpuMsPerRunToWaiting,
    cachedWorkflows: m.atWaiting.cachedWorkflows,
    load: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
  };
}

export async function measureLightWaits(opts: LightOptions): Promise<LightFigures[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'amiflow-light-'));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  const workerEnv = prefixedOverrides(process.env, WORKER_OVERRIDE);
  const [env, bundle, workerScript] = await Promise.all([
    devServerEnv({ extraArgs: opts.serverConfig.flatMap((kv) => ['--dynamic-config-value', kv]) }),
    workflowBundle(),
    compileForBench('bench/waiting-worker.ts'),
  ]);
  await writeFile(bundlePath, bundle.code);
  const { NODE_OPTIONS, ...mallocEnv } = LEAN_ENV;
  try {
    const out: LightFigures[] = [];
    for (const runs of opts.sizes)
      out.push(
        figures(
          await measureWorkerMemory({
            env,
            runs,
            label: `light-${runs}`,
            workerScript,
            bundlePath,
            asyncWaits: true,
            // As the whole worker's figure: read once V8 has shrunk the heaps the burst grew.
            settleMs: WAITING_SETTLE_SECONDS * 1000,
            // AMIFLOW_BENCH_LIGHT_NODE_FLAGS adds worker flags, e.g. `--cpu-prof --cpu-prof-dir=DIR`.
            // The whole worker's lean settings: NODE_OPTIONS's flags and the command line's.
            nodeFlags: [
              ...NODE_OPTIONS.split(' '),
              ...LEAN_NODE_FLAGS,
              ...(process.env.AMIFLOW_BENCH_LIGHT_NODE_FLAGS ?? '').split(' ').filter(Boolean),
            ],
            extraEnv: { ...mallocEnv, AMIFLOW_LOG_LEVEL: 'ERROR', ...workerEnv },
            ...(opts.startsPerSecond !== undefined ? { startsPerSecond: opts.startsPerSecond } : {}),
          }),
          opts,
          workerEnv,
        ),
      );
    return out;
  } finally {
    await env.teardown();
    await rm(dir, { recursive: true, force: true });
  }
}
