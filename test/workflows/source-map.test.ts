/**
 * The workflow bundle's source map (worker/bundle-options.ts `leanWorkflowBundle`) is lines only and
 * without the sources' text, to keep both of a worker's threads small. What it must still give: a
 * failure raised in workflow code carries a stack whose frames name the TypeScript file and line
 * they came from (the SDK maps every workflow stack through it), not the bundle's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { timeSkippingEnv } from '../support/temporal';
import { RUN_TIMEOUT, assertWorkflowFailure, failed, workflowEnv } from './harness';
import { happyActivities, imageInput, runImageFromInstance } from './stub-activities';

const env = workflowEnv(timeSkippingEnv);

void describe('the workflow bundle’s source map', () => {
  void it(
    'GIVEN a run whose input workflow code rejects WHEN its failure is read THEN the stack names the workflow source file and line',
    RUN_TIMEOUT,
    async () => {
      const outcome = await runImageFromInstance(env, happyActivities(), {
        ...imageInput(),
        instanceId: 'i-XYZ',
      });
      const failure = assertWorkflowFailure(failed(outcome), 'InvalidInput');
      const frames = (failure.stack ?? '').split('\n').filter((l) => l.trim().startsWith('at '));
      assert.ok(
        frames.some((f) => /workflows\/[\w-]+\.ts:\d+/.test(f)),
        `no frame names a workflows/*.ts file and line:\n${failure.stack ?? '(no stack)'}`,
      );
      assert.ok(
        frames.every((f) => !/workflow-bundle/.test(f) && !/null:null/.test(f)),
        `a frame points into the bundle or was not mapped:\n${failure.stack ?? '(no stack)'}`,
      );
    },
  );
});
