/**
 * Tier 4: the histories recorded from the end-to-end runs (test/replay/histories/, written by
 * `AMIFLOW_RECORD_HISTORIES=1 node scripts/run-tests.mjs test/e2e`) replay against the current
 * workflow code without non-determinism. A workflow change that would break runs already open in
 * production fails here first.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { ReplayResult } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import type { RecordedHistory } from '../support/histories';
import { HISTORIES_DIR, eventTypes, loadHistories } from '../support/histories';
import { installQuietRuntime } from '../support/runtime';
import { workflowBundle } from '../support/temporal';

/** Each scenario the end-to-end test records, and how its run closed. */
const SCENARIOS: Record<string, string> = {
  'image-from-instance-stop': 'WORKFLOW_EXECUTION_COMPLETED',
  'image-from-instance-reboot': 'WORKFLOW_EXECUTION_COMPLETED',
  'image-from-instance-no-reboot': 'WORKFLOW_EXECUTION_COMPLETED',
  'image-from-instance-stopped-instance': 'WORKFLOW_EXECUTION_COMPLETED',
  'image-from-instance-name-taken': 'WORKFLOW_EXECUTION_FAILED',
  'image-from-instance-image-failed': 'WORKFLOW_EXECUTION_FAILED',
  'image-from-instance-cancelled': 'WORKFLOW_EXECUTION_CANCELED',
  'image-from-instance-cancelled-during-stop': 'WORKFLOW_EXECUTION_CANCELED',
  'image-from-instance-cancelled-during-create': 'WORKFLOW_EXECUTION_CANCELED',
};

async function replay(
  options: Parameters<typeof Worker.runReplayHistories>[0],
  histories: RecordedHistory[],
): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  const iterable = histories.map((h) => ({ workflowId: h.name, history: h.history }));
  for await (const result of Worker.runReplayHistories(options, iterable)) results.push(result);
  return results;
}

void describe('imageFromInstance replay of recorded histories', () => {
  let histories: RecordedHistory[];

  before(async () => {
    installQuietRuntime();
    histories = await loadHistories();
  });

  void it('GIVEN the recorded histories THEN every scenario is there, as a closed run that closed as recorded', () => {
    assert.deepEqual(
      histories.map((h) => h.name).sort(),
      Object.keys(SCENARIOS).sort(),
      `the files in ${HISTORIES_DIR}`,
    );
    for (const { name, history } of histories) {
      const types = eventTypes(history);
      assert.equal(types[0], 'WORKFLOW_EXECUTION_STARTED', name);
      assert.equal(types.at(-1), SCENARIOS[name], name);
    }
    // The compensation runs did undo something, so their undo activities are in the history.
    for (const name of ['image-from-instance-image-failed', 'image-from-instance-cancelled']) {
      const history = histories.find((h) => h.name === name)?.history;
      const scheduled = (history?.events ?? []).flatMap((e) => {
        const type = e.activityTaskScheduledEventAttributes?.activityType?.name;
        return type ? [type] : [];
      });
      assert.ok(scheduled.includes('deleteImage'), `${name} schedules deleteImage: ${scheduled.join(', ')}`);
    }
  });

  void it('WHEN they are replayed against the current workflow code THEN none hits non-determinism', async () => {
    const results = await replay({ workflowBundle: await workflowBundle() }, histories);

    assert.equal(results.length, histories.length);
    for (const r of results) assert.equal(r.error, undefined, `${r.workflowId}: ${String(r.error)}`);
  });

  void it('GIVEN a workflow edited to create the image before stopping WHEN a stop-mode history is replayed against it THEN replay fails with a DeterminismViolationError', async () => {
    const stop = histories.filter((h) => h.name === 'image-from-instance-stop');
    assert.equal(stop.length, 1);

    const [result] = await replay({ workflowsPath: require.resolve('./fixtures/create-before-stop') }, stop);

    assert.ok(result?.error instanceof DeterminismViolationError, `got ${String(result?.error)}`);
    assert.match(result.error.message, /Nondeterminism error/);
  });
});
