/** Moved to devkit/temporal.ts (the local stack lives outside the tests); kept so existing imports compile. */
import { afterEach, beforeEach } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingEnv } from '../../devkit/temporal';

export * from '../../devkit/temporal';

/**
 * Gives each test of the calling file a time-skipping server of its own (about 0.2 s to start),
 * handed to `use` before the test. One server shared by a file let an activity that an earlier test
 * left open (its worker gone, as hand-off and cancellation tests do) hold time skipping back until
 * its timeout passed in wall time, stalling every timer of the tests after it.
 */
export function timeSkippingEnvPerTest(use: (env: TestWorkflowEnvironment) => void): void {
  let env: TestWorkflowEnvironment | undefined;
  beforeEach(async () => {
    env = await timeSkippingEnv();
    use(env);
  });
  afterEach(async () => {
    await env?.teardown();
    env = undefined;
  });
}
