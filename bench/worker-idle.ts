/**
 * The idle worker's resident set, quickly (issue 13's ≤ 160 MB target): the compiled production
 * entry in a child process with the lean settings, against a dev server, nothing to do. Prints VmRSS
 * a few seconds after /readyz answers, and the same with extra NODE_OPTIONS to compare (`--variant`).
 *
 *   node --import tsx bench/worker-idle.ts [--repeat 3]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { devServerEnv, workflowBundle } from '../devkit/temporal';
import { startWorkerProcess } from '../devkit/worker-process';
import { compileForBench } from './compile';

async function main(): Promise<void> {
  const at = process.argv.indexOf('--repeat');
  const repeat = at >= 0 ? Number(process.argv[at + 1]) : 3;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'amiflow-idle-'));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  const [env, bundle, entry] = await Promise.all([
    devServerEnv(),
    workflowBundle(),
    compileForBench('worker/main.ts'),
  ]);
  await writeFile(bundlePath, bundle.code);
  try {
    const figures: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const w = await startWorkerProcess({
        temporalAddress: env.address,
        taskQueue: `idle-${process.pid}-${i}`,
        // No AWS call is made while idle: the endpoint is never dialled.
        awsEndpoint: 'http://127.0.0.1:9',
        bundlePath,
        entry,
        env: { AMIFLOW_LOG_LEVEL: 'ERROR' },
      });
      try {
        if (!(await w.ready(120_000))) throw new Error(`the worker never got ready: ${w.output()}`);
        await new Promise((r) => setTimeout(r, 5_000));
        figures.push((await w.memory()).rssMb);
      } finally {
        await w.kill('SIGKILL');
      }
    }
    const load = os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
    console.log(
      `idle worker RSS (compiled entry, lean settings): ${figures.map((f) => f.toFixed(0)).join(', ')} MB; load ${load}`,
    );
  } finally {
    await env.teardown();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
