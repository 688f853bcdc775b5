/**
 * Does the dev server hand a workflow task of priority 1 before a backlog of default-priority ones?
 * The wait lease's first workflow task waited ~400 s behind 10,000 runs' tasks in the main queue
 * (docs/fleet-waits.md, "10,000 waits"). Starts `--backlog` workflows on a queue no worker polls,
 * then one with `priority: { priorityKey: 1 }`, then polls the queue's workflow tasks by hand and
 * prints where the priority-1 task came. `--server-config KEY=VALUE` (repeatable) sets the dev
 * server's dynamic config, e.g. `matching.useNewMatcher=true`.
 *
 *   node --import tsx bench/lease-priority.ts [--backlog 500] [--server-config K=V]
 */
import { Command } from 'commander';
import { devServerEnv } from '../devkit/temporal';

async function main(): Promise<void> {
  const opts = new Command()
    .option('--backlog <n>', 'default-priority workflows started first', '500')
    .option('--server-config <kv...>', 'dev server dynamic config KEY=VALUE', [])
    .option('--no-priority', 'start the last workflow with the default priority (the control)')
    .parse()
    .opts<{ backlog: string; serverConfig: string[]; priority: boolean }>();
  const backlog = Number(opts.backlog);
  const env = await devServerEnv({
    extraArgs: opts.serverConfig.flatMap((kv) => ['--dynamic-config-value', kv]),
  });
  try {
    const { client } = env;
    const taskQueue = `lease-priority-${process.pid}`;
    for (let i = 0; i < backlog; i += 100)
      await Promise.all(
        Array.from({ length: Math.min(100, backlog - i) }, (_, k) =>
          client.workflow.start('noSuchWorkflow', { taskQueue, workflowId: `backlog-${i + k}` }),
        ),
      );
    await client.workflow.start('noSuchWorkflow', {
      taskQueue,
      workflowId: 'urgent',
      ...(opts.priority ? { priority: { priorityKey: 1 } } : {}),
    });
    const seen: string[] = [];
    for (let n = 0; n <= backlog && !seen.includes('urgent'); n++) {
      // A long poll needs a deadline; the backlog answers at once.
      const task = await client.withDeadline(Date.now() + 10_000, () =>
        client.workflowService.pollWorkflowTaskQueue({
          namespace: client.options.namespace,
          taskQueue: { name: taskQueue },
          identity: 'lease-priority-probe',
        }),
      );
      seen.push(task.workflowExecution?.workflowId ?? '(none)');
    }
    const at = seen.indexOf('urgent');
    const what = opts.priority ? 'priority-1 task' : 'last task (default priority)';
    console.log(
      `server config: ${opts.serverConfig.join(' ') || 'defaults'}; backlog ${backlog}: ` +
        (at < 0 ? `${what} not handed out` : `${what} handed out as number ${at + 1}`) +
        `; first tasks: ${seen.slice(0, 3).join(', ')}`,
    );
  } finally {
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
