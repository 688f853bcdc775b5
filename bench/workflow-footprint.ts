/**
 * What one cached workflow costs the worker, in memory and CPU, with the bundle as it was (every
 * workflow evaluates zod, the contracts and the workflow code into its own module cache) and with
 * the shared modules (worker/bundle-options.ts `preloadModules`: evaluated once per V8 context),
 * side by side in one run against one dev server (issue 13).
 *
 * Each variant is the real worker (bench/waiting-worker.ts, plain JS in a child process) running
 * the real imageFromInstance, whose `waitForImageAvailable` never sees the image turn available
 * until the bench releases it; the cache is larger than the runs, so every waiting run stays cached.
 *
 *   node --import tsx bench/workflow-footprint.ts [--runs 500] [--cache N] [--json FILE]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { devServerEnv } from '../devkit/temporal';
import { LEAN_ENV, LEAN_NODE_FLAGS } from '../devkit/worker-process';
import { leanWorkflowBundle, workflowBundleOptions, workflowsPath } from '../worker/bundle-options';
import { OUT_DIR, compileForBench } from './compile';
import type { MemoryFigures } from './worker-memory';
import { measureWorkerMemory } from './worker-memory';

const quiet = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };

function arg(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

interface Variant {
  label: string;
  bundlePath: string;
}

/** Both bundles, built the same way but for `preloadModules`. */
async function buildBundles(): Promise<Variant[]> {
  await mkdir(OUT_DIR, { recursive: true });
  const variants = [
    { label: 'per-workflow', options: { workflowsPath, webpackConfigHook: leanWorkflowBundle } },
    { label: 'shared', options: workflowBundleOptions },
  ];
  return Promise.all(
    variants.map(async ({ label, options }) => {
      const { code } = await bundleWorkflowCode({ ...options, logger: quiet });
      const bundlePath = path.join(OUT_DIR, `footprint-${label}.js`);
      await writeFile(bundlePath, code);
      return { label, bundlePath };
    }),
  );
}

function row(f: MemoryFigures): Record<string, string | number> {
  const perRun = (mb: number, idle: number) => Math.round(((mb - idle) * 1000) / f.runs);
  return {
    variant: f.label,
    runs: f.runs,
    'idle RSS MB': Math.round(f.idle.rssAfterGcMB),
    'waiting RSS MB': Math.round(f.waiting.rssAfterGcMB),
    'KB/run (RSS)': perRun(f.waiting.rssAfterGcMB, f.idle.rssAfterGcMB),
    'KB/run (main-thread heap)': perRun(f.waiting.heapUsedAfterGcMB, f.idle.heapUsedAfterGcMB),
    'CPU ms/run to waiting': Number(f.cpuMsPerRunToWaiting.toFixed(1)),
    'CPU ms/run to done': Number((f.cpuMsPerRunToDone ?? NaN).toFixed(1)),
    'peak RSS MB': Math.round(f.peakRssMB),
  };
}

async function main(): Promise<void> {
  const runs = Number(arg('runs') ?? 500);
  const cache = Number(arg('cache') ?? runs + 100);
  const json = arg('json');
  const [env, variants, workerScript] = await Promise.all([
    devServerEnv(),
    buildBundles(),
    compileForBench('bench/waiting-worker.ts'),
  ]);
  const { NODE_OPTIONS: _flags, ...leanMalloc } = LEAN_ENV;
  try {
    const figures: MemoryFigures[] = [];
    for (const v of variants) {
      figures.push(
        await measureWorkerMemory({
          env,
          runs,
          label: v.label,
          workerScript,
          maxCachedWorkflows: cache,
          bundlePath: v.bundlePath,
          // The production worker's lean settings (Dockerfile), so the figures are the shipped ones.
          nodeFlags: [...LEAN_ENV.NODE_OPTIONS.split(' '), ...LEAN_NODE_FLAGS],
          extraEnv: leanMalloc,
        }),
      );
    }
    console.log(`workflow footprint: ${runs} runs waiting, cache ${cache}, load ${await loadAverage()}`);
    console.table(figures.map(row));
    const [before, after] = figures;
    if (before && after) {
      const kb = (f: MemoryFigures) =>
        ((f.waiting.heapUsedAfterGcMB - f.idle.heapUsedAfterGcMB) * 1000) / runs;
      console.log(
        `RSS per cached workflow: ${kb(before).toFixed(0)} KB → ${kb(after).toFixed(0)} KB ` +
          `(${(kb(before) / kb(after)).toFixed(1)}×); CPU per run to waiting: ` +
          `${before.cpuMsPerRunToWaiting.toFixed(1)} → ${after.cpuMsPerRunToWaiting.toFixed(1)} ms`,
      );
    }
    if (json) await writeFile(json, JSON.stringify({ runs, cache, figures }, null, 2));
  } finally {
    await env.teardown();
  }
}

async function loadAverage(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  try {
    return (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}

function noop(): void {}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
