/**
 * Typed starts: the client starts every workflow by passing the workflow function itself, so the
 * SDK takes the type name from the function and the input's type from its signature. At run time:
 * each exported workflow's function name is the type name its histories, schedules, visibility
 * queries and tags know (WORKFLOW_TYPES), and a start hands Temporal that function. At compile time
 * (`npm run typecheck`): an input of another workflow's type does not compile (`wrongInputs` below).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import type { BackupInput, ImageFromInstanceInput, ShareImageInput } from '../../contracts';
import { WORKFLOW_TYPES } from '../../contracts';
import { startRun } from '../../client/distribution';
import { scheduleStartAction } from '../../client/schedules';
import * as workflows from '../../workflows';
import { INSTANCE, recordingClient } from './fixtures';

const IMAGE: ImageFromInstanceInput = { ...INSTANCE, imageName: 'web-2026-11-28', mode: 'stop' };

describe('typed client starts', () => {
  test('GIVEN the workflows the worker registers WHEN their function names are read THEN each is its type name in WORKFLOW_TYPES', () => {
    for (const [name, type] of Object.entries(WORKFLOW_TYPES)) {
      const fn: unknown = (workflows as Record<string, unknown>)[name];
      assert.equal(typeof fn, 'function', `workflows/index.ts exports ${name}`);
      assert.equal((fn as () => unknown).name, type, `the SDK names the type of ${name} by its function`);
    }
  });

  test('GIVEN a valid image request WHEN the client starts it THEN Temporal gets the imageFromInstance function and the parsed input', async () => {
    const { client, recorded } = recordingClient();
    await client.startImageFromInstance(IMAGE, { searchAttributes: false });
    assert.equal(recorded.length, 1);
    const [workflow, options] = recorded[0]?.args as [unknown, { args: unknown[] }];
    assert.equal(workflow, workflows.imageFromInstance);
    assert.deepEqual(options.args, [IMAGE]);
  });

  test('GIVEN a backup input WHEN a schedule start action is made for backupInstances THEN it names the function and carries the input', () => {
    const input: BackupInput = { region: 'eu-west-1', plan: 'db', instanceIds: ['i-0123456789abcdef0'] };
    const action = scheduleStartAction(workflows.backupInstances, input);
    assert.deepEqual(action, {
      type: 'startWorkflow',
      workflowType: workflows.backupInstances,
      args: [input],
    });
  });
});

/**
 * Never run: `npm run typecheck` checks it. Each `@ts-expect-error` fails the typecheck when the line
 * under it compiles, i.e. when a start would accept an input of the wrong type for its workflow.
 */
export function wrongInputs(temporal: Client, share: ShareImageInput): void {
  void startRun(temporal, {
    workflow: workflows.imageFromInstance,
    // @ts-expect-error a share request is not an imageFromInstance input
    input: share,
    workflowId: 'x',
    taskQueue: 'amiflow',
    summary: 'x',
  });
  // @ts-expect-error a schedule of goldenImage refuses an image request as its input
  scheduleStartAction(workflows.goldenImage, IMAGE);
}
