/**
 * worker/logging.ts: one name for the run id in every JSON line. The SDK's activity context names it
 * `workflowRunId` (its `activityLogAttributes`), its workflow logger `runId`; a log search by
 * `runId` must find both.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../worker/logging';

function jsonLines(): { records: Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const records: Record<string, unknown>[] = [];
  const log = createLogger({
    format: 'json',
    level: 'INFO',
    write: (l) => records.push(JSON.parse(l) as Record<string, unknown>),
  });
  return { records, log };
}

void describe('JSON logs: the run id', () => {
  void it('GIVEN an activity line (the SDK says workflowRunId) WHEN logged THEN runId carries it, among the leading ids', () => {
    const { records, log } = jsonLines();
    log.warn('AWS ec2:DescribeImages failed with RequestLimitExceeded', {
      sdkComponent: 'activity',
      isLocal: false,
      attempt: 3,
      activityType: 'waitForImageAvailable',
      workflowId: 'copy-image/1',
      workflowRunId: 'run-1',
      workflowType: 'copyImage',
      code: 'RequestLimitExceeded',
    });
    const [r] = records;
    assert.ok(r);
    assert.equal(r.runId, 'run-1');
    assert.equal(r.workflowRunId, undefined, 'said once');
    assert.deepEqual(Object.keys(r).slice(3, 8), [
      'workflowId',
      'runId',
      'workflowType',
      'activityType',
      'attempt',
    ]);
  });

  void it('GIVEN a workflow line (runId already) WHEN logged THEN it is kept as is', () => {
    const { records, log } = jsonLines();
    log.info('step started: copy', {
      sdkComponent: 'workflow',
      workflowId: 'w',
      runId: 'run-2',
      workflowType: 'copyImage',
    });
    assert.equal(records[0]?.runId, 'run-2');
  });
});
