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
import { LEAN_ENV } from '../devkit/worker-process';
import { compileForBench } from './compile';
import { WAITING_SETTLE_SECONDS } from './fleet-worker';
import type { MemoryFigures } from './worker-memory';
import { measureWorkerMemory } from './worker-memory';

/** How the light figures were made, for the JSON (`rssMb.sources`). */
export const LIGHT_DESIGN =
  'bench/waiting-worker.ts: real worker, real imageFromInstance and async image wait (watcher + lease), ' +
  'stub activities for the other steps, fake EC2 in-process; dev server; lean settings; default cache';

export interface LightFigures {
  runs: number;
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

function figures(m: MemoryFigures): LightFigures {
  return {
    runs: m.runs,
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

export async function measureLightWaits(sizes: number[]): Promise<LightFigures[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'amiflow-light-'));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  const [env, bundle, workerScript] = await Promise.all([
    devServerEnv(),
    workflowBundle(),
    compileForBench('bench/waiting-worker.ts'),
  ]);
  await writeFile(bundlePath, bundle.code);
  const { NODE_OPTIONS, ...mallocEnv } = LEAN_ENV;
  try {
    const out: LightFigures[] = [];
    for (const runs of sizes)
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
            nodeFlags: NODE_OPTIONS.split(' '),
            extraEnv: { ...mallocEnv, AMIFLOW_LOG_LEVEL: 'ERROR' },
          }),
        ),
      );
    return out;
  } finally {
    await env.teardown();
    await rm(dir, { recursive: true, force: true });
  }
}
