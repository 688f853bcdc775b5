/**
 * Temporal test environments backed by the pinned binaries (the SDK cannot download them here):
 * the time-skipping test server for workflow tests, the dev server (`temporal server start-dev`)
 * for end-to-end tests and schedules.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { bundleWorkflowCode } from '@temporalio/worker';
import { SearchAttr } from '../contracts';
import { workflowBundleOptions } from '../worker/bundle-options';
import { temporalCli, temporalTestServer } from './tools';

export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalTestServer() } },
  });
}

export async function devServerEnv(
  /** `extraArgs`: more `temporal server start-dev` flags, e.g. `--dynamic-config-value K=V`. */
  opts: { ui?: boolean; uiPort?: number; port?: number; extraArgs?: string[] } = {},
): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalCli() },
      searchAttributes: Object.values(SearchAttr),
      ...(opts.ui ? { ui: true } : {}),
      ...(opts.uiPort !== undefined ? { uiPort: opts.uiPort } : {}),
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      extraArgs: ['--log-level', 'error', ...(opts.extraArgs ?? [])],
    },
  });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** The workflow bundle, built once per test process (webpack takes seconds). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ ...workflowBundleOptions, logger: quietLogger });
  return bundle;
}

const noop = (): void => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };

let queue = 0;
/** One task queue per test, so tests never pick up each other's tasks. */
export function uniqueTaskQueue(name: string): string {
  queue += 1;
  return `${name}-${process.pid}-${queue}`;
}
