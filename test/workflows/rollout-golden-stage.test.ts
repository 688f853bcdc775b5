/**
 * A golden pipeline ending with a `rollout` stage (child rolloutImage), on the time-skipping server
 * with the golden stubs and the rollout model: the approved image is rolled out in waves; a rollout
 * that an alarm rolls back leaves the image approved and the run completed with that problem.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv } from '../support/temporal';
import { Fleet, GOLDEN, imageOnlyInput } from './golden-stubs';
import {
  GOLDEN_ROLLOUT_STAGE,
  RolloutFleet,
  goldenWithRolloutActivities as activities,
} from './rollout-stubs';
import { RUN_TIMEOUT, workflowEnv } from './harness';
import { runTo } from './run-helpers';

const env = workflowEnv(timeSkippingEnv);

const STAGE = GOLDEN_ROLLOUT_STAGE;

/**
 * A pipeline whose last stage rolls the image out over the two-group rollout model (`prepare` makes
 * the model misbehave): the outcome, and the model afterwards.
 */
async function runGolden(prepare: (rollout: RolloutFleet) => void = () => {}) {
  const rollout = new RolloutFleet(['web-a', 'web-b']);
  prepare(rollout);
  const outcome = await runTo(
    env,
    GOLDEN,
    activities(new Fleet(), rollout),
    imageOnlyInput({ rollout: STAGE }),
  );
  return { outcome, rollout };
}

describe('goldenImage: rollout stage', () => {
  it(
    'GIVEN a pipeline with a rollout stage WHEN the image is approved THEN it is rolled out in two waves to the launch template and both groups, and the result has the rollout',
    RUN_TIMEOUT,
    async () => {
      const { outcome, rollout } = await runGolden();
      await saveHistory(outcome, 'golden-image-rollout-stage');

      assert.ok(outcome.ok, `the run failed: ${outcome.ok ? '' : String(outcome.error)}`);
      const imageId = outcome.result.images[0]?.imageId ?? '';
      assert.deepEqual(outcome.result.rollout?.imageIds, { 'eu-west-1': imageId });
      assert.equal(outcome.result.rollout?.waves.length, 2);
      assert.equal(rollout.imageOf('web-a'), imageId);
      assert.equal(rollout.imageOf('web-b'), imageId);
      assert.equal(outcome.progress.steps.find((s) => s.name === 'rollout')?.state, 'done');
      assert.equal(outcome.progress.outcome, 'succeeded');
    },
  );

  it(
    'GIVEN a rollout stage WHEN an alarm fires in the canary bake THEN the rollout is rolled back, the image stays approved and the run completes with the rollout as its problem',
    RUN_TIMEOUT,
    async () => {
      const { outcome, rollout } = await runGolden((r) => {
        r.alarmInBake = { bake: 1, alarm: 'web-5xx' };
      });

      assert.ok(outcome.ok, `the run failed: ${outcome.ok ? '' : String(outcome.error)}`);
      assert.equal(outcome.result.rollout, undefined);
      assert.equal(outcome.progress.outcome, 'succeeded-with-problems');
      assert.match(outcome.progress.problems?.[0] ?? '', /rollout: .*alarm during the bake: web-5xx/);
      assert.equal(rollout.template.defaultVersion, 1);
      assert.equal(rollout.group('web-b').refreshes.length, 0);
    },
  );
});
