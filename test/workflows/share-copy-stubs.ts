/**
 * Helpers for the shareImage / copyImage time-skipping tests: the fake activities (from
 * devkit/fake-share-copy.ts), waits that block until cancelled, and starting and following runs.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { Client } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Activities, ActivityDeps } from '../../activities';
import { shareRunActivities } from '../../activities/share-runs';
import { shareCopyActivities } from '../../devkit/fake-share-copy';
import { timeSkippingEnv } from '../support/temporal';
import type { AwsTarget, LaunchPermissionEntry, UnshareImageResult } from '../../workflows/contracts';
import type { ActivityLog, WorkflowOutcome } from './harness';
import {
  deferred,
  heartbeatUntilCancelled,
  recorded,
  startUnchecked,
  withWorker,
  workflowEnv,
  workflowOutcome,
} from './harness';

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
      entered += 1;
      notify();
      try {
        return await heartbeatUntilCancelled();
      } finally {
        cancelled += 1;
        notify();
      }
    },
    entered: (n) => until('entered', n),
    cancelled: (n) => until('cancelled', n),
  };
}

/**
 * A test file's time-skipping environment (`workflowEnv`) and its `withLoggedWorker`: `fn` runs
 * while a fresh worker serves a fresh task queue (named from `queuePrefix`) with `activities`, each
 * call recorded in `log`.
 */
export function shareCopyEnv(queuePrefix: string) {
  const env = workflowEnv(timeSkippingEnv);
  const withLoggedWorker = <T>(
    log: ActivityLog,
    activities: Activities,
    fn: (taskQueue: string) => Promise<T>,
  ): Promise<T> => withWorker(env, recorded(log, activities), fn, queuePrefix);
  return { env, withLoggedWorker };
}

export function start<T extends Workflow>(
  env: TestWorkflowEnvironment,
  workflowType: 'shareImage' | 'copyImage' | 'unshareImage',
  taskQueue: string,
  input: unknown,
): Promise<WorkflowHandle<T>> {
  return startUnchecked<T>(env, workflowType, taskQueue, input);
}

/** An unshareImage run of `input` (a share run's id, and what else the test sends), to its end. */
export async function unshare(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  input: Record<string, unknown>,
): Promise<WorkflowOutcome<UnshareImageResult>> {
  return workflowOutcome<UnshareImageResult>(await start(env, 'unshareImage', taskQueue, input));
}

// The harness's run outcome and step wait, under the names these tests have always used.
export {
  type WorkflowOutcome as RunOutcome,
  workflowOutcome as outcome,
  stepReached as stepIs,
} from './harness';

/**
 * The real `readShareRun`, reading the test server's own record of the share run (with a plain
 * client: the test client's `result()` would unlock time skipping from inside an activity).
 */
export function withReadShareRun(env: TestWorkflowEnvironment, activities: Activities): Activities {
  const workflow = new Client({ connection: env.connection, namespace: env.namespace }).workflow;
  const { readShareRun } = shareRunActivities({
    ...({} as ActivityDeps),
    temporal: () => Promise.resolve({ workflow, close: () => Promise.resolve() }),
  });
  return { ...activities, readShareRun };
}

/**
 * Stubs over an image whose launch permissions change as AWS would (adds and removes land in
 * `launch`, so the share ledger's own reads see them), with the real `readShareRun` for unshares.
 * Image waits (a copy's) hold until `gate` resolves, when one is given.
 */
export function liveImage(
  env: TestWorkflowEnvironment,
  gate?: Promise<void>,
): { activities: Activities; launch: LaunchPermissionEntry[] } {
  const launch: LaunchPermissionEntry[] = [];
  const base = shareCopyActivities({ launchPermissions: launch });
  const same = (a: LaunchPermissionEntry, b: LaunchPermissionEntry) => a.userId === b.userId;
  return {
    launch,
    activities: withReadShareRun(env, {
      ...base,
      addLaunchPermissions: (input) => {
        for (const p of input.permissions) if (!launch.some((h) => same(h, p))) launch.push(p);
        return base.addLaunchPermissions(input);
      },
      removeLaunchPermissions: (input) => {
        for (const p of input.permissions) {
          const i = launch.findIndex((h) => same(h, p));
          if (i >= 0) launch.splice(i, 1);
        }
        return base.removeLaunchPermissions(input);
      },
      waitForImageAvailable: async (input) => {
        await gate;
        return base.waitForImageAvailable(input);
      },
    }),
  };
}
