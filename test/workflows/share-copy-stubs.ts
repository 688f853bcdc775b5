/**
 * Helpers for the shareImage / copyImage time-skipping tests: the fake activities (from
 * devkit/fake-share-copy.ts), waits that block until cancelled, and starting and following runs.
 */
import { Context } from '@temporalio/activity';
import type { WorkflowHandle, WorkflowStartOptions } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Activities } from '../../activities';
import type { AwsTarget, WorkflowProgress } from '../../workflows/contracts';
import { progressQuery } from '../../workflows/contracts';
import type { History } from './stub-activities';
import { deferred, eventually, uniqueWorkflowId } from './stub-activities';

// The fakes themselves live in devkit (the share/copy benchmark uses them too).
export * from '../../devkit/fake-share-copy';

/**
 * Waits that block (heartbeating) until cancelled, for the destinations `blocks` picks; the others
 * go to `otherwise`. `entered(n)` resolves once n blocking waits are running.
 */
export function blockingWaits(
  otherwise: Activities['waitForImageAvailable'],
  blocks: (target: AwsTarget) => boolean = () => true,
): {
  fn: Activities['waitForImageAvailable'];
  entered(n: number): Promise<void>;
  cancelled(n: number): Promise<void>;
} {
  let entered = 0;
  let cancelled = 0;
  const waiters: { n: number; kind: 'entered' | 'cancelled'; resolve(): void }[] = [];
  const notify = () => {
    for (const w of [...waiters])
      if ((w.kind === 'entered' ? entered : cancelled) >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  };
  const until = (kind: 'entered' | 'cancelled', n: number) => {
    const d = deferred();
    waiters.push({ n, kind, resolve: () => d.resolve() });
    notify();
    return d.promise;
  };
  return {
    fn: async (input) => {
      if (!blocks(input.target)) return otherwise(input);
      const ctx = Context.current();
      entered += 1;
      notify();
      try {
        for (;;) {
          ctx.heartbeat();
          await ctx.sleep(20); // the stub's heartbeat pace, not a wait for something in the test
        }
      } finally {
        cancelled += 1;
        notify();
      }
    },
    entered: (n) => until('entered', n),
    cancelled: (n) => until('cancelled', n),
  };
}

export function start<T extends Workflow>(
  env: TestWorkflowEnvironment,
  workflowType: 'shareImage' | 'copyImage' | 'unshareImage',
  taskQueue: string,
  input: unknown,
): Promise<WorkflowHandle<T>> {
  // Deliberately unchecked: tests also send inputs the client library would refuse.
  const options = { taskQueue, workflowId: uniqueWorkflowId(workflowType), args: [input] };
  return env.client.workflow.start<T>(workflowType, options as unknown as WorkflowStartOptions<T>);
}

export type RunOutcome<R> =
  | { ok: true; result: R; progress: WorkflowProgress; history: History; workflowId: string }
  | { ok: false; error: unknown; progress: WorkflowProgress; history: History; workflowId: string };

export async function outcome<R>(handle: WorkflowHandle): Promise<RunOutcome<R>> {
  let settled: { ok: true; result: R } | { ok: false; error: unknown };
  try {
    settled = { ok: true, result: (await handle.result()) as R };
  } catch (error) {
    settled = { ok: false, error };
  }
  return {
    ...settled,
    progress: await handle.query(progressQuery),
    history: await handle.fetchHistory(),
    workflowId: handle.workflowId,
  };
}

/** Resolves once the run's progress shows `step` in one of `states`. */
export function stepIs(
  handle: WorkflowHandle,
  step: string,
  states: readonly string[],
): Promise<WorkflowProgress> {
  return eventually(`step '${step}' to be ${states.join(' or ')}`, async () => {
    const p = await handle.query(progressQuery);
    return p.steps.find((s) => s.name === step && states.includes(s.state)) ? p : undefined;
  });
}
