/**
 * The harness's allowance for local activities run again by a redelivered workflow task
 * (`collapseReadOnlyRepeats`): what it forgives, and what it must never hide. Pure: no server.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ActivityName } from './stub-activities';
import { ActivityLog, collapseReadOnlyRepeats } from './harness';

const REF = { target: { region: 'eu-west-1' }, instanceId: 'i-0123456789abcdef0' };
const OWNER = { target: REF.target, imageName: 'img', workflowId: 'wf', runId: 'run' };
const TAGS = { target: REF.target, imageId: 'ami-0fedcba9876543210', tags: {} };
const INPUT: Partial<Record<ActivityName, unknown>> = {
  describeInstance: REF,
  checkImageName: OWNER,
  tagSnapshots: TAGS,
  stopInstance: { ...REF, deadline: 1 },
  createImage: OWNER,
  waitForImageAvailable: TAGS,
};

function logOf(...names: ActivityName[]): ActivityLog {
  const log = new ActivityLog();
  for (const name of names) log.calls.push({ name, input: INPUT[name] } as ActivityLog['calls'][number]);
  return log;
}

void describe('collapseReadOnlyRepeats', () => {
  void it('GIVEN a workflow task whose two local activities both ran before it was lost WHEN it was redelivered and ran them again THEN the repeated sequence collapses to one', () => {
    const log = logOf(
      'stopInstance',
      'describeInstance',
      'checkImageName',
      'describeInstance',
      'checkImageName',
      'createImage',
    );

    assert.deepEqual(collapseReadOnlyRepeats(log).names(), [
      'stopInstance',
      'describeInstance',
      'checkImageName',
      'createImage',
    ]);
  });

  void it('GIVEN the last task of a run lost after tagging the snapshots WHEN redelivered THEN the second tagSnapshots collapses', () => {
    const log = logOf('waitForImageAvailable', 'tagSnapshots', 'tagSnapshots');

    assert.deepEqual(collapseReadOnlyRepeats(log).names(), ['waitForImageAvailable', 'tagSnapshots']);
  });

  void it('GIVEN a normal activity (one that changes AWS) run twice WHEN collapsed THEN both calls stay, for the exactly-once assertions to see', () => {
    const log = logOf('describeInstance', 'stopInstance', 'stopInstance', 'createImage', 'createImage');

    assert.deepEqual(collapseReadOnlyRepeats(log).names(), [
      'describeInstance',
      'stopInstance',
      'stopInstance',
      'createImage',
      'createImage',
    ]);
  });

  void it('GIVEN the same local activity before and after a normal activity WHEN collapsed THEN both stay: that is the workflow asking twice, not a replay', () => {
    const log = logOf('describeInstance', 'stopInstance', 'describeInstance');

    assert.deepEqual(collapseReadOnlyRepeats(log).names(), [
      'describeInstance',
      'stopInstance',
      'describeInstance',
    ]);
  });

  void it('GIVEN a local activity repeated with a different input WHEN collapsed THEN both stay', () => {
    const log = logOf('describeInstance');
    log.calls.push({ name: 'describeInstance', input: { ...REF, instanceId: 'i-0fffffffffffffff0' } });

    assert.equal(collapseReadOnlyRepeats(log).calls.length, 2);
  });
});
