/**
 * The idle worker's resident set (issue 13's ≤ 160 MB target): the compiled production entry in a
 * child process with the lean settings, against a dev server, nothing to do. Samples VmRSS every
 * second after /readyz answers and prints three figures per start:
 *
 * - `5 s`: five seconds after ready, still holding start-up garbage: the SDK keeps a copy of the
 *   workflow bundle evaluated in a vm context of the main thread for 10 s (for debuggers), and V8
 *   shrinks the heaps only once the process has been idle for a while;
 * - `settled`: `--settle` seconds after ready (default 30), what an idle worker keeps;
 * - `peak`: VmHWM, the start-up high-water mark a memory limit must allow.
 *
 *   node --import tsx bench/worker-idle.ts [--repeat 3] [--settle 30] [--variant '--some-v8-flag']
 *     [--after-one-run | --after-one-image]
 *
 * `--variant` adds NODE_OPTIONS to a second series of starts, printed beside the first.
 * `--after-one-run` has each worker run one workflow first (an `imageFromInstance` refused for its
 * input, no AWS call): what any worker keeps once it has worked, against a worker that never has.
 * `--after-one-image` has each worker image one instance in the sandbox (moto) first, to the end:
 * what a worker keeps once it has made EC2 calls (the EC2 client loads at the first one).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AmiflowClient } from '../client';
import { startMoto } from '../devkit/moto';
import { SANDBOX_REGION, launchInstance, sandboxEc2, stockEbsAmi } from '../devkit/sandbox-ec2';
import { devServerEnv, workflowBundle } from '../devkit/temporal';
import { LEAN_ENV, startWorkerProcess } from '../devkit/worker-process';
import { buildEc2ClientSubset } from '../scripts/ec2-client-subset';
import { OUT_DIR, compileForBench } from './compile';

interface IdleFigures {
  at5sMb: number;
  settledMb: number;
  peakMb: number;
}

function arg(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

async function measureOnce(
  env: TestWorkflowEnvironment,
  run: {
    bundlePath: string;
    entry: string;
    taskQueue: string;
    nodeOptions: string;
    settleSeconds: number;
    afterOneRun: boolean;
    /** With `--after-one-image`: the sandbox and the instance each worker images first. */
    image?: { endpoint: string; instanceId: string };
  },
): Promise<IdleFigures> {
  const w = await startWorkerProcess({
    temporalAddress: env.address,
    taskQueue: run.taskQueue,
    // No AWS call is made while idle: the endpoint is never dialled.
    awsEndpoint: run.image?.endpoint ?? 'http://127.0.0.1:9',
    bundlePath: run.bundlePath,
    entry: run.entry,
    env: { AMIFLOW_LOG_LEVEL: 'ERROR', NODE_OPTIONS: run.nodeOptions },
  });
  try {
    if (!(await w.ready(120_000))) throw new Error(`the worker never got ready: ${w.output()}`);
    if (run.afterOneRun) {
      const one = await env.client.workflow.start('imageFromInstance', {
        taskQueue: run.taskQueue,
        workflowId: `one-run-${run.taskQueue}`,
        args: [{}],
      });
      await one.result().catch(() => undefined);
    }
    if (run.image) {
      const client = AmiflowClient.fromClient(env.client, run.taskQueue);
      const started = await client.startImageFromInstance(
        {
          region: SANDBOX_REGION,
          instanceId: run.image.instanceId,
          imageName: run.taskQueue,
          mode: 'no-reboot',
        },
        { searchAttributes: false },
      );
      await env.client.workflow.getHandle(started.workflowId).result();
    }
    const readyAt = Date.now();
    const at = async (seconds: number) => {
      await new Promise((r) => setTimeout(r, Math.max(0, readyAt + seconds * 1000 - Date.now())));
      return w.memory();
    };
    const at5sMb = (await at(5)).rssMb;
    const settled = await at(run.settleSeconds);
    return { at5sMb, settledMb: settled.rssMb, peakMb: settled.peakMb };
  } finally {
    await w.kill('SIGKILL');
  }
}

function line(label: string, figures: IdleFigures[]): string {
  const mb = (pick: (f: IdleFigures) => number) => figures.map((f) => pick(f).toFixed(0)).join(', ');
  return (
    `${label}: settled ${mb((f) => f.settledMb)} MB; 5 s after ready ${mb((f) => f.at5sMb)} MB; ` +
    `peak ${mb((f) => f.peakMb)} MB`
  );
}

async function main(): Promise<void> {
  const repeat = Number(arg('--repeat') ?? 3);
  const settleSeconds = Number(arg('--settle') ?? 30);
  const variant = arg('--variant');
  const afterOneRun = process.argv.includes('--after-one-run');
  const afterOneImage = process.argv.includes('--after-one-image');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'amiflow-idle-'));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  const [env, bundle, entry] = await Promise.all([
    devServerEnv(),
    workflowBundle(),
    // As `npm run build` lays out dist/: the compiled worker and, next to it, the EC2 client subset.
    compileForBench('worker/main.ts').then(async (main) => {
      await buildEc2ClientSubset(path.join(OUT_DIR, 'vendor', 'client-ec2.js'));
      return main;
    }),
  ]);
  await writeFile(bundlePath, bundle.code);
  const moto = afterOneImage ? await startMoto() : undefined;
  try {
    let image: { endpoint: string; instanceId: string } | undefined;
    if (moto) {
      const ec2 = sandboxEc2(moto.endpoint);
      image = { endpoint: moto.endpoint, instanceId: await launchInstance(ec2, await stockEbsAmi(ec2)) };
      ec2.destroy();
    }
    const series = [{ label: 'lean settings', nodeOptions: LEAN_ENV.NODE_OPTIONS }];
    if (variant) series.push({ label: `+ ${variant}`, nodeOptions: `${LEAN_ENV.NODE_OPTIONS} ${variant}` });
    const lines: string[] = [];
    for (const [s, { label, nodeOptions }] of series.entries()) {
      const figures: IdleFigures[] = [];
      for (let i = 0; i < repeat; i++)
        figures.push(
          await measureOnce(env, {
            bundlePath,
            entry,
            taskQueue: `idle-${process.pid}-${s}-${i}`,
            nodeOptions,
            settleSeconds,
            afterOneRun,
            ...(image ? { image } : {}),
          }),
        );
      const what = image ? 'after one image' : afterOneRun ? 'after one run' : 'idle';
      lines.push(line(`${what} worker RSS (compiled entry, ${label})`, figures));
    }
    const load = os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
    for (const l of lines) console.log(l);
    console.log(`settled = ${settleSeconds} s after ready; load ${load}`);
  } finally {
    await env.teardown();
    await moto?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
