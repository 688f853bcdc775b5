/**
 * `node --import tsx bench/lease-sweep.ts [--sizes 1000,5000]`: what a lost lease's sweep costs
 * (worker/async-waits.ts `clientFindStarted`: one Visibility list of the queue's running workflows,
 * then a describe of each, 16 at a time) with N runs open on the queue, on the dev server. The runs
 * are started with no worker polling, so each is open with a pending workflow task: its describe
 * reads a mutable state about the size of a run waiting for its image. Printed per size: the
 * sweep's wall time, the time per run, and the waits it found (none here: no worker took any).
 * A sweep runs once per lost worker, never while workers live.
 */
import { loadavg } from 'node:os';
import { devServerEnv } from '../devkit/temporal';
import { clientFindStarted } from '../worker/async-waits';

function flag(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

async function main(): Promise<void> {
  const sizes = (flag('--sizes') ?? '1000,5000').split(',').map(Number);
  if (sizes.some((n) => !(n > 0))) throw new Error('--sizes takes positive numbers, e.g. 1000,5000');
  const env = await devServerEnv();
  const rows: string[][] = [];
  try {
    for (const size of sizes) {
      const taskQueue = `bench-sweep-${size}-${process.pid}`;
      for (let i = 0; i < size; i += 100)
        await Promise.all(
          Array.from({ length: Math.min(100, size - i) }, (_, k) =>
            env.client.workflow.start('imageFromInstance', {
              taskQueue,
              workflowId: `${taskQueue}-${i + k}`,
              args: [{}],
            }),
          ),
        );
      const query = `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'`;
      for (let seen = 0; seen < size;) {
        seen = (await env.client.workflow.count(query)).count;
        if (seen < size) await new Promise((r) => setTimeout(r, 200));
      }
      const find = clientFindStarted(env.client);
      const began = performance.now();
      const found = await find({ taskQueue, workerIdentity: '1@lost-worker' }, Date.now());
      const ms = performance.now() - began;
      rows.push([String(size), (ms / 1000).toFixed(2), (ms / size).toFixed(2), String(found.length)]);
      await Promise.all(
        Array.from({ length: size }, (_, k) =>
          env.client.workflow
            .getHandle(`${taskQueue}-${k}`)
            .terminate('bench done')
            .catch(() => undefined),
        ),
      );
    }
  } finally {
    await env.teardown();
  }
  const head = ['runs open on the queue', 'sweep (s)', 'per run (ms)', 'waits found'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const fmt = (r: string[]) => r.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  console.log(`the sweep of a lost worker (load ${loadavg()[0]?.toFixed(1) ?? '?'})`);
  console.log(fmt(head));
  for (const r of rows) console.log(fmt(r));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
